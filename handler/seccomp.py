"""A seccomp filter that closes what Landlock's network rules leave open when ComfyUI may not connect out.

Landlock (ABI 4+) refuses TCP connections to ports CONFINE_NET does not list, but it has no rule for
UDP, raw or packet sockets, SCTP or MPTCP: code a job smuggled into ComfyUI (a pickle a pack node loads)
could still send datagrams anywhere, or reach whatever another socket family reaches. When
CONFINE_NET allows no port (the default), ComfyUI's preexec installs this filter after no_new_privs
(handler.privileges.drop_all), and the kernel then answers with EACCES (never a kill, so a node sees an
ordinary OSError). It is an allow-list: socket() succeeds only for

- AF_UNIX, any type (asyncio's self-pipe, Python's multiprocessing);
- AF_INET or AF_INET6 with type SOCK_STREAM (SOCK_NONBLOCK and SOCK_CLOEXEC masked) and protocol 0
  or IPPROTO_TCP: the TCP Landlock judges, not SCTP or MPTCP over a stream;
- AF_NETLINK with protocol NETLINK_ROUTE (glibc and psutil list interfaces through it; `program` says
  why that reaches nothing);

and socketpair() only for AF_UNIX. Everything else is refused: UDP, raw, AF_PACKET, AF_VSOCK (the
hypervisor's host), other netlink protocols, AF_ALG, AF_BLUETOOTH, AF_CAN, AF_RDS, AF_TIPC, and any
family a later kernel adds. Also refused: io_uring_setup (an io_uring can make sockets and connect
them without the socket system call this filter sees), and any system call of another architecture's
ABI (x86_64's i386 `int 0x80` and x32 calls), which would reach socket() under other numbers.

ComfyUI's own TCP listener stays. When CONFINE_NET allows a port, the filter is off and UDP stays open
too: name resolution needs it (README "Security").

Why a hand-built classic BPF program rather than libseccomp (pyseccomp): the program is about
30 instructions, fixed, and checked in a real child by the tests; libseccomp.so.2 is not guaranteed in
every base image the worker runs in, pyseccomp would be one more dependency, and libseccomp's
seccomp_load translates and allocates its program in the process that loads it (the child). Here
the program is built once in the parent (ctypes arrays) and the child makes one
prctl call on memory already allocated. The filter knows x86_64 and aarch64 (their audit
architectures and system call numbers, from the kernel's uapi headers); on any other architecture it
is skipped and `for_spawn`'s report says why.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

# include/uapi/linux/filter.h, bpf_common.h
_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_BPF_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_BPF_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_BPF_AND_K = 0x04 | 0x50 | 0x00  # BPF_ALU | BPF_AND | BPF_K
_BPF_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
# include/uapi/linux/seccomp.h
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2
# struct seccomp_data: nr (0), arch (4), instruction_pointer (8), args[6] (16 + 8 * i); the low word of
# each argument first on these little-endian architectures (the kernel reads socket()'s as int)
_NR, _ARCH, _ARG0, _ARG1, _ARG2 = 0, 4, 16, 24, 32

AF_UNIX = 1
AF_INET = 2
AF_INET6 = 10
AF_NETLINK = 16
NETLINK_ROUTE = 0
SOCK_STREAM, SOCK_NONBLOCK, SOCK_CLOEXEC = 1, 0o4000, 0o2000000  # the same on x86_64 and aarch64
IPPROTO_TCP = 6
X32_SYSCALL_BIT = 0x40000000
# (audit architecture, socket, socketpair, io_uring_setup): arch/x86/entry/syscalls/syscall_64.tbl and
# include/uapi/asm-generic/unistd.h (aarch64); AUDIT_ARCH_* from include/uapi/linux/audit.h
ARCHES: dict[str, tuple[int, int, int, int]] = {
    "x86_64": (0xC000003E, 41, 53, 425),
    "aarch64": (0xC00000B7, 198, 199, 425),
}
REFUSED = errno.EACCES


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


_libc = ctypes.CDLL(None, use_errno=True)


def _assemble(ops: list[tuple[Any, ...]]) -> list[tuple[int, int, int, int]]:
    """Resolve label jumps: ("label", name) marks the next instruction; a jt/jf given as a name becomes
    the relative offset (from the instruction after the jump) the kernel expects."""
    where: dict[str, int] = {}
    body: list[tuple[Any, ...]] = []
    for op in ops:
        if op[0] == "label":
            where[op[1]] = len(body)
        else:
            body.append(op)
    out = []
    for i, (code, jt, jf, k) in enumerate(body):
        jt, jf = (where[j] - i - 1 if isinstance(j, str) else j for j in (jt, jf))
        out.append((code, jt, jf, k))
    return out


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter's instructions (code, jt, jf, k) for `machine` (platform.machine()); KeyError elsewhere.
    An allow-list for the two calls that make sockets; every other system call passes."""
    arch, nr_socket, nr_socketpair, nr_io_uring = ARCHES[machine]
    ld, jeq = _BPF_LD_W_ABS, _BPF_JEQ_K
    ops: list[tuple[Any, ...]] = [(ld, 0, 0, _ARCH), (jeq, 0, "deny", arch), (ld, 0, 0, _NR)]
    if machine == "x86_64":  # x32's numbers share the native audit architecture, with this bit set
        ops += [(_BPF_JGE_K, "deny", 0, X32_SYSCALL_BIT)]
    ops += [
        (jeq, "deny", 0, nr_io_uring),
        (jeq, "socket", 0, nr_socket),
        (jeq, "socketpair", "allow", nr_socketpair),  # every other system call: allowed
        ("label", "socket"),  # socket(family, type, protocol)
        (ld, 0, 0, _ARG0),
        (jeq, "allow", 0, AF_UNIX),  # any type: asyncio's self-pipe, multiprocessing, logging
        (jeq, "inet", 0, AF_INET),
        (jeq, "inet", 0, AF_INET6),
        (jeq, "netlink", "deny", AF_NETLINK),  # every other family: AF_VSOCK, AF_PACKET, AF_ALG, ...
        ("label", "inet"),
        (ld, 0, 0, _ARG1),
        (_BPF_AND_K, 0, 0, 0xFFFFFFFF & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)),
        (jeq, 0, "deny", SOCK_STREAM),  # UDP, raw, SCTP's SOCK_SEQPACKET, ...
        (ld, 0, 0, _ARG2),
        (jeq, "allow", 0, 0),
        (jeq, "allow", "deny", IPPROTO_TCP),  # not IPPROTO_SCTP or IPPROTO_MPTCP: not Landlock's TCP
        ("label", "netlink"),
        # NETLINK_ROUTE only: glibc's getaddrinfo (AI_ADDRCONFIG), getifaddrs and if_nameindex and psutil's
        # net_if_addrs read interfaces through it. Its peer is the kernel of this network namespace:
        # nothing leaves the machine, and without CAP_NET_ADMIN (ComfyUI has no capability) it can only
        # read links, addresses and routes, neither change them nor message another process
        # (NETLINK_ROUTE has no NL_CFG_F_NONROOT_SEND). Every other netlink protocol (audit, uevent,
        # generic's families, ...) is refused.
        (ld, 0, 0, _ARG2),
        (jeq, "allow", "deny", NETLINK_ROUTE),
        ("label", "socketpair"),  # socketpair(family, ...): only AF_UNIX makes pairs worth keeping
        (ld, 0, 0, _ARG0),
        (jeq, "allow", "deny", AF_UNIX),
        ("label", "allow"),
        (_BPF_RET_K, 0, 0, _RET_ALLOW),
        ("label", "deny"),
        (_BPF_RET_K, 0, 0, _RET_ERRNO | REFUSED),
    ]
    return _assemble(ops)


