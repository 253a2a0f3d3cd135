"""Landlock in two phases: packs import with their own folders writable, jobs run with them read-only.

Packs write their own folders when ComfyUI imports them (RES4LYF its config, Impact Pack its ini, WAS
its json: no list can name them all), and trust what they find there at the next start. So:

- start (the ruleset the preexec applies): everything handler.confine grants, plus each pack's top
  folder open to ComfyUI's user as files go (create, write, truncate; no removal, rename, link or
  folder): the folder group-writable and sticky, its data files group-writable, every file root's.
- serve: the same ruleset without any write under a pack's folder. handler.comfy_boot applies it in
  ComfyUI's main thread once `nodes.init_extra_nodes` has returned, before ComfyUI starts its prompt
  worker thread and its server (Landlock domains stack: the stricter one holds from then on, and
  every thread or process started afterwards inherits it). Its fd is handed to ComfyUI (Popen
  pass_fds), its number in an argument comfy_boot strips (SERVE_FD_ARG).

Fail closed: when ComfyUI doesn't run through comfy_boot, the preexec applies the serve ruleset itself
(packs then can't write their folders at import); a `nodes` module without `init_extra_nodes` to hook
gets it from comfy_boot at its import, before ComfyUI loads any pack's nodes.
Threads a pack started during import keep the start domain (comfy_boot names them; README "Security").
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handler import comfy_boot, landlock

# A pack's data files in its top folder, made group-writable for the start phase (a pack rewrites the
# config it shipped, or one an earlier start made as root): data, not code.
PACK_DATA_SUFFIXES = (".json", ".yaml", ".yml", ".ini", ".cfg", ".toml", ".conf")
# What the start phase adds on a pack's folder (and what serve takes away).
PACK_START = landlock.MAKE_REG | landlock.WRITE_FILE | landlock.TRUNCATE
BEFORE_MAIN, NOT_YET = "before main", "ComfyUI has not loaded its nodes yet (handler.comfy_boot applies it then)"


@dataclass(frozen=True)
class Plan:
    """Which phases a spawn gets (diagnose's `confinement.landlock.phases`, with what comfy_boot said)."""

    start_why_not: str | None  # None: the preexec applies the start ruleset, comfy_boot the serve one
    serve_why_not: str | None = None  # None: the serve ruleset is applied (before main, or by comfy_boot)

    @property
    def phased(self) -> bool:
        return self.start_why_not is None

    def report(self, seen: dict[str, Any] | None = None) -> dict[str, Any]:
        """`seen`: comfy_boot's control line for this process ({"at", "threads"}), once it came."""
        start = {"active": self.phased, "why_not": self.start_why_not}
        serve: dict[str, Any] = {"active": False, "at": None, "why_not": self.serve_why_not, "start_threads": []}
        if self.serve_why_not is None and not self.phased:
            serve.update(active=True, at=BEFORE_MAIN)
        elif self.phased and seen:
            serve.update(active=True, at=seen.get("at"), start_threads=list(seen.get("threads") or []))
        elif self.phased:
            serve["why_not"] = NOT_YET
        return {"start": start, "serve": serve}


def plan(abi: int, landlock_why_not: str | None, *, user: bool, boot: bool) -> Plan:
    """The phases for this spawn: two where they can be had, else serve alone from the start (and why)."""
    if not abi:
        return Plan(landlock_why_not, landlock_why_not)
    before_main = "the serve ruleset applies from the start, so packs can't write their folders at import"
    if not user:
        return Plan(f"ComfyUI runs as the worker's own user (confinement.user): {before_main}")
    if not boot:
        return Plan(f"COMFY_MAIN is not run through handler.comfy_boot (not a Python file): {before_main}")
    return Plan(None)


def rulesets(
    abi: int, rules: list[tuple[Path, int]], packs: Iterable[Path], ports: Any, phased: bool
) -> tuple[int, int | None]:
    """(the fd the preexec applies, the serve ruleset's fd for comfy_boot or None). Both hold `rules`;
    packs' folders are readable in both, writable (PACK_START) in the start one only."""
    packs = list(packs)
    serve, _skipped = landlock.build_ruleset(abi, [*rules, *((p, landlock.READ) for p in packs)], ports)
    if not phased:
        return serve, None
    try:
        opened = [(p, landlock.READ | PACK_START) for p in packs]
        start, _skipped = landlock.build_ruleset(abi, [*rules, *opened], ports)
    except BaseException:
        landlock.close(serve)
        raise
    return start, serve


def set_pack_dirs(packs: Iterable[Path], gid: int, *, writable: bool) -> None:
    """Unix permissions for ComfyUI's user (its group) on each pack's top folder. Writable (the start
    phase, which serve closes again): group-writable and sticky (no file but one's own can be removed
    or renamed), its data files group-writable; every file stays its owner's. Otherwise what an
    earlier start opened is closed: without the serve phase nothing would close it for jobs."""
    for pack in packs:
        with contextlib.suppress(OSError):
            st = pack.stat()
            if writable:
                os.chown(pack, -1, gid)
                os.chmod(pack, stat.S_IMODE(st.st_mode) | stat.S_IWGRP | stat.S_IXGRP | stat.S_ISVTX)
            elif st.st_gid == gid and st.st_mode & stat.S_ISVTX:
                os.chmod(pack, stat.S_IMODE(st.st_mode) & ~(stat.S_IWGRP | stat.S_ISVTX))
            for entry in sorted(pack.iterdir()):
                if entry.suffix.lower() not in PACK_DATA_SUFFIXES or entry.is_symlink() or not entry.is_file():
                    continue
                est = entry.stat()
                if writable:
                    os.chown(entry, -1, gid)
                    os.chmod(entry, stat.S_IMODE(est.st_mode) | stat.S_IWGRP)
                elif est.st_gid == gid:
                    os.chmod(entry, stat.S_IMODE(est.st_mode) & ~stat.S_IWGRP)


def boot_argv(command: list[str], serve_fd: int | None) -> list[str]:
    """ComfyUI's command with the serve ruleset's fd number for comfy_boot (right after its file)."""
    if serve_fd is None or comfy_boot.FILE not in command:
        return command
    at = command.index(comfy_boot.FILE) + 1
    return [*command[:at], f"{comfy_boot.SERVE_FD_ARG}{serve_fd}", *command[at:]]
