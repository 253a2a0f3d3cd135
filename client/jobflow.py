"""Submit a job and follow it to the end: adaptive polling, progress, deadline and Ctrl-C → cancel.

Works with any backend that has run / runsync / status / cancel (client.runpod_api.RunPodAPI, or
client.direct.DirectComfy). Terminal states become a JobResult or a JobUnsuccessful (client.errors); nothing here
prints.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from client.errors import (
    ClientError,
    ClientTimeout,
    EndpointError,
    Interrupted,
    JobCancelled,
    JobFailed,
    JobTimedOut,
)
from workflows.responses import DiagnoseResponse

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"})
FIRST_POLL_S = 0.1
BACKOFF = 1.5


class Backend(Protocol):
    """What every command needs of a target: RunPod's job routes (client.runpod_api.RunPodAPI), or
    the same done against a ComfyUI server (client.direct.DirectComfy)."""

    kind: str  # "runpod" | "comfy"

    def run(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = ..., wait_s: float | None = ...
    ) -> dict[str, Any]: ...
    def runsync(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = ..., wait_s: float | None = ...
    ) -> dict[str, Any]: ...
    def status(self, job_id: str, *, wait_s: float | None = ...) -> dict[str, Any]: ...
    def cancel(self, job_id: str) -> dict[str, Any]: ...
    def retry(self, job_id: str, *, wait_s: float | None = ...) -> dict[str, Any]: ...
    def health(self, *, wait_s: float | None = ...) -> dict[str, Any]: ...
    def diagnose_file(self, label: str, workflow: dict[str, Any], checksums: bool = ...) -> DiagnoseResponse | None:
        """diagnose with a workflow file judged fully by the backend itself; None when it can't (the
        worker judges only what its registry names: the client then judges the file from its report)."""
        ...


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """What a progress display needs after each poll."""

    job_id: str
    status: str
    elapsed_s: float
    polls: int
    progress: Any = None  # the worker's progress_update payload while IN_PROGRESS


@dataclass(slots=True)
class JobResult:
    job_id: str
    status: str
    output: Any
    envelope: dict[str, Any]
    wall_s: float
    polls: int
    submit_ms: float | None = None
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (status, seconds since submission)

    @property
    def delay_ms(self) -> float | None:
        """RunPod's delayTime: time in queue, cold start included (cloud only)."""
        value = self.envelope.get("delayTime")
        return float(value) if isinstance(value, int | float) else None

    @property
    def execution_ms(self) -> float | None:
        """RunPod's executionTime: time in the handler (cloud only)."""
        value = self.envelope.get("executionTime")
        return float(value) if isinstance(value, int | float) else None

    def timing(self) -> dict[str, Any]:
        return {
            "runpod": {"delayTime_ms": self.delay_ms, "executionTime_ms": self.execution_ms},
            "client": {
                "submit_ms": self.submit_ms,
                "wall_s": round(self.wall_s, 3),
                "polls": self.polls,
                "statuses": [{"status": s, "at_s": round(t, 3)} for s, t in self.statuses],
            },
        }


UpdateSink = Callable[[JobUpdate], None]


def poll_intervals(slowest_s: float, first_s: float = FIRST_POLL_S) -> Iterator[float]:
    """Fast at first (most jobs that finish do so quickly), then back off to `slowest_s`."""
    interval = min(first_s, slowest_s)
    while True:
        yield interval
        interval = min(interval * BACKOFF, slowest_s)


def worker_error(envelope: dict[str, Any]) -> dict[str, Any]:
    """The worker's error object from a FAILED envelope, however the server presented it.

    The worker puts its error object, as a JSON string, in `error` (all RunPod keeps for failed jobs
    on the local dev API) and the same fields in `output` (kept by RunPod cloud). An exception in a
    handler gives the SDK's own JSON (error_type / error_message / error_traceback).
    """
    raw, output = envelope.get("error"), envelope.get("output")
    parsed: dict[str, Any] = {}
    if isinstance(raw, dict):
        parsed = dict(raw)
    elif isinstance(raw, str):
        try:
            value = json.loads(raw)
            parsed = value if isinstance(value, dict) else {}
        except ValueError:
            parsed = {}
    if "error_code" not in parsed and isinstance(output, dict) and "error_code" in output:
        parsed = {**output, **parsed}
    if parsed.get("error_code"):
        return parsed
    if "error_type" in parsed:
        trace = str(parsed.get("error_traceback") or "").strip().splitlines()[-6:]
        return {
            "error_code": "HANDLER_EXCEPTION",
            "error_message": f"{parsed.get('error_type')}: {parsed.get('error_message')}",
            "fix": "The handler raised outside its own error handling: see details.traceback and the worker log.",
            "details": {"traceback": trace},
        }
    return {
        "error_code": "WORKER_ERROR",
        "error_message": str(raw)[:2000] if raw is not None else "the job failed without an error message",
        "fix": "See the worker log in the RunPod console.",
        "details": {},
    }


