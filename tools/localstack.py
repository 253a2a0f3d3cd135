"""The local real stack: CPU ComfyUI + the worker's RunPod local API, started through entrypoint.sh.

`make up` / `make down` and the test-suite fixtures use this same code. Everything a stack writes
(PIDs, logs, ComfyUI dirs, model folders, the stand-in network volume) lives in its run directory.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflows.registry import Registry

REPO = Path(__file__).resolve().parent.parent
DEFAULT_COMFY_HOME = Path(os.environ.get("COMFY_HOME", Path.home() / ".cache/comfy-runpod/comfyui-0.3.75"))


COMFY_USER = "comfyui"  # the unprivileged user ComfyUI runs as (COMFY_RUN_AS), as the Dockerfile makes it


def confinable(*paths: Path) -> None:
    """Set the machine up as the image is: the user ComfyUI runs as exists, and can reach ComfyUI's install
    and the stack's run directory (~root and pytest's temporary directories are 0700: each root-owned
    ancestor gets o+x, traverse only, never listing). Nothing to do when the tests don't run as root."""
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(COMFY_USER)
    except KeyError:
        useradd = ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/sbin/nologin"]
        subprocess.run(
            [*useradd, COMFY_USER],
            check=False,  # a concurrent session made it first: fine
        )
    for path in paths:
        for parent in [path.resolve(), *path.resolve().parents]:
            st = parent.stat()
            if st.st_uid == 0 and not st.st_mode & stat.S_IXOTH:
                os.chmod(parent, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalStack:
    run_dir: Path
    comfy_port: int = 8188
    api_port: int = 8000
    comfy_home: Path = DEFAULT_COMFY_HOME
    env_overrides: dict[str, str] = field(default_factory=dict)
    handler_python: str = sys.executable
    comfy_python: Path | None = None  # set by install_packs: ComfyUI's venv plus the packs' requirements

    @property
    def comfy_dir(self) -> Path:
        return self.run_dir / "comfy"

    @property
    def volume_dir(self) -> Path:
        return self.run_dir / "runpod-volume"

    @property
    def comfy_url(self) -> str:
        return f"http://127.0.0.1:{self.comfy_port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / "stack.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "worker.log"

    @property
    def comfy_log(self) -> Path:
        return self.run_dir / "comfyui.log"

    def render_model_paths(self) -> Path:
        """The repo's extra_model_paths.yaml with this stack's directories in place of the image's."""
        text = (REPO / "extra_model_paths.yaml").read_text()
        text = text.replace("/runpod-volume/", f"{self.volume_dir}/").replace("/comfyui/", f"{self.comfy_dir}/")
        out = self.run_dir / "extra_model_paths.yaml"
        out.write_text(text)
        return out

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMFY_", "RUNPOD_", "BUCKET_"))}
        env.update(
            {
                "COMFY_DIR": str(self.comfy_dir),
                "COMFY_PYTHON": str(self.comfy_python or self.comfy_home / "venv/bin/python"),
                "COMFY_MAIN": str(self.comfy_home / "launch.py"),
                "COMFY_PORT": str(self.comfy_port),
                "COMFY_LOG": str(self.comfy_log),
                "COMFY_PID_FILE": str(self.run_dir / "comfyui.pid"),
                "COMFY_EXTRA_MODEL_PATHS": str(self.run_dir / "extra_model_paths.yaml"),
                "COMFY_EXTRA_ARGS": f"--cpu --disable-api-nodes --front-end-root {self.comfy_home / 'empty-frontend'}",
                "RUNPOD_VOLUME_DIR": str(self.volume_dir),
                "HANDLER_PYTHON": self.handler_python,
                "HANDLER_ARGS": f"--rp_serve_api --rp_api_host 127.0.0.1 --rp_api_port {self.api_port}",
                "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS": "true",
                # the client's direct mode uploads through ComfyUI into its input directory, which the
                # image keeps read-only for ComfyUI (README "Security"); a dev stack lets it write there
                "CONFINE_WRITE": str(self.comfy_dir / "input"),
                # and tests add model files to the stand-in volume while ComfyUI runs, even before its
                # directory exists (a real volume is mounted before the container starts)
                "CONFINE_READ": str(self.run_dir),
                "PYTHONPATH": str(REPO),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.env_overrides)
        return env

    def install_packs(self) -> list[str]:
        """The registered custom node packs that can be had (tools/packs.py), into this stack's custom_nodes,
        with their requirements (an overlay venv ComfyUI then runs with). The registry is the one the
        stack's worker loads (WORKFLOW_REGISTRY_DIR), else this checkout's."""
        from tools.packs import install_available
        from workflows.registry import load_registry

        registry_dir = self.env_overrides.get("WORKFLOW_REGISTRY_DIR") or os.environ.get("WORKFLOW_REGISTRY_DIR")
        registry = load_registry(Path(registry_dir)) if registry_dir else None
        installed, problems = install_available(self.comfy_dir / "custom_nodes", registry=registry)
        for name, problem in problems.items():
            print(f"pack {name} not installed: {problem}", file=sys.stderr)
        self.use_requirements_of(installed, registry)
        return installed

    def use_requirements_of(self, names: list[str], registry: Registry | None = None) -> dict[str, str]:
        """Run ComfyUI with these packs' requirements (tools/packs.requirements_python); what failed."""
        from tools.packs import requirements_python

        if not names:
            return {}
        python, problems = requirements_python(self.comfy_home / "venv/bin/python", names, registry=registry)
        for name, problem in problems.items():
            print(f"pack {name}: a requirement could not be installed: {problem}", file=sys.stderr)
        self.comfy_python = python
        return problems

    def pid(self) -> int | None:
        """The entrypoint's PID while it runs (a zombie child of ours counts as gone)."""
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if self._alive(pid) else None

    def start(self, wait: float = 120.0) -> None:
        if self.pid() is not None:
            raise RuntimeError(f"a stack is already running from {self.run_dir} (pid {self.pid()})")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        venv = [self.comfy_python.parent.parent] if self.comfy_python else []  # a packs venv (made 0700)
        confinable(self.comfy_home, self.run_dir, *venv)
        (self.comfy_dir / "models").mkdir(parents=True, exist_ok=True)
        (self.comfy_dir / "custom_nodes").mkdir(parents=True, exist_ok=True)
        self.render_model_paths()
        with self.log_file.open("ab") as log:
            proc = subprocess.Popen(
                ["bash", str(REPO / "entrypoint.sh")],
                env=self.env(),
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        self._proc = proc
        if wait:
            self.wait_ready(wait)

    def health(self, timeout: float = 5.0) -> dict | None:
        """The worker's `test` answer, or None while its job API is not listening."""
        req = urllib.request.Request(
            f"{self.api_url}/runsync",
            data=json.dumps({"input": {"mode": "test"}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read()).get("output")
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def worker_ready(self) -> bool:
        return (self.health() or {}).get("state") == "ready"

    def wait_state(self, states: tuple[str, ...], timeout: float) -> dict:
        """Poll `test` until the worker's state is one of `states`; its last answer."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise RuntimeError(f"the stack exited; see {self.log_file}:\n{self.tail()}")
            last = self.health()
            if last is not None and last.get("state") in states:
                return last
            time.sleep(0.1)
        raise TimeoutError(f"the worker did not reach {states} within {timeout} s (last: {last}):\n{self.tail()}")

    def wait_ready(self, timeout: float) -> None:
        answer = self.wait_state(("ready", "broken"), timeout)
        if answer.get("state") != "ready":
            raise RuntimeError(f"the worker is broken: {answer.get('cause')}:\n{self.tail()}")

    def comfy_pid(self) -> int | None:
        """ComfyUI's PID, as the worker's supervisor wrote it."""
        try:
            return int((self.run_dir / "comfyui.pid").read_text())
        except (OSError, ValueError):
            return None

    def worker_pid(self) -> int | None:
        """The `python -m handler.worker` process started by the entrypoint."""
        import psutil

        pid = self.pid()
        if pid is None:
            return None
        for child in psutil.Process(pid).children():
            if "handler.worker" in " ".join(child.cmdline()):
                return child.pid
        return None

    def tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self.log_file, self.comfy_log):
            if path.exists():
                parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the entrypoint (it forwards to ComfyUI and the worker); SIGKILL the group if it lingers."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        if self._alive(pid):
            os.killpg(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _alive(self, pid: int) -> bool:
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "status"
    stack = LocalStack(
        Path(os.environ.get("STACK_DIR", REPO / ".run")),
        int(os.environ.get("COMFY_PORT", 8188)),
        int(os.environ.get("WORKER_PORT", 8000)),
    )
    if command == "up":
        if stack.pid() is not None:
            print(f"stack already running (pid {stack.pid()}): ComfyUI {stack.comfy_url}, worker {stack.api_url}")
            return 0
        t0 = time.monotonic()
        stack.install_packs()
        stack.start()
        print(
            f"stack up in {time.monotonic() - t0:.1f} s: ComfyUI {stack.comfy_url}, worker {stack.api_url} "
            f"(pid {stack.pid()}, logs in {stack.run_dir})"
        )
        return 0
    if command == "down":
        print("stack stopped" if stack.stop() else "no stack running")
        return 0
    if command == "status":
        pid = stack.pid()
        print(f"running (pid {pid})" if pid else "not running")
        return 0 if pid else 1
    print(f"usage: {sys.argv[0]} up|down|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
