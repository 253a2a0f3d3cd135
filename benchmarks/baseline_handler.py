"""A ComfyUI worker handler written the common way: the baseline the benchmarks compare against.

It follows the pattern of the field's usual RunPod ComfyUI worker (runpod-workers/worker-comfyui),
re-written here from scratch in a few functions:

- ComfyUI's readiness is re-checked on every job with `GET /` (any HTTP answer counts here: the local
  stack runs ComfyUI without its front-end, so `/` answers 404 instead of the 200 of a full install);
- input images are decoded and sent through `POST /upload/image` under the name the request gives;
- a new WebSocket is opened per job, and the job waits for `executing` with `node: null`;
- every HTTP call is an unpooled `requests.get/post` (a new TCP connection each);
- outputs are listed from `GET /history/<id>`, fetched whole through `GET /view`, and base64-encoded
  whole in memory.

The original prints a log line at almost every step; those prints are left out so that the baseline
is not charged for terminal I/O. One addition, for the benchmark only: the response carries
`comfy_execution_ms` (execution_start -> execution_success from ComfyUI's own timestamps in
/history), computed from the history the handler fetches anyway, so both handlers' overhead is
measured against the same clock.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import uuid
from typing import Any

import requests
import websocket

COMFY_HOST = os.environ.get("COMFY_HOST", "127.0.0.1:8188")
CHECK_RETRIES = 500
CHECK_DELAY_MS = 50


def check_server(url: str, retries: int = CHECK_RETRIES, delay_ms: int = CHECK_DELAY_MS) -> bool:
    for _ in range(retries):
        try:
            requests.get(url, timeout=5)
            return True
        except requests.RequestException:
            pass
        time.sleep(delay_ms / 1000)
    return False


def upload_images(images: list[dict[str, str]]) -> list[str]:
    errors = []
    for image in images:
        data = image["image"]
        if "," in data:
            data = data.split(",", 1)[1]
        try:
            blob = base64.b64decode(data)
            files = {"image": (image["name"], blob, "image/png"), "overwrite": (None, "true")}
            response = requests.post(f"http://{COMFY_HOST}/upload/image", files=files, timeout=30)
            response.raise_for_status()
        except (ValueError, requests.RequestException) as exc:
            errors.append(f"{image.get('name')}: {exc}")
    return errors


def queue_workflow(workflow: dict[str, Any], client_id: str) -> dict[str, Any]:
    data = json.dumps({"prompt": workflow, "client_id": client_id}).encode("utf-8")
    response = requests.post(
        f"http://{COMFY_HOST}/prompt", data=data, headers={"Content-Type": "application/json"}, timeout=30
    )
    if response.status_code == 400:
        raise ValueError(f"Workflow validation failed: {response.text[:500]}")
    response.raise_for_status()
    return response.json()


def get_history(prompt_id: str) -> dict[str, Any]:
    response = requests.get(f"http://{COMFY_HOST}/history/{prompt_id}", timeout=30)
    response.raise_for_status()
    return response.json()


def get_image_data(filename: str, subfolder: str, image_type: str) -> bytes | None:
    query = urllib.parse.urlencode({"filename": filename, "subfolder": subfolder, "type": image_type})
    try:
        response = requests.get(f"http://{COMFY_HOST}/view?{query}", timeout=60)
        response.raise_for_status()
        return response.content
    except requests.RequestException:
        return None


def _execution_ms(entry: dict[str, Any]) -> float | None:
    stamps = {
        name: data.get("timestamp")
        for name, data in (entry.get("status") or {}).get("messages") or []
        if isinstance(data, dict)
    }
    if stamps.get("execution_start") is None or stamps.get("execution_success") is None:
        return None
    return float(stamps["execution_success"]) - float(stamps["execution_start"])


def handler(job: dict[str, Any]) -> dict[str, Any]:
    job_input = job.get("input") or {}
    workflow = job_input.get("workflow")
    if workflow is None:
        return {"error": "Missing 'workflow' parameter"}
    images = job_input.get("images")
    if images is not None and not (isinstance(images, list) and all("name" in i and "image" in i for i in images)):
        return {"error": "'images' must be a list of objects with 'name' and 'image' keys"}

    if not check_server(f"http://{COMFY_HOST}/"):
        return {"error": f"ComfyUI server ({COMFY_HOST}) not reachable after multiple retries."}

    if images:
        errors = upload_images(images)
        if errors:
            return {"error": "Failed to upload one or more input images", "details": errors}

    client_id = str(uuid.uuid4())
    ws = websocket.WebSocket()
    ws.connect(f"ws://{COMFY_HOST}/ws?clientId={client_id}", timeout=10)
    try:
        prompt_id = queue_workflow(workflow, client_id)["prompt_id"]
        errors = []
        while True:
            message = ws.recv()
            if not isinstance(message, str):
                continue  # binary preview frames
            event = json.loads(message)
            data = event.get("data") or {}
            if event.get("type") == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                break
            if event.get("type") == "execution_error" and data.get("prompt_id") == prompt_id:
                errors.append(f"Workflow execution error: {data.get('node_type')}: {data.get('exception_message')}")
                break
    finally:
        ws.close()

    history = get_history(prompt_id)
    entry = history.get(prompt_id, {})
    output_data = []
    for node_output in (entry.get("outputs") or {}).values():
        for image in node_output.get("images", []):
            if image.get("type") == "temp":
                continue
            blob = get_image_data(image["filename"], image.get("subfolder", ""), image.get("type", "output"))
            if blob is None:
                errors.append(f"Failed to fetch {image['filename']}")
                continue
            output_data.append(
                {"filename": image["filename"], "type": "base64", "data": base64.b64encode(blob).decode("utf-8")}
            )
    if errors and not output_data:
        return {"error": "Job processing failed", "details": errors}
    result: dict[str, Any] = {"images": output_data, "prompt_id": prompt_id}
    if errors:
        result["errors"] = errors
    result["comfy_execution_ms"] = _execution_ms(entry)
    return result
