"""Whose socket listens on ComfyUI's port, asked of the kernel (README "Security").

An HTTP 200 on COMFY_PORT proves only that something answers there: a process a job left behind can
bind the port while ComfyUI restarts, answer /system_stats, and receive every later prompt. So the
supervisor declares ComfyUI ready only when every LISTEN socket on the port (/proc/net/tcp and tcp6)
is ComfyUI's: one of the spawned tree's open files (/proc/<pid>/fd -> socket:[inode]), or a socket of
ComfyUI's own user (the table's uid column). The second is what a container allows: reading another
user's /proc/<pid>/fd needs CAP_SYS_PTRACE, which Docker's default set (RunPod's) lacks; and it is as
strong, because the reaper kills every process of that user before each spawn, so after the spawn
only ComfyUI's tree runs as it. Another owner is a start failure (COMFY_PORT_IN_USE) naming that process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def listening_sockets(port: int) -> dict[int, int]:
    """{inode: owner uid} of the TCP sockets listening on `port` (any address, IPv4 and IPv6)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found[int(fields[9])] = int(fields[7])
    return found


def listening_inodes(port: int) -> set[int]:
    """The inodes of the TCP sockets listening on `port`."""
    return set(listening_sockets(port))


def socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets a process holds open."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    found.add(int(link[8:-1]))
    return found


@dataclass(frozen=True, slots=True)
class Holder:
    """A process holding a listening socket (None fields: not found, e.g. another namespace's)."""

    pid: int | None
    user: str | None
    command: str

    def describe(self) -> str:
        if self.pid is None:
            who = f"of user {self.user} " if self.user else ""
            return f"a process {who}the worker can't see (its /proc entry is closed to it, or it exited)"
        return f"process {self.pid} (user {self.user}: {self.command})"


def holder(inode: int) -> Holder:
    """Which process holds a socket: every /proc/<pid>/fd asked."""
    for name in os.listdir("/proc"):
        if name.isdigit() and inode in socket_inodes(int(name)):
            pid = int(name)
            command, user = "?", None
            with contextlib.suppress(OSError):
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                uid = os.stat(f"/proc/{pid}").st_uid
                user = _user_name(uid)
            return Holder(pid, user, command.strip()[:200])
    return Holder(None, None, "")


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def foreign_listener(port: int, own: list[int], own_uid: int | None = None) -> Holder | None:
    """The first process other than `own` (ComfyUI's tree) listening on `port`; None when every listener
    there is ComfyUI's own (or none listens yet). `own_uid`: ComfyUI's own user, when it has one the
    worker doesn't share (its sockets are ComfyUI's even where its /proc/<pid>/fd can't be read)."""
    mine = set().union(*(socket_inodes(pid) for pid in own)) if own else set()
    for inode, uid in sorted(listening_sockets(port).items()):
        if inode in mine or (own_uid is not None and uid == own_uid and uid != os.geteuid()):
            continue
        found = holder(inode)
        return found if found.pid is not None else Holder(None, _user_name(uid), "")
    return None