@dataclass
class Filter:
    """The filter one ComfyUI spawn installs (`program` built in the parent), or why it has none."""

    why_not: str | None = None
    fprog: _SockFprog | None = None
    _keep: Any = None  # the instruction array the fprog points into
    _ref: Any = None  # byref(fprog), made in the parent: the child allocates as little as it can

    @classmethod
    def build(cls, machine: str | None = None) -> Filter:
        machine = machine or platform.machine()
        if machine not in ARCHES:
            return cls(
                f"this filter knows the system call numbers of x86_64 and aarch64 only, not {machine}: "
                "UDP is not closed here"
            )
        ops = program(machine)
        array = (_SockFilter * len(ops))(*(_SockFilter(*op) for op in ops))
        fprog = _SockFprog(len(ops), ctypes.cast(array, ctypes.POINTER(_SockFilter)))
        return cls(None, fprog, array, ctypes.byref(fprog))

    def install(self) -> None:  # pragma: no cover - runs in the child, after no_new_privs
        """Enter the filter (kept across exec, inherited by every process ComfyUI starts, never lifted)."""
        if self.fprog is not None and _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._ref, 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP): ComfyUI's socket filter was refused")


@cache
def probe() -> str | None:
    """None when this kernel accepts the filter and it refuses a UDP socket, else why not. Asked once, in
    a forked child (the filter can't be lifted from the process that enters it), so a kernel or container
    profile that refuses seccomp filters is reported, never a ComfyUI that fails to start."""
    flt = Filter.build()
    if flt.fprog is None:
        return flt.why_not
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    if "Seccomp:" not in status:
        return f"the kernel ({platform.release()}) has no seccomp (CONFIG_SECCOMP)"
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            if _libc.prctl(38, 1, 0, 0, 0):  # PR_SET_NO_NEW_PRIVS: required for an unprivileged filter
                code = 100 + ctypes.get_errno()
            else:
                flt.install()
                try:
                    import socket

                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).close()
                    code = 99  # installed, yet UDP was allowed
                except OSError as exc:
                    code = 0 if exc.errno == REFUSED else 98
        except OSError as exc:
            code = 100 + (exc.errno or 0)
        os.write(write, bytes([min(code, 255)]))
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        answer = fh.read(1)
    os.waitpid(pid, 0)
    code = answer[0] if answer else 255
    if code == 0:
        return None
    if code >= 100:
        return f"the kernel refused the seccomp filter: {os.strerror(code - 100)}"
    return "the seccomp filter installed but did not refuse a UDP socket"


def for_spawn(no_egress: bool, why_egress: str) -> tuple[Filter | None, dict[str, Any]]:
    """The filter ComfyUI's preexec installs (None: none) and diagnose's `confinement.seccomp`."""
    if not no_egress:
        return None, {"active": False, "why_not": why_egress, "refuses": []}
    why = probe()
    if why is not None:
        return None, {"active": False, "why_not": why, "refuses": []}
    refuses = [
        "socket(AF_INET/AF_INET6) other than TCP streams",
        "socket(AF_NETLINK) other than NETLINK_ROUTE",
        "socket() of every other family (AF_PACKET, AF_VSOCK, AF_ALG, ...)",
        "socketpair() other than AF_UNIX",
        "io_uring_setup",
    ]
    keeps = ["AF_UNIX", "TCP streams (judged by Landlock's port rules)", "AF_NETLINK NETLINK_ROUTE (read-only)"]
    return Filter.build(), {"active": True, "why_not": None, "refuses": refuses, "keeps": keeps, "errno": "EACCES"}