def terminal_error(job_id: str, envelope: dict[str, Any]) -> ClientError:
    status = envelope.get("status")
    if status == "FAILED":
        err = worker_error(envelope)
        return JobFailed(
            f"job {job_id} failed: {err.get('error_code')}: {err.get('error_message')}",
            code=str(err.get("error_code")),
            fix=str(err.get("fix") or ""),
            details={"job_id": job_id, "worker_error": err},
        )
    if status == "CANCELLED":
        return JobCancelled(f"job {job_id} was cancelled", details={"job_id": job_id})
    return timed_out(job_id, envelope)


def timed_out(job_id: str, envelope: dict[str, Any]) -> JobTimedOut:
    """TIMED_OUT has two causes on RunPod (job-states page): which one decides what to change.

    No executionTime: no worker took the job before it expired in the queue (policy.ttl); with one,
    the endpoint's execution timeout (policy.executionTimeout) stopped it while it ran.
    """
    execution = envelope.get("executionTime")
    if not isinstance(execution, int | float) or execution <= 0:
        return JobTimedOut(
            f"job {job_id} expired in the queue on RunPod: no worker took it "
            f"(waited {_seconds(envelope.get('delayTime'))}, never executed)",
            fix=JobTimedOut.QUEUE_FIX,
            details={"job_id": job_id, "timed_out_in": "queue", "delayTime_ms": envelope.get("delayTime")},
        )
    return JobTimedOut(
        f"job {job_id} was stopped by the endpoint's execution timeout after {_seconds(execution)} of execution",
        details={"job_id": job_id, "timed_out_in": "execution", "executionTime_ms": execution},
    )


def _seconds(ms: Any) -> str:
    return f"{ms / 1000:.1f} s" if isinstance(ms, int | float) else "an unknown time"


def cancel_quietly(api: Backend, job_id: str) -> dict[str, Any]:
    """Ask the endpoint to cancel; report what happened instead of raising."""
    try:
        answer = api.cancel(job_id)
        return {"sent": True, "answer": answer}
    except ClientError as exc:
        return {"sent": False, "error": exc.to_dict()}
    except KeyboardInterrupt:
        return {"sent": False, "error": {"code": "INTERRUPTED", "message": "cancel interrupted"}}


