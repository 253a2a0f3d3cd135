"""Compatibility with the official worker (runpod-workers/worker-comfyui), so its clients switch over unchanged.

Pure. Its request (`input.workflow` + `input.images[{name, image}]`, optionally `comfy_org_api_key`, or
`api_key_comfy_org` in one upstream version) is accepted as it is. In compatibility mode (the deployment's
RESPONSE_FORMAT=worker-comfyui, or a request's `response_format: "worker-comfyui"`) a generate request's
unknown keys are ignored with a warning, as the official worker ignores them (it reads only the keys
above); in native mode they are refused (a typo must not pass silently). Its response shape:

    {"images": [{"filename": "ComfyUI_00001_.png", "type": "base64" | "s3_url", "data": "..."}],
     "videos": [... the same ...], "audio": [... the same ...], "errors": ["non-fatal warnings"]}

and `{"status": "success_no_images", "images": []}` when a workflow produced none of them.

Sources: the official worker's handler.py (`validate_input`, output collection; `api_key_comfy_org` at
commit 0a41edb), its tests/test_handler.py (the empty result; videos under `videos`, the release that
"return[s] native and VideoHelperSuite video outputs"), .runpod/README.md (`comfy_org_api_key`) and
docs/configuration.md ("Example S3 Response"), read 2026-12.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

NATIVE = "native"
WORKER_COMFYUI = "worker-comfyui"
RESPONSE_FORMATS: tuple[str, ...] = (NATIVE, WORKER_COMFYUI)

# The per-request Comfy.org API key (ComfyUI's API nodes), under the official worker's two names.
COMFY_ORG_KEY_NAMES: tuple[str, ...] = ("comfy_org_api_key", "api_key_comfy_org")
# Input keys some official-worker forks take and this worker doesn't, with what to send instead.
UNSUPPORTED_KEYS: dict[str, str] = {
    "callback_url": "use RunPod's own `webhook` field of the /run request instead",
}
NO_OUTPUT_STATUS = "success_no_images"  # the official worker's answer when a workflow produced no file


def unsupported_key_hint(key: str) -> str | None:
    """What to send instead of an official-worker input key this worker doesn't take, if it is one."""
    return UNSUPPORTED_KEYS.get(key)


def to_worker_comfyui(response: Mapping[str, Any]) -> dict[str, Any]:
    """Our generate response in the official worker's shape: images under `images` (always present),
    videos under `videos`, audio under `audio`, our warnings under `errors` (its list of non-fatal
    problems); text outputs have no place in that shape and are left out. Nothing of those:
    `{"status": "success_no_images", "images": []}`, as the official worker answers."""
    shaped: dict[str, list[dict[str, Any]]] = {"images": [], "videos": [], "audio": []}
    for output in response.get("outputs") or []:
        key = {"image": "images", "video": "videos", "audio": "audio"}.get(str(output.get("kind")))
        if key is None:
            continue
        if "url" in output:
            item = {"filename": output.get("filename"), "type": "s3_url", "data": output["url"]}
        elif "base64" in output:
            item = {"filename": output.get("filename"), "type": "base64", "data": output["base64"]}
        else:
            continue
        shaped[key].append(item)
    result: dict[str, Any] = {"images": shaped["images"]}
    result.update({k: v for k, v in shaped.items() if v and k != "images"})
    if not any(shaped.values()):
        result["status"] = NO_OUTPUT_STATUS
    if response.get("warnings"):
        result["errors"] = list(response["warnings"])
    return result


def with_warnings(response: Mapping[str, Any], warnings: Sequence[str]) -> dict[str, Any]:
    """The response with the request's warnings (ignored keys, ...) under `warnings`, when there are any."""
    out = dict(response)
    if warnings:
        out["warnings"] = [*out.get("warnings", []), *warnings]
    return out


def shaped(response: Mapping[str, Any], response_format: str | None) -> dict[str, Any]:
    """The generate response in the asked-for format (None or "native": ours, unchanged)."""
    return to_worker_comfyui(response) if response_format == WORKER_COMFYUI else dict(response)
