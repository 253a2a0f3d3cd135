"""Reliability suite: faults, bad input and load against the real stack.

Counts are reduced by default (CI); RELIABILITY_LONG=1 runs the long versions (10,000 fuzzed
inputs, 200+ soak jobs). Measured figures go to .results/reliability.json (ignored by git), or to the
file RELIABILITY_RESULTS names: `make bench` points it at the tracked benchmarks/results/reliability.json,
the only way that file changes.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

LONG = os.environ.get("RELIABILITY_LONG") == "1"
RESULTS = Path(
    os.environ.get("RELIABILITY_RESULTS") or Path(__file__).resolve().parents[2] / ".results/reliability.json"
)


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Tests record what they measured here; written once at the end of the session."""
    data: dict[str, Any] = {}
    yield data
    if data:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "long_run": LONG,
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                    **data,
                },
                indent=2,
            )
            + "\n"
        )
