"""`test` mode: a sub-second health ping. Never raises; `ok` is false when something is wrong."""

from __future__ import annotations

import shutil
import time
from typing import Any

from comfyui_client.stats import comfyui_version, gpu_summary
from handler.config import HANDLER_VERSION
from handler.runtime import Runtime


def disk_free_gb(path: Any) -> float | None:
    try:
        return round(shutil.disk_usage(path).free / 1e9, 2)
    except OSError:
        return None


def volume_mounted(runtime: Runtime) -> bool:
    return runtime.settings.volume_dir.is_dir()


def health(runtime: Runtime) -> dict[str, Any]:
    started = time.perf_counter()
    stats: dict[str, Any] | None = None
    if runtime.comfy_process_alive() is not False:
        try:
            stats = runtime.comfy.system_stats(timeout=0.5, probe=True)
        except Exception:
            stats = None
    free = disk_free_gb(runtime.settings.output_dir)
    result: dict[str, Any] = {
        "ok": stats is not None and free is not None and free >= runtime.settings.disk_low_gb,
        "comfyui_up": stats is not None,
        "disk_free_gb": free,
        "volume_mounted": volume_mounted(runtime),
        "comfyui_version": comfyui_version(stats),
        "handler_version": HANDLER_VERSION,
        "uptime_s": round(time.monotonic() - runtime.started_at, 1),
    }
    if gpu := gpu_summary(stats):
        result["gpu"] = gpu
    result["timings"] = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
    return result
