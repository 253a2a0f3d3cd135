"""Handler behaviour that needs settings the shared stack doesn't run with: called in-process
against the same real ComfyUI (bucket output via a real S3-compatible server, payload limits,
concurrent jobs)."""

from __future__ import annotations

import base64
import io
import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import av
import pytest
import requests
from PIL import Image

from handler.runtime import Runtime
from handler.worker import handle
from tests.conftest import png_base64, stack_settings

pytestmark = pytest.mark.stack


def call(runtime: Runtime, job_input: dict, job_id: str = "t") -> dict:
    """handle() with this runtime injected: no global is swapped, so concurrent calls can't see another's."""
    return handle({"id": job_id, "input": job_input}, runtime)


@pytest.fixture(scope="module")
def runtime(stack):
    rt = Runtime(stack_settings(stack))
    yield rt
    rt.events.close()


def first_frame_color(video_b64: str) -> tuple[int, int, int]:
    with av.open(io.BytesIO(base64.b64decode(video_b64))) as container:
        frame = next(container.decode(video=0)).to_image().convert("RGB")
    return frame.getpixel((frame.width // 2, frame.height // 2))


@pytest.mark.parametrize("jobs", [2, 8])
def test_concurrent_jobs_each_get_their_own_outputs(runtime, jobs):
    colors = [((37 * i) % 256, (90 + 53 * i) % 256, (200 - 29 * i) % 256) for i in range(jobs)]

    def one(i: int) -> dict:
        return call(
            runtime,
            {
                "workflow": "smoke_i2v",
                "image_base64": png_base64(64, 64, colors[i]),
                "frames": 4,
                "width": 64,
                "height": 64,
            },
            job_id=f"conc-{jobs}-{i}",
        )

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, range(jobs)))
    for color, result in zip(colors, results, strict=True):
        assert "error" not in result, result.get("error")
        assert len(result["outputs"]) == 1
        got = first_frame_color(result["video_base64"])
        assert all(abs(a - b) <= 12 for a, b in zip(got, color, strict=True)), (got, color)  # H.264 is lossy


def test_output_too_large_without_a_bucket(stack):
    rt = Runtime(stack_settings(stack, MAX_PAYLOAD_MB="0.001"))
    try:
        result = call(rt, {"workflow": "smoke_image"})
    finally:
        rt.events.close()
    body = json.loads(result["error"])
    assert body["error_code"] == "OUTPUT_TOO_LARGE" and "BUCKET_ENDPOINT_URL" in body["fix"]
    assert body["details"]["outputs"][0]["kind"] == "image"
    assert list((stack.comfy_dir / "output").glob("job_*")) == []  # nothing left behind


