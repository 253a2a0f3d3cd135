"""handler.privileges with real processes: ComfyUI's child holds no capability whatever its uid, a worker
that made itself non-dumpable keeps its environment from a process of its own uid, and ComfyUI's
interpreter is asked for its paths once per worker life."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from handler import confine, privileges
from handler.config import Settings
from tests.security import launched

ZERO = "0000000000000000"
_STATUS = "print(' '.join(l.split()[1] for l in open('/proc/self/status') if l.startswith(('Cap', 'NoNewPrivs'))))"


def settings(tmp_path: Path, **env: str) -> Settings:
    return launched.settings(tmp_path, CONFINE_FS="0", **env)


def child_status(launch: confine.Launch) -> str:
    code = "import os;" + _STATUS.replace("print(", "print(os.getuid(), ")
    return launched.run_launched(launch, code, python="/usr/bin/python3")


@pytest.mark.skipif(confine.os.geteuid() != 0, reason="a root worker is the case with capabilities to drop")
@pytest.mark.parametrize("run_as", ["", "comfyui"])
def test_comfyuis_process_holds_no_capability_as_root_or_as_its_user(tmp_path, run_as):
    from tools.localstack import COMFY_USER, confinable

    confinable(tmp_path)
    launch = confine.prepare(settings(tmp_path, COMFY_RUN_AS=run_as), {"PATH": "/usr/bin:/bin"})
    uid = "0" if not run_as else str(confine.pwd.getpwnam(COMFY_USER).pw_uid)
    assert child_status(launch) == " ".join([uid, *[ZERO] * 5, "1"]), launch.confinement.report()["user"]


_UNDUMPABLE_WORKER = """
import os, subprocess, sys
from handler import privileges
assert privileges.make_undumpable() and not privileges.dumpable()
open('/proc/self/status').read()  # the worker still reads its own entries
os.listdir('/proc/self/fd')
sibling = subprocess.Popen(["sleep", "60"])  # same uid, same (no) capabilities, dumpable
code = "import sys\\ntry: open(sys.argv[1], 'rb').read(); print('read')\\nexcept OSError as e: print(e.strerror)"
for pid in (os.getpid(), sibling.pid):
    reader = [sys.executable, "-I", "-c", code, f"/proc/{pid}/environ"]
    print(subprocess.run(reader, capture_output=True, text=True).stdout.strip())
sibling.kill()
"""


def test_a_non_dumpable_worker_keeps_its_environment_from_a_process_of_its_own_uid():
    """Worker and reader run as the same uid without capabilities (as a root ComfyUI does), no Landlock:
    the worker's environ is closed, a dumpable sibling's stays open — the difference is make_undumpable's."""
    repo = Path(__file__).resolve().parents[2]
    top = privileges.last_cap()
    out = subprocess.run(
        [sys.executable, "-c", _UNDUMPABLE_WORKER],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=repo,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)},
        preexec_fn=lambda: privileges.drop_all(None, None, top),
    )
    assert out.stdout.split() == ["Permission", "denied", "read"], out.stderr


def test_status_reads_what_the_kernel_says():
    here = privileges.status(confine.os.getpid())
    assert set(here) >= {"active", "effective", "permitted", "inheritable", "bounding", "ambient", "no_new_privs"}
    assert privileges.status(None) == {"active": False, "why_not": "ComfyUI is not running"}


def test_comfyuis_interpreter_is_asked_for_its_paths_once(tmp_path, monkeypatch):
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(args, *a, **kw):  # the real interpreter runs; only the calls are counted
        calls.append(list(args))
        return real_run(args, *a, **kw)

    monkeypatch.setattr(confine, "_PYTHON_PATHS", {})
    monkeypatch.setattr(confine.subprocess, "run", counting)
    s = settings(tmp_path, COMFY_RUN_AS="")
    first = confine.prepare(s, {"PATH": "/usr/bin:/bin"})
    first.close()
    second = confine.prepare(s, {"PATH": "/usr/bin:/bin"})
    second.close()
    asked = [c for c in calls if c[:1] == [sys.executable]]
    assert len(asked) == 1, calls
    paths = confine.python_paths(sys.executable, {**first.env})
    assert sys.prefix in paths and len([c for c in calls if c[:1] == [sys.executable]]) == 1


_NOT_ROOT_WORKER = """
import os, subprocess, sys
from handler import confine, privileges
from handler.config import Settings
from tests.security import launched
privileges.make_undumpable()
s = Settings.from_env({"COMFY_DIR": sys.argv[1], "COMFY_PYTHON": sys.executable, "CONFINE_FS": "0"})
launch = confine.prepare(s, {"PATH": "/usr/bin:/bin"})
code = "import sys\\ntry: open(sys.argv[1], 'rb').read(); print('read')\\nexcept OSError as e: print(e.strerror)"
child = subprocess.Popen(
    [sys.executable, "-I", "-c", code + "\\nimport time; time.sleep(1)", f"/proc/{os.getpid()}/environ"],
    stdout=subprocess.PIPE, text=True, **launch.popen_kwargs(),
)
launch.close()
line = child.stdout.readline().strip()
status = privileges.status(child.pid)
child.wait()
print(line, "|", status["active"], "|", status["why_not"], "|", launch.confinement.report()["user"]["why_not"])
"""


@pytest.mark.skipif(confine.os.geteuid() != 0, reason="needs root to start the worker as an unprivileged user")
def test_a_worker_that_is_not_root_starts_comfyui_without_capabilities_and_keeps_its_environ(tmp_path):
    """Not root, no Landlock: ComfyUI runs as the worker's own uid, and the non-dumpable worker's environ
    stays closed to it; its bounding set stays the worker's (no CAP_SETPCAP), which no_new_privs makes moot."""
    from tools.localstack import COMFY_USER, confinable

    repo = Path(__file__).resolve().parents[2]
    confinable(Path(sys.executable), repo, tmp_path)
    comfy = tmp_path / "comfy"
    comfy.mkdir()
    account = confine.pwd.getpwnam(COMFY_USER)
    confine.os.chown(comfy, account.pw_uid, account.pw_gid)
    out = subprocess.run(
        [sys.executable, "-c", _NOT_ROOT_WORKER, str(comfy)],
        capture_output=True,
        text=True,
        timeout=120,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(repo)},
        cwd="/",
    )
    line, active, why, user_why = (part.strip() for part in out.stdout.split("|"))
    assert line == "Permission denied", out.stderr
    assert active == "True" and "bounding set is the worker's" in why
    assert f"not root (uid {account.pw_uid})" in user_why


def test_a_bare_interpreter_name_is_found_on_comfyuis_path_and_cached(monkeypatch):
    """COMFY_PYTHON=python3: the interpreter is looked up on ComfyUI's PATH, as its spawn does."""
    calls: list[list[str]] = []
    real_run = subprocess.run

    def counting(args, *a, **kw):
        calls.append(list(args))
        return real_run(args, *a, **kw)

    monkeypatch.setattr(confine, "_PYTHON_PATHS", {})
    monkeypatch.setattr(confine.subprocess, "run", counting)
    env = {"PATH": str(Path(sys.executable).parent)}
    for _ in range(2):
        assert sys.prefix in confine.python_paths(Path(sys.executable).name, env)
    assert len(calls) == 1, calls
