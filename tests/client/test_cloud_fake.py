"""Cloud-only behaviour against a fake RunPod API: the same client code path as for api.runpod.ai.

The client is configured exactly as for the cloud (RUNPOD_ENDPOINT_ID + RUNPOD_API_KEY); only the
API base (RUNPOD_API_BASE) points at the fake, which checks the Authorization header on every call.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from client.commands.generate import JobSubmission, generate
from client.config import load_settings
from client.errors import JobCancelled, JobFailed, JobTimedOut, ServerError, Unreachable
from client.jobflow import JobUpdate
from client.ledger import Ledger, request_hash
from client.runpod_api import RunPodAPI
from tests.client.conftest import cloud_env, json_out, run_cli
from tests.client.fake_runpod import HEALTH_OUTPUT, FakeRunPod, Fault, completed, failed, generate_output
from tests.conftest import REPO


def api_for(
    fake: FakeRunPod, retries: int = 3, http_timeout_s: float = 30.0, backoff: float = 0.5
) -> tuple[RunPodAPI, object]:
    settings = load_settings(env=cloud_env(fake, TEST_RETRIES=str(retries), TEST_HTTP_TIMEOUT=str(http_timeout_s)))
    api = RunPodAPI(
        settings.target.url,
        settings.target.api_key,
        retries=retries,
        http_timeout_s=http_timeout_s,
        backoff_factor=backoff,
    )
    return api, settings


def authorized(fake: FakeRunPod) -> bool:
    return bool(fake.requests) and all(
        r.headers.get("Authorization") == f"Bearer {fake.api_key}" for r in fake.requests
    )


# --- the job lifecycle --------------------------------------------------------------------------


def test_queue_progress_completed_with_runpod_timings_in_result_json(fake: FakeRunPod, tmp_path: Path):
    progress = {"node": "2", "value": 3, "max": 8, "nodes_done": 2, "nodes_total": 3}
    fake.script = [
        {"status": "IN_QUEUE"},
        {"status": "IN_QUEUE"},
        {"status": "IN_PROGRESS", "output": progress},
        completed(generate_output(), delay_ms=4321, execution_ms=765),
    ]
    api, settings = api_for(fake)
    updates: list[JobUpdate] = []
    data = generate(
        api,
        settings,
        JobSubmission("smoke_image", {"workflow": "smoke_image"}),
        out_root=tmp_path,
        on_update=updates.append,
    )
    statuses = [u.status for u in updates]
    assert statuses[0] == "IN_QUEUE" and statuses[-1] == "COMPLETED" and "IN_PROGRESS" in statuses
    assert any(u.progress == progress for u in updates)  # the worker's progress_update under `output`
    assert fake.count("POST /run") == 1 and fake.count("GET /status") == 4  # GET on the cloud
    assert authorized(fake)
    result = json.loads(Path(data["result_json"]).read_text())
    assert result["timing"]["runpod"] == {"delayTime_ms": 4321.0, "executionTime_ms": 765.0}
    assert result["timing"]["worker"]["total_ms"] == 305.0 and result["timing"]["client"]["wall_s"] > 0
    assert "base64" not in json.dumps(result["response"])
    with Image.open(Path(data["directory"]) / data["files"][0]) as img:
        assert img.size == (64, 48)
    name = Path(data["directory"]).name
    assert name.endswith("_smoke_image_job0001a") and name[:8].isdigit()


def test_outputs_delivered_as_urls_are_downloaded_and_the_signature_is_not_kept(fake: FakeRunPod, tmp_path: Path):
    output = generate_output()
    url = f"{fake.files_url}/out.png?X-Amz-Signature=deadbeefsecret&X-Amz-Expires=3600"
    output["outputs"] = [{"node_id": "3", "kind": "image", "filename": "out.png", "mime": "image/png", "url": url}]
    fake.script = [completed(output)]
    api, settings = api_for(fake)
    data = generate(api, settings, JobSubmission("smoke_image", {}), out_root=tmp_path)
    with Image.open(Path(data["directory"]) / "out.png") as img:
        assert img.size == (32, 16)
    text = Path(data["result_json"]).read_text()
    assert "deadbeefsecret" not in text and f"{fake.files_url}/out.png" in text
    assert fake.count("GET /files") == 1 and "Authorization" not in fake.calls("GET /files")[0].headers


class VirtualClock:
    """The job-waiting code's injectable clock and sleep: sleeping advances time, nothing really waits,
    so what the test asserts (when the client polled, when it gave up) doesn't depend on the machine's load."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_polling_is_fast_at_first_even_with_a_slow_poll_setting(fake: FakeRunPod):
    fake.script = [{"status": "IN_QUEUE"}, {"status": "IN_PROGRESS"}, completed(HEALTH_OUTPUT)]
    api, _ = api_for(fake)
    from client.jobflow import wait_for_job

    vc = VirtualClock()
    first = api.run({"mode": "test"})
    result = wait_for_job(
        api,
        first["id"],
        timeout_s=30,
        poll_interval_s=5.0,
        first={"status": "IN_QUEUE", **first},
        clock=vc.clock,
        sleep=vc.sleep,
    )
    assert result.status == "COMPLETED"
    assert len(vc.sleeps) == 3 and sum(vc.sleeps) < 1.5 and result.wall_s == sum(vc.sleeps), vc.sleeps


