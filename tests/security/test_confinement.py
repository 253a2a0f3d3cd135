"""The kernel layer proven on its own, against the real stack with the node policy turned off.

ALLOW_UNSAFE_NODES=* and a node no list knows (rp_test_nodes' RPTestProbe: a hostile pack would do the
same) try to read, write and stay: the user ComfyUI runs as and Landlock stop the reads and writes, the
supervisor stops a prompt that ignores the interrupt, the memory cap and the disk budget stop what the
workflow's values never showed; the next job succeeds every time. The stack also runs ISOLATE_JOBS=1.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from handler import landlock, memcap
from tests.conftest import make_stack, runsync
from tools.localstack import LocalStack

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(os.geteuid() != 0, reason="ComfyUI runs as another user only when the worker is root"),
    pytest.mark.skipif(landlock.abi_version()[0] == 0, reason=f"no Landlock here: {landlock.abi_version()[1]}"),
]

DB_URL = "postgres://app:PROBE-db-url-password-4e1f@db.internal/app"
MEMORY_CAP_MB = 1500
# long enough for a busy machine to have started the runaway prompt: one still queued is only dequeued
RUNAWAY_DEADLINE_S = 10
_nonce = itertools.count(1)


@pytest.fixture(scope="module")
def confined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = make_stack(
        tmp_path_factory.mktemp("confined"),
        ("RES4LYF",),  # a real pack that rewrites its own config file at every start
        ALLOW_UNSAFE_NODES="*",
        DATABASE_URL=DB_URL,
        STOP_GRACE_S="5",  # an interruptible prompt stops well within it, even on a loaded machine
        JOB_DISK_MB="40",
        MAX_FILE_MB="30",
        COMFY_MEMORY_MAX_MB=str(MEMORY_CAP_MB),
        ISOLATE_JOBS="1",
        SELF_CHECK_AT_START="0",
        CONFINE_WRITE="",  # as in the image: ComfyUI only reads its input directory
        CONFINE_READ="",  # and nothing of the stack's run directory but its own folders
    )
    # a model on the volume, there before ComfyUI starts as a mounted volume's are
    model = stack.volume_dir / "models" / "loras" / "rp_volume_lora.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"lora")
    # a data file a pack keeps in its own folder
    (stack.comfy_dir / "custom_nodes" / "rp_test_nodes" / "state.json").write_text("{}")
    try:
        stack.start(wait=180)
        yield stack
    finally:
        stack.stop()


def run(stack: LocalStack, workflow: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The job's output, or its error (decoded)."""
    envelope = runsync(stack, {"workflow": workflow, **extra}, timeout=180)
    if isinstance(envelope.get("error"), str):
        return json.loads(envelope["error"])
    return envelope["output"]


def probe(stack: LocalStack, op: str, arg: str = "", **extra: Any) -> str:
    node = {"class_type": "RPTestProbe", "inputs": {"op": op, "arg": arg, "nonce": next(_nonce)}}
    out = run(stack, {"1": node}, **extra)
    assert out.get("status") == "success", out
    return next(o["text"] for o in out["outputs"] if o["kind"] == "text")


def next_job_succeeds(stack: LocalStack) -> None:
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 7}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "after"}},
    }
    out = run(stack, workflow)
    assert out.get("status") == "success", out


