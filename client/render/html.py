"""Self-contained HTML reports (one file, no network, readable on a phone) for validate, bench and history.

The verdict comes first, then the key figures (each cell carries `data-key`, so a test can read the
page's numbers back and compare them with the JSON), the charts (client.render.charts: matplotlib SVG inline),
the outputs as thumbnails with their parameters, and every failure with its code, fix and log tail.
Callers redact the data first; client.render.report_files redacts the written text again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from client.commands.report import runs_by_workflow, workflow_figures
from client.render.charts import available as charts_available
from client.render.charts import hbar_chart, runs_chart, trend_chart

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1c2127;background:#f6f7f9}
main{max-width:960px;margin:0 auto;padding:12px}
h1{font-size:1.35em;margin:.2em 0}h2{font-size:1.1em;margin:1.4em 0 .4em}
.verdict{padding:12px 16px;border-radius:8px;color:#fff;font-weight:600}
.pass{background:#0f9960}.fail{background:#c23030}.neutral{background:#5c7080}
.card{background:#fff;border-radius:8px;padding:10px 12px;margin:10px 0;box-shadow:0 1px 2px #0002;overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92em}
table.wide{min-width:640px}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e1e8ed;vertical-align:top}
svg.chart{width:100%;height:auto;display:block}figure.chart-box{margin:8px 0}
.thumbs{display:flex;flex-wrap:wrap;gap:10px}.thumbs figure{margin:0;width:200px}
.thumbs img{max-width:100%;border-radius:4px;background:#ddd}figcaption{font-size:.8em;word-break:break-all}
pre{white-space:pre-wrap;word-break:break-all;background:#10161a;color:#d3d8de;padding:8px;border-radius:6px;font-size:.8em}
.note{color:#5c7080;font-size:.9em}code{font-size:.9em}
"""


