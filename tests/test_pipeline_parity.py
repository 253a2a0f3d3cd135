"""The worker and direct mode run a generate job through one pipeline (workflows.pipeline): the same
job answers in the same shape both ways — the same laps in `timings`, the same output description,
the same top-level keys — against the real stack (the worker's RunPod local API, ComfyUI directly)."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import png_base64, runsync

FILE_CONTENT = {"base64", "url"}


@pytest.fixture
def direct(stack):
    from client.direct import DirectComfy

    api = DirectComfy(stack.comfy_url)
    yield api
    api.close()
    for folder in ("input", "output", "temp"):  # direct mode leaves its files in ComfyUI's dirs
        for path in (stack.comfy_dir / folder).glob("client_*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _shape(response: dict) -> dict:
    return {
        "keys": sorted(k for k in response if k != "video_base64"),
        "timings": sorted(response["timings"]),
        "outputs": [sorted(set(o) - FILE_CONTENT) for o in response["outputs"]],
        "kinds": [o["kind"] for o in response["outputs"]],
    }


@pytest.mark.parametrize("workflow", ["smoke_image", "smoke_i2v"])
def test_a_job_answers_in_the_same_shape_through_the_worker_and_directly(stack, direct, workflow):
    job: dict = {"workflow": workflow}
    if workflow == "smoke_i2v":
        job.update(image_base64=png_base64(40, 30), frames=4)
    worker = runsync(stack, job)
    assert worker["status"] == "COMPLETED", worker
    mine = direct.runsync(job, wait_s=60)
    assert mine["status"] == "COMPLETED", mine
    assert _shape(mine["output"]) == _shape(worker["output"])
    laps = {"validate_ms", "upload_ms", "analysis_ms", "run_ms", "encode_ms", "total_ms"}
    assert laps <= set(worker["output"]["timings"])
    if workflow == "smoke_i2v":  # described alike: dimensions and frames from the file itself
        for answer in (worker["output"], mine["output"]):
            assert answer["frames"] == 4 and answer["metadata"]["width"] > 0