def test_diagnose_and_test_say_what_confines_comfyui(confined):
    diagnosed = runsync(confined, {"mode": "diagnose"}, timeout=180)["output"]
    report = diagnosed["confinement"]
    assert not [f for f in diagnosed["findings"] if f["code"].startswith("CONFINEMENT_")]  # nothing is off
    assert report["capabilities"]["active"] and report["capabilities"]["worker_dumpable"] is False
    assert report["user"]["active"] and report["user"]["name"] == "comfyui" and report["user"]["uid"] != 0
    assert report["landlock"]["active"] and report["landlock"]["abi"] == landlock.abi_version()[0]
    assert str(confined.comfy_dir / "output") in report["landlock"]["write"]
    memory = report["memory"]
    assert memory["active"] and memory["max_mb"] == MEMORY_CAP_MB
    # the mechanism is the machine's answer: a delegated cgroup v2, else RLIMIT_DATA without a GPU
    cgroup_dir, cgroup_why_not = memcap.own_cgroup()
    expected = "cgroup" if cgroup_dir else "watchdog" if memcap.gpu_devices() else "rlimit"
    assert memory["mechanism"] == expected, memory
    assert memory["cgroup"]["active"] == (cgroup_dir is not None)
    assert memory["cgroup"]["why_not"] == cgroup_why_not
    if expected == "rlimit":
        assert memory["rlimit"] == {"active": True, "name": "RLIMIT_DATA", "limit_mb": MEMORY_CAP_MB, "why_not": None}
    # no egress by default: no TCP port to connect to, and UDP, raw sockets and io_uring closed (handler.seccomp)
    assert report["landlock"]["net"] == {"active": True, "bind": confined.comfy_port, "connect": [], "why_not": None}
    assert report["seccomp"]["active"] and report["seccomp"]["errno"] == "EACCES", report["seccomp"]
    assert report["logs"] == {"by": "prompt", "why_not": None}  # handler.comfy_boot tags ComfyUI's lines
    # two Landlock phases: packs imported with their folders writable, then comfy_boot closed them
    phases = report["landlock"]["phases"]
    assert phases["start"] == {"active": True, "why_not": None}
    assert phases["serve"]["active"] and phases["serve"]["at"] == "nodes loaded", phases
    assert phases["serve"]["why_not"] is None and isinstance(phases["serve"]["start_threads"], list)
    line = runsync(confined, {"mode": "test"})["output"]["confinement"]
    abi = landlock.abi_version()[0]
    assert line == f"user comfyui, landlock ABI {abi}, memory {MEMORY_CAP_MB} MB ({expected})"
    assert probe(confined, "uid") == f"ok: {report['user']['uid']}"


def test_reads_outside_the_allowed_directories_fail_at_the_kernel(confined):
    worker = confined.worker_pid()
    assert worker is not None
    # what people keep on a network volume beside the models: readable by any user, not by ComfyUI
    planted = [confined.volume_dir / ".env", confined.volume_dir / "huggingface-cache" / "token"]
    for secret in planted:
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text("HF_TOKEN=hf_planted\n")
        secret.chmod(0o644)
    for path in (
        f"/proc/{worker}/environ",  # the worker's secrets
        str(confined.log_file),  # the worker's log
        str(confined.run_dir / "stack.pid"),
        "/etc/hostname",
        "/etc/shadow",
        str(__file__),  # the repository
        "/root/.bashrc",
        *map(str, planted),
    ):
        assert probe(confined, "read", path) in ("error: EACCES", "error: ENOENT"), path
    assert probe(confined, "read", f"/proc/{worker}/environ") == "error: EACCES"
    assert probe(confined, "list", str(confined.run_dir)) == "error: EACCES"
    # what ComfyUI needs stays readable: its models' folder, its own input
    assert probe(confined, "list", str(confined.comfy_dir / "input")).startswith("ok")
    assert probe(confined, "read", "/etc/passwd").startswith("ok")
    # of /sys, what torch and CUDA read (SYS_READ), not the firmware's tables or the kernel's security files
    assert probe(confined, "read", "/sys/devices/system/cpu/online").startswith("ok")
    assert probe(confined, "list", "/sys/firmware") == "error: EACCES"
    assert probe(confined, "list", "/sys/kernel") == "error: EACCES"
    assert (
        probe(confined, "read", str(confined.volume_dir / "models/loras/rp_volume_lora.safetensors")) == "ok: b'lora'"
    )
    for secret in planted:  # EACCES, not ENOENT: the kernel refused a file that is there
        assert probe(confined, "read", str(secret)) == "error: EACCES"


def test_writes_outside_the_allowed_directories_fail_at_the_kernel(confined):
    for path in (
        "/tmp/rp_confined_escape",
        str(confined.comfy_dir / "custom_nodes" / "evil.py"),  # code that would run at the next start
        str(confined.comfy_dir / "input" / "planted.png"),  # another job's input
        str(confined.comfy_dir / "models" / "planted.safetensors"),
        str(confined.run_dir / "planted"),
    ):
        assert probe(confined, "write", path) == "error: EACCES", path
        assert not os.path.exists(path)
    assert probe(confined, "write", str(confined.comfy_dir / "output" / "mine.txt")).startswith("ok")
    # a job's node writes nothing in a pack's folder: not its code, not its data files, no new file
    pack = confined.comfy_dir / "custom_nodes" / "rp_test_nodes"
    for name in ("__init__.py", "state.json", "new.json"):
        assert probe(confined, "write", str(pack / name)) == "error: EACCES", name
    assert (pack / "state.json").read_text() == "{}" and not (pack / "new.json").exists()


