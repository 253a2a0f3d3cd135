"""The human text of each command but `volume` (client.render.volume_text): (console, data, exit code) -> printed.

Loaded by client.render only when a command's text is printed (the JSON envelope needs none of it).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from client.render.text import esc, findings, ms, size, workflow_table, yn


def _health(c: Any, d: dict[str, Any], code: int) -> None:
    h = d["health"]
    mark = "[bold green]✓ healthy[/]" if d["healthy"] else "[bold red]✗ unhealthy[/]"
    c.print(f"{mark} — {esc(d['target'])} (round trip {d['round_trip_ms']:.0f} ms)")
    rows = [
        (
            "ComfyUI",
            f"{yn(h.get('comfyui_up'), 'up', 'DOWN')}"
            + (f" ({h['comfyui_version']})" if h.get("comfyui_version") else ""),
        ),
        ("disk free", f"{h['disk_free_gb']} GB" if h.get("disk_free_gb") is not None else "–"),
        ("volume", yn(h.get("volume_mounted"), "mounted", "not mounted")),
    ]
    if (models := h.get("models")) and models.get("by_source"):  # where the registered models are served from
        rows.append(("models", ", ".join(f"{src} {n}" for src, n in models["by_source"].items())))
    if h.get("handler_version"):
        rows.append(("worker", f"handler {h['handler_version']}, up {h.get('uptime_s', '–')} s"))
    if h.get("gpu"):
        g = h["gpu"]
        rows.append(("GPU", f"{g.get('name')}, {g.get('vram_total_gb')} GB ({g.get('vram_free_gb')} GB free)"))
    rows.append(("job", f"{d['job_id']}, worker took {ms((h.get('timings') or {}).get('total_ms'))}"))
    delay = d["timing"]["runpod"]["delayTime_ms"]
    if delay is not None:
        rows.append(
            ("RunPod", f"queue/cold start {ms(delay)}, execution {ms(d['timing']['runpod']['executionTime_ms'])}")
        )
    for key, value in rows:
        c.print(f"  {key:<10} {esc(str(value))}")
    for note in h.get("limitations") or []:
        c.print(f"  [dim]note: {esc(note)}[/]")


def _diagnose(c: Any, d: dict[str, Any], code: int) -> None:
    r = d["response"]
    c.print(f"[bold]Diagnose[/] — {esc(d['target'])} ({d['round_trip_ms'] / 1000:.1f} s)")
    for key, value in _deployment_lines(r):
        c.print(f"  {key:<10} {value}")
    checks = r.get("workflow_checks") or {}
    if checks:
        c.print()
        c.print(workflow_table(checks))
    for note in d.get("notes") or []:
        c.print(f"  [dim]note: {esc(note)}[/]")
    findings(c, d["findings"])
    s = d["summary"]
    verdict = "[bold green]OK[/]" if code == 0 else "[bold red]PROBLEMS[/]"
    c.print(f"\n{verdict}: {s['error']} error(s), {s['warning']} warning(s), {s['info']} info → exit {code}")


def _deployment_lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, rich text) rows: ComfyUI, disks, volume, packs, models, loads, nodes — each only when the
    report has it."""
    system = r.get("system") or {}
    devices = ", ".join(str(dev.get("name") or dev.get("type")) for dev in system.get("devices") or []) or "–"
    lines = [
        (
            "ComfyUI",
            f"{'reachable' if r.get('comfyui_reachable') else '[red]NOT reachable[/]'}"
            f" · version {system.get('comfyui_version', '–')} · handler {system.get('handler_version') or '–'}"
            f" · devices {esc(devices)}",
        )
    ]
    if disks := r.get("disks") or []:
        free = [f"{x['label']} {x.get('free_gb')}/{x.get('total_gb')} GB free" for x in disks]
        lines.append(("disks", " · ".join(free)))
    vol = r.get("volume") or {}
    if vol.get("mounted") is not None:
        layouts = ", ".join(vol.get("layouts") or []) or "no model folders"
        where = f"mounted at {vol.get('path')} ({layouts})" if vol.get("mounted") else "not mounted"
        lines.append(("volume", esc(where)))
    packs = (r.get("custom_nodes") or {}).get("packs") or []
    failed = (r.get("custom_nodes") or {}).get("failed") or []
    if packs or failed:
        broken = f", [red]{len(failed)} failed[/]: {', '.join(failed)}" if failed else ""
        lines.append(("packs", f"{len(packs)} custom node pack(s) in the start-up log{broken}"))
    lines += _model_source_lines(r.get("model_sources") or {})
    nc = r.get("node_check") or {}
    if nc:
        missing = nc.get("required_missing") or []
        lacking = ", ".join(f"{m['node']} ({m.get('pack') or '?'})" for m in missing)
        lines.append(
            (
                "nodes",
                f"{len(nc.get('required_available') or [])} nodes the whole registry needs are available"
                + (f", [red]{len(missing)} missing[/]: {lacking}" if missing else ""),
            )
        )
    return lines


