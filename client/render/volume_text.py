"""Human text for `volume check | ls | push` (the JSON is the commands' data as is)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from client.render.text import esc, findings, size, workflow_table


def _header(c: Any, title: str, d: dict[str, Any]) -> None:
    v = d["volume"]
    c.print(f"[bold]{title}[/] — volume {esc(v['id'])} in {esc(v['datacenter'])} ({esc(v['endpoint'])})")


def _check(c: Any, d: dict[str, Any], code: int) -> None:

    _header(c, "Volume check", d)
    layouts = ", ".join(d.get("layouts") or []) or "[red]none of models/, ComfyUI/models/[/]"
    files = sum(len(v) for v in (d.get("models") or {}).values())
    c.print(
        f"  contents   {d['objects']} objects, {size(d['total_bytes'])} · {files} model file(s) · layouts: {layouts}"
    )
    checks = d.get("workflow_checks") or {}
    if checks:
        table = workflow_table(checks)
        c.print()
        c.print(table)
    findings(c, d["findings"])
    if any(f.get("code") == "MODEL_MISSING" for f in d["findings"]):
        c.print("\n  [dim]fill it: python client/volume.py push --volume-id … --datacenter … <model files or dirs>[/]")
    s = d["summary"]
    verdict = "[bold green]OK[/]" if code == 0 else "[bold red]PROBLEMS[/]"
    c.print(f"\n{verdict}: {s['error']} error(s), {s['warning']} warning(s), {s['info']} info → exit {code}")


def _ls(c: Any, d: dict[str, Any], code: int) -> None:
    _header(c, "Volume", d)
    under = f" under {esc(d['prefix'])}" if d["prefix"] else ""
    c.print(f"  {d['files']} file(s), {size(d['total_bytes'])}{under}")
    shown: set[str] = set()
    for o in d["objects"]:
        is_dir = o["key"].endswith("/")
        parts = o["key"].rstrip("/").split("/")
        dirs = parts if is_dir else parts[:-1]
        for depth in range(len(dirs)):
            directory = "/".join(dirs[: depth + 1]) + "/"
            if directory not in shown:
                shown.add(directory)
                c.print(f"  {'  ' * depth}{esc(dirs[depth])}/")
        if not is_dir:
            c.print(f"  {'  ' * (len(parts) - 1)}{esc(parts[-1])}  [dim]{size(o['size_bytes'])}[/]")


def _push(c: Any, d: dict[str, Any], code: int) -> None:
    _header(c, "Volume push" + (" (dry run)" if d["dry_run"] else ""), d)
    marks = {
        "upload": "[cyan]→ would upload[/]",
        "uploaded": "[green]✓ uploaded[/]",
        "present": "[dim]= present[/]",
        "refused": "[red]✗ refused[/]",
    }
    for item in d["items"]:
        parts = item.get("parts") or {}
        resumed = f", resumed {parts['resumed']}/{parts['total']} parts" if parts.get("resumed") else ""
        checked = f" [{item['verified']} checked]" if item.get("verified") else ""
        c.print(
            f"  {marks.get(item['action'], item['action'])} {esc(item['local'])}"
            + (f" → {esc(item['key'])}" if item.get("key") else "")
            + f" ({size(item['size_bytes'])}){checked}{resumed}"
        )
        if item["action"] == "refused":
            c.print(f"      [red]{item['code']}[/] {esc(item['message'])}")
            c.print(f"      fix: {esc(item['fix'])}")
        for left in item.get("left_open") or ():
            c.print(
                f"      [yellow]left open[/]: unfinished upload {esc(left['upload_id'])} ({left['parts']} parts) "
                "that this push can't vouch for; abort it with aws s3api abort-multipart-upload if it is stale"
            )
    s, t = d["summary"], d["timings"]
    rate = f" in {t['upload_s']:.1f} s ({t['rate_mb_s']} MB/s)" if t.get("rate_mb_s") else ""
    verb = "would upload" if d["dry_run"] else "uploaded"
    c.print(
        f"\n{verb} {s['upload']} file(s), {size(s['upload_bytes'])}{rate} · {s['present']} already present · "
        f"{s['refused']} refused → exit {code}"
    )


HUMAN: dict[str, Callable[[Any, dict[str, Any], int], None]] = {
    "volume check": _check,
    "volume ls": _ls,
    "volume push": _push,
}