def test_a_real_pack_makes_its_config_at_import_and_no_job_can_touch_its_folder(confined):
    """RES4LYF writes res4lyf.config.json at every import (creates it at the first): it does so in the
    start phase, with nothing made for it beforehand. The red team planted a .py in a pack's top folder
    (it runs at every later start) and could rewrite a pack's config, which the pack trusts at its next
    start: in the serve phase, once ComfyUI loaded its nodes, neither gets past the kernel."""
    res4lyf = confined.comfy_dir / "custom_nodes" / "RES4LYF"
    info = requests.get(f"{confined.comfy_url}/object_info/ClownsharKSampler_Beta", timeout=60).json()
    assert info["ClownsharKSampler_Beta"]["python_module"] == "custom_nodes.RES4LYF"
    config_file = res4lyf / "res4lyf.config.json"
    assert json.loads(config_file.read_text())["name"] == "RES4LYF"  # RES4LYF's own defaults
    assert config_file.stat().st_uid == int(probe(confined, "uid")[len("ok: ") :])  # ComfyUI made it
    for name in ("evil.py", "__init__.pyc", "evil.json", "res4lyf.config.json"):
        assert probe(confined, "write", str(res4lyf / name)) == "error: EACCES", name
        assert name == "res4lyf.config.json" or not (res4lyf / name).exists()
    assert json.loads(config_file.read_text())["name"] == "RES4LYF"
    # its folder: ComfyUI's group may create files there (start phase), sticky; its code stays root's
    assert res4lyf.stat().st_mode & 0o1020 == 0o1020 and (res4lyf / "__init__.py").stat().st_uid == 0


def test_comfyui_connects_nowhere_by_default_and_makes_no_symlink(confined):
    """The red team's H1: code in ComfyUI reached HTTPS hosts and sent UDP anywhere. With the default
    CONFINE_NET (none) the kernel refuses both, while ComfyUI keeps serving jobs."""
    assert probe(confined, "connect", f"127.0.0.1:{confined.comfy_port}") == "error: EACCES"  # its own API
    assert probe(confined, "connect", f"127.0.0.1:{confined.api_port}") == "error: EACCES"  # the worker's
    assert probe(confined, "connect", "192.0.2.1:443") == "error: EACCES"  # an outside HTTPS host (TEST-NET-1)
    assert probe(confined, "connect", "127.0.0.1:443") == "error: EACCES"
    assert probe(confined, "udp", "192.0.2.1:53") == "error: EACCES"  # Landlock has no UDP rule: seccomp's
    assert probe(confined, "udp", "127.0.0.1:9") == "error: EACCES"
    link = confined.comfy_dir / "output" / "shadow.png"
    assert probe(confined, "symlink", f"/etc/shadow>{link}") == "error: EACCES"
    assert not link.is_symlink()


def test_a_download_refused_by_the_default_is_answered_with_confine_net(confined):
    """A pack node fetching a URL the job names (the red team's SSRF): the kernel refuses it, and the job's
    answer says why and how to allow it, never ComfyUI's raw text."""
    for url in (
        "https://192.0.2.1/model.safetensors",
        "https://huggingface.co/org/repo/resolve/main/model.safetensors",
    ):
        node = {"class_type": "RPTestProbe", "inputs": {"op": "download", "arg": url, "nonce": next(_nonce)}}
        err = run(confined, {"1": node})
        assert err["error_code"] == "NETWORK_DENIED", err
        assert "CONFINE_NET=443" in err["fix"] and err["details"]["signature"]["id"].startswith("egress-"), err
    next_job_succeeds(confined)


def test_a_jobs_prompt_leaves_no_history_in_comfyui(confined):
    node = {"class_type": "RPTestProbe", "inputs": {"op": "uid", "arg": "", "nonce": next(_nonce)}}
    out = run(confined, {"1": node})
    assert out["status"] == "success"
    history = requests.get(f"{confined.comfy_url}/history", timeout=10).json()
    assert out["prompt_id"] not in history


def test_comfyui_gets_its_environment_by_allow_list(confined):
    assert probe(confined, "env", "DATABASE_URL") == "ok: <unset>"
    assert probe(confined, "env", "RUNPOD_API_KEY") == "ok: <unset>"
    assert probe(confined, "env", "PATH").startswith("ok: /")
    assert probe(confined, "env", "HOME") == f"ok: {confined.comfy_dir / 'user' / 'home'}"


