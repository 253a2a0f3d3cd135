"""Where ComfyUI writes beside its output and temp directories, for the per-job disk budget
(handler.bounds) and the per-job sweep (handler.jobfiles): its private TMPDIR (handler.confine makes it
inside its user directory) and /dev/shm, which every process of the machine may write: there only what
ComfyUI's user owns is ComfyUI's (its own user's uid, or the worker's when it has none).

Its HOME is not swept after each job: packs keep their download caches there (huggingface_hub's,
torch.hub's when HF_HOME and TORCH_HOME are unset), which a later job reuses; what a job writes there
still counts in its disk budget (the user directory holds it). After a job that ran unvetted classes,
what changed there while it ran is removed before ComfyUI restarts (handler.jobfiles.TaintedDirs).

Both exist only when the worker runs ComfyUI itself (a supervisor): a ComfyUI run by someone else has
its own HOME, TMPDIR and perhaps /dev/shm, which the worker neither knows nor sweeps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from handler.confine import scratch_dirs

if TYPE_CHECKING:
    from handler.runtime import Runtime

SHM = Path("/dev/shm")


@dataclass(frozen=True)
class Scratch:
    private: tuple[Path, ...] = ()  # everything under them is ComfyUI's (TMPDIR)
    shared: tuple[Path, ...] = ()  # only what `uid` owns under them is ComfyUI's (/dev/shm)
    uid: int | None = None


def comfy_scratch(runtime: Runtime) -> Scratch:
    supervisor = runtime.supervisor
    if supervisor is None:
        return Scratch()
    uid = supervisor.confinement.uid
    shared = (SHM,) if SHM.is_dir() else ()
    _home, tmp = scratch_dirs(runtime.settings)
    return Scratch((tmp,), shared, os.getuid() if uid is None else uid)
