"""Hostile jobs against the real stack, as an attacker holding the endpoint's API key would send them.

Each probe goes through the RunPod local API (/runsync) of one shared stack whose worker holds
secrets (conftest.SECRETS); `probes.attack` asserts the documented code and that nothing escaped.
"""

from __future__ import annotations

import base64
import io
import json
import os
import time

import pytest
import requests
from PIL import Image

from handler.runtime import Runtime
from tests.conftest import png_base64, runsync, stack_settings
from tests.security.conftest import SECRETS, tree
from tests.test_handler_inprocess import call, s3_server  # noqa: F401 - s3_server is a fixture
from workflows.ui_convert import MAX_UI_NODES

pytestmark = pytest.mark.stack


def load_and_save(image: str, loader: str = "LoadImage") -> dict:
    return {
        "1": {"class_type": loader, "inputs": {"image": image}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "probe"}},
    }


def empty(width: int = 8, height: int = 8, batch: int = 1) -> dict:
    return {"class_type": "EmptyImage", "inputs": {"width": width, "height": height, "batch_size": batch, "color": 0}}


# --- writes outside ComfyUI's directories -----------------------------------------------------------


@pytest.mark.parametrize("folder", ["../../../../tmp/pwned_dataset", "/tmp/pwned_dataset_abs", "plain_name"])
@pytest.mark.parametrize("node", ["SaveImageDataSetToFolder", "SaveImageTextDataSetToFolder"])
def test_dataset_writers_are_refused_in_inline_workflows(probes, node, folder):
    inputs = {"images": ["1", 0], "folder_name": folder, "filename_prefix": "x"}
    if node == "SaveImageTextDataSetToFolder":
        inputs["texts"] = "caption"
    result = probes.attack(
        f"write: {node} folder_name={folder}",
        {"workflow": {"1": empty(), "2": {"class_type": node, "inputs": inputs}}},
        "POLICY_DENIED",
    )
    finding = result["error"]["findings"][0]
    assert finding["node_id"] == "2" and node in finding["message"] and "UNSAFE_NODES" in finding["message"]
    assert not os.path.exists("/tmp/pwned_dataset_abs") and not os.path.exists("/tmp/pwned_dataset")


def test_a_save_prefix_climbing_out_leaves_nothing_behind(probes):
    """SaveLatent with '../persist' once left a file another job could load: the prefix is scoped to the
    job's folder and every file the job wrote is removed after the response (the tree check)."""
    workflow = {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "2": {"class_type": "SaveLatent", "inputs": {"samples": ["1", 0], "filename_prefix": "../persist"}},
    }
    probes.attack("write: SaveLatent prefix ../persist", {"workflow": workflow}, "NO_OUTPUT")
    assert not list(probes.stack.comfy_dir.rglob("*persist*"))


# --- reads outside them ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "/etc/hostname",
        "../../../../../../../../etc/hostname",
        "/dev/zero",
        "/proc/self/environ",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/hostname",
        "sub/../../x.png",
        "../x.png [output]",
    ],
)
@pytest.mark.parametrize("loader", ["LoadImage", "LoadImageMask"])
def test_loaders_cannot_read_outside(probes, loader, name):
    workflow = load_and_save(name, loader)
    if loader == "LoadImageMask":
        workflow["1"]["inputs"]["channel"] = "alpha"
        workflow["2"] = {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "probe"},
        }
        workflow["3"] = {"class_type": "MaskToImage", "inputs": {"mask": ["1", 0]}}
    result = probes.attack(f"read: {loader} {name}", {"workflow": workflow}, "PATH_REFUSED")
    assert result["error"]["findings"][0]["node_id"] == "1" and result["error"]["findings"][0]["input"] == "image"


@pytest.mark.parametrize(
    "node,value", [("LoadImageOutput", "/etc/hostname"), ("LoadVideo", "/etc/hostname"), ("LoadLatent", "/dev/zero")]
)
def test_other_core_loaders_cannot_read_outside(probes, node, value):
    key = {"LoadImageOutput": "image", "LoadVideo": "file", "LoadLatent": "latent"}[node]
    workflow = {"1": {"class_type": node, "inputs": {key: value}}, "2": {"class_type": "PreviewAny", "inputs": {}}}
    workflow["2"]["inputs"]["source"] = ["1", 0]
    probes.attack(f"read: {node} {value}", {"workflow": workflow}, "PATH_REFUSED")


