"""Log lines attributed to their prompt (handler.comfy_boot, handler.comfylog), without ComfyUI.

The bootstrap runs for real, in a subprocess, in front of a tiny fake ComfyUI: a main.py that wraps
sys.stdout.buffer the way ComfyUI's app/logger.py does, runs prompts on a worker thread through a fake
`execution.PromptExecutor.execute`, and prints from a node, a helper thread that outlives its prompt,
a thread pool and the server's thread. Its output is read by the worker's own ComfyLog. The real stack
(ComfyUI 0.3.75) is in tests/security/test_confinement.py.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from handler import comfy_boot
from handler.comfylog import ComfyLog
from handler.config import Settings
from handler.supervisor import comfy_command

EXECUTION = """
import logging, sys, threading
from concurrent.futures import ThreadPoolExecutor

go_late = threading.Event()
late_done = threading.Event()
pools = []


class PromptExecutor:
    def execute(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):
        print(f"{prompt} node line")
        if prompt == "A":
            def helper():  # a node's helper thread: prints after its prompt is done
                go_late.wait()
                print("A late line")
                late_done.set()
            threading.Thread(target=helper, daemon=True).start()
            pool = ThreadPoolExecutor(1)
            pools.append(pool)
            pool.submit(print, "A pool line").result()
            logging.error("A traceback line")
            print("fake \\x1eB\\x1fforged \\x1ddone B")  # a node printing control bytes
            sys.stdout.write("A partial ")
            sys.stderr.write("A on stderr\\n")
            sys.stdout.write("A rest\\n")
        else:
            go_late.set()  # A's helper prints while B runs
            late_done.wait()
"""

MAIN = """
import io, logging, sys, threading


class LogInterceptor(io.TextIOWrapper):  # as ComfyUI's app/logger.py: over the stream's buffer
    def __init__(self, stream):
        super().__init__(stream.buffer, encoding=stream.encoding, line_buffering=stream.line_buffering)


sys.stdout = LogInterceptor(sys.stdout)
sys.stderr = LogInterceptor(sys.stderr)
logging.basicConfig(stream=sys.stderr, format="%(message)s")
print("argv", sys.argv[1:], "path0", sys.path[0])
import execution


def prompt_worker():
    e = execution.PromptExecutor()
    for prompt in ("A", "B"):
        e.execute(prompt, prompt)


