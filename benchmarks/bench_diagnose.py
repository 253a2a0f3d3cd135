"""`diagnose` with 5,000 model files over the image's models dir and both network-volume layouts.

In-process `handle({"input": {"mode": "diagnose"}})` against the real ComfyUI, which lists the same
files (its /object_info loader combos and /models/<folder> include them all), timed with
perf_counter around the call. Every registered workflow is analysed on each call, as the worker does.
"""

from __future__ import annotations

import json
import time
from typing import Any

import requests

from benchmarks._common import reps, stats, write_result
from benchmarks.stack import BenchStack, use_runtime

TARGET_P50_MS = 300.0


def run(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    from handler.worker import handle

    assert bs.stack is not None
    use_runtime(runtime)
    t0 = time.perf_counter()
    object_info = requests.get(f"{bs.stack.comfy_url}/object_info", timeout=60).content
    object_info_ms = (time.perf_counter() - t0) * 1000
    handle({"id": "diag-warm", "input": {"mode": "diagnose"}})
    walls, timings, last = [], [], {}
    for i in range(reps(20, 5)):
        t0 = time.perf_counter()
        last = handle({"id": f"diag-{i}", "input": {"mode": "diagnose"}})
        walls.append((time.perf_counter() - t0) * 1000)
        if "error" in last:
            raise RuntimeError(f"diagnose failed: {last['error'][:500]}")
        timings.append(last["timings"])
    on_disk = sum(len(v["on_disk"]) for v in last["models"].values())
    seen = sum(len(v["comfyui_lists"]) for v in last["models"].values())
    wall = stats(walls)
    return {
        "target": f"p50 ≤ {TARGET_P50_MS:g} ms",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "setup": {
            "model_files_on_disk": on_disk,
            "model_files_comfyui_lists": seen,
            "layout": bs.models,
            "object_info_bytes": len(object_info),
            "object_info_fetch_ms": round(object_info_ms, 1),
            "registered_workflows_analysed": len(last["workflow_checks"]),
            "response_json_bytes": len(json.dumps(last)),
            "findings": last["summary"],
        },
        "figures": {
            "wall_ms": wall,
            "handler_timings_median": {k: stats(t.get(k) for t in timings)["median"] for k in timings[0]},
        },
        "met": wall["median"] <= TARGET_P50_MS,
    }


def main(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    result = run(bs, runtime)
    write_result("diagnose", result)
    return result
