"""`diagnose.py --test`: the worker's sub-second health ping, with the round trip as seen from here."""

from __future__ import annotations

import time
from typing import Any

from client.config import Settings
from client.errors import BadResponse
from client.jobflow import Backend, UpdateSink, run_sync


def ping(api: Backend, settings: Settings, *, on_update: UpdateSink | None = None) -> dict[str, Any]:
    """{"healthy", "health" (the worker's test output), "round_trip_ms", ...}. Raises when unreachable."""
    target = settings.require_target()
    started = time.perf_counter()
    result = run_sync(
        api,
        {"mode": "test"},
        timeout_s=settings.timeout_s,
        poll_interval_s=settings.poll_interval_s,
        on_update=on_update,
    )
    round_trip_ms = round((time.perf_counter() - started) * 1000, 1)
    health = result.output
    if not isinstance(health, dict) or "ok" not in health:
        raise BadResponse(f"the test job answered {str(health)[:200]!r}, not the worker's health object")
    return {
        "target": target.label,
        "healthy": health.get("ok") is True,
        "round_trip_ms": round_trip_ms,
        "job_id": result.job_id,
        "health": health,
        "timing": result.timing(),
    }