def _model_source_lines(ms_: dict[str, Any]) -> list[tuple[str, str]]:
    """Where the registered models are served from (each once), and the slowest first loads."""
    served = {
        f"{m['folder']}/{m['name']}": m["source"] for w in (ms_.get("workflows") or {}).values() for m in w["models"]
    }
    lines = []
    if served:
        sources = list(served.values())
        counts = " · ".join(f"{src} {sources.count(src)}" for src in ("image", "cache", "volume", "missing"))
        cache = ms_.get("cache") or {}
        repos = ", ".join(cache.get("repos") or []) or "no registered repository"
        lines.append(("models", counts + (f" · RunPod cache: {esc(repos)}" if cache.get("present") else "")))
    loads = sorted((ms_.get("first_loads") or {}).items(), key=lambda kv: -kv[1]["ms"])[:5]
    if loads:
        lines.append(("loads", " · ".join(f"{esc(k)} {ms(v['ms'])} ({v['source']})" for k, v in loads)))
    return lines


def _generate(c: Any, d: dict[str, Any], code: int) -> None:
    t = d.get("timing") or {}
    client = t.get("client") or {}
    runpod = t.get("runpod") or {}
    worker = t.get("worker") or {}
    if d.get("reused"):
        head = f"same idempotency key: nothing submitted; job {d['job_id']} ({esc(str(d['workflow']))}) already ran"
    else:
        how = "re-attached to" if d.get("attached") else "ran"
        took = f" in {client['wall_s']:.2f} s" if isinstance(client.get("wall_s"), int | float) else ""
        head = f"{how} job {d['job_id']} ({esc(str(d['workflow']))}){took}"
    c.print(f"[bold green]✓[/] {head}")
    c.print(f"  saved to {esc(str(d['directory']))}/")
    for o in d.get("outputs") or []:
        dims = f"{o['width']}×{o['height']}" if o.get("width") else ""
        frames = f"{o['frames']} frames @ {o.get('fps')} fps" if o.get("frames") else ""
        name = esc(str(o.get("saved_as") or o.get("filename")))
        c.print(f"    {name}  {o.get('kind')}  {dims}  {frames}  {size(o.get('size_bytes'))}")
    parts = []
    if worker:
        parts.append(
            f"worker total {ms(worker.get('total_ms'))} (execution {ms(worker.get('execution_ms'))}, "
            f"queue in ComfyUI {ms(worker.get('queue_wait_ms'))}, encode {ms(worker.get('encode_ms'))})"
        )
    if runpod.get("delayTime_ms") is not None or runpod.get("executionTime_ms") is not None:
        parts.append(f"RunPod delay {ms(runpod.get('delayTime_ms'))}, execution {ms(runpod.get('executionTime_ms'))}")
    if parts:
        c.print("  timings: " + "; ".join(parts))


