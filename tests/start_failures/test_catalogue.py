"""The start-failure catalogue: deployments broken at start, staged through the real entrypoint.sh.

For each: `POST /runsync {"mode": "test"}` answers within 2 s of the request with ok: false and
the cause; diagnose names it; generate fails with it. Stages with a fake ComfyUI use a few lines of
Python in its place (no torch: they fail in a second); the others run the real CPU ComfyUI 0.3.75.
README, "Start-failure catalogue", shows the same table.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, make_stack, runsync
from workflows.errors import CODES

pytestmark = pytest.mark.stack

SMOKE = {"workflow": "smoke_image"}


def error_of(envelope: dict[str, Any]) -> dict[str, Any]:
    assert envelope["status"] == "FAILED", envelope
    return json.loads(envelope["error"])


def fake_comfy(tmp_path: Path, body: str) -> dict[str, str]:
    """Env that makes the worker start `body` (Python) in ComfyUI's place."""
    script = tmp_path / "fake_main.py"
    script.write_text(body)
    # in pytest's private tmp dir, which ComfyUI's unprivileged user can't reach: run it as the worker's
    return {"COMFY_PYTHON": "python3", "COMFY_MAIN": str(script), "COMFY_RUN_AS": ""}


def staged(stack, code: str, *, state: str = "broken", job: dict | None = None) -> dict[str, Any]:
    """Start the stack, wait (condition, deadline) for `state`, then check test, diagnose and generate."""
    stack.start(wait=0)
    stack.wait_state((state,), timeout=180)
    sent = time.monotonic()
    health = runsync(stack, {"mode": "test"}, timeout=10)["output"]
    answered_in = time.monotonic() - sent
    assert answered_in < 2.0, answered_in
    assert health["ok"] is False and health["state"] == state, health
    assert health["cause"]["code"] == code, health["cause"]
    assert health["cause"]["fix"] and health["cause"]["message"]
    assert isinstance(health["logs_tail"], list)
    report = runsync(stack, {"mode": "diagnose"}, timeout=60)["output"]
    named = [f for f in report["findings"] if f["code"] == code]
    assert named and named[0]["severity"] == "error", report["findings"]
    sent = time.monotonic()
    err = error_of(runsync(stack, job or SMOKE, timeout=30))
    failed_in = time.monotonic() - sent
    assert err["error_code"] == code, err
    assert err["fix"]
    assert isinstance(err.get("logs_tail"), list) == CODES[code].comfy_involved
    if state == "broken":
        assert failed_in < 2.0, failed_in  # fails fast: never waits in the queue
    return {"health": health, "diagnose": report, "error": err}


@pytest.fixture
def stage(tmp_path):
    stacks = []

    def make(**env: str):
        s = make_stack(tmp_path / f"s{len(stacks)}", **env)
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        s.stop()


def test_comfyui_exits_at_import(stage, tmp_path):
    env = fake_comfy(tmp_path, "print('Starting ComfyUI (fake)', flush=True)\nimport comfy_rp_missing_module\n")
    seen = staged(stage(**env), "DEPENDENCY_MISSING")  # the field-drawn signature of a missing module
    assert "ModuleNotFoundError: No module named 'comfy_rp_missing_module'" in seen["health"]["cause"]["message"]
    assert "'comfy_rp_missing_module'" in seen["health"]["cause"]["fix"]  # the fix names the module
    assert seen["error"]["fix"] == seen["health"]["cause"]["fix"]
    assert any("comfy_rp_missing_module" in line for line in seen["error"]["logs_tail"])


def test_comfyui_never_answers(stage, tmp_path):
    env = fake_comfy(tmp_path, "import time\nprint('loading forever', flush=True)\ntime.sleep(600)\n")
    seen = staged(stage(COMFY_READY_TIMEOUT="2", **env), "COMFY_START_TIMEOUT")
    assert "did not answer within 2 s" in seen["health"]["cause"]["message"]
    assert "loading forever" in seen["health"]["cause"]["message"]


def test_cuda_driver_mismatch(stage, tmp_path):
    body = (
        "print('Checkpoint files will always be loaded safely.', flush=True)\n"
        "raise RuntimeError('Found no NVIDIA driver on your system. Please check that you have an NVIDIA GPU "
        "and installed a driver from http://www.nvidia.com/Download/index.aspx')\n"
    )
    seen = staged(stage(**fake_comfy(tmp_path, body)), "COMFY_CUDA_MISMATCH")
    assert "Found no NVIDIA driver" in seen["health"]["cause"]["message"]