def test_the_deadline_cancels_the_job_at_its_time(fake: FakeRunPod):
    from client.errors import ClientTimeout
    from client.jobflow import wait_for_job

    fake.script = [{"status": "IN_QUEUE"}]  # never leaves the queue
    api, _ = api_for(fake)
    vc = VirtualClock()
    first = api.run({"mode": "test"})
    started = vc.now
    with pytest.raises(ClientTimeout) as info:
        wait_for_job(
            api,
            first["id"],
            timeout_s=20,
            poll_interval_s=5.0,
            first={"status": "IN_QUEUE", **first},
            clock=vc.clock,
            sleep=vc.sleep,
        )
    assert vc.now - started == pytest.approx(20)  # polled up to the deadline, not past it
    assert max(vc.sleeps) <= 5.0 and info.value.details["cancel"]["sent"] is True
    assert fake.calls("POST /cancel")[0].path == f"/cancel/{first['id']}"


@pytest.mark.parametrize(
    ("step", "error", "code"),
    [
        (failed("QUEUE_FAILED", logs_tail=["boom"]), JobFailed, "QUEUE_FAILED"),
        ({"status": "CANCELLED"}, JobCancelled, "JOB_CANCELLED"),
        ({"status": "TIMED_OUT", "executionTime": 600000}, JobTimedOut, "JOB_TIMED_OUT"),
    ],
)
def test_terminal_failures_raise_with_their_code(fake: FakeRunPod, tmp_path: Path, step, error, code):
    fake.script = [{"status": "IN_PROGRESS"}, step]
    api, settings = api_for(fake)
    with pytest.raises(error) as info:
        generate(api, settings, JobSubmission("smoke_image", {}), out_root=tmp_path, ledger=Ledger(tmp_path / "l"))
    assert info.value.code == code and info.value.exit_code == 1
    if code == "QUEUE_FAILED":
        assert info.value.fix == "fix for QUEUE_FAILED"
        assert info.value.details["worker_error"]["logs_tail"] == ["boom"]
    assert Ledger(tmp_path / "l").recent()[0].status in ("FAILED", "CANCELLED", "TIMED_OUT")
    assert not any(tmp_path.glob("*/result.json"))


def test_failed_job_cli_prints_code_fix_and_log_tail_and_exits_1(fake: FakeRunPod):
    fake.script = [
        failed(
            "GENERATION_ERROR", "RPTestRaise (node 2) raised RuntimeError", logs_tail=["Traceback", "RuntimeError: x"]
        )
    ]
    proc = run_cli("generate", "--workflow", "smoke_image", "--no-open", env=cloud_env(fake))
    assert proc.returncode == 1, proc.stderr
    assert "GENERATION_ERROR" in proc.stdout and "fix for GENERATION_ERROR" in proc.stdout
    assert "RuntimeError: x" in proc.stdout


