"""Soak: many generate jobs through the real local API; memory, descriptors and files stay flat."""

from __future__ import annotations

import psutil
import pytest

from tests.conftest import png_base64, runsync
from tests.reliability.conftest import LONG

pytestmark = pytest.mark.stack
JOBS = 400 if LONG else 100


def test_soak_generate_jobs(stack, figures):
    worker = psutil.Process(stack.worker_pid())
    image = png_base64(64, 64)

    def job(i: int) -> dict:
        return (
            {"workflow": "smoke_image", "width": 64 + i % 7, "height": 64}
            if i % 2
            else {"workflow": "smoke_i2v", "image_base64": image, "frames": 4, "width": 64, "height": 64}
        )

    # Warm-up over both paths (PyAV is imported by the first video probe), so the baseline is steady.
    for i in range(40):
        runsync(stack, job(i))
    rss0, fds0 = worker.memory_info().rss, worker.num_fds()
    lost, fds_mid = 0, None
    for i in range(JOBS):
        if i == JOBS // 2:
            fds_mid = worker.num_fds()
        envelope = runsync(stack, job(i))
        if envelope["status"] != "COMPLETED" or len(envelope["output"]["outputs"]) != 1:
            lost += 1
    rss1, fds1 = worker.memory_info().rss, worker.num_fds()
    leftovers = [p for d in ("input", "output", "temp") for p in (stack.comfy_dir / d).glob("job_*")]
    figures["soak"] = {
        "jobs": JOBS,
        "lost_outputs": lost,
        "rss_start_mb": round(rss0 / 2**20, 1),
        "rss_end_mb": round(rss1 / 2**20, 1),
        "rss_growth_mb": round((rss1 - rss0) / 2**20, 2),
        "fds_start": fds0,
        "fds_end": fds1,
        "leftover_job_files": len(leftovers),
    }
    assert lost == 0
    assert rss1 - rss0 < 20 * 2**20
    # Flat, not growing with the job count: the local API server's sockets come and go by a few.
    assert fds1 <= fds0 + 5 and fds1 <= fds_mid + 3
    assert leftovers == []