def _jobs(c: Any, d: dict[str, Any], code: int) -> None:
    from rich.table import Table

    if "jobs" in d and isinstance(d["jobs"], list):
        c.print(f"[bold]Jobs[/] in {esc(d['ledger'])}" + (f" for {esc(d['endpoint'])}" if d.get("endpoint") else ""))
        table = Table(show_edge=False, box=None, header_style="bold")
        for col in ("created", "job id", "key", "workflow", "status", "output"):
            table.add_column(col)
        for j in d["jobs"]:
            table.add_row(
                j["created_at"],
                j.get("job_id") or "–",
                j.get("idempotency_key") or "",
                j.get("workflow") or "",
                j.get("status") or j.get("state"),
                esc(j.get("output_dir") or ""),
            )
        c.print(table if d["jobs"] else "  (none)")
        return
    if "workers" in d:
        c.print(f"[bold]Endpoint health[/] — {esc(d['target'])}")
        c.print("  workers  " + ", ".join(f"{k} {v}" for k, v in d["workers"].items()))
        c.print("  jobs     " + ", ".join(f"{k} {v}" for k, v in d["jobs"].items()))
        return
    if "stream" in d:
        c.print(f"job {d['job_id']}: [bold]{d['status']}[/], {len(d['stream'])} streamed output(s)")
        for chunk in d["stream"]:
            c.print("  " + esc(chunk if isinstance(chunk, str) else json.dumps(chunk, default=str)[:500]))
        return
    if "status" in d:
        c.print(
            f"job {d['job_id']}: [bold]{d['status']}[/]"
            + (
                f" (delay {ms(d.get('delayTime_ms'))}, execution {ms(d.get('executionTime_ms'))})"
                if d.get("delayTime_ms") is not None
                else ""
            )
        )
        err = d.get("worker_error")
        if err:
            c.print(f"  [red]{err.get('error_code')}[/]: {esc(str(err.get('error_message')))}")
            if err.get("fix"):
                c.print(f"  fix: {esc(str(err['fix']))}")
        if d.get("ledger") and d["ledger"].get("output_dir"):
            c.print(f"  outputs: {esc(d['ledger']['output_dir'])}")
        return
    c.print(f"job {d['job_id']}: {esc(json.dumps(d.get('answer')))}")


def _validate(c: Any, d: dict[str, Any], code: int) -> None:
    from rich.table import Table

    r = d["report"]
    verdict = "[bold green]PASSED[/]" if r["passed"] else "[bold red]FAILED[/]"
    c.print(f"Validation [bold]{r['suite']}[/] {verdict} — {esc(r['target'])} ({r.get('duration_s')} s)")
    table = Table(show_edge=False, box=None, header_style="bold")
    for col in ("check", "result", "s", "details"):
        table.add_column(col)
    colors = {"pass": "green", "fail": "red", "skip": "yellow"}
    for chk in r["checks"]:
        table.add_row(
            chk["name"],
            f"[{colors[chk['status']]}]{chk['status'].upper()}[/]",
            f"{chk['seconds']:.2f}",
            esc(chk["message"]),
        )
    c.print(table)
    for f in r.get("deployment_findings") or []:
        c.print(f"  [dim]deployment {f['severity']}: {f['code']}: {esc(f['message'])}[/]")
    for kind, path in (d.get("reports") or {}).items():
        c.print(f"  {kind:<8} {esc(path)}")
    c.print(f"exit {code}")


def _bench(c: Any, d: dict[str, Any], code: int) -> None:
    from client.render.report_files import bench_markdown

    r = d["result"]
    c.print(bench_markdown(r), markup=False)
    for kind, path in (d.get("reports") or {}).items():
        c.print(f"  {kind:<8} {esc(path)}")


def _report(c: Any, d: dict[str, Any], code: int) -> None:
    if "compare" in d:
        cmp = d["compare"]
        c.print(f"Run #{cmp['a']['id']} vs #{cmp['b']['id']}")
        for row in cmp["rows"]:
            change = f" ({row['change']:+.0%})" if row.get("change") is not None else ""
            c.print(f"  {row['workflow']:<20} {row['measure']:<20} {row['a']} → {row['b']}{change}", markup=False)
    else:
        t = d["trend"]
        c.print(f"Trend of {t['workflow']}: {len(t['runs'])} recorded run(s)", markup=False)
        for p in t["runs"]:
            c.print(
                f"  #{p['run_id']} {p['started_at']} {p['kind']} {'pass' if p['passed'] else 'FAIL'} "
                f"p50 {p['p50_s']} s p95 {p['p95_s']} s success {p['success_rate']:.0%} cold {p['cold_start_s']}",
                markup=False,
            )
    for kind, path in (d.get("reports") or {}).items():
        c.print(f"  {kind:<8} {esc(path)}")


HUMAN: dict[str, Callable[[Any, dict[str, Any], int], None]] = {
    "report": _report,
    "health": _health,
    "diagnose": _diagnose,
    "generate": _generate,
    "jobs": _jobs,
    "validate": _validate,
    "bench": _bench,
}
