"""Rich text pieces every command's text uses: sizes, times, findings grouped by severity, the
workflow table, an error with its fix. Pure: each takes data (and a rich console) and returns or prints text."""

from __future__ import annotations

from typing import Any

from client.errors import ClientError

SEV_MARK = {"error": ("✗", "red"), "warning": ("!", "yellow"), "info": ("i", "cyan")}


def size(n: Any) -> str:
    if not isinstance(n, int | float):
        return ""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


def ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "–"


def yn(value: Any, yes: str = "yes", no: str = "no") -> str:
    return "–" if value is None else (yes if value else no)


def esc(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def error_text(c: Any, exc: ClientError) -> None:
    c.print(f"[bold red]✗ {exc.code}[/]: {esc(exc.message)}")
    if exc.fix:
        c.print(f"  [bold]fix:[/] {esc(exc.fix)}")
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
        c.print(f"  • {f.get('code')}{where}: {esc(str(f.get('message')))}")
        if f.get("fix"):
            c.print(f"    fix: {esc(str(f['fix']))}")
    inner = worker.get("details") or {}
    for node in (inner.get("node_errors") or [])[:5] if isinstance(inner, dict) else []:
        c.print(
            f"  node {node.get('node_id')} ({node.get('class_type')}): {esc(str(node.get('message')))} "
            f"{esc(str(node.get('details') or ''))}"
        )
    tail = worker.get("logs_tail") or []
    if tail:
        c.print("  ComfyUI log (last lines):")
        for line in tail[-12:]:
            c.print(f"    | {esc(str(line))}", soft_wrap=True)


def findings(c: Any, findings: list[dict[str, Any]]) -> None:
    for severity, title in (("error", "Errors"), ("warning", "Warnings"), ("info", "Info")):
        group = [f for f in findings if f.get("severity") == severity]
        if not group:
            continue
        mark, color = SEV_MARK[severity]
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
            c.print(f"  [{color}]{mark} {f.get('code')}[/] {esc(where)} {esc(str(f.get('message')))}")
            if f.get("fix"):
                c.print(f"      fix: {esc(str(f['fix']))}")


def workflow_table(checks: dict[str, Any]) -> Any:
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
            esc(models) or "–",
            str(len(chk.get("findings") or [])),
        )
    return table
