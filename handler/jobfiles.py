"""The files a job causes ComfyUI to write, and their removal once the response is built.

A job's own folders and stored inputs go at once. Anything else it made ComfyUI write (a dataset
folder, a subfolder a pack chose, a file in ComfyUI's TMPDIR or /dev/shm) is found by comparing
ComfyUI's directories with their listing when the first concurrent job began, and removed when the last
one ends. In a directory other processes write too (/dev/shm: handler.scratch) only what ComfyUI's user
owns is looked at.

ComfyUI's HOME and user directory are kept across jobs on purpose (packs' download caches), but a job
that ran unvetted classes (handler.isolation) may have planted there what a later job's code loads
(Triton's ~/.triton/cache, CUDA's ~/.nv/ComputeCache, torch's inductor cache in TMPDIR, a pack's cache,
a user site-packages .pth). `TaintedDirs` removes, before ComfyUI starts again, every entry ComfyUI's
user owns there whose ctime (which no process can set back, unlike mtime) is from the time such a job
ran. The cost: what that job (and any job running beside it) downloaded into its caches is not kept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


def _tree(roots: Iterable[Path], shared: Iterable[Path] = (), uid: int | None = None) -> set[str]:
    """Every file and directory under the roots, and under the shared roots those `uid` owns (symlinks
    not followed)."""
    seen: set[str] = set()
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            seen.update(os.path.join(dirpath, n) for n in dirnames)
            seen.update(os.path.join(dirpath, n) for n in filenames)
    for root in shared:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (os.path.join(dirpath, n) for n in [*dirnames, *filenames]):
                with contextlib.suppress(OSError):
                    if os.lstat(name).st_uid == uid:
                        seen.add(name)
    return seen


class JobActivity:
    """Jobs in flight on one ComfyUI (one per Runtime), and the directory listing taken when the first began.

    What is new under ComfyUI's directories when the last one ends was written by those jobs
    (they are the only thing that makes ComfyUI write), wherever it is: their own folders, a dataset
    folder, a subfolder a pack chose. The sweep waits for the last job so it never removes a file a
    concurrent job is still using.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.baseline: set[str] = set()

    def begin(self, roots: tuple[Path, ...], shared: tuple[Path, ...] = (), uid: int | None = None) -> None:
        with self.lock:
            if self.active == 0:
                self.baseline = _tree(roots, shared, uid)
            self.active += 1

    def end(self, roots: tuple[Path, ...], shared: tuple[Path, ...] = (), uid: int | None = None) -> None:
        with self.lock:
            self.active -= 1
            if self.active > 0:
                return
            for name in sorted(_tree(roots, shared, uid) - self.baseline, key=len, reverse=True):  # files, then dirs
                try:
                    if os.path.isdir(name) and not os.path.islink(name):
                        os.rmdir(name)
                    else:
                        os.unlink(name)
                except OSError:
                    pass


@dataclass
class JobFiles:
    """Everything a job caused to be written, removed once the response is built: its stored inputs
    and folders at once, anything else it wrote under `roots` when no other job of `activity` is running."""

    activity: JobActivity
    paths: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)
    roots: tuple[Path, ...] = ()
    shared: tuple[Path, ...] = ()  # written by others too: only what `uid` owns there is the jobs' (/dev/shm)
    uid: int | None = None

    def __enter__(self) -> JobFiles:
        self.activity.begin(self.roots, self.shared, self.uid)
        return self

    def __exit__(self, *_: object) -> None:
        try:
            for path in self.paths:
                path.unlink(missing_ok=True)
            for directory in self.dirs:
                shutil.rmtree(directory, ignore_errors=True)
        finally:
            self.activity.end(self.roots, self.shared, self.uid)


CLOCK_SLACK_S = 0.1  # file times come from the kernel's coarse clock, a tick behind time.time()


def changed_since(roots: Iterable[Path], since: float, uid: int | None) -> list[str]:
    """Entries under the roots (not the roots) that `uid` owns, changed (ctime) at or after `since`;
    deepest first."""
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (os.path.join(dirpath, n) for n in [*dirnames, *filenames]):
                with contextlib.suppress(OSError):
                    st = os.lstat(name)
                    if st.st_ctime >= since and (uid is None or st.st_uid == uid):
                        found.append(name)
    return sorted(found, key=lambda n: n.count(os.sep), reverse=True)


class TaintedDirs:
    """Directories ComfyUI keeps across jobs, swept of what was changed since a job ran unvetted classes."""

    def __init__(self, roots: tuple[Path, ...], uid: int | None, keep: tuple[Path, ...] = ()) -> None:
        self.roots, self.uid = roots, uid
        self.keep = {str(p) for p in keep}  # directories ComfyUI needs (its HOME, its TMPDIR): emptied, kept
        self.since: float | None = None
        self.removed = 0  # entries removed so far, for diagnose
        self._lock = threading.Lock()

    def mark(self) -> None:
        """A job that runs unvetted classes begins: what changes from now on is suspect."""
        with self._lock:
            if self.since is None:
                self.since = time.time() - CLOCK_SLACK_S

    def sweep(self) -> int:
        """Remove what changed since the first mark (files and links; directories left empty); call it
        when ComfyUI's processes are gone and before it starts again. Returns how many entries went."""
        with self._lock:
            since, self.since = self.since, None
            if since is None:
                return 0
            removed = 0
            for name in changed_since(self.roots, since, self.uid):
                if name in self.keep:
                    continue
                try:
                    if os.path.isdir(name) and not os.path.islink(name):
                        os.rmdir(name)  # only once empty: a cache directory that held older files stays
                    else:
                        os.unlink(name)
                    removed += 1
                except OSError:
                    pass
            self.removed += removed
            return removed
