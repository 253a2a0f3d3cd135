"""The worker's long-lived state: settings, one pooled ComfyUI client, one event stream, the registry,
and — in the running worker — its state machine, ComfyUI's supervisor and ComfyUI's output.

In-process users (tests, benchmarks, the self-check CLI) build a Runtime without the last three: it
then talks to a ComfyUI someone else runs, and reads its log from the file."""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from comfyui_client import ComfyClient, EventStream
from handler.comfylog import ComfyLog
from handler.config import Settings
from handler.jobfiles import JobActivity
from handler.state import State, WorkerState
from workflows.errors import JobError
from workflows.registry import Registry, default_registry, load_registry
from workflows.secrets import redact

if TYPE_CHECKING:  # imported by the worker only when it runs ComfyUI itself
    from handler.supervisor import Supervisor


@dataclass
class Runtime:
    settings: Settings
    registry: Registry = field(default_factory=default_registry)
    started_at: float = field(default_factory=time.monotonic)
    _object_info: dict[str, Any] | None = field(default=None, repr=False)
    state: WorkerState | None = None
    supervisor: Supervisor | None = None  # when the worker runs ComfyUI itself
    log: ComfyLog | None = None
    model_cache: Any = None  # handler.model_cache.CacheReport: what the start linked from RunPod's model cache
    model_loads: dict[str, dict[str, Any]] = field(default_factory=dict)  # folder/name -> first load (model_loads)
    _job_log_offsets: dict[str, int] = field(default_factory=dict, repr=False)
    _info_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _jobs: threading.Condition = field(default_factory=threading.Condition, repr=False)
    _active_jobs: int = field(default=0, init=False)
    _last_job_end: float = field(default=float("-inf"), init=False, repr=False)
    jobs_activity: JobActivity = field(default_factory=JobActivity, repr=False)  # what jobs wrote, for cleanup

    @classmethod
    def for_worker(cls, settings: Settings, state: WorkerState, log: ComfyLog) -> Runtime:
        registry = load_registry(settings.registry_dir) if settings.registry_dir else default_registry()
        return cls(settings, registry, state=state, log=log)

    @cached_property
    def comfy(self) -> ComfyClient:
        return ComfyClient(self.settings.comfy_url)

    @cached_property
    def events(self) -> EventStream:
        return EventStream(self.comfy.ws_url).start()

    @cached_property
    def s3(self):  # noqa: ANN201 - S3Store, imported lazily with boto3
        from handler.outputs import S3Store

        s = self.settings
        assert s.bucket_endpoint_url
        return S3Store(
            s.bucket_endpoint_url,
            s.bucket_access_key_id,
            s.bucket_secret_access_key,
            s.bucket_name,
            s.bucket_region,
            expires_s=s.presign_expires_s,
        )

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        """ComfyUI's node definitions, fetched once (≈0.5 MB); refresh after packs may have changed."""
        with self._info_lock:  # one fetch at a time: a job arriving mid-fetch reuses it
            if refresh or self._object_info is None:
                self._object_info = self.comfy.object_info()
            return self._object_info

    def comfy_pid(self) -> int | None:
        path = self.settings.comfy_pid_file
        try:
            return int(path.read_text().strip()) if path else None
        except (OSError, ValueError):
            return None

    def forget_object_info(self) -> None:
        """ComfyUI restarted: its node definitions are read again on the next job."""
        self._object_info = None

    def comfy_process_alive(self) -> bool | None:
        """True/False when we run ComfyUI or know its PID, None when we can't tell."""
        if self.supervisor is not None:
            return self.supervisor.alive()
        pid = self.comfy_pid()
        if pid is None:
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        # A zombie still answers kill(0): look at its state.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        return state not in ("Z", "X")

    _NOT_OURS = "ComfyUI is not started by this worker (in-process use): its confinement is not known"

    def confinement(self) -> dict[str, Any]:
        """What confines ComfyUI (handler.confine, handler.memwatch): diagnose's `confinement`."""
        return {"why_not": self._NOT_OURS} if self.supervisor is None else dict(self.supervisor.report())

    def confinement_line(self) -> str:
        """The same in one line, for `test`."""
        return self._NOT_OURS if self.supervisor is None else str(self.supervisor.confinement.summary())

    def begin_job(self, job: str) -> None:
        """Mark where a job's window of ComfyUI's output starts: its untagged lines (handler.comfylog)."""
        with self._jobs:
            self._active_jobs += 1
        if self.log is not None:
            self.log.begin_job(job)
        else:
            self._job_log_offsets[job] = _size(self.settings.comfy_log)

    def claim_prompt(self, job: str, prompt_id: str) -> None:
        """`prompt_id` is `job`'s: every line ComfyUI tags with it is that job's alone (before it is queued)."""
        if self.log is not None:
            self.log.claim(job, prompt_id)

    def end_job(self, job: str) -> None:
        if self.log is not None:
            self.log.end_job(job)
        self._job_log_offsets.pop(job, None)
        with self._jobs:
            self._active_jobs -= 1
            self._last_job_end = time.monotonic()
            self._jobs.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs (background work yields to jobs); False if `timeout` passed first."""
        return self.wait_quiet(0.0, timeout)

    def wait_quiet(self, quiet_s: float, timeout: float) -> bool:
        """Wait until no job has run for `quiet_s` seconds of this wait (background work that would
        hold ComfyUI waits for a lull, not just a gap between two jobs); False if `timeout` passed first."""
        called = time.monotonic()
        deadline = called + timeout
        with self._jobs:
            while True:
                now = time.monotonic()
                quiet_since = max(self._last_job_end, called)
                if self._active_jobs == 0 and now - quiet_since >= quiet_s:
                    return True
                if now >= deadline:
                    return False
                wait = quiet_s - (now - quiet_since) if self._active_jobs == 0 else deadline - now
                self._jobs.wait(min(max(wait, 0.001), deadline - now))

    def logs_tail(self, lines: int = 80, job: str | None = None) -> list[str]:
        """The last lines of ComfyUI's output, secrets removed: `job`'s own when given (its prompts', and
        untagged ones written while it ran), else no job's (so no job's data shows up in another's answer)."""
        secrets = self.settings.secrets()
        if self.log is not None:
            if job is not None:
                self.log.settle(job)  # the job's last lines may still be on their way from ComfyUI
            return [redact(line, secrets) for line in self.log.tail(lines, job)]
        start = self._job_log_offsets.get(job, 0) if job else 0
        try:
            with self.settings.comfy_log.open("rb") as fh:
                end = fh.seek(0, os.SEEK_END)
                if start > end:  # rotated meanwhile
                    start = 0
                fh.seek(max(start, end - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return []
        return [redact(line, secrets) for line in text.splitlines()[-lines:]]

    def require_ready(self, deadline: float) -> None:
        """Before a job uses ComfyUI: wait while it (re)starts, within the job's own deadline; fail at
        once, with the cause, when the worker is broken; refuse when the output disk is full."""
        state = self.state
        if state is not None:
            settled = state.wait_settled(deadline)
            if settled is not State.READY:
                snap = state.snapshot()
                cause = state.cause
                if settled is State.BROKEN and cause is not None:
                    raise JobError(cause.code, cause.message, {"state": snap["state"], **cause.details}, fix=cause.fix)
                raise JobError(
                    "COMFY_STARTING",
                    f"ComfyUI was still {settled.value} when the job's deadline passed "
                    f"({snap['since_start_s']} s after the worker started)",
                    {"state": snap["state"], "phases": snap["phases"]},
                )
        from handler.system_facts import job_blocker  # the system's facts, not the settings' (cached)

        if (blocker := job_blocker(self)) is not None:  # read-only, inode-starved, ComfyUI elsewhere
            raise blocker
        if (full := self.disk_full()) is not None:
            raise JobError("DISK_FULL", full, {"path": str(self.settings.output_dir)})

    def disk_full(self) -> str | None:
        """A message when the output disk has less than DISK_FULL_MB free (a job could not save)."""
        try:
            free = shutil.disk_usage(self.settings.output_dir).free
        except OSError:
            return None
        if free >= self.settings.disk_full_mb * 1e6:
            return None
        return (
            f"only {free / 1e6:.1f} MB free on the output disk ({self.settings.output_dir}); "
            f"jobs are refused below DISK_FULL_MB={self.settings.disk_full_mb:g}"
        )


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
