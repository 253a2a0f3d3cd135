"""ComfyUI's memory cap enforced by the kernel, each mechanism asked of the system, never assumed.

Two kernel layers, the first that this machine offers, under the watchdog (handler.memwatch):

- a cgroup v2 child: where the worker's own cgroup v2 (/proc/self/cgroup's `0::` line) offers the memory
  controller and the worker may write it (a privileged or delegated container), ComfyUI runs in its own
  child cgroup `comfyui` with `memory.max` = the cap, `memory.swap.max` = 0 and `memory.oom.group` = 1:
  the kernel counts everything (anonymous memory, page cache, every helper ComfyUI starts) and, over the
  cap, kills the whole group; `memory.events`' oom_kill counter tells the supervisor that was the cap
  (COMFY_MEMORY_LIMIT), not a crash. A cgroup that holds processes can't hand the controller to a child
  ("no internal processes"): the worker first moves its cgroup's processes into a leaf `worker`.
  ComfyUI is moved in right after its exec (Popen returns): its interpreter's first milliseconds stay
  charged to the worker's cgroup.
- RLIMIT_DATA (Linux >= 4.7 counts private writable mappings: malloc, anonymous mmap; not PROT_NONE
  reservations, shared mappings or read-only file mappings such as mmapped safetensors), set in
  ComfyUI's preexec: an allocation over the cap fails inside the node (MemoryError, torch's
  "DefaultCPUAllocator: can't allocate memory") and the job answers RAM_OUT_OF_MEMORY while ComfyUI
  stays up. It is per process (a helper ComfyUI starts gets its own), and it is applied only where no
  GPU device (/dev/nvidia*) is present: NVIDIA documents no bound on the private writable mappings its
  driver makes (pinned host memory, UVM), so on a GPU the limit could stop CUDA from starting, and the
  cgroup and the watchdog cap memory there.
A start that fails under either cap is answered COMFY_MEMORY_LIMIT with the fix (the supervisor),
never a restart loop.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler.state import Cause
from workflows.startup_log import StartFailure

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
CHILD = "comfyui"  # ComfyUI's cgroup, under the worker's
LEAF = "worker"  # where the worker's cgroup's own processes move, so its children may get the controller
MIB = 1024 * 1024
START_FIX = (
    "Raise COMFY_MEMORY_MAX_MB above what ComfyUI needs to start (its idle memory plus what its packs load "
    "at start), or unset it (the cap is then 90% of the machine's memory)."
)


def gpu_devices(dev: Path = Path("/dev")) -> list[str]:
    """The NVIDIA device nodes present (/dev/nvidia0, /dev/nvidiactl, /dev/nvidia-uvm)."""
    with contextlib.suppress(OSError):
        return sorted(str(dev / n) for n in os.listdir(dev) if n.startswith("nvidia"))
    return []


def own_cgroup(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[Path | None, str | None]:
    """(the worker's cgroup v2 directory, None) when ComfyUI can get a memory.max under it, else (None, why)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError as exc:
        return None, f"{proc_cgroup} is unreadable ({exc.strerror})"
    rel = next((line[3:] for line in lines if line.startswith("0::")), None)
    v1 = [line.split(":")[1] for line in lines if not line.startswith("0::") and line.count(":") >= 2]
    if rel is None:
        return None, f"the worker is in no cgroup v2 (a cgroup v1 host: {', '.join(v1) or 'no controllers'})"
    base = root / rel.lstrip("/")
    try:
        controllers = (base / "cgroup.controllers").read_text().split()
    except OSError:
        hybrid = " (a hybrid host: memory is a cgroup v1 controller)" if "memory" in v1 else ""
        return None, f"no cgroup v2 hierarchy at {root}{hybrid}; the worker uses v2's memory.max only"
    if "memory" not in controllers:
        offered = " ".join(controllers) or "none"
        return None, f"the worker's cgroup v2 ({base}) offers no memory controller (offered: {offered})"
    if not (os.access(base, os.W_OK) and os.access(base / "cgroup.subtree_control", os.W_OK)):
        return None, f"the worker's cgroup v2 ({base}) is read-only here: a container not started privileged"
    return base, None


@dataclass
class CgroupCap:
    """ComfyUI's child cgroup under `base` (the worker's), made and read by the worker."""

    base: Path
    oom_kills_at_spawn: int = 0

    @property
    def path(self) -> Path:
        return self.base / CHILD

    def setup(self, max_bytes: int) -> None:
        """Make ComfyUI's cgroup with its cap; raises OSError where the kernel refuses a step."""
        subtree = self.base / "cgroup.subtree_control"
        if "memory" not in subtree.read_text().split():
            procs = (self.base / "cgroup.procs").read_text().split()
            if procs:  # "no internal processes": the worker's cgroup's own processes go to a leaf first
                leaf = self.base / LEAF
                leaf.mkdir(exist_ok=True)
                for pid in procs:
                    with contextlib.suppress(ProcessLookupError):  # ended since the listing
                        (leaf / "cgroup.procs").write_text(pid)
            subtree.write_text("+memory")
        self.path.mkdir(exist_ok=True)
        (self.path / "memory.max").write_text(str(max_bytes))
        for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
            if (self.path / name).exists():  # no swap accounting on this kernel: nothing to turn off
                (self.path / name).write_text(value)

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))
        self.oom_kills_at_spawn = self.oom_kills()

    def oom_kills(self) -> int:
        """memory.events' oom_kill: how many processes the kernel killed in ComfyUI's cgroup for its cap."""
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "memory.events").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    def killed_since_spawn(self) -> bool:
        return self.oom_kills() > self.oom_kills_at_spawn


