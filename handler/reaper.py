"""Nothing a job starts outlives the ComfyUI it ran in (README "Security").

A node may start a process that leaves ComfyUI's tree: `setsid` and a double fork give it a parent
that is not ComfyUI, so following the parent links from ComfyUI's pid (`tree`) misses
it, and it survives a restart to watch the next tenant's files. Two kernel facts close that:

- the worker is a child subreaper (prctl PR_SET_CHILD_SUBREAPER, `become_subreaper`, called by the
  worker at start): every orphan of ComfyUI's tree is re-parented to the worker, not to init. ComfyUI
  starts in a session of its own (supervisor: start_new_session), so an adopted orphan is told from
  the worker's own children (subprocess.Popen's, which share the worker's session) by its session
  id, which a process can leave (setsid) but never join back.
- ComfyUI's own user (COMFY_RUN_AS) runs nothing else: every process of that uid is ComfyUI's or was
  started by it, wherever it was re-parented — except another worker's ComfyUI on the same host (a
  development machine running several stacks), spared because its nearest ancestor of another uid
  is that other worker, which no process can make itself a child of.

`Reaper.kill_all` SIGKILLs ComfyUI's tree, its user's strays and the adopted orphans, round after
round until none is left (a fork bomb's children appear while its parents die; RLIMIT_NPROC,
COMFY_MAX_PROCS, bounds how many there can be), then reaps the adopted zombies with waitpid on their
own pids — never waitpid(-1), which would steal subprocess.Popen's exit statuses.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("handler.reaper")

PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
KILL_ROUNDS = 50
REAP_S = 2.0


def become_subreaper() -> str | None:
    """Make this process the child subreaper of its descendants; None when done, else why not."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        return f"prctl(PR_SET_CHILD_SUBREAPER) failed: {os.strerror(ctypes.get_errno())}"
    return None


def is_subreaper() -> bool:
    value = ctypes.c_int(0)
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(value), 0, 0, 0) == 0 and value.value != 0


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    uid: int  # real uid
    zombie: bool


