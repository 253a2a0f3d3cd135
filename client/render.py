"""The one renderer: human text (rich) or a versioned JSON envelope, on stdout; progress on stderr.

Text is built first (into a string), redacted, then written: nothing the client prints can hold the
API key. JSON envelope: {"schema", "command", "ok", "exit_code", "result" | "error"}.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from client.errors import ClientError
from client.jobflow import JobUpdate
from client.redact import redact, redact_data

SCHEMA = "comfy-runpod.client/1"
_SEV_MARK = {"error": ("✗", "red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}


def _size(n: Any) -> str:
    if not isinstance(n, int | float):
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "–"


def _yn(value: Any, yes: str = "yes", no: str = "no") -> str:
    return "–" if value is None else (yes if value else no)


class Renderer:
    def __init__(self, *, json_mode: bool = False, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = _isatty(self.out) and "NO_COLOR" not in os.environ

    # -- output -------------------------------------------------------------------------------

    def result(self, command: str, data: dict[str, Any], exit_code: int) -> None:
        if self.json_mode:
            envelope = {
                "schema": SCHEMA,
                "command": command,
                "ok": exit_code == 0,
                "exit_code": exit_code,
                "result": redact_data(data),
            }
            self._write(json.dumps(envelope, indent=2, default=str) + "\n")
            return
        build = _text_builder(command)
        self._write(self._build(lambda c: build(c, data, exit_code)) if build else json.dumps(data, indent=2) + "\n")

    def error(self, command: str, exc: ClientError) -> None:
        if self.json_mode:
            envelope = {
                "schema": SCHEMA,
                "command": command,
                "ok": False,
                "exit_code": exc.exit_code,
                "error": redact_data(exc.to_dict()),
            }
            self._write(json.dumps(envelope, indent=2, default=str) + "\n")
            return
        self._write(self._build(lambda c: _error(c, exc)))

    def note(self, message: str) -> None:
        """A line of progress on stderr (never on stdout, which may be JSON)."""
        self.err.write(redact(message) + "\n")
        self.err.flush()

    def job_progress(self, label: str = "job") -> ProgressLine:
        return ProgressLine(self.err, label)

    # -- plumbing -----------------------------------------------------------------------------

    def _build(self, body: Callable[[Any], None]) -> str:
        from rich.console import Console

        buf = io.StringIO()
        width = 160  # not a terminal: wide enough that ids and paths are not cut
        if self.color:
            try:
                width = os.get_terminal_size(self.out.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = 100
        console = Console(
            file=buf,
            force_terminal=self.color,
            no_color=not self.color,
            width=width,
            highlight=False,
            soft_wrap=not self.color,
            emoji=False,
        )
        body(console)
        return buf.getvalue()

    def _write(self, text: str) -> None:
        self.out.write(redact(text))
        self.out.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressLine:
    """Live job status on stderr: a spinner line on a terminal, one line per state change otherwise."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self.stream, self.label = stream, label
        self.tty = _isatty(stream)
        self._status: Any = None
        self._last: str | None = None

    def __enter__(self) -> ProgressLine:
        if self.tty:
            from rich.console import Console

            self._status = Console(file=self.stream, highlight=False).status(f"{self.label}: submitting…")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def submitted(self, job_id: str) -> None:
        self._line(f"{self.label} {job_id} submitted")

    def __call__(self, update: JobUpdate) -> None:
        text = f"{self.label} {update.job_id}: {update.status} {update.elapsed_s:5.1f} s"
        progress = update.progress
        if isinstance(progress, dict):
            parts = []
            if progress.get("nodes_total"):
                parts.append(f"nodes {progress.get('nodes_done')}/{progress.get('nodes_total')}")
            if progress.get("node") is not None:
                step = f" step {progress['value']}/{progress['max']}" if progress.get("max") else ""
                parts.append(f"node {progress['node']}{step}")
            if parts:
                text += " · " + " · ".join(parts)
        elif isinstance(progress, str) and progress:
            text += f" · {progress[:80]}"
        if self._status is not None:
            self._status.update(redact(text))
        elif update.status != self._last and update.status in ("IN_QUEUE", "IN_PROGRESS"):
            self._line(text)  # one line per pending state; the result itself is printed on stdout
        self._last = update.status

    def _line(self, text: str) -> None:
        if self._status is not None:
            self._status.console.print(redact(text), highlight=False)
        else:
            self.stream.write(redact(text) + "\n")
            self.stream.flush()


