"""`test` mode: a sub-second health ping. Never raises; `ok` is false when something is wrong."""

from __future__ import annotations

import shutil
import time
from typing import Any

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
        "comfyui_version": (stats or {}).get("system", {}).get("comfyui_version"),
        "handler_version": HANDLER_VERSION,
        "uptime_s": round(time.monotonic() - runtime.started_at, 1),
    }
    gpus = [d for d in (stats or {}).get("devices", []) if d.get("type") not in (None, "cpu")]
    if gpus:
        result["gpu"] = {
            "name": gpus[0].get("name"),
            "vram_total_gb": round(gpus[0].get("vram_total", 0) / 1e9, 2),
            "vram_free_gb": round(gpus[0].get("vram_free", 0) / 1e9, 2),
        }
    result["timings"] = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
    return result