def test_no_file_outgrows_max_file_mb_and_no_job_outgrows_job_disk_mb(confined):
    assert probe(confined, "write_mb", "35") == "error: EFBIG"  # RLIMIT_FSIZE: MAX_FILE_MB=30
    workflow = {  # two files of 25 MB: each under MAX_FILE_MB, together over JOB_DISK_MB=40
        str(n): {"class_type": "RPTestProbe", "inputs": {"op": "write_mb", "arg": "25", "nonce": next(_nonce)}}
        for n in (1, 2)
    }
    err = run(confined, workflow)
    assert err["error_code"] == "JOB_DISK_LIMIT", err
    assert err["details"]["written_mb"] >= 40
    assert not list((confined.comfy_dir / "output").rglob("rp_probe_*"))  # removed with the job's files
    next_job_succeeds(confined)
    # the same through ComfyUI's TMPDIR (its user directory), which no output list names
    tmp_workflow = {
        str(n): {"class_type": "RPTestProbe", "inputs": {"op": "write_tmp_mb", "arg": "25", "nonce": next(_nonce)}}
        for n in (1, 2)
    }
    err = run(confined, tmp_workflow)
    assert err["error_code"] == "JOB_DISK_LIMIT", err
    assert not list((confined.comfy_dir / "user" / "tmp").glob("rp_probe_*"))  # swept with the job's files
    next_job_succeeds(confined)


def test_dev_shm_counts_in_the_disk_budget_and_is_swept_after_each_job(confined):
    """/dev/shm is memory every process may write: what ComfyUI's user leaves there counts in JOB_DISK_MB,
    and what a job made there (and in ComfyUI's TMPDIR) is gone before the next job can look."""
    nonces = [next(_nonce) for _ in range(2)]
    workflow = {
        str(n): {"class_type": "RPTestProbe", "inputs": {"op": "write_shm_mb", "arg": "25", "nonce": nonce}}
        for n, nonce in enumerate(nonces, 1)
    }
    err = run(confined, workflow)
    assert err["error_code"] == "JOB_DISK_LIMIT", err
    assert "/dev/shm" in err["error_message"] and err["details"]["written_mb"] >= 40
    for nonce in nonces:
        assert not os.path.exists(f"/dev/shm/rp_probe_{nonce}.bin")
    next_job_succeeds(confined)
    # a job within its budget: its files in /dev/shm and TMPDIR are gone after it, a later job finds nothing
    written = {op: probe(confined, op, "1")[len("ok: ") :] for op in ("write_shm_mb", "write_tmp_mb")}
    assert written["write_shm_mb"].startswith("/dev/shm/rp_probe_"), written
    for path in written.values():
        assert not os.path.exists(path), path
        assert probe(confined, "read", path) == "error: ENOENT", path


def test_files_held_with_no_name_count_in_the_disk_budget(confined):
    """Red team round 2, H4: files opened in ComfyUI's TMPDIR and in /dev/shm, unlinked at once and held
    open while written: no directory lists them, the kernel still holds their blocks (handler.held)."""
    for where in ("tmp", "shm"):
        node = {"class_type": "RPTestProbe", "inputs": {"op": "hold_unlinked", "arg": f"{where}:64", "nonce": 0}}
        node["inputs"]["nonce"] = next(_nonce)
        err = run(confined, {"1": node})
        assert err["error_code"] == "JOB_DISK_LIMIT", (where, err)
        assert err["details"]["written_mb"] > 40, err
        next_job_succeeds(confined)


def test_files_held_only_by_a_message_in_flight_count_in_the_disk_budget(confined):
    """Red team round 3: unlinked TMPDIR files whose descriptors were sent through a socketpair
    (SCM_RIGHTS) and closed are in no fd table nor map, only in the socket's queue: the filesystem's
    used bytes (statvfs) still grow, and that growth counts."""
    err = run(
        confined, {"1": {"class_type": "RPTestProbe", "inputs": {"op": "inflight", "arg": "96", "nonce": next(_nonce)}}}
    )
    assert err["error_code"] == "JOB_DISK_LIMIT", err
    assert err["details"]["written_mb"] > 40, err
    next_job_succeeds(confined)


