"""Reading ComfyUI's /system_stats answer (pure), for the worker's and the client's health reports."""

from __future__ import annotations

from typing import Any


def comfyui_version(stats: Any) -> str | None:
    """ComfyUI's version from /system_stats; None when the answer (perhaps not ComfyUI's) has none."""
    system = stats.get("system") if isinstance(stats, dict) else None
    version = system.get("comfyui_version") if isinstance(system, dict) else None
    return version if isinstance(version, str) and version else None


def gpu_summary(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    """Name and VRAM (GB) of the first non-CPU device, or None on a CPU-only ComfyUI."""
    gpus = [d for d in (stats or {}).get("devices", []) if d.get("type") not in (None, "cpu")]
    if not gpus:
        return None
    return {
        "name": gpus[0].get("name"),
        "vram_total_gb": round(gpus[0].get("vram_total", 0) / 1e9, 2),
        "vram_free_gb": round(gpus[0].get("vram_free", 0) / 1e9, 2),
    }


def system_summary(stats: dict[str, Any], handler_version: str | None) -> dict[str, Any]:
    """The diagnose answer's `system`: the handler's version (None in direct mode), ComfyUI's own
    system facts (versions, RAM, ...) and its devices."""
    return {"handler_version": handler_version, **(stats.get("system") or {}), "devices": stats.get("devices", [])}
