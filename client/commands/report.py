"""History figures of validate/bench runs, the trend and compare views, and the regression gate (data only)."""

from __future__ import annotations

import re
from typing import Any

from client.commands.bench import summarize
from client.errors import UsageError
from client.history import METRICS, History


def runs_by_workflow(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A validate report's generate rows, per workflow in suite order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in report.get("runs") or []:
        grouped.setdefault(row["workflow"], []).append(row)
    return grouped


def workflow_figures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per workflow of a validate report: runs, success rate, generation p50/p95 (successful runs only)."""
    figures = {}
    for workflow, rows in runs_by_workflow(report).items():
        ok = [r for r in rows if r["status"] == "pass"]
        stats = summarize([r["generate_s"] for r in ok if r.get("generate_s") is not None]) or {}
        delays = [r["delayTime_ms"] / 1000 for r in rows if r.get("delayTime_ms") is not None]
        figures[workflow] = {
            "runs": len(rows),
            "success_rate": round(len(ok) / len(rows), 4) if rows else 0.0,
            "p50_s": stats.get("p50"),
            "p95_s": stats.get("p95"),
            "delay_p50_s": (summarize(delays) or {}).get("p50"),
        }
    return figures


def validate_record(report: dict[str, Any], report_dir: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run, metrics per workflow) of a validate report, as history stores them."""
    metrics = {wf: {**f, "cost_per_output_usd": None} for wf, f in workflow_figures(report).items()}
    run = {
        "kind": "validate",
        "target": report["target"],
        "name": report["suite"],
        "started_at": report["started_at"],
        "passed": report["passed"],
        "cold_start_s": report.get("cold_start_s"),
        "report_dir": report_dir,
    }
    return run, metrics


def bench_record(result: dict[str, Any], report_dir: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run, metrics) of a bench result: its one workflow."""
    stats = (result.get("stats") or {}).get("sequential_generate_s") or {}
    cold, cost = result.get("cold_start") or {}, result.get("cost") or {}
    done = len(result.get("sequential") or []) + len(result.get("concurrent") or [])
    total = done + int(result.get("failures") or 0)
    metrics = {
        "runs": total,
        "success_rate": round(done / total, 4) if total else 0.0,
        "p50_s": stats.get("p50"),
        "p95_s": stats.get("p95"),
        "delay_p50_s": cold.get("warm_delay_p50_s"),
        "cost_per_output_usd": cost.get("per_output_usd"),
    }
    run = {
        "kind": "bench",
        "target": result["target"],
        "name": result["workflow"],
        "started_at": result["started_at"],
        "passed": not result.get("failures"),
        "cold_start_s": cold.get("first_delay_s"),
        "report_dir": report_dir,
    }
    return run, {result["workflow"]: metrics}


def parse_threshold(text: str) -> float:
    """A percentage: '20%' or '20' → 0.20 ('0.5' is half a percent)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text or "")
    if not match:
        raise UsageError(f"--max-regression {text!r}: expected a percentage such as 20%")
    return float(match.group(1)) / 100


def find_baseline(history: History, spec: str, *, target: str, suite: str) -> dict[str, Any] | None:
    """`last` → the latest validate run of this suite on this target (None when there is none); an id → that run."""
    if spec == "last":
        return history.last("validate", target, suite)
    if not spec.isdigit():
        raise UsageError(f"--baseline {spec!r}: expected last or a run id (see `comfy-runpod report`)")
    run = history.get(int(spec))
    if run is None:
        raise UsageError(f"--baseline {spec}: no such run in {history.path}", code="BASELINE_NOT_FOUND")
    return run


