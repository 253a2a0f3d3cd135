"""`comfy-runpod ui` without a browser or a server: the judgement against the endpoint's diagnose, the
editor's error shape, the messages and what the launcher does when its local ComfyUI can't start."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

from client.ui.facts import EndpointFacts, comfy_error, judge_prompt
from client.ui.jobs import referenced_inputs
from client.ui.protocol import progress_text, timing_text
from tests.client.conftest import json_out
from tests.client.test_cli import comfy_runpod
from workflows.registry import default_registry

# The local ComfyUI's definitions of the nodes used here, in /object_info's shape.
LOCAL_INFO = {
    "CheckpointLoaderSimple": {
        "input": {"required": {"ckpt_name": [["local_only.safetensors", "shared.safetensors"], {}]}},
        "output": ["MODEL", "CLIP", "VAE"],
    },
    "LoadImage": {"input": {"required": {"image": [["a.png"], {"image_upload": True}]}}, "output": ["IMAGE"]},
    "EmptyImage": {
        "input": {"required": {"width": ["INT", {"default": 64, "min": 1, "max": 4096}]}},
        "output": ["IMAGE"],
    },
    "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output_node": True},
    "ClownsharKSampler_Beta": {"input": {"required": {"model": ["MODEL"]}}, "output": ["LATENT"]},
}
DIAGNOSE = {
    "ok": True,
    "node_classes": ["CheckpointLoaderSimple", "LoadImage", "EmptyImage", "SaveImage"],
    "models": {"checkpoints": {"on_disk": [], "comfyui_lists": ["shared.safetensors"]}},
    "custom_nodes": {"packs": [{"name": "rp_broken_pack", "path": "/x", "seconds": 0.1, "failed": False}]},
    "summary": {"errors": 0},
}


def judge(prompt: dict, uploaded: frozenset[str] = frozenset()) -> list:
    return judge_prompt(prompt, EndpointFacts.from_diagnose(DIAGNOSE), LOCAL_INFO, default_registry(), uploaded)


def test_a_model_the_local_comfyui_lists_but_the_endpoint_lacks_is_refused():
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "local_only.safetensors"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["3", 0]}},
        "3": {"class_type": "EmptyImage", "inputs": {"width": 64}},
    }
    found = judge(prompt)
    assert [(f.code, f.node_id, f.input) for f in found] == [("MODEL_MISSING", "1", "ckpt_name")]
    prompt["1"]["inputs"]["ckpt_name"] = "shared.safetensors"
    assert judge(prompt) == []


def test_a_node_the_endpoint_lacks_is_refused_with_its_pack():
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "shared.safetensors"}},
        "2": {"class_type": "ClownsharKSampler_Beta", "inputs": {"model": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["4", 0]}},
        "4": {"class_type": "EmptyImage", "inputs": {"width": 64}},
    }
    found = judge(prompt)
    assert found[0].code == "NODE_MISSING" and found[0].node_id == "2" and "RES4LYF" in found[0].fix
    body = comfy_error(found, prompt)
    assert body["error"]["type"] == "NODE_MISSING" and body["error"]["details"] == f"Fix: {found[0].fix}"
    assert body["node_errors"]["2"]["class_type"] == "ClownsharKSampler_Beta"
    assert body["node_errors"]["2"]["errors"][0]["message"].startswith("NODE_MISSING: ")
    assert json.loads(json.dumps(body)) == body  # what the editor receives


def test_an_uploaded_input_is_not_judged_against_any_list():
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "sub/mine.png [input]"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    assert referenced_inputs(prompt, LOCAL_INFO) == {"sub/mine.png [input]": ("sub", "mine.png")}
    assert judge(prompt, frozenset({"sub/mine.png [input]"})) == []
    assert [f.code for f in judge(prompt)] == ["VALUE_NOT_IN_LIST"]


def test_an_older_worker_without_node_classes_falls_back_to_the_local_definitions():
    facts = EndpointFacts.from_diagnose({k: v for k, v in DIAGNOSE.items() if k != "node_classes"})
    assert facts.node_classes is None and facts.describe()["node_classes"] is None
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    assert judge_prompt(prompt, facts, LOCAL_INFO, None, frozenset()) == []


def test_progress_text_is_comfyuis_binary_frame_and_the_timings_read_well():
    frame = progress_text("12", "ran on RunPod")
    assert struct.unpack(">II", frame[:8]) == (3, 2) and frame[8:10] == b"12" and frame[10:] == b"ran on RunPod"
    text = timing_text(
        "abcdef-123456-xyz",
        {
            "runpod": {"delayTime_ms": 1500},
            "worker": {"execution_ms": 2300.0},
            "client": {"wall_s": 4.25, "save_ms": 12.0},
        },
    )
    assert text == "ran on RunPod · total 4.25 s · queue 1.50 s · ComfyUI 2.30 s · saved in 12 ms · job abcdef-123456"


def test_a_local_comfyui_that_does_not_start_is_local_comfy_failed(tmp_path: Path):
    home = tmp_path / "comfy"
    (home / "venv/bin").mkdir(parents=True)
    (home / "venv/bin/python").symlink_to(sys.executable)
    (home / "launch.py").write_text("import sys\nprint('no torch here')\nsys.exit(3)\n")
    base = str(tmp_path / "b")
    proc = comfy_runpod("ui", "--url", "http://127.0.0.1:9", "--comfy-home", str(home), "--base-dir", base, "--json")
    error = json_out(proc)["error"]
    assert proc.returncode == 2 and error["code"] == "LOCAL_COMFY_FAILED" and "no torch here" in error["message"]
    missing = comfy_runpod("ui", "--url", "http://127.0.0.1:9", "--comfy-home", str(tmp_path / "none"), "--json")
    assert missing.returncode == 2 and "no ComfyUI install" in json_out(missing)["error"]["message"]


def test_a_prompt_naming_a_file_outside_the_input_folder_is_refused_before_anything_is_read():
    from client.errors import UsageError
    from client.ui.jobs import JobRunner
    from comfyui_client import ComfyClient

    runner = JobRunner(None, None, ComfyClient("http://127.0.0.1:9"), lambda *a: None, ledger=None)  # type: ignore[arg-type]
    for name in ("../../etc/passwd", "/etc/passwd", "sub/../../x.png [input]", "..\\..\\x.png", "a//b.png"):
        prompt = {"1": {"class_type": "LoadImage", "inputs": {"image": name}}}
        try:
            runner.input_images(prompt, LOCAL_INFO)  # :9 answers nothing: a read would be a ComfyError
        except UsageError as exc:
            assert exc.code == "INPUT_UNREADABLE" and "outside" in exc.message, name
        else:
            raise AssertionError(f"{name!r} was read")


def test_a_malformed_prompt_gets_comfyuis_error_shape_with_a_code_not_a_crash():
    from client.ui.facts import FactsCache
    from client.ui.jobs import JobRunner
    from client.ui.server import Launcher

    launcher = Launcher(
        "http://127.0.0.1:9",  # never asked: the shape is judged first
        lambda local, emit, changed: JobRunner(None, None, local, emit, ledger=None),  # type: ignore[arg-type]
        FactsCache(None, timeout_s=1),  # type: ignore[arg-type]
        None,
    )
    try:
        for prompt in (
            None,
            [],
            {},
            "x",
            {"1": "node"},
            {"1": {"inputs": {}}},
            {"1": {"class_type": "A", "inputs": []}},
        ):
            status, answer = launcher.accept({"prompt": prompt})
            assert status == 400 and answer["error"]["type"] == "WORKFLOW_INVALID", prompt
            assert answer["error"]["details"].startswith("Fix: ") and "node_errors" in answer
        assert launcher.jobs == {}
    finally:
        launcher.pool.shutdown()


def assert_finished_jobs_are_bounded(launcher) -> None:
    from client.ui.jobs import RemoteJob
    from client.ui.server import MAX_FINISHED

    for i in range(MAX_FINISHED + 5):
        job = RemoteJob(f"p{i}", i, None, {}, {}, [])
        job.done.set()
        launcher.jobs[job.prompt_id] = job
    running = RemoteJob("running", -1, None, {}, {}, [])
    launcher.jobs["running"] = running
    launcher.forget_old()
    assert len(launcher.jobs) == MAX_FINISHED + 1 and "running" in launcher.jobs
    assert "p4" not in launcher.jobs and "p5" in launcher.jobs  # the oldest finished ones went
    launcher.jobs.clear()


def test_only_local_host_names_are_served_so_dns_rebinding_cannot_queue_jobs():
    from client.ui.server import answers_to

    for name in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert answers_to(name, "127.0.0.1"), name
    for name in ("evil.example", "192.168.1.5", "", None):
        assert not answers_to(name, "127.0.0.1"), name
    assert answers_to("192.168.1.5", "192.168.1.5") and answers_to("evil.example", "0.0.0.0")
