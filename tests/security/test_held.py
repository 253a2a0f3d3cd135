"""What a process holds with no name left, read from /proc on a real child (handler.held), how the disk
budget and the memory figure count it (handler.bounds, handler.memwatch), and the sweep of a tainted
job's changes in ComfyUI's kept directories (handler.jobfiles.TaintedDirs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from handler import held, memwatch
from handler.bounds import disk_used
from handler.jobfiles import TaintedDirs

MB = 1024 * 1024
CHILD = """
import ctypes, mmap, os, sys, time
d = sys.argv[1]
keep = []
def unlinked(path, mb):
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.unlink(path)
    os.write(fd, b"x" * (mb << 20))
    keep.append(fd)
    return fd
unlinked(os.path.join(d, "disk.bin"), 5)              # an unlinked file on disk: 5 MB
shm = unlinked("/dev/shm/rp_held_%d" % os.getpid(), 3)  # an unlinked /dev/shm file: 3 MB
keep.append(os.dup(shm))                              # held twice: counted once
m = os.memfd_create("rp_held")                        # a memfd: 7 MB, also mapped
os.write(m, b"z" * (7 << 20))
keep.append(mmap.mmap(m, 7 << 20))
mapped_only = os.memfd_create("rp_mapped_only")       # a memfd whose descriptor is closed: only mapped
os.write(mapped_only, b"m" * (2 << 20))
libc = ctypes.CDLL(None, use_errno=True)                # not Python's mmap: it keeps a dup of the descriptor
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
assert libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, mapped_only, 0) not in (None, ctypes.c_void_p(-1).value)
os.close(mapped_only)
sparse = os.open(os.path.join(d, "sparse.bin"), os.O_CREAT | os.O_RDWR, 0o600)  # 1 GB apparent, 1 block used
os.unlink(os.path.join(d, "sparse.bin"))
os.pwrite(sparse, b"s", 1 << 30)
keep.append(sparse)
reserved = os.open(os.path.join(d, "fallocated.bin"), os.O_CREAT | os.O_RDWR, 0o600)
os.posix_fallocate(reserved, 0, 4 << 20)              # 4 MB reserved, never written
os.unlink(os.path.join(d, "fallocated.bin"))
keep.append(reserved)
linked = os.path.join(d, "named.bin")                  # a file with a name left: not held "with no name"
with open(linked, "wb") as fh:
    fh.write(b"n" * (1 << 20))
keep.append(os.open(linked, os.O_RDONLY))
print("ready", flush=True)
time.sleep(120)
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid, tmp_path
    finally:
        proc.kill()
        proc.wait()


def test_files_with_no_name_are_found_and_sized_by_their_blocks(child):
    pid, _ = child
    holdings = held.scan([pid])
    by_target = {f.target.split("/")[-1]: f for f in holdings.files.values()}
    assert not holdings.unmapped  # root reads map_files
    disk = {name: f for name, f in by_target.items() if not f.ram}
    assert disk["disk.bin (deleted)"].bytes == 5 * MB
    assert by_target[f"rp_held_{pid} (deleted)"].ram and by_target[f"rp_held_{pid} (deleted)"].bytes == 3 * MB
    assert by_target["memfd:rp_held (deleted)"].ram and by_target["memfd:rp_held (deleted)"].anonymous
    assert by_target["memfd:rp_held (deleted)"].bytes == 7 * MB  # held by a descriptor and a mapping: once
    assert by_target["memfd:rp_mapped_only (deleted)"].bytes == 2 * MB  # found through its mapping alone
    assert by_target["sparse.bin (deleted)"].bytes <= 64 * 1024  # 1 GB apparent: what it uses
    assert by_target["fallocated.bin (deleted)"].bytes == 4 * MB  # reserved blocks count
    assert "named.bin" not in by_target  # a named file is the directory walk's to count
    assert holdings.total(ram=True) == 12 * MB
    assert len([f for f in holdings.files.values() if f.target.startswith("/memfd:rp_held")]) == 1


def test_the_disk_budget_counts_held_files_once_and_hard_links_once(child):
    pid, root = child
    named = root / "named.bin"
    os.link(named, root / "second_name.bin")  # two names, one file
    files = held.scan([pid]).files.values()
    used = disk_used([root], held_files=files)
    # named 1 MB once + unlinked 5 MB + sparse (a block) + fallocated 4 MB; not the memfds; /dev/shm's
    # unlinked file is a file too (the named ones count there already)
    expected = named.stat().st_blocks * 512 + 5 * MB + 4 * MB + 3 * MB
    assert expected <= used <= expected + 64 * 1024
    assert disk_used([root]) == named.stat().st_blocks * 512


def test_the_memory_figure_counts_the_memory_files_a_process_holds(child):
    pid, _ = child
    total, in_files = memwatch.memory_mb(pid, lambda p: [p])
    assert in_files == 12  # 3 MB /dev/shm + 7 + 2 MB memfds
    assert total >= in_files + 5  # and the interpreter's own resident pages
    _total, shm_files = memwatch.memory_mb(pid, lambda p: [p], "/dev/shm", os.getuid())
    assert shm_files >= in_files  # the user's named /dev/shm files too (none of its own here)


