"""`validate.py --suite NAME`: health, dependencies, N verified generate runs and timing targets → a verdict.

Every check is a row {name, group, status: pass|fail|skip, message, seconds, details}; the suite
passes when no row failed. Nothing is printed or written here (client.reports writes the files).
"""

from __future__ import annotations

import base64
import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from client.commands.diagnose import diagnose
from client.commands.health import ping
from client.config import Settings
from client.errors import ClientError, EndpointError, UsageError
from client.jobflow import Backend, submit_and_wait
from client.media import extension, probe
from workflows.registry import Entry, Registry

SUITES_FILE = Path(__file__).resolve().parent.parent / "suites.yaml"
_SUITE_KEYS = {"description", "runs", "success_rate", "targets", "cases"}
_CASE_KEYS = {"workflow", "params", "image", "prompts", "seeds"}
_TARGET_KEYS = {"cold_start_s", "generate_s"}
EventSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Case:
    workflow: str
    params: dict[str, Any] = field(default_factory=dict)
    image: str | None = None
    prompts: tuple[str, ...] = ()
    seeds: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Suite:
    name: str
    description: str
    runs: int
    success_rate: float
    targets: dict[str, float]
    cases: tuple[Case, ...]


def load_suites(path: Path = SUITES_FILE) -> dict[str, Suite]:
    """Every suite of a suites file, validated (UsageError naming the suite and key)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read suites file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping of suite name -> suite")
    suites = {}
    for name, raw in data.items():
        where = f"{path.name}: {name}"
        if not isinstance(raw, dict) or set(raw) - _SUITE_KEYS or "cases" not in raw:
            raise UsageError(f"{where}: expected keys {sorted(_SUITE_KEYS)} (cases required)")
        targets = raw.get("targets") or {}
        if set(targets) - _TARGET_KEYS or not all(isinstance(v, int | float) for v in targets.values()):
            raise UsageError(f"{where}: targets: numbers for {sorted(_TARGET_KEYS)} only")
        cases = []
        for i, c in enumerate(raw["cases"] or []):
            if not isinstance(c, dict) or set(c) - _CASE_KEYS or not isinstance(c.get("workflow"), str):
                raise UsageError(f"{where}: cases[{i}]: expected a workflow and only {sorted(_CASE_KEYS)}")
            cases.append(
                Case(
                    c["workflow"],
                    dict(c.get("params") or {}),
                    c.get("image"),
                    tuple(c.get("prompts") or ()),
                    tuple(int(s) for s in c.get("seeds") or ()),
                )
            )
        suites[str(name)] = Suite(
            str(name),
            str(raw.get("description", "")),
            int(raw.get("runs", 1)),
            float(raw.get("success_rate", 1.0)),
            {k: float(v) for k, v in targets.items()},
            tuple(cases),
        )
    return suites


def pattern_png(width: int = 320, height: int = 240) -> bytes:
    """A gradient with a disc: a real, deterministic input image."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height))
    img.putdata([(x * 255 // (width - 1), y * 255 // (height - 1), 160) for y in range(height) for x in range(width)])
    ImageDraw.Draw(img).ellipse((width // 3, height // 4, 2 * width // 3, 3 * height // 4), fill=(250, 250, 250))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _check(name: str, group: str, status: str, message: str, seconds: float = 0.0, **details: Any) -> dict[str, Any]:
    return {
        "name": name,
        "group": group,
        "status": status,
        "message": message,
        "seconds": round(seconds, 3),
        "details": details,
    }


def case_input(case: Case, run: int, image_b64: str | None) -> dict[str, Any]:
    job: dict[str, Any] = {"workflow": case.workflow, **case.params}
    if case.prompts:
        job["prompt"] = case.prompts[run % len(case.prompts)]
    if case.seeds:
        job["seed"] = case.seeds[run % len(case.seeds)]
    if image_b64 is not None:
        job["image_base64"] = image_b64
    return job


def _output_bytes(item: dict[str, Any]) -> bytes:
    if isinstance(item.get("base64"), str):
        return base64.b64decode(item["base64"])
    if isinstance(item.get("url"), str):
        from client.saving import _download

        return _download(item["url"])
    raise ValueError("output has neither base64 nor url")


def verify_outputs(response: Any, entry: Entry | None, params: dict[str, Any]) -> tuple[list[str], list[dict]]:
    """(problems, what was decoded) for a generate response against the registry's output specs."""
    if not isinstance(response, dict) or not isinstance(response.get("outputs"), list):
        return ["the response has no outputs list"], []
    outputs = [o for o in response["outputs"] if isinstance(o, dict)]
    if entry is None or not entry.outputs:
        return ([] if outputs else ["no outputs"]), []
    problems, seen = [], []
    for spec in entry.outputs:
        got = [o for o in outputs if str(o.get("node_id")) == spec.node and o.get("kind") == spec.kind]
        if len(got) != spec.count:
            problems.append(f"node {spec.node}: expected {spec.count} {spec.kind} output(s), got {len(got)}")
        expect = {
            "width": params.get("width", spec.width),
            "height": params.get("height", spec.height),
            "frames": params.get("frames", spec.frames) if spec.kind == "video" else None,
        }
        for item in got:
            name = str(item.get("filename", ""))
            try:
                info = probe(_output_bytes(item), name)
            except (ValueError, ClientError) as exc:
                problems.append(f"{name}: cannot read: {exc}")
                continue
            seen.append({"filename": name, **info})
            if "probe_error" in info:
                problems.append(f"{name}: does not decode: {info['probe_error']}")
                continue
            if spec.format and extension(name).replace("jpeg", "jpg") != spec.format.replace("jpeg", "jpg"):
                problems.append(f"{name}: expected a .{spec.format} file")
            for key, wanted in expect.items():
                if wanted is not None and info.get(key) != wanted:
                    problems.append(f"{name}: {key} is {info.get(key)}, expected {wanted}")
    return problems, seen


def _dependency_check(case: Case, report: dict[str, Any], registry: Registry, seconds: float) -> dict[str, Any]:
    response = report["response"]
    entry = registry.get(case.workflow)
    needed_nodes = sorted({n["class_type"] for n in entry.workflow().values()}) if entry else []
    available = set((response.get("node_check") or {}).get("required_available") or [])
    lists = {f: set(v.get("comfyui_lists") or []) for f, v in (response.get("models") or {}).items()}
    models = [(m.folder, m.name) for m in entry.models] if entry else []
    nodes_ok = [n for n in needed_nodes if n in available]
    models_ok = [(f, n) for f, n in models if n in lists.get(f, set())]
    errors = [f for f in report["findings"] if f.get("workflow") == case.workflow and f.get("severity") == "error"]
    complete = len(nodes_ok) == len(needed_nodes) and len(models_ok) == len(models) and not errors
    message = f"nodes {len(nodes_ok)}/{len(needed_nodes)}, models {len(models_ok)}/{len(models)}"
    if errors:
        message += "; " + "; ".join(f"{f['code']}: {f['message']}" for f in errors[:3])
    return _check(
        f"dependencies:{case.workflow}",
        "dependencies",
        "pass" if complete else "fail",
        message,
        seconds,
        missing_nodes=[n for n in needed_nodes if n not in available],
        missing_models=[f"{f}/{n}" for f, n in models if (f, n) not in models_ok],
        findings=errors,
    )


def run_suite(
    api: Backend,
    settings: Settings,
    registry: Registry,
    suite: Suite,
    *,
    runs: int | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """Run the suite; returns the report (verdict in `passed`, rows in `checks`)."""
    target = settings.require_target()
    say = on_event or (lambda _msg: None)
    started, wall0 = time.time(), time.perf_counter()
    runs = runs if runs is not None else suite.runs
    checks: list[dict[str, Any]] = []
    run_rows: list[dict[str, Any]] = []
    report: dict[str, Any] = {
        "suite": suite.name,
        "description": suite.description,
        "target": target.label,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "runs_per_case": runs,
        "success_rate_required": suite.success_rate,
        "checks": checks,
        "runs": run_rows,
        "deployment_findings": [],
    }

    def finish(unusable: bool = False) -> dict[str, Any]:
        failed = [c for c in checks if c["status"] == "fail"]
        report["passed"] = not failed and not unusable
        report["exit_code"] = 2 if unusable else (1 if failed else 0)
        report["duration_s"] = round(time.perf_counter() - wall0, 2)
        report["counts"] = {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "skip")}
        return report

    # 1. health (its delayTime is the suite's cold start when the endpoint was idle)
    say("health ping")
    t = time.perf_counter()
    try:
        health = ping(api, settings)
    except EndpointError as exc:
        checks.append(_check("health", "health", "fail", f"{exc.code}: {exc.message}", time.perf_counter() - t))
        return finish(unusable=True)
    except ClientError as exc:
        checks.append(_check("health", "health", "fail", f"{exc.code}: {exc.message}", time.perf_counter() - t))
        return finish()
    cold_start_ms = health["timing"]["runpod"]["delayTime_ms"]
    h = health["health"]
    checks.append(
        _check(
            "health",
            "health",
            "pass" if health["healthy"] else "fail",
            f"ok={h.get('ok')} comfyui_up={h.get('comfyui_up')} disk_free_gb={h.get('disk_free_gb')} "
            f"round trip {health['round_trip_ms']} ms",
            time.perf_counter() - t,
            health=h,
        )
    )
    report["health"] = h

    # 2. dependencies, per workflow
    usable: dict[str, bool] = {}
    for case in suite.cases:
        say(f"dependencies of {case.workflow}")
        t = time.perf_counter()
        try:
            diag = diagnose(api, settings, registry, workflow=case.workflow)
        except ClientError as exc:
            checks.append(
                _check(
                    f"dependencies:{case.workflow}",
                    "dependencies",
                    "fail",
                    f"{exc.code}: {exc.message}",
                    time.perf_counter() - t,
                )
            )
            usable[case.workflow] = False
            continue
        row = _dependency_check(case, diag, registry, time.perf_counter() - t)
        checks.append(row)
        usable[case.workflow] = row["status"] == "pass"
        report["deployment_findings"] = [
            f for f in diag["findings"] if not f.get("workflow") and f.get("severity") in ("error", "warning")
        ]

    # 3. generate runs with verified outputs
    image_cache: dict[str, str] = {}
    gen_seconds: dict[str, list[float]] = {}
    for case in suite.cases:
        entry = registry.get(case.workflow)
        name = f"generate:{case.workflow}"
        if not usable.get(case.workflow):
            checks.append(_check(name, "generate", "skip", "skipped: dependencies are missing"))
            continue
        image_b64 = None
        if case.image:
            if case.image not in image_cache:
                raw = pattern_png() if case.image == "test-pattern" else Path(case.image).read_bytes()
                image_cache[case.image] = base64.b64encode(raw).decode("ascii")
            image_b64 = image_cache[case.image]
        passed = 0
        for i in range(runs):
            say(f"{case.workflow} run {i + 1}/{runs}")
            job_input = case_input(case, i, image_b64)
            t = time.perf_counter()
            row: dict[str, Any] = {"workflow": case.workflow, "run": i + 1, "seed": job_input.get("seed")}
            try:
                result = submit_and_wait(
                    api, job_input, timeout_s=settings.timeout_s, poll_interval_s=settings.poll_interval_s
                )
            except ClientError as exc:
                row.update(status="fail", error=exc.to_dict(), wall_s=round(time.perf_counter() - t, 3))
                run_rows.append(row)
                continue
            problems, decoded = verify_outputs(result.output, entry, case.params)
            timings = (result.output or {}).get("timings") or {}
            generate_s = (
                round(timings["total_ms"] / 1000, 3)
                if isinstance(timings.get("total_ms"), int | float)
                else (result.execution_ms or 0) / 1000 or None
            )
            row.update(
                status="fail" if problems else "pass",
                job_id=result.job_id,
                problems=problems,
                outputs=decoded,
                wall_s=round(result.wall_s, 3),
                generate_s=generate_s,
                delayTime_ms=result.delay_ms,
                executionTime_ms=result.execution_ms,
            )
            run_rows.append(row)
            if not problems:
                passed += 1
                if generate_s is not None:
                    gen_seconds.setdefault(case.workflow, []).append(generate_s)
        rate = passed / runs if runs else 0.0
        failures = [r for r in run_rows if r["workflow"] == case.workflow and r["status"] == "fail"]
        message = f"{passed}/{runs} runs succeeded with verified outputs (required {suite.success_rate:.0%})"
        if failures:
            first = failures[0]
            why = first.get("problems") or [f"{first['error']['code']}: {first['error']['message']}"]
            message += f"; run {first['run']}: {why[0]}"
        checks.append(
            _check(
                name,
                "generate",
                "pass" if runs and rate >= suite.success_rate else "fail",
                message,
                sum(r.get("wall_s", 0) for r in run_rows if r["workflow"] == case.workflow),
                success_rate=rate,
            )
        )

    # 4. timing targets
    cold_target = suite.targets.get("cold_start_s")
    if cold_target is None:
        cold_target = min(
            (
                e.timing["cold_start_s"]
                for c in suite.cases
                if (e := registry.get(c.workflow)) and "cold_start_s" in e.timing
            ),
            default=None,
        )
    if cold_target is not None:
        if cold_start_ms is None:
            checks.append(
                _check(
                    "timing:cold_start",
                    "timing",
                    "skip",
                    "the endpoint reports no delayTime (RunPod cloud does; the local dev API does not)",
                )
            )
        else:
            cold_s = cold_start_ms / 1000
            checks.append(
                _check(
                    "timing:cold_start",
                    "timing",
                    "pass" if cold_s <= cold_target else "fail",
                    f"first job's delayTime {cold_s:.2f} s (target < {cold_target:g} s)",
                    measured_s=cold_s,
                    target_s=cold_target,
                )
            )
    for case in suite.cases:
        entry = registry.get(case.workflow)
        target_s = suite.targets.get("generate_s", (entry.timing.get("generate_s") if entry else None))
        if target_s is None:
            continue
        values = gen_seconds.get(case.workflow, [])
        if not values:
            checks.append(_check(f"timing:generate:{case.workflow}", "timing", "skip", "no successful run to time"))
            continue
        worst = max(values)
        checks.append(
            _check(
                f"timing:generate:{case.workflow}",
                "timing",
                "pass" if worst <= target_s else "fail",
                f"generation p50 {statistics.median(values):.2f} s, max {worst:.2f} s (target < {target_s:g} s)",
                measured_s=worst,
                target_s=target_s,
            )
        )
    return finish()
