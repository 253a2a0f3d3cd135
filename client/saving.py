"""Write a finished generate job to disk: every output file plus result.json (the response minus base64).

Layout: <root>/<YYYYmmdd-HHMMSS>_<workflow>_<job8>/ with the outputs under their own (sanitised,
de-duplicated) names and result.json holding the request summary, the response without base64, and
the timing breakdown (RunPod delayTime / executionTime, the worker's timings, the client's wall
time). Outputs delivered as URLs (S3) are downloaded; the signed query string is not kept.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from client.errors import ClientError
from client.redact import redact

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_TEXT_EXT = ".txt"


@dataclass(frozen=True, slots=True)
class SavedOutputs:
    directory: Path
    files: list[Path]
    result_json: Path


def output_dir_name(workflow: str, job_id: str, when: float | None = None) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    job8 = re.sub(r"[^A-Za-z0-9]", "", job_id.removeprefix("test-").removeprefix("direct-"))[:8] or "job"
    return f"{stamp}_{_SAFE.sub('_', workflow)[:60] or 'workflow'}_{job8}"


def strip_url(url: str) -> str:
    """A presigned URL without its query (the signature is a credential of sorts)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def summarize_input(job_input: dict[str, Any]) -> dict[str, Any]:
    """The request as sent, with base64 images replaced by their size."""
    out: dict[str, Any] = {}
    for key, value in job_input.items():
        if key in ("image_base64", "end_image_base64") and isinstance(value, str):
            out[key] = f"<{len(value)} base64 chars>"
        elif key == "images" and isinstance(value, list):
            out[key] = [
                {"name": i.get("name"), "image": f"<{len(str(i.get('image', '')))} base64 chars>"}
                for i in value
                if isinstance(i, dict)
            ]
        elif key == "workflow" and isinstance(value, dict):
            out[key] = f"<inline workflow, {len(value)} nodes>"
        else:
            out[key] = value
    return out


def _unique(directory: Path, name: str, taken: set[str]) -> str:
    name = _SAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or "output"
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 1
    while candidate in taken or candidate == "result.json":
        candidate = f"{stem}_{n}.{ext}" if ext else f"{stem}_{n}"
        n += 1
    taken.add(candidate)
    return candidate


def _download(url: str, timeout_s: float = 120.0) -> bytes:
    import urllib3
    from urllib3.util.retry import Retry

    retry = Retry(total=3, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504))
    try:
        response = urllib3.request("GET", url, retries=retry, timeout=urllib3.Timeout(connect=10, read=timeout_s))
    except urllib3.exceptions.HTTPError as exc:
        raise ClientError(
            f"could not download {strip_url(url)}: {type(exc).__name__}",
            code="DOWNLOAD_FAILED",
            fix="The presigned URL may have expired; result.json keeps the rest of the response.",
        ) from None
    if response.status != 200:
        raise ClientError(
            f"downloading {strip_url(url)} answered HTTP {response.status}",
            code="DOWNLOAD_FAILED",
            fix="The presigned URL may have expired; result.json keeps the rest of the response.",
        )
    return response.data


def save_outputs(
    response: dict[str, Any], directory: Path, *, meta: dict[str, Any], download: Any = _download
) -> SavedOutputs:
    """Decode / download every output into `directory` and write result.json. Returns what was written."""
    directory.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    files: list[Path] = []
    stripped_outputs = []
    for index, item in enumerate(response.get("outputs") or []):
        if not isinstance(item, dict):
            continue
        kept = {k: v for k, v in item.items() if k != "base64"}
        data: bytes | None = None
        if isinstance(item.get("base64"), str):
            try:
                data = base64.b64decode(item["base64"], validate=True)
            except (binascii.Error, ValueError):
                kept["save_error"] = "invalid base64"
        elif isinstance(item.get("url"), str):
            data = download(item["url"])
            kept["url"] = strip_url(item["url"])
        elif item.get("kind") == "text" and isinstance(item.get("text"), str):
            data = item["text"].encode()
            kept.setdefault("filename", f"text_{item.get('node_id', index)}{_TEXT_EXT}")
        if data is not None:
            name = _unique(directory, str(kept.get("filename") or f"output_{index}"), taken)
            path = directory / name
            path.write_bytes(data)
            files.append(path)
            kept["saved_as"] = name
        stripped_outputs.append(kept)
    stripped = {k: v for k, v in response.items() if k not in ("outputs", "video_base64")}
    stripped["outputs"] = stripped_outputs
    if isinstance(stripped.get("video_url"), str):
        stripped["video_url"] = strip_url(stripped["video_url"])
    result = {**meta, "files": [p.name for p in files], "response": stripped}
    result_json = directory / "result.json"
    result_json.write_text(redact(json.dumps(result, indent=2, default=str)) + "\n")
    return SavedOutputs(directory, files, result_json)
