"""Landlock, the kernel's unprivileged file-system sandbox, through its three system calls (ctypes).

Why not the `landlock` package on PyPI: its only releases are pre-releases (1.0.0.dev5) and it covers
file-system rules only, not the ABI 6 scopes (signals, abstract UNIX sockets) used here. The kernel
interface is small and stable (include/uapi/linux/landlock.h): a ruleset fd, one rule per directory
or file, then landlock_restrict_self in the child before exec — the domain is kept across exec and
inherited by every process ComfyUI starts, and can never be lifted.

The ruleset is built in the worker (it opens the paths, so a missing one is skipped there, not in the
child); the child only calls `restrict_self(fd)` between fork and exec (handler.confine).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import platform
from collections.abc import Iterable
from pathlib import Path

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

# File-system access rights (and the ABI that introduced them).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4

FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only ones a file rule may hold
READ = EXECUTE | READ_FILE | READ_DIR
# No MAKE_SYM: a symbolic link in the output directory could point the worker, which reads outputs as
# root, at any file (the worker also resolves every output's path; this keeps links from being made).
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | REFER | TRUNCATE
DEVICE = READ_FILE | WRITE_FILE | IOCTL_DEV  # /dev/null, /dev/nvidia*: read, write, ioctl


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _NetPort(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is __attribute__((packed))
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> tuple[int, str | None]:
    """(Landlock ABI version, None), or (0, why it is not available)."""
    if platform.system() != "Linux":
        return 0, f"Landlock is Linux-only (this is {platform.system()})"
    version = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    if version >= 0:
        return int(version), None
    err = ctypes.get_errno()
    if err == errno.ENOSYS:
        return 0, f"the kernel ({platform.release()}) has no Landlock system calls (Linux 5.13+ built with it)"
    if err == errno.EOPNOTSUPP:
        return 0, f"Landlock is built into the kernel ({platform.release()}) but not enabled (boot option lsm=)"
    return 0, f"Landlock is unavailable: {os.strerror(err)}"


def handled_rights(abi: int) -> int:
    """Every file-system right this ABI knows: all are denied unless a rule allows them."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def build_ruleset(
    abi: int, rules: Iterable[tuple[Path, int]], net: tuple[int, Iterable[int]] | None = None
) -> tuple[int, list[str]]:
    """A ruleset fd allowing `rules` (path, rights) and nothing else, plus the paths that were skipped
    (missing). Rights the ABI doesn't know are dropped; a file's rule keeps only file rights.
    `net` (ABI 4+): (the one TCP port it may bind, the TCP ports it may connect to); None: no network rules."""
    handled = handled_rights(abi)
    net_handled = BIND_TCP | CONNECT_TCP if net is not None and abi >= 4 else 0
    attr = _RulesetAttr(handled, net_handled, (SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else 16 if abi >= 4 else 8
    fd = _libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
    skipped: list[str] = []
    try:
        for path, rights in rules:
            try:
                path_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                skipped.append(str(path))
                continue
            try:
                allowed = rights & handled
                if not os.path.isdir(f"/proc/self/fd/{path_fd}"):
                    allowed &= FILE_RIGHTS
                rule = _PathBeneath(allowed, path_fd)
                if _libc.syscall(
                    _SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), 0
                ):
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
            finally:
                os.close(path_fd)
        if net_handled and net is not None:
            bind, connect = net
            for port, access in [(bind, BIND_TCP), *((p, CONNECT_TCP) for p in connect)]:
                port_rule = _NetPort(access, port)
                if _libc.syscall(
                    _SYS_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_NET_PORT), ctypes.byref(port_rule), 0
                ):
                    err = ctypes.get_errno()
                    raise OSError(err, f"landlock_add_rule(port {port}): {os.strerror(err)}")
    except BaseException:
        os.close(fd)
        raise
    return fd, skipped


def restrict_self(ruleset_fd: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """Enter the ruleset's domain (no_new_privs first: required without CAP_SYS_ADMIN, and right anyway)."""
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    if _libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)):
        raise OSError(ctypes.get_errno(), "landlock_restrict_self")


def close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
