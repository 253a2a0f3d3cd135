"""Where confinement can't be had (an older kernel, a worker that isn't root, an image without ComfyUI's
user, a kernel that refuses a rule), ComfyUI still starts and diagnose says why; the environment's
allow-list keeps every credential the worker holds away from ComfyUI."""

from __future__ import annotations

import errno
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handler import confine, landlock
from handler.config import Settings
from handler.confine import comfy_environment, prepare, resolve_user


def settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable, **env})


def starts(launch: confine.Launch) -> str:
    """Run a real child with the launch's arguments: what ComfyUI's spawn does, with `python -c`."""
    try:
        return subprocess.run(
            [sys.executable, "-I", "-c", "print('started')"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            **launch.popen_kwargs(),
        ).stdout.strip()
    finally:
        launch.close()


def test_a_kernel_without_landlock_starts_comfyui_unconfined_and_says_why(tmp_path, monkeypatch):
    why = "the kernel (5.4.0) has no Landlock system calls (Linux 5.13+ built with it)"
    monkeypatch.setattr(landlock, "abi_version", lambda: (0, why))
    launch = prepare(settings(tmp_path, COMFY_RUN_AS=""), {"PATH": "/usr/bin:/bin"})
    report = launch.confinement.report()["landlock"]
    assert report["active"] is False and report["why_not"] == why and launch.ruleset_fd is None
    assert starts(launch) == "started"


def test_a_ruleset_the_kernel_refuses_starts_comfyui_unconfined_and_says_why(tmp_path, monkeypatch):
    def refuse(*_args: object, **_kwargs: object) -> tuple[int, list[str]]:
        raise OSError(errno.EINVAL, "landlock_add_rule(/models): Invalid argument")

    monkeypatch.setattr(landlock, "abi_version", lambda: (7, None))
    monkeypatch.setattr(landlock, "build_ruleset", refuse)
    launch = prepare(settings(tmp_path, COMFY_RUN_AS=""), {"PATH": "/usr/bin:/bin"})
    report = launch.confinement.report()["landlock"]
    assert report["active"] is False and "refused" in report["why_not"] and "Invalid argument" in report["why_not"]
    assert starts(launch) == "started"


def test_a_worker_that_is_not_root_runs_comfyui_as_itself_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(confine.os, "geteuid", lambda: 1000)
    account, why = resolve_user(settings(tmp_path))
    assert account is None and why is not None and "not root (uid 1000)" in why


@pytest.mark.skipif(confine.os.geteuid() != 0, reason="the user lookup happens only when the worker is root")
def test_an_image_without_comfyuis_user_runs_comfyui_as_nobody_never_root_and_says_why(tmp_path):
    launch = prepare(settings(tmp_path, COMFY_RUN_AS="rp-no-such-user", CONFINE_FS="0"), {"PATH": "/usr/bin:/bin"})
    user = launch.confinement.report()["user"]
    nobody = confine.pwd.getpwnam("nobody")
    assert user["active"] is True and user["name"] == "nobody" and launch.user == nobody.pw_uid
    assert user["note"] == (
        "user 'rp-no-such-user' does not exist in the image (the Dockerfile creates it): ComfyUI runs as nobody instead"
    )
    assert starts(launch) == "started"


@pytest.mark.skipif(confine.os.geteuid() != 0, reason="the user lookup happens only when the worker is root")
def test_without_comfyuis_user_and_without_nobody_comfyui_runs_as_the_worker_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(confine, "FALLBACK_USER", "rp-no-such-fallback")
    account, why = resolve_user(settings(tmp_path, COMFY_RUN_AS="rp-no-such-user"))
    assert account is None and why == "user 'rp-no-such-user' does not exist in the image (the Dockerfile creates it)"


def test_the_file_size_limit_never_exceeds_what_the_worker_may_grant(monkeypatch):
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (1 << 20, 1 << 20))
    assert confine._file_limit(4096.0) == 1 << 20  # a lower hard limit (ulimit -f) wins: setrlimit can't raise it
    monkeypatch.setattr(resource, "getrlimit", lambda _r: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert confine._file_limit(30.0) == 30 << 20
    assert confine._file_limit(0.0) == 0


def test_no_credential_of_the_worker_reaches_comfyui():
    worker = {
        "HF_TOKEN": "hf_x",
        "HUGGING_FACE_HUB_TOKEN": "hf_y",
        "HF_HUB_TOKEN": "hf_z",
        "RUNPOD_API_KEY": "rp",
        "RUNPOD_WEBHOOK_GET_JOB": "https://api.runpod.ai/v2/x/job-take?token=t",
        "RUNPOD_AI_API_KEY": "rp2",
        "AWS_ACCESS_KEY_ID": "AKIA",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_SESSION_TOKEN": "t",
        "BUCKET_ENDPOINT_URL": "https://u:p@s3",
        "BUCKET_ACCESS_KEY_ID": "b",
        "DATABASE_URL": "postgres://u:pw@h/db",
        "COMFY_ORG_API_KEY": "comfy",
        "CIVITAI_API_KEY": "c",
        "PYTHONPATH": "/opt/worker",
        "COMFY_ENV_ALLOW": "MY_SETTING,MY_API_KEY",
        "MY_SETTING": "kept",
        "MY_API_KEY": "dropped: secret-looking even when allowed",
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0",
        "HF_HOME": "/runpod-volume/hf",
        "LC_ALL": "C.UTF-8",
    }
    assert comfy_environment(worker) == {
        "MY_SETTING": "kept",
        "PATH": "/usr/bin",
        "CUDA_VISIBLE_DEVICES": "0",
        "HF_HOME": "/runpod-volume/hf",
        "LC_ALL": "C.UTF-8",
    }


_SANDBOXED_READER = """
import os, subprocess, sys
from pathlib import Path
from handler import landlock
abi, _ = landlock.abi_version()
roots = [Path(p) for p in {sys.prefix, sys.base_prefix, *sys.path} if p and os.path.exists(p)]
system = [Path("/usr"), Path("/lib"), Path("/lib64"), Path("/etc/ld.so.cache"), Path("/proc")]
fd, _ = landlock.build_ruleset(abi, [(p, landlock.READ) for p in [*roots, *system]])
code = (
    f"import os\\ntry:\\n open('/proc/{os.getpid()}/environ', 'rb').read(); print('read', os.getuid())\\n"
    "except OSError as e: print(e.strerror, os.getuid())"
)
child = [sys.executable, "-I", "-c", code]
print(subprocess.run(child, capture_output=True, text=True, preexec_fn=lambda: landlock.restrict_self(fd)).stdout)
"""


@pytest.mark.skipif(landlock.abi_version()[0] == 0, reason="no Landlock here")
@pytest.mark.skipif(confine.os.geteuid() != 0, reason="needs root to start the worker as an unprivileged user")
def test_a_worker_that_is_not_root_keeps_its_environ_from_comfyui_through_landlock():
    """README: not root, ComfyUI runs as the worker's own user, and Landlock alone keeps it from the
    worker's /proc/<pid>/environ (same user: the file's mode would let it)."""
    from tools.localstack import COMFY_USER, confinable

    repo = Path(__file__).resolve().parents[2]
    confinable(Path(sys.executable), repo)  # the unprivileged user can reach the interpreter and the repository
    out = subprocess.run(
        [sys.executable, "-c", _SANDBOXED_READER],
        capture_output=True,
        text=True,
        timeout=60,
        user=COMFY_USER,
        group=confine.pwd.getpwnam(COMFY_USER).pw_gid,  # its own group, whatever useradd named it
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)},
        cwd="/",
    )
    uid = confine.pwd.getpwnam(COMFY_USER).pw_uid
    assert out.stdout.strip() == f"Permission denied {uid}", out.stderr


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_restart_kills_what_comfyuis_nodes_started():
    """kill_tree (the supervisor's restart): a grandchild a node started dies with ComfyUI, not moved to init."""
    from handler import memwatch

    parent = subprocess.Popen(["bash", "-c", "sleep 300 & sleep 300 & wait"])
    try:
        deadline = time.monotonic() + 60
        while len(memwatch.tree(parent.pid)) < 3:  # bash and its two sleeps
            assert time.monotonic() < deadline, memwatch.tree(parent.pid)
            time.sleep(0.05)
        children = memwatch.tree(parent.pid)[1:]
        memwatch.kill_tree(parent.pid)
        parent.wait(60)
        while any(_alive(c) for c in children):
            assert time.monotonic() < deadline, f"{children} outlived their parent"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait(60)
