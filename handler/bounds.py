"""A prompt's run bounded by the process, not by the values in its workflow (README "Security").

`run_bounded` is the one call the job pipeline makes to run a prompt:
- a real deadline: past it the prompt is interrupted and dequeued, and that is checked through /queue
  and /history within STOP_GRACE_S. A prompt that ignores the interrupt (a C loop holding the GIL, a
  node that never checks) gets ComfyUI restarted by the supervisor; the TIMEOUT answer says which
  (`details.stopped`: interrupted | restarted | still_running), and `test` shows the restart.
- a disk budget: what ComfyUI writes under its output, temp and user directories (its HOME and TMPDIR
  are in the last) and in /dev/shm (its user's files: handler.scratch), and the files its processes
  hold with no name left (handler.held: unlinked but open or mapped), while the prompt runs is
  summed every DISK_SAMPLE_S, each inode once, or what the memory-backed ones among those filesystems
  gained (statvfs: a file held only by a descriptor in flight in a socket too) if more; past
  JOB_DISK_MB the prompt is stopped the
  same way (JOB_DISK_LIMIT). One file can't outgrow MAX_FILE_MB between two samples: RLIMIT_FSIZE
  (handler.confine) stops it.
- no trace in ComfyUI: the prompt's /history entry is deleted once its outputs are known.
- the memory cap (handler.memcap, handler.memwatch): a prompt during which ComfyUI was killed for its
  memory (the watchdog, or the kernel in its cgroup) answers COMFY_MEMORY_LIMIT, not "ComfyUI died"; an
  allocation RLIMIT_DATA refused answers RAM_OUT_OF_MEMORY naming the cap, and ComfyUI stays up.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from comfyui_client import ComfyError, PromptResult, PromptTimeout
from handler import held, memwatch
from handler.held import HeldFile
from handler.jobfiles import entries
from handler.runtime import Runtime
from handler.scratch import comfy_scratch
from handler.state import Cause
from workflows.errors import JobError
from workflows.failures import prompt_error

DISK_SAMPLE_S = 0.25
Runner = Callable[..., PromptResult]


def disk_used(
    roots: list[Path], shared: tuple[Path, ...] = (), uid: int | None = None, held_files: Iterable[HeldFile] = ()
) -> int:
    """Bytes really allocated under the roots (st_blocks: a sparse file counts what it uses), and under
    the shared roots (/dev/shm: memory, not disk, but as unbounded) by the files `uid` owns, plus the
    files ComfyUI holds with no name left (handler.held; not memfds nor shared anonymous memory: the
    memory cap counts those). Each inode once: a hard link is not a second file."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for _name, st in itertools.chain(entries(roots), entries(shared, uid)):  # the files (and links) there
        if not stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    for f in held_files:
        if not f.anonymous and (f.dev, f.ino) not in seen:
            seen.add((f.dev, f.ino))
            total += f.bytes
    return total


def fs_used(paths: Iterable[Path]) -> dict[int, int]:
    """Used bytes ((f_blocks - f_bfree) * f_frsize) of each distinct memory-backed filesystem (by st_dev)
    the paths are on (a path not made yet: its nearest existing parent's). Name-free: it sees what no name
    nor /proc/<pid>/fd shows, a file whose only reference is a descriptor in flight in a socket's queue
    (SCM_RIGHTS). Only memory-backed ones (/dev/shm, a tmpfs TMPDIR): a disk filesystem's used bytes
    move with every other writer on the host (on RunPod, the other pods' downloads on the same disk),
    which would fail a healthy job; on disk, such a file lasts until ComfyUI ends (code that can pass
    descriptors ran an unvetted class, so that is the job's end)."""
    used: dict[int, int] = {}
    for path in paths:
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            dev = path.stat().st_dev
            if dev not in used and held.in_ram(str(path), dev):
                v = os.statvfs(path)
                used[dev] = (v.f_blocks - v.f_bfree) * v.f_frsize
        except OSError:
            continue
    return used


def fs_growth(baseline: dict[int, int], now: dict[int, int]) -> int:
    """What the filesystems gained since `baseline`, each at least 0: freeing old files on one is no
    allowance to write on another."""
    return sum(max(0, now[dev] - used) for dev, used in baseline.items() if dev in now)