def _gate(name: str, now: float | None, before: float | None, limit: float, *, higher_is_worse: bool = True) -> dict:
    from client.commands.validate import _check

    if now is None or before is None:
        return _check(name, "regression", "skip", "not measured in both runs", current=now, baseline=before)
    if higher_is_worse:
        change = round((now - before) / before, 4) if before > 0 else None
        bad = now > before if change is None else change > limit
        shown = f"{change:+.0%}" if change is not None else "from zero"
        text = f"{now:g} s vs baseline {before:g} s ({shown}, allowed +{limit:.0%})"
    else:
        change = now - before
        bad, text = now < before, f"{now:.0%} vs baseline {before:.0%}"
    return _check(name, "regression", "fail" if bad else "pass", text, current=now, baseline=before, change=change)


def regression_checks(report: dict[str, Any], baseline: dict[str, Any] | None, limit: float) -> list[dict[str, Any]]:
    """Check rows comparing this validate report with a baseline run: p50 generation and cold start may be
    at most `limit` worse, the success rate must not drop. No baseline yet: one skipped row says so."""
    from client.commands.validate import _check

    if baseline is None:
        return [_check("regression", "regression", "skip", "no earlier run of this suite on this target to compare")]
    _, metrics = validate_record(report, None)
    rows = [_gate("regression:cold_start", report.get("cold_start_s"), baseline.get("cold_start_s"), limit)]
    for wf, now in metrics.items():
        before = baseline["metrics"].get(wf) or {}
        rows.append(_gate(f"regression:generate_p50:{wf}", now["p50_s"], before.get("p50_s"), limit))
        rows.append(
            _gate(
                f"regression:success_rate:{wf}",
                now["success_rate"],
                before.get("success_rate"),
                limit,
                higher_is_worse=False,
            )
        )
    for row in rows:
        row["details"]["baseline_run"] = baseline["id"]
    return rows


def apply_checks(report: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The report with more check rows: verdict, exit code and counts recomputed (unusable stays 2)."""
    checks = report["checks"] + rows
    failed = any(c["status"] == "fail" for c in checks)
    exit_code = 2 if report["exit_code"] == 2 else (1 if failed else 0)
    counts = {s: sum(c["status"] == s for c in checks) for s in ("pass", "fail", "skip")}
    return {**report, "checks": checks, "passed": exit_code == 0, "exit_code": exit_code, "counts": counts}


def trend(history: History, workflow: str, target: str | None, limit: int) -> dict[str, Any]:
    """The last `limit` runs measuring a workflow (oldest first): p50/p95, success rate, cold start, cost."""
    runs = history.trend(workflow, target, limit)
    points = [
        {
            "run_id": r["id"],
            "kind": r["kind"],
            "name": r["name"],
            "target": r["target"],
            "started_at": r["started_at"],
            "passed": r["passed"],
            "cold_start_s": r["cold_start_s"],
            **r["metrics"][workflow],
        }
        for r in runs
    ]
    return {"workflow": workflow, "target": target, "runs": points}


def compare(history: History, a: str, b: str) -> dict[str, Any]:
    """Two recorded runs side by side, per workflow both measured (or either)."""
    found = []
    for spec in (a, b):
        run = history.get(int(spec)) if spec.isdigit() else None
        if run is None:
            raise UsageError(f"--compare: no run {spec!r} in {history.path}", code="BASELINE_NOT_FOUND")
        found.append(run)
    first, second = found
    rows = []
    for wf in sorted(set(first["metrics"]) | set(second["metrics"])):
        ma, mb = first["metrics"].get(wf) or {}, second["metrics"].get(wf) or {}
        rows += [{"workflow": wf, "measure": k, "a": ma.get(k), "b": mb.get(k)} for k in METRICS]
    rows.append({"workflow": "", "measure": "cold_start_s", "a": first["cold_start_s"], "b": second["cold_start_s"]})
    for row in rows:
        a_val, b_val = row["a"], row["b"]
        ok = isinstance(a_val, int | float) and isinstance(b_val, int | float)
        row["change"] = round((b_val - a_val) / a_val, 4) if ok and a_val else None
    return {"a": _head(first), "b": _head(second), "rows": rows}


def _head(run: dict[str, Any]) -> dict[str, Any]:
    return {k: run[k] for k in ("id", "kind", "target", "name", "started_at", "passed", "cold_start_s")}
