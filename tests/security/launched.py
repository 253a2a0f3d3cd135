"""A real child started with one ComfyUI spawn's arguments (handler.confine.prepare), for the tests that
check what the spawn gives it without starting ComfyUI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from handler import confine
from handler.config import Settings


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable, **env})


def run_launched(launch: confine.Launch, code: str, python: str = sys.executable) -> str:
    """`python -I -c code` with the launch's Popen arguments (its user, preexec, environment); its output."""
    try:
        return subprocess.run(
            [python, "-I", "-c", code],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            **launch.popen_kwargs(),
        ).stdout.strip()
    finally:
        launch.close()
