"""The background self-check after start never makes a real job wait for its smoke prompt.

ComfyUI collects garbage right after the first prompt it runs, and a prompt queued meanwhile waits for
it: so the smoke job runs only after a lull without jobs, and not at all once a job's prompt has run
to its outputs (measured by `make bench BENCH_ARGS="--only first_job"`)."""

from __future__ import annotations

import threading
import time

import pytest

from handler import selfcheck
from handler.config import Settings
from handler.runtime import Runtime
from handler.selfcheck import live_check
from handler.state import WorkerState
from tests.conftest import make_stack, runsync, stack_settings, wait_for_startup_selfcheck


def _runtime(stack) -> Runtime:
    rt = Runtime(stack_settings(stack))
    rt.state = WorkerState()
    rt.events.start(wait=2)
    return rt


def test_wait_quiet_waits_for_a_lull_after_the_last_job():
    rt = Runtime(Settings.from_env({}))
    rt.begin_job("a")
    assert rt.wait_quiet(0.0, timeout=0.05) is False  # a job runs: never quiet
    ended = threading.Timer(0.1, rt.end_job, args=("a",))
    ended.start()
    assert rt.wait_quiet(0.3, timeout=30) is True
    assert time.monotonic() - rt._last_job_end >= 0.3  # quiet since the job ended, not just idle
    ended.join()


def test_wait_quiet_counts_from_the_wait_not_from_long_ago():
    # A worker whose runtime was built long before ComfyUI became ready (the cold start) and that has
    # had no job yet: the lull is counted from the wait, so the smoke job never runs at once.
    rt = Runtime(Settings.from_env({}))
    assert rt.wait_quiet(0.2, timeout=30) is True  # time passes with no job at all
    called = time.monotonic()
    assert rt.wait_quiet(0.3, timeout=30) is True
    assert time.monotonic() - called >= 0.3


def test_wait_quiet_gives_up_when_jobs_keep_coming():
    rt = Runtime(Settings.from_env({}))
    rt.begin_job("long")
    try:
        started = time.monotonic()
        assert rt.wait_quiet(0.1, timeout=0.3) is False
        assert time.monotonic() - started >= 0.3
    finally:
        rt.end_job("long")


@pytest.mark.stack
def test_the_smoke_job_waits_for_a_lull_after_a_job_that_came_during_the_wait(stack, monkeypatch):
    quiet = 2.0
    monkeypatch.setattr(selfcheck, "SMOKE_AFTER_QUIET_S", quiet)
    rt = _runtime(stack)
    waiting = threading.Event()
    real_wait_quiet = rt.wait_quiet

    def wait_quiet(quiet_s: float, timeout: float) -> bool:
        waiting.set()
        return real_wait_quiet(quiet_s, timeout)

    rt.wait_quiet = wait_quiet  # type: ignore[method-assign]
    result: dict = {}
    check = threading.Thread(target=lambda: result.update(live_check(rt, yield_to_jobs=True)), daemon=True)
    check.start()
    ended = True
    try:
        assert waiting.wait(120), "the check never reached its wait for a lull"
        rt.begin_job("real")  # a job arrives while the check waits for its lull
        ended = False
        check.join(timeout=0.5)
        assert check.is_alive() and "first_output" not in rt.state.phases  # nothing queued meanwhile
        rt.end_job("real")
        ended = True
        job_ended = time.time() - rt.state.origin
        check.join(timeout=120)
        assert result["smoke"]["ok"] is True and result["smoke"]["ms"] > 0
        assert rt.state.phases["first_output"] >= job_ended + quiet - 0.01  # a whole lull after that job
    finally:
        if not ended:
            rt.end_job("real")
        rt.events.close()


@pytest.mark.stack
def test_the_smoke_job_is_skipped_once_a_jobs_prompt_ran_to_its_outputs(stack, monkeypatch):
    monkeypatch.setattr(selfcheck, "SMOKE_AFTER_QUIET_S", 600.0)  # would wait: the proof comes first
    rt = _runtime(stack)
    try:
        rt.state.phase("first_output")
        result = live_check(rt, yield_to_jobs=True)
        assert result["smoke"]["ok"] is True and "ran to its outputs first" in result["smoke"]["skipped"]
        assert "ms" not in result["smoke"]  # no smoke prompt ran
        assert "smoke job skipped" in selfcheck.summary_line(result)
    finally:
        rt.events.close()


def test_the_smoke_job_is_skipped_when_jobs_keep_the_worker_busy(monkeypatch):
    monkeypatch.setattr(selfcheck, "SMOKE_WAIT_S", 0.2)
    rt = Runtime(Settings.from_env({}))
    rt.state = WorkerState()
    rt.begin_job("busy")
    try:
        skipped = selfcheck._smoke_skipped(rt, yield_to_jobs=True)
    finally:
        rt.end_job("busy")
    assert skipped == {"ok": None, "skipped": "jobs kept the worker busy for 0.2 s"}
    assert "smoke job skipped: jobs kept" in selfcheck.summary_line({"ok": True, "findings": [], "smoke": skipped})


@pytest.mark.stack
def test_a_real_worker_skips_the_smoke_job_when_the_first_job_came_first(tmp_path):
    stack = make_stack(tmp_path / "stack")  # SELF_CHECK_AT_START defaults to on
    try:
        stack.start(wait=180)
        out = runsync(stack, {"workflow": "smoke_image"})
        assert out["status"] == "COMPLETED", out
        phases = runsync(stack, {"mode": "test"})["output"]["phases"]
        assert "first_output" in phases
        wait_for_startup_selfcheck(stack)
        log = stack.log_file.read_text(errors="replace").splitlines()
        line = next((x for x in log if x.startswith("self-check:")), "no self-check line")
        assert "smoke job skipped: a job's prompt ran to its outputs first" in line, line
    finally:
        stack.stop()


def test_a_job_that_ran_to_its_outputs_during_the_wait_makes_the_smoke_job_moot(monkeypatch):
    monkeypatch.setattr(selfcheck, "SMOKE_AFTER_QUIET_S", 0.2)
    rt = Runtime(Settings.from_env({}))
    rt.state = WorkerState()
    rt.begin_job("real")

    def job_done() -> None:
        rt.state.phase("first_output")
        rt.end_job("real")

    timer = threading.Timer(0.1, job_done)
    timer.start()
    skipped = selfcheck._smoke_skipped(rt, yield_to_jobs=True)
    timer.join()
    assert skipped["ok"] is True and "ran to its outputs first" in skipped["skipped"]
