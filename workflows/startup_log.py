"""Read ComfyUI's start-up log: which custom node packs loaded, failed, and how long each took."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADER = "Import times for custom nodes:"
_LINE = re.compile(r"^\s*(?P<secs>\d+(?:\.\d+)?) seconds(?P<failed> \(IMPORT FAILED\))?: (?P<path>.+?)\s*$")
_CANNOT = re.compile(r"^Cannot import (?P<path>.+?) module for custom nodes: (?P<error>.*)$")


@dataclass(frozen=True, slots=True)
class PackImport:
    name: str
    path: str
    seconds: float
    failed: bool
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": self.path,
            "seconds": self.seconds,
            "failed": self.failed,
            "error": self.error,
        }


def parse_import_report(log_text: str) -> list[PackImport]:
    """Every pack listed in the last 'Import times for custom nodes' block, with its import error."""
    lines = log_text.splitlines()
    errors: dict[str, str] = {}
    for line in lines:
        if m := _CANNOT.match(line.strip()):
            errors[m["path"].rstrip("/")] = m["error"].strip()
    start = max((i for i, line in enumerate(lines) if line.strip() == _HEADER), default=None)
    if start is None:
        return []
    packs = []
    for line in lines[start + 1 :]:
        m = _LINE.match(line)
        if not m:
            break
        path = m["path"].rstrip("/")
        name = path.rsplit("/", 1)[-1].removesuffix(".py")
        packs.append(PackImport(name, path, float(m["secs"]), bool(m["failed"]), errors.get(path)))
    return packs


def tail(text: str, lines: int) -> list[str]:
    return text.splitlines()[-lines:]
