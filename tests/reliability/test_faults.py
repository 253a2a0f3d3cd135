"""ComfyUI dying, hanging, dropping its WebSocket, starting badly; the disk filling up."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from handler.runtime import Runtime
from tests.conftest import make_stack, png_base64, runsync, sleep_workflow, stack_settings, wait_for_startup_selfcheck
from tests.test_handler_inprocess import call

pytestmark = pytest.mark.stack


def error_of(envelope: dict) -> dict:
    assert envelope["status"] == "FAILED", envelope
    return json.loads(envelope["error"])


def _wait(predicate, timeout: float, what: str, interval: float = 0.02):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def running_prompts(comfy_url: str, prefix: str) -> list[str]:
    """Ids of the prompts ComfyUI runs whose SaveImage prefix ends in `prefix` (a test's own, not the
    start-up self-check's smoke job)."""
    try:
        running = requests.get(f"{comfy_url}/queue", timeout=5).json()["queue_running"]
    except (requests.RequestException, ValueError, KeyError):
        return []
    return [
        item[1]
        for item in running
        # the worker puts each job's files in a folder of their own: job_<id>/<prefix>
        if any(
            str(node.get("inputs", {}).get("filename_prefix")).rsplit("/", 1)[-1] == prefix for node in item[2].values()
        )
    ]


def test_comfyui_killed_mid_job_fails_fast_then_is_restarted(tmp_path, figures):
    """Item 3: a death is noticed within a second, ComfyUI is restarted with bounded retries, and a
    job arriving meanwhile waits for it; past COMFY_MAX_RESTARTS the worker is broken and says so."""
    stack = make_stack(tmp_path / "kill", COMFY_MAX_RESTARTS="2", COMFY_RESTART_BACKOFF_S="0.2")
    stack.start(wait=180)
    try:
        # 1. Killed mid-job: the job fails fast with COMFY_DIED and its own log window.
        result: dict = {}
        workflow = sleep_workflow(60, prefix="killed")
        job = threading.Thread(target=lambda: result.update(runsync(stack, {"workflow": workflow})))
        job.start()
        _wait(lambda: running_prompts(stack.comfy_url, "killed"), 60, "the prompt to run inside RPTestSleep")
        first_pid = stack.comfy_pid()
        killed_at = time.monotonic()
        os.kill(first_pid, signal.SIGKILL)
        job.join(timeout=30)
        answered_in = time.monotonic() - killed_at
        err = error_of(result)
        assert err["error_code"] == "COMFY_DIED"
        assert isinstance(err["logs_tail"], list)
        assert answered_in < 3.0, answered_in
        health = stack.health()
        assert health["restart_count"] == 1 and health["last_death"]["code"] == "COMFY_DIED"
        assert "signal 9" in health["last_death"]["message"]
        # 2. A job sent while ComfyUI restarts waits for it, within its own deadline, and runs.
        sent = time.monotonic()
        waited = runsync(stack, {"workflow": "smoke_image", "timeout_s": 120})
        assert waited["status"] == "COMPLETED", waited
        waited_s = time.monotonic() - sent
        assert stack.comfy_pid() != first_pid
        report = runsync(stack, {"mode": "diagnose", "workflow": "smoke_image"})["output"]
        assert report["worker"]["last_death"]["code"] == "COMFY_DIED"
        assert any(f["code"] == "COMFY_DIED" and f["severity"] == "warning" for f in report["findings"])
        # 3. Killed between jobs: `test` says so within a second.
        stack.wait_state(("ready",), 60)
        killed_at = time.monotonic()
        os.kill(stack.comfy_pid(), signal.SIGKILL)
        noticed = _wait(lambda: (h := stack.health()) and h["state"] != "ready" and h, 5, "the worker to notice")
        noticed_in = time.monotonic() - killed_at
        assert noticed_in < 1.0, noticed_in
        assert noticed["state"] == "restarting" and noticed["ok"] is False
        assert noticed["cause"]["code"] == "COMFY_DIED"
        # 4. A third death exceeds COMFY_MAX_RESTARTS=2: broken, and every job answers why, at once.
        stack.wait_state(("ready",), 60)
        os.kill(stack.comfy_pid(), signal.SIGKILL)
        broken = stack.wait_state(("broken",), 10)
        assert broken["cause"]["code"] == "COMFY_CRASH_LOOP" and broken["restart_count"] == 2
        sent = time.monotonic()
        assert error_of(runsync(stack, {"workflow": "smoke_image"}))["error_code"] == "COMFY_CRASH_LOOP"
        assert time.monotonic() - sent < 2.0
        figures["comfy_killed"] = {
            "mid_job_failed_with": err["error_code"],
            "mid_job_answered_after_kill_s": round(answered_in, 3),
            "idle_death_noticed_after_s": round(noticed_in, 3),
            "job_sent_during_restart_completed_after_s": round(waited_s, 2),
            "after_max_restarts": broken["cause"]["code"],
        }
    finally:
        stack.stop()


def test_refresh_worker_flag_is_set_when_comfyui_is_gone(stack):
    import handler.worker as worker

    rt = Runtime(stack_settings(stack, COMFY_URL="http://127.0.0.1:9", COMFY_PID_FILE="/nonexistent/pid"))
    try:
        result = call(rt, {"workflow": "smoke_image"})
    finally:
        rt.events.close()
    assert result["refresh_worker"] is True and json.loads(result["error"])["error_code"] == "COMFY_NOT_READY"
    assert worker._runtime is None


def test_hung_node_times_out_at_the_deadline_and_leaves_the_queue(stack, figures):
    started = time.monotonic()
    err = error_of(runsync(stack, {"workflow": sleep_workflow(600, prefix="hung"), "timeout_s": 3}))
    elapsed = time.monotonic() - started
    assert err["error_code"] == "TIMEOUT"
    # The deadline counts from the job's arrival, after `started`; far below the node's 600 s: it was cut.
    assert 3.0 <= elapsed < 60, elapsed
    # Our prompt (other prompts, e.g. the worker's start-up smoke job, may come and go) left the queue.
    queue = requests.get(f"{stack.comfy_url}/queue", timeout=5).json()
    ours = [
        item
        for item in queue["queue_running"] + queue["queue_pending"]
        if any(node.get("class_type") == "RPTestSleep" for node in item[2].values())
    ]
    assert ours == [], ours
    figures["hung_node_timeout"] = {"deadline_s": 3, "answered_after_s": round(elapsed, 3)}


def test_websocket_dropped_mid_job_still_completes_with_all_outputs(stack, figures, monkeypatch):
    """The WebSocket drops while the prompt runs and stays down until it has finished: every event of the
    end is missed, so the outputs can only come from /history."""
    import comfyui_client.events as events_module

    real_connect = events_module.websocket.create_connection
    reconnect_allowed = threading.Event()
    reconnect_allowed.set()

    def connect(*args, **kwargs):
        if not reconnect_allowed.is_set():
            raise OSError("test: the network to ComfyUI is down")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(events_module.websocket, "create_connection", connect)
    rt = Runtime(stack_settings(stack))
    rt.events.start(wait=10)
    assert rt.events.connected
    try:
        result: dict = {}
        workflow = sleep_workflow(1.5, prefix="wsdrop")
        job = threading.Thread(target=lambda: result.update(call(rt, {"workflow": workflow}, "wsdrop")))
        job.start()
        prompt = _wait(lambda: running_prompts(stack.comfy_url, "wsdrop"), 60, "the prompt to run")[0]
        reconnect_allowed.clear()
        rt.events.drop_connection()
        # ComfyUI finishes the prompt while we can't hear it; then the network comes back. (Its queue, not
        # its /history: the job deletes its prompt from /history as soon as it has the outputs.)
        _wait(
            lambda: prompt not in json.dumps(requests.get(f"{stack.comfy_url}/queue", timeout=5).json()),
            60,
            "the prompt to finish in ComfyUI",
            interval=0.1,
        )
        reconnect_allowed.set()
        job.join(timeout=60)
        assert not job.is_alive()
    finally:
        reconnect_allowed.set()
        rt.events.close()
    assert "error" not in result, result.get("error")
    assert len(result["outputs"]) == 1 and result["outputs"][0]["base64"]
    assert result.get("recovered_from_history") is True, sorted(result)
    figures["websocket_dropped"] = {"completed": True, "recovered_from_history": True}


def _fake_comfy(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake_comfy.sh"
    script.write_text("#!/usr/bin/env bash\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


# ComfyUI failing or hanging at start: tests/start_failures/test_catalogue.py (the worker answers
# every job with the cause instead of exiting).


def test_entrypoint_waits_for_a_slow_comfyui_then_takes_jobs(tmp_path, figures):
    """A job sent while ComfyUI still boots waits for it; ComfyUI's output reaches stdout prefixed and a
    bounded log file; SIGTERM stops both processes."""
    stack = make_stack(tmp_path / "slow", COMFY_LOG_MAX_MB="0.01")
    real_main = stack.env()["COMFY_MAIN"]
    real_python = stack.env()["COMFY_PYTHON"]
    fake = _fake_comfy(tmp_path, f'sleep 4; exec "{real_python}" "{real_main}" "$@"')
    # the fake ComfyUI (bash, then the real one) lives in pytest's private tmp dir: not a confinement test
    stack.env_overrides.update(COMFY_PYTHON="bash", COMFY_MAIN=str(fake), COMFY_RUN_AS="", CONFINE_FS="0")
    started = time.monotonic()
    stack.start(wait=0)
    try:
        early = stack.wait_state(("starting",), 60)
        assert early["ok"] is False and early["cause"]["code"] == "COMFY_STARTING"
        result = runsync(stack, {"workflow": "smoke_image", "timeout_s": 120})
        assert result["status"] == "COMPLETED", result
        assert time.monotonic() - started >= 4
        health = runsync(stack, {"mode": "test"})["output"]
        assert health["comfyui_up"] is True and health["state"] == "ready"
        phases = health["phases"]
        assert phases["comfyui_process_started"] <= phases["comfyui_ready"]
        assert phases["comfyui_ready"] - phases["comfyui_process_started"] >= 4  # the slow start shows
        assert {"handler_imported", "sdk_started", "first_job_taken"} <= set(phases)
        assert "rp_test_nodes" in phases["pack_imports_s"]
        # Logs: ComfyUI's output on stdout, prefixed; the file rotated at COMFY_LOG_MAX_MB.
        printed = stack.log_file.read_text()
        assert "[comfyui] Starting server" in printed
        assert stack.comfy_log.stat().st_size <= 0.01 * 1024 * 1024 and stack.comfy_log.with_suffix(".log.1").exists()
        comfy, worker = stack.comfy_pid(), stack.worker_pid()
        assert comfy and worker
    finally:
        stack.stop()
    for pid in (comfy, worker):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    figures["entrypoint_slow_start"] = {"comfy_delay_s": 4, "ready_after_s": round(time.monotonic() - started, 2)}


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )


def test_disk_nearly_full(tmp_path, figures):
    out_dir = tmp_path / "small-disk"
    if not _mount_tmpfs(out_dir, "4m"):
        if os.geteuid() == 0:  # CI runs as root: there the test must run, never skip
            pytest.fail("running as root but cannot mount a tmpfs for the disk-full test")
        pytest.skip("cannot mount a tmpfs here: needs root (CI runs as root, so it runs there)")
    try:
        stack = make_stack(
            tmp_path / "disk",
            COMFY_OUTPUT_DIR=str(out_dir),
            DISK_LOW_GB="1",
            DISK_FULL_MB="0",
            COMFY_RUN_AS="",  # the tmpfs is in pytest's private tmp dir, which ComfyUI's user can't reach
        )
        stack.start(wait=180)
        try:
            wait_for_startup_selfcheck(stack)  # its smoke job writes to the same small disk
            report = runsync(stack, {"mode": "diagnose", "workflow": "smoke_image"})["output"]
            low = [f for f in report["findings"] if f["code"] == "DISK_LOW"]
            assert low and low[0]["severity"] == "error" and low[0]["path"] == str(out_dir)
            assert runsync(stack, {"mode": "test"})["output"]["ok"] is False
            filler = out_dir / "filler.bin"
            with filler.open("wb") as fh:  # leave (almost) no space
                try:
                    while True:
                        fh.write(b"\0" * 65536)
                except OSError:
                    pass
            envelope = runsync(
                stack,
                {
                    "workflow": "smoke_i2v",
                    "image_base64": png_base64(256, 256),
                    "frames": 48,
                    "width": 256,
                    "height": 256,
                },
            )
            err = error_of(envelope)
            # refused before it runs (below DISK_FULL_MB free), or the save node's "No space left" mapped
            assert err["error_code"] == "DISK_FULL", err
            assert "free on the output disk" in err["error_message"] or "No space left" in err["error_message"], err
            assert list(out_dir.glob("job_*")) == []  # no partial output left or returned
            figures["disk_full"] = {"diagnose": "DISK_LOW", "generate": err["error_code"]}
        finally:
            stack.stop()
    finally:
        subprocess.run(["umount", str(out_dir)], check=False)
