"""The worker's three modes through the real RunPod local API, in front of the real CPU ComfyUI."""

from __future__ import annotations

import base64
import io
import json

import av
import pytest
import requests
from PIL import Image

from tests.conftest import REPO, png_base64, runsync, sleep_workflow, stack_settings

pytestmark = pytest.mark.stack


def output_of(envelope: dict) -> dict:
    assert envelope["status"] == "COMPLETED", envelope
    return envelope["output"]


def failure_of(envelope: dict) -> dict:
    """A failed job: RunPod's FAILED status; `error` is our error object as a JSON string."""
    assert envelope["status"] == "FAILED", envelope
    error = json.loads(envelope["error"])
    assert {"error_code", "error_message", "fix", "details"} <= set(error)
    return error


def comfy_queue_ids(stack) -> list:
    q = requests.get(f"{stack.comfy_url}/queue", timeout=5).json()
    return [item[1] for key in ("queue_running", "queue_pending") for item in q[key]]


# --- test mode --------------------------------------------------------------------------------


def test_test_mode_reports_health(stack):
    out = output_of(runsync(stack, {"mode": "test"}))
    assert out["ok"] is True and out["comfyui_up"] is True
    assert out["comfyui_version"] == "0.3.75" and out["handler_version"]
    assert out["disk_free_gb"] > 0 and out["uptime_s"] >= 0
    assert out["timings"]["total_ms"] < 1000
    assert output_of(runsync(stack, {"test": True}))["comfyui_up"] is True  # the short form


def test_volume_mounted_follows_the_volume_directory(stack, tmp_path):
    """A volume directory of this test's own (in-process against the same ComfyUI), so both branches run
    whatever other tests did to the session stack's volume."""
    from handler.runtime import Runtime
    from handler.worker import handle

    volume = tmp_path / "runpod-volume"
    rt = Runtime(stack_settings(stack, RUNPOD_VOLUME_DIR=str(volume)))
    try:
        assert handle({"id": "vol", "input": {"mode": "test"}}, rt)["volume_mounted"] is False
        report = handle({"id": "vol", "input": {"mode": "diagnose", "workflow": "smoke_image"}}, rt)
        absent = [f for f in report["findings"] if f["code"] == "VOLUME_NOT_MOUNTED"]
        assert absent and str(volume) in absent[0]["message"] and absent[0]["fix"]
        volume.mkdir()
        assert handle({"id": "vol", "input": {"mode": "test"}}, rt)["volume_mounted"] is True
        report = handle({"id": "vol", "input": {"mode": "diagnose", "workflow": "smoke_image"}}, rt)
        assert "VOLUME_NOT_MOUNTED" not in {f["code"] for f in report["findings"]}
    finally:
        rt.events.close()


def test_unknown_keys_are_rejected_by_name(stack):
    err = failure_of(runsync(stack, {"mode": "test", "verbose": True}))
    assert err["error_code"] == "BAD_INPUT" and "verbose" in err["error_message"]
    err = failure_of(runsync(stack, {"workflow": "smoke_image", "sed": 3}))
    assert err["error_code"] == "BAD_INPUT" and err["details"]["unknown_keys"] == ["sed"]
    err = failure_of(runsync(stack, {"mode": "paint"}))
    assert err["error_code"] == "BAD_INPUT" and "mode" in err["error_message"]


# --- diagnose ---------------------------------------------------------------------------------


def test_diagnose_models_seen_and_not_seen_by_comfyui(stack):
    image_ckpt = stack.comfy_dir / "models/checkpoints/diag_image.safetensors"
    volume_unet = stack.volume_dir / "models/diffusion_models/diag_volume.safetensors"
    volume_alt = stack.volume_dir / "ComfyUI/models/vae/diag_alt.safetensors"
    misplaced = stack.volume_dir / "models/Checkpoints/diag_wrong_case.safetensors"  # a folder ComfyUI doesn't scan
    for path in (image_ckpt, volume_unet, volume_alt, misplaced):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 1024)
    try:
        out = output_of(runsync(stack, {"mode": "diagnose"}))
        assert out["comfyui_reachable"] is True and out["volume"]["mounted"] is True
        assert set(out["volume"]["layouts"]) == {"models", "ComfyUI/models"}
        seen = {f["name"]: f for folder in out["models"].values() for f in folder["on_disk"]}
        assert seen["diag_image.safetensors"]["seen_by_comfyui"] is True
        assert seen["diag_image.safetensors"]["source"] == "image"
        assert seen["diag_volume.safetensors"]["seen_by_comfyui"] is True
        assert seen["diag_volume.safetensors"]["source"] == "volume"
        assert seen["diag_alt.safetensors"]["seen_by_comfyui"] is True
        assert seen["diag_wrong_case.safetensors"]["seen_by_comfyui"] is False
        assert "diag_volume.safetensors" in out["models"]["diffusion_models"]["comfyui_lists"]
        not_seen = [f for f in out["findings"] if f["code"] == "MODEL_NOT_SEEN"]
        assert [f["path"] for f in not_seen] == [str(misplaced)]
        assert {"container", "output", "volume"} <= {d["label"] for d in out["disks"]}
        assert out["timings"]["total_ms"] > 0
    finally:  # remove files only: ComfyUI breaks when a directory it has scanned vanishes
        for path in (image_ckpt, volume_unet, volume_alt, misplaced):
            path.unlink()