def test_overrides_on_a_registered_workflow_cannot_read_outside(probes):
    result = probes.attack(
        "read: override of registered smoke_i2v LoadImage",
        {"workflow": "smoke_i2v", "image_base64": png_base64(16, 16), "overrides": {"1": {"image": "/etc/hostname"}}},
        "PATH_REFUSED",
    )
    assert result["error"]["findings"][0]["node_id"] == "1"


def test_symlinks_out_and_special_files_in_the_input_dir_are_refused(probes):
    input_dir = probes.stack.comfy_dir / "input"
    link, fifo = input_dir / "probe_link.png", input_dir / "probe_fifo.png"
    link.symlink_to("/etc/hostname")
    os.mkfifo(fifo)
    try:
        for name in ("probe_link.png", "probe_fifo.png"):
            result = probes.attack(f"read: {name} in the input dir", {"workflow": load_and_save(name)}, "PATH_REFUSED")
            assert "symlink" in result["error"]["error_message"] or "FIFO" in result["error"]["error_message"]
    finally:
        link.unlink()
        fifo.unlink()


# --- policy: path and URL nodes of packs --------------------------------------------------------------


@pytest.mark.parametrize(
    "node,inputs",
    [
        ("VHS_LoadVideoPath", {"video": "https://example.com/x.mp4"}),
        ("VHS_LoadImagesPath", {"directory": "/etc"}),
        ("VHS_LoadAudio", {"audio_file": "/etc/hostname"}),
        ("LoadImageDataSetFromFolder", {"folder": "."}),
    ],
)
def test_path_and_url_nodes_are_refused_by_the_default_policy(probes, node, inputs):
    workflow = {"1": {"class_type": node, "inputs": inputs}, "2": {"class_type": "PreviewAny", "inputs": {}}}
    workflow["2"]["inputs"]["source"] = ["1", 0]
    result = probes.attack(f"policy: inline {node}", {"workflow": workflow}, "POLICY_DENIED")
    assert node in result["error"]["error_message"]


# --- bombs and bounds --------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _many_frame_gif(frames: int = 300, side: int = 1024) -> bytes:
    """~13 kB: each frame differs from the last by one pixel, so each is stored as a 1×1 patch, yet
    every one decodes (and ComfyUI's LoadImage loads it) as a full side×side frame."""
    images = []
    for i in range(frames):
        image = Image.new("L", (side, side), 0)
        image.putpixel((i % side, 0), 255)
        images.append(image)
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:])
    return buf.getvalue()


def test_many_frame_gif_counts_every_frame(probes):
    gif = _many_frame_gif()
    result = probes.attack(
        f"bomb: {len(gif) // 1024} kB GIF of 300 frames 1024x1024",
        {"workflow": load_and_save("anim.gif"), "images": [{"name": "anim.gif", "image": _b64(gif)}]},
        "LIMIT_EXCEEDED",
    )
    assert "MAX_INPUT_PIXELS" in result["error"]["error_message"]


def test_decompression_bomb_is_refused(probes):
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")
    probes.attack("bomb: 144 Mpx PNG", {"workflow": "smoke_i2v", "image_base64": _b64(buf.getvalue())}, "INVALID_IMAGE")


