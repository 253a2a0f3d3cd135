"""RunPod's own fields of a `/run` request beside `input`: the webhook and the execution policy.

Source: RunPod docs, serverless/endpoints/send-requests ("Webhook notifications", "Execution policies"):
`{"input": …, "webhook": URL, "policy": {"executionTimeout": ms, "ttl": ms, "lowPriority": bool}}`.
executionTimeout must be over 5,000 ms (default 600,000, the endpoint's setting, overridden for this job
only); ttl, the longest a job may wait in the queue, at least 10,000 ms and at most a week (default
86,400,000); lowPriority: the job does not make the endpoint scale up. RunPod POSTs the job's /status
answer to the webhook when the job is done (retried twice, 10 s apart, unless it answers 200).
Pure: flags in, the request's extra fields out, UsageError for what RunPod would refuse.
"""

from __future__ import annotations

import re
from typing import Any

from client.errors import UsageError

EXECUTION_TIMEOUT_MIN_MS = 5_000  # "Must be > 5000 ms"
TTL_MIN_MS = 10_000  # "Must be ≥ 10000 ms"
TTL_MAX_MS = 7 * 24 * 3600 * 1000  # "max 1 week"


def run_options(
    *,
    webhook: str | None = None,
    execution_timeout_s: float | None = None,
    ttl_s: float | None = None,
    low_priority: bool = False,
) -> dict[str, Any]:
    """The keyword arguments of RunPodAPI.run for these flags ({} when none is given)."""
    options: dict[str, Any] = {}
    if webhook is not None:
        if not re.match(r"^https?://[^\s/]+", webhook):
            raise UsageError(f"--webhook must be an http(s) URL, got {webhook[:80]!r}")
        options["webhook"] = webhook
    policy: dict[str, Any] = {}
    if execution_timeout_s is not None:
        ms = round(execution_timeout_s * 1000)
        if ms <= EXECUTION_TIMEOUT_MIN_MS:
            raise UsageError("--execution-timeout must be over 5 s (RunPod refuses executionTimeout ≤ 5000 ms)")
        policy["executionTimeout"] = ms
    if ttl_s is not None:
        ms = round(ttl_s * 1000)
        if not TTL_MIN_MS <= ms <= TTL_MAX_MS:
            raise UsageError("--ttl must be between 10 s and one week (RunPod's ttl: 10000 ms to 7 days)")
        policy["ttl"] = ms
    if low_priority:
        policy["lowPriority"] = True
    if policy:
        options["policy"] = policy
    return options