class DiskWatch:
    """Samples the disk ComfyUI's output and temp directories use while one prompt runs.

    Two measures, the larger counts: by name (disk_used: the files under the roots and in /dev/shm,
    plus those ComfyUI's processes hold with no name left) and name-free (fs_growth: what each
    memory-backed filesystem those are on gained since the prompt started, from statvfs). The second
    catches data held only by a descriptor in flight in a socket (sendmsg SCM_RIGHTS, then closed: in no
    process's fd table) but counts every writer on those filesystems, the worker's too: hence a max,
    never a sum. No floor: a growth only matters past JOB_DISK_MB, itself the allowance for that noise,
    and a floor would be free room for a job to write in.
    """

    def __init__(self, runtime: Runtime, prompt_id: str) -> None:
        s = runtime.settings
        self.runtime, self.prompt_id = runtime, prompt_id
        # the user directory holds ComfyUI's HOME and TMPDIR (handler.confine): a node writing there is
        # writing to the same disk; so are the CONFINE_WRITE paths the deployment let it write at will
        self.roots = [s.output_dir, s.temp_dir, s.user_dir, *map(Path, s.confine_write)]
        self.scratch = comfy_scratch(runtime)  # and what ComfyUI's user owns in /dev/shm
        self.limit = int(s.job_disk_mb * 1024 * 1024)
        self.baseline = self._used() if self.limit else 0
        self.filesystems = [*self.roots, *self.scratch.shared]
        self.fs_baseline = fs_used(self.filesystems) if self.limit else {}
        self.written = 0
        self.exceeded = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-disk", daemon=True)

    def start(self) -> DiskWatch:
        if self.limit:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def over(self) -> bool:
        """Sample now: True (and `exceeded` set) when the prompt has written more than its budget."""
        if self.limit:
            by_name = self._used() - self.baseline
            self.written = max(0, by_name, fs_growth(self.fs_baseline, fs_used(self.filesystems)))
            if self.written > self.limit:
                self.exceeded.set()
        return self.exceeded.is_set()

    def _used(self) -> int:
        supervisor = self.runtime.supervisor  # its processes' files with no name left count too
        holding = held.scan(supervisor.reaper.members()).files.values() if supervisor is not None else ()
        return disk_used(self.roots, self.scratch.shared, self.scratch.uid, holding)

    def _run(self) -> None:
        while not self._stop.wait(DISK_SAMPLE_S):
            if self.over():
                stop_prompt(self.runtime, self.prompt_id, reason="its disk budget (JOB_DISK_MB)")
                return


def _gone(runtime: Runtime, prompt_id: str) -> bool | None:
    """True when ComfyUI no longer runs or holds the prompt; None when it does not answer (busy in C)."""
    try:
        if prompt_id in runtime.comfy.queued_prompt_ids(timeout=1.0):
            return False
        runtime.comfy.history(prompt_id)  # answered: the prompt is over (finished, failed or interrupted)
        return True
    except Exception:
        return True if runtime.comfy_process_alive() is False else None


def stop_prompt(runtime: Runtime, prompt_id: str, reason: str = "its deadline") -> str:
    """Stop a prompt for real: "interrupted" (ComfyUI let go of it within STOP_GRACE_S), "restarted"
    (it did not: the supervisor restarted ComfyUI), "still_running" (no supervisor to restart it:
    ComfyUI is run by someone else), or "gone" (ComfyUI had already ended)."""
    for call in (lambda: runtime.comfy.delete_queued([prompt_id]), lambda: runtime.comfy.interrupt(prompt_id)):
        with contextlib.suppress(Exception):  # ComfyUI busy or gone: what follows finds out which
            call()
    end = time.monotonic() + runtime.settings.stop_grace_s
    while time.monotonic() < end:
        if _gone(runtime, prompt_id):
            return "gone" if runtime.comfy_process_alive() is False else "interrupted"
        time.sleep(0.1)
    supervisor = runtime.supervisor
    if supervisor is None:
        return "still_running"
    cause = Cause(
        "TIMEOUT",
        f"prompt {prompt_id} did not stop within {runtime.settings.stop_grace_s:g} s (STOP_GRACE_S) of being "
        f"interrupted for {reason}; the worker restarted ComfyUI",
        {"prompt_id": prompt_id},
    )
    return "restarted" if supervisor.restart(cause) else "gone"


