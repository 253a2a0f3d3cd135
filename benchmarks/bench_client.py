"""`python client/diagnose.py --test`: process start to answer, against the bench stack.

Each run is a fresh `python client/diagnose.py --test ...` process (the venv's interpreter, as a
user runs it), timed from just before the spawn to its exit, after it printed its answer. Targets:
`--url` (the worker's RunPod-style local API: the RunPod path) and `--comfy-url` (ComfyUI direct).
The floor beside it: the same interpreter running `pass`, and importing the client's CLI module.
One extra run with `-X importtime` lists the slowest imports. If client/diagnose.py does not exist,
the benchmark records that and measures only the floor. Then the installed command: `pip install .`
(no deps; setuptools fetched by pip's build isolation) into a fresh venv that sees the project
venv's dependencies through a .pth file, and `comfy-runpod diagnose --test --url ...` timed the same
way, run from outside the checkout so only the installed copy can be imported.
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


def _install(home: str) -> tuple[str | None, str]:
    """(path of the installed comfy-runpod, pip's output tail): `pip install .` into a fresh venv."""
    venv = os.path.join(home, "venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = subprocess.run(
        [os.path.join(venv, "bin", "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = next(p for p in sys.path if p.endswith("site-packages"))
    with open(os.path.join(site, "project_deps.pth"), "w") as fh:
        fh.write(deps + "\n")
    pip = [os.path.join(venv, "bin", "python"), "-m", "pip", "install", "-q", "--no-deps"]
    proc = subprocess.run([*pip, str(REPO)], capture_output=True, text=True, cwd=home, timeout=600)
    script = os.path.join(venv, "bin", "comfy-runpod")
    return (script if proc.returncode == 0 and os.path.exists(script) else None), (proc.stdout + proc.stderr)[-500:]


def _installed(api_url: str, env: dict[str, str], n: int, home: str) -> dict[str, Any]:
    script, log = _install(home)
    if script is None:
        raise RuntimeError(f"pip install . failed: {log}")
    cmd = [script, "diagnose", "--test", "--url", api_url]
    where = subprocess.run(
        [os.path.join(os.path.dirname(script), "python"), "-c", "import client; print(client.__file__)"],
        capture_output=True,
        text=True,
        cwd=home,
    ).stdout.strip()
    walls, procs = [], []
    for _ in range(n + 1):  # the first warms the page cache
        t0 = time.perf_counter()
        procs.append(subprocess.run(cmd, cwd=home, env=env, capture_output=True, text=True, timeout=60))
        walls.append(time.perf_counter() - t0)
    wall = stats(walls[1:], 3)
    return {
        "command": "comfy-runpod diagnose --test --url <stack> (pip install . into a fresh venv)",
        "client_imported_from": where,
        "wall_s": wall,
        "exit_codes": sorted({p.returncode for p in procs}),
        "answer_tail": (procs[-1].stdout.strip().splitlines() or [""])[-3:],
        "met": wall["median"] <= TARGET_S,
    }


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
    try:
        runs["installed_url"] = _installed(bs.stack.api_url, env, n, home)
    except (RuntimeError, subprocess.SubprocessError) as exc:
        figures["installed_error"] = str(exc)[-800:]
    return {
        "target": f"p50 ≤ {TARGET_S:g} s (process start to answer)",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "figures": figures,
        "met": runs["url"]["met"] and runs.get("installed_url", {}).get("met", False),
        "_home": home,
    }


def main(bs: BenchStack | None) -> dict[str, Any]:
    result = run(bs)
    shutil.rmtree(result.pop("_home"), ignore_errors=True)
    write_result("client_diagnose_test", result)
    return result