def wait_for_job(
    api: Backend,
    job_id: str,
    *,
    timeout_s: float,
    poll_interval_s: float,
    on_update: UpdateSink | None = None,
    started: float | None = None,
    first: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> JobResult:
    """Poll until the job is terminal. The deadline counts from `started` (the submission).

    On the deadline or Ctrl-C the job is cancelled on the endpoint (POST /cancel) before
    ClientTimeout / Interrupted is raised; their details say whether the cancel got through.
    """
    started = clock() if started is None else started
    deadline = started + timeout_s
    result = JobResult(job_id, "IN_QUEUE", None, first or {}, 0.0, 0)
    watch = _Watch(job_id, started, poll_interval_s, on_update, result)
    envelope = first
    try:
        while True:
            if envelope is not None and watch.saw(envelope, clock()):
                return watch.result
            remaining = deadline - clock()
            if remaining > 0 and envelope is not None:
                sleep(min(watch.next_interval(), remaining))
                remaining = deadline - clock()
            if remaining <= 0:
                raise _timeout(api, job_id, timeout_s)
            try:
                envelope = api.status(job_id, wait_s=remaining)  # every attempt ends by the deadline
            except ClientError as exc:
                if isinstance(exc, EndpointError) and (exc.details.get("deadline_passed") or clock() >= deadline):
                    raise _timeout(api, job_id, timeout_s, exc) from None
                exc.details.setdefault("job_id", job_id)  # the job may still run: say which one
                raise
            watch.result.polls += 1
    except KeyboardInterrupt:
        cancel = cancel_quietly(api, job_id)
        raise Interrupted(
            f"interrupted while waiting for job {job_id}; "
            + ("cancel sent" if cancel["sent"] else "cancel could not be sent"),
            details={"job_id": job_id, "cancel": cancel},
        ) from None


class _Watch:
    """One job's observed states: transitions, progress updates, polling pace, the terminal answer."""

    def __init__(
        self, job_id: str, started: float, poll_interval_s: float, on_update: UpdateSink | None, result: JobResult
    ) -> None:
        self.job_id, self.started, self.poll_interval_s, self.on_update = job_id, started, poll_interval_s, on_update
        self.result = result
        self.last_status: str | None = None
        self.intervals = poll_intervals(poll_interval_s)

    def next_interval(self) -> float:
        return next(self.intervals)

    def saw(self, envelope: dict[str, Any], now: float) -> bool:
        """Record an answer; True when the job completed, a JobUnsuccessful when it ended otherwise."""
        status = str(envelope.get("status"))
        if status != self.last_status:
            self.result.statuses.append((status, now - self.started))
            if self.last_status is not None:  # a transition: look again soon
                self.intervals = poll_intervals(self.poll_interval_s, first_s=0.5)
            self.last_status = status
        if self.on_update is not None:
            progress = envelope.get("output") if status == "IN_PROGRESS" else None
            self.on_update(JobUpdate(self.job_id, status, now - self.started, self.result.polls, progress))
        if status not in TERMINAL:
            return False
        self.result.status, self.result.envelope, self.result.output = status, envelope, envelope.get("output")
        self.result.wall_s = now - self.started
        if status != "COMPLETED":
            raise terminal_error(self.job_id, envelope)
        return True


def _timeout(api: Backend, job_id: str, timeout_s: float, last: ClientError | None = None) -> ClientTimeout:
    """The deadline passed: cancel the paid job (POST /cancel) and say whether that got through."""
    cancel = cancel_quietly(api, job_id)
    how = "cancelled it" if cancel["sent"] else f"could not cancel it ({cancel['error']['message']})"
    why = f" (the last status call: {last.message})" if last is not None else ""
    details: dict[str, Any] = {"job_id": job_id, "cancel": cancel}
    if last is not None:
        details["last_error"] = last.to_dict()
    return ClientTimeout(f"job {job_id} did not finish within {timeout_s:g} s{why}; {how}", details=details)


def submit_and_wait(
    api: Backend,
    job_input: dict[str, Any],
    *,
    timeout_s: float,
    poll_interval_s: float,
    safe_to_retry: bool = False,
    on_submitted: Callable[[str], None] | None = None,
    on_update: UpdateSink | None = None,
    clock: Callable[[], float] = time.monotonic,
    run_options: dict[str, Any] | None = None,
) -> JobResult:
    """POST /run, then follow the job (see wait_for_job). `run_options`: RunPod's top-level fields of the
    request (`webhook`, `policy`), for backends that have them (RunPodAPI.run)."""

    def submit() -> dict[str, Any]:
        answer = api.run(job_input, safe_to_retry=safe_to_retry, wait_s=timeout_s, **(run_options or {}))
        return {"status": "IN_QUEUE", **answer}

    what = "submitting the job (no job id yet; nothing to cancel)"
    return _submit_then_follow(api, submit, what, timeout_s, poll_interval_s, on_update, clock, on_submitted)


def run_sync(
    api: Backend,
    job_input: dict[str, Any],
    *,
    timeout_s: float,
    poll_interval_s: float,
    on_update: UpdateSink | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> JobResult:
    """POST /runsync (cheap, quick jobs: test, diagnose); poll if RunPod answers before the job is done."""

    def submit() -> dict[str, Any]:
        return api.runsync(job_input, wait_s=timeout_s)  # RunPod answers within the deadline (?wait=)

    return _submit_then_follow(api, submit, "waiting for /runsync", timeout_s, poll_interval_s, on_update, clock)


def _submit_then_follow(
    api: Backend,
    submit: Callable[[], dict[str, Any]],
    what: str,
    timeout_s: float,
    poll_interval_s: float,
    on_update: UpdateSink | None,
    clock: Callable[[], float],
    on_submitted: Callable[[str], None] | None = None,
) -> JobResult:
    """Time the submission, then follow its answer to the end; the deadline counts from the submission."""
    started = clock()
    try:
        first = submit()
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted while {what}") from None
    submit_ms = (clock() - started) * 1000
    job_id = str(first.get("id") or "runsync")
    if on_submitted is not None:
        on_submitted(job_id)
    result = wait_for_job(
        api,
        job_id,
        timeout_s=timeout_s,
        poll_interval_s=poll_interval_s,
        on_update=on_update,
        started=started,
        first=first,
        clock=clock,
    )
    result.submit_ms = round(submit_ms, 2)
    return result