# -- human renderers (console, data, exit code) ---------------------------------------------------


def _error(c: Any, exc: ClientError) -> None:
    c.print(f"[bold red]✗ {exc.code}[/]: {_esc(exc.message)}")
    if exc.fix:
        c.print(f"  [bold]fix:[/] {_esc(exc.fix)}")
    details = exc.details or {}
    if details.get("job_id"):
        c.print(f"  job: {details['job_id']}")
    cancel = details.get("cancel")
    if isinstance(cancel, dict):
        c.print(
            "  cancel: " + ("sent" if cancel.get("sent") else f"not sent ({cancel.get('error', {}).get('message')})")
        )
    worker = details.get("worker_error") or {}
    for f in (worker.get("findings") or [])[:10]:  # the specific findings behind a refused job, first
        where = f" node {f['node_id']}" + (f" {f['input']}" if f.get("input") else "") if f.get("node_id") else ""
        c.print(f"  • {f.get('code')}{where}: {_esc(str(f.get('message')))}")
        if f.get("fix"):
            c.print(f"    fix: {_esc(str(f['fix']))}")
    inner = worker.get("details") or {}
    for node in (inner.get("node_errors") or [])[:5] if isinstance(inner, dict) else []:
        c.print(
            f"  node {node.get('node_id')} ({node.get('class_type')}): {_esc(str(node.get('message')))} "
            f"{_esc(str(node.get('details') or ''))}"
        )
    tail = worker.get("logs_tail") or []
    if tail:
        c.print("  ComfyUI log (last lines):")
        for line in tail[-12:]:
            c.print(f"    | {_esc(str(line))}", soft_wrap=True)


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _health(c: Any, d: dict[str, Any], code: int) -> None:
    h = d["health"]
    mark = "[bold green]✓ healthy[/]" if d["healthy"] else "[bold red]✗ unhealthy[/]"
    c.print(f"{mark} — {_esc(d['target'])} (round trip {d['round_trip_ms']:.0f} ms)")
    rows = [
        (
            "ComfyUI",
            f"{_yn(h.get('comfyui_up'), 'up', 'DOWN')}"
            + (f" ({h['comfyui_version']})" if h.get("comfyui_version") else ""),
        ),
        ("disk free", f"{h['disk_free_gb']} GB" if h.get("disk_free_gb") is not None else "–"),
        ("volume", _yn(h.get("volume_mounted"), "mounted", "not mounted")),
    ]
    if h.get("handler_version"):
        rows.append(("worker", f"handler {h['handler_version']}, up {h.get('uptime_s', '–')} s"))
    if h.get("gpu"):
        g = h["gpu"]
        rows.append(("GPU", f"{g.get('name')}, {g.get('vram_total_gb')} GB ({g.get('vram_free_gb')} GB free)"))
    rows.append(("job", f"{d['job_id']}, worker took {_ms((h.get('timings') or {}).get('total_ms'))}"))
    delay = d["timing"]["runpod"]["delayTime_ms"]
    if delay is not None:
        rows.append(
            ("RunPod", f"queue/cold start {_ms(delay)}, execution {_ms(d['timing']['runpod']['executionTime_ms'])}")
        )
    for key, value in rows:
        c.print(f"  {key:<10} {_esc(str(value))}")
    for note in h.get("limitations") or []:
        c.print(f"  [dim]note: {_esc(note)}[/]")


def _findings(c: Any, findings: list[dict[str, Any]]) -> None:
    for severity, title in (("error", "Errors"), ("warning", "Warnings"), ("info", "Info")):
        group = [f for f in findings if f.get("severity") == severity]
        if not group:
            continue
        mark, color = _SEV_MARK[severity]
        c.print(f"\n[bold {color}]{title} ({len(group)})[/]")
        for f in group:
            where = " ".join(
                part
                for part in (
                    f"[{f['workflow']}]" if f.get("workflow") else "",
                    f"node {f['node_id']}" if f.get("node_id") else "",
                    "(client re-check)" if f.get("source") == "client" else "",
                )
                if part
            )
            c.print(f"  [{color}]{mark} {f.get('code')}[/] {_esc(where)} {_esc(str(f.get('message')))}")
            if f.get("fix"):
                c.print(f"      fix: {_esc(str(f['fix']))}")


