"""The worker and direct mode run a generate job through one pipeline (workflows.pipeline): the same
job answers in the same shape both ways — the same laps in `timings`, the same output description,
the same top-level keys — against the real stack (the worker's RunPod local API, ComfyUI directly)."""

from __future__ import annotations

import json
import shutil

import pytest
import requests

from tests.conftest import png_base64, runsync, sleep_workflow

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


def test_a_timed_out_job_fails_with_timeout_directly_as_through_the_worker_and_leaves_the_queue(stack, direct):
    """Direct mode stops a prompt past its deadline the worker's way (workflows.pipeline.execute): the job
    is FAILED with TIMEOUT (before the one pipeline it was CANCELLED), and ComfyUI lets go of the prompt."""
    envelope = direct.runsync({"workflow": sleep_workflow(600, prefix="client_hung"), "timeout_s": 2}, wait_s=60)
    assert envelope["status"] == "FAILED", envelope
    assert envelope["output"]["error_code"] == "TIMEOUT"
    prompt_id = envelope["output"]["details"]["prompt_id"]
    queue = requests.get(f"{stack.comfy_url}/queue", timeout=5).json()
    assert prompt_id not in [item[1] for item in queue["queue_running"] + queue["queue_pending"]], queue


def test_test_and_diagnose_answer_in_the_same_shape_through_the_worker_and_directly(stack, direct):
    """Both build their answers with workflows.responses (the `system` facts with comfyui_client.stats):
    direct mode has every key the worker has, but for what only the worker can know (its state machine,
    its logs, how it confines ComfyUI), and adds only what says it is direct."""
    from workflows.responses import test_response

    fixed = set(test_response(ok=True, comfyui_up=True, comfyui_version=None))
    worker, mine = runsync(stack, {"mode": "test"})["output"], direct.runsync({"mode": "test"})["output"]
    assert fixed <= set(worker) and fixed | {"timings"} <= set(mine)
    assert set(mine) - set(worker) <= {"direct", "limitations"}, sorted(mine)

    job = {"mode": "diagnose", "workflow": "smoke_image"}
    worker, mine = runsync(stack, job)["output"], direct.runsync(job)["output"]
    assert set(worker) - set(mine) <= {"worker", "logs_tail", "confinement"}, sorted(worker)  # the worker's own
    assert set(mine) - set(worker) == {"direct", "limitations"}, sorted(mine)
    assert set(mine["system"]) == set(worker["system"]) and worker["system"]["handler_version"]
    assert mine["system"]["handler_version"] is None
    assert mine["system"]["comfyui_version"] == worker["system"]["comfyui_version"]
    assert set(mine["workflow_checks"]) == set(worker["workflow_checks"]) == {"smoke_image"}


def test_a_named_output_that_does_not_exist_is_no_output_both_ways(stack, direct):
    """Collecting keeps only the files that really exist (JobSite.collect): the worker finds none on disk,
    direct mode gets a 404 from /view; both answer NO_OUTPUT, not an internal error."""
    workflow = sleep_workflow(0)
    workflow["3"] = {"class_type": "RPTestGhostOutput", "inputs": {"image": ["2", 0]}}
    worker = runsync(stack, {"workflow": workflow})
    mine = direct.runsync({"workflow": workflow}, wait_s=60)
    assert worker["status"] == mine["status"] == "FAILED", (worker, mine)
    codes = [json.loads(answer["error"])["error_code"] for answer in (worker, mine)]
    assert codes == ["NO_OUTPUT", "NO_OUTPUT"], (worker, mine)
