"""Report files: validate → JSON + Markdown + JUnit XML + HTML; bench → JSON + Markdown + HTML. All redacted.

Output thumbnails (data URIs the commands attach to each output) go to the HTML page only.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.redact import redact, redact_data

_MARK = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(redact(text), encoding="utf-8")
    return path


def _json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"


def _write_report_set(
    data: dict[str, Any], directory: Path, files: list[tuple[str, str, Callable[[dict[str, Any]], str]]]
) -> dict[str, str]:
    """Each (kind, file name, renderer) written under `directory`, in order; kind -> path. The data is
    redacted first; only the HTML page gets the output thumbnails."""
    data = redact_data(data)
    plain = without_thumbnails(data)
    return {
        kind: str(_write(directory / name, render(data if kind == "html" else plain))) for kind, name, render in files
    }


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def validate_markdown(report: dict[str, Any]) -> str:
    verdict = "PASSED" if report.get("passed") else "FAILED"
    counts = report.get("counts", {})
    lines = [
        f"# Validation `{report['suite']}`: {verdict}",
        "",
        f"- target: {report['target']}",
        f"- started: {report['started_at']}, took {report.get('duration_s')} s",
        f"- checks: {counts.get('pass', 0)} passed, {counts.get('fail', 0)} failed, {counts.get('skip', 0)} skipped",
        f"- runs per workflow: {report['runs_per_case']}, required success rate {report['success_rate_required']:.0%}",
        "",
        report.get("description", ""),
        "",
        "| check | result | seconds | details |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_cell(c['name'])} | {_MARK[c['status']]} | {c['seconds']} | {_cell(c['message'])} |"
        for c in report["checks"]
    ]
    timing = report.get("timing") or {}
    if timing.get("workflows"):
        cold = timing.get("cold_start_s")
        lines += [
            "",
            "## Timing: cold start, first run, warm runs",
            "",
            f"Cold start (the first job's delayTime): {'not reported' if cold is None else f'{cold} s'}. "
            "The first run of a workflow loads its models; targets on generation judge the warm runs.",
            "",
            "| workflow | first run s | model load s | warm runs | warm p50 s | warm max s |",
            "|---|---|---|---|---|---|",
        ]
        for name, t in timing["workflows"].items():
            cells = [t.get(k) for k in ("first_run_s", "model_load_s", "warm_runs", "warm_p50_s", "warm_max_s")]
            lines.append(f"| {name} | " + " | ".join("" if v is None else str(v) for v in cells) + " |")
    if report.get("runs"):
        lines += [
            "",
            "## Runs",
            "",
            "| workflow | run | result | seed | generate s | wall s | job | problems |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in report["runs"]:
            problems = r.get("problems") or ([f"{r['error']['code']}: {r['error']['message']}"] if "error" in r else [])
            lines.append(
                f"| {r['workflow']} | {r['run']} | {_MARK[r['status']]} | {r.get('seed') or ''} | "
                f"{r.get('generate_s') if r.get('generate_s') is not None else ''} | {r.get('wall_s', '')} | "
                f"{r.get('job_id', '')} | {_cell('; '.join(problems))} |"
            )
    if report.get("deployment_findings"):
        lines += ["", "## Deployment findings (not part of the verdict)", ""]
        lines += [
            f"- **{f['severity']}** `{f['code']}`: {f['message']} — fix: {f['fix']}"
            for f in report["deployment_findings"]
        ]
    return "\n".join(lines) + "\n"


def validate_junit(report: dict[str, Any]) -> str:
    checks = report["checks"]
    suites = ET.Element("testsuites", name="comfy-runpod validate")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=f"validate.{report['suite']}",
        tests=str(len(checks)),
        failures=str(sum(c["status"] == "fail" for c in checks)),
        skipped=str(sum(c["status"] == "skip" for c in checks)),
        errors="0",
        time=str(report.get("duration_s", 0)),
        timestamp=report["started_at"],
    )
    for c in checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"validate.{report['suite']}.{c['group']}",
            name=c["name"],
            time=str(c["seconds"]),
        )
        if c["status"] == "fail":
            failure = ET.SubElement(case, "failure", message=c["message"][:500], type="ValidationFailure")
            failure.text = json.dumps(c.get("details") or {}, indent=2, default=str)
        elif c["status"] == "skip":
            ET.SubElement(case, "skipped", message=c["message"][:500])
        else:
            ET.SubElement(case, "system-out").text = c["message"]
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def without_thumbnails(value: Any) -> Any:
    """A copy of a result without the outputs' `thumbnail` data URIs (kept for the HTML page only)."""
    if isinstance(value, dict):
        return {k: without_thumbnails(v) for k, v in value.items() if k != "thumbnail"}
    if isinstance(value, list):
        return [without_thumbnails(v) for v in value]
    return value


