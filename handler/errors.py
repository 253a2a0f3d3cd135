"""Error codes of the worker's responses, and the one exception type that carries them.

Every failed job answers {"error": message, "error_code", "error_message", "details", "logs_tail"?}.
RunPod marks a job FAILED when the handler returns an "error" key. The table below is the contract
(README, "Error codes"); `fix` is what a person should do next.

    JobError(code, message, details)      raised anywhere inside a job, turned into JSON at the edge
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Code:
    name: str
    fix: str
    comfy_involved: bool = True  # include logs_tail
    refresh_worker: bool = False


CODES: dict[str, Code] = {
    c.name: c
    for c in (
        Code("BAD_INPUT", "Fix the request as the message says; the README lists the accepted keys.", False),
        Code(
            "COMFY_NOT_READY",
            "ComfyUI is not answering. Check logs_tail for a start-up error; the worker is recycled.",
            True,
            True,
        ),
        Code(
            "COMFY_DIED",
            "ComfyUI crashed during the job (often out of memory). See logs_tail; the worker is recycled.",
            True,
            True,
        ),
        Code("NO_IMAGE", "This workflow needs an input image: send input.image_base64 or input.images.", False),
        Code("NO_END_IMAGE", "This workflow needs an end image: send input.end_image_base64.", False),
        Code("INVALID_IMAGE", "Send a PNG/JPEG/WebP as base64 or a data URI, under the size limits.", False),
        Code(
            "WORKFLOW_NOT_FOUND",
            "Use a registered workflow name (mode=diagnose lists them) or send the workflow inline.",
            False,
        ),
        Code(
            "WORKFLOW_UI_FORMAT",
            "Export with Workflow > Export (API) in ComfyUI (enable dev mode) and send that.",
            False,
        ),
        Code("WORKFLOW_INVALID", "Send an API-format workflow: {node_id: {class_type, inputs}}.", False),
        Code("QUEUE_FAILED", "ComfyUI rejected the workflow: see details.node_errors for each node and input."),
        Code("TIMEOUT", "The job passed its deadline and was interrupted. Raise timeout_s or lighten the workflow."),
        Code("NO_OUTPUT", "The workflow finished without any output file. Check that it has a Save node."),
        Code("GENERATION_ERROR", "A node raised during execution: see details (node, exception) and logs_tail."),
        Code(
            "OUTPUT_TOO_LARGE",
            "Set BUCKET_ENDPOINT_URL and bucket keys so outputs go to S3, or lower resolution/frames.",
        ),
        Code("OUTPUT_UPLOAD_FAILED", "Check BUCKET_ENDPOINT_URL, BUCKET_NAME and the bucket keys.", False),
        Code("DISK_FULL", "The output disk is full: free space or enlarge the container disk / volume."),
        Code("INTERNAL_ERROR", "An unexpected error in the worker: report it with details."),
    )
}


class JobError(Exception):
    """A job failure with a code from CODES; `details` is JSON-serialisable."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}

    @property
    def spec(self) -> Code:
        return CODES[self.code]