def _diagnose(c: Any, d: dict[str, Any], code: int) -> None:
    r = d["response"]
    c.print(f"[bold]Diagnose[/] — {_esc(d['target'])} ({d['round_trip_ms'] / 1000:.1f} s)")
    for key, value in _deployment_lines(r):
        c.print(f"  {key:<10} {value}")
    checks = r.get("workflow_checks") or {}
    if checks:
        c.print()
        c.print(_workflow_table(checks))
    for note in d.get("notes") or []:
        c.print(f"  [dim]note: {_esc(note)}[/]")
    _findings(c, d["findings"])
    s = d["summary"]
    verdict = "[bold green]OK[/]" if code == 0 else "[bold red]PROBLEMS[/]"
    c.print(f"\n{verdict}: {s['error']} error(s), {s['warning']} warning(s), {s['info']} info → exit {code}")


def _deployment_lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, rich text) rows: ComfyUI, disks, volume, packs, nodes — each only when the report has it."""
    system = r.get("system") or {}
    devices = ", ".join(str(dev.get("name") or dev.get("type")) for dev in system.get("devices") or []) or "–"
    lines = [
        (
            "ComfyUI",
            f"{'reachable' if r.get('comfyui_reachable') else '[red]NOT reachable[/]'}"
            f" · version {system.get('comfyui_version', '–')} · handler {system.get('handler_version') or '–'}"
            f" · devices {_esc(devices)}",
        )
    ]
    if disks := r.get("disks") or []:
        free = [f"{x['label']} {x.get('free_gb')}/{x.get('total_gb')} GB free" for x in disks]
        lines.append(("disks", " · ".join(free)))
    vol = r.get("volume") or {}
    if vol.get("mounted") is not None:
        layouts = ", ".join(vol.get("layouts") or []) or "no model folders"
        where = f"mounted at {vol.get('path')} ({layouts})" if vol.get("mounted") else "not mounted"
        lines.append(("volume", _esc(where)))
    packs = (r.get("custom_nodes") or {}).get("packs") or []
    failed = (r.get("custom_nodes") or {}).get("failed") or []
    if packs or failed:
        broken = f", [red]{len(failed)} failed[/]: {', '.join(failed)}" if failed else ""
        lines.append(("packs", f"{len(packs)} custom node pack(s) in the start-up log{broken}"))
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


def _workflow_table(checks: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=None, show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("workflow", "ok", "missing nodes", "missing models", "findings"):
        table.add_column(col)
    for wid, chk in checks.items():
        models = "; ".join(f"{k}: {', '.join(v)}" for k, v in (chk.get("missing_models") or {}).items())
        table.add_row(
            wid,
            "[green]yes[/]" if chk.get("ok") else "[red]no[/]",
            ", ".join(chk.get("missing_nodes") or []) or "–",
            _esc(models) or "–",
            str(len(chk.get("findings") or [])),
        )
    return table


def _generate(c: Any, d: dict[str, Any], code: int) -> None:
    t = d.get("timing") or {}
    client = t.get("client") or {}
    runpod = t.get("runpod") or {}
    worker = t.get("worker") or {}
    if d.get("reused"):
        head = f"same idempotency key: nothing submitted; job {d['job_id']} ({_esc(str(d['workflow']))}) already ran"
    else:
        how = "re-attached to" if d.get("attached") else "ran"
        took = f" in {client['wall_s']:.2f} s" if isinstance(client.get("wall_s"), int | float) else ""
        head = f"{how} job {d['job_id']} ({_esc(str(d['workflow']))}){took}"
    c.print(f"[bold green]✓[/] {head}")
    c.print(f"  saved to {_esc(str(d['directory']))}/")
    for o in d.get("outputs") or []:
        dims = f"{o['width']}×{o['height']}" if o.get("width") else ""
        frames = f"{o['frames']} frames @ {o.get('fps')} fps" if o.get("frames") else ""
        name = _esc(str(o.get("saved_as") or o.get("filename")))
        c.print(f"    {name}  {o.get('kind')}  {dims}  {frames}  {_size(o.get('size_bytes'))}")
    parts = []
    if worker:
        parts.append(
            f"worker total {_ms(worker.get('total_ms'))} (execution {_ms(worker.get('execution_ms'))}, "
            f"queue in ComfyUI {_ms(worker.get('queue_wait_ms'))}, encode {_ms(worker.get('encode_ms'))})"
        )
    if runpod.get("delayTime_ms") is not None or runpod.get("executionTime_ms") is not None:
        parts.append(f"RunPod delay {_ms(runpod.get('delayTime_ms'))}, execution {_ms(runpod.get('executionTime_ms'))}")
    if parts:
        c.print("  timings: " + "; ".join(parts))


def _jobs(c: Any, d: dict[str, Any], code: int) -> None:
    from rich.table import Table

    if "jobs" in d and isinstance(d["jobs"], list):
        c.print(f"[bold]Jobs[/] in {_esc(d['ledger'])}" + (f" for {_esc(d['endpoint'])}" if d.get("endpoint") else ""))
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
                _esc(j.get("output_dir") or ""),
            )
        c.print(table if d["jobs"] else "  (none)")
        return
    if "workers" in d:
        c.print(f"[bold]Endpoint health[/] — {_esc(d['target'])}")
        c.print("  workers  " + ", ".join(f"{k} {v}" for k, v in d["workers"].items()))
        c.print("  jobs     " + ", ".join(f"{k} {v}" for k, v in d["jobs"].items()))
        return
    if "stream" in d:
        c.print(f"job {d['job_id']}: [bold]{d['status']}[/], {len(d['stream'])} streamed output(s)")
        for chunk in d["stream"]:
            c.print("  " + _esc(chunk if isinstance(chunk, str) else json.dumps(chunk, default=str)[:500]))
        return
    if "status" in d:
        c.print(
            f"job {d['job_id']}: [bold]{d['status']}[/]"
            + (
                f" (delay {_ms(d.get('delayTime_ms'))}, execution {_ms(d.get('executionTime_ms'))})"
                if d.get("delayTime_ms") is not None
                else ""
            )
        )
        err = d.get("worker_error")
        if err:
            c.print(f"  [red]{err.get('error_code')}[/]: {_esc(str(err.get('error_message')))}")
            if err.get("fix"):
                c.print(f"  fix: {_esc(str(err['fix']))}")
        if d.get("ledger") and d["ledger"].get("output_dir"):
            c.print(f"  outputs: {_esc(d['ledger']['output_dir'])}")
        return
    c.print(f"job {d['job_id']}: {_esc(json.dumps(d.get('answer')))}")


def _validate(c: Any, d: dict[str, Any], code: int) -> None:
    from rich.table import Table

    r = d["report"]
    verdict = "[bold green]PASSED[/]" if r["passed"] else "[bold red]FAILED[/]"
    c.print(f"Validation [bold]{r['suite']}[/] {verdict} — {_esc(r['target'])} ({r.get('duration_s')} s)")
    table = Table(show_edge=False, box=None, header_style="bold")
    for col in ("check", "result", "s", "details"):
        table.add_column(col)
    colors = {"pass": "green", "fail": "red", "skip": "yellow"}
    for chk in r["checks"]:
        table.add_row(
            chk["name"],
            f"[{colors[chk['status']]}]{chk['status'].upper()}[/]",
            f"{chk['seconds']:.2f}",
            _esc(chk["message"]),
        )
    c.print(table)
    for f in r.get("deployment_findings") or []:
        c.print(f"  [dim]deployment {f['severity']}: {f['code']}: {_esc(f['message'])}[/]")
    for kind, path in (d.get("reports") or {}).items():
        c.print(f"  {kind:<8} {_esc(path)}")
    c.print(f"exit {code}")


def _bench(c: Any, d: dict[str, Any], code: int) -> None:
    from client.reports import bench_markdown

    r = d["result"]
    c.print(bench_markdown(r), markup=False)
    for kind, path in (d.get("reports") or {}).items():
        c.print(f"  {kind:<8} {_esc(path)}")


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
        c.print(f"  {kind:<8} {_esc(path)}")


_HUMAN: dict[str, Callable[[Any, dict[str, Any], int], None]] = {
    "report": _report,
    "health": _health,
    "diagnose": _diagnose,
    "generate": _generate,
    "jobs": _jobs,
    "validate": _validate,
    "bench": _bench,
}


def _text_builder(command: str) -> Callable[[Any, dict[str, Any], int], None] | None:
    """The text renderer of a command; the volume commands' live in client.volume_render (imported
    only when one runs, so the other commands never load it)."""
    if command.startswith("volume "):
        from client.volume_render import HUMAN

        return HUMAN.get(command)
    return _HUMAN.get(command)