_STOPPED = {
    "interrupted": "it was interrupted and removed from ComfyUI's queue",
    "restarted": "it ignored the interrupt, so the worker restarted ComfyUI (the next job waits for it)",
    "gone": "ComfyUI had already ended",
    "still_running": "it ignored the interrupt and is still running: ComfyUI is not the worker's to restart",
}


def _disk_error(runtime: Runtime, watch: DiskWatch) -> JobError:
    return JobError(
        "JOB_DISK_LIMIT",
        f"the job wrote {watch.written / 2**20:.0f} MB under ComfyUI's output, temp and user directories and "
        f"/dev/shm, over its budget of {runtime.settings.job_disk_mb:g} MB (JOB_DISK_MB); it was stopped",
        {"prompt_id": watch.prompt_id, "written_mb": round(watch.written / 2**20)},
    )


def _capped(runtime: Runtime, error: JobError) -> JobError:
    """A node's failed allocation under RLIMIT_DATA: the cap goes in `details.memory_cap`, and the fix
    names the cap only when the deployment set it below the machine's memory (the kernel's answer is
    the same ENOMEM either way). Under the default cap (DEFAULT_SHARE of the machine) an allocation it
    refused would not have fit the machine either, so the field-drawn fix (more RAM, smaller models)
    stays the one to act on."""
    supervisor = runtime.supervisor
    limit = supervisor.kernel_memory.rlimit_bytes if supervisor is not None else 0
    if error.code != "RAM_OUT_OF_MEMORY" or not limit:
        return error
    max_mb = round(limit / 2**20)
    error.details["memory_cap"] = {"mechanism": "rlimit", "max_mb": max_mb}
    error.message += f" (ComfyUI's memory cap: {max_mb} MB per process, COMFY_MEMORY_MAX_MB, RLIMIT_DATA)"
    machine_mb = memwatch.machine_memory_mb()
    lowered = runtime.settings.memory_max_mb is not None and (
        machine_mb is None or max_mb < memwatch.DEFAULT_SHARE * machine_mb
    )
    if lowered:
        error.fix = (
            "The job asked for more memory than ComfyUI's cap (COMFY_MEMORY_MAX_MB): lower the workflow's "
            "size, frames or batch, or raise the cap on a machine with more memory. ComfyUI stayed up."
        )
    return error


def run_bounded(
    runtime: Runtime,
    workflow: dict[str, Any],
    prompt_id: str,
    deadline: float,
    on_progress: Callable[[dict[str, Any]], None] | None,
    runner: Runner,
) -> PromptResult:
    """`runner` (comfyui_client.run_prompt) within the job's deadline, disk budget and memory cap;
    every failure is a JobError with its code."""
    watch = DiskWatch(runtime, prompt_id).start()
    state = runtime.state
    last_death = state.last_death if state is not None else None
    try:
        result = runner(
            runtime.comfy, runtime.events, workflow, prompt_id=prompt_id, deadline=deadline, on_progress=on_progress
        )
        watch.stop()
        if watch.over():  # written between two samples, by a prompt quicker than one
            raise _disk_error(runtime, watch)
        return result
    except ComfyError as exc:
        if watch.exceeded.is_set():
            raise _disk_error(runtime, watch) from None
        if isinstance(exc, PromptTimeout):
            stopped = stop_prompt(runtime, prompt_id)
            raise JobError(
                "TIMEOUT",
                f"the job did not finish before its deadline; {_STOPPED[stopped]}",
                {"prompt_id": prompt_id, "stopped": stopped},
            ) from None
        death = state.last_death if state is not None and state.last_death is not last_death else None
        if death is not None and death.code == "COMFY_MEMORY_LIMIT":
            raise JobError("COMFY_MEMORY_LIMIT", death.message, {"prompt_id": prompt_id, **death.details}) from None
        raise _capped(runtime, prompt_error(exc, runtime.registry, workflow, prompt_id)) from None
    finally:
        watch.stop()
        # ComfyUI keeps every prompt (inputs, prompt text, output names) in /history: a later job's node
        # that reached its API would read this one's; the outputs are already in `result`
        with contextlib.suppress(Exception):
            runtime.comfy.delete_history([prompt_id])
