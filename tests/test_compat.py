"""The official worker's response shape, checked against its documented examples."""

from __future__ import annotations

from workflows.compat import WORKER_COMFYUI, to_worker_comfyui, unsupported_key_hint

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
    shaped = to_worker_comfyui(OURS)
    assert shaped == {
        "images": [
            {"filename": "ComfyUI_00001_.png", "type": "base64", "data": "iVBO"},
            {"filename": "clip_00001.mp4", "type": "base64", "data": "AAAA"},
        ],
        "audio": [{"filename": "a.flac", "type": "base64", "data": "ZkxhQw"}],
    }


def test_s3_outputs_match_the_documented_example_response():
    # docs/configuration.md of runpod-workers/worker-comfyui, "Example S3 Response": output.images[0]
    documented = {
        "filename": "ComfyUI_00001_.png",
        "type": "s3_url",
        "data": "https://your-bucket-name.s3.your-region.amazonaws.com/sync-uuid-string/ComfyUI_00001_.png",
    }
    ours = {"outputs": [{"kind": "image", "filename": "ComfyUI_00001_.png", "url": documented["data"]}]}
    assert to_worker_comfyui(ours) == {"images": [documented]}


def test_text_only_output_says_success_no_output_like_the_official_worker():
    assert to_worker_comfyui({"outputs": [{"kind": "text", "text": "x"}]}) == {"status": "success_no_output"}


def test_official_only_keys_name_the_alternative():
    assert "API nodes" in unsupported_key_hint("comfy_org_api_key")
    assert "webhook" in unsupported_key_hint("callback_url")
    assert unsupported_key_hint("seed") is None
    assert WORKER_COMFYUI == "worker-comfyui"


def test_the_official_request_is_accepted_and_its_unsupported_keys_name_the_alternative():
    import pytest

    from workflows.errors import JobError
    from workflows.request import GenerateRequest, parse_request

    # The official worker's documented request: input.workflow + input.images[{name, image}].
    request = parse_request(
        {
            "workflow": {"1": {"class_type": "EmptyImage", "inputs": {}}},
            "images": [{"name": "input.png", "image": "iVBORw0KGgo="}],
        }
    )
    assert isinstance(request, GenerateRequest) and request.images[0].name == "input.png"
    assert parse_request({"response_format": "worker-comfyui"}).response_format == "worker-comfyui"
    with pytest.raises(JobError) as err:
        parse_request({"workflow": "smoke_image", "comfy_org_api_key": "k"})
    assert err.value.code == "BAD_INPUT" and "API nodes" in err.value.message
    assert "comfy_org_api_key" in err.value.details["hints"]
    with pytest.raises(JobError, match="response_format must be one of native, worker-comfyui"):
        parse_request({"response_format": "v3"})


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
