"""`jobs.py list|status|cancel|retry|health`: the job ledger and RunPod's job / endpoint operations."""

from __future__ import annotations

from typing import Any

from client.config import Settings
from client.jobflow import Backend, worker_error
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


def job_status(api: Backend, job_id: str, ledger: Ledger | None = None) -> dict[str, Any]:
    envelope = api.status(job_id)
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


def retry_job(api: Backend, job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "answer": api.retry(job_id)}


def endpoint_health(api: Backend, settings: Settings) -> dict[str, Any]:
    answer = api.health()
    return {
        "target": settings.require_target().label,
        "jobs": answer.get("jobs") or {},
        "workers": answer.get("workers") or {},
        "raw": answer,
    }
