"""Deploy-time self-check: `python -m handler.selfcheck --static | --live [--json]`.

--static (a build step, no ComfyUI running): every node class a registered workflow needs is defined
  by ComfyUI or an installed pack (found by reading the source, without importing torch; or, for a
  pack installed at its pinned commit, listed under that pin in the registry), the registry is valid,
  extra_model_paths.yaml is valid.
--live (container start): diagnose against the running ComfyUI plus one smoke workflow end to end.
Exit codes: 0 ok, 1 findings, 2 could not run.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handler.config import Settings
from handler.facts import check_model_paths
from handler.state import Cause
from workflows.findings import Finding, error
from workflows.registry import Entry, Registry, load_registry

if TYPE_CHECKING:  # --static runs without the worker's HTTP stack: these load only for --live
    from handler.runtime import Runtime

_NODE_ID = re.compile(r"node_id\s*=\s*[\"']([^\"']+)[\"']")


def defined_node_classes(source_files: list[Path]) -> set[str]:
    """Node class names from NODE_CLASS_MAPPINGS dict literals / assignments and V3 `node_id=` schemas."""
    names: set[str] = set()
    for path in source_files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
            tree = ast.parse(text)
        except (OSError, SyntaxError, ValueError):
            continue
        names.update(_NODE_ID.findall(text))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if (
                        isinstance(target, ast.Name)
                        and "NODE_CLASS_MAPPINGS" in target.id
                        and isinstance(node.value, ast.Dict)
                    ):
                        names.update(
                            k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
                        )
                    if (
                        isinstance(target, ast.Subscript)
                        and isinstance(target.value, ast.Name)
                        and "NODE_CLASS_MAPPINGS" in target.value.id
                        and isinstance(target.slice, ast.Constant)
                    ):
                        names.add(str(target.slice.value))
            # NODE_CLASS_MAPPINGS.update({...}), as RES4LYF's beta/__init__.py registers its samplers
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "update"
                and isinstance(node.func.value, ast.Name)
                and "NODE_CLASS_MAPPINGS" in node.func.value.id
                and node.args
                and isinstance(node.args[0], ast.Dict)
            ):
                names.update(
                    k.value for k in node.args[0].keys if isinstance(k, ast.Constant) and isinstance(k.value, str)
                )
    return names


def _python_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.py") if ".git" not in p.parts and "tests" not in p.parts]


def static_check(
    comfy_dir: Path,
    model_paths: Path,
    *,
    cpu_only: bool = False,
    registry_dir: Path | None = None,
    only_packs: set[str] | None = None,
) -> dict[str, Any]:
    """cpu_only: check only the workflows that run without a GPU (for test builds without custom packs).
    only_packs: check only the workflows whose packs are all among these (builds with some packs installed)."""
    findings: list[Finding] = []
    registry = load_registry(registry_dir) if registry_dir else load_registry()
    findings += [
        error("REGISTRY_INVALID", problem, "Fix the registry file named in the message.", path=name)
        for name, problem in sorted(registry.problems.items())
    ]
    if cpu_only:
        registry = Registry(
            {k: e for k, e in registry.entries.items() if _anywhere(e)}, registry.known_packs, registry.problems
        )
    if only_packs is not None:
        registry = Registry(
            {k: e for k, e in registry.entries.items() if all(p.name in only_packs for p in e.packs)},
            registry.known_packs,
            registry.problems,
        )
    core = defined_node_classes(
        [
            comfy_dir / "nodes.py",
            *_python_files(comfy_dir / "comfy_extras"),
            *_python_files(comfy_dir / "comfy_api_nodes"),
        ]
    )
    packs: dict[str, set[str]] = {}
    custom = comfy_dir / "custom_nodes"
    for pack_dir in sorted(p for p in custom.iterdir() if p.is_dir()) if custom.is_dir() else []:
        packs[pack_dir.name] = defined_node_classes(_python_files(pack_dir))
    available = core.union(*packs.values(), *_recorded_nodes(registry, custom).values())
    for class_type, workflows in sorted(registry.required_nodes().items()):
        if class_type not in available:
            pack = registry.pack_for_node(class_type)
            where = f"pack {pack.name} ({pack.repo}@{pack.commit})" if pack else "an unknown pack"
            findings.append(
                error(
                    "NODE_MISSING",
                    f"{class_type} (used by {', '.join(workflows)}) is not defined by ComfyUI or any pack in {custom}.",
                    f"Install {where} in the image.",
                )
            )
    findings += check_model_paths(model_paths)
    return _result(
        findings,
        {
            "core_nodes": len(core),
            "packs": {k: len(v) for k, v in packs.items()},
            "workflows": sorted(registry.entries),
        },
    )


def _recorded_nodes(registry: Registry, custom: Path) -> dict[str, set[str]]:
    """The node names a registry entry records for a pack (read from a real ComfyUI's /object_info by
    `workflow add`), for each pack installed at exactly the pinned commit (its .pack-source, written by
    the install scripts). Why: packs that build their mappings in code (rgthree-comfy's computed names,
    KJNodes' and essentials' merged dicts) can't be read from the source without importing them."""
    out: dict[str, set[str]] = {}
    for entry in registry.entries.values():
        for pack in entry.packs:
            try:
                source = (custom / pack.name / ".pack-source").read_text().split()
            except OSError:
                continue
            if pack.commit and source[1:2] == [pack.commit]:
                out.setdefault(pack.name, set()).update(pack.nodes)
    return out


