"""Text output of `workflow add`: what was written, the packs chosen (and the runners-up), the TODO lines.

JSON (--json) carries the same data; this is what a person reads: the TODO lines exactly as they are
written at the top of the entry's YAML, one per line, so they can be grepped and ticked off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _shown(path: Any) -> str:
    """A path as the person typed it: relative to the working directory when it is under it."""
    try:
        return str(Path(str(path)).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


def render(c: Any, d: dict[str, Any], code: int) -> None:
    state = "complete" if code == 0 else ("invalid" if not d.get("valid") else "TODOs remain")
    c.print(f"workflow {d.get('workflow')}: {state}")
    c.print(f"  wrote {_shown(d.get('entry_file'))}")
    c.print(f"  wrote {_shown(d.get('workflow_file'))}")
    if d.get("suite"):
        c.print(f"  suite {d['suite']}")
    for pack in d.get("packs") or []:
        commit = (pack.get("commit") or "no commit")[:12]
        c.print(f"pack {pack['pack']} @ {commit} ({pack.get('pinned_from')}): {pack['repo']}")
        for node, why in (pack.get("nodes") or {}).items():
            others = ", ".join(f"{o['repo']} ({o['stars']} stars)" for o in why.get("runners_up") or [])
            c.print(f"  {node}: {why.get('why')}" + (f"; also provided by {others}" if others else ""))
    for model in (d.get("entry") or {}).get("models") or []:
        size = model.get("size_bytes")
        c.print(
            f"model {model.get('folder')}/{model['name']}: "
            + (f"{size:,} bytes, sha256 {str(model.get('sha256') or '?')[:12]}…" if size else "size unknown")
        )
    for finding in d.get("findings") or []:
        c.print(f"{finding['severity'].upper()} {finding['code']}: {finding['message']}")
        c.print(f"  fix: {finding['fix']}")
    for note in d.get("notes") or []:
        c.print(f"note: {note}")
    if d.get("problem"):
        c.print(f"entry disabled until fixed: {d['problem']}")
    for todo in d.get("todos") or []:
        c.print(f"TODO: {todo}")
