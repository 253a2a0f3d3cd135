"""A job that ran unvetted node classes can't see the next job (README "Security").

The judging is pure (workflows.vetting); this is its wiring around one prompt's run:
- before: the prompt's classes against the vetted set (ComfyUI's core from /object_info, every
  registered workflow's classes, TRUSTED_NODES); UNVETTED_NODES=deny refuses with POLICY_DENIED;
- after (restart, the default): the supervisor restarts ComfyUI at once (handler.supervisor.restart,
  which kills everything ComfyUI started, handler.reaper). The worker turns `restarting` before the
  job answers, so the next job waits for READY like after any restart; the answer's `warnings` say
  which classes and how to vet them; `test` and `diagnose` show restart_count and last_death
  (UNVETTED_NODES_RAN). What the job changed in ComfyUI's HOME and user directory (TMPDIR is in it)
  while it ran is removed before ComfyUI starts again (handler.jobfiles.TaintedDirs): a planted
  compiled-kernel cache or .pth would otherwise run in every later job.
Cost: one ComfyUI start (and each model's reload by the next job) per such job; what it downloaded
into a cache in HOME is downloaded again by the next job that needs it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from handler.runtime import Runtime
from handler.state import Cause
from workflows.judge import findings_error
from workflows.registry import Registry
from workflows.vetting import Verdict, judge, vetted_classes, workflow_classes

log = logging.getLogger("handler.isolation")

_registered: dict[int, tuple[Registry, list[dict[str, Any]]]] = {}


def registered_workflows(registry: Registry) -> list[dict[str, Any]]:
    """Every registered workflow (parsed once per registry)."""
    cached = _registered.get(id(registry))
    if cached is None or cached[0] is not registry:
        workflows = []
        for entry in registry.entries.values():
            with contextlib.suppress(Exception):  # a broken entry is reported by the registry itself
                workflows.append(entry.workflow())
        cached = _registered[id(registry)] = (registry, workflows)
    return cached[1]


@dataclass(frozen=True, slots=True)
class Guard:
    """One prompt's verdict, and the ComfyUI process it runs in (to restart only that one)."""

    verdict: Verdict
    comfy_pid: int | None


def before_run(rt: Runtime, workflow: dict[str, Any]) -> Guard:
    """Judge the prompt's classes; POLICY_DENIED (a JobError) under UNVETTED_NODES=deny."""
    settings = rt.settings
    try:
        info: dict[str, Any] = rt.object_info()
    except Exception:  # no definitions: nothing counts as core, the restart errs on the safe side
        info = {}
    vetted = vetted_classes(info, registered_workflows(rt.registry), settings.trusted_nodes)
    verdict = judge(workflow_classes(workflow), vetted, settings.unvetted_nodes)
    if verdict.action == "deny":
        raise findings_error([verdict.finding()])
    supervisor = rt.supervisor
    if supervisor is not None and verdict.action == "restart_after":
        supervisor.tainted.mark()  # what it changes in HOME and the user directory goes before the restart
    return Guard(verdict, supervisor.pid() if supervisor is not None else None)


def after_run(rt: Runtime, guard: Guard, job_id: str) -> str | None:
    """Restart the ComfyUI the prompt ran in, when it ran unvetted classes; the answer's warning."""
    verdict, supervisor = guard.verdict, rt.supervisor
    if verdict.action != "restart_after":
        return None
    if supervisor is None:  # ComfyUI run by someone else: say so, restart nothing
        return verdict.warning().replace("ComfyUI is restarted", "ComfyUI should be restarted (it is not the worker's)")
    if supervisor.pid() == guard.comfy_pid and supervisor.alive():  # not already restarted (a timeout, memory)
        names = ", ".join(verdict.unvetted)
        cause = Cause(
            "UNVETTED_NODES_RAN",
            f"job {job_id} ran node classes not vetted on this deployment ({names}); the worker restarted "
            "ComfyUI so nothing they left in its process can see the next job",
            {"classes": list(verdict.unvetted), "job_id": job_id},
        )
        log.warning("%s", cause.message)
        supervisor.restart(cause)
    return verdict.warning()