def read_proc(pid: int) -> Proc | None:
    """One process as /proc shows it now (None: gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
        # the command name (field 2) may hold spaces and parentheses: the fields after its last ')'
        fields = stat[stat.rindex(")") + 2 :].split()
        uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), -1)
        return Proc(pid, int(fields[1]), int(fields[3]), uid, fields[0] in ("Z", "X"))
    except (OSError, ValueError, IndexError):  # gone between the reads, or a file cut short by its exit
        return None


def processes() -> dict[int, Proc]:
    """Every process of this pid namespace."""
    found = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (p := read_proc(int(name))) is not None:
            found[p.pid] = p
    return found


def tree(pid: int, procs: dict[int, Proc] | None = None) -> list[int]:
    """A process and all its descendants (the process first), from one snapshot of /proc (`procs`) by
    their parent links: the one way ComfyUI's tree is listed (the memory cap, the kill, its port's owner)."""
    procs = processes() if procs is None else procs
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    found: list[int] = []
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            found.append(p)
            todo += children.get(p, [])
    return found


def adopted(procs: dict[int, Proc], comfy_pid: int | None = None) -> list[int]:
    """Orphans re-parented to this process (the subreaper): its children outside its own session,
    other than the ComfyUI it runs now."""
    me, my_sid = os.getpid(), os.getsid(0)
    return [p.pid for p in procs.values() if p.ppid == me and p.sid != my_sid and p.pid != comfy_pid]


def strays_of_user(procs: dict[int, Proc], uid: int) -> list[int]:
    """Processes of ComfyUI's uid that are not another worker's ComfyUI: those whose nearest ancestor of
    another uid is this worker, init, or none (re-parented past every subreaper)."""
    me, found = os.getpid(), []
    for p in procs.values():
        if p.uid != uid or p.pid == me:
            continue
        parent, seen = procs.get(p.ppid), {p.pid}
        while parent is not None and parent.uid == uid and parent.pid not in seen:
            seen.add(parent.pid)
            parent = procs.get(parent.ppid)
        if parent is None or parent.pid in (me, 1):
            found.append(p.pid)
    return found


class Reaper:
    """The set of processes that belong to ComfyUI (its tree, its user's strays, adopted orphans)."""

    def __init__(self, uid: int | None, why_shared: str | None = None) -> None:
        """`uid`: ComfyUI's own user, whose every process is killed with it; `why_shared`: that user is not
        ComfyUI's alone (the `nobody` fallback: on a host, not a container, a daemon may run as it), so
        only ComfyUI's tree and the orphans re-parented to the worker are killed."""
        dedicated = uid is not None and uid != os.getuid() and why_shared is None  # never the worker's own
        self.uid = uid if dedicated else None
        self.why_shared = why_shared
        self.comfy_pid: int | None = None  # the ComfyUI running now: subprocess.Popen's to reap, never ours
        self.killed = 0  # processes killed outside ComfyUI's own tree, for diagnose
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def watch(self, comfy_pid: int) -> None:
        self.comfy_pid = comfy_pid

    @contextlib.contextmanager
    def spawning(self) -> Iterator[None]:
        """Held around ComfyUI's spawn and `watch`: until it is named, the new child (the worker's, in a
        session of its own) looks adopted, and the reaping thread would waitpid a start that died at once,
        stealing subprocess.Popen's exit status (the start failure's exit code)."""
        with self._lock:
            yield

    def members(self, comfy_pid: int | None = None) -> list[int]:
        """ComfyUI's tree plus every process that escaped it (memwatch counts their memory)."""
        comfy_pid = self.comfy_pid if comfy_pid is None else comfy_pid
        procs = processes()
        found = tree(comfy_pid, procs) if comfy_pid is not None else []
        found += adopted(procs, comfy_pid)
        if self.uid is not None:
            found += strays_of_user(procs, self.uid)
        return list(dict.fromkeys(p for p in found if p in procs and not procs[p].zombie))

    def kill_all(self) -> int:
        """SIGKILL ComfyUI, its tree and everything that escaped it, until /proc shows none; then reap the
        adopted. Returns how many processes outside ComfyUI's tree were killed."""
        comfy_pid = self.comfy_pid
        with self._lock:
            own = set(tree(comfy_pid)) if comfy_pid is not None else set()
            outside: set[int] = set()
            for _ in range(KILL_ROUNDS):
                targets = [p for p in self.members(comfy_pid) if p != os.getpid()]
                if not targets:
                    break
                outside |= set(targets) - own
                for pid in targets:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                self._reap(outside)
            self._reap(outside)
            self.killed += len(outside)
            return len(outside)

    def _reap(self, killed: set[int]) -> None:
        """waitpid each adopted orphan, and each process this reaper killed that is the worker's child (a
        stray of ComfyUI's user left in the worker's session): by pid, never ComfyUI's (Popen's own)."""
        me = os.getpid()
        procs = processes()
        mine = [p for p in killed if p in procs and procs[p].ppid == me]
        for pid in {*adopted(procs, self.comfy_pid), *mine} - {self.comfy_pid}:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)

    def report(self, max_procs: int) -> dict[str, object]:
        """diagnose's `confinement.processes`: what keeps ComfyUI's processes from outliving it."""
        return {
            "subreaper": is_subreaper(),
            "user_kill": self.uid is not None,
            "max_procs": max_procs if (self.uid is not None or self.why_shared) and max_procs > 0 else None,
            "why_not": None
            if self.uid is not None
            else f"{self.why_shared}: only its tree and the orphans re-parented to the worker are killed"
            if self.why_shared
            else "ComfyUI runs as the worker's own user: only its tree and "
            "the orphans re-parented to the worker are killed, and no RLIMIT_NPROC is set",
            "killed_outside_tree": self.killed,
        }

    def start(self) -> Reaper:
        """Reap adopted orphans that end on their own, every REAP_S (a zombie holds a pid)."""
        threading.Thread(target=self._run, name="comfy-reaper", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(REAP_S):
            try:
                with self._lock:
                    procs = processes()
                    for pid in adopted(procs, self.comfy_pid):
                        if procs[pid].zombie:
                            with contextlib.suppress(ChildProcessError, OSError):
                                os.waitpid(pid, os.WNOHANG)
            except Exception:  # one bad round must not end the reaping: zombies would hold pids for good
                log.exception("reaping ComfyUI's adopted orphans failed")
