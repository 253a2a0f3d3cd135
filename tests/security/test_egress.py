"""Egress allowed on purpose (CONFINE_NET=<port>), against the real stack: ComfyUI may connect to that TCP
port and no other, and UDP stays open (name resolution needs it; README "Security"). The default, no
egress at all, is proven in test_confinement.py."""

from __future__ import annotations

import itertools
import os
import socket
from collections.abc import Iterator

import pytest

from handler import landlock
from tests.conftest import make_stack, runsync
from tools.localstack import LocalStack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="ComfyUI runs as another user only when the worker is root"),
    pytest.mark.skipif(landlock.abi_version()[0] < 4, reason="Landlock's TCP rules need ABI 4+"),
]
_nonce = itertools.count(1)


@pytest.fixture(scope="module")
def listener() -> Iterator[socket.socket]:
    """A plain TCP listener on a free local port: Landlock judges the port, not TLS or the host."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock


@pytest.fixture(scope="module")
def egress(tmp_path_factory: pytest.TempPathFactory, listener: socket.socket) -> Iterator[LocalStack]:
    stack = make_stack(
        tmp_path_factory.mktemp("egress"),
        ALLOW_UNSAFE_NODES="*",
        SELF_CHECK_AT_START="0",
        CONFINE_NET=str(listener.getsockname()[1]),
    )
    try:
        stack.start(wait=180)
        yield stack
    finally:
        stack.stop()


def probe(stack: LocalStack, op: str, arg: str) -> str:
    node = {"class_type": "RPTestProbe", "inputs": {"op": op, "arg": arg, "nonce": next(_nonce)}}
    out = runsync(stack, {"workflow": {"1": node}}, timeout=180)["output"]
    assert out.get("status") == "success", out
    return next(o["text"] for o in out["outputs"] if o["kind"] == "text")


def test_the_allowed_port_connects_and_udp_stays_open(egress, listener):
    port = listener.getsockname()[1]
    report = runsync(egress, {"mode": "diagnose"}, timeout=180)["output"]["confinement"]
    assert report["landlock"]["net"] == {"active": True, "bind": egress.comfy_port, "connect": [port], "why_not": None}
    assert report["seccomp"]["active"] is False and "UDP stays open" in report["seccomp"]["why_not"]
    assert probe(egress, "connect", f"127.0.0.1:{port}") == f"ok: 127.0.0.1:{port}"
    assert probe(egress, "connect", f"127.0.0.1:{egress.comfy_port}") == "error: EACCES"  # other ports stay closed
    assert probe(egress, "udp", "127.0.0.1:9") == "ok: 8"  # 8 bytes sent: DNS would work
