"""Shared helpers of the benchmarks: statistics, machine facts, result files, the benchmark stack."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BENCH_RESULTS", REPO / "benchmarks" / "results"))
sys.path.insert(0, str(REPO))

# The entrypoint sets this for the worker; in-process handler calls must run with the same level
# (the SDK's default, DEBUG, logs every progress update).
os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
os.environ.setdefault("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true")

# Scale every repetition count (BENCH_SCALE=0.3 for a quick look, 3 for tighter figures).
SCALE = float(os.environ.get("BENCH_SCALE", "1"))


def reps(n: int, minimum: int = 3) -> int:
    return max(minimum, round(n * SCALE))


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list: a value that was measured."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def stats(values: Iterable[float], digits: int = 2) -> dict[str, Any]:
    vals = sorted(float(v) for v in values if v is not None)
    if not vals:
        return {"n": 0}
    return {
        "n": len(vals),
        "min": round(vals[0], digits),
        "median": round(statistics.median(vals), digits),
        "p95": round(percentile(vals, 95), digits),
        "max": round(vals[-1], digits),
        "mean": round(sum(vals) / len(vals), digits),
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(milliseconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn()
    return (time.perf_counter() - t0) * 1000, result


# ---------------------------------------------------------------------------------------------
# Machine facts and result files
# ---------------------------------------------------------------------------------------------


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def loadavg() -> list[float] | None:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return None


def machine_facts(comfy_stats: dict[str, Any] | None = None) -> dict[str, Any]:
    import psutil
    import requests
    import runpod

    system = (comfy_stats or {}).get("system", {})
    if not system.get("comfyui_version"):
        from tools.localstack import DEFAULT_COMFY_HOME

        try:
            text = (DEFAULT_COMFY_HOME / "ComfyUI" / "comfyui_version.py").read_text()
            system = {"comfyui_version": text.split('"')[1]}
        except (OSError, IndexError):
            pass
        # ComfyUI's own venv names torch's version in its dist-info folder (torch-2.13.0+cpu.dist-info)
        for info in sorted((DEFAULT_COMFY_HOME / "venv").glob("lib/python*/site-packages/torch-*.dist-info")):
            system["pytorch_version"] = info.name.removeprefix("torch-").removesuffix(".dist-info")
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "runpod_sdk": runpod.__version__,
        "requests": requests.__version__,
        "comfyui_version": system.get("comfyui_version"),
        "comfyui_python": (system.get("python_version") or "").split(" ")[0] or None,
        "comfyui_torch": system.get("pytorch_version"),
        "loadavg": loadavg(),
    }


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "when": now_iso(), "loadavg_after": loadavg(), **data}
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def read_results(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((directory or RESULTS).glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
    return out


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


_PHOTO_BASE: dict[int, Any] = {}


def photo_png(index: int, size: int = 512) -> bytes:
    """A photo-like PNG (smooth colour gradient plus grain, ~0.4 MB at 512²), different for every index."""
    from PIL import Image, ImageDraw

    if size not in _PHOTO_BASE:
        ramp = Image.linear_gradient("L").resize((size, size))
        img = Image.merge("RGB", (ramp, ramp.rotate(90), ramp.point(lambda v: 255 - v)))
        _PHOTO_BASE[size] = Image.blend(img, Image.effect_noise((size, size), 24).convert("RGB"), 0.18)
    img = _PHOTO_BASE[size].copy()
    rnd = random.Random(index)
    x = (index * 37) % (size - 40)
    ImageDraw.Draw(img).rectangle((x, 10, x + 40, 50), fill=(rnd.randrange(256), rnd.randrange(256), 0))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