def test_memfds_over_the_memory_cap_get_comfyui_restarted(confined):
    """memfds written through their descriptors are in no process's RSS (nor RLIMIT_DATA's count): the
    watchdog counts the memory files ComfyUI holds."""
    node = {"class_type": "RPTestProbe", "inputs": {"op": "memfd", "arg": str(MEMORY_CAP_MB), "nonce": next(_nonce)}}
    err = run(confined, {"1": node})
    assert err["error_code"] == "COMFY_MEMORY_LIMIT", err
    assert err["details"]["in_files_mb"] > 0 and "memfd" in err["error_message"], err
    confined.wait_state(("ready",), 120)
    next_job_succeeds(confined)


def test_a_prompt_that_ignores_the_interrupt_gets_comfyui_restarted(confined):
    before = runsync(confined, {"mode": "test"})["output"]["restart_count"]
    nonce = next(_nonce)
    node = {"class_type": "RPTestProbe", "inputs": {"op": "spin", "arg": "120", "nonce": nonce}}
    err = run(confined, {"1": node}, timeout_s=RUNAWAY_DEADLINE_S)
    assert err["error_code"] == "TIMEOUT" and err["details"]["stopped"] == "restarted", err
    assert "restarted ComfyUI" in err["error_message"]
    assert f"RPTestProbe spinning {nonce}" in "\n".join(err["logs_tail"])  # the job's own line, in its answer
    health = confined.wait_state(("ready",), 120)
    assert health["restart_count"] == before + 1 and health["last_death"]["code"] == "TIMEOUT"
    next_job_succeeds(confined)
    # the next job's lines are its own: nothing of the runaway prompt
    failing = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 3}},
        "2": {"class_type": "RPTestRaise", "inputs": {"image": ["1", 0], "message": f"after {nonce}"}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "never"}},
    }
    err = run(confined, failing)
    assert err["error_code"] == "GENERATION_ERROR" and f"after {nonce}" in err["error_message"], err
    assert f"spinning {nonce}" not in "\n".join(err["logs_tail"])


def test_a_prompts_late_lines_stay_its_own(confined):
    """The issue's probe: a timed-out job's node left a thread printing; the lines it prints while the next
    job runs, and while diagnose answers, are the first job's alone (ComfyUI tags them with its prompt)."""
    nonce = next(_nonce)
    node = {"class_type": "RPTestProbe", "inputs": {"op": "linger", "arg": "120", "nonce": nonce}}
    err = run(confined, {"1": node}, timeout_s=3)
    assert err["error_code"] == "TIMEOUT" and err["details"]["stopped"] == "interrupted", err
    first = "\n".join(err["logs_tail"])
    assert f"RPTestProbe lingering {nonce}" in first and f"RPTestProbe late {nonce}" in first, first
    failing = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}},
        "2": {"class_type": "RPTestSleep", "inputs": {"image": ["1", 0], "seconds": 1.5}},
        "3": {"class_type": "RPTestRaise", "inputs": {"image": ["2", 0], "message": f"next {nonce}"}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "never"}},
    }
    err = run(confined, failing)
    assert err["error_code"] == "GENERATION_ERROR" and f"next {nonce}" in err["error_message"], err
    second = "\n".join(err["logs_tail"])
    assert f"next {nonce}" in second and "got prompt" in second  # its own lines, tagged and untagged
    assert f"late {nonce}" not in second, second
    # the helper printed while the second job ran, and still prints, outside any job, when diagnose answers
    log = confined.comfy_log.read_text(errors="replace").splitlines()
    failed_at = next(i for i, line in enumerate(log) if f"next {nonce}" in line)
    queued_at = max(i for i, line in enumerate(log[:failed_at]) if "got prompt" in line)
    assert any(f"late {nonce}" in line for line in log[queued_at:failed_at])
    wait_for_line(confined, f"late {nonce}", after=len(log))
    report = runsync(confined, {"mode": "diagnose"}, timeout=180)["output"]
    assert not any(f"late {nonce}" in line or f"lingering {nonce}" in line for line in report["logs_tail"])


