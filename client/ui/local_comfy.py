"""A local ComfyUI for the editor: the project's CPU install, with the editor's front-end package.

The install (scripts/install_comfyui.sh: ~/.cache/comfy-runpod/comfyui-0.3.75) has no front end of its
own (the worker never serves one); the `ui` extra brings comfyui-frontend-package at the version
ComfyUI 0.3.75 asks for, and ComfyUI is pointed at it with --front-end-root. Everything ComfyUI writes
(input, output, user, its database, custom_nodes) lives in one base directory, not in the install.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from client.errors import ConfigError, UsageError
from comfyui_client import ComfyClient

READY_TIMEOUT_S = 180.0


def frontend_root() -> Path:
    """The editor's files from the installed comfyui-frontend-package (the `ui` extra)."""
    try:
        import comfyui_frontend_package  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise ConfigError(
            "the ComfyUI editor's front-end package is not installed",
            fix="pip install 'comfy-runpod[ui]' (or use --local-comfy URL with a ComfyUI that serves its editor).",
        ) from None
    return Path(comfyui_frontend_package.__file__).parent / "static"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalComfy:
    """A ComfyUI process started for the launcher (stopped with it)."""

    home: Path  # the install: launch.py and venv/
    base_dir: Path  # input, output, user, custom_nodes, models
    port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "comfyui.log"

    def command(self) -> list[str]:
        python, main = self.home / "venv/bin/python", self.home / "launch.py"
        if not main.is_file():
            main = self.home / "ComfyUI/main.py"
        for needed in (python, main):
            if not needed.exists():
                raise UsageError(
                    f"no ComfyUI install at {self.home} ({needed} is missing)",
                    fix="Run `make comfyui`, give --comfy-home DIR, or --local-comfy URL for a ComfyUI you run.",
                )
        user = self.base_dir / "user"
        return [
            str(python),
            str(main),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--disable-api-nodes",
            "--base-directory",
            str(self.base_dir),
            "--user-directory",
            str(user),
            "--database-url",
            f"sqlite:///{user}/comfyui.db",
            "--front-end-root",
            str(frontend_root()),
        ]

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        command = self.command()
        for sub in ("input", "output", "user", "custom_nodes", "models", "temp"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.base_dir, start_new_session=True
            )
        client = ComfyClient(self.url, timeout=5)
        deadline = time.monotonic() + timeout_s
        try:
            while not client.is_up(timeout=1.0):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
                    self.stop()
                    raise UsageError(
                        f"the local ComfyUI did not start (see {self.log_path}):\n" + "\n".join(tail),
                        code="LOCAL_COMFY_FAILED",
                        fix="Check the log; --local-comfy URL uses a ComfyUI you run instead.",
                    )
                time.sleep(0.2)
        finally:
            client.close()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
