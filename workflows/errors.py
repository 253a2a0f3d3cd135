"""Error codes of a job's responses, and the one exception type that carries them. Pure.

Every failed job answers {"error": message, "error_code", "error_message", "fix", "details",
"findings"?, "logs_tail"?}. RunPod marks a job FAILED when the handler returns an "error" key. The
table below is the contract (README, "Error codes"); `fix` is what a person should do next. The worker
and the client's direct mode raise the same codes with the same fixes.

    JobError(code, message, details, findings)   raised anywhere inside a job, turned into JSON at the edge
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from workflows.findings import FAILURE_CODES, Finding


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
            "ComfyUI crashed during the job (often out of memory): see logs_tail. The worker restarts ComfyUI "
            "itself (restart_count in mode=test); retry the job, with a lighter workflow if it was memory.",
            True,
        ),
        # Why ComfyUI is not ready (handler.state / workflows.startup_log). A deterministic
        # misconfiguration does not ask RunPod for a fresh worker: it would fail the same way after
        # another cold start. A host-specific or transient failure does.
        Code(
            "COMFY_STARTING",
            "ComfyUI is still starting: retry in a few seconds (see phases for where the start is).",
            True,
        ),
        Code(
            "COMFY_START_FAILED",
            "ComfyUI ended at start with the Python error in the message: fix what it names (a missing "
            "dependency, a bad flag in COMFY_EXTRA_ARGS) and redeploy. logs_tail has its output.",
            True,
        ),
        Code(
            "COMFY_START_TIMEOUT",
            "ComfyUI did not answer within COMFY_READY_TIMEOUT: see phases and logs_tail for the slow step "
            "(a pack, a slow volume, a model loaded at start) and fix it or raise COMFY_READY_TIMEOUT.",
            True,
        ),
        Code(
            "COMFY_PORT_IN_USE",
            "Another process in the container holds ComfyUI's port: stop it or set COMFY_PORT to a free port.",
            True,
        ),
        Code(
            "COMFY_CUDA_MISMATCH",
            "The image's torch/CUDA build does not fit this host's GPU driver: pick a CUDA build the "
            "endpoint's GPUs support (or restrict the endpoint's CUDA versions). The worker is recycled.",
            True,
            True,
        ),
        Code(
            "COMFY_PACK_KILLED_START",
            "A custom node pack ended ComfyUI's process while being imported: remove or fix the pack the "
            "message names (test packs one at a time), then redeploy.",
            True,
        ),
        Code(
            "COMFY_MODEL_PATHS_INVALID",
            "extra_model_paths.yaml can't be read (line and column in the message): fix the YAML and redeploy.",
            True,
        ),
        Code(
            "COMFY_CRASH_LOOP",
            "ComfyUI kept dying and the worker stopped restarting it (see last_death and logs_tail); the "
            "worker is recycled.",
            True,
            True,
        ),
        # Answered by handler/last_resort.py (standalone: its own copy of these fixes, kept equal by a test)
        # when the real handler can't run at all; the container stays up instead of a restart loop.
        Code(
            "HANDLER_IMPORT_FAILED",
            "The worker's handler can't be imported, so only this last-resort handler answers: "
            "install what the message names into the handler's Python (HANDLER_PYTHON; the image installs "
            "requirements/worker.txt into /opt/venv) or fix the file and line it names, then redeploy.",
            False,
        ),
        Code(
            "HANDLER_EXITED",
            "The worker's handler imported but its process ended (exit code in the message; its last "
            "lines are in the container log): fix what they name and redeploy. This last-resort handler answers "
            "meanwhile.",
            False,
            True,
        ),
        Code(
            "SELF_CHECK_FAILED",
            "SELF_CHECK_STRICT=1 and the start-up self-check found errors: fix the findings listed, or set "
            "SELF_CHECK_STRICT=0 to take jobs anyway.",
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
        Code(
            "WORKFLOW_BROKEN",
            "The registered workflow's file is broken (details.problem names file, line and column): fix it "
            "and redeploy. Other workflows keep working.",
            False,
        ),
        # Finding-led errors: the pre-queue judgement (workflows.judge) found the job can't run; the
        # response's `fix` is the first finding's own, more specific than these.
        Code("POLICY_DENIED", "This deployment's job policy refuses that: see findings for the node and rule.", False),
        Code(
            "PATH_REFUSED",
            "Name input files by their plain name inside ComfyUI's input directory (send them with `images`); "
            "absolute paths, '..', URLs, symlinks out and device files are refused.",
            False,
        ),
        Code(
            "LIMIT_EXCEEDED",
            "Lower the size, frame count, batch size or subgraph nesting under the limit the message names, or "
            "raise that limit (MAX_SIDE, MAX_FRAMES, MAX_BATCH, MAX_INPUT_PIXELS) on the endpoint.",
            False,
        ),
        Code("NODE_MISSING", "Install the custom node pack named in the findings, or remove the node.", False),
        Code("PACK_IMPORT_FAILED", "Fix the pack's import error (see logs_tail), then restart the worker."),
        Code("MODEL_MISSING", "Put the model file into the folder the finding names (download URL included).", False),
        Code(
            "MODEL_IN_WRONG_FOLDER",
            "Move the file to the folder the finding names, or add its directory to extra_model_paths.yaml.",
            False,
        ),
        Code("LINK_BROKEN", "Reconnect the input the finding names and export the workflow again.", False),
        Code("INPUT_MISSING", "Set or connect the required input the finding names.", False),
        Code("VALUE_NOT_IN_LIST", "Use one of the values ComfyUI lists for that input (see the finding).", False),
        Code("VALUE_OUT_OF_RANGE", "Set the input within the range the finding names.", False),
        Code("VALUE_WRONG_TYPE", "Send the type the finding names for that input.", False),
        Code("NO_OUTPUT_NODE", "Add a SaveImage, SaveVideo or VHS_VideoCombine node to the workflow.", False),
        Code("QUEUE_FAILED", "ComfyUI rejected the workflow: see details.node_errors for each node and input."),
        Code(
            "TIMEOUT",
            "The job passed its deadline and was stopped (details.stopped says how: interrupted, or ComfyUI "
            "restarted because the prompt ignored the interrupt). Raise timeout_s or lighten the workflow.",
        ),
        Code(
            "COMFY_MEMORY_LIMIT",
            "ComfyUI went over its memory cap (COMFY_MEMORY_MAX_MB) and was stopped (by the watchdog, or the "
            "kernel in its cgroup) and restarted: lower the workflow's size, frames or batch, or raise the cap "
            "on a machine with more memory.",
        ),
        Code(
            "UNVETTED_NODES_RAN",
            "Not an error of the job: ComfyUI was restarted after a job that ran node classes not vetted on this "
            "deployment (details.classes), so nothing they left can see the next job. To keep ComfyUI running: "
            "register a workflow that uses them or list them in TRUSTED_NODES (README, Security).",
            False,
        ),
        Code(
            "JOB_DISK_LIMIT",
            "The job wrote more than JOB_DISK_MB (or one file over MAX_FILE_MB) under ComfyUI's output, temp "
            "and user directories and /dev/shm and was stopped: lower resolution, frames or batch, or raise "
            "the limit on the endpoint.",
        ),
        Code("NO_OUTPUT", "The workflow finished without any output file. Check that it has a Save node."),
        Code("GENERATION_ERROR", "A node raised during execution: see details (node, exception) and logs_tail."),
        Code(
            "OUTPUT_TOO_LARGE",
            "Set BUCKET_ENDPOINT_URL and bucket keys so outputs go to S3, or lower resolution/frames.",
        ),
        Code("OUTPUT_UPLOAD_FAILED", "Check BUCKET_ENDPOINT_URL, BUCKET_NAME and the bucket keys.", False),
        Code("DISK_FULL", "The output disk is full: free space or enlarge the container disk / volume."),
        Code(
            "INPUT_DIR_UNUSABLE",
            "ComfyUI's input directory (COMFY_INPUT_DIR) must be an existing, writable directory: fix the "
            "path or the mount, then restart the worker.",
            False,
        ),
        Code("INTERNAL_ERROR", "An unexpected error in the worker: report it with details."),
        # What a failure signature (workflows/signatures.yaml) or a system probe names: the response's
        # fix is the signature's own, naming the module, file or host; these are the table's.
        *(Code(c.code, c.fix, True, c.refresh_worker) for c in FAILURE_CODES),
    )
}


class JobError(Exception):
    """A job failure with a code from CODES; `details` is JSON-serialisable.

    `findings` are the analysis' specific findings behind the failure (a missing model, a broken
    link), most important first; the response carries them so a person sees every problem at once.
    """

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        findings: Sequence[Finding] = (),
        fix: str | None = None,
    ) -> None:
        if code not in CODES:
            raise ValueError(f"unknown error code {code}")
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}
        self.findings = tuple(findings)
        self.fix = fix or CODES[code].fix  # a finding's own fix is more specific than the table's

    def body(self) -> dict[str, Any]:
        """The documented error object (without logs_tail, which only the worker can read)."""
        body: dict[str, Any] = {
            "error_code": self.code,
            "error_message": self.message,
            "fix": self.fix,
            "details": self.details,
        }
        if self.findings:
            body["findings"] = [f.to_dict() for f in self.findings]
        return body

    @property
    def spec(self) -> Code:
        return CODES[self.code]
