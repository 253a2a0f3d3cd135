"""Keep secrets out of every byte the client writes: terminal, JSON, reports, result.json, logs.

`register()` is called once by the configuration with the API key; `redact()` is the last step of
every writer. Objects that hold a secret also keep it out of their repr.
"""

from __future__ import annotations

import logging
from typing import Any

from workflows.secrets import MASK as MASK  # re-exported: the one mask for worker and client
from workflows.secrets import MIN_SECRET_CHARS
from workflows.secrets import redact as _redact_with
from workflows.secrets import redact_data as _redact_data_with

_secrets: set[str] = set()


def register(secret: str | None) -> None:
    """Remember a value that must never be written (ignored when too short to be a real secret)."""
    if secret and len(secret) >= MIN_SECRET_CHARS:
        _secrets.add(secret)


def _registered() -> list[str]:
    return sorted(_secrets, key=len, reverse=True)  # longest first: a secret inside another is masked whole


def redact(text: str) -> str:
    """The one implementation is workflows.secrets (shared with the worker)."""
    return _redact_with(text, _registered())


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like value with every registered secret masked in its strings (keys included)."""
    return _redact_data_with(value, _registered())


class RedactingFilter(logging.Filter):
    """A logging filter that rewrites each record's final message without secrets."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
        return True