# --- deadline and Ctrl-C → cancel ----------------------------------------------------------------


def test_client_timeout_cancels_the_job_on_runpod(fake: FakeRunPod):
    fake.script = [{"status": "IN_QUEUE"}]  # never leaves the queue
    # A hang would hit run_cli's timeout; when the deadline fires is test_the_deadline_cancels_the_job_at_its_time.
    proc = run_cli(
        "generate", "--workflow", "smoke_image", "--timeout", "1.5", "--json", "--no-open", env=cloud_env(fake)
    )
    assert proc.returncode == 1
    out = json_out(proc)
    assert out["error"]["code"] == "CLIENT_TIMEOUT" and out["error"]["details"]["cancel"]["sent"] is True
    submitted = fake.calls("POST /run")[0]
    assert (
        fake.count("POST /cancel") == 1
        and fake.calls("POST /cancel")[0].path == f"/cancel/{out['error']['details']['job_id']}"
    )
    assert submitted.body["input"]["timeout_s"] == 1.5  # the worker gets the deadline too


def test_ctrl_c_cancels_the_job_and_exits_130(fake: FakeRunPod):
    fake.script = [{"status": "IN_PROGRESS", "output": {"node": "1", "value": 1, "max": 9}}]
    proc = subprocess.Popen(
        [sys.executable, "client/generate.py", "--workflow", "smoke_image", "--no-open"],
        cwd=REPO,
        env={**__import__("os").environ, **cloud_env(fake)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a suite started in the background (`cmd &` in a script, CI) inherits SIGINT
        # ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Deadlines for a loaded machine (the CLI starts a Python process): waits, not speed targets.
        assert fake.wait_for("GET /status", 2, timeout=60), "the client never polled"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, (out, err)
    assert fake.count("POST /cancel") == 1
    assert fake.calls("POST /cancel")[0].path == f"/cancel/{next(iter(fake.jobs))}"
    assert "INTERRUPTED" in out and "cancel sent" in out


# --- idempotency ---------------------------------------------------------------------------------


def test_same_idempotency_key_submits_exactly_once(fake: FakeRunPod, client_env):
    env = cloud_env(fake)
    args = ("--workflow", "smoke_image", "--idempotency-key", "order-42", "--no-open", "--json")
    first, second = run_cli("generate", *args, env=env), run_cli("generate", *args, env=env)
    assert first.returncode == 0 and second.returncode == 0, (first.stdout, second.stdout)
    a, b = json_out(first)["result"], json_out(second)["result"]
    assert fake.count("POST /run") == 1
    assert b["reused"] is True and b["job_id"] == a["job_id"] and b["directory"] == a["directory"]
    conflict = run_cli("generate", *args, "--width", "128", env=env)
    assert conflict.returncode == 2 and "IDEMPOTENCY_CONFLICT" in conflict.stdout
    assert fake.count("POST /run") == 1


def test_a_recorded_unfinished_job_is_followed_not_resubmitted(fake: FakeRunPod, tmp_path: Path):
    api, settings = api_for(fake)
    fake.script = [{"status": "IN_PROGRESS"}, completed(generate_output())]
    existing = api.run({"workflow": "smoke_image"})["id"]  # submitted by a run that then crashed
    ledger = Ledger(tmp_path / "l.sqlite")
    request = JobSubmission("smoke_image", {"workflow": "smoke_image"})
    row, _ = ledger.claim(settings.target.url, "k1", request_hash(request.job_input), "smoke_image")
    ledger.submitted(row.rowid, existing)
    data = generate(api, settings, request, ledger=ledger, idempotency_key="k1", out_root=tmp_path)
    assert data["attached"] is True and data["job_id"] == existing
    assert fake.count("POST /run") == 1  # only the original submission


# --- transient failures, retries and their budget -----------------------------------------------


def test_429_retry_after_is_honoured_on_status_and_run(fake: FakeRunPod):
    api, _ = api_for(fake)
    fake.fail("POST /run", Fault(status=429, retry_after=1))
    fake.fail("GET /status", Fault(status=429, retry_after=1))
    from client.jobflow import submit_and_wait

    started = time.monotonic()
    result = submit_and_wait(api, {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.2)
    assert result.status == "COMPLETED"
    assert time.monotonic() - started >= 2.0  # two Retry-After waits of 1 s
    assert fake.count("POST /run") == 2 and len(fake.jobs) == 1  # a 429 accepted nothing: safe to resend


def test_5xx_flaps_slow_answers_and_dropped_connections_on_status_are_retried(fake: FakeRunPod):
    api, _ = api_for(fake, retries=5, http_timeout_s=0.5, backoff=0.05)  # backoff shortened: 5 retries
    fake.fail(
        "GET /status", Fault(status=500), Fault(status=502), Fault(delay=1.2), Fault(drop=True), Fault(status=503)
    )
    from client.jobflow import submit_and_wait

    result = submit_and_wait(api, {"workflow": "smoke_image"}, timeout_s=30, poll_interval_s=0.2)
    assert result.status == "COMPLETED"
    assert fake.count("GET /status") == 6  # five failures, then the answer
    assert fake.count("POST /run") == 1


def test_retries_stop_at_the_budget_with_a_clear_error(fake: FakeRunPod):
    api, _ = api_for(fake, retries=2)
    job = api.run({"mode": "test"})["id"]
    fake.fail("GET /status", *[Fault(status=503)] * 5)
    with pytest.raises(ServerError, match="HTTP 503, 3 attempts"):  # sent 3 times: the first + 2 retries
        api.status(job)
    assert fake.count("GET /status") == 3  # one try + two retries


def test_run_is_not_resent_without_an_idempotency_key(fake: FakeRunPod):
    api, _ = api_for(fake)
    fake.fail("POST /run", Fault(status=500))
    with pytest.raises(ServerError):
        api.run({"workflow": "smoke_image"})
    fake.fail("POST /run", Fault(drop=True))
    with pytest.raises(Unreachable) as info:
        api.run({"workflow": "smoke_image"})
    assert info.value.details["maybe_submitted"] is True and "idempotency key" in info.value.message
    assert fake.count("POST /run") == 2  # one attempt each, no retry


def test_run_is_resent_after_a_lost_answer_when_a_key_makes_it_safe(fake: FakeRunPod, tmp_path: Path):
    api, settings = api_for(fake)
    fake.fail("POST /run", Fault(status=502), Fault(drop=True))
    data = generate(
        api,
        settings,
        JobSubmission("smoke_image", {"workflow": "smoke_image"}),
        ledger=Ledger(tmp_path / "l"),
        idempotency_key="k",
        out_root=tmp_path,
    )
    assert data["job_id"] and fake.count("POST /run") == 3
    assert Ledger(tmp_path / "l").recent()[0].job_id == data["job_id"]


def test_cli_exhausted_rate_limit_exits_2_with_a_message(fake: FakeRunPod):
    fake.fail("POST /runsync", *[Fault(status=429, retry_after=0)] * 5)
    proc = run_cli("diagnose", "--test", "--json", env=cloud_env(fake, TEST_RETRIES="2"))
    assert proc.returncode == 2
    err = json_out(proc)["error"]
    assert err["code"] == "RATE_LIMITED" and "3 attempts; the job was not submitted" in err["message"]
    assert fake.count("POST /runsync") == 3


# --- endpoint operations the local API lacks ------------------------------------------------------


def test_jobs_health_status_cancel_retry_and_list(fake: FakeRunPod):
    env = cloud_env(fake)
    health = run_cli("jobs", "health", "--json", env=env)
    assert health.returncode == 0, health.stdout
    assert json_out(health)["result"]["workers"]["idle"] == 1 and json_out(health)["result"]["jobs"]["inQueue"] == 2
    fake.script = [failed("NO_OUTPUT", "nothing saved")]
    gen = run_cli("generate", "--workflow", "smoke_image", "--no-open", env=env)
    assert gen.returncode == 1
    job_id = next(iter(fake.jobs))
    status = run_cli("jobs", "status", job_id, "--json", env=env)
    assert status.returncode == 1 and json_out(status)["result"]["worker_error"]["error_code"] == "NO_OUTPUT"
    assert run_cli("jobs", "retry", job_id, env=env).returncode == 0 and fake.count("POST /retry") == 1
    assert run_cli("jobs", "cancel", job_id, env=env).returncode == 0 and fake.count("POST /cancel") == 1
    listed = json_out(run_cli("jobs", "list", "--json", env=env))["result"]["jobs"]
    assert [j["job_id"] for j in listed] == [job_id] and listed[0]["error_code"] == "NO_OUTPUT"
    missing = run_cli("jobs", "status", "job-9999-nope", "--json", env=env)
    assert missing.returncode == 1 and json_out(missing)["error"]["code"] == "JOB_NOT_FOUND"


# --- exit codes and configuration ---------------------------------------------------------------


def test_health_exit_codes(fake: FakeRunPod):
    env = cloud_env(fake)
    ok = run_cli("diagnose", "--test", env=env)
    assert ok.returncode == 0 and "healthy" in ok.stdout and "queue/cold start" in ok.stdout
    fake.runsync_result = completed({**HEALTH_OUTPUT, "ok": False, "comfyui_up": False})
    assert run_cli("diagnose", "--test", env=env).returncode == 1
    wrong_key = run_cli("diagnose", "--test", "--json", env={**env, "RUNPOD_API_KEY": "rp_wrong_key_987654"})
    assert wrong_key.returncode == 2 and json_out(wrong_key)["error"]["code"] == "AUTH_FAILED"
    assert run_cli("diagnose", "--test", env={}).returncode == 2  # nothing configured
    no_key = run_cli("diagnose", "--test", "--json", env={"RUNPOD_ENDPOINT_ID": "abc"})
    assert no_key.returncode == 2 and json_out(no_key)["error"]["code"] == "NOT_CONFIGURED"
    fake.stop()
    down = run_cli("diagnose", "--test", "--json", env={**env, "TEST_RETRIES": "0"})
    assert down.returncode == 2 and json_out(down)["error"]["code"] == "UNREACHABLE"


# --- the API key never leaves the process --------------------------------------------------------


def test_api_key_is_absent_from_every_byte_written(fake: FakeRunPod, tmp_path: Path):
    key = fake.api_key
    env = cloud_env(fake, COMFY_RUNPOD_OUTPUTS=str(tmp_path / "out"))
    output = generate_output()
    output["metadata"] = {"note": f"worker echoed Bearer {key}"}  # a careless worker
    fake.script = [{"status": "IN_PROGRESS", "output": f"loading with {key}"}, completed(output)]
    procs = [
        run_cli("generate", "--workflow", "smoke_image", "--no-open", env=env),
        run_cli("generate", "--workflow", "smoke_image", "--no-open", "--json", "-vv", env=env),
        run_cli("diagnose", "--test", "-vv", env=env),
        run_cli("jobs", "status", "job-0001-abcdef", "--json", env=env),
    ]
    fake.script = [failed("BAD_INPUT", f"bad key {key} in input")]
    procs.append(run_cli("generate", "--workflow", "smoke_image", "--no-open", env=env))
    procs.append(run_cli("jobs", "health", "--api-key", key, "--json", env={**env, "RUNPOD_API_KEY": ""}))
    fake.api_key = "rp_other_key_000000"  # now the fake rejects ours and echoes the header it got
    procs.append(run_cli("diagnose", "--test", "-vv", "--json", env=env))
    assert [p.returncode for p in procs] == [0, 0, 0, 0, 1, 0, 2], [p.stdout for p in procs]
    assert "worker echoed Bearer ***" in (tmp_path / "out").glob("*/result.json").__next__().read_text()
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    for proc in procs:
        assert key not in proc.stdout and key not in proc.stderr
    assert key.encode() not in written
    assert "***" in procs[-1].stdout  # the echoed header was redacted, not dropped silently


def test_direct_mode_unreachable_comfyui_exits_2():
    proc = run_cli("diagnose", "--test", "--comfy-url", "http://127.0.0.1:9", "--json")
    assert proc.returncode == 2 and json_out(proc)["error"]["code"] == "UNREACHABLE"
