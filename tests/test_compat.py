"""The official worker's response shape, checked against its documented examples."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO
from workflows.compat import WORKER_COMFYUI, to_worker_comfyui, unsupported_key_hint, with_warnings
from workflows.request import GenerateRequest, parse_request

# Ours, as generate returns it (README, API contract).
OURS = {
    "workflow": "smoke_image",
    "prompt_id": "p1",
    "status": "success",
    "outputs": [
        {"node_id": "3", "kind": "image", "filename": "ComfyUI_00001_.png", "mime": "image/png", "base64": "iVBO"},
        {"node_id": "7", "kind": "video", "filename": "clip_00001.mp4", "mime": "video/mp4", "base64": "AAAA"},
        {"node_id": "9", "kind": "audio", "filename": "a.flac", "mime": "audio/flac", "base64": "ZkxhQw"},
        {"node_id": "5", "kind": "text", "mime": "text/plain", "text": "hello"},
    ],
    "timings": {"total_ms": 12.0},
}


def test_base64_outputs_take_the_official_shape():
    # the official worker's tests/test_handler.py: images under `images`, native and VideoHelperSuite
    # videos under `videos`; audio under `audio` (its handler.py); text has no place and is left out
    shaped = to_worker_comfyui(OURS)
    assert shaped == {
        "images": [{"filename": "ComfyUI_00001_.png", "type": "base64", "data": "iVBO"}],
        "videos": [{"filename": "clip_00001.mp4", "type": "base64", "data": "AAAA"}],
        "audio": [{"filename": "a.flac", "type": "base64", "data": "ZkxhQw"}],
    }
    only_video = to_worker_comfyui({"outputs": [OURS["outputs"][1]]})
    assert only_video == {"images": [], "videos": [{"filename": "clip_00001.mp4", "type": "base64", "data": "AAAA"}]}


def test_s3_outputs_match_the_documented_example_response():
    # docs/configuration.md of runpod-workers/worker-comfyui, "Example S3 Response": output.images[0]
    documented = {
        "filename": "ComfyUI_00001_.png",
        "type": "s3_url",
        "data": "https://your-bucket-name.s3.your-region.amazonaws.com/sync-uuid-string/ComfyUI_00001_.png",
    }
    ours = {"outputs": [{"kind": "image", "filename": "ComfyUI_00001_.png", "url": documented["data"]}]}
    assert to_worker_comfyui(ours) == {"images": [documented]}


def test_a_result_without_files_answers_the_official_empty_status():
    # the official worker's tests/test_handler.py: {"status": "success_no_images", "images": []}
    assert to_worker_comfyui({"outputs": [{"kind": "text", "text": "x"}]}) == {
        "status": "success_no_images",
        "images": [],
    }


def test_warnings_become_the_official_errors_list():
    shaped = to_worker_comfyui(with_warnings({"outputs": OURS["outputs"][:1]}, ["input.x ignored"]))
    assert shaped["errors"] == ["input.x ignored"] and shaped["images"][0]["type"] == "base64"
    assert with_warnings({"a": 1}, []) == {"a": 1}


def test_official_only_keys_name_the_alternative():
    assert "webhook" in unsupported_key_hint("callback_url")
    assert unsupported_key_hint("comfy_org_api_key") is None  # accepted now, under both names
    assert unsupported_key_hint("seed") is None
    assert WORKER_COMFYUI == "worker-comfyui"


OFFICIAL = {  # the official worker's documented request, with its per-request key and a key it ignores
    "workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}},
    "images": [{"name": "input.png", "image": "iVBORw0KGgo="}],
    "comfy_org_api_key": "comfy-org-key-123456",
    "my_app_request_id": "r-42",
}


def test_the_official_request_is_refused_natively_only_for_its_unknown_key():
    from workflows.errors import JobError
    from workflows.request import GenerateRequest, parse_request

    with pytest.raises(JobError) as err:
        parse_request(OFFICIAL)
    assert err.value.code == "BAD_INPUT" and err.value.details["unknown_keys"] == ["my_app_request_id"]
    known = {k: v for k, v in OFFICIAL.items() if k != "my_app_request_id"}
    request = parse_request(known)
    assert isinstance(request, GenerateRequest) and request.images[0].name == "input.png"
    assert request.comfy_org_api_key == "comfy-org-key-123456" and request.warnings == ()
    assert "comfy-org-key" not in repr(request)  # a secret
    with pytest.raises(JobError, match="callback_url: use RunPod's own `webhook`"):
        parse_request({**known, "callback_url": "https://example.com/hook"})
    with pytest.raises(JobError, match="response_format must be one of native, worker-comfyui"):
        parse_request({"response_format": "v3"})


@pytest.mark.parametrize("how", ["deployment", "request"])
def test_compatibility_mode_runs_the_official_request_unchanged_and_warns(how: str):
    from workflows.request import GenerateRequest, parse_request

    job = dict(OFFICIAL, callback_url="https://example.com/hook")
    if how == "deployment":  # RESPONSE_FORMAT=worker-comfyui
        request = parse_request(job, compat=True)
    else:
        request = parse_request({**job, "response_format": "worker-comfyui"})
    assert isinstance(request, GenerateRequest) and request.comfy_org_api_key == "comfy-org-key-123456"
    assert request.warnings == (
        "input.callback_url ignored: not a key of this worker (use RunPod's own `webhook` field of the /run "
        "request instead)",
        "input.my_app_request_id ignored: not a key of this worker",
    )
    assert parse_request({"mode": "test"}, compat=True) is not None
    from workflows.errors import JobError

    with pytest.raises(JobError):  # diagnose and test are this worker's own modes: still strict
        parse_request({"mode": "test", "typo": 1}, compat=True)


def test_compatibility_mode_takes_a_json_string_and_image_objects_with_more_keys():
    from workflows.errors import JobError
    from workflows.request import GenerateRequest, parse_request

    job = {"workflow": "smoke_image", "images": [{"name": "a.png", "image": "iVBO", "mime": "image/png"}]}
    request = parse_request(json.dumps(job), compat=True)  # the official worker json.loads a string input
    assert isinstance(request, GenerateRequest) and request.images[0].name == "a.png"
    assert request.warnings == ("input.images[0].mime ignored: an image is only name and image",)
    with pytest.raises(JobError, match="images\\[0\\] must be"):
        parse_request(job)
    with pytest.raises(JobError, match="input must be a JSON object, got str"):
        parse_request(json.dumps(job))
    with pytest.raises(JobError, match="not JSON"):
        parse_request("{oops", compat=True)


def test_one_upstream_versions_key_name_is_taken_too():
    from workflows.request import GenerateRequest, parse_request

    # handler.py of runpod-workers/worker-comfyui at 0a41edb: job_input.get("api_key_comfy_org")
    request = parse_request({"workflow": "smoke_image", "api_key_comfy_org": "older-name-key-1"})
    assert isinstance(request, GenerateRequest) and request.comfy_org_api_key == "older-name-key-1"
    with pytest.raises(Exception, match="comfy_org_api_key must be a string"):
        parse_request({"workflow": "smoke_image", "comfy_org_api_key": 5})


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://my-bucket.s3.eu-west-1.amazonaws.com", "eu-west-1"),
        ("https://s3.us-east-2.amazonaws.com", None),  # no ".s3." in it: the SDK reads no region either
        ("https://my-bucket.s3.us-west-004.backblazeb2.com", "us-west-004"),
        ("https://my-space.nyc3.digitaloceanspaces.com", "nyc3"),
        ("https://abc.r2.cloudflarestorage.com", None),
        ("http://127.0.0.1:9000", None),
    ],
)
def test_the_bucket_region_is_read_from_the_url_as_the_runpod_sdk_reads_it(url: str, region: str | None):
    from handler.outputs import endpoint_region

    assert endpoint_region(url) == region


def test_without_bucket_name_uploads_go_where_the_official_worker_puts_them():
    import time

    from handler.config import Settings
    from handler.outputs import S3Store, sdk_bucket

    url = "https://my-bucket.s3.eu-west-1.amazonaws.com"
    native = Settings.from_env({"BUCKET_ENDPOINT_URL": url})  # a native endpoint keeps its own defaults
    assert native.bucket_name == "comfyui-outputs" and native.presign_expires_s == 3600
    settings = Settings.from_env({"BUCKET_ENDPOINT_URL": url, "RESPONSE_FORMAT": "worker-comfyui"})
    assert settings.bucket_name is None and settings.presign_expires_s == 604800  # rp_upload: ExpiresIn=604800
    assert sdk_bucket(time.mktime((2026, 12, 6, 12, 0, 0, 0, 0, -1))) == "12-26"  # rp_upload: strftime("%m-%y")
    store = S3Store(settings.bucket_endpoint_url or "", "AKIAEXAMPLE", "secret", None)
    url = store.client.generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": "job-1/x.png"}, ExpiresIn=store.expires_s
    )
    # path-style on the virtual-hosted URL: AWS reads the bucket from the host, the month is a key prefix
    assert url.startswith(f"https://my-bucket.s3.eu-west-1.amazonaws.com/{sdk_bucket()}/job-1/x.png?")
    assert "%2Feu-west-1%2Fs3%2F" in url and "X-Amz-Expires=604800" in url
    named = S3Store("http://127.0.0.1:9", "k", "s", "outs", expires_s=60)
    assert named.bucket == "outs"


def test_api_nodes_stay_disabled_whatever_comfy_extra_args_adds():
    from handler.config import Settings
    from handler.supervisor import API_NODES_OFF, comfy_command

    assert API_NODES_OFF in comfy_command(Settings.from_env({}))
    extra = comfy_command(Settings.from_env({"COMFY_EXTRA_ARGS": "--verbose DEBUG"}))
    assert API_NODES_OFF in extra and extra[-2:] == ["--verbose", "DEBUG"]
    twice = comfy_command(Settings.from_env({"COMFY_EXTRA_ARGS": "--cpu --disable-api-nodes"}))
    assert twice.count(API_NODES_OFF) == 1
    assert API_NODES_OFF not in comfy_command(Settings.from_env({"COMFY_API_NODES": "1"}))  # on purpose
    dockerfile = (REPO / "Dockerfile").read_text()
    assert 'COMFY_EXTRA_ARGS=""' in dockerfile  # the worker adds the flag: a user's COMFY_EXTRA_ARGS can't drop it


def test_only_image_file_names_are_renamed_in_the_workflow():
    from workflows.patch import apply_parameters

    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "input.png"}},
        "2": {"class_type": "KSampler", "inputs": {"sampler_name": "euler"}},
    }
    renames = {"input.png": "job_1_0_input.png", "euler": "job_1_1_euler.png"}
    patched = apply_parameters(workflow, None, {}, renames=renames)
    assert patched["1"]["inputs"]["image"] == "job_1_0_input.png"
    assert patched["2"]["inputs"]["sampler_name"] == "euler"


def test_ignored_keys_are_named_within_a_bound():
    """Compatibility mode echoes the names of the keys it ignores: a job can't grow its answer with them."""
    job = {"workflow": "smoke_image", "x" * 10_000: 1, **{f"k{i:03}": i for i in range(500)}}
    request = parse_request(job, compat=True)
    assert isinstance(request, GenerateRequest)
    assert len(request.warnings) == 21 and request.warnings[-1] == "481 more unknown input keys ignored"
    assert sum(map(len, request.warnings)) < 3000