def data_limit(max_mb: float, gpus: list[str] | None = None) -> tuple[int, str | None]:
    """(RLIMIT_DATA for ComfyUI in bytes, None) or (0, why it is not set)."""
    if max_mb <= 0:
        return 0, "no memory cap (COMFY_MEMORY_MAX_MB=0)"
    gpus = gpu_devices() if gpus is None else gpus
    if gpus:
        return 0, (
            f"a GPU is present ({gpus[0]}): the CUDA driver's own private mappings (pinned host memory, UVM) "
            "would count against RLIMIT_DATA and no bound on them is documented, so it could stop CUDA from "
            "starting"
        )
    limit = int(max_mb * MIB)
    _soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    return (min(limit, hard) if hard != resource.RLIM_INFINITY else limit), None


@dataclass
class KernelCap:
    """What the kernel enforces of ComfyUI's memory cap on this machine (decided once per worker)."""

    max_mb: float
    cgroup: CgroupCap | None = None
    cgroup_why_not: str | None = None
    rlimit_bytes: int = 0
    rlimit_why_not: str | None = None

    @classmethod
    def ask(cls, max_mb: float, root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> KernelCap:
        cap = cls(max_mb)
        if max_mb <= 0:
            cap.cgroup_why_not = cap.rlimit_why_not = "no memory cap (COMFY_MEMORY_MAX_MB=0)"
            return cap
        base, cap.cgroup_why_not = own_cgroup(root, proc_cgroup)
        if base is not None:
            cgroup = CgroupCap(base)
            try:
                cgroup.setup(int(max_mb * MIB))
                cap.cgroup = cgroup
            except OSError as exc:
                cap.cgroup_why_not = f"the kernel refused ComfyUI's cgroup under {base}: {exc}"
        cap.rlimit_bytes, cap.rlimit_why_not = data_limit(max_mb)
        return cap

    def place(self, pid: int) -> None:
        """Move a just-started ComfyUI into its cgroup (a refusal turns the cgroup off, with why)."""
        if self.cgroup is None:
            return
        try:
            self.cgroup.add(pid)
        except OSError as exc:
            self.cgroup_why_not = f"the kernel refused to move ComfyUI into {self.cgroup.path}: {exc}"
            self.cgroup = None

    @property
    def mechanism(self) -> str:
        """The first layer that holds ComfyUI's memory: cgroup, rlimit, or watchdog (or none)."""
        if self.max_mb <= 0:
            return "none"
        return "cgroup" if self.cgroup else "rlimit" if self.rlimit_bytes else "watchdog"

    def report(self) -> dict[str, Any]:
        return {
            "mechanism": self.mechanism,
            "cgroup": {
                "active": self.cgroup is not None,
                "path": str(self.cgroup.path) if self.cgroup else None,
                "oom_kills": self.cgroup.oom_kills() if self.cgroup else None,
                "why_not": self.cgroup_why_not,
            },
            "rlimit": {
                "active": self.rlimit_bytes > 0,
                "name": "RLIMIT_DATA",
                "limit_mb": round(self.rlimit_bytes / MIB) if self.rlimit_bytes else None,
                "why_not": self.rlimit_why_not,
            },
        }


# What a process says when an allocation (or a library's data segment) is refused at start.
# (glibc's loader says "cannot allocate memory for thread-local data" when a thread's TLS is refused)
_ALLOCATION_FAILED = re.compile(
    r"MemoryError|std::bad_alloc|failed to map segment|cannot allocate memory|can't allocate memory|out of memory",
    re.IGNORECASE,
)


def _how(kernel: KernelCap) -> str:
    return {"cgroup": "its cgroup's memory.max", "rlimit": "RLIMIT_DATA"}.get(kernel.mechanism, "the watchdog")


def classify_death(failure: StartFailure, kernel: KernelCap, lines: list[str], *, was_ready: bool) -> StartFailure:
    """ComfyUI's end, as the memory cap explains it: the kernel's OOM kill in its cgroup (memory.events),
    or a start that could not allocate under RLIMIT_DATA (a MemoryError, C++'s bad_alloc, a library
    whose data segment could not be mapped); any other failure unchanged."""
    cap = f"its memory cap of {kernel.max_mb:g} MB (COMFY_MEMORY_MAX_MB, {_how(kernel)})"
    if kernel.cgroup is not None and kernel.cgroup.killed_since_spawn():
        message = f"the kernel killed ComfyUI {'while running' if was_ready else 'during start-up'}: over {cap}"
        return StartFailure("COMFY_MEMORY_LIMIT", message, failure.evidence, fix=None if was_ready else START_FIX)
    hit = next((line for line in reversed(lines[-200:]) if _ALLOCATION_FAILED.search(line)), None)
    if not was_ready and kernel.rlimit_bytes and (failure.code == "RAM_OUT_OF_MEMORY" or hit is not None):
        message = f"ComfyUI could not start within {cap}: {failure.message}"
        evidence = failure.evidence if hit is None or hit in failure.evidence else (*failure.evidence, hit)
        return StartFailure("COMFY_MEMORY_LIMIT", message, evidence, fix=START_FIX)
    return failure


def start_cause(message: str, kernel: KernelCap) -> Cause:
    """The worker's state when ComfyUI went over its cap before it was ready: the same start would again."""
    return Cause(
        "COMFY_MEMORY_LIMIT",
        f"ComfyUI went over its memory cap while starting: {message}",
        {"max_mb": kernel.max_mb, "mechanism": kernel.mechanism},
        START_FIX,
    )