@pytest.mark.parametrize(
    "label,node",
    [
        ("width 16384", empty(width=16384)),
        ("batch 4096", empty(batch=4096)),
    ],
)
def test_sizes_and_batches_are_bounded_by_the_deployment(probes, label, node):
    workflow = {"1": node, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p"}}}
    probes.attack(f"bomb: EmptyImage {label}", {"workflow": workflow}, "LIMIT_EXCEEDED")


def test_frames_are_bounded_by_the_deployment(probes):
    probes.attack(
        "bomb: RepeatImageBatch 4096 through overrides",
        {"workflow": "smoke_i2v", "image_base64": png_base64(16, 16), "overrides": {"3": {"amount": 4096}}},
        "LIMIT_EXCEEDED",
    )


def nested_subgraphs(depth: int, fan_out: int) -> dict:
    """An editor workflow of a few kB whose subgraphs expand to fan_out ** depth nodes."""
    definitions = []
    for level in range(depth):
        inner = (
            [{"id": i + 1, "type": f"sg{level + 1}", "mode": 0, "inputs": [], "outputs": []} for i in range(fan_out)]
            if level + 1 < depth
            else [{"id": 1, "type": "EmptyImage", "mode": 0, "widgets_values": [8, 8, 1, 0]}]
        )
        definitions.append({"id": f"sg{level}", "nodes": inner, "links": [], "inputs": [], "outputs": []})
    definitions[-1]["id"] = f"sg{depth - 1}"
    return {
        "nodes": [{"id": 1, "type": "sg0", "mode": 0, "inputs": [], "outputs": []}],
        "links": [],
        "definitions": {"subgraphs": definitions},
        "version": 0.4,
    }


def test_editor_expansion_is_bounded_before_it_allocates(probes):
    ui = nested_subgraphs(depth=12, fan_out=10)  # 10^11 nodes once expanded
    size = len(json.dumps(ui))
    result = probes.attack(f"bomb: {size} B editor workflow of nested subgraphs", {"workflow": ui}, "LIMIT_EXCEEDED")
    assert result["seconds"] < 10 and f"{MAX_UI_NODES:,}" in result["error"]["error_message"]


def test_a_large_text_output_counts_against_the_payload_budget(probes):
    text = "x" * (1_200_000)  # MAX_PAYLOAD_MB=1 on this stack
    workflow = {
        "1": {"class_type": "PrimitiveStringMultiline", "inputs": {"value": text}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }
    result = probes.attack("payload: 1.2 MB text output", {"workflow": workflow}, "OUTPUT_TOO_LARGE")
    assert "MAX_PAYLOAD_MB" in result["error"]["error_message"]


def test_a_successful_response_stays_within_the_payload_budget(probes):
    result = probes.attack(
        "payload: smoke_i2v video (base64 twice)",
        {"workflow": "smoke_i2v", "image_base64": png_base64(64, 64), "frames": 12, "width": 128, "height": 128},
        None,
    )
    assert result["output"]["status"] == "success" and result["output"]["video_base64"]
    assert len(json.dumps(result["output"]).encode()) <= 1024 * 1024


# --- secrets -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_node_that_echoes_a_secret_leaks_nothing(probes, name):
    raised = probes.attack(
        f"secret: node raises with ${name}",
        {"workflow": {"1": {"class_type": "RPSecEnvEcho", "inputs": {"name": name, "mode": "raise"}}}},
        "GENERATION_ERROR",
    )
    assert raised["error"]["logs_tail"]  # the log tail came back, with the echoed line masked
    text = probes.attack(
        f"secret: node returns ${name} as a text output",
        {"workflow": {"1": {"class_type": "RPSecEnvEcho", "inputs": {"name": name, "mode": "text"}}}},
        None,
    )
    assert text["output"]["status"] == "success"
    # masked by the worker, or never seen at all when ComfyUI is started without the worker's secrets
    assert text["output"]["outputs"][0]["text"] in (f"{name}=***", f"{name}=<unset>")
    probes.attack("secret: diagnose after the echo", {"mode": "diagnose"}, None)


def test_a_node_that_dumps_its_whole_environment_finds_no_credential(probes):
    """Red team hole 6: HF_ENDPOINT=https://u:<pw>@mirror reached ComfyUI through the HF_ prefix. A value
    carrying credentials is never passed to ComfyUI, whatever its name; the password is in no response
    byte and no worker log line (`attack` checks both, the password alone included)."""
    dumped = probes.attack(
        "secret: node prints and returns its whole environment",
        {"workflow": {"1": {"class_type": "RPSecEnvEcho", "inputs": {"name": "", "mode": "environ"}}}},
        None,
    )
    assert dumped["output"]["status"] == "success"
    environ = json.loads(dumped["output"]["outputs"][0]["text"])
    assert "PATH" in environ and not set(SECRETS) & set(environ)
    assert environ["HOME"].endswith("/user/home")  # ComfyUI's own environment, as it printed it
    for log in (probes.stack.log_file, probes.stack.comfy_log):  # from the start, not only this job's lines
        assert "sekrit123" not in log.read_text(errors="replace"), log


@pytest.mark.parametrize("response_format", ["native", "worker-comfyui"])
def test_a_jobs_comfy_org_key_is_in_no_response_and_no_log_line(probes, response_format):
    """A job's own Comfy.org key (either of its names) that its workflow also carries where ComfyUI's error
    echoes it: masked in the answer and in the worker's log (the environment's secrets are not enough)."""
    key = "comfy-org-PROBE-key-3c9e71"
    for name in ("comfy_org_api_key", "api_key_comfy_org"):
        log_size = probes.stack.log_file.stat().st_size
        job = {"workflow": load_and_save(key), name: key, "response_format": response_format, key: "x"}
        if response_format == "native":
            del job[key]  # native mode refuses an unknown key (before anything runs): kept to the echo
        envelope = runsync(probes.stack, job)
        assert envelope.get("error") or envelope.get("output"), envelope
        assert key not in json.dumps(envelope), envelope
        assert "***" in json.dumps(envelope), envelope  # the echo was there, and masked
        with probes.stack.log_file.open("rb") as fh:
            fh.seek(log_size)
            new_log = fh.read().decode("utf-8", "replace")
        assert key not in new_log, new_log[-2000:]


# --- the worker afterwards ---------------------------------------------------------------------------


def test_widened_policy_still_confines_paths_and_cleans_up(probes):
    """ALLOW_UNSAFE_NODES lifts the default refusal of a dataset writer; its folder must still stay inside
    the output directory, and what it wrote is removed after the response. In-process (the setting
    differs from the shared stack's) against the same real ComfyUI."""
    stack = probes.stack
    rt = Runtime(stack_settings(stack, ALLOW_UNSAFE_NODES="SaveImageDataSetToFolder"))
    rt.events.start(wait=10)
    before = tree(stack.run_dir)
    try:
        # "ds" runs: the node creates output/ds (outside the job's own folder), then fails on the
        # job-scoped filename prefix; the folder it created must be gone after the response.
        cases = (("../../escape_ds", "PATH_REFUSED"), ("/tmp/escape_ds", "PATH_REFUSED"), ("ds", "GENERATION_ERROR"))
        for folder, code in cases:
            workflow = {
                "1": empty(),
                "2": {
                    "class_type": "SaveImageDataSetToFolder",
                    "inputs": {"images": ["1", 0], "folder_name": folder, "filename_prefix": "x"},
                },
            }
            started = time.monotonic()
            result = call(rt, {"workflow": workflow}, job_id=f"widened-{folder}")
            got = json.loads(result["error"])["error_code"] if "error" in result else None
            record = {
                "probe": f"write: widened policy (in-process), SaveImageDataSetToFolder folder_name={folder}",
                "code": got,
                "expected": code,
                "seconds": round(time.monotonic() - started, 3),
                "contained": False,
            }
            probes.tried.append(record)
            assert got == code, result
            assert tree(stack.run_dir) == before
            assert not os.path.exists("/tmp/escape_ds")
            record["contained"] = True
    finally:
        rt.events.close()


@pytest.mark.parametrize(
    "env,workflow,rule",
    [
        ({"ALLOW_INLINE_WORKFLOWS": "0"}, None, "registered workflows only"),
        ({"DENY_NODES": "EmptyImage"}, None, "DENY_NODES"),
        ({"ALLOW_NODES": "SaveImage"}, None, "ALLOW_NODES"),
    ],
)
def test_deployment_policy_settings(probes, env, workflow, rule):
    rt = Runtime(stack_settings(probes.stack, **env))
    job = {"1": empty(), "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "p"}}}
    try:
        result = call(rt, {"workflow": workflow or job})
        registered = call(rt, {"workflow": "smoke_image"}) if "ALLOW_INLINE_WORKFLOWS" in env else None
    finally:
        rt.events.close()
    body = json.loads(result["error"])
    assert body["error_code"] == "POLICY_DENIED" and rule in body["error_message"], body
    if registered is not None:
        assert registered.get("status") == "success", registered


# --- S3 keys -----------------------------------------------------------------------------------------


def test_outputs_of_one_job_never_share_an_s3_key(probes, s3_server):  # noqa: F811
    """Two outputs a/x.png and b/x.png of one job once got the same key and one was lost."""
    import boto3

    key_id, secret = "AKIAPROBEKEY0001", "probe-bucket-secret-0001"
    s3 = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    )
    s3.create_bucket(Bucket="probe-outs")
    rt = Runtime(
        stack_settings(
            probes.stack,
            BUCKET_ENDPOINT_URL=s3_server,
            BUCKET_ACCESS_KEY_ID=key_id,
            BUCKET_SECRET_ACCESS_KEY=secret,
            BUCKET_NAME="probe-outs",
            PRESIGN_EXPIRES_S="120",
        )
    )
    rt.events.start(wait=10)  # connected before the first prompt, as the worker's main() does
    workflow = {
        "1": empty(8, 8),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a/x"}},
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "b/x"}},
    }
    try:
        result = call(rt, {"workflow": workflow}, job_id="collide")
    finally:
        rt.events.close()
    urls = [o["url"] for o in result["outputs"]]
    assert len(urls) == 2 and len(set(urls)) == 2
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="probe-outs", Prefix="collide/")["Contents"])
    assert keys == ["collide/a/x_00001_.png", "collide/b/x_00001_.png"]
    bodies = {requests.get(u, timeout=10).content for u in urls}
    assert len(bodies) == 2  # both images really there, different pixels
    assert all("X-Amz-Expires=120" in u and key_id in u and secret not in u for u in urls)
    assert secret not in json.dumps(result)