def test_diagnose_reports_failed_pack_and_missing_nodes_with_their_pack(stack):
    out = output_of(runsync(stack, {"mode": "diagnose"}))
    packs = {p["name"]: p for p in out["custom_nodes"]["packs"]}
    assert packs["rp_broken_pack"]["failed"] is True and "rp_missing_dependency" in packs["rp_broken_pack"]["error"]
    assert packs["rp_test_nodes"]["failed"] is False
    assert out["custom_nodes"]["failed"] == ["rp_broken_pack"]
    failed = [f for f in out["findings"] if f["code"] == "PACK_IMPORT_FAILED"]
    assert failed and "rp_broken_pack" in failed[0]["message"] and failed[0]["fix"]
    assert out["logs_tail"] and all(isinstance(line, str) for line in out["logs_tail"])
    # ComfyUI-WanVideoWrapper is registered but never installed in the test stacks (conftest ABSENT_PACK).
    missing = {m["node"]: m for m in out["node_check"]["required_missing"]}
    assert missing["WanVideoSampler"]["pack"] == "ComfyUI-WanVideoWrapper"
    wan = out["workflow_checks"]["wan22_i2v"]
    assert wan["ok"] is False and "WanVideoSampler" in wan["missing_nodes"]
    denrisi = out["workflow_checks"]["z_image_turbo_denrisi"]  # RES4LYF is installed: only models are missing
    assert denrisi["ok"] is False and denrisi["missing_nodes"] == []
    assert "z_image_turbo_bf16.safetensors" in denrisi["missing_models"]["diffusion_models"]
    assert out["workflow_checks"]["smoke_image"]["ok"] is True
    assert out["workflow_checks"]["smoke_i2v"]["ok"] is True
    assert all({"code", "severity", "message", "fix"} <= set(f) for f in out["findings"])


def test_diagnose_one_workflow_and_checksums(stack):
    ckpt = stack.comfy_dir / "models/checkpoints/sd_xl_base_1.0.safetensors"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.write_bytes(b"truncated download")
    try:
        out = output_of(runsync(stack, {"mode": "diagnose", "workflow": "sdxl_basic", "checksums": True}))
        assert list(out["workflow_checks"]) == ["sdxl_basic"]
        codes = {f["code"] for f in out["workflow_checks"]["sdxl_basic"]["findings"]}
        assert "MODEL_SIZE_MISMATCH" in codes and "MODEL_MISSING" not in codes
        assert "MODEL_HASH_MISMATCH" in codes
        entry = out["models"]["checkpoints"]["on_disk"]
        assert any(f.get("sha256") for f in entry)
    finally:
        ckpt.unlink()
    err = failure_of(runsync(stack, {"mode": "diagnose", "workflow": "nope"}))
    assert err["error_code"] == "WORKFLOW_NOT_FOUND" and "smoke_image" in err["details"]["registered"]


# --- generate ---------------------------------------------------------------------------------


def test_generate_image_to_mp4_frames_counted_by_decoding(stack):
    out = output_of(
        runsync(
            stack,
            {
                "workflow": "smoke_i2v",
                "image_base64": png_base64(80, 60),
                "frames": 10,
                "fps": 5,
                "width": 128,
                "height": 96,
            },
        )
    )
    video = out["outputs"][0]
    assert video["kind"] == "video" and video["mime"] == "video/mp4"
    with av.open(io.BytesIO(base64.b64decode(out["video_base64"]))) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == 10 == out["frames"] == video["frames"]
    assert (frames[0].width, frames[0].height) == (128, 96) == (video["width"], video["height"])  # probed undecoded
    assert out["fps"] == 5 and out["duration_sec"] == 2
    t = out["timings"]
    assert {"validate_ms", "upload_ms", "queue_wait_ms", "execution_ms", "encode_ms", "total_ms"} <= set(t)
    assert t["execution_ms"] > 0 and t["queue_wait_ms"] >= 0 and set(t["nodes_ms"]) >= {"5"}
    leftovers = list((stack.comfy_dir / "input").glob("job_*")) + list((stack.comfy_dir / "output").glob("job_*"))
    assert leftovers == []  # job files are deleted once the response is built


def test_generate_image_returns_png_with_dimensions(stack):
    out = output_of(runsync(stack, {"workflow": "smoke_image", "width": 96, "height": 64}))
    image = Image.open(io.BytesIO(base64.b64decode(out["outputs"][0]["base64"])))
    assert image.size == (96, 64) == (out["outputs"][0]["width"], out["outputs"][0]["height"])


def test_inline_workflow_with_named_image(stack):
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "portrait.png"}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "inline"}},
    }
    out = output_of(
        runsync(
            stack, {"workflow": workflow, "images": [{"name": "portrait.png", "image": png_base64(40, 30, (0, 0, 0))}]}
        )
    )
    image = Image.open(io.BytesIO(base64.b64decode(out["outputs"][0]["base64"]))).convert("RGB")
    assert image.size == (40, 30) and image.getpixel((5, 5)) == (255, 255, 255)  # black, inverted
    assert out["workflow"] == "inline"


