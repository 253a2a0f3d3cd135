"""ComfyUI holds no capability, whatever its uid; the worker's memory and /proc files stay its own.

Two mechanisms (README "Security"), both through prctl/capset (ctypes: python-prctl needs libcap's
headers at install time, for five calls):

- `make_undumpable()`, in the worker at its start: its /proc/<pid>/environ, mem, maps and fd then need
  CAP_SYS_PTRACE even for a process of the same uid (a ComfyUI that runs as root or as the worker's own
  user when COMFY_RUN_AS is empty or the user is missing). The worker still reads its own /proc/self
  (the kernel lets a process read its own entries). Undone by exec: ComfyUI itself stays dumpable, so
  the worker can read its memory figures.
- `drop_all(uid, gid)`, in ComfyUI's child between fork and exec: securebits (SECBIT_NOROOT and the
  others, locked: uid 0 gains nothing at exec), every capability out of the bounding set, the ambient set
  cleared, the user switch, then effective, permitted and inheritable cleared and no_new_privs (no
  setuid or file-capability binary gives any back). A root ComfyUI then can't override file modes
  (CAP_DAC_OVERRIDE), chown (CAP_CHOWN), chmod another's file (CAP_FOWNER), signal another user's
  process (CAP_KILL), trace (CAP_SYS_PTRACE), mount, load a module or open raw sockets. It is still uid
  0: it owns root's files (reads and chmods a root-owned 0600 file Landlock lets it reach) and may signal
  root's processes where Landlock's signal scope (ABI 6) is off. Keep COMFY_RUN_AS.

The parent can't know what the child kept (a non-root worker has no CAP_SETPCAP to drop the bounding
set): `status(pid)` asks the kernel afterwards, from /proc/<pid>/status (diagnose's
`confinement.capabilities`).
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any

_PR_SET_DUMPABLE, _PR_GET_DUMPABLE = 4, 3
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAP_VERSION_3 = 0x20080522

# include/uapi/linux/securebits.h: no privilege for uid 0 at exec, no keeping capabilities across a user
# switch, no ambient raise; each locked, so neither ComfyUI nor anything it starts can turn it back.
SECBIT_NOROOT, SECBIT_NOROOT_LOCKED = 1 << 0, 1 << 1
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE, SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 6, 1 << 7
SECUREBITS = (
    SECBIT_NOROOT
    | SECBIT_NOROOT_LOCKED
    | SECBIT_NO_SETUID_FIXUP_LOCKED
    | SECBIT_KEEP_CAPS_LOCKED
    | SECBIT_NO_CAP_AMBIENT_RAISE
    | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED
)

_CAP_SETS = {"CapInh": "inheritable", "CapPrm": "permitted", "CapEff": "effective", "CapBnd": "bounding"}
_CAP_SETS["CapAmb"] = "ambient"


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, arg: int = 0) -> int:
    return int(_libc.prctl(option, ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)))


def make_undumpable() -> bool:
    """The worker's /proc/<pid> files need CAP_SYS_PTRACE from now on, whoever asks. True when set."""
    return _prctl(_PR_SET_DUMPABLE, 0) == 0 and _prctl(_PR_GET_DUMPABLE) == 0


def dumpable() -> bool:
    """Whether this process's /proc/<pid> files are open to its own uid (diagnose's `worker_dumpable`)."""
    return _prctl(_PR_GET_DUMPABLE) != 0


def last_cap() -> int:
    """The highest capability this kernel knows (read in the parent: the child only drops)."""
    try:
        return int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    except (OSError, ValueError):
        return 63  # drops past the kernel's last one fail with EINVAL, and are ignored


def drop_all(uid: int | None, gid: int | None, top: int) -> None:  # pragma: no cover - runs in the child
    """Between fork and exec: leave with no capability, for good, as `uid`/`gid` (None: the worker's).
    The steps that need CAP_SETPCAP (securebits, the bounding set) are skipped by a worker without it:
    its child has nothing to drop there but the bounding set, which no_new_privs makes moot at exec."""
    _prctl(_PR_SET_SECUREBITS, SECUREBITS)  # EPERM without CAP_SETPCAP: nothing then can regain root's
    for cap in range(top + 1):
        if _prctl(_PR_CAPBSET_DROP, cap):
            break  # EPERM (no CAP_SETPCAP) or EINVAL (past the kernel's last)
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    if uid is not None and gid is not None:  # after the drops above (they need CAP_SETPCAP), before capset
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
    if _libc.capset(ctypes.byref(header), ctypes.byref(data)):
        raise OSError(ctypes.get_errno(), "capset: could not clear ComfyUI's capabilities")
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def status(pid: int | None) -> dict[str, Any]:
    """What the kernel says process `pid` holds: each capability set (hex, as /proc shows it), whether it
    holds none at all (`active`), and no_new_privs. Asked at report time, so it is the truth now."""
    if pid is None:
        return {"active": False, "why_not": "ComfyUI is not running"}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError as exc:
        return {"active": False, "why_not": f"could not read /proc/{pid}/status: {exc.strerror}"}
    fields = dict(line.split(":\t", 1) for line in lines if ":\t" in line)
    sets = {name: fields.get(key, "").strip() for key, name in _CAP_SETS.items()}
    held = sorted(name for name, value in sets.items() if value and int(value, 16))
    nnp = fields.get("NoNewPrivs", "").strip() == "1"
    # a bounding set left full (a worker without CAP_SETPCAP) grants nothing under no_new_privs
    holds = [name for name in held if name != "bounding" or not nnp]
    why = None
    if holds:
        why = f"ComfyUI holds capabilities in its {', '.join(holds)} set(s)"
    elif held:
        why = "its bounding set is the worker's (no CAP_SETPCAP to drop it); no_new_privs keeps exec from using it"
    return {"active": not holds, **sets, "no_new_privs": nnp, "why_not": why}
