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
    lost, fds = 0, []
    for i in range(JOBS):
        envelope = runsync(stack, job(i))
        if envelope["status"] != "COMPLETED" or len(envelope["output"]["outputs"]) != 1:
            lost += 1
        fds.append(worker.num_fds())
    rss1, fds1 = worker.memory_info().rss, worker.num_fds()
    leftovers = [p for d in ("input", "output", "temp") for p in (stack.comfy_dir / d).glob("job_*")]
    # Descriptors per job, as the least-squares slope over one sample after every job: a leak grows
    # with the job count (>= 0.5 per job when any job kind leaks one), while the local API server's
    # sockets, which come and go with the machine's load, move single samples but not the slope.
    mean_x, mean_y = (JOBS - 1) / 2, sum(fds) / JOBS
    slope = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(fds)) / sum((x - mean_x) ** 2 for x in range(JOBS))
    quarter = JOBS // 4
    figures["soak"] = {
        "jobs": JOBS,
        "lost_outputs": lost,
        "rss_start_mb": round(rss0 / 2**20, 1),
        "rss_end_mb": round(rss1 / 2**20, 1),
        "rss_growth_mb": round((rss1 - rss0) / 2**20, 2),
        "fds_start": fds0,
        "fds_end": fds1,
        "fds_range": [min(fds), max(fds)],
        "fds_per_job": round(slope, 4),
        "leftover_job_files": len(leftovers),
    }
    assert lost == 0
    assert rss1 - rss0 < 20 * 2**20
    assert slope < 0.1, f"descriptors grow with the job count: {slope:.3f} per job ({fds})"
    # ...and the later jobs' typical count is the earlier jobs' one (medians ignore the transient sockets).
    first, last = sorted(fds[:quarter])[quarter // 2], sorted(fds[-quarter:])[quarter // 2]
    assert last <= first + 3, (first, last, fds)
    assert leftovers == []
