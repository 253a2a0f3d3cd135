"""The files a job causes ComfyUI to write, and their removal once the response is built.

A job's own folders and stored inputs go at once. Anything else it made ComfyUI write (a dataset
folder, a subfolder a pack chose, a file in ComfyUI's TMPDIR or /dev/shm) is found by comparing
ComfyUI's directories with their listing when the first concurrent job began, and removed when the last
one ends. In a directory other processes write too (/dev/shm: handler.scratch) only what ComfyUI's user
owns is looked at.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
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
