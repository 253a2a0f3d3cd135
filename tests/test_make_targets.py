"""The README's stack targets run as a person types them: `make up`, `make status`, `make down`."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import REPO
from tools.localstack import free_port


def make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", target], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_make_up_status_down(tmp_path: Path):
    env = {
        **os.environ,
        "STACK_DIR": str(tmp_path / "stack"),
        "COMFY_PORT": str(free_port()),
        "WORKER_PORT": str(free_port()),
    }
    try:
        up = make("up", env)
        assert up.returncode == 0 and "stack up in" in up.stdout, up.stdout + up.stderr
        status = make("status", env)
        assert status.returncode == 0 and status.stdout.startswith("running"), status.stdout + status.stderr
    finally:
        down = make("down", env)
    assert down.returncode == 0 and "stack stopped" in down.stdout, down.stdout + down.stderr
    after = make("status", env)
    assert after.returncode != 0 and "not running" in after.stdout and "Traceback" not in after.stderr