def wait_for_line(stack: LocalStack, text: str, after: int, timeout: float = 60) -> None:
    """Until ComfyUI's log has a line holding `text` past its first `after` lines."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(text in line for line in stack.comfy_log.read_text(errors="replace").splitlines()[after:]):
            return
        time.sleep(0.1)
    pytest.fail(f"no {text!r} in ComfyUI's log within {timeout} s")


def test_catastrophic_backtracking_in_a_core_node_is_stopped(confined):
    """The issue's 60-byte job: a core regex node with a pattern that backtracks for hours, in C (the GIL
    held: ComfyUI can't even answer /queue)."""
    workflow = {
        "1": {
            "class_type": "RegexExtract",
            "inputs": {
                "string": "a" * 40 + "!",
                "regex_pattern": "^(a+)+$",
                "mode": "First Match",
                "case_insensitive": True,
                "multiline": False,
                "dotall": False,
                "group_index": 1,
            },
        },
        "2": {"class_type": "RPTestProbe", "inputs": {"op": "env", "arg": ["1", 0], "nonce": next(_nonce)}},
    }
    err = run(confined, workflow, timeout_s=RUNAWAY_DEADLINE_S)
    assert err["error_code"] == "TIMEOUT" and err["details"]["stopped"] == "restarted", err
    confined.wait_state(("ready",), 120)
    next_job_succeeds(confined)


def test_an_interruptible_prompt_is_interrupted_not_restarted(confined):
    before = runsync(confined, {"mode": "test"})["output"]["restart_count"]
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 1}},
        "2": {"class_type": "RPTestSleep", "inputs": {"image": ["1", 0], "seconds": 120}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "slow"}},
    }
    err = run(confined, workflow, timeout_s=3)
    assert err["error_code"] == "TIMEOUT" and err["details"]["stopped"] == "interrupted", err
    assert runsync(confined, {"mode": "test"})["output"]["restart_count"] == before
    next_job_succeeds(confined)


def test_a_size_computed_in_the_graph_over_the_memory_cap_fails_in_the_node(confined):
    """Three core upscales of an 8x8 image ask for a 4096x4096x3 float tensor and more: no literal is over
    any limit. Under RLIMIT_DATA the allocation fails inside the node; ComfyUI stays up."""
    if memcap.gpu_devices() or memcap.own_cgroup()[0] is not None:
        pytest.skip("RLIMIT_DATA is the first layer only on a machine without a GPU or a delegated cgroup")
    before = runsync(confined, {"mode": "test"})["output"]["restart_count"]
    workflow = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 5}}}
    for n in (2, 3, 4, 5):  # 8 -> 64 -> 512 -> 4096 -> 32768 px a side: 12.9 GB of float32
        workflow[str(n)] = {
            "class_type": "ImageScaleBy",
            "inputs": {"image": [str(n - 1), 0], "upscale_method": "nearest-exact", "scale_by": 8.0},
        }
    workflow["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "huge"}}
    err = run(confined, workflow)
    assert err["error_code"] == "RAM_OUT_OF_MEMORY", err
    assert err["details"]["memory_cap"] == {"mechanism": "rlimit", "max_mb": MEMORY_CAP_MB}, err
    assert "COMFY_MEMORY_MAX_MB" in err["error_message"] and "COMFY_MEMORY_MAX_MB" in err["fix"]
    assert "Traceback" not in err["error_message"]
    assert runsync(confined, {"mode": "test"})["output"]["restart_count"] == before  # ComfyUI stayed up
    next_job_succeeds(confined)


def test_over_its_memory_cap_comfyui_is_restarted_and_the_job_says_why(confined):
    """The watchdog, the second layer: a shared mapping is resident but no RLIMIT_DATA counts it."""
    node = {"class_type": "RPTestProbe", "inputs": {"op": "hold_shared_mb", "arg": str(MEMORY_CAP_MB), "nonce": 1}}
    err = run(confined, {"1": node})
    assert err["error_code"] == "COMFY_MEMORY_LIMIT", err
    assert err["details"]["max_mb"] == MEMORY_CAP_MB
    confined.wait_state(("ready",), 120)
    next_job_succeeds(confined)


def test_isolate_jobs_leaves_no_cache_for_the_next_job_to_time(confined):
    """The same prompt twice: ComfyUI's cache would answer the second from the first's results (an output
    node with the same inputs does not run again); with ISOLATE_JOBS=1 the node runs, and prints, twice."""
    confined.wait_state(("ready",), 120)
    mark = f"ISOLATE_{next(_nonce)}"
    workflow = {"1": {"class_type": "RPTestProbe", "inputs": {"op": "env", "arg": mark, "nonce": 7}}}
    for _ in range(2):
        assert run(confined, workflow)["status"] == "success"
    # the job answers once ComfyUI's history says done; its printed line may still be on its way to the log
    deadline = time.monotonic() + 30
    while len(ran := [x for x in confined.comfy_log.read_text().splitlines() if f"RPTestProbe env {mark}" in x]) < 2:
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(ran) == 2, ran