@pytest.fixture(scope="module")
def s3_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # moto's server imports a lot: slow to answer on a loaded machine
    while True:
        try:
            requests.get(url, timeout=5)
            break
        except requests.RequestException:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"the S3 test server (moto) did not answer at {url} within 90 s")
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def test_outputs_go_to_s3_as_presigned_urls(stack, s3_server):
    import boto3

    key_id, secret = "AKIATESTKEY0000", "s3cr3t-value-that-must-not-leak"
    boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    ).create_bucket(Bucket="outs")
    rt = Runtime(
        stack_settings(
            stack,
            BUCKET_ENDPOINT_URL=s3_server,
            BUCKET_ACCESS_KEY_ID=key_id,
            BUCKET_SECRET_ACCESS_KEY=secret,
            BUCKET_NAME="outs",
        )
    )
    job = {"workflow": "smoke_i2v", "image_base64": png_base64(32, 32), "frames": 3, "width": 32, "height": 32}
    try:
        result = call(rt, job, job_id="s3job")
        official = call(rt, {**job, "response_format": "worker-comfyui"}, job_id="s3compat")
    finally:
        rt.events.close()
    # The official worker's shape carries the same working URL: the access key id in its credential
    # scope (an identifier, never the secret) must survive redaction.
    [item] = official["videos"]  # the official worker's newer releases list videos apart from images
    assert official["images"] == []
    assert item["type"] == "s3_url" and f"X-Amz-Credential={key_id}" in item["data"]
    assert requests.get(item["data"], timeout=10).status_code == 200
    assert secret not in json.dumps(official)
    out = result["outputs"][0]
    assert "base64" not in out and out["url"].startswith(s3_server)
    assert result["video_url"] == out["url"]
    body = requests.get(out["url"], timeout=10).content
    assert len(body) == out["size_bytes"]
    with av.open(io.BytesIO(body)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3
    assert secret not in json.dumps(result)


def test_a_worker_comfyui_request_runs_unchanged_with_the_official_bucket_semantics(stack, s3_server):
    """The official worker's request as its users send it (inline API workflow, its per-request key, a key of
    their own app), on a deployment set up as theirs: RESPONSE_FORMAT=worker-comfyui, the BUCKET_* variables
    without BUCKET_NAME. The answer is the official shape; the file lands where the runpod SDK puts it (the
    month's bucket, sent path-style) behind a 7-day presigned URL; the key is never echoed."""
    import boto3

    from handler.outputs import sdk_bucket
    from tests.conftest import REPO

    key_id, secret, comfy_key = "AKIACOMPATKEY00", "compat-bucket-secret-0001", "comfy-org-key-never-echoed"
    s3 = boto3.client(
        "s3", endpoint_url=s3_server, aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="us-east-1"
    )
    s3.create_bucket(Bucket=sdk_bucket())
    rt = Runtime(
        stack_settings(
            stack,
            BUCKET_ENDPOINT_URL=s3_server,
            BUCKET_ACCESS_KEY_ID=key_id,
            BUCKET_SECRET_ACCESS_KEY=secret,
            RESPONSE_FORMAT="worker-comfyui",
            BUCKET_PREFIX="/outputs/comfyui/",
        )
    )
    workflow = json.loads((REPO / "workflows/registry/smoke_image.json").read_text())
    job = {"workflow": workflow, "comfy_org_api_key": comfy_key, "my_app_request_id": "r-42"}
    try:  # as a JSON string, which the official worker also takes
        result = handle({"id": "compat-job-1", "input": json.dumps(job)}, rt)
    finally:
        rt.events.close()
    assert set(result) == {"images", "errors"}, result
    [item] = result["images"]
    assert item["type"] == "s3_url" and "X-Amz-Expires=604800" in item["data"]
    assert item["data"].startswith(f"{s3_server}/{sdk_bucket()}/outputs/comfyui/compat-job-1/")  # BUCKET_PREFIX
    assert requests.get(item["data"], timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=sdk_bucket())["Contents"]]
    assert any(k.startswith("outputs/comfyui/compat-job-1/") and k.endswith(".png") for k in keys), keys
    assert result["errors"][0] == "input.my_app_request_id ignored: not a key of this worker"
    assert "API nodes are disabled" in result["errors"][1]
    text = json.dumps(result)
    assert comfy_key not in text and secret not in text


def test_secrets_never_appear_in_error_responses(stack):
    secret = "bucket-secret-XYZ-123"
    rt = Runtime(
        stack_settings(
            stack,
            BUCKET_ENDPOINT_URL="http://127.0.0.1:9",
            BUCKET_ACCESS_KEY_ID="AKIA-ID-1",
            BUCKET_SECRET_ACCESS_KEY=secret,
        )
    )
    try:
        result = call(rt, {"workflow": "smoke_image"})
    finally:
        rt.events.close()
    assert json.loads(result["error"])["error_code"] == "OUTPUT_UPLOAD_FAILED"
    assert secret not in json.dumps(result) and "AKIA-ID-1" not in json.dumps(result)


def test_progress_updates_are_sent(stack, monkeypatch):
    import runpod

    from tests.conftest import sleep_workflow

    sent = []
    monkeypatch.setattr(runpod.serverless, "progress_update", lambda job, update: sent.append((job["id"], update)))
    workflow = sleep_workflow(0.3)
    workflow["4"] = {
        "class_type": "ImageScale",
        "inputs": {"image": ["2", 0], "upscale_method": "bilinear", "width": 32, "height": 32, "crop": "disabled"},
    }
    rt = Runtime(stack_settings(stack, PROGRESS_INTERVAL_S="0.1"))  # the sleep node outlasts the interval
    try:
        result = call(rt, {"workflow": workflow}, job_id="progress-job")
        assert "error" not in result
        assert sent and all(job_id == "progress-job" for job_id, _ in sent)
        assert {"node", "value", "max", "nodes_done", "nodes_total"} <= set(sent[-1][1])
        assert Image.open(io.BytesIO(base64.b64decode(result["outputs"][0]["base64"]))).size == (64, 64)
        # A job done within the interval gets its result and no update (none can arrive after it).
        sent.clear()
        rt.settings = stack_settings(stack, PROGRESS_INTERVAL_S="60")
        assert "error" not in call(rt, {"workflow": workflow}, job_id="quick-job")
        assert sent == []
    finally:
        rt.events.close()