def page(title: str, verdict: str, status: str, sections: Iterable[str]) -> str:
    """A whole document: the verdict banner, then the sections (already HTML)."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
        f'<h1>{escape(title)}</h1><div class="verdict {status}" id="verdict">{escape(verdict)}</div>'
        + "".join(sections)
        + "</main></body></html>\n"
    )


def section(heading: str, *parts: str) -> str:
    return f'<section class="card"><h2>{escape(heading)}</h2>{"".join(parts)}</section>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], css: str = "") -> str:
    """A table; a cell given as (key, value) gets data-key=key (the figures a test compares with the JSON)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                cells.append(f'<td data-key="{escape(cell[0])}">{escape(fmt(cell[1]))}</td>')
            else:
                cells.append(f"<td>{escape(fmt(cell))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):  # no exponent: a cost of $0.000012 reads as such
        return f"{value:.8f}".rstrip("0") if 0 < abs(value) < 1e-3 else f"{value:g}"
    return str(value)


def note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def chart(draw: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    """A chart, or a note saying why there is none (matplotlib not installed)."""
    if not charts_available():
        return note("Charts need matplotlib: pip install '.[report]' in your comfy-runpod checkout.")
    return f'<figure class="chart-box">{draw(*args, **kwargs)}</figure>'


def thumbnails(items: Iterable[tuple[str | None, str, dict[str, Any]]]) -> str:
    """Figures of (data URI, caption, parameters); an output that would not decode shows its caption only."""
    figures = []
    for uri, caption, params in items:
        img = f'<img src="{escape(uri)}" alt="{escape(caption)}">' if uri else note("no preview")
        text = escape(caption) + "".join(f"<br>{escape(k)}={escape(fmt(v))}" for k, v in params.items())
        figures.append(f"<figure>{img}<figcaption>{text}</figcaption></figure>")
    return f'<div class="thumbs">{"".join(figures)}</div>' if figures else note("no outputs")


def failure(title: str, error: dict[str, Any]) -> str:
    """One failure: code, message, fix and the worker's log tail when there is one."""
    details = error.get("details") or {}
    worker = found if isinstance(found := details.get("worker_error"), dict) else {}
    tail = details.get("logs_tail") or worker.get("logs_tail") or error.get("logs_tail") or []
    lines = tail if isinstance(tail, list) else [str(tail)]
    log = f"<pre>{escape(chr(10).join(str(x) for x in lines))}</pre>" if lines else ""
    return (
        f'<div class="failure"><p><b>{escape(title)}</b>: <code>{escape(str(error.get("code", "")))}</code> '
        f"{escape(str(error.get('message', '')))}</p><p>fix: {escape(str(error.get('fix') or '–'))}</p>{log}</div>"
    )


def _validate_charts(report: dict[str, Any], figures: dict[str, dict[str, Any]]) -> list[str]:
    parts, grouped = [], runs_by_workflow(report)
    for workflow, rows in grouped.items():
        timed = [r for r in rows if r.get("generate_s") is not None]
        if timed:
            colors = ["#2b7bb9" if r["status"] == "pass" else "#c23030" for r in timed]
            f = figures[workflow]
            parts.append(
                chart(
                    runs_chart,
                    f"Generation time per run: {workflow}",
                    [f"run {r['run']}" for r in timed],
                    [r["generate_s"] for r in timed],
                    p50=f["p50_s"],
                    p95=f["p95_s"],
                    colors=colors,
                )
            )
    rows = report.get("runs") or []
    points = [(f"{r['workflow']} {r['run']}", _seconds(r.get("delayTime_ms")), r.get("queue_wait_ms")) for r in rows]
    if report.get("cold_start_s") is not None:
        points.insert(0, ("health (cold)", report["cold_start_s"], None))
    parts += _start_and_queue_charts(
        points, "the endpoint reports no delayTime (RunPod cloud does; the local dev API does not)"
    )
    parts.append(_node_chart(rows))
    if figures:
        parts.append(
            chart(
                hbar_chart,
                "Success rate per workflow",
                list(figures),
                [f["success_rate"] for f in figures.values()],
                xlabel="runs with verified outputs",
                percent=True,
            )
        )
    return parts


def _seconds(ms: float | None) -> float | None:
    return ms / 1000 if ms is not None else None


def _start_and_queue_charts(points: list[tuple[str, float | None, float | None]], no_delay: str) -> list[str]:
    """Cold vs warm start (delayTime seconds; the first is the cold one) and ComfyUI queue time, per run."""
    delays = [(label, d) for label, d, _ in points if d is not None]
    parts = [note(f"Cold vs warm start: {no_delay}.")]
    if delays:
        colors = ["#d9822b"] + ["#2b7bb9"] * (len(delays) - 1)
        parts = [
            chart(
                runs_chart,
                "Cold vs warm start (RunPod delayTime; the first is cold)",
                [d[0] for d in delays],
                [d[1] for d in delays],
                colors=colors,
            )
        ]
    queued = [(label, q) for label, _, q in points if q is not None]
    if queued:
        parts.append(
            chart(
                runs_chart,
                "Queue time in ComfyUI per run",
                [q[0] for q in queued],
                [q[1] for q in queued],
                ylabel="milliseconds",
            )
        )
    return parts


def _node_chart(rows: list[dict[str, Any]]) -> str:
    """Per-node time of the slowest run (the worker's timings.nodes_ms), slowest nodes first."""
    timed = [r for r in rows if r.get("nodes_ms") and r.get("generate_s") is not None]
    if not timed:
        return note("No per-node timings in the responses.")
    slowest = max(timed, key=lambda r: r["generate_s"])
    types = slowest.get("node_types") or {}
    nodes = sorted(slowest["nodes_ms"].items(), key=lambda kv: -kv[1])[:15]
    labels = [f"{k} {types.get(k, '')}".strip() for k, _ in nodes]
    title = f"Per-node time of the slowest run: {slowest['workflow']} run {slowest['run']}"
    return chart(hbar_chart, title, labels, [round(v, 1) for _, v in nodes], xlabel="milliseconds")


def _validate_failures(report: dict[str, Any]) -> str:
    parts = []
    for r in report.get("runs") or []:
        title = f"{r['workflow']} run {r['run']}"
        if "error" in r:
            parts.append(failure(title, r["error"]))
        for problem in r.get("problems") or []:
            parts.append(
                failure(
                    title,
                    {
                        "code": "OUTPUT_MISMATCH",
                        "message": problem,
                        "fix": "Check the workflow's outputs against its registry entry.",
                    },
                )
            )
    for c in report["checks"]:
        if c["status"] == "fail" and c["group"] != "generate":
            parts.append(
                failure(
                    c["name"],
                    {"code": c["group"].upper(), "message": c["message"], "fix": (c.get("details") or {}).get("fix")},
                )
            )
    return "".join(parts) or note("No failures.")


def validate_html(report: dict[str, Any]) -> str:
    """The validate report as one HTML page."""
    counts, figures = report.get("counts", {}), workflow_figures(report)
    verdict = (
        f"{'PASSED' if report.get('passed') else 'FAILED'}: {counts.get('pass', 0)} passed, "
        f"{counts.get('fail', 0)} failed, {counts.get('skip', 0)} skipped"
    )
    summary = table(
        ["", ""],
        [
            ("target", report["target"]),
            ("started", report["started_at"]),
            ("took (s)", ("duration_s", report.get("duration_s"))),
            ("runs per workflow", report["runs_per_case"]),
            ("cold start (s)", ("cold_start_s", report.get("cold_start_s"))),
        ],
    )
    key_rows = [
        (
            w,
            (f"runs:{w}", f["runs"]),
            (f"success_rate:{w}", f["success_rate"]),
            (f"p50:{w}", f["p50_s"]),
            (f"p95:{w}", f["p95_s"]),
        )
        for w, f in figures.items()
    ]
    checks = table(
        ["check", "result", "seconds", "details"],
        [(c["name"], c["status"].upper(), c["seconds"], c["message"]) for c in report["checks"]],
        css="wide",  # scrolls sideways inside its card on a phone rather than squeezing the details
    )
    outputs = [
        (
            o.get("thumbnail"),
            f"{r['workflow']} run {r['run']}: {o.get('filename')}",
            {**(r.get("params") or {}), **{k: o[k] for k in ("width", "height", "frames") if k in o}},
        )
        for r in report.get("runs") or []
        for o in r.get("outputs") or []
    ]
    return page(
        f"Validation {report['suite']}",
        verdict,
        "pass" if report.get("passed") else "fail",
        [
            section("Summary", summary, note(report.get("description") or "")),
            section("Key figures (seconds)", table(["workflow", "runs", "success rate", "p50", "p95"], key_rows)),
            section("Charts", *_validate_charts(report, figures)),
            section("Outputs", thumbnails(outputs)),
            section("Failures", _validate_failures(report)),
            section("Checks", checks),
        ],
    )


def _bench_charts(result: dict[str, Any]) -> list[str]:
    rows = [("seq", r) for r in result.get("sequential") or []] + [("conc", r) for r in result.get("concurrent") or []]
    parts = []
    timed = [(f"{kind} {i + 1}", r) for i, (kind, r) in enumerate(rows) if r.get("generate_s") is not None]
    stats = (result.get("stats") or {}).get("sequential_generate_s") or {}
    if timed:
        parts.append(
            chart(
                runs_chart,
                "Generation time per run (worker total)",
                [t[0] for t in timed],
                [t[1]["generate_s"] for t in timed],
                p50=stats.get("p50"),
                p95=stats.get("p95"),
            )
        )
    points = [(f"{kind} {i + 1}", r.get("delay_s"), r.get("queue_wait_ms")) for i, (kind, r) in enumerate(rows)]
    no_delay = str((result.get("cold_start") or {}).get("note", "no delayTime")).rstrip(".")
    parts += _start_and_queue_charts(points, no_delay)
    named = [{**r, "workflow": result["workflow"], "run": label} for label, r in timed]
    parts.append(_node_chart(named))
    total = len(rows) + result.get("failures", 0)
    rate = len(rows) / total if total else 0.0
    parts.append(
        chart(
            hbar_chart,
            "Success rate",
            [result["workflow"]],
            [round(rate, 4)],
            xlabel="successful runs",
            percent=True,
        )
    )
    return parts


def bench_figures(result: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(label, data-key, value) of the bench page's key figures, taken from the result as they are."""
    stats, cold, cost = result.get("stats") or {}, result.get("cold_start") or {}, result.get("cost") or {}
    gen, wall = stats.get("sequential_generate_s") or {}, stats.get("sequential_wall_s") or {}
    return [
        ("generation p50 (s)", "p50", gen.get("p50")),
        ("generation p95 (s)", "p95", gen.get("p95")),
        ("wall p50 (s)", "wall_p50", wall.get("p50")),
        ("cold start delayTime (s)", "cold_start_s", cold.get("first_delay_s")),
        ("warm delayTime p50 (s)", "warm_delay_p50_s", cold.get("warm_delay_p50_s")),
        ("failed runs", "failures", result.get("failures")),
        ("throughput (outputs/min)", "throughput_per_min", result.get("throughput_per_min")),
        ("cost per output (USD)", "per_output_usd", cost.get("per_output_usd")),
    ]


def bench_html(result: dict[str, Any]) -> str:
    """The bench result as one HTML page."""
    ok = not result.get("failures")
    verdict = (
        f"{'ALL RUNS SUCCEEDED' if ok else str(result['failures']) + ' RUN(S) FAILED'}: {result['runs']} "
        f"sequential, {result['concurrent_runs']} at concurrency {result['concurrency']}"
    )
    cost = result.get("cost") or {}
    cost_text = (
        note(f"GPU {cost['gpu']} ({cost['worker_type']}) at ${cost['price_per_s']}/s; {cost['basis']}")
        if cost.get("price_per_s")
        else note(cost.get("note", "no GPU price given"))
    )
    figures = table(["measure", "value"], [(label, (key, value)) for label, key, value in bench_figures(result)])
    rows = (result.get("sequential") or []) + (result.get("concurrent") or [])
    shots = [(r.get("thumbnail"), f"job {r.get('job_id')}", result.get("params") or {}) for r in rows[:12]]
    fails = "".join(failure(f"run {f.get('run')}", f) for f in result.get("failed_runs") or []) or note("No failures.")
    return page(
        f"Benchmark {result['workflow']}",
        verdict,
        "pass" if ok else "fail",
        [
            section("Summary", table(["", ""], [("target", result["target"]), ("started", result["started_at"])])),
            section("Key figures", figures, cost_text),
            section("Charts", *_bench_charts(result)),
            section("Outputs", thumbnails(shots)),
            section("Failures", fails),
        ],
    )


def trend_html(data: dict[str, Any]) -> str:
    """Trend of one workflow over recorded runs: p50/p95, success rate, cold start, cost."""
    runs = data["runs"]
    labels = [f"#{r['run_id']}" for r in runs]
    parts = []
    if runs:
        parts += [
            chart(
                trend_chart,
                "Generation time over runs",
                labels,
                {"p50": [r["p50_s"] for r in runs], "p95": [r["p95_s"] for r in runs]},
                "seconds",
            ),
            chart(
                trend_chart,
                "Success rate over runs",
                labels,
                {"success rate": [r["success_rate"] for r in runs]},
                "fraction of runs",
            ),
        ]
        for key, title, unit in (
            ("cold_start_s", "Cold start (delayTime)", "seconds"),
            ("cost_per_output_usd", "Cost per output", "USD"),
        ):
            if any(r[key] is not None for r in runs):
                parts.append(chart(trend_chart, title, labels, {key: [r[key] for r in runs]}, unit))
    rows = [
        (
            (f"run_id:{r['run_id']}", r["run_id"]),
            r["kind"],
            r["name"],
            r["started_at"],
            "pass" if r["passed"] else "fail",
            (f"p50:{r['run_id']}", r["p50_s"]),
            (f"p95:{r['run_id']}", r["p95_s"]),
            (f"success_rate:{r['run_id']}", r["success_rate"]),
            r["cold_start_s"],
            r["cost_per_output_usd"],
        )
        for r in runs
    ]
    headers = ["run", "kind", "suite/workflow", "started", "verdict", "p50 s", "p95 s", "success", "cold s", "USD/out"]
    latest = runs[-1] if runs else None
    status = "neutral" if latest is None else ("pass" if latest["passed"] else "fail")
    verdict = f"{len(runs)} recorded run(s)" + (
        f"; latest #{latest['run_id']}: p50 {fmt(latest['p50_s'])} s, success {latest['success_rate']:.0%}"
        if latest
        else ""
    )
    return page(
        f"Trend {data['workflow']}",
        verdict,
        status,
        [
            section("Runs", note(f"target: {data.get('target') or 'any'}"), table(headers, rows)),
            section("Charts", *(parts or [note("No recorded runs yet.")])),
        ],
    )


def compare_html(data: dict[str, Any]) -> str:
    """Two recorded runs side by side."""
    a, b = data["a"], data["b"]
    heads = table(
        ["", f"A #{a['id']}", f"B #{b['id']}"],
        [(k, a[k], b[k]) for k in ("kind", "target", "name", "started_at", "passed")],
    )
    rows = [
        (
            r["workflow"],
            r["measure"],
            (f"a:{r['workflow']}:{r['measure']}", r["a"]),
            (f"b:{r['workflow']}:{r['measure']}", r["b"]),
            f"{r['change']:+.0%}" if r["change"] is not None else None,
        )
        for r in data["rows"]
    ]
    p50 = [r for r in data["rows"] if r["measure"] == "p50_s" and r["a"] is not None and r["b"] is not None]
    parts = (
        [
            chart(
                trend_chart,
                "p50 generation time: A vs B",
                [f"A #{a['id']}", f"B #{b['id']}"],
                {r["workflow"]: [r["a"], r["b"]] for r in p50},
                "seconds",
            )
        ]
        if p50
        else []
    )
    return page(
        f"Compare runs #{a['id']} and #{b['id']}",
        f"A #{a['id']} vs B #{b['id']}",
        "neutral",
        [
            section("Runs", heads),
            section("Figures", table(["workflow", "measure", "A", "B", "change"], rows), *parts),
        ],
    )