def _result(findings: list[Finding], facts: dict[str, Any]) -> dict[str, Any]:
    dicts = [f.to_dict() for f in findings]
    return {"ok": not any(f["severity"] == "error" for f in dicts), "findings": dicts, **facts}


def live_check(runtime: Runtime, *, yield_to_jobs: bool = False) -> dict[str, Any]:
    """yield_to_jobs (the background check after start): diagnose only while no job runs, and the
    smoke job only after SMOKE_AFTER_QUIET_S without any job — and not at all once a job's prompt has
    run to its outputs, which proves the same path. ComfyUI collects garbage right after the first
    prompt it runs (0.1-0.6 s on 2 cores) and a job queued meanwhile waits for it: the smoke prompt
    must not be that first prompt while real jobs are arriving. A job that reaches an idle worker
    just as its smoke prompt runs still waits for that prompt and that collection."""
    from handler.diagnose import diagnose
    from handler.generate import generate
    from workflows.request import DiagnoseRequest, GenerateRequest

    def idle() -> None:
        if yield_to_jobs:
            runtime.wait_idle(timeout=600)

    t0 = time.perf_counter()
    idle()
    report = diagnose(runtime, DiagnoseRequest())
    findings = [
        f
        for f in report["findings"]
        if f["severity"] == "error" and f.get("workflow") in (None, *_cpu_or_default(runtime))
    ]
    has_smoke = "smoke_image" in runtime.registry.entries
    smoke = _smoke_skipped(runtime, yield_to_jobs) if has_smoke else {}
    if has_smoke and not smoke:
        idle()
        smoke = _smoke_skipped(runtime, yield_to_jobs=False)  # a job that came after the lull may have proved it
    if has_smoke and not smoke:
        try:
            result = generate(runtime, GenerateRequest(workflow="smoke_image"), "selfcheck")
            smoke = {"ok": bool(result.get("outputs")), "ms": result.get("timings", {}).get("total_ms")}
        except Exception as exc:  # JobError from generate, or anything unexpected: a finding either way
            code = getattr(exc, "code", "INTERNAL_ERROR")
            message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            smoke = {"ok": False, "error_code": code, "message": message}
            findings.append(
                {
                    "code": "SMOKE_FAILED",
                    "severity": "error",
                    "message": f"the smoke workflow failed with {code}: {message}",
                    "fix": getattr(exc, "fix", None) or "See logs_tail of the smoke run.",
                }
            )
    return {
        "ok": not findings,
        "findings": findings,
        "smoke": smoke,
        "diagnose_summary": report["summary"],
        "total_ms": round((time.perf_counter() - t0) * 1000, 1),
    }


def _first_output_at(runtime: Runtime) -> float | None:
    """Seconds after start at which a prompt first ran to its outputs; None before (or without a state)."""
    state = runtime.state
    return None if state is None else state.phases.get("first_output")


def _smoke_skipped(runtime: Runtime, yield_to_jobs: bool) -> dict[str, Any]:
    """Why the smoke job need not run ({}: run it): a job's prompt already proved the path, or (in
    the background) the worker never had SMOKE_AFTER_QUIET_S without a job within SMOKE_WAIT_S."""
    waited = yield_to_jobs and _first_output_at(runtime) is None
    if waited and not runtime.wait_quiet(SMOKE_AFTER_QUIET_S, timeout=SMOKE_WAIT_S):
        return {"ok": None, "skipped": f"jobs kept the worker busy for {SMOKE_WAIT_S:g} s"}
    if (proven := _first_output_at(runtime)) is not None:  # before, or while, we waited
        return {"ok": True, "skipped": f"a job's prompt ran to its outputs first ({proven:g} s after start)"}
    return {}


