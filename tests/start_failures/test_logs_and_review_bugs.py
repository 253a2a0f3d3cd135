"""Item 5 and the review bugs of item 6 against the real stack: a job's logs_tail holds only its own
lines; MODEL_LIST_FAILED fires; the ComfyUI client never leaks requests.HTTPError; the self-check
turns a failing smoke job into SMOKE_FAILED and never raises in strict mode."""

from __future__ import annotations

import json
import shutil
import time
import uuid

import pytest
import requests

from comfyui_client import ComfyClient, ComfyHTTPError
from handler.runtime import Runtime
from handler.selfcheck import live_check, live_check_at_start
from tests.conftest import make_stack, runsync, stack_settings

pytestmark = pytest.mark.stack


def _raising(message: str) -> dict:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "2": {"class_type": "RPTestRaise", "inputs": {"image": ["1", 0], "message": message}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "raise"}},
    }


def _until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_logs_tail_of_a_job_never_holds_another_jobs_text(stack):
    first, second = f"first-job-{uuid.uuid4().hex}", f"second-job-{uuid.uuid4().hex}"
    a = json.loads(runsync(stack, {"workflow": _raising(first)})["error"])
    assert a["error_code"] == "GENERATION_ERROR"
    # ComfyUI prints the first job's traceback (with its text) after the job's answer: wait for it.
    _until(lambda: first in stack.log_file.read_text(errors="replace"), 30, "the first job's traceback")
    b = json.loads(runsync(stack, {"workflow": _raising(second)})["error"])
    assert b["error_code"] == "GENERATION_ERROR"
    assert not any(first in line for line in b["logs_tail"]), b["logs_tail"]
    report = runsync(stack, {"mode": "diagnose", "workflow": "smoke_image"})["output"]
    assert report["logs_tail"]  # the test pack that fails to import puts the tail there
    assert not any(first in line or second in line for line in report["logs_tail"])
    assert f"[comfyui] RuntimeError: {first}" in stack.log_file.read_text(errors="replace")  # prefixed stdout


def test_comfyui_client_answers_http_errors_with_its_own_exception(stack):
    client = ComfyClient(stack.comfy_url)
    with pytest.raises(ComfyHTTPError) as missing:
        client.view(f"nothing-{uuid.uuid4().hex}.png")
    assert missing.value.status == 404 and not isinstance(missing.value, requests.HTTPError)
    with pytest.raises(ComfyHTTPError) as refused:
        client.upload_image("", b"not an image")  # no filename: ComfyUI 0.3.75 answers 500
    assert refused.value.status == 500
    assert client.is_up()


def test_model_list_failed_fires_when_a_scanned_directory_vanishes(tmp_path):
    stack = make_stack(tmp_path / "vanish")
    loras = stack.volume_dir / "models" / "loras"
    loras.mkdir(parents=True)
    (loras / "style.safetensors").write_bytes(b"\0" * 16)
    stack.start(wait=180)
    try:
        assert "style.safetensors" in requests.get(f"{stack.comfy_url}/models/loras", timeout=10).json()
        shutil.rmtree(stack.volume_dir)  # the network volume goes away after ComfyUI cached the folder
        assert requests.get(f"{stack.comfy_url}/models/loras", timeout=10).status_code == 500
        report = runsync(stack, {"mode": "diagnose", "workflow": "smoke_image"})["output"]
        assert report["comfyui_reachable"] is True
        failed = [f for f in report["findings"] if f["code"] == "MODEL_LIST_FAILED"]
        assert failed and "'loras'" in failed[0]["message"], report["findings"]
        assert report["workflow_checks"]["smoke_image"]["ok"] is True  # the workflow checks still ran
    finally:
        stack.stop()


def test_self_check_reports_a_failing_smoke_job_and_strict_mode_never_raises(stack):
    rt = Runtime(stack_settings(stack, DENY_NODES="EmptyImage", SELF_CHECK_STRICT="1"))
    rt.events.start(wait=2)
    try:
        result = live_check(rt)
        smoke = [f for f in result["findings"] if f["code"] == "SMOKE_FAILED"]
        assert smoke and "POLICY_DENIED" in smoke[0]["message"] and result["ok"] is False
        assert result["smoke"] == {"ok": False, "error_code": "POLICY_DENIED", "message": result["smoke"]["message"]}
        cause = live_check_at_start(rt)
        assert cause is not None and cause.code == "SELF_CHECK_FAILED"
    finally:
        rt.events.close()
    gone = Runtime(stack_settings(stack, COMFY_URL="http://127.0.0.1:9", SELF_CHECK_STRICT="1"))
    cause = live_check_at_start(gone)  # nothing answers: a cause, not a traceback
    assert cause is not None and cause.code == "SELF_CHECK_FAILED"
