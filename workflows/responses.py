"""The answers of the three modes, typed once: `test`, `diagnose` and `generate` (the job's input is
workflows.request.JobInput). Pure.

The worker (handler.health, handler.diagnose, handler.generate through workflows.pipeline) and the
client's direct-to-ComfyUI mode (client.direct) build these same structures, and the client reads
them. README.md documents each field; a key a mode can't know is None there (direct mode has no
disk to measure), never missing.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict, cast


class Cause(TypedDict):
    """Why the worker is not ready: a code of workflows.errors, what happened, what to do."""

    code: str
    message: str
    fix: str
    details: NotRequired[dict[str, Any]]


class TestResponse(TypedDict):
    """`test`: a sub-second health ping; `ok` is false when something is wrong (never an error)."""

    ok: bool
    comfyui_up: bool
    disk_free_gb: float | None
    volume_mounted: bool | None
    comfyui_version: str | None
    handler_version: str | None
    uptime_s: float | None
    models: dict[str, Any] | None  # where the registered models are served from (None: no disk to look at)
    timings: NotRequired[dict[str, Any]]
    gpu: NotRequired[dict[str, Any]]
    cause: NotRequired[Cause]
    logs_tail: NotRequired[list[str]]
    # the worker's state machine (handler.state.WorkerState.snapshot), when it runs ComfyUI itself
    state: NotRequired[str]
    since_start_s: NotRequired[float]
    restart_count: NotRequired[int]
    phases: NotRequired[dict[str, Any]]
    last_death: NotRequired[dict[str, Any]]
    confinement: NotRequired[str]  # what confines ComfyUI, in one line (handler.confine)
    # direct-to-ComfyUI mode: what it could not look at
    direct: NotRequired[bool]
    limitations: NotRequired[list[str]]


class Summary(TypedDict):
    errors: int
    warnings: int


class DiagnoseResponse(TypedDict):
    """`diagnose`: the deployment seen from inside; every finding has a code, a message and a fix."""

    ok: bool
    comfyui_reachable: bool
    system: dict[str, Any]
    disks: list[dict[str, Any]]
    volume: dict[str, Any]
    models: dict[str, Any]
    # each registered model's source (image, RunPod's model cache, volume) and first loads; None: no disk
    model_sources: dict[str, Any] | None
    custom_nodes: dict[str, Any]
    node_check: dict[str, Any]
    node_classes: list[str]  # every node class ComfyUI defines (empty while it does not answer)
    workflow_checks: dict[str, Any]
    findings: list[dict[str, Any]]
    summary: Summary
    timings: dict[str, Any]
    worker: NotRequired[dict[str, Any]]  # the worker's state machine, as in TestResponse
    confinement: NotRequired[dict[str, Any]]  # what confines ComfyUI, and why not (handler.confine)
    logs_tail: NotRequired[list[str]]
    direct: NotRequired[bool]
    limitations: NotRequired[list[str]]


class OutputItem(TypedDict):
    """One output of a generate answer: a file (as `base64` or `url`) or a text."""

    node_id: str
    kind: str  # image | video | audio | text | file
    mime: str
    size_bytes: int
    filename: NotRequired[str]
    width: NotRequired[int]
    height: NotRequired[int]
    frames: NotRequired[int]
    fps: NotRequired[float]
    duration_sec: NotRequired[float | None]
    probe_error: NotRequired[str]
    base64: NotRequired[str]
    url: NotRequired[str]
    text: NotRequired[str]


class GenerateResponse(TypedDict):
    """`generate`: every output with its timings; a video's fields are lifted to the top as well."""

    workflow: str
    prompt_id: str
    outputs: list[dict[str, Any]]  # OutputItem each
    timings: dict[str, Any]
    status: str
    recovered_from_history: NotRequired[bool]
    warnings: NotRequired[list[str]]  # what the worker did not do as asked (workflows.compat.with_warnings)
    video_base64: NotRequired[str]
    video_url: NotRequired[str | None]
    fps: NotRequired[float | None]
    frames: NotRequired[int | None]
    duration_sec: NotRequired[float | None]
    metadata: NotRequired[dict[str, Any]]
    seed: NotRequired[int]


def test_response(
    *,
    ok: bool,
    comfyui_up: bool,
    comfyui_version: str | None,
    disk_free_gb: float | None = None,
    volume_mounted: bool | None = None,
    handler_version: str | None = None,
    uptime_s: float | None = None,
    models: dict[str, Any] | None = None,
) -> TestResponse:
    """The `test` answer's fixed keys; what a site can't measure stays None (direct mode: the disk)."""
    return {
        "ok": ok,
        "comfyui_up": comfyui_up,
        "disk_free_gb": disk_free_gb,
        "volume_mounted": volume_mounted,
        "comfyui_version": comfyui_version,
        "handler_version": handler_version,
        "uptime_s": uptime_s,
        "models": models,
    }


def describe_output(
    node_id: str, kind: str, filename: str, mime: str, size_bytes: int, meta: dict[str, Any]
) -> dict[str, Any]:
    """An output file's description (before its base64 or URL is added), the same at every site."""
    return {"node_id": node_id, "kind": kind, "filename": filename, "mime": mime, "size_bytes": size_bytes, **meta}


def diagnose_response(
    *,
    reachable: bool,
    findings: list[dict[str, Any]],
    system: dict[str, Any],
    disks: list[dict[str, Any]],
    volume: dict[str, Any],
    models: dict[str, Any],
    custom_nodes: dict[str, Any],
    node_check: dict[str, Any],
    node_classes: list[str],
    workflow_checks: dict[str, Any],
    timings: dict[str, Any],
    worker: dict[str, Any] | None = None,
    limitations: list[str] | None = None,
    model_sources: dict[str, Any] | None = None,
) -> DiagnoseResponse:
    """The diagnose answer: `ok` and `summary` follow from the findings (and ComfyUI answering).
    `worker`: the worker's state machine; `limitations`: what direct mode could not look at."""
    response: dict[str, Any] = {
        "ok": reachable and not any(f["severity"] == "error" for f in findings),
        "comfyui_reachable": reachable,
    }
    if worker is not None:
        response["worker"] = worker
    if limitations is not None:
        response.update(direct=True, limitations=limitations)
    response.update(
        system=system,
        disks=disks,
        volume=volume,
        models=models,
        model_sources=model_sources,
        custom_nodes=custom_nodes,
        node_check=node_check,
        node_classes=node_classes,
        workflow_checks=workflow_checks,
        findings=findings,
        summary={
            "errors": sum(f["severity"] == "error" for f in findings),
            "warnings": sum(f["severity"] == "warning" for f in findings),
        },
        timings=timings,
    )
    return cast(DiagnoseResponse, response)  # built in the documented key order
