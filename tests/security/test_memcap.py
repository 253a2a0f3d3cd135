"""The kernel memory cap's parts on their own (handler.memcap): what the system is asked, the cgroup steps
on a cgroup-shaped tree (this machine delegates no cgroup v2 memory controller: the kernel's own
enforcement of memory.max can't be shown here), RLIMIT_DATA in a real child started through ComfyUI's
preexec, and how a death or a failed start is explained. Plus the job sweep's /dev/shm rule."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from handler import memcap
from handler.config import Settings
from handler.confine import prepare
from handler.jobfiles import JobActivity, JobFiles
from workflows.startup_log import StartFailure


def cgroupfs(tmp_path: Path, controllers: str = "cpu memory pids", subtree: str = "", procs: str = "1\n7\n") -> Path:
    """A directory shaped like a cgroup v2 mount, the worker in /pod (files only: nothing is enforced)."""
    base = tmp_path / "cg" / "pod"
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text(controllers + "\n")
    (base / "cgroup.subtree_control").write_text(subtree + "\n")
    (base / "cgroup.procs").write_text(procs)
    (tmp_path / "proc_cgroup").write_text("0::/pod\n")
    return base


def test_this_machine_is_asked_and_says_why_not(tmp_path):
    base, why = memcap.own_cgroup()
    if base is None:
        assert why  # e.g. the development machines: a v1/v2 hybrid with memory on v1 only
    cap = memcap.KernelCap.ask(0)
    assert cap.mechanism == "none" and cap.report()["rlimit"]["why_not"] == "no memory cap (COMFY_MEMORY_MAX_MB=0)"


def test_cgroup_v1_hybrid_and_v2_without_memory_are_named(tmp_path):
    (tmp_path / "v1").write_text("4:memory:/docker/abc\n1:cpu:/\n")
    base, why = memcap.own_cgroup(tmp_path, tmp_path / "v1")
    assert base is None and "no cgroup v2" in why and "memory" in why
    (tmp_path / "hybrid").write_text("4:memory:/x\n0::/\n")  # v2 mounted elsewhere: nothing at the root
    base, why = memcap.own_cgroup(tmp_path / "nowhere", tmp_path / "hybrid")
    assert base is None and "hybrid host" in why
    cgroupfs(tmp_path, controllers="cpu pids")
    base, why = memcap.own_cgroup(tmp_path / "cg", tmp_path / "proc_cgroup")
    assert base is None and "offers no memory controller (offered: cpu pids)" in why


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes a read-only (mode) file anyway")
def test_a_read_only_cgroup_is_named(tmp_path):
    base = cgroupfs(tmp_path)
    (base / "cgroup.subtree_control").chmod(0o444)
    assert "read-only" in memcap.own_cgroup(tmp_path / "cg", tmp_path / "proc_cgroup")[1]


def test_a_delegated_cgroup_gets_comfyui_a_child_with_its_cap(tmp_path):
    base = cgroupfs(tmp_path)
    cap = memcap.KernelCap.ask(1500, tmp_path / "cg", tmp_path / "proc_cgroup")
    assert cap.mechanism == "cgroup" and cap.cgroup is not None
    # "no internal processes": the worker's cgroup's processes went to a leaf before +memory
    assert (base / "worker" / "cgroup.procs").read_text() == "7"  # the last one written (a file here)
    assert (base / "cgroup.subtree_control").read_text() == "+memory"
    child = base / "comfyui"
    assert (child / "memory.max").read_text() == str(1500 * 1024 * 1024)
    (child / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
    cap.place(4242)
    assert (child / "cgroup.procs").read_text() == "4242"
    assert cap.cgroup.oom_kills() == 2 and not cap.cgroup.killed_since_spawn()
    (child / "memory.events").write_text("oom 2\noom_kill 3\n")
    assert cap.cgroup.killed_since_spawn()
    died = memcap.classify_death(StartFailure("COMFY_DIED", "killed by signal 9"), cap, [], was_ready=True)
    assert died.code == "COMFY_MEMORY_LIMIT" and "1500 MB" in died.message and "memory.max" in died.message
    report = cap.report()
    assert report["cgroup"] == {"active": True, "path": str(child), "oom_kills": 3, "why_not": None}


def test_a_cgroup_with_the_controller_already_given_is_not_touched(tmp_path):
    base = cgroupfs(tmp_path, subtree="memory pids")
    memcap.CgroupCap(base).setup(10 * 1024 * 1024)
    assert not (base / "worker").exists()
    assert (base / "cgroup.subtree_control").read_text().split() == ["memory", "pids"]


def test_a_refused_cgroup_step_turns_it_off_with_why(tmp_path):
    base = cgroupfs(tmp_path)
    (base / "comfyui").write_text("a file where the child cgroup goes")  # mkdir fails: the kernel's refusal
    cap = memcap.KernelCap.ask(100, tmp_path / "cg", tmp_path / "proc_cgroup")
    assert cap.cgroup is None and "refused" in cap.cgroup_why_not
    assert cap.mechanism in ("rlimit", "watchdog")


def test_rlimit_data_only_without_a_gpu():
    assert memcap.data_limit(100, gpus=[]) == (100 * 1024 * 1024, None)
    limit, why = memcap.data_limit(100, gpus=["/dev/nvidia0", "/dev/nvidiactl"])
    assert limit == 0 and "/dev/nvidia0" in why and "CUDA" in why
    assert memcap.data_limit(0, gpus=[])[0] == 0


def test_rlimit_data_in_comfyuis_preexec_fails_the_allocation_not_the_process(tmp_path):
    """A real child started with ComfyUI's launch arguments: an allocation over the cap raises MemoryError,
    the process lives on and allocates what fits."""
    settings = Settings.from_env({"COMFY_DIR": str(tmp_path / "comfy"), "CONFINE_FS": "0", "COMFY_RUN_AS": ""})
    launch = prepare(settings, {"PATH": os.environ["PATH"]}, data_limit=300 * 1024 * 1024)
    code = (
        "import resource\n"
        "print(resource.getrlimit(resource.RLIMIT_DATA)[0] // 2**20)\n"
        "try:\n    bytearray(400 * 2**20)\nexcept MemoryError:\n    print('MemoryError')\n"
        "print(len(bytearray(50 * 2**20)) // 2**20)\n"
    )
    try:
        kwargs = launch.popen_kwargs()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, **kwargs)
    finally:
        launch.close()
    assert out.stdout.split() == ["300", "MemoryError", "50"], out


def test_a_start_that_cannot_allocate_under_the_rlimit_is_the_caps(tmp_path):
    cap = memcap.KernelCap(150, rlimit_bytes=150 * 1024 * 1024)
    lines = ["Traceback (most recent call last):", "terminate called after throwing an instance of 'std::bad_alloc'"]
    failure = memcap.classify_death(StartFailure("COMFY_START_FAILED", "exited -6"), cap, lines, was_ready=False)
    assert failure.code == "COMFY_MEMORY_LIMIT" and failure.fix == memcap.START_FIX
    assert "std::bad_alloc" in failure.evidence[-1]
    tls = ["cannot allocate memory for thread-local data: ABORT"]  # glibc's loader, exit code 127
    assert memcap.classify_death(StartFailure("COMFY_START_FAILED", "127"), cap, tls, was_ready=False).code == (
        "COMFY_MEMORY_LIMIT"
    )
    # the same lines after ComfyUI was ready, or without the rlimit: not the cap's
    other = StartFailure("COMFY_START_FAILED", "exited -6")
    assert memcap.classify_death(other, cap, lines, was_ready=True) is other
    assert memcap.classify_death(other, memcap.KernelCap(150), lines, was_ready=False) is other


def test_the_sweep_removes_only_what_comfyuis_user_made_in_a_shared_directory(tmp_path):
    shm, own = tmp_path / "shm", tmp_path / "tmp"
    shm.mkdir()
    own.mkdir()
    (shm / "before").write_text("there before the job")
    uid = os.getuid()
    other_uid = uid + 4321
    files = JobFiles(JobActivity(), roots=(own,), shared=(shm,), uid=uid)
    with files:
        (shm / "mine").write_text("the job's")
        (own / "scratch").write_text("the job's")
        if os.geteuid() == 0:
            (shm / "theirs").write_text("another user's, made meanwhile")
            os.chown(shm / "theirs", other_uid, other_uid)
    left = sorted(p.name for p in shm.iterdir())
    assert left == (["before", "theirs"] if os.geteuid() == 0 else ["before"])
    assert not list(own.iterdir())
