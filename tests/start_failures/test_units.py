"""The pieces behind the catalogue, without a stack: the log classifier (pure), the state machine
(driven by an injected clock), ComfyUI's output log (windows, rotation, redaction), the refresh policy."""

from __future__ import annotations

import io
import threading
import time

import pytest

from handler.comfylog import PREFIX, ComfyLog
from handler.config import Settings
from handler.runtime import Runtime
from handler.state import Cause, State, WorkerState
from workflows.errors import CODES, JobError
from workflows.startup_log import classify_start_failure, last_exception

HANDLED = [
    "Traceback (most recent call last):",
    '  File "/c/nodes.py", line 2146, in load_custom_node',
    "ModuleNotFoundError: No module named 'torchaudio'",
    "",
    "Cannot import /c/comfy_extras/nodes_audio.py module for custom nodes: No module named 'torchaudio'",
    "Import times for custom nodes:",
    "   0.0 seconds: /c/custom_nodes/websocket_image_save.py",
    "",
    "setup plugin alembic.autogenerate.schemas",
]
BOOT = ["Total VRAM 24106 MB, total RAM 24106 MB", "Set vram state to: DISABLED", "Device: cpu"]


def test_a_traceback_comfyui_handled_is_not_why_it_ended():
    assert last_exception(HANDLED) == (None, [])
    failure = classify_start_failure(HANDLED, exit_code=-11)
    assert failure.code == "COMFY_START_FAILED" and "signal 11" in failure.message


def test_the_fatal_exception_is_named_with_the_pack_it_came_from():
    lines = [
        *BOOT,
        "Traceback (most recent call last):",
        '  File "/c/main.py", line 10, in <module>',
        '  File "/c/custom_nodes/rp_bad/prestartup_script.py", line 3, in <module>',
        "ImportError: libGL.so.1: cannot open shared object file",
    ]
    failure = classify_start_failure(lines, exit_code=1)
    # the field-drawn signature names the cause and the fix (workflows/signatures.yaml)
    assert failure.code == "SYSTEM_LIBRARY_MISSING" and failure.pack == "rp_bad"
    assert "ImportError: libGL.so.1" in failure.message and "rp_bad" in failure.message
    assert failure.fix is not None and "libgl1" in failure.fix
    assert failure.signature is not None and failure.signature["source"].startswith("https://github.com/")


def test_an_exception_no_signature_knows_leads_with_its_own_type_and_text():
    lines = [*BOOT, "Traceback (most recent call last):", '  File "/c/main.py", line 1', "ZeroDivisionError: x"]
    failure = classify_start_failure(lines, exit_code=1)
    assert failure.code == "COMFY_START_FAILED" and "ZeroDivisionError: x" in failure.message


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("OSError: [Errno 98] error while attempting to bind on address ('127.0.0.1', 8188)", "COMFY_PORT_IN_USE"),
        ("RuntimeError: CUDA error: no kernel image is available for execution on the device", "COMFY_CUDA_MISMATCH"),
        ("RuntimeError: The NVIDIA driver on your system is too old (found version 11040).", "COMFY_CUDA_MISMATCH"),
    ],
)
def test_specific_causes_win_over_the_generic_exception(line, code):
    lines = ["Traceback (most recent call last):", '  File "/c/main.py", line 1, in <module>', line]
    assert classify_start_failure(lines, exit_code=1).code == code


def test_a_pack_ending_the_process_right_after_a_handled_traceback():
    lines = [*BOOT, *HANDLED[:5], "rp_killer_pack: initialising"]
    assert classify_start_failure(lines, exit_code=3).code == "COMFY_PACK_KILLED_START"


def test_a_pack_ending_the_process_silently_during_node_import():
    lines = [*HANDLED[:5], *BOOT, "rp_killer_pack: initialising /c/custom_nodes/rp_killer_pack"]
    failure = classify_start_failure(lines, exit_code=3)
    assert failure.code == "COMFY_PACK_KILLED_START" and failure.pack == "rp_killer_pack"


def test_timeout_names_the_stage_and_a_death_after_ready_is_comfy_died():
    slow = classify_start_failure([*BOOT, "loading a big pack"], timed_out_after=30)
    assert slow.code == "COMFY_START_TIMEOUT" and "importing custom node packs" in slow.message
    died = classify_start_failure([*HANDLED, "got prompt"], exit_code=-9, was_ready=True)
    assert died.code == "COMFY_DIED" and "out-of-memory" in died.message


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_state_machine_moves_and_reports():
    clock = FakeClock()
    state = WorkerState(clock=clock, wall=lambda: 1000.0 + clock.now, origin=1000.0 + 99.0)
    assert state.state is State.STARTING and state.snapshot()["phases"] == {"entrypoint_started": 0.0}
    state.phase("comfyui_process_started")
    clock.now += 5
    state.phase("comfyui_ready")
    state.phase("comfyui_ready")  # only the first time counts
    state.set(State.READY)
    snap = state.snapshot()
    assert snap["state"] == "ready" and snap["since_start_s"] == 5.0 and "cause" not in snap
    assert snap["phases"]["comfyui_process_started"] == 1.0 and snap["phases"]["comfyui_ready"] == 6.0
    death = Cause("COMFY_DIED", "ComfyUI was killed by signal 9")
    state.died(death)
    state.restarting(death)
    snap = state.snapshot()
    assert snap["state"] == "restarting" and snap["restart_count"] == 1
    assert snap["cause"]["fix"] == CODES["COMFY_DIED"].fix and snap["last_death"]["code"] == "COMFY_DIED"


