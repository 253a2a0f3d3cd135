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
