"""The worker's state machine, read by every mode: starting -> ready -> broken / restarting.

    starting ──ready──> ready ──ComfyUI died──> restarting ──ready──> ready
        │                 ▲                          │
        └──start failed──> broken <──restarts exhausted┘
    (a start timeout is broken until ComfyUI answers after all; then ready)

The supervisor (handler.supervisor) moves it; `test`, `diagnose` and `generate` read it, so a job
never waits on a ComfyUI that will not come, and always learns why. Thread-safe; the clock is
injectable so tests can drive it without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from workflows.errors import CODES


class State(StrEnum):
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class Cause:
    """Why the worker is not ready: a code from workflows.errors.CODES, a message naming the evidence."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    own_fix: str | None = None  # a failure signature's fix, naming what to change (workflows.signatures)

    @property
    def fix(self) -> str:
        return self.own_fix or CODES[self.code].fix

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "fix": self.fix,
            **({"details": self.details} if self.details else {}),
        }


# The start phases, in the order they normally happen (seconds since the entrypoint started).
PHASES = (
    "entrypoint_started",
    "model_cache_linked",  # RunPod's model cache looked up and linked (before ComfyUI is spawned)
    "comfyui_process_started",
    "handler_imported",
    "comfyui_ready",
    "sdk_started",
    "first_job_taken",
    "first_output",  # the first prompt ComfyUI ran to its outputs: a job's, or the self-check's smoke
)


class WorkerState:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        origin: float | None = None,
    ) -> None:
        """`origin`: wall-clock time the container's entrypoint started (phases count from it)."""
        self._clock, self._wall = clock, wall
        self._cond = threading.Condition()
        self.started = clock()
        self.origin = origin if origin is not None else wall()
        self.state = State.STARTING
        self.cause: Cause | None = None
        self.restart_count = 0
        self.last_death: Cause | None = None
        self.last_death_at: float | None = None
        self.phases: dict[str, float] = {"entrypoint_started": 0.0}
        self.pack_imports: dict[str, float] = {}

    # --- moves (the supervisor) -------------------------------------------------------------
    def set(self, state: State, cause: Cause | None = None) -> None:
        with self._cond:
            self.state, self.cause = state, cause if state is not State.READY else None
            self._cond.notify_all()

    def died(self, cause: Cause) -> None:
        with self._cond:
            self.last_death, self.last_death_at = cause, self._wall()
            self._cond.notify_all()

    def restarting(self, cause: Cause) -> None:
        with self._cond:
            self.restart_count += 1
            self.state, self.cause = State.RESTARTING, cause
            self._cond.notify_all()

    def phase(self, name: str, at: float | None = None) -> None:
        """Record a phase the first time it happens (`at`: wall-clock time, default now)."""
        with self._cond:
            if name not in self.phases:
                self.phases[name] = round((at if at is not None else self._wall()) - self.origin, 3)

    # --- reads (every mode) ------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.state is State.READY

    def uptime_s(self) -> float:
        return round(self._clock() - self.started, 1)

    def wait_settled(self, deadline: float) -> State:
        """Block until ready or broken, or until `deadline` (on this state's clock) passes."""
        with self._cond:
            while self.state in (State.STARTING, State.RESTARTING):
                remaining = deadline - self._clock()
                if remaining <= 0:
                    break
                self._cond.wait(min(remaining, 0.5))
            return self.state

    def snapshot(self) -> dict[str, Any]:
        """What `test` and `diagnose` report about the worker itself."""
        with self._cond:
            snap: dict[str, Any] = {
                "state": self.state.value,
                "since_start_s": self.uptime_s(),
                "restart_count": self.restart_count,
                "phases": {
                    **dict(sorted(self.phases.items(), key=lambda kv: kv[1])),
                    **({"pack_imports_s": dict(self.pack_imports)} if self.pack_imports else {}),
                },
            }
            if self.cause is not None:
                snap["cause"] = self.cause.to_dict()
            if self.last_death is not None and self.last_death_at is not None:  # both set by one assignment
                snap["last_death"] = {**self.last_death.to_dict(), "at_s": round(self.last_death_at - self.origin, 3)}
            return snap
