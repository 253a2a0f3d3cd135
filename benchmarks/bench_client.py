"""`python client/diagnose.py --test`: process start to answer, against the bench stack.

Each run is a fresh `python client/diagnose.py --test ...` process (the venv's interpreter, as a
user runs it), timed from just before the spawn to its exit, after it printed its answer. Targets:
`--url` (the worker's RunPod-style local API: the RunPod path) and `--comfy-url` (ComfyUI direct).
The floor beside it: the same interpreter running `pass`, and importing the client's CLI module.
One extra run with `-X importtime` lists the slowest imports. If client/diagnose.py does not exist,
the benchmark records that and measures only the floor.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._common import REPO, reps, stats, write_result
from benchmarks.stack import BenchStack, child_env

TARGET_S = 0.5
SCRIPT = REPO / "client" / "diagnose.py"


def _time(cmd: list[str], env: dict[str, str], n: int) -> tuple[dict[str, Any], list[subprocess.CompletedProcess]]:
    walls, procs = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        walls.append(time.perf_counter() - t0)
        procs.append(proc)
    return stats(walls, 3), procs


def _slowest_imports(cmd: list[str], env: dict[str, str], top: int = 12) -> list[dict[str, Any]]:
    proc = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], cwd=REPO, env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            rows.append({"module": m.group(4), "cumulative_ms": int(m.group(2)) / 1000, "depth": len(m.group(3)) // 2})
    top_level = [r for r in rows if r["depth"] <= 1]
    return sorted(top_level, key=lambda r: -r["cumulative_ms"])[:top]


def run(bs: BenchStack | None) -> dict[str, Any]:
    home = tempfile.mkdtemp(prefix="bench-client-home-")
    env = child_env(HOME=home, COMFY_RUNPOD_LEDGER=os.path.join(home, "jobs.sqlite"), NO_COLOR="1")
    for key in ("RUNPOD_ENDPOINT_ID", "RUNPOD_ENDPOINT_URL", "RUNPOD_API_KEY"):
        env.pop(key, None)
    n = reps(10, 3)
    py = sys.executable
    figures: dict[str, Any] = {
        "python_pass_s": _time([py, "-c", "pass"], env, n)[0],
    }
    if not SCRIPT.exists():
        return {
            "target": f"p50 ≤ {TARGET_S:g} s",
            "status": "pending: client/diagnose.py does not exist yet; this benchmark runs it once it does",
            "figures": figures,
            "met": None,
            "_home": home,
        }
    figures["import_client_cli_s"] = _time([py, "-c", "import client.cli"], env, n)[0]
    runs: dict[str, Any] = {}
    assert bs is not None and bs.stack is not None
    for label, flags in (("url", ["--url", bs.stack.api_url]), ("comfy_url", ["--comfy-url", bs.stack.comfy_url])):
        cmd = [py, str(SCRIPT), "--test", *flags]
        _time(cmd, env, 1)  # warm the page cache and the worker
        wall, procs = _time(cmd, env, n)
        last = procs[-1]
        runs[label] = {
            "command": " ".join(["python", "client/diagnose.py", "--test", *flags]),
            "wall_s": wall,
            "exit_codes": sorted({p.returncode for p in procs}),
            "answer_tail": (last.stdout.strip().splitlines() or [""])[-3:],
            "met": wall["median"] <= TARGET_S,
        }
    figures["runs"] = runs
    figures["slowest_imports_url"] = _slowest_imports([py, str(SCRIPT), "--test", "--url", bs.stack.api_url], env)
    return {
        "target": f"p50 ≤ {TARGET_S:g} s (process start to answer)",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "figures": figures,
        "met": runs["url"]["met"],
        "_home": home,
    }


def main(bs: BenchStack | None) -> dict[str, Any]:
    result = run(bs)
    shutil.rmtree(result.pop("_home"), ignore_errors=True)
    write_result("client_diagnose_test", result)
    return result
