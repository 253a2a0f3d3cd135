"""What ComfyUI's processes hold, not only what they name: files with no name left, asked of the kernel.

A node can open a file, unlink it and keep the descriptor (or a mapping): its blocks stay allocated,
no directory lists it, and a walk of ComfyUI's directories (handler.bounds.disk_used) never sees it.
A memfd (memfd_create) is such a file from the start, and tmpfs pages (/dev/shm, memfds, shared
anonymous mappings) are in no process's RSS until mapped and touched. So, for each of ComfyUI's
processes (handler.reaper's members), /proc/<pid>/fd/* and, for the mappings, /proc/<pid>/maps with
/proc/<pid>/map_files/<range> (readable by root only: CAP_SYS_ADMIN) are read; a link whose target is
"... (deleted)", "/memfd:..." or in /dev/shm is stat'ed through the /proc link itself (the inode, not a
name): st_blocks * 512 is what it really takes (a sparse file counts its written blocks, fallocate its
reserved ones), and (st_dev, st_ino) de-duplicates a file held by several descriptors, mappings,
processes or names (a hard link). Whether it is in memory is the filesystem's answer (statfs: tmpfs,
ramfs, hugetlbfs; memfds and shared anonymous memory live on the kernel's internal tmpfs).

Another user's /proc/<pid>/fd and maps are closed to a root without CAP_SYS_PTRACE (Docker's default
set, RunPod's): the kernel's check there compares the caller's filesystem uid and gid with the
process's (PTRACE_MODE_FSCREDS), so the scanning thread takes the process's own (setfsuid/setfsgid
change the calling thread only, and root without CAP_SYS_PTRACE keeps CAP_SETUID) and goes back to its
own after each process. map_files also needs CAP_SYS_ADMIN, which no fsuid gives: without it a
process's mappings are not read, and its mapped shared memory counts by its resident pages (its RSS)
as before, while what its descriptors hold is still counted whole.

Cost: one listdir + readlink per descriptor and one read of maps per process (a CPU ComfyUI with torch:
~1,900 mappings, a few ms; benchmarks/bench_held.py); only the few matching links are stat'ed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator
from dataclasses import dataclass

# statfs f_type of filesystems whose pages are memory (linux/magic.h)
RAM_FS = {0x01021994: "tmpfs", 0x858458F6: "ramfs", 0x958458F6: "hugetlbfs"}
ANONYMOUS = ("/memfd:", "/dev/zero", "/SYSV", "/dev/shm/")  # link targets that are memory by name
SHM = "/dev/shm/"


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("_rest", ctypes.c_byte * 112)]


_libc = ctypes.CDLL(None, use_errno=True)
_fs_of_dev: dict[int, bool] = {}


def in_ram(path: str, dev: int) -> bool:
    """True when the file at `path` (on device `dev`, cached) is on a filesystem of memory pages."""
    known = _fs_of_dev.get(dev)
    if known is None:
        buf = _Statfs()
        if _libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
            return False
        known = _fs_of_dev[dev] = (buf.f_type & 0xFFFFFFFF) in RAM_FS
    return known


@dataclass(frozen=True, slots=True)
class HeldFile:
    dev: int
    ino: int
    bytes: int  # st_blocks * 512: allocated, not apparent
    ram: bool  # its pages are memory (tmpfs, memfd, shared anonymous), not disk
    named: bool  # it has a name in /dev/shm (else: none left, or never had one)
    target: str  # what the kernel calls it ("/tmp/x (deleted)", "/memfd:x (deleted)")

    @property
    def anonymous(self) -> bool:
        """Memory that was never a file anyone named (memfd, shared anonymous mapping, SysV segment)."""
        return self.target.startswith(("/memfd:", "/dev/zero", "/SYSV"))


def _wanted(target: str) -> bool:
    return target.endswith(" (deleted)") or target.startswith(("/memfd:", SHM))


def _stat(link: str, target: str, found: dict[tuple[int, int], HeldFile]) -> None:
    try:
        st = os.stat(link)
    except OSError:
        return
    key = (st.st_dev, st.st_ino)
    if key not in found:
        ram = target.startswith(ANONYMOUS) or in_ram(link, st.st_dev)
        named = target.startswith(SHM) and not target.endswith(" (deleted)")
        found[key] = HeldFile(st.st_dev, st.st_ino, st.st_blocks * 512, ram, named, target)


def _mapped(pid: int) -> list[tuple[str, str]] | None:
    """(map_files link, target) of each matching mapping of a process; None when maps is unreadable."""
    try:
        with open(f"/proc/{pid}/maps", "rb") as fh:
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    if "(deleted)" not in text and "/memfd:" not in text and SHM not in text:
        return []  # the common case: one scan of the text, no line split
    found = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and _wanted(parts[5]):
            found.append((f"/proc/{pid}/map_files/{parts[0]}", parts[5]))
    return found


@contextlib.contextmanager
def _as_owner(pid: int) -> Iterator[None]:
    """This thread's filesystem uid/gid set to the process's while its /proc entries are read (root only)."""
    try:
        st = os.stat(f"/proc/{pid}")
    except OSError:
        yield
        return
    me_uid, me_gid = os.geteuid(), os.getegid()
    if me_uid != 0 or (st.st_uid, st.st_gid) == (me_uid, me_gid):
        yield
        return
    _libc.setfsgid(st.st_gid)
    _libc.setfsuid(st.st_uid)
    try:
        yield
    finally:
        _libc.setfsuid(me_uid)
        _libc.setfsgid(me_gid)


@dataclass
class Holdings:
    """What a set of processes holds: files with no name left (and their /dev/shm files), by inode."""

    files: dict[tuple[int, int], HeldFile]
    unmapped: list[int]  # processes whose mappings could not be read (no CAP_SYS_ADMIN): RSS counts them

    def total(self, *, ram: bool | None = None, anonymous: bool | None = None) -> int:
        return sum(
            f.bytes
            for f in self.files.values()
            if (ram is None or f.ram == ram) and (anonymous is None or f.anonymous == anonymous)
        )


def scan(pids: list[int]) -> Holdings:
    """Every file the processes hold open or mapped that has no name left, is a memfd, or is in /dev/shm."""
    found: dict[tuple[int, int], HeldFile] = {}
    unmapped: list[int] = []
    for pid in pids:
        with _as_owner(pid):
            _scan_one(pid, found, unmapped)
    return Holdings(found, unmapped)


def _scan_one(pid: int, found: dict[tuple[int, int], HeldFile], unmapped: list[int]) -> None:
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = f"/proc/{pid}/fd/{fd}"
            with contextlib.suppress(OSError):
                if _wanted(target := os.readlink(link)):
                    _stat(link, target, found)
    mapped = _mapped(pid)
    if mapped is None:
        unmapped.append(pid)
        return
    for link, target in mapped:
        try:
            os.stat(link)
        except PermissionError:  # map_files needs CAP_SYS_ADMIN: this process's shmem stays in its RSS
            unmapped.append(pid)
            return
        except OSError:  # unmapped since maps was read
            continue
        _stat(link, target, found)


def shm_files(root: str, uid: int | None, found: dict[tuple[int, int], HeldFile]) -> None:
    """Add the files `uid` owns under a shared memory directory (/dev/shm) by name, de-duplicated."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(path)
                if (uid is None or st.st_uid == uid) and (st.st_dev, st.st_ino) not in found:
                    found[(st.st_dev, st.st_ino)] = HeldFile(st.st_dev, st.st_ino, st.st_blocks * 512, True, True, path)
