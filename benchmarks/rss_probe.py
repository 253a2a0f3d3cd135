"""One peak-RSS measurement in a fresh process (run by bench_rss): a job whose output is a ~50 MB PNG.

    python -m benchmarks.rss_probe VARIANT  (settings from the environment, as the worker reads them)

VARIANT: ours | baseline.
The process warms up with a small job, then resets the kernel's peak-RSS mark (writing 5 to
/proc/self/clear_refs, Linux ≥ 4.0), runs the big job and reads VmHWM: the exact peak resident set
of the process during the job, not a sampled one. Growth = VmHWM − VmRSS before the job. A second
mark covers what the RunPod SDK does next with the result (json.dumps of the job output, encoded to
bytes for the HTTP POST), for the worker's end-to-end peak. Prints one JSON line.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def big_workflow(prefix: str) -> dict[str, Any]:
    """4096² of mid-grey plus Gaussian noise: a PNG of ~50 MB (noise does not compress)."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 4096, "height": 4096, "batch_size": 1, "color": 0x808080},
        },
        "2": {"class_type": "ImageAddNoise", "inputs": {"image": ["1", 0], "seed": 1, "strength": 0.25}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def main(variant: str) -> dict[str, Any]:
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    if variant == "baseline":
        from benchmarks import baseline_handler as baseline

        baseline.COMFY_HOST = os.environ["COMFY_URL"].split("://", 1)[1]

        def run(workflow: dict[str, Any]) -> dict[str, Any]:
            return baseline.handler({"id": "rss", "input": {"workflow": workflow}})

        def out_of(result: dict[str, Any]) -> tuple[int, int]:
            data = result["images"][0]["data"]
            return len(base64.b64decode(data)), len(data)
    else:
        import handler.worker as worker
        from handler.config import Settings
        from handler.runtime import Runtime

        worker._runtime = Runtime(Settings.from_env())
        worker._runtime.events.start(wait=2)

        def run(workflow: dict[str, Any]) -> dict[str, Any]:
            return worker.handle({"id": "rss", "input": {"workflow": workflow}})

        def out_of(result: dict[str, Any]) -> tuple[int, int]:
            item = result["outputs"][0]
            return item["size_bytes"], len(item["base64"])

    small = big_workflow(f"rss_warm_{uuid.uuid4().hex[:6]}")
    small["1"]["inputs"].update(width=64, height=64)
    warm = run(small)
    if "error" in warm:
        raise RuntimeError(str(warm)[:500])
    del warm

    rss_before = _status_kb("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    result = run(big_workflow(f"rss_{variant}_{uuid.uuid4().hex[:6]}"))
    wall = time.perf_counter() - t0
    peak_job = _status_kb("VmHWM")
    if "error" in result:
        raise RuntimeError(str(result)[:500])
    size, encoded = out_of(result)
    _reset_peak()
    body = json.dumps({"output": result}, ensure_ascii=False).encode()  # what the SDK sends
    peak_send = _status_kb("VmHWM")
    del body
    kb = 1024
    return {
        "variant": variant,
        "output_bytes": size,
        "base64_chars": encoded,
        "rss_before_mb": round(rss_before / kb, 1),
        "peak_mb": round(peak_job / kb, 1),
        "peak_growth_mb": round((peak_job - rss_before) / kb, 1),
        "peak_growth_x_output": round((peak_job - rss_before) * 1024 / size, 3),
        "sdk_send_peak_growth_x_output": round((peak_send - rss_before) * 1024 / size, 3),
        "job_wall_s": round(wall, 2),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
