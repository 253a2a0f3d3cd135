"""The client against RunPod's documented behaviour, replayed by the fake (each payload names its source).

Each test here pins one of issue 15's fixes: /runsync's `?wait` and the deadline, a submission
never repeated after an answer that could mean it was accepted, the two meanings of TIMED_OUT, an
unknown endpoint told from an unknown job, and editor-format workflow files.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from client.errors import JobFailed, JobTimedOut, ServerError
from client.jobflow import run_sync, submit_and_wait
from client.runpod_api import RunPodAPI
from tests.client.conftest import cloud_env, json_out, run_cli
from tests.client.fake_runpod import (
    HEALTH_OUTPUT,
    FakeRunPod,
    Fault,
    completed,
    failed_with_text,
    generate_output,
    running,
    timed_out_in_execution,
    timed_out_in_queue,
)
from tests.test_ui_convert import smoke_ui


def api_for(fake: FakeRunPod, retries: int = 3, http_timeout_s: float = 30.0) -> RunPodAPI:
    return RunPodAPI(fake.base_url, fake.api_key, retries=retries, http_timeout_s=http_timeout_s, backoff_factor=0.05)


# --- 1. /runsync carries ?wait= and the deadline holds ------------------------------------------


def test_runsync_waits_only_the_remaining_deadline_then_cancels_with_client_timeout(fake: FakeRunPod):
    fake.runsync_script = [{"status": "IN_QUEUE"}]  # no worker ever comes: RunPod holds, then answers IN_QUEUE
    started = time.monotonic()
    proc = run_cli("diagnose", "--test", "--timeout", "2", "--json", env=cloud_env(fake))
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    err = json_out(proc)["error"]
    assert err["code"] == "CLIENT_TIMEOUT" and err["details"]["cancel"]["sent"] is True
    (sync,) = fake.calls("POST /runsync")
    assert 1000 <= int(sync.query["wait"]) <= 2000  # the remaining deadline, in ms
    assert [c.path for c in fake.calls("POST /cancel")] == [f"/cancel/{err['details']['job_id']}"]
    assert err["details"]["job_id"].startswith("sync-")
    assert elapsed < 10  # was 30 s (the HTTP read timeout) and UNREACHABLE, the job left queued
    assert "--" not in err["fix"] or "--timeout" in err["fix"]  # no flag the command lacks


def test_runsync_answering_in_progress_is_followed_on_status_to_completion(fake: FakeRunPod):
    fake.runsync_script = [{"status": "IN_PROGRESS"}, running(), completed(HEALTH_OUTPUT)]
    fake.runsync_hold_s = 0.3  # RunPod's hold, shortened
    result = run_sync(api_for(fake), {"mode": "test"}, timeout_s=5, poll_interval_s=0.1)
    assert result.status == "COMPLETED" and result.output["ok"] is True
    assert int(fake.calls("POST /runsync")[0].query["wait"]) == 5000
    assert fake.count("GET /status") == 2 and result.job_id.startswith("sync-")
    assert [s for s, _ in result.statuses] == ["IN_PROGRESS", "RUNNING", "COMPLETED"]


def test_a_lost_runsync_answer_is_not_resent_and_its_fix_names_no_missing_flag(fake: FakeRunPod):
    fake.fail("POST /runsync", Fault(delay=3))  # the answer takes longer than wait + grace
    proc = run_cli("diagnose", "--test", "--timeout", "1", "--json", env=cloud_env(fake, TEST_HTTP_TIMEOUT="0.5"))
    err = json_out(proc)["error"]
    assert proc.returncode == 2 and err["code"] == "UNREACHABLE" and err["details"]["maybe_submitted"] is True
    assert "--idempotency-key" not in err["fix"] and "jobs health" in err["fix"]
    assert fake.count("POST /runsync") == 1


# --- 4. a submission is never repeated after an answer that could mean it was accepted ---------


@pytest.mark.parametrize("fault", [Fault(status=503, retry_after=0), Fault(status=503), Fault(status=502)])
def test_run_is_sent_once_after_a_5xx_with_or_without_retry_after(fake: FakeRunPod, fault: Fault):
    api = api_for(fake)
    fake.fail("POST /run", fault, fault, fault)
    with pytest.raises(ServerError) as info:
        api.run({"workflow": "smoke_image"})
    assert fake.count("POST /run") == 1  # urllib3 alone re-sent a 503 with Retry-After three times
    assert info.value.details["maybe_submitted"] is True and "jobs health" in info.value.fix


def test_runsync_is_sent_once_after_a_503_with_retry_after(fake: FakeRunPod):
    fake.fail("POST /runsync", Fault(status=503, retry_after=0), Fault(status=503, retry_after=0))
    with pytest.raises(ServerError):
        api_for(fake).runsync({"mode": "test"}, wait_s=5)
    assert fake.count("POST /runsync") == 1


def test_retry_is_sent_once_after_a_503_with_retry_after(fake: FakeRunPod):
    api = api_for(fake)
    job_id = api.run({"workflow": "smoke_image"})["id"]
    fake.fail("POST /retry", Fault(status=503, retry_after=0), Fault(status=503, retry_after=0))
    with pytest.raises(ServerError):
        api.retry(job_id)  # a requeue is a submission too
    assert fake.count("POST /retry") == 1


def test_429_with_or_without_retry_after_is_resent_since_nothing_was_accepted(fake: FakeRunPod):
    fake.fail("POST /run", Fault(status=429, retry_after=0), Fault(status=429))
    result = submit_and_wait(api_for(fake), {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.1)
    assert result.status == "COMPLETED" and fake.count("POST /run") == 3 and len(fake.jobs) == 1


def test_503_with_retry_after_is_resent_when_an_idempotency_key_makes_it_safe(fake: FakeRunPod):
    fake.fail("POST /run", Fault(status=503, retry_after=0))
    assert api_for(fake).run({"workflow": "smoke_image"}, safe_to_retry=True)["id"]
    assert fake.count("POST /run") == 2


def test_status_polls_ride_out_503_with_retry_after(fake: FakeRunPod):
    fake.fail("GET /status", Fault(status=503, retry_after=0), Fault(status=503))
    result = submit_and_wait(api_for(fake), {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.1)
    assert result.status == "COMPLETED" and fake.count("GET /status") == 3


# --- 2. TIMED_OUT: expired in the queue, or stopped by the execution timeout -------------------


def test_timed_out_in_the_queue_points_at_the_workers_not_the_execution_timeout(fake: FakeRunPod):
    fake.script = [{"status": "IN_QUEUE"}, timed_out_in_queue()]
    with pytest.raises(JobTimedOut) as info:
        submit_and_wait(api_for(fake), {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.1)
    err = info.value
    assert err.code == "JOB_TIMED_OUT" and err.details["timed_out_in"] == "queue"
    assert "no worker" in err.message and "worker" in err.fix and "execution timeout is not the cause" in err.fix


def test_timed_out_in_execution_points_at_the_execution_timeout(fake: FakeRunPod):
    fake.script = [running(), timed_out_in_execution(600_000)]
    with pytest.raises(JobTimedOut) as info:
        submit_and_wait(api_for(fake), {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.1)
    err = info.value
    assert err.details["timed_out_in"] == "execution" and "600.0 s" in err.message
    assert "execution timeout" in err.fix and "raise it" in err.fix


def test_cli_shows_which_timeout_it_was(fake: FakeRunPod):
    fake.script = [timed_out_in_queue()]
    proc = run_cli("generate", "--workflow", "smoke_image", "--no-open", env=cloud_env(fake))
    assert proc.returncode == 1 and "JOB_TIMED_OUT" in proc.stdout and "No worker came up" in proc.stdout


def test_failed_with_a_plain_string_error(fake: FakeRunPod):
    fake.script = [failed_with_text("CUDA out of memory")]
    with pytest.raises(JobFailed) as info:
        submit_and_wait(api_for(fake), {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.1)
    assert info.value.code == "WORKER_ERROR" and "CUDA out of memory" in info.value.message


# --- 3. a 404 tells an unknown endpoint from an unknown job -------------------------------------


@pytest.mark.parametrize("action", ["status", "cancel"])
def test_404_on_a_job_route_tells_unknown_endpoint_from_unknown_job(fake: FakeRunPod, action: str):
    known = run_cli("jobs", action, "job-9999-nope", "--json", env=cloud_env(fake))
    assert known.returncode == 1 and json_out(known)["error"]["code"] == "JOB_NOT_FOUND"
    wrong = run_cli("jobs", action, "job-9999-nope", "--json", env={**cloud_env(fake), "RUNPOD_ENDPOINT_ID": "ep-typo"})
    err = json_out(wrong)["error"]
    assert wrong.returncode == 2 and err["code"] == "ENDPOINT_NOT_FOUND" and "RUNPOD_ENDPOINT_ID" in err["fix"]


def test_404_on_run_and_health_is_an_unknown_endpoint(fake: FakeRunPod):
    env = {**cloud_env(fake), "RUNPOD_ENDPOINT_ID": "ep-typo"}
    for proc in (run_cli("jobs", "health", "--json", env=env), run_cli("diagnose", "--test", "--json", env=env)):
        assert proc.returncode == 2 and json_out(proc)["error"]["code"] == "ENDPOINT_NOT_FOUND"


# --- 5. editor-format workflow files ------------------------------------------------------------


def test_editor_format_file_is_sent_as_is_for_the_worker_to_convert(fake: FakeRunPod, tmp_path: Path):
    ui = tmp_path / "editor_save.json"
    ui.write_text(json.dumps(smoke_ui()))
    fake.script = [completed(generate_output("inline"))]
    proc = run_cli("generate", "--workflow", str(ui), "--no-open", "--json", env=cloud_env(fake))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = fake.calls("POST /run")
    assert run.body["input"]["workflow"] == smoke_ui()
    assert json_out(proc)["result"]["workflow"] == "editor_save"


def test_editor_format_file_is_diagnosed_by_its_node_classes(fake: FakeRunPod, tmp_path: Path):
    ui = tmp_path / "editor_save.json"
    ui.write_text(json.dumps(smoke_ui()))
    report = {
        "ok": True,
        "comfyui_reachable": True,
        "findings": [],
        "node_check": {"required_available": ["EmptyImage", "SaveImage"], "required_missing": []},
        "models": {},
    }
    fake.diagnose_result = completed(report)
    proc = run_cli("diagnose", "--workflow", str(ui), "--json", env=cloud_env(fake))
    data = json_out(proc)
    assert proc.returncode == 0, data  # a warning: ImageInvert is not in the endpoint's report
    found = data["result"]["client_findings"]
    assert [f["code"] for f in found] == ["NODE_UNVERIFIED"] and "ImageInvert" in found[0]["message"]
