"""Deadlines that hold, messages that say what happened, and RunPod's own request fields, against the replay
of RunPod's documented API (tests/client/fake_runpod.py; each payload names its doc page there)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from client.errors import ClientTimeout, RateLimited, ServerError, Unreachable
from client.jobflow import wait_for_job
from client.runpod_api import RunPodAPI
from tests.client.conftest import cloud_env, json_out, run_cli
from tests.client.fake_runpod import FakeRunPod, Fault, completed, generate_output


def api_for(fake: FakeRunPod, retries: int = 3) -> RunPodAPI:
    return RunPodAPI(fake.base_url, fake.api_key, retries=retries, http_timeout_s=30.0, backoff_factor=0.5)


class _Sink:
    """A tiny HTTP server that records what is POSTed to it (a webhook receiver, or a server that isn't ComfyUI)."""

    def __init__(self, status: int = 200, body: bytes = b"ok", content_type: str = "text/plain") -> None:
        self.posts: list[Any] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sink.posts.append(json.loads(self.rfile.read(length) or b"null"))
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sink() -> Iterator[_Sink]:
    server = _Sink()
    yield server
    server.close()


# --- deadlines -----------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_hanging_status_ends_at_the_deadline_and_the_paid_job_is_cancelled(fake: FakeRunPod):
    """RunPod's /status hangs (each answer would take 60 s): `generate --timeout 8` used to take 124 s (four
    30 s read timeouts) and leave the job running. Now every attempt ends by the deadline, then POST /cancel."""
    fake.script = [{"status": "IN_QUEUE"}]
    fake.fail("GET /status", *[Fault(delay=60) for _ in range(20)])
    started = time.monotonic()
    proc = run_cli(
        "generate", "--workflow", "smoke_image", "--timeout", "8", "--no-open", "--json", env=cloud_env(fake)
    )
    wall = time.monotonic() - started
    out = json_out(proc)
    assert proc.returncode == 1 and out["error"]["code"] == "CLIENT_TIMEOUT", out
    assert out["error"]["details"]["cancel"]["sent"] is True and "cancelled it" in out["error"]["message"]
    submitted, cancel = fake.calls("POST /run")[0], fake.calls("POST /cancel")[0]
    assert cancel.path == f"/cancel/{out['error']['details']['job_id']}"
    assert cancel.at - submitted.at < 8 + 3, cancel.at - submitted.at  # the deadline, counted from /run
    assert wall < 8 + 15  # process start and the cancel included, on a busy machine; never 124 s
    last = out["error"]["details"]["last_error"]
    assert last["code"] == "UNREACHABLE" and last["details"]["deadline_passed"] is True


def test_retried_status_calls_stop_at_the_time_left_not_the_retry_count(fake: FakeRunPod):
    """503 with Retry-After: 30 would keep urllib3 sleeping 30 s between attempts; the deadline cuts it."""
    job = api_for(fake).run({"mode": "test"})
    fake.fail("GET /status", *[Fault(status=503, retry_after=30) for _ in range(5)])
    api = api_for(fake)
    started = time.monotonic()
    # the last attempt's answer (503) or its timeout (the time left ran out first, on a busy machine)
    with pytest.raises((ServerError, Unreachable)) as info:
        api.status(job["id"], wait_s=1.5)
    assert time.monotonic() - started < 1.5 + 1.0
    assert info.value.details["deadline_passed"] is True and "stopped at the deadline" in info.value.message
    # one attempt, or a second after the wait capped to the time left (whose last moments may not even
    # reach the server on a busy machine)
    assert info.value.details["attempts"] in (1, 2) and 1 <= fake.count("GET /status") <= info.value.details["attempts"]


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("action", "route"), [("health", "GET /health"), ("status", "GET /status")])
def test_standalone_jobs_calls_end_at_the_timeout(fake: FakeRunPod, action: str, route: str):
    """`jobs health` / `jobs status` are bounded by --timeout too, not by retries x 30 s read timeouts."""
    job = api_for(fake).run({"mode": "test"})
    fake.fail(route, *[Fault(delay=60) for _ in range(10)])
    args = ("jobs", "health") if action == "health" else ("jobs", "status", job["id"])
    started = time.monotonic()
    proc = run_cli(*args, "--timeout", "3", "--json", env=cloud_env(fake))
    wall = time.monotonic() - started
    out = json_out(proc)
    assert proc.returncode != 0 and out["error"]["details"]["deadline_passed"] is True, out
    assert wall < 3 + 12, wall  # process start included, on a busy machine; unbounded it is 4 x 30 s


