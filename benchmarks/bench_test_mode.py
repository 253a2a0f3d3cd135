"""`test` mode: handler time with ComfyUI up, and how fast it answers when ComfyUI is down.

In-process `handle({"input": {"mode": "test"}})` calls (the worker's own function), timed with
perf_counter around the call. "Down" has three faces, each measured with its own Runtime:
- exited: ComfyUI's process is gone (the PID file names a dead process) and its port is closed;
- port_closed: nothing listens on ComfyUI's port and the worker does not know a PID;
- frozen: ComfyUI's process is alive but stopped (SIGSTOP), so the kernel accepts the TCP
  connection and nothing ever answers: the case of a hung or swapping ComfyUI.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

from benchmarks._common import reps, stats, write_result
from benchmarks.stack import BenchStack, use_runtime
from tools.localstack import free_port

TARGET_UP_P50_MS = 5.0
TARGET_DOWN_MS = 1000.0


def _calls(n: int) -> list[tuple[float, dict[str, Any]]]:
    from handler.worker import handle

    out = []
    for i in range(n):
        t0 = time.perf_counter()
        result = handle({"id": f"test-{i}", "input": {"mode": "test"}})
        out.append(((time.perf_counter() - t0) * 1000, result))
    return out


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def run(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    from handler.runtime import Runtime

    assert bs.stack is not None
    figures: dict[str, Any] = {}

    use_runtime(runtime)
    _calls(10)  # warm the pooled connection
    up = _calls(reps(300, 30))
    figures["up"] = {
        "wall_ms": stats(ms for ms, _ in up),
        "handler_total_ms": stats(r["timings"]["total_ms"] for _, r in up),
        "all_ok": all(r["ok"] for _, r in up),
    }
    figures["up"]["met"] = figures["up"]["wall_ms"]["median"] <= TARGET_UP_P50_MS

    down: dict[str, Any] = {}
    pid_file = bs.run_dir / "dead-comfyui.pid"
    pid_file.write_text(str(_dead_pid()))
    closed_url = f"http://127.0.0.1:{free_port()}"
    scenarios = {
        "exited": dict(COMFY_URL=closed_url, COMFY_PID_FILE=str(pid_file)),
        "port_closed": dict(COMFY_URL=closed_url, COMFY_PID_FILE=""),
        "frozen": {},
    }
    comfy_pid = bs.stack.comfy_pid()
    for name, overrides in scenarios.items():
        rt = Runtime(bs.settings(**overrides))
        use_runtime(rt)
        n = reps(5, 3) if name == "frozen" else reps(20, 5)
        if name == "frozen":
            assert comfy_pid is not None
            logging.getLogger("urllib3").setLevel(logging.ERROR)  # its retry warnings are the point, not news
            os.kill(comfy_pid, signal.SIGSTOP)
        try:
            calls = _calls(n)
        finally:
            if name == "frozen":
                os.kill(comfy_pid, signal.SIGCONT)
        rt.comfy.close()
        walls = [ms for ms, _ in calls]
        down[name] = {
            "wall_ms": stats(walls),
            "answered_comfyui_up_false": all(r.get("comfyui_up") is False and r.get("ok") is False for _, r in calls),
            "met": max(walls) <= TARGET_DOWN_MS,
        }
    use_runtime(runtime)
    if not runtime.comfy.is_up(timeout=5):
        raise RuntimeError("ComfyUI did not come back after SIGCONT")
    figures["down"] = down
    return {
        "target": f"up: p50 ≤ {TARGET_UP_P50_MS:g} ms; down: every answer ≤ {TARGET_DOWN_MS:g} ms",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "figures": figures,
        "met": figures["up"]["met"] and all(d["met"] for d in down.values()),
    }


def main(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    result = run(bs, runtime)
    write_result("test_mode", result)
    return result