def write_validate_reports(report: dict[str, Any], directory: Path) -> dict[str, str]:
    from client.render.html import validate_html

    return _write_report_set(
        report,
        directory,
        [
            ("json", "report.json", _json_text),
            ("markdown", "report.md", validate_markdown),
            ("junit", "junit.xml", validate_junit),
            ("html", "report.html", validate_html),
        ],
    )


def _stats_row(name: str, stats: dict[str, Any] | None) -> str:
    if not stats:
        return f"| {name} | – | – | – | – | – |"
    return f"| {name} | {stats['n']} | {stats['p50']} | {stats['p95']} | {stats['max']} | {stats['mean']} |"


def _sec(value: Any) -> str:
    return f"{value} s" if isinstance(value, int | float) else "–"


def bench_markdown(result: dict[str, Any]) -> str:
    cold, cost = result.get("cold_start") or {}, result.get("cost") or {}
    lines = [
        f"# Benchmark `{result['workflow']}`",
        "",
        f"- target: {result['target']}",
        f"- when: {result['started_at']}; {result['runs']} sequential runs, {result['concurrent_runs']} runs at "
        f"concurrency {result['concurrency']}; {result['failures']} failed",
        "",
        "## Cold vs warm start (RunPod delayTime: queue + worker start)",
        "",
        f"- first job after idle: delayTime {_sec(cold.get('first_delay_s'))}"
        f" (executionTime {_sec(cold.get('first_execution_s'))})",
        f"- warm jobs, median delayTime: {_sec(cold.get('warm_delay_p50_s'))}",
    ]
    if phases := cold.get("worker_phases_s"):
        packs = phases.get("pack_imports_s") or {}
        steps = ", ".join(f"{k} {v} s" for k, v in phases.items() if k != "pack_imports_s")
        lines.append(f"- worker start phases (since its entrypoint): {steps}")
        if packs:
            slowest = sorted(packs.items(), key=lambda kv: -kv[1])[:5]
            lines.append("- slowest custom node packs to import: " + ", ".join(f"{k} {v} s" for k, v in slowest))
    if cold.get("note"):
        lines.append(f"- note: {cold['note']}")
    lines += [
        "",
        "## Generation (seconds)",
        "",
        "| measure | n | p50 | p95 | max | mean |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("sequential_wall_s", "sequential: client wall time"),
        ("sequential_generate_s", "sequential: worker total"),
        ("concurrent_wall_s", f"concurrency {result['concurrency']}: client wall time"),
        ("concurrent_generate_s", f"concurrency {result['concurrency']}: worker total"),
    ):
        lines.append(_stats_row(label, result["stats"].get(key)))
    if result.get("throughput_per_min") is not None:
        lines += ["", f"Throughput at concurrency {result['concurrency']}: {result['throughput_per_min']} outputs/min."]
    lines += ["", "## Cost per output", ""]
    if cost.get("price_per_s"):
        lines += [
            f"- GPU: {cost['gpu']} ({cost['worker_type']}), ${cost['price_per_s']}/s (source: {cost['price_source']})",
            f"- billed seconds per output (p50): {cost['billed_s_p50']} s → **${cost['per_output_usd']:.6f}** per "
            f"output (${cost['per_1000_usd']:.3f} per 1000)",
        ]
        if cost.get("cold_start_usd") is not None:
            lines.append(f"- a cold start adds about ${cost['cold_start_usd']:.6f}")
        lines.append(f"- basis: {cost['basis']}")
    else:
        lines.append(f"- {cost.get('note', 'no price given')}")
    return "\n".join(lines) + "\n"


def write_bench_reports(result: dict[str, Any], directory: Path) -> dict[str, str]:
    from client.render.html import bench_html

    return _write_report_set(
        result,
        directory,
        [
            ("json", "bench.json", _json_text),
            ("markdown", "bench.md", bench_markdown),
            ("html", "bench.html", bench_html),
        ],
    )


def write_history_report(data: dict[str, Any], directory: Path, name: str) -> dict[str, str]:
    """`report` (trend) or `report --compare` (compare): <name>.json + <name>.html."""
    from client.render.html import compare_html, trend_html

    data = redact_data(data)
    page = compare_html(data) if name == "compare" else trend_html(data)
    paths = {
        "json": _write(directory / f"{name}.json", _json_text(data)),
        "html": _write(directory / f"{name}.html", page),
    }
    return {k: str(v) for k, v in paths.items()}