def test_wait_for_job_turns_a_deadline_stopped_call_into_a_cancelled_timeout(fake: FakeRunPod):
    fake.script = [{"status": "IN_QUEUE"}]
    api = api_for(fake)
    job = api.run({"mode": "test"})
    fake.fail("GET /status", *[Fault(status=503, retry_after=30) for _ in range(20)])
    started = time.monotonic()
    with pytest.raises(ClientTimeout) as info:
        wait_for_job(api, job["id"], timeout_s=2.0, poll_interval_s=0.2, first={"status": "IN_QUEUE", **job})
    assert time.monotonic() - started < 2.0 + 1.5
    assert info.value.details["cancel"]["sent"] is True and fake.count("POST /cancel") == 1
    assert "the last status call: GET /status" in info.value.message  # what the last status call met


# --- messages: attempts, and whether a paid job may exist ---------------------------------------------


def test_a_submission_sent_once_says_one_attempt_and_that_the_job_may_exist(fake: FakeRunPod):
    fake.fail("POST /run", Fault(status=500))
    with pytest.raises(ServerError) as info:
        api_for(fake).run({"mode": "test"})
    assert fake.count("POST /run") == 1
    assert "1 attempt" in info.value.message and "retries" not in info.value.message
    assert "may have been accepted" in info.value.message and info.value.details["maybe_submitted"] is True


def test_an_exhausted_rate_limit_counts_its_attempts_and_says_nothing_was_submitted(fake: FakeRunPod):
    fake.fail("POST /run", *[Fault(status=429, retry_after=0) for _ in range(4)])
    with pytest.raises(RateLimited) as info:
        api_for(fake, retries=3).run({"mode": "test"})
    assert fake.count("POST /run") == 4 and "4 attempts" in info.value.message
    assert "the job was not submitted" in info.value.message and info.value.details["maybe_submitted"] is False


def test_a_refused_connection_counts_attempts_and_says_the_job_was_not_submitted():
    api = RunPodAPI("http://127.0.0.1:9/v2/ep", "k", retries=2, backoff_factor=0.01)
    with pytest.raises(Unreachable) as info:
        api.run({"mode": "test"})
    assert "3 attempts" in info.value.message and "the job was not submitted" in info.value.message
    with pytest.raises(Unreachable) as status_info:
        api.status("job-1", wait_s=5)
    assert "3 attempts" in status_info.value.message and "submitted" not in status_info.value.message


def test_a_lost_answer_to_a_submission_says_it_may_have_been_accepted(fake: FakeRunPod):
    fake.fail("POST /run", Fault(drop=True))
    with pytest.raises(Unreachable) as info:
        api_for(fake).run({"mode": "test"})
    assert fake.count("POST /run") == 1
    assert "(1 attempt in" in info.value.message and "may have been accepted" in info.value.message


# --- a URL that is not ComfyUI, a job that vanished ----------------------------------------------------


@pytest.mark.parametrize("kind", ["html", "runpod-style"])
def test_a_comfy_url_that_is_not_comfyui_exits_2_with_its_own_code(kind: str):
    body, ctype = (b"<html>hello</html>", "text/html") if kind == "html" else (b'{"detail": "Not Found"}', "x")
    server = _Sink(status=200 if kind == "html" else 404, body=body, content_type=ctype)
    try:
        for args in (["health"], ["generate", "--workflow", "smoke_image", "--no-open"]):
            proc = run_cli(args[0], *args[1:], "--comfy-url", server.url, "--json")
            out = json_out(proc)
            assert proc.returncode == 2 and out["error"]["code"] == "NOT_COMFYUI", out
            assert "--url" in out["error"]["fix"]
        as_api = run_cli("health", "--url", server.url, "--json")  # nor is it a RunPod-style API
        out = json_out(as_api)
        assert as_api.returncode == 2 and out["error"]["code"] in ("BAD_RESPONSE", "NOT_SUPPORTED"), out
    finally:
        server.close()


