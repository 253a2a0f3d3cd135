"""A root worker whose ComfyUI can't have its own user (COMFY_RUN_AS=), with Landlock and the memory cap off:
the weakest deployment. ComfyUI then runs as root, but with no capability at all, and the worker is not
dumpable; what still holds is proven against the real stack with the node policy off, and diagnose warns
of each part that is off (CONFINEMENT_USER_OFF, CONFINEMENT_LANDLOCK_OFF, CONFINEMENT_MEMORY_UNCAPPED)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.conftest import make_stack, runsync
from tools.localstack import LocalStack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="ComfyUI runs as root only when the worker is root"),
]

OTHER_UID = 4242  # a user no process of the stack runs as
_nonce = itertools.count(1)


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = make_stack(
        tmp_path_factory.mktemp("rooted"),
        COMFY_RUN_AS="",
        CONFINE_FS="0",
        COMFY_MEMORY_MAX_MB="0",
        ALLOW_UNSAFE_NODES="*",
        SELF_CHECK_AT_START="0",
        DATABASE_URL="postgres://app:PROBE-root-db-password-71c2@db/app",
    )
    # a model copied onto the volume by another user, 0600: the root worker lists it, a root ComfyUI
    # without CAP_DAC_OVERRIDE can't open it
    model = stack.volume_dir / "models" / "loras" / "rp_others_lora.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"lora")
    model.chmod(0o600)
    os.chown(model, OTHER_UID, OTHER_UID)
    try:
        stack.start(wait=180)
        yield stack
    finally:
        stack.stop()


def probe(stack: LocalStack, op: str, arg: str = "") -> str:
    node = {"class_type": "RPTestProbe", "inputs": {"op": op, "arg": arg, "nonce": next(_nonce)}}
    envelope = runsync(stack, {"workflow": {"1": node}}, timeout=180)
    out = json.loads(envelope["error"]) if isinstance(envelope.get("error"), str) else envelope["output"]
    assert out.get("status") == "success", out
    return next(o["text"] for o in out["outputs"] if o["kind"] == "text")


def test_diagnose_warns_of_each_part_that_is_off_and_says_comfyui_holds_no_capability(rooted):
    report = runsync(rooted, {"mode": "diagnose"}, timeout=180)["output"]
    found = {f["code"]: f for f in report["findings"] if f["code"].startswith("CONFINEMENT_")}
    assert set(found) == {"CONFINEMENT_USER_OFF", "CONFINEMENT_LANDLOCK_OFF", "CONFINEMENT_MEMORY_UNCAPPED"}
    assert all(f["severity"] == "warning" and f["fix"] for f in found.values())
    assert "runs as root (disabled by COMFY_RUN_AS)" in found["CONFINEMENT_USER_OFF"]["message"]
    assert "disabled by CONFINE_FS=0" in found["CONFINEMENT_LANDLOCK_OFF"]["message"]
    assert "COMFY_MEMORY_MAX_MB=0" in found["CONFINEMENT_MEMORY_UNCAPPED"]["message"]
    model = str(rooted.volume_dir / "models" / "loras" / "rp_others_lora.safetensors")
    unreadable = [f for f in report["findings"] if f["code"] == "MODEL_FILE_UNREADABLE"]
    assert [f["path"] for f in unreadable] == [model], report["findings"]
    assert "user 'root' (uid 0)" in unreadable[0]["message"]
    assert probe(rooted, "read", model) == "error: EACCES"  # what diagnose said, ComfyUI's process meets
    caps = report["confinement"]["capabilities"]
    assert caps["active"] and caps["no_new_privs"] and caps["why_not"] is None, caps
    for name in ("effective", "permitted", "inheritable", "bounding", "ambient"):
        assert int(caps[name], 16) == 0, caps
    assert caps["worker_dumpable"] is False
    # what the node itself sees: uid 0, every set empty, no_new_privs
    assert probe(rooted, "uid") == "ok: 0"
    assert probe(rooted, "caps") == "ok: " + " ".join(["0000000000000000"] * 5 + ["1"])


def test_a_root_comfyui_without_landlock_cant_read_the_workers_environment(rooted):
    worker, entrypoint = rooted.worker_pid(), rooted.pid()
    assert worker is not None and entrypoint is not None
    # the worker: not dumpable (needs CAP_SYS_PTRACE); the entrypoint holds capabilities ComfyUI lacks
    assert probe(rooted, "read", f"/proc/{worker}/environ") == "error: EACCES"
    assert probe(rooted, "read", f"/proc/{entrypoint}/environ") == "error: EACCES"
    assert probe(rooted, "env", "DATABASE_URL") == "ok: <unset>"


def test_a_root_comfyui_cant_override_file_modes_chown_chmod_or_signal_another_user(rooted):
    other = rooted.run_dir / "someone-elses.txt"  # 0600, another user's: root with CAP_DAC_OVERRIDE reads it
    other.write_text("not ComfyUI's")
    other.chmod(0o600)
    os.chown(other, OTHER_UID, OTHER_UID)
    assert probe(rooted, "read", str(other)) == "error: EACCES"
    assert probe(rooted, "chmod", f"644:{other}") == "error: EPERM"
    closed = rooted.run_dir / "someone-elses-dir"  # 0755, another user's: no file planted in it
    closed.mkdir(mode=0o755)
    os.chown(closed, OTHER_UID, OTHER_UID)
    assert probe(rooted, "write", str(closed / "planted")) == "error: EACCES"
    own = rooted.comfy_dir / "output" / "chown-me.txt"
    own.write_text("x")
    assert probe(rooted, "chown", f"{OTHER_UID}:{own}") == "error: EPERM"
    assert os.stat(own).st_uid == 0
    sleeper = subprocess.Popen(["sleep", "300"], user=OTHER_UID, group=OTHER_UID, extra_groups=[])
    try:
        assert probe(rooted, "kill", str(sleeper.pid)) == "error: EPERM"
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait(30)
    # what the README says still holds for uid 0: root's own 0600 files are its own (keep COMFY_RUN_AS)
    mine = rooted.run_dir / "roots-own.txt"
    mine.write_text("root's")
    mine.chmod(0o600)
    assert probe(rooted, "read", str(mine)) == 'ok: b"root\'s"'
    worker = rooted.worker_pid()  # and without Landlock's signal scope, root's processes are its uid's
    assert probe(rooted, "kill", str(worker)) == f"ok: {worker}"  # signal 0: asks only whether it may


def test_a_root_comfyui_without_capabilities_still_runs_jobs(rooted):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "rooted"}},
    }
    out = runsync(rooted, {"workflow": workflow}, timeout=180)["output"]
    assert out.get("status") == "success", out