def test_waiting_ends_when_the_state_settles_or_the_deadline_passes():
    state = WorkerState()
    assert state.wait_settled(deadline=0) is State.STARTING  # deadline already passed: no wait
    threading.Timer(0.05, lambda: state.set(State.READY)).start()
    assert state.wait_settled(deadline=time.monotonic() + 10) is State.READY


def test_a_broken_worker_fails_a_job_at_once_with_its_cause(tmp_path):
    state = WorkerState()
    state.set(State.BROKEN, Cause("COMFY_PORT_IN_USE", "port taken", {"evidence": ["[Errno 98]"]}))
    rt = Runtime(Settings.from_env({"COMFY_OUTPUT_DIR": str(tmp_path), "DISK_FULL_MB": "0"}), state=state)
    with pytest.raises(JobError) as caught:
        rt.require_ready(time.monotonic() + 600)
    assert caught.value.code == "COMFY_PORT_IN_USE" and caught.value.details["evidence"] == ["[Errno 98]"]


def test_comfy_log_windows_rotation_redaction_and_prefix(tmp_path):
    out = io.StringIO()
    log = ComfyLog(tmp_path / "comfyui.log", max_bytes=4096, secrets=["s3cr3t"], echo=out)
    log.write("boot line\n")
    log.begin_job("job-a")
    log.write("job A data: s3cr3t prompt\n")
    log.end_job("job-a")
    log.begin_job("job-b")
    log.write("job B data\n")
    log.end_job("job-b")
    log.write("after jobs\n")
    assert log.tail(job="job-b") == ["job B data"]
    assert log.tail(job="job-a") == ["job A data: *** prompt"]
    assert log.tail() == ["boot line", "after jobs"]  # diagnose: no job's data
    assert out.getvalue().splitlines()[0] == f"{PREFIX}boot line" and "s3cr3t" not in out.getvalue()
    for i in range(200):
        log.write(f"filler {i:04d} " + "x" * 60)
    assert (tmp_path / "comfyui.log").stat().st_size <= 4096
    assert (tmp_path / "comfyui.log.1").exists()
    assert "s3cr3t" not in (tmp_path / "comfyui.log.1").read_text() + (tmp_path / "comfyui.log").read_text()
    assert log.lines_since(log.count - 2) == [f"filler 0198 {'x' * 60}", f"filler 0199 {'x' * 60}"]


def test_refresh_worker_only_where_a_fresh_worker_can_help():
    """Deterministic misconfiguration: no (a fresh worker repeats it after another cold start).
    Host-specific or transient: yes."""
    recycled = {c for c in CODES if CODES[c].refresh_worker}
    assert {"COMFY_CUDA_MISMATCH", "COMFY_CRASH_LOOP"} <= recycled
    deterministic = {
        "COMFY_START_FAILED",
        "COMFY_PORT_IN_USE",
        "COMFY_PACK_KILLED_START",
        "COMFY_MODEL_PATHS_INVALID",
        "SELF_CHECK_FAILED",
        "WORKFLOW_BROKEN",
        "COMFY_DIED",  # the worker restarts ComfyUI itself
    }
    assert not deterministic & recycled


def test_error_response_carries_the_refresh_decision(tmp_path):
    import handler.worker as worker

    rt = Runtime(Settings.from_env({"COMFY_LOG": str(tmp_path / "none.log")}))
    assert worker.error_response(rt, JobError("COMFY_CUDA_MISMATCH", "no driver"))["refresh_worker"] is True
    assert "refresh_worker" not in worker.error_response(rt, JobError("COMFY_START_FAILED", "boom"))


def test_the_build_time_static_check_still_fails_on_a_broken_registry_file(tmp_path):
    """The worker survives a broken registry file; the image build must not."""
    import shutil

    from handler.selfcheck import static_check
    from tools.localstack import DEFAULT_COMFY_HOME
    from workflows.registry import REGISTRY_DIR

    comfy_dir = DEFAULT_COMFY_HOME / "ComfyUI"
    if not (comfy_dir / "nodes.py").is_file():
        pytest.fail(f"ComfyUI is not installed at {DEFAULT_COMFY_HOME}: run `make test` (it installs it first)")
    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    (registry / "smoke_i2v.json").write_text("import json\n")
    result = static_check(comfy_dir, REGISTRY_DIR.parents[1] / "extra_model_paths.yaml", registry_dir=registry)
    broken = [f for f in result["findings"] if f["code"] == "REGISTRY_INVALID"]
    assert result["ok"] is False and "smoke_i2v.json: not valid JSON (line 1, column 1)" in broken[0]["message"]
