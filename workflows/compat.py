"""Compatibility with the official worker (runpod-workers/worker-comfyui), so clients can switch over.

Pure. Its request (`input.workflow` + `input.images[{name, image}]`) is already ours; its response
shape is offered per deployment (RESPONSE_FORMAT) or per request (`response_format`):

    {"images": [{"filename": "ComfyUI_00001_.png", "type": "base64" | "s3_url", "data": "..."}],
     "audio":  [... the same ...]}

Source: the official worker's handler.py and docs/configuration.md ("Example S3 Response").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NATIVE = "native"
WORKER_COMFYUI = "worker-comfyui"
RESPONSE_FORMATS: tuple[str, ...] = (NATIVE, WORKER_COMFYUI)

# Input keys of the official worker that we do not take, with what to send instead.
UNSUPPORTED_KEYS: dict[str, str] = {
    "comfy_org_api_key": (
        "ComfyUI API nodes (paid Comfy.org nodes) are disabled on this worker; use a workflow of local nodes"
    ),
    "callback_url": "use RunPod's own `webhook` field of the /run request instead",
}


def unsupported_key_hint(key: str) -> str | None:
    """What to send instead of an official-worker input key this worker doesn't take, if it is one."""
    return UNSUPPORTED_KEYS.get(key)


def to_worker_comfyui(response: Mapping[str, Any]) -> dict[str, Any]:
    """Our generate response in the official worker's shape. Images and videos go under `images`
    (the official worker lists ComfyUI's video files there too), audio under `audio`; text outputs
    have no place in that shape and are left out."""
    shaped: dict[str, list[dict[str, Any]]] = {"images": [], "audio": []}
    for output in response.get("outputs") or []:
        key = {"image": "images", "video": "images", "audio": "audio"}.get(str(output.get("kind")))
        if key is None:
            continue
        if "url" in output:
            item = {"filename": output.get("filename"), "type": "s3_url", "data": output["url"]}
        elif "base64" in output:
            item = {"filename": output.get("filename"), "type": "base64", "data": output["base64"]}
        else:
            continue
        shaped[key].append(item)
    result: dict[str, Any] = {k: v for k, v in shaped.items() if v}
    if not result:
        result["status"] = "success_no_output"
    return result


def shaped(response: Mapping[str, Any], response_format: str | None) -> dict[str, Any]:
    """The generate response in the asked-for format (None or "native": ours, unchanged)."""
    return to_worker_comfyui(response) if response_format == WORKER_COMFYUI else dict(response)
