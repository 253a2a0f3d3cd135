"""A private local ComfyUI with the packs a workflow needs, started to read their node definitions.

`workflow add` needs ComfyUI's /object_info for the packs it resolved; this starts one from the local
ComfyUI install (scripts/install_comfyui.sh, COMFY_HOME) on a free port, with its own run directory:
- packs from docker/fetch_pack.sh (a snapshot in COMFY_PACKS_SNAPSHOTS, else git at the pin), cached in
  ~/.cache/comfy-runpod/packs/NAME-COMMIT/ (the cache tools/packs.py and the test stacks share);
- their requirements through docker/pack_requirements.sh (the image's path) into an overlay venv: a venv
  that sees ComfyUI's venv (a .pth line) and adds only what the packs need, so ComfyUI's own venv is
  never changed. One overlay per set of packs, built once (atomically) and reused.
The local stack and the tests use the same two functions (tools/packs.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from client.config import PACKS_CACHE
from comfyui_client import ComfyClient
from workflows.pack_plan import release_version

CHECKOUT = Path(__file__).resolve().parent.parent
DOCKER = CHECKOUT / "docker"
Progress = Callable[[str], None]
CANNOT = "pack_requirements: cannot install: "


class LocalComfyError(RuntimeError):
    """The local ComfyUI or a pack could not be had; the message says what to do."""


def _quiet(_: str) -> None:
    return None


def cache_root() -> Path:
    """The default pack cache when a caller names none (client.config.packs_cache, which the CLI and
    tools/packs.py use, honours COMFY_PACKS_CACHE: only client/config.py reads the environment)."""
    return Path.home() / PACKS_CACHE


def has_checkout() -> bool:
    """The scripts live in the checkout (docker/), not in an installed wheel."""
    return (DOCKER / "fetch_pack.sh").is_file() and (DOCKER / "pack_requirements.sh").is_file()


def fetch_pack(
    name: str, repo: str, commit: str, cache: Path | None = None, snapshots: Path | None = None, git_attempts: int = 1
) -> Path:
    """The pack's tree at `commit` in the cache, fetched the first time (safe to race). `snapshots`:
    COMFY_PACKS_SNAPSHOTS for the script (else the process's own environment is inherited)."""
    cache = cache or cache_root()
    target = cache / f"{name}-{commit}" / name
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    settings = [f"FETCH_GIT_ATTEMPTS={git_attempts}"]
    if snapshots is not None:
        settings.append(f"COMFY_PACKS_SNAPSHOTS={snapshots}")
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{name}-") as tmp:
        dest = Path(tmp) / name
        try:
            proc = subprocess.run(
                ["env", *settings, "bash", str(DOCKER / "fetch_pack.sh"), name, repo, commit, str(dest)],
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            raise LocalComfyError(f"fetching {name} @ {commit[:12]} from {repo} took over 10 minutes") from None
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.startswith("fetch_pack:")]
            raise LocalComfyError(lines[-1] if lines else (proc.stderr or proc.stdout).strip()[-2000:])
        (dest / ".pack-source").write_text(f"{repo} {commit}\n")
        try:
            Path(tmp).rename(target.parent)
        except OSError:  # another process put it there first
            if not target.is_dir():
                raise
    return target


def pack_versions(pack_dir: Path, commit: str | None) -> list[str]:
    """What identifies the installed version: its commit and its release version (pyproject.toml)."""
    out = [commit] if commit else []
    try:
        version = release_version((pack_dir / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        version = None
    return out + ([version] if version else [])


def pack_python(
    comfy_python: Path, packs: list[Path], cache: Path | None = None, progress: Progress = _quiet
) -> tuple[Path, dict[str, str]]:
    """A python that runs ComfyUI with these packs' requirements: (its path, pack -> requirement problem)."""
    key = hashlib.sha256("\n".join([str(comfy_python), *sorted(str(p) for p in packs)]).encode()).hexdigest()[:16]
    root = (cache or cache_root()) / "venvs" / key
    stamp = root / ".complete"
    if stamp.is_file():
        problems: dict[str, str] = json.loads(stamp.read_text())
        if not problems:
            return root / "bin/python", problems
        shutil.rmtree(root, ignore_errors=True)  # a failed install is tried again, not remembered
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{key}-"))
    try:
        progress(f"creating a venv over {comfy_python.parent.parent} for the packs' requirements")
        _overlay_venv(comfy_python, tmp)
        problems = {}
        for pack in packs:
            progress(f"installing {pack.name}'s requirements")
            try:
                proc = subprocess.run(
                    ["bash", str(DOCKER / "pack_requirements.sh"), str(pack), str(tmp / "bin/python")],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                )
            except subprocess.TimeoutExpired:
                problems[pack.name] = "installing its requirements took over 30 minutes"
                continue
            if proc.returncode != 0:
                lines = [ln.removeprefix(CANNOT) for ln in proc.stderr.splitlines() if ln.startswith(CANNOT)]
                problems[pack.name] = "; ".join(lines)[-1500:] or proc.stderr.strip()[-1500:]
        (tmp / ".complete").write_text(json.dumps(problems))
        try:
            tmp.rename(root)
        except OSError:  # built by another process meanwhile: use that one
            shutil.rmtree(tmp, ignore_errors=True)
            return root / "bin/python", json.loads(stamp.read_text())
        return root / "bin/python", problems
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _overlay_venv(comfy_python: Path, venv: Path) -> None:
    """A venv at `venv` that sees `comfy_python`'s packages (a .pth line). No pip of its own: ComfyUI's
    (seen through the .pth) installs here; an own setuptools would shadow the one torch needs and make
    every resolution fail. LocalComfyError when ComfyUI's python can't make it."""
    site = "import site; print(site.getsitepackages()[0])"
    try:
        subprocess.run(
            [str(comfy_python), "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True, timeout=300
        )
        base = subprocess.run([str(comfy_python), "-c", site], check=True, capture_output=True, text=True, timeout=60)
        own = subprocess.run(
            [str(venv / "bin/python"), "-c", site], check=True, capture_output=True, text=True, timeout=60
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or "")
        raise LocalComfyError(
            f"{comfy_python} could not make a venv for the packs' requirements: {stderr[-500:]}"
        ) from None
    Path(own.stdout.strip(), "comfy_runpod_base.pth").write_text(base.stdout.strip() + "\n")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalComfy:
    """One private ComfyUI process; stop() ends it (and only it)."""

    comfy_home: Path
    python: Path
    custom_nodes: Path
    run_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    _client: ComfyClient | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.run_dir / "comfyui.log"

    def command(self) -> list[str]:
        """ComfyUI's command line, its folders made: workflow add's (its packs through extra_model_paths,
        outputs in the run directory, no editor); the launcher's editor ComfyUI overrides it."""
        for sub in ("out", "temp", "user"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        paths = self.run_dir / "extra_model_paths.yaml"
        paths.write_text(f"workflow_add:\n  base_path: {self.run_dir}/\n  custom_nodes: {self.custom_nodes}/\n")
        cmd = [
            str(self.python),
            str(self.comfy_home / "launch.py"),
            "--cpu",
            "--listen",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--disable-api-nodes",
            "--front-end-root",
            str(self.comfy_home / "empty-frontend"),
            "--output-directory",
            str(self.run_dir / "out"),
            "--temp-directory",
            str(self.run_dir / "temp"),
            "--user-directory",
            str(self.run_dir / "user"),
            "--database-url",
            f"sqlite:///{self.run_dir / 'user/comfyui.db'}",
            "--extra-model-paths-config",
            str(paths),
        ]
        return cmd

    def start(self, timeout_s: float = 240.0) -> None:
        """Start it and wait until it answers; LocalComfyError (with its log's tail) if it exits or doesn't."""
        cmd = self.command()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LocalComfyError(f"the local ComfyUI exited ({self.proc.returncode}):\n{self.tail()}")
            if self.client().is_up(timeout=2):
                return
            time.sleep(0.2)
        self.stop()
        raise LocalComfyError(f"the local ComfyUI did not answer within {timeout_s:.0f} s:\n{self.tail()}")

    def client(self) -> ComfyClient:
        """The one ComfyUI client (comfyui_client), pointed at this process."""
        if self._client is None:
            self._client = ComfyClient(self.url, timeout=120)
        return self._client

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