@pytest.mark.parametrize(
    ("job", "code"),
    [
        ({"workflow": "smoke_i2v", "image_base64": "!!!not base64"}, "INVALID_IMAGE"),
        (
            {"workflow": "smoke_i2v", "image_base64": base64.b64encode(b"plain text, no image").decode()},
            "INVALID_IMAGE",
        ),
        ({"workflow": "smoke_i2v"}, "NO_IMAGE"),
        ({"workflow": "wan22_flf2v", "image_base64": png_base64()}, "NO_END_IMAGE"),
        ({"workflow": "no_such_workflow"}, "WORKFLOW_NOT_FOUND"),
        ({"workflow": {"nodes": [], "links": [], "version": 0.4}}, "WORKFLOW_UI_FORMAT"),
        ({"workflow": "smoke_image", "steps": 5}, "BAD_INPUT"),  # smoke_image has no steps parameter
        ({"workflow": "smoke_image", "seed": -1}, "BAD_INPUT"),
    ],
)
def test_input_errors(stack, job, code):
    err = failure_of(runsync(stack, job))
    assert err["error_code"] == code, err
    assert err["error_message"] and err["fix"]


def test_ui_format_workflow_is_converted_and_run(stack):
    from tests.test_ui_convert import smoke_ui

    out = output_of(runsync(stack, {"workflow": smoke_ui()}))  # the editor's save of smoke_image
    image = Image.open(io.BytesIO(base64.b64decode(out["outputs"][0]["base64"])))
    assert image.size == (512, 512) and out["workflow"] == "inline"


def test_ui_format_that_cannot_be_converted_exactly_is_refused(stack):
    ui = json.loads((REPO / "tests/fixtures/ui_workflows/sd15_default.json").read_text())
    ui["nodes"][0]["type"] = "workflow>legacy group node"
    err = failure_of(runsync(stack, {"workflow": ui}))
    assert err["error_code"] == "WORKFLOW_UI_FORMAT" and "Export (API)" in err["fix"] + err["details"]["fix"]
    assert any(p["code"] == "UI_CONVERT_UNSUPPORTED" for p in err["details"]["problems"])
    # A node class this ComfyUI lacks is not a conversion problem: the judgement names it (issue 13).
    ui["nodes"][0]["type"] = "NodeFromAPackWeDontHave"
    err = failure_of(runsync(stack, {"workflow": ui}))
    assert err["error_code"] == "NODE_MISSING" and "NodeFromAPackWeDontHave" in err["error_message"], err


def test_unknown_node_is_node_missing_with_the_pack_before_queueing(stack):
    workflow = {
        "1": {"class_type": "WanVideoDecode", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    err = failure_of(runsync(stack, {"workflow": workflow}))
    assert err["error_code"] == "NODE_MISSING"
    first = err["findings"][0]
    assert first["code"] == "NODE_MISSING" and first["node_id"] == "1"
    assert "ComfyUI-WanVideoWrapper" in err["error_message"] and "ComfyUI-WanVideoWrapper" in err["fix"]


def test_value_out_of_range_is_named_with_node_and_input_before_queueing(stack):
    err = failure_of(runsync(stack, {"workflow": "smoke_image", "overrides": {"1": {"width": 999999}}}))
    assert err["error_code"] == "VALUE_OUT_OF_RANGE"
    finding = err["findings"][0]
    assert finding["node_id"] == "1" and finding["input"] == "width"
    assert "16384" in finding["message"] and "width" in err["fix"]


def test_raising_node_is_generation_error(stack):
    workflow = sleep_workflow(0)
    workflow["2"] = {"class_type": "RPTestRaise", "inputs": {"image": ["1", 0], "message": "kaboom 42"}}
    err = failure_of(runsync(stack, {"workflow": workflow}))
    assert err["error_code"] == "GENERATION_ERROR"
    assert err["details"]["node_id"] == "2" and err["details"]["node_type"] == "RPTestRaise"
    assert err["details"]["exception_type"].endswith("RuntimeError") and "kaboom 42" in err["error_message"]


def test_workflow_without_files_is_no_output(stack):
    workflow = sleep_workflow(0)
    workflow["3"] = {"class_type": "RPTestNoOutput", "inputs": {"image": ["2", 0]}}
    assert failure_of(runsync(stack, {"workflow": workflow}))["error_code"] == "NO_OUTPUT"


def test_sleeping_node_past_the_deadline_times_out_and_leaves_the_queue_empty(stack):
    envelope = runsync(stack, {"workflow": sleep_workflow(60), "timeout_s": 2})
    err = failure_of(envelope)
    assert err["error_code"] == "TIMEOUT"
    assert comfy_queue_ids(stack) == []
    # ComfyUI is healthy afterwards and runs the next job.
    assert output_of(runsync(stack, {"workflow": "smoke_image"}))["outputs"]
