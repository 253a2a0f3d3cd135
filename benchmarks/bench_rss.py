"""Peak RSS while returning a ~50 MB output as base64 (see benchmarks/rss_probe.py for the method).

Each variant runs in its own fresh process against the bench stack's ComfyUI, one after the other:
ours and the baseline. The
noise image's upstream nodes are cached by ComfyUI after the first run, so each job re-runs only
SaveImage (a new prefix per job) and every variant returns the same 50 MB PNG.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from benchmarks._common import REPO, write_result
from benchmarks.stack import BenchStack, child_env

TARGET_X = 2.5
VARIANTS = ("ours", "baseline")


def run(bs: BenchStack) -> dict[str, Any]:
    assert bs.stack is not None
    settings = bs.settings()
    env = child_env(
        COMFY_URL=settings.comfy_url,
        COMFY_DIR=str(settings.comfy_dir),
        COMFY_INPUT_DIR=str(settings.input_dir),
        COMFY_OUTPUT_DIR=str(settings.output_dir),
        COMFY_TEMP_DIR=str(settings.temp_dir),
        COMFY_LOG=str(settings.comfy_log),
        RUNPOD_VOLUME_DIR=str(settings.volume_dir),
        MAX_PAYLOAD_MB="200",
        DISK_LOW_GB="0.5",
    )
    figures: dict[str, Any] = {}
    for variant in VARIANTS:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.rss_probe", variant],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"rss_probe {variant} failed:\n{proc.stderr[-2000:]}")
        figures[variant] = json.loads(lines[-1])
    ours = figures["ours"]["peak_growth_x_output"]
    return {
        "target": f"peak RSS growth ≤ {TARGET_X:g} × output size",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " ") + " " + _probe_method(),
        "figures": figures,
        "ratio_vs_baseline": round(ours / figures["baseline"]["peak_growth_x_output"], 3),
        "met": ours <= TARGET_X,
    }


def _probe_method() -> str:
    from benchmarks import rss_probe

    return (rss_probe.__doc__ or "").split("\n\n")[2].replace("\n", " ")


def main(bs: BenchStack) -> dict[str, Any]:
    result = run(bs)
    write_result("rss_50mb_output", result)
    return result
