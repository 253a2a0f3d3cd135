"""ComfyUI's memory cap, second layer: its resident memory (and its children's), sampled; over the cap
ComfyUI is restarted.

The first layer is the kernel's (handler.memcap): a cgroup v2 `memory.max` where the container delegates
one, else RLIMIT_DATA where no GPU is present. Neither sees everything this one does: RLIMIT_DATA counts
one process's private writable mappings, not its helpers' sum nor the file pages of mmapped models; and
on a GPU, or in a container whose cgroup is read-only (Docker's default, RunPod's pods), this watchdog
is the only cap. RLIMIT_AS is not used: it caps address space, not memory, and CUDA and torch reserve
tens of GB of it at start.
Every SAMPLE_S the worker reads /proc/<pid>/status (RssAnon and RssFile: anonymous and file pages) of
ComfyUI and its descendants, and adds the memory they hold in files (handler.held): every tmpfs or
shmem object they keep open or mapped (an unlinked /dev/shm file, a memfd, a shared anonymous
mapping), by inode and whole (st_blocks: unmapped pages of such a file are in no process's RSS), and
the files ComfyUI's user owns in /dev/shm (tmpfs is RAM). RssShmem is left out for the processes
whose mappings the worker could read (it would count a mapped object twice). Over COMFY_MEMORY_MAX_MB
it kills ComfyUI and the supervisor starts it again
(COMFY_MEMORY_LIMIT in the running job's answer and in the worker's last_death). An allocation that
outruns one sample can still reach the kernel's OOM killer first; the supervisor restarts ComfyUI then too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handler import held
from handler.config import Settings

SAMPLE_S = 0.25
DEFAULT_SHARE = 0.9  # of the machine's (or the container's) memory, when COMFY_MEMORY_MAX_MB is unset


def machine_memory_mb() -> float | None:
    """The memory this container may use: its cgroup's limit where one is set, else the machine's."""
    limits = []
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        with contextlib.suppress(OSError, ValueError):
            value = Path(path).read_text().strip()
            if value != "max" and int(value) < 1 << 60:
                limits.append(int(value) / 2**20)
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                limits.append(int(line.split()[1]) / 1024)
    return min(limits) if limits else None


def cap_mb(settings: Settings) -> float:
    """ComfyUI's memory cap in MB: COMFY_MEMORY_MAX_MB, else DEFAULT_SHARE of the machine's (0: none)."""
    configured, machine = settings.memory_max_mb, machine_memory_mb()
    return round(machine * DEFAULT_SHARE) if configured is None and machine else float(configured or 0.0)


def tree(pid: int) -> list[int]:
    """A process and all its descendants (the process first), as /proc shows them now."""
    found, todo, seen = [], [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        found.append(p)
        with contextlib.suppress(OSError, ValueError):
            for task in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant: a node's own child (a helper it started) must not outlive
    the ComfyUI the worker restarts. The tree is read first: once the parent dies its children move to init."""
    for p in tree(pid):
        with contextlib.suppress(OSError):
            os.kill(p, signal.SIGKILL)


def rss_mb(pid: int, members: Callable[[int], list[int]] = tree) -> float:
    """Resident memory of a process and all its descendants (`members`: the supervisor's reaper adds what
    escaped the tree), in MB (0 for a process gone)."""
    total_kb = 0
    for p in members(pid):
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
    return total_kb / 1024


def _status_kb(pid: int) -> dict[str, int]:
    with contextlib.suppress(OSError, ValueError):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in lines) if k.startswith("Rss")}
    return {}


def memory_mb(
    pid: int, members: Callable[[int], list[int]] = tree, shm: str | None = None, shm_uid: int | None = None
) -> tuple[float, float]:
    """(ComfyUI's memory, of which in files in memory) in MB: its processes' resident anonymous and file
    pages, plus the tmpfs/shmem files they hold (handler.held) and `shm_uid`'s files under `shm`."""
    pids = members(pid)
    holdings = held.scan(pids)
    if shm is not None:
        held.shm_files(shm, shm_uid, holdings.files)
    total_kb = 0
    for p in pids:
        rss = _status_kb(p)
        total_kb += rss.get("RssAnon", 0) + rss.get("RssFile", 0)
        if p in holdings.unmapped:  # its mapped objects are unknown: their resident pages count as before
            total_kb += rss.get("RssShmem", 0)
    in_files = holdings.total(ram=True) / 2**20
    return total_kb / 1024 + in_files, in_files


class MemoryCap:
    def __init__(self, settings: Settings, on_over: Callable[[float], None]) -> None:
        self.max_mb = cap_mb(settings)
        self.on_over = on_over
        self.members: Callable[[int], list[int]] = tree  # the processes whose memory counts (handler.reaper)
        self.shm: str | None = "/dev/shm" if os.path.isdir("/dev/shm") else None
        self.shm_uid: int | None = os.getuid()  # whose files there are ComfyUI's (the supervisor: its user)
        self.in_files_mb = 0.0  # of the last sample, what was in files in memory
        self.pid: int | None = None
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, pid: int) -> None:
        self.pid, self.peak_mb = pid, 0.0

    def start(self) -> None:
        if self.max_mb > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="comfy-memory", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            pid = self.pid
            if pid is None:
                continue
            used, self.in_files_mb = memory_mb(pid, self.members, self.shm, self.shm_uid)
            self.peak_mb = max(self.peak_mb, used)
            if used > self.max_mb:
                self.pid = None  # once per process: the supervisor hands over the next one
                self.on_over(used)

    def report(self) -> dict[str, Any]:
        return {
            "active": self.max_mb > 0,
            "max_mb": self.max_mb or None,
            "how": f"watchdog on ComfyUI's resident memory and the memory files it holds, sampled every {SAMPLE_S:g} s"
            if self.max_mb
            else None,
            "why_not": None if self.max_mb else "disabled by COMFY_MEMORY_MAX_MB=0",
            "rss_mb": round(rss_mb(self.pid, self.members)) if self.pid else None,
            "peak_mb": round(self.peak_mb) or None,
        }