def test_the_sweep_removes_what_changed_since_the_mark_only(tmp_path):
    user = tmp_path / "user"
    home, tmp = user / "home", user / "tmp"
    cache = home / ".cache" / "pack"
    cache.mkdir(parents=True)
    tmp.mkdir()
    (cache / "old").write_text("downloaded before")
    (cache / "rewritten").write_text("downloaded before")
    (home / ".cache" / "untouched_dir").mkdir()
    swept = TaintedDirs((user,), os.getuid(), keep=(home, tmp))
    assert swept.sweep() == 0  # nothing marked: nothing goes
    time.sleep(0.2)  # past the clock slack: "before" is before
    swept.mark()
    (home / ".triton" / "cache").mkdir(parents=True)
    (home / ".triton" / "cache" / "kernel.so").write_text("planted")
    (cache / "rewritten").write_text("planted")
    (tmp / "inductor.py").write_text("planted")
    old_time = time.time() - 86400
    os.utime(home / ".triton" / "cache" / "kernel.so", (old_time, old_time))  # mtime set back: ctime is not
    assert swept.sweep() == 5  # kernel.so, cache/, .triton/, rewritten, inductor.py
    assert (cache / "old").read_text() == "downloaded before" and (home / ".cache" / "untouched_dir").is_dir()
    assert not (home / ".triton").exists() and not (cache / "rewritten").exists()
    assert home.is_dir() and tmp.is_dir() and not list(tmp.iterdir())  # HOME and TMPDIR stay, emptied
    assert swept.sweep() == 0  # once per mark


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's file can be made by root only")
def test_the_sweep_leaves_what_comfyuis_user_does_not_own(tmp_path):
    swept = TaintedDirs((tmp_path,), os.getuid() + 4321)
    swept.mark()
    (tmp_path / "workers").write_text("the worker's, made during the job")
    theirs = tmp_path / "comfyuis"
    theirs.write_text("ComfyUI's")
    os.chown(theirs, os.getuid() + 4321, -1)
    assert swept.sweep() == 1
    assert (tmp_path / "workers").exists() and not theirs.exists()


SCANNER = """
import json, sys
from handler import held
h = held.scan([int(sys.argv[1])])
print(json.dumps({"by_target": {f.target: f.bytes for f in h.files.values()}, "unmapped": h.unmapped}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's process and a capability drop need root")
def test_a_root_without_ptrace_and_admin_capabilities_still_sees_what_comfyuis_user_holds():
    """Docker's default capabilities (RunPod's) lack CAP_SYS_PTRACE and CAP_SYS_ADMIN: another user's
    /proc/<pid>/fd opens with the scanning thread's filesystem uid set to that user's; its map_files
    stays closed, so a mapping-only memfd is left to the RSS, and the process is said to be unmapped."""
    holder = Path(tempfile.mkdtemp(prefix="comfy-stack-held-"))  # pytest's 0700 tmp is closed to that user
    holder.chmod(0o777)
    proc = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", CHILD, str(holder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        drop = "-sys_ptrace,-sys_admin,-checkpoint_restore"
        out = subprocess.run(
            ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", sys.executable, "-c", SCANNER, str(proc.pid)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).parents[2],
        )
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(holder, ignore_errors=True)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    names = {t.rsplit("/", 1)[-1]: b for t, b in seen["by_target"].items()}
    assert names["disk.bin (deleted)"] == 5 * MB and names["memfd:rp_held (deleted)"] == 7 * MB
    assert "memfd:rp_mapped_only (deleted)" not in names and seen["unmapped"] == [proc.pid]


def test_a_file_held_only_by_a_message_in_flight_shows_in_the_filesystems_growth():
    """Red team round 3: an unlinked file whose descriptor was sent (SCM_RIGHTS) and closed is in no
    directory, fd table nor map; statvfs on its filesystem (a real tmpfs, /dev/shm) still sees its blocks."""
    import socket

    from handler.bounds import fs_growth, fs_used

    shm = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        paths = [shm, shm / "not_made_yet", Path("/dev/shm")]
        baseline = fs_used(paths)
        assert list(baseline) == [os.stat("/dev/shm").st_dev]  # one filesystem, counted once
        left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        fd = os.open(shm / "inflight.bin", os.O_CREAT | os.O_RDWR, 0o600)
        os.unlink(shm / "inflight.bin")
        os.write(fd, b"\1" * (8 * MB))
        socket.send_fds(left, [b"x"], [fd])
        os.close(fd)
        try:
            dev = os.stat(shm).st_dev  # no name, no fd (pytest's own capture files are on /tmp)
            assert disk_used([shm]) == 0 and all(f.dev != dev for f in held.scan([os.getpid()]).files.values())
            assert fs_growth(baseline, fs_used(paths)) >= 8 * MB  # other writers may add, never take away
        finally:
            left.close()
            right.close()
    finally:
        shutil.rmtree(shm)


def test_the_filesystems_growth_is_never_below_zero_on_any_one():
    from handler.bounds import fs_growth

    assert fs_growth({1: 100, 2: 500}, {1: 300, 2: 0}) == 200  # freeing on one is no room on another
    assert fs_growth({1: 100}, {}) == 0  # a filesystem gone counts nothing


def test_a_disk_filesystems_used_bytes_are_not_measured_only_memory_backed_ones():
    """A disk's used bytes move with every writer on the host (other pods' downloads on RunPod): measuring
    them would fail healthy jobs; /dev/shm (tmpfs) is the container's own."""
    from handler.bounds import fs_used

    repo = Path(__file__).resolve()
    assert held.in_ram("/dev/shm", os.stat("/dev/shm").st_dev)
    if held.in_ram(str(repo), repo.stat().st_dev):
        pytest.skip("the checkout itself is on a tmpfs here")
    assert fs_used([repo]) == {}
    assert list(fs_used([repo, Path("/dev/shm")])) == [os.stat("/dev/shm").st_dev]
