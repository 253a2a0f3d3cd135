"""`jobs.py list|status|stream|cancel|retry|health`: the job ledger and RunPod's job / endpoint operations."""

from __future__ import annotations

import time
from typing import Any

from client.config import Settings
from client.errors import ClientTimeout
from client.jobflow import TERMINAL, Backend, worker_error
from client.ledger import Ledger


def _strip_base64(value: Any) -> Any:
    """A status answer without the (possibly huge) base64 payloads."""
    if isinstance(value, dict):
        return {
            k: (
                f"<{len(v)} base64 chars>"
                if isinstance(v, str) and (k == "base64" or k.endswith("_base64"))
                else _strip_base64(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_strip_base64(v) for v in value]
    return value


def list_jobs(ledger: Ledger, settings: Settings, *, limit: int = 20, all_endpoints: bool = False) -> dict[str, Any]:
    endpoint = None if all_endpoints or settings.target is None else settings.target.url
    rows = ledger.recent(limit, endpoint)
    return {"ledger": str(ledger.path), "endpoint": endpoint, "jobs": [r.to_dict() for r in rows]}


def job_status(api: Backend, job_id: str, ledger: Ledger | None = None, wait_s: float | None = None) -> dict[str, Any]:
    envelope = api.status(job_id, wait_s=wait_s)
    out: dict[str, Any] = {
        "job_id": job_id,
        "status": envelope.get("status"),
        "delayTime_ms": envelope.get("delayTime"),
        "executionTime_ms": envelope.get("executionTime"),
        "envelope": _strip_base64(envelope),
    }
    if envelope.get("status") == "FAILED":
        out["worker_error"] = worker_error(envelope)
    if ledger is not None:
        row = ledger.find_job(job_id)
        out["ledger"] = row.to_dict() if row else None
    return out


def cancel_job(api: Backend, job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "answer": api.cancel(job_id)}


def retry_job(api: Backend, job_id: str, wait_s: float | None = None) -> dict[str, Any]:
    return {"job_id": job_id, "answer": api.retry(job_id, wait_s=wait_s)}


def endpoint_health(api: Backend, settings: Settings) -> dict[str, Any]:
    answer = api.health(wait_s=settings.timeout_s)  # --timeout bounds every attempt and pause
    return {
        "target": settings.require_target().label,
        "jobs": answer.get("jobs") or {},
        "workers": answer.get("workers") or {},
        "raw": answer,
    }


def stream_job(api: Any, job_id: str, settings: Settings, *, interval_s: float = 1.0) -> dict[str, Any]:
    """Read GET /stream/{id} until the job is final and nothing more comes (as runpod-python's Job.stream):
    a generator handler's partial outputs, in order. Bounded by --timeout (the job is left running then:
    only reading it timed out). This project's worker is not a generator: its progress is in `jobs status`."""
    deadline = time.monotonic() + settings.timeout_s
    chunks: list[Any] = []
    status = "IN_QUEUE"
    while True:
        answer = api.stream(job_id, wait_s=max(deadline - time.monotonic(), 0.0))
        status = str(answer.get("status"))
        part = answer.get("stream") or []
        chunks += [c.get("output") if isinstance(c, dict) else c for c in part]
        if status in TERMINAL and not part:
            break
        if time.monotonic() + interval_s > deadline:
            raise ClientTimeout(
                f"job {job_id} was still streaming after {settings.timeout_s:g} s (it was not cancelled)",
                fix="Raise --timeout, or read it again with `comfy-runpod jobs stream JOB_ID`.",
                details={"job_id": job_id, "status": status, "chunks": len(chunks)},
            )
        time.sleep(interval_s)
    return {"job_id": job_id, "status": status, "stream": chunks}