def _anywhere(entry: Entry) -> bool:
    """A workflow that must run on every deployment: on CPU and without custom node packs."""
    return entry.runs_on_cpu and not entry.packs


def _cpu_or_default(runtime: Runtime) -> list[str]:
    """Workflows whose errors count at start: the default one and those that must run anywhere."""
    default = runtime.settings.default_workflow
    return [e.id for e in runtime.registry.entries.values() if _anywhere(e) or e.id == default]


def summary_line(result: dict[str, Any]) -> str:
    status = "OK" if result["ok"] else f"{len(result['findings'])} error finding(s)"
    smoke = result.get("smoke") or {}
    if "skipped" in smoke:
        status += f"; smoke job skipped: {smoke['skipped']}"
    elif smoke.get("ok"):
        status += f"; smoke job ran in {smoke.get('ms')} ms"
    lines = [f"self-check: {status}"]
    lines += [f"  [{f['code']}] {f['message']}\n      fix: {f['fix']}" for f in result["findings"]]
    return "\n".join(lines)


# The background check starts this much later, so that its diagnose and smoke job (~0.3-0.5 s of
# CPU in this process) do not compete with the SDK starting to take jobs.
BACKGROUND_DELAY_S = 1.0
# The background smoke job waits for this long without any job (see live_check), for SMOKE_WAIT_S at most.
SMOKE_AFTER_QUIET_S = 3.0
SMOKE_WAIT_S = 600.0


def live_check_at_start(runtime: Runtime) -> Cause | None:
    """Strict mode: check now, and return the cause that keeps the worker from taking jobs (None: ok).
    Otherwise: check in the background (it never delays or blocks a job) and return None."""
    if runtime.settings.self_check_strict:
        try:
            result = live_check(runtime)
        except Exception as exc:  # never a traceback out of the start: a cause the user can read
            print(f"self-check: could not run: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return Cause("SELF_CHECK_FAILED", f"the start-up self-check could not run: {type(exc).__name__}: {exc}")
        print(summary_line(result), file=sys.stderr, flush=True)
        if result["ok"]:
            return None
        first = result["findings"][0]
        return Cause(
            "SELF_CHECK_FAILED",
            f"SELF_CHECK_STRICT=1: {len(result['findings'])} error finding(s); first: [{first['code']}] "
            f"{first['message']}",
            {"findings": result["findings"], "smoke": result["smoke"]},
        )

    if not runtime.settings.self_check_at_start:
        return None

    def background() -> None:
        try:
            print(summary_line(live_check(runtime, yield_to_jobs=True)), file=sys.stderr, flush=True)
        except Exception as exc:
            print(f"self-check: could not run: {exc}", file=sys.stderr, flush=True)

    timer = threading.Timer(BACKGROUND_DELAY_S, background)
    timer.name, timer.daemon = "selfcheck", True
    timer.start()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handler.selfcheck", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--static", action="store_true", help="check the image without running ComfyUI")
    mode.add_argument("--live", action="store_true", help="check the running ComfyUI and run a smoke workflow")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--cpu-only",
        action="store_true",
        help="--static: check only workflows that run on CPU (test images without custom packs)",
    )
    parser.add_argument(
        "--only-packs",
        help="--static: check only workflows whose packs are all in this comma-separated list (INSTALL_PACKS=names)",
    )
    parser.add_argument("--comfy-dir", type=Path, help="ComfyUI root (default: $COMFY_DIR)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    try:
        if args.static:
            comfy_dir = args.comfy_dir or settings.comfy_dir
            if not (comfy_dir / "nodes.py").is_file():
                raise FileNotFoundError(f"{comfy_dir}/nodes.py not found: is this a ComfyUI root?")
            model_paths = settings.extra_model_paths or comfy_dir / "extra_model_paths.yaml"
            only = {n for n in args.only_packs.replace(" ", ",").split(",") if n} if args.only_packs else None
            result = static_check(
                comfy_dir, model_paths, cpu_only=args.cpu_only, only_packs=only, registry_dir=settings.registry_dir
            )
        else:
            from handler.runtime import Runtime

            runtime = Runtime(settings)
            if not runtime.comfy.is_up(timeout=2):
                raise ConnectionError(f"ComfyUI at {settings.comfy_url} is not answering")
            runtime.events.start(wait=2)
            result = live_check(runtime)
    except Exception as exc:
        print(json.dumps({"ok": False, "error": str(exc)}) if args.json else f"self-check could not run: {exc}")
        return 2
    print(json.dumps(result, indent=2) if args.json else summary_line(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