def test_a_vanished_job_is_never_pointed_at_jobs_retry(fake: FakeRunPod, client_env: dict[str, str]):
    """A re-run with the key of a job that ended: `jobs retry` is offered only where RunPod allows it."""
    from client.ledger import Ledger, request_hash

    ledger = Ledger(Path(client_env["COMFY_RUNPOD_LEDGER"]))
    digest = request_hash({"workflow": "smoke_image"})  # what `generate --workflow smoke_image` sends
    fixes = {}
    for status in ("NOT_FOUND", "CANCELLED", "FAILED", "TIMED_OUT"):
        row, _ = ledger.claim(fake.base_url, f"key-{status}", digest, "smoke_image")
        ledger.submitted(row.rowid, f"job-{status}")
        ledger.finished(row.rowid, status)
        proc = run_cli(
            "generate",
            "--workflow",
            "smoke_image",
            "--no-open",
            "--json",
            "--idempotency-key",
            f"key-{status}",
            env=cloud_env(fake),
        )
        out = json_out(proc)
        assert proc.returncode == 1 and f"already ended {status}" in out["error"]["message"], out
        fixes[status] = out["error"]["fix"]
    assert "jobs retry" in fixes["FAILED"] and "jobs retry" in fixes["TIMED_OUT"]
    assert "`jobs retry` can't" in fixes["NOT_FOUND"] and "`jobs retry` can't" in fixes["CANCELLED"]
    assert fake.count("POST /run") == 0


# --- RunPod's own fields: webhook, execution policy, /stream --------------------------------------------


def test_webhook_and_execution_policy_reach_runpod_as_documented(fake: FakeRunPod, sink: _Sink, tmp_path: Path):
    fake.script = [{"status": "IN_PROGRESS"}, completed(generate_output())]
    proc = run_cli(
        "generate",
        "--workflow",
        "smoke_image",
        "--no-open",
        "--out",
        str(tmp_path),
        "--webhook",
        sink.url + "/hook",
        "--execution-timeout",
        "900",
        "--ttl",
        "3600",
        "--low-priority",
        env=cloud_env(fake),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body = fake.calls("POST /run")[0].body
    assert body["webhook"] == sink.url + "/hook"
    assert body["policy"] == {"executionTimeout": 900_000, "ttl": 3_600_000, "lowPriority": True}
    deadline = time.monotonic() + 10
    while not sink.posts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.posts, "RunPod's webhook call never came"
    assert sink.posts[0]["status"] == "COMPLETED" and sink.posts[0]["output"]["workflow"] == "smoke_image"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--execution-timeout", "5"], "over 5 s"),
        (["--ttl", "5"], "between 10 s and one week"),
        (["--ttl", str(8 * 24 * 3600)], "between 10 s and one week"),
        (["--webhook", "ftp://x"], "http(s) URL"),
    ],
)
def test_policies_runpod_would_refuse_are_refused_before_anything_is_sent(fake: FakeRunPod, flags, words):
    proc = run_cli("generate", "--workflow", "smoke_image", "--no-open", "--json", *flags, env=cloud_env(fake))
    out = json_out(proc)
    assert proc.returncode == 2 and out["error"]["code"] == "BAD_ARGUMENT" and words in out["error"]["message"]
    assert fake.requests == []


def test_runpod_refuses_a_bad_policy_as_the_replay_does(fake: FakeRunPod):
    from client.errors import ClientError

    with pytest.raises(ClientError) as info:  # the replay enforces the documented constraints itself
        api_for(fake).run({"mode": "test"}, policy={"executionTimeout": 1000})
    assert info.value.code == "REQUEST_REJECTED" and info.value.details["http_status"] == 400


def test_jobs_stream_reads_a_generator_handlers_outputs_in_order(fake: FakeRunPod):
    fake.script = [
        {"status": "IN_PROGRESS", "stream": ["a"]},
        {"status": "IN_PROGRESS", "stream": []},
        {"status": "IN_PROGRESS", "stream": ["b", {"c": 3}]},
        {"status": "COMPLETED", "output": ["a", "b", {"c": 3}]},
    ]
    job = api_for(fake).run({"mode": "test"})
    proc = run_cli("jobs", "stream", job["id"], "--json", env=cloud_env(fake))
    out = json_out(proc)
    assert proc.returncode == 0, out
    assert out["result"]["stream"] == ["a", "b", {"c": 3}] and out["result"]["status"] == "COMPLETED"
    assert all(r.method == "GET" for r in fake.calls("GET /stream")) and fake.count("GET /stream") == 4
    text = run_cli("jobs", "stream", job["id"], env=cloud_env(fake))
    assert text.returncode == 0 and "streamed output" in text.stdout
