"""When the pre-queue judgement passes (its cached lists are stale) and ComfyUI still rejects the prompt,
the job answers with the same finding codes; ComfyUI's raw text only in details."""

from __future__ import annotations

import json
import uuid

import pytest

from handler.runtime import Runtime
from tests.conftest import png_base64, stack_settings

pytestmark = pytest.mark.stack


def call(runtime: Runtime, job_input: dict) -> dict:
    import handler.worker as worker
    from handler.worker import handle

    worker._runtime = runtime
    try:
        return handle({"id": "t", "input": job_input})
    finally:
        worker._runtime = None


def test_a_rejection_after_a_stale_judgement_is_mapped_to_a_finding_code(stack):
    import base64

    runtime = Runtime(stack_settings(stack))
    try:
        name = f"i13_stale_{uuid.uuid4().hex[:8]}.png"
        path = runtime.settings.input_dir / name
        path.write_bytes(base64.b64decode(png_base64()))
        try:
            assert name in json.dumps(runtime.object_info(refresh=True)["LoadImage"])  # cached while it exists
        finally:
            path.unlink()
        workflow = {
            "1": {"class_type": "LoadImage", "inputs": {"image": name}},
            "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "stale"}},
        }
        out = call(runtime, {"workflow": workflow})
    finally:
        runtime.events.close()
    err = json.loads(out["error"]) if isinstance(out.get("error"), str) else out
    assert err["error_code"] == "VALUE_NOT_IN_LIST", err
    assert err["findings"][0]["node_id"] == "1" and err["findings"][0]["input"] == "image"
    raw = err["details"]["node_errors"][0]  # ComfyUI's own words stay in details only
    assert raw["type"] == "custom_validation_failed" and "Invalid image file" in raw["details"]
    assert "comfyui_message" in err["details"] and "Invalid image file" not in err["error_message"]
    assert "input.images" in err["fix"]
