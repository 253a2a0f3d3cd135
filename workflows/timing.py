"""The `timings` of a response: milliseconds between the steps of a job, measured the same way everywhere."""

from __future__ import annotations

import time
from typing import Any


def lap(timings: dict[str, Any], name: str, since: float) -> float:
    """Record the milliseconds since `since` (a perf_counter reading) as `name`; return now, the next lap's start."""
    now = time.perf_counter()
    timings[name] = round((now - since) * 1000, 2)
    return now
