"""Failure signatures drawn from the field: an exception's type and text -> a specific code, cause and fix.

The table is data (workflows/signatures.yaml, each entry traced to the public thread it came from),
read once; `match` is pure. Three readers use it: workflows.failures (a node's exception during a
job), workflows.startup_log (ComfyUI dying at start, a pack failing to import) and, through the
state's cause, `test` once ComfyUI has died. Where nothing matches, the caller keeps its generic code
and leads its answer with the exception's own type and message (`generic_answer`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

TABLE = Path(__file__).with_name("signatures.yaml")
STAGES = ("start", "import", "execution")
# Codes that say only "something failed": an answer with one of these (or with their fix) is generic.
GENERIC_CODES = frozenset({"GENERATION_ERROR", "COMFY_START_FAILED", "QUEUE_FAILED", "INTERNAL_ERROR"})


@dataclass(frozen=True, slots=True)
class Signature:
    id: str
    stages: tuple[str, ...]
    pattern: re.Pattern[str]
    exception: re.Pattern[str] | None
    code: str
    cause: str
    fix: str
    source: str
    example: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Match:
    """A signature that matched, with its cause and fix filled from the text's named groups."""

    signature: Signature
    cause: str
    fix: str

    @property
    def code(self) -> str:
        return self.signature.code

    def details(self) -> dict[str, str]:
        return {"id": self.signature.id, "cause": self.cause, "source": self.signature.source}


class _Blank(string.Formatter):
    """str.format that leaves an unmatched {group} as 'it' instead of raising."""

    def get_value(self, key: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        value = kwargs.get(key) if isinstance(key, str) else None
        return value if value else "it"


def _entry(raw: Mapping[str, Any]) -> Signature:
    stages = tuple(raw["stages"])
    if unknown := set(stages) - set(STAGES):
        raise ValueError(f"signature {raw['id']}: unknown stage(s) {sorted(unknown)}")
    exception = raw.get("exception")
    return Signature(
        id=raw["id"],
        stages=stages,
        pattern=re.compile(raw["pattern"], re.I | re.S),
        exception=re.compile(exception) if exception else None,
        code=raw["code"],
        cause=raw["cause"],
        fix=raw["fix"],
        source=raw["source"],
        example=raw["example"],
    )


@cache
def signatures() -> tuple[Signature, ...]:
    """The table, in match order (read once per process)."""
    return tuple(_entry(raw) for raw in yaml.safe_load(TABLE.read_text()))


def match(
    exception_type: str | None,
    message: str,
    traceback: Iterable[str] = (),
    *,
    stage: str = "execution",
    table: Sequence[Signature] | None = None,
) -> Match | None:
    """The first signature of `stage` whose pattern is in "<type>: <message>" (or the traceback's last
    lines) and whose exception pattern, if any, fits the type; None when nothing does."""
    kind = (exception_type or "").strip()
    tail = "\n".join(list(traceback)[-12:])
    text = f"{kind}: {message}" if kind else message
    for sig in signatures() if table is None else table:
        if stage not in sig.stages:
            continue
        if sig.exception is not None and not sig.exception.search(kind):
            continue
        hit = sig.pattern.search(text) or (sig.pattern.search(tail) if tail else None)
        if hit is None:
            continue
        groups = {k: v for k, v in hit.groupdict().items() if v}
        return Match(sig, _Blank().format(sig.cause, **groups), _Blank().format(sig.fix, **groups))
    return None


def generic_answer(exception_type: str | None, message: str, where: str) -> str:
    """The message of an answer nothing matched: the exception's own type and text first, then where."""
    first = next((line.strip() for line in message.splitlines() if line.strip()), "(no message)")
    kind = exception_type or "an exception"
    return f"{kind}: {first[:400]} ({where})"


def is_generic(code: str, fix: str, generic_fixes: Iterable[str]) -> bool:
    """An answer that names no cause: a catch-all code, or a fix that is one of the catch-alls' fixes."""
    return code in GENERIC_CODES or fix in set(generic_fixes)
