"""Findings: what the analysis reports, in a shape a person can act on.

Every finding carries a stable `code`, a `severity`, a human `message` and a `fix`. The codes are
part of the public contract (README, "Finding codes"); never rename one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    fix: str
    node_id: str | None = None
    input: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: optional keys are left out rather than sent as null."""
        return {k: (str(v) if k == "severity" else v) for k, v in asdict(self).items() if v is not None}


def error(code: str, message: str, fix: str, **where: str | None) -> Finding:
    return Finding(code, Severity.ERROR, message, fix, **where)


def warning(code: str, message: str, fix: str, **where: str | None) -> Finding:
    return Finding(code, Severity.WARNING, message, fix, **where)


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
