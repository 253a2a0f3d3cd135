"""ComfyUI's failure answers turned into job errors. Pure: the job pipeline (workflows.pipeline) maps a
rejected prompt and a node's exception with these, for the worker and the client's direct mode alike.

A failure is read through its `kind` (and `body` / `data`), which comfyui_client's exceptions carry:
this package does not import comfyui_client (tests/test_layers.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from workflows import signatures
from workflows.analysis import pack_lookup
from workflows.errors import JobError
from workflows.judge import DOES_NOT_EXIST, findings_error, rejection_findings
from workflows.registry import Registry

FAILURE_KINDS = frozenset({"error", "unavailable", "http", "rejected", "execution", "interrupted", "timeout"})


def failure_kind(exc: BaseException) -> str | None:
    """The exception's failure kind when it is a ComfyUI client's failure (comfyui_client.ComfyError
    and its subclasses carry `kind`; a `rejected` one also `body`, ComfyUI's JSON answer, and an
    `execution` one `data`, its execution_error message), else None."""
    kind = getattr(exc, "kind", None)
    return kind if isinstance(kind, str) and kind in FAILURE_KINDS else None


def queue_failed(
    body: Any, message: str, registry: Registry | None, workflow: Mapping[str, Any] | None = None
) -> JobError:
    """ComfyUI's 400 answer to /prompt as our finding codes where we recognise it (a value not in a
    loader's list is MODEL_MISSING, ...), else QUEUE_FAILED with every node error and the pack that
    provides a missing node. ComfyUI's raw text stays in details."""
    body = body if isinstance(body, dict) else {}
    err = body.get("error") if isinstance(body.get("error"), dict) else {}
    nodes = [
        {
            "node_id": node_id,
            "class_type": info.get("class_type"),
            "type": e.get("type"),
            "message": e.get("message"),
            "details": e.get("details"),
            "input": (e.get("extra_info") or {}).get("input_name"),
        }
        for node_id, info in (body.get("node_errors") or {}).items()
        for e in info.get("errors", [])
    ]
    details: dict[str, Any] = {"type": err.get("type"), "node_errors": nodes}
    message = err.get("message") or message
    if m := DOES_NOT_EXIST.search(message):
        pack = registry.pack_for_node(m["cls"]) if registry is not None else None
        details["missing_node"] = m["cls"]
        if pack is not None:
            details["pack"] = {"name": pack.name, "repo": pack.repo, "commit": pack.commit}
            message += f" It is provided by the custom node pack {pack.name} ({pack.repo})."
    elif nodes:
        message = "; ".join(
            f"node {n['node_id']} ({n['class_type']}): {n['message']}: {n['details']}" for n in nodes[:5]
        )
    findings = rejection_findings(body, workflow or {}, pack_lookup(registry))
    if findings:
        return findings_error(findings, {**details, "comfyui_message": message})
    return JobError("QUEUE_FAILED", message, details)


def execution_failed(data: Mapping[str, Any], message: str) -> JobError:
    """A node's exception (ComfyUI's execution_error event) as a job error: the field-drawn signature's
    code, cause and fix when one matches (workflows.signatures), else GENERATION_ERROR led by the
    exception's own type and message and the frame that raised it."""
    text = str(data.get("exception_message", "")).strip()
    kind = str(data.get("exception_type") or "") or None
    traceback = [str(line) for line in (data.get("traceback") or [])]
    node = f"{data.get('node_type')} (node {data.get('node_id')})"
    details: dict[str, Any] = {
        "node_id": data.get("node_id"),
        "node_type": data.get("node_type"),
        "exception_type": kind,
        "exception_message": text,
        "traceback": traceback[-8:],
    }
    found = signatures.match(kind, text, traceback, stage="execution")
    if found is not None:
        details["signature"] = found.details()
        first = signatures.generic_answer(kind, text, f"raised by {node}")
        return JobError(found.code, f"{found.cause}: {first}", details, fix=found.fix)
    frame = raising_frame(traceback)
    where = f"raised by {node}" + (f" at {frame}" if frame else "")
    fix = (
        f"{kind or 'The exception'} is not one this worker recognises: read its message and the frame it names "
        f"({frame or 'see details.traceback'}); if the frame is in a custom node pack, that pack's issue tracker "
        "is the place to look. logs_tail has ComfyUI's output around it."
    )
    return JobError("GENERATION_ERROR", signatures.generic_answer(kind, text, where), details, fix=fix)


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)')


def raising_frame(traceback: list[str]) -> str | None:
    """The last frame of a formatted traceback, as "file:line in function" (the custom pack's when it has one)."""
    frames = [m for chunk in traceback for m in _FRAME.finditer(chunk)]
    if not frames:
        return None
    m = frames[-1]
    return f"{m['file']}:{m['line']} in {m['func']}"


def prompt_error(
    exc: BaseException, registry: Registry | None, workflow: Mapping[str, Any], prompt_id: str | None = None
) -> JobError:
    """The job error for anything running a prompt raised. The caller has already interrupted and
    dequeued a timed-out prompt (what "interrupted" in the TIMEOUT message promises)."""
    kind = failure_kind(exc)
    if kind == "rejected":
        return queue_failed(getattr(exc, "body", None), str(exc), registry, workflow)
    if kind == "timeout":
        return JobError(
            "TIMEOUT",
            # said only where the stop is not verified (direct mode); the worker's answer says how it
            # stopped (handler.bounds: interrupted, or ComfyUI restarted)
            "the job did not finish before its deadline; ComfyUI was asked to interrupt it and drop it from its queue",
            {"prompt_id": prompt_id},
        )
    if kind == "execution":
        return execution_failed(getattr(exc, "data", None) or {}, str(exc))
    if kind == "interrupted":
        return JobError("GENERATION_ERROR", f"{exc} (someone called /interrupt)")
    if kind == "unavailable" and "/prompt" in str(exc):  # never got the prompt
        return JobError("COMFY_NOT_READY", str(exc))
    return JobError("COMFY_DIED", str(exc))  # stopped answering while the prompt ran