def test_comfyui_command_missing(stage):
    seen = staged(stage(COMFY_PYTHON="/nonexistent/python3"), "COMFY_START_FAILED")
    assert "cannot start ComfyUI" in seen["health"]["cause"]["message"]


def test_port_taken(stage):
    stack = stage()
    with socket.socket() as blocker:  # another process in the container holds ComfyUI's port
        blocker.bind(("127.0.0.1", stack.comfy_port))
        blocker.listen(16)
        seen = staged(stack, "COMFY_PORT_IN_USE")
    message = seen["health"]["cause"]["message"]
    # the kernel's answer names the holder: this test's process, not ComfyUI's "address already in use"
    assert f"held by process {os.getpid()}" in message, message


def test_invalid_extra_model_paths(stage):
    stack = stage()
    original = stack.render_model_paths

    def broken() -> Path:
        path = original()
        path.write_text(path.read_text() + "\ncomfyui:\n  base_path: [unclosed\n")
        return path

    stack.render_model_paths = broken
    seen = staged(stack, "COMFY_MODEL_PATHS_INVALID")
    assert "line" in seen["health"]["cause"]["message"] and "column" in seen["health"]["cause"]["message"]
    assert any(f["code"] == "MODEL_PATHS_INVALID" for f in seen["diagnose"]["findings"])


def test_comfyui_over_its_memory_cap_at_start(stage):
    """The real ComfyUI under a cap it can't start within (torch alone needs more): the kernel (RLIMIT_DATA
    here) or the watchdog stops it, and the worker says so with the fix, never restarting it in a loop."""
    seen = staged(stage(COMFY_MEMORY_MAX_MB="150"), "COMFY_MEMORY_LIMIT")
    cause = seen["health"]["cause"]
    assert "150 MB" in cause["message"] and "COMFY_MEMORY_MAX_MB" in cause["fix"], cause
    assert seen["health"]["restart_count"] == 0
    assert seen["error"]["fix"] == cause["fix"]


def test_pack_kills_the_process_at_import(stage):
    stack = stage()
    pack = stack.comfy_dir / "custom_nodes" / "rp_killer_pack"
    pack.mkdir(parents=True)
    (pack / "__init__.py").write_text("import os\nprint('rp_killer_pack: initialising', flush=True)\nos._exit(3)\n")
    seen = staged(stack, "COMFY_PACK_KILLED_START")
    assert "exited with code 3 while importing custom node packs" in seen["health"]["cause"]["message"]


def test_strict_self_check_fails(stage):
    # The default workflow needs model files this deployment lacks: strict mode refuses to take jobs.
    stack = stage(SELF_CHECK_STRICT="1", DEFAULT_WORKFLOW="sdxl_basic")
    seen = staged(stack, "SELF_CHECK_FAILED")
    assert "SELF_CHECK_STRICT=1: 2 error finding(s)" in seen["health"]["cause"]["message"]
    codes = {f["code"] for f in seen["error"]["details"]["findings"]}
    assert codes == {"PACK_IMPORT_FAILED", "MODEL_MISSING"}, codes  # the test pack that fails, sdxl's model
    printed = stack.log_file.read_text()
    assert "self-check: 2 error finding(s)" in printed and "rp_broken_pack" in printed
    assert "Uvicorn running" in printed  # the job API runs: every job gets the cause


def test_registry_file_holding_python_code_disables_only_its_workflow(stage, tmp_path):
    registry = tmp_path / "registry"
    subprocess.run(["cp", "-r", str(REPO / "workflows/registry"), str(registry)], check=True)
    (registry / "smoke_i2v.json").write_text("import json\n\ndef workflow():\n    return {}\n")
    stack = stage(WORKFLOW_REGISTRY_DIR=str(registry))
    seen = staged(stack, "WORKFLOW_BROKEN", state="ready", job={"workflow": "smoke_i2v"})
    assert "smoke_i2v" in seen["error"]["error_message"] and "line 1" in json.dumps(seen["error"])
    assert "smoke_i2v.json" in seen["health"]["cause"]["message"]
    # every other workflow keeps working
    ok = runsync(stack, SMOKE, timeout=60)
    assert ok["status"] == "COMPLETED" and ok["output"]["outputs"], ok


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    cmd = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def test_output_disk_full_at_start(stage, tmp_path):
    out_dir = tmp_path / "full-disk"
    if not _mount_tmpfs(out_dir, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN)")
    try:
        with (out_dir / "filler.bin").open("wb") as fh:
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        seen = staged(stage(COMFY_OUTPUT_DIR=str(out_dir)), "DISK_FULL", state="ready")
        assert str(out_dir) in seen["health"]["cause"]["message"]
    finally:
        subprocess.run(["umount", "-l", str(out_dir)], check=False)
