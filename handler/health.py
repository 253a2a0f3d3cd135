"""`test` mode: a sub-second health ping. Never raises; `ok` is false when something is wrong."""

from __future__ import annotations

import shutil
import time
from typing import Any

from comfyui_client.stats import comfyui_version, gpu_summary
from handler.config import HANDLER_VERSION
from handler.model_cache import health_models
from handler.runtime import Runtime
from workflows.errors import CODES
from workflows.responses import TestResponse, test_response


def disk_free_gb(path: Any) -> float | None:
    try:
        return round(shutil.disk_usage(path).free / 1e9, 2)
    except OSError:
        return None


def volume_mounted(runtime: Runtime) -> bool:
    return runtime.settings.volume_dir.is_dir()


def health(runtime: Runtime) -> TestResponse:
    """Answers at once in every state. Not ready: `cause` {code, message, fix} and `logs_tail` say why."""
    started = time.perf_counter()
    snap = runtime.state.snapshot() if runtime.state is not None else None
    ready = snap is None or snap["state"] == "ready"
    stats: dict[str, Any] | None = None
    if ready and runtime.comfy_process_alive() is not False:
        # A ComfyUI the worker knows is up may be busy for a moment (building /object_info, listing
        # models for the background self-check): one more, longer look before calling it down.
        for timeout in (0.5, 1.0) if snap is not None else (0.5,):
            try:
                stats = runtime.comfy.system_stats(timeout=timeout, probe=True)
                break
            except Exception:
                stats = None
    free = disk_free_gb(runtime.settings.output_dir)
    result = test_response(
        ok=stats is not None and free is not None and free >= runtime.settings.disk_low_gb,
        comfyui_up=stats is not None,
        disk_free_gb=free,
        volume_mounted=volume_mounted(runtime),
        comfyui_version=comfyui_version(stats),
        handler_version=HANDLER_VERSION,
        uptime_s=round(time.monotonic() - runtime.started_at, 1),
        models=health_models(runtime),
    )
    if snap is not None:
        result.update(snap)  # type: ignore[typeddict-item]  # WorkerState.snapshot: its keys are in TestResponse
        result["confinement"] = runtime.confinement_line()
    cause = snap.get("cause") if snap else None
    if snap is not None and cause is None and not ready:
        cause = {
            "code": "COMFY_STARTING",
            "message": f"ComfyUI is starting ({snap['since_start_s']} s since the worker started)",
            "fix": CODES["COMFY_STARTING"].fix,
        }
    if cause is None and (full := runtime.disk_full()) is not None:
        cause = {"code": "DISK_FULL", "message": full, "fix": CODES["DISK_FULL"].fix}
    if cause is None and runtime.registry.problems:
        name, problem = sorted(runtime.registry.problems.items())[0]
        cause = {
            "code": "WORKFLOW_BROKEN",
            "message": f"registered workflow {name!r} is disabled: {problem}",
            "fix": CODES["WORKFLOW_BROKEN"].fix,
        }
    if cause is not None:
        result["ok"] = False
        result["cause"] = cause
        result["logs_tail"] = runtime.logs_tail(40)
    if gpu := gpu_summary(stats):
        result["gpu"] = gpu
    result["timings"] = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
    return result
