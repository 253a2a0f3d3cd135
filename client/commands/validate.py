"""`validate.py --suite NAME`: health, dependencies, N verified generate runs and timing targets → a verdict.

Every check is a row {name, group, status: pass|fail|skip, message, seconds, details}; the suite
passes when no row failed. Nothing is printed or written here (client.render.report_files writes the files).
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
from client.media import extension, probe, thumbnail
from workflows.registry import Entry, Registry

SUITES_FILE = Path(__file__).resolve().parent.parent / "suites.yaml"
_SUITE_KEYS = {"description", "runs", "success_rate", "targets", "cases"}
_CASE_KEYS = {"workflow", "params", "image", "prompts", "seeds"}
_TARGET_KEYS = {"cold_start_s", "first_run_s", "generate_s"}
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
                data = _output_bytes(item)
                info = probe(data, name)
            except (ValueError, ClientError) as exc:
                problems.append(f"{name}: cannot read: {exc}")
                continue
            seen.append({"filename": name, **info, "thumbnail": thumbnail(data, name)})
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


@dataclass
class _Run:
    """What one suite run collects: its check rows, its generate rows, and what the timing checks need."""

    api: Backend
    settings: Settings
    registry: Registry
    suite: Suite
    runs: int
    say: EventSink
    checks: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    usable: dict[str, bool] = field(default_factory=dict)
    skip_reasons: dict[str, str] = field(default_factory=dict)  # workflow -> why its generate runs are skipped
    gen_seconds: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # (run number, seconds)
    images: dict[str, str] = field(default_factory=dict)
    cold_start_ms: float | None = None
    deployment_findings: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, Any] | None = None


def run_suite(
    api: Backend,
    settings: Settings,
    registry: Registry,
    suite: Suite,
    *,
    runs: int | None = None,
    on_event: EventSink | None = None,
    checks_step: Callable[[_Run, Case], None] | None = None,
) -> dict[str, Any]:
    """Run the suite: health, dependencies, generate runs, timing targets. Returns the report
    (verdict in `passed`, rows in `checks`); an unusable endpoint stops it after the health row.
    checks_step replaces the dependency row per case (`validate --workflow`: client/commands/validate_entry.py)."""
    target = settings.require_target()
    started, wall0 = time.time(), time.perf_counter()
    run = _Run(api, settings, registry, suite, runs if runs is not None else suite.runs, on_event or (lambda _m: None))
    unusable = not _health_step(run)
    if not unusable and run.health is not None:
        for case in suite.cases:
            (checks_step or _dependency_step)(run, case)
        for case in suite.cases:
            _generate_step(run, case)
        run.checks += _cold_start_checks(run) + _generate_timing_checks(run)
        timing = timing_summary(run)
    failed = [c for c in run.checks if c["status"] == "fail"]
    report: dict[str, Any] = {
        "suite": suite.name,
        "description": suite.description,
        "target": target.label,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "runs_per_case": run.runs,
        "success_rate_required": suite.success_rate,
        "checks": run.checks,
        "runs": run.rows,
        "deployment_findings": run.deployment_findings,
        "passed": not failed and not unusable,
        "exit_code": 2 if unusable else (1 if failed else 0),
        "duration_s": round(time.perf_counter() - wall0, 2),
        "counts": {s: sum(c["status"] == s for c in run.checks) for s in ("pass", "fail", "skip")},
        "cold_start_s": round(run.cold_start_ms / 1000, 3) if run.cold_start_ms is not None else None,
    }
    if run.health is not None:
        report["health"] = run.health
        report["timing"] = timing
    return report


def _health_step(run: _Run) -> bool:
    """The health row (its delayTime is the suite's cold start when the endpoint was idle); False: unusable."""
    run.say("health ping")
    t = time.perf_counter()
    try:
        health = ping(run.api, run.settings)
    except ClientError as exc:
        run.checks.append(_check("health", "health", "fail", f"{exc.code}: {exc.message}", time.perf_counter() - t))
        return not isinstance(exc, EndpointError)
    run.cold_start_ms = health["timing"]["runpod"]["delayTime_ms"]
    h = run.health = health["health"]
    message = (
        f"ok={h.get('ok')} comfyui_up={h.get('comfyui_up')} disk_free_gb={h.get('disk_free_gb')} "
        f"round trip {health['round_trip_ms']} ms"
    )
    status = "pass" if health["healthy"] else "fail"
    run.checks.append(_check("health", "health", status, message, time.perf_counter() - t, health=h))
    return True


def _dependency_step(run: _Run, case: Case) -> None:
    run.say(f"dependencies of {case.workflow}")
    t = time.perf_counter()
    try:
        diag = diagnose(run.api, run.settings, run.registry, workflow=case.workflow)
    except ClientError as exc:
        message = f"{exc.code}: {exc.message}"
        run.checks.append(
            _check(f"dependencies:{case.workflow}", "dependencies", "fail", message, time.perf_counter() - t)
        )
        run.usable[case.workflow] = False
        return
    row = _dependency_check(case, diag, run.registry, time.perf_counter() - t)
    run.checks.append(row)
    run.usable[case.workflow] = row["status"] == "pass"
    run.deployment_findings = [
        f for f in diag["findings"] if not f.get("workflow") and f.get("severity") in ("error", "warning")
    ]


def _case_image(run: _Run, case: Case) -> str | None:
    if not case.image:
        return None
    if case.image not in run.images:
        raw = pattern_png() if case.image == "test-pattern" else Path(case.image).read_bytes()
        run.images[case.image] = base64.b64encode(raw).decode("ascii")
    return run.images[case.image]


def _generate_step(run: _Run, case: Case) -> None:
    """`runs` generate jobs of one case, each output verified; one check row for the case."""
    name = f"generate:{case.workflow}"
    if not run.usable.get(case.workflow):
        reason = run.skip_reasons.get(case.workflow, "dependencies are missing")
        run.checks.append(_check(name, "generate", "skip", f"skipped: {reason}"))
        return
    image_b64 = _case_image(run, case)
    rows = [_generate_run(run, case, i, image_b64) for i in range(run.runs)]
    run.rows += rows
    passed = sum(r["status"] == "pass" for r in rows)
    rate = passed / run.runs if run.runs else 0.0
    message = f"{passed}/{run.runs} runs succeeded with verified outputs (required {run.suite.success_rate:.0%})"
    failures = [r for r in rows if r["status"] == "fail"]
    if failures:
        first = failures[0]
        why = first.get("problems") or [f"{first['error']['code']}: {first['error']['message']}"]
        message += f"; run {first['run']}: {why[0]}"
    status = "pass" if run.runs and rate >= run.suite.success_rate else "fail"
    seconds = sum(r.get("wall_s", 0) for r in rows)
    run.checks.append(_check(name, "generate", status, message, seconds, success_rate=rate))


def _generate_run(run: _Run, case: Case, i: int, image_b64: str | None) -> dict[str, Any]:
    run.say(f"{case.workflow} run {i + 1}/{run.runs}")
    job_input = case_input(case, i, image_b64)
    t = time.perf_counter()
    row: dict[str, Any] = {"workflow": case.workflow, "run": i + 1, "seed": job_input.get("seed")}
    try:
        result = submit_and_wait(
            run.api, job_input, timeout_s=run.settings.timeout_s, poll_interval_s=run.settings.poll_interval_s
        )
    except ClientError as exc:
        return {**row, "status": "fail", "error": exc.to_dict(), "wall_s": round(time.perf_counter() - t, 3)}
    problems, decoded = verify_outputs(result.output, run.registry.get(case.workflow), case.params)
    timings = (result.output or {}).get("timings") or {}
    total = timings.get("total_ms")
    generate_s = round(total / 1000, 3) if isinstance(total, int | float) else (result.execution_ms or 0) / 1000 or None
    if not problems and generate_s is not None:
        run.gen_seconds.setdefault(case.workflow, []).append((i + 1, generate_s))
    return {
        **row,
        "status": "fail" if problems else "pass",
        "job_id": result.job_id,
        "problems": problems,
        "outputs": decoded,
        "wall_s": round(result.wall_s, 3),
        "generate_s": generate_s,
        "delayTime_ms": result.delay_ms,
        "executionTime_ms": result.execution_ms,
        "queue_wait_ms": timings.get("queue_wait_ms"),
        "nodes_ms": timings.get("nodes_ms") or {},
        "node_types": _node_types(run.registry.get(case.workflow)),
        "params": {k: v for k, v in job_input.items() if k != "image_base64"},
    }


def _node_types(entry: Entry | None) -> dict[str, str]:
    """node id -> class_type of a registry workflow, to name the per-node timings."""
    try:
        return {str(k): str(v.get("class_type")) for k, v in entry.workflow().items()} if entry else {}
    except Exception:  # a broken entry was already reported by the dependency check
        return {}


def _cold_start_checks(run: _Run) -> list[dict[str, Any]]:
    target = run.suite.targets.get("cold_start_s")
    if target is None:
        entries = [run.registry.get(c.workflow) for c in run.suite.cases]
        target = min((e.timing["cold_start_s"] for e in entries if e and "cold_start_s" in e.timing), default=None)
    if target is None:
        return []
    if run.cold_start_ms is None:
        note = "the endpoint reports no delayTime (RunPod cloud does; the local dev API does not)"
        return [_check("timing:cold_start", "timing", "skip", note)]
    cold_s = run.cold_start_ms / 1000
    return [
        _check(
            "timing:cold_start",
            "timing",
            "pass" if cold_s <= target else "fail",
            f"first job's delayTime {cold_s:.2f} s (target < {target:g} s)",
            measured_s=cold_s,
            target_s=target,
        )
    ]


def split_runs(values: list[tuple[int, float]]) -> tuple[float | None, list[float]]:
    """(the first run's seconds, the warm runs' seconds): run 1 of a case loads its models, the rest don't.

    A failed first run leaves no first figure; every later successful run is warm."""
    first = next((s for n, s in values if n == 1), None)
    return first, [s for n, s in values if n != 1]


def timing_summary(run: _Run) -> dict[str, Any]:
    """Cold start, first-run model load and warm generation, reported apart (README "Validation suites")."""
    out: dict[str, Any] = {
        "cold_start_s": round(run.cold_start_ms / 1000, 3) if run.cold_start_ms is not None else None,
        "workflows": {},
    }
    for case in run.suite.cases:
        first, warm = split_runs(run.gen_seconds.get(case.workflow, []))
        p50 = statistics.median(warm) if warm else None
        out["workflows"][case.workflow] = {
            "first_run_s": first,
            "model_load_s": round(max(first - p50, 0.0), 3) if first is not None and p50 is not None else None,
            "warm_runs": len(warm),
            "warm_p50_s": round(p50, 3) if p50 is not None else None,
            "warm_max_s": max(warm) if warm else None,
        }
    return out


def _generate_timing_checks(run: _Run) -> list[dict[str, Any]]:
    """Per case: `generate_s` judged on the WARM runs (run 2 on), never on the first run's model load;
    `first_run_s` (a suite target only) judged on run 1."""
    checks = []
    for case in run.suite.cases:
        entry = run.registry.get(case.workflow)
        first, warm = split_runs(run.gen_seconds.get(case.workflow, []))
        first_target = run.suite.targets.get("first_run_s")
        if first_target is not None:
            name = f"timing:first_run:{case.workflow}"
            if first is None:
                checks.append(_check(name, "timing", "skip", "the first run did not succeed"))
            else:
                checks.append(
                    _check(
                        name,
                        "timing",
                        "pass" if first <= first_target else "fail",
                        f"first run (loads the models) {first:.2f} s (target < {first_target:g} s)",
                        measured_s=first,
                        target_s=first_target,
                    )
                )
        target_s = run.suite.targets.get("generate_s", (entry.timing.get("generate_s") if entry else None))
        if target_s is None:
            continue
        name = f"timing:generate:{case.workflow}"
        if warm:
            worst, p50 = max(warm), statistics.median(warm)
            message = (
                f"warm generation p50 {p50:.2f} s, max {worst:.2f} s over {len(warm)} run(s) (target < {target_s:g} s)"
            )
            if first is not None:
                message += f"; first run {first:.2f} s (model load, not judged)"
        elif first is not None:
            worst = first
            message = (
                f"only the first run to time: {first:.2f} s including its model load (target < {target_s:g} s); "
                "use --runs 2 or more for a warm figure"
            )
        else:
            checks.append(_check(name, "timing", "skip", "no successful run to time"))
            continue
        status = "pass" if worst <= target_s else "fail"
        checks.append(_check(name, "timing", status, message, measured_s=worst, target_s=target_s))
    return checks
