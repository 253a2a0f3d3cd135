"""No egress by default: the settings, and handler.seccomp's filter in a real child process (the kernel
answers each socket call; nothing here imitates it)."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from handler import landlock, seccomp
from handler.config import Settings
from handler.confine import prepare

ABI, _WHY = landlock.abi_version()
WHY_NOT = seccomp.probe()
needs_filter = pytest.mark.skipif(WHY_NOT is not None, reason=f"no seccomp filter here: {WHY_NOT}")

# Each attempt prints "<name> ok" or "<name> <errno name>".
_CHILD = r"""
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def attempt(name, make):
    try:
        s = make()
        s.close()
        print(name, "ok")
    except OSError as exc:
        print(name, errno.errorcode.get(exc.errno, exc.errno))
attempt("udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
attempt("udp6", lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM))
attempt("udp_nonblock", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK))
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet", lambda: socket.socket(17, socket.SOCK_RAW, 0))
attempt("sctp_stream", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132))
attempt("tcp", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM))
attempt("tcp_nonblock", lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK))
attempt("tcp6_proto", lambda: socket.socket(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP))
attempt("unix_dgram", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
attempt("unix_stream", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
attempt("unix_seqpacket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC))
attempt("unix_pair", lambda: socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)[0])
attempt("vsock", lambda: socket.socket(40, socket.SOCK_STREAM, 0))  # AF_VSOCK
attempt("alg", lambda: socket.socket(38, socket.SOCK_SEQPACKET, 0))  # AF_ALG
attempt("tipc", lambda: socket.socket(30, socket.SOCK_RDM, 0))  # AF_TIPC
attempt("netlink_route", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, 0))
attempt("netlink_audit", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9))  # NETLINK_AUDIT
attempt("netlink_uevent", lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15))  # KOBJECT_UEVENT
attempt("inet_pair", lambda: socket.socketpair(socket.AF_INET, socket.SOCK_STREAM)[0])
attempt("tipc_pair", lambda: socket.socketpair(30, socket.SOCK_RDM)[0])
attempt("if_nameindex", lambda: (socket.if_nameindex(), socket.socket(socket.AF_UNIX))[1])  # glibc: NETLINK_ROUTE
params = (ctypes.c_char * 120)()
fd = libc.syscall(425, 8, params)  # io_uring_setup(8 entries): the same number on x86_64 and aarch64
print("io_uring", "ok" if fd >= 0 else errno.errorcode.get(ctypes.get_errno()))
"""


def _run_child(preexec: object) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-I", "-c", _CHILD], capture_output=True, text=True, preexec_fn=preexec, check=True
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def _no_new_privs_then(flt: seccomp.Filter) -> object:
    def preexec() -> None:
        import ctypes

        assert ctypes.CDLL(None).prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS, as drop_all sets it
        flt.install()

    return preexec


@needs_filter
def test_the_filter_allows_only_unix_tcp_streams_and_route_netlink():
    """An allow-list: every family, netlink protocol and socketpair family not named is refused."""
    without = _run_child(None)
    # the machine allows these without the filter (the ones a module may be missing for are checked below)
    for name in ("udp", "unix_dgram", "netlink_audit", "netlink_uevent", "if_nameindex"):
        assert without[name] == "ok", (name, without)
    got = _run_child(_no_new_privs_then(seccomp.Filter.build()))
    refused = ("udp", "udp6", "udp_nonblock", "raw", "packet", "sctp_stream", "io_uring")
    refused += ("vsock", "alg", "tipc", "netlink_audit", "netlink_uevent", "inet_pair", "tipc_pair")
    for name in refused:
        assert got[name] == "EACCES", (name, got)  # refused by the filter (EACCES), not by a capability (EPERM)
    allowed = ("tcp", "tcp_nonblock", "tcp6_proto", "unix_dgram", "unix_stream", "unix_seqpacket", "unix_pair")
    for name in (*allowed, "netlink_route", "if_nameindex"):
        assert got[name] == "ok", (name, got)


def test_the_program_is_built_for_the_two_known_architectures_and_skipped_elsewhere():
    for machine, (arch, _socket, _pair, _uring) in seccomp.ARCHES.items():
        ops = seccomp.program(machine)
        assert ops[1][3] == arch and ops[-2:] == [(0x06, 0, 0, 0x7FFF0000), (0x06, 0, 0, 0x50000 | seccomp.REFUSED)]
        for i, (code, jt, jf, _k) in enumerate(ops):  # every jump lands inside the program
            assert code & 0x07 != 0x05 or (i + 1 + max(jt, jf) < len(ops)), (machine, i)
        assert seccomp.Filter.build(machine).fprog is not None
    other = seccomp.Filter.build("riscv64")
    assert other.fprog is None and "riscv64" in str(other.why_not)
    assert platform.machine() not in seccomp.ARCHES or WHY_NOT is None or "kernel" in WHY_NOT


def test_no_outbound_connection_unless_asked():
    assert Settings.from_env({}).confine_net == ()  # the default: none
    assert Settings.from_env({"CONFINE_NET": ""}).confine_net == ()
    assert Settings.from_env({"CONFINE_NET": "443"}).confine_net == (443,)
    assert Settings.from_env({"CONFINE_NET": "443, 8443,x"}).confine_net == (443, 8443)
    assert Settings.from_env({"CONFINE_NET": "*"}).confine_net is None
    assert Settings.from_env({"COMFY_API_NODES": "1"}).confine_net == (443,)  # Comfy.org's API over HTTPS
    assert Settings.from_env({"COMFY_API_NODES": "1", "CONFINE_NET": ""}).confine_net == ()


def _report(tmp_path: Path, **env: str) -> dict:
    settings = Settings.from_env(
        {"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable, "COMFY_RUN_AS": "", **env}
    )
    launch = prepare(settings, {"PATH": "/usr/bin"})
    try:
        return launch.confinement.report()
    finally:
        launch.close()


@needs_filter
def test_diagnose_says_which_network_confinement_is_active_and_why_not(tmp_path: Path):
    default = _report(tmp_path)
    assert default["seccomp"]["active"] and default["seccomp"]["why_not"] is None
    assert "io_uring_setup" in default["seccomp"]["refuses"]
    if ABI >= 4:
        assert default["landlock"]["net"] == {"active": True, "bind": 8188, "connect": [], "why_not": None}
    https = _report(tmp_path, CONFINE_NET="443")
    assert not https["seccomp"]["active"] and "UDP stays open" in https["seccomp"]["why_not"]
    if ABI >= 4:
        assert https["landlock"]["net"]["connect"] == [443]
    anything = _report(tmp_path, CONFINE_NET="*")
    assert anything["landlock"]["net"]["active"] is False and "CONFINE_NET=*" in anything["landlock"]["net"]["why_not"]
    assert "CONFINE_NET=*" in anything["seccomp"]["why_not"]


@needs_filter
@pytest.mark.skipif(ABI < 4, reason=f"Landlock ABI {ABI} has no TCP rules (ABI 4+)")
def test_a_spawn_with_the_default_settings_refuses_udp_and_tcp_connections(tmp_path: Path):
    """prepare()'s own preexec (capabilities, Landlock, the filter) around a real child."""
    settings = Settings.from_env(
        {"COMFY_DIR": str(tmp_path / "comfy"), "COMFY_PYTHON": sys.executable, "COMFY_RUN_AS": "", "CONFINE_FS": "1"}
    )
    launch = prepare(settings, {"PATH": "/usr/bin"})
    code = (
        "import socket, errno\n"
        "def t(f):\n"
        "    try: f(); return 'ok'\n"
        "    except OSError as e: return errno.errorcode.get(e.errno, str(e.errno))\n"
        "print(t(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)),"
        " t(lambda: socket.create_connection(('127.0.0.1', 443), timeout=5)))\n"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True, **launch.popen_kwargs()
        ).stdout.split()
    finally:
        launch.close()
    assert out == ["EACCES", "EACCES"]  # UDP: the filter; TCP to 443: Landlock (no port allowed)