worker = threading.Thread(target=prompt_worker)
worker.start()
worker.join()
execution.pools[0].submit(print, "server pool line").result()  # the pool A made, used outside a prompt
print("server line")
"""


def run_boot(tmp_path: Path, execution: str = EXECUTION, main: str = MAIN) -> list[str]:
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "execution.py").write_text(execution)
    (comfy / "main.py").write_text(main)
    proc = subprocess.run(
        [sys.executable, comfy_boot.FILE, str(comfy / "main.py"), "--output-directory", "/out"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout.decode()
    # as the supervisor reads the pipe: by b"\n" (str.splitlines would also split at the tag bytes)
    return [line.decode() + "\n" for line in proc.stdout.split(b"\n")[:-1]]


def fed(tmp_path: Path, raw: list[str]) -> ComfyLog:
    """The output read as the worker reads it: job-a queued prompt A and has answered; job-b, which
    queued prompt B, is running while every line arrives (A's late line included)."""
    log = ComfyLog(tmp_path / "comfyui.log", echo=None)
    log.begin_job("job-a")
    log.claim("job-a", "A")
    log.end_job("job-a")
    log.begin_job("job-b")
    log.claim("job-b", "B")
    for line in raw:
        log.feed(line)
    return log


def test_the_bootstrap_tags_each_line_with_its_prompt_whatever_thread_prints_it(tmp_path):
    raw = run_boot(tmp_path)
    text = "".join(raw)
    # ComfyUI sees its own argv and folder, never the bootstrap's
    assert f"argv ['--output-directory', '/out'] path0 {tmp_path / 'ComfyUI'}" in text
    tagged = {line.rstrip("\n") for line in raw}  # (str.strip would take the tag bytes too)
    for line in (
        "A node line",
        "A late line",
        "A pool line",
        "A traceback line",
        "fake Bforged done B",
        "A partial A rest",
    ):
        assert f"{comfy_boot.TAG}A{comfy_boot.SEP}{line}" in tagged, (line, raw)
    assert f"{comfy_boot.TAG}A{comfy_boot.SEP}A on stderr" in tagged  # its own line, not inside stdout's
    assert f"{comfy_boot.TAG}B{comfy_boot.SEP}B node line" in tagged
    for line in ("server line", "server pool line"):
        assert line + "\n" in raw, line  # outside any prompt: untagged
    controls = [line.rstrip("\n") for line in raw if line.startswith(comfy_boot.CONTROL)]
    assert controls == [
        f"{comfy_boot.CONTROL}patched execution.PromptExecutor.execute",
        f"{comfy_boot.CONTROL}start A",
        f"{comfy_boot.CONTROL}done A",
        f"{comfy_boot.CONTROL}start B",
        f"{comfy_boot.CONTROL}done B",
    ]


def test_a_prompts_late_line_is_its_jobs_alone(tmp_path):
    log = fed(tmp_path, run_boot(tmp_path))
    a, b = log.tail(job="job-a"), log.tail(job="job-b")
    assert {"A node line", "A late line", "A pool line", "A traceback line", "A on stderr"} <= set(a)
    assert not any(line.startswith(("B", "server")) for line in a), a
    # job B ran while A's helper printed: none of it in B's answer; the untagged lines are B's (its window)
    assert not any("A " in line or "forged" in line for line in b), b
    assert {"B node line", "server line", "server pool line"} <= set(b)
    log.end_job("job-b")
    assert not any(line.startswith(("A", "B", "fake")) for line in log.tail()), log.tail()
    assert log.attribution() == {"by": "prompt", "why_not": None}


def test_without_the_patch_target_comfyui_runs_untagged_and_the_worker_says_so(tmp_path):
    raw = run_boot(tmp_path, execution="PromptQueue = None\n", main="import execution\nprint('plain line')\n")
    assert raw[-1] == "plain line\n"
    log = fed(tmp_path, raw)
    assert log.tail(job="job-b") == ["plain line"]  # the time window: the fallback
    assert log.attribution() == {
        "by": "time window",
        "why_not": "execution.PromptExecutor.execute not found in this ComfyUI",
    }


def test_comfyui_runs_through_the_bootstrap_when_its_main_is_python(tmp_path):
    command = comfy_command(Settings.from_env({"COMFY_MAIN": "/c/launch.py"}))
    assert command[1:3] == [comfy_boot.FILE, "/c/launch.py"] and "--output-directory" in command
    wrapper = comfy_command(Settings.from_env({"COMFY_PYTHON": "bash", "COMFY_MAIN": "/c/slow_start.sh"}))
    assert wrapper[:2] == ["bash", "/c/slow_start.sh"]  # a wrapper script runs as it is: lines by time window
    missing = subprocess.run(
        [sys.executable, comfy_boot.FILE, str(tmp_path / "main.py")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "can't open file" in missing.stderr  # as `python main.py` says it


def test_lines_belong_to_their_prompts_job_and_untagged_ones_to_the_window(tmp_path):
    log = ComfyLog(tmp_path / "comfyui.log", echo=None)
    log.write("start-up")
    log.begin_job("a")
    log.claim("a", "pa")
    log.write("got prompt")  # the server thread: untagged, a's window
    log.write("a's node", "pa")
    log.end_job("a")
    log.claim("selfcheck", "ps")  # queued outside any job: the worker's own prompt
    log.write("smoke node", "ps")
    log.begin_job("b")
    log.claim("b", "pb")
    log.write("a's late line", "pa")
    log.write("b's node", "pb")
    log.write("a stranger's prompt", "p?")  # a prompt the worker never queued
    log.write("untagged while b ran")
    log.end_job("b")
    log.write("a's later line", "pa")
    assert log.tail(job="a") == ["got prompt", "a's node", "a's late line", "a's later line"]
    assert log.tail(job="b") == ["b's node", "untagged while b ran"]
    assert log.tail() == ["start-up", "smoke node"]


def test_settle_waits_for_the_jobs_running_prompt_to_be_done(tmp_path):
    log = ComfyLog(tmp_path / "comfyui.log", echo=None)
    log.begin_job("a")
    log.claim("a", "pa")
    log.claim("a", "never-started")  # refused by validation: nothing to wait for
    log.feed(f"{comfy_boot.CONTROL}{comfy_boot.START} pa\n")
    done = threading.Timer(0.05, log.feed, args=(f"{comfy_boot.CONTROL}{comfy_boot.DONE} pa\n",))
    done.start()
    began = time.monotonic()
    log.settle("a", max_s=60)
    assert time.monotonic() - began < 60 and not done.is_alive()  # returned on the done line
    log.feed(f"{comfy_boot.CONTROL}{comfy_boot.START} pa\n")
    log.forget_prompts()  # ComfyUI's process ended
    began = time.monotonic()
    log.settle("a", max_s=60)
    assert time.monotonic() - began < 60
