"""ComfyUI-Manager's public lists, fetched at run time like ComfyUI-Manager does, cached, refreshed on request.

The files are GPL-3.0 and change daily, so the project never ships a copy: they are downloaded from
ComfyUI-Manager's repository into ~/.cache/comfy-runpod/ecosystem/ (kept for a day, `--refresh-ecosystem`
fetches again). COMFY_RUNPOD_ECOSYSTEM names a directory that holds them instead (machines without
GitHub, the tests: ../shared/ecosystem); nothing is fetched then. A failed download falls back to the
cached copy and says so, as ComfyUI-Manager does.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from client.errors import UsageError
from workflows.ecosystem import FILES, Ecosystem

CHANNEL = "https://raw.githubusercontent.com/ltdrdata/ComfyUI-Manager/main"  # ComfyUI-Manager's DEFAULT_CHANNEL
ENV = "COMFY_RUNPOD_ECOSYSTEM"
MAX_AGE_S = 24 * 3600
FIX = (
    f"Let this machine reach raw.githubusercontent.com, or set {ENV} to a directory holding "
    f"ComfyUI-Manager's {', '.join(FILES)} (e.g. a copy taken where GitHub is reachable)."
)


@dataclass
class Loaded:
    ecosystem: Ecosystem
    source: str  # where the files came from, for the output
    notes: list[str] = field(default_factory=list)


def default_cache() -> Path:
    return Path.home() / ".cache/comfy-runpod/ecosystem"


def _fetch(channel: str, name: str, cache: Path, timeout_s: float) -> None:
    response = requests.get(f"{channel}/{name}", timeout=timeout_s)
    response.raise_for_status()
    if not isinstance(json.loads(response.content), dict):  # a proxy's error page is not the list
        raise ValueError(f"{name} is not a JSON object")
    tmp = cache / f".{name}.part"
    tmp.write_bytes(response.content)
    tmp.replace(cache / name)


def load_ecosystem(
    *,
    directory: Path | None = None,
    cache: Path | None = None,
    refresh: bool = False,
    timeout_s: float = 30.0,
    now: float | None = None,
    channel: str = CHANNEL,
) -> Loaded:
    """The parsed lists: from `directory` when given (COMFY_RUNPOD_ECOSYSTEM), else the cache, fetched
    when missing, older than a day, or `refresh`. UsageError when a list can be had from nowhere."""
    notes: list[str] = []
    if directory is not None:
        source, where = directory, f"{directory} ({ENV})"
    else:
        source = cache or default_cache()
        source.mkdir(parents=True, exist_ok=True)
        where = f"{channel} (cached in {source})"
        current = time.time() if now is None else now
        for name in FILES:
            path = source / name
            stale = not path.is_file() or current - path.stat().st_mtime > MAX_AGE_S
            if not (refresh or stale):
                continue
            try:
                _fetch(channel, name, source, timeout_s)
            except (requests.RequestException, ValueError) as exc:
                if not path.is_file():
                    raise UsageError(
                        f"ComfyUI-Manager's {name} could not be downloaded ({exc}) and there is no cached copy",
                        code="UNREACHABLE",
                        fix=FIX,
                    ) from None
                age_h = (current - path.stat().st_mtime) / 3600
                notes.append(
                    f"{name}: download failed ({type(exc).__name__}); using the cached copy ({age_h:.0f} h old)"
                )
    # a damaged copy in the cache is replaced by downloading again; one in COMFY_RUNPOD_ECOSYSTEM by the user
    fix = FIX if directory is not None else f"Run again with --refresh-ecosystem to download the lists again. {FIX}"
    documents: list[Any] = []
    for name in FILES:
        try:
            documents.append(json.loads((source / name).read_text(encoding="utf-8")))
        except FileNotFoundError:
            if name == "github-stats.json":  # only ranks ties: without it, first listed wins
                notes.append(f"{name} not in {source}: packs listing the same node are ranked by file order")
                documents.append({})
                continue
            raise UsageError(f"{source} has no {name}", code="UNREACHABLE", fix=FIX) from None
        except (OSError, ValueError) as exc:
            raise UsageError(f"{source / name} cannot be read as JSON: {exc}", code="UNREACHABLE", fix=fix) from None
        if not isinstance(documents[-1], dict):  # valid JSON, but not the list ComfyUI-Manager publishes
            raise UsageError(
                f"{source / name} is not ComfyUI-Manager's {name} (a JSON object was expected, "
                f"not {type(documents[-1]).__name__})",
                code="UNREACHABLE",
                fix=fix,
            )
    return Loaded(Ecosystem.from_documents(*documents), where, notes)
