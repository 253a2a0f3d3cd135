"""`generate` mode: patch a workflow, run it on the local ComfyUI, return every output with timings.

validate -> store inputs -> patch -> run -> collect -> deliver, each a small function; JobError
carries the failure code to the edge (handler.worker).
"""

from __future__ import annotations

import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfyui_client import (
    ComfyUnavailable,
    ExecutionFailed,
    PromptInterrupted,
    PromptRejected,
    PromptResult,
    PromptTimeout,
    run_prompt,
)
from handler.images import StoredImage, store_image
from handler.outputs import OutputFile, encode_base64, iter_output_files, probe, text_outputs
from handler.runtime import Runtime
from workflows.analysis import Context, pack_lookup
from workflows.errors import JobError
from workflows.failures import execution_failed, queue_failed
from workflows.findings import Finding
from workflows.judge import findings_error, judge_before_queue
from workflows.outputs import generate_response
from workflows.patch import patch_job
from workflows.registry import Entry
from workflows.request import GenerateRequest, require_images
from workflows.resolve import Resolved, resolve_workflow

ProgressSink = Callable[[dict[str, Any]], None]


@dataclass
class JobFiles:
    """Everything a job wrote, removed once the response is built."""

    paths: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for path in self.paths:
            path.unlink(missing_ok=True)
        for directory in self.dirs:
            try:
                directory.rmdir()  # the usual case: its files were just removed (rmtree costs ~0.4 ms more)
            except FileNotFoundError:
                pass
            except OSError:
                shutil.rmtree(directory, ignore_errors=True)


def resolve(runtime: Runtime, workflow: str | dict[str, Any] | None) -> Resolved:
    return resolve_workflow(
        runtime.registry, workflow, runtime.settings.default_workflow, lambda refresh: runtime.object_info(refresh)
    )


def judge(
    runtime: Runtime, resolved: Resolved, patched: dict[str, Any], request: GenerateRequest, stored: list[StoredImage]
) -> None:
    """Refuse, before ComfyUI sees it, a workflow the analysis can already tell will fail.

    Judged against the cached /object_info; a miss (a node or model not listed) is judged once more
    against fresh definitions, since a pack or a model file may have appeared since they were cached.
    """
    overridden = {str(k): frozenset(map(str, v)) for k, v in request.overrides.items()}

    def findings(refresh: bool) -> list[Finding]:
        ctx = Context(
            runtime.object_info(refresh),
            packs=pack_lookup(runtime.registry, resolved.entry),
            uploaded=frozenset(s.stored_name for s in stored),
        )
        return judge_before_queue(
            patched,
            ctx,
            entry=resolved.entry,
            origin=resolved.origin,
            policy=runtime.settings.policy,
            overridden=overridden,
        )

    if runtime.comfy_process_alive() is False:
        raise JobError("COMFY_NOT_READY", "ComfyUI is not running")
    try:
        found = findings(False)
        if found and found[0].code != "POLICY_DENIED":
            found = findings(True)
    except ComfyUnavailable as exc:
        raise JobError("COMFY_NOT_READY", f"ComfyUI's node definitions can't be read: {exc}") from None
    if found:
        raise findings_error(found)


def store_inputs(
    runtime: Runtime, request: GenerateRequest, entry: Entry | None, job_key: str, files: JobFiles
) -> list[StoredImage]:
    require_images(request, entry)
    stored = []
    for index, image in enumerate(request.images):
        item = store_image(runtime.settings.input_dir, job_key, index, image.name, image.role, image.data)
        files.paths.append(item.path)
        stored.append(item)
    return stored


def patch(
    request: GenerateRequest, entry: Entry | None, workflow: dict[str, Any], stored: list[StoredImage], job_key: str
) -> dict[str, Any]:
    return patch_job(
        workflow, entry, request, dict(zip(request.images, (s.stored_name for s in stored), strict=True)), job_key
    )


def execute(
    runtime: Runtime, workflow: dict[str, Any], prompt_id: str, deadline: float, on_progress: ProgressSink | None
) -> PromptResult:
    if runtime.comfy_process_alive() is False:
        raise JobError("COMFY_NOT_READY", "ComfyUI is not running")
    try:
        return run_prompt(
            runtime.comfy, runtime.events, workflow, prompt_id=prompt_id, deadline=deadline, on_progress=on_progress
        )
    except PromptRejected as exc:
        raise queue_failed(exc.body, str(exc), runtime.registry) from None
    except PromptTimeout:
        _stop_prompt(runtime, prompt_id)
        raise JobError(
            "TIMEOUT",
            "the job did not finish before its deadline; it was interrupted and removed from ComfyUI's queue",
            {"prompt_id": prompt_id},
        ) from None
    except ExecutionFailed as exc:
        raise execution_failed(exc.data, str(exc)) from None
    except PromptInterrupted as exc:
        raise JobError("GENERATION_ERROR", f"{exc} (someone called /interrupt)") from None
    except ComfyUnavailable as exc:
        queued = "queued" in str(exc) or "/prompt" in str(exc)
        raise JobError("COMFY_NOT_READY" if queued else "COMFY_DIED", str(exc)) from None


def _stop_prompt(runtime: Runtime, prompt_id: str, wait_s: float = 3.0) -> None:
    """Dequeue and interrupt the prompt, then wait (briefly) until ComfyUI has really let go of it."""
    try:
        runtime.comfy.delete_queued([prompt_id])
        runtime.comfy.interrupt(prompt_id)
        end = time.monotonic() + wait_s
        while prompt_id in runtime.comfy.queued_prompt_ids() and time.monotonic() < end:
            time.sleep(0.05)
    except Exception:  # best effort: ComfyUI may be gone
        pass


def deliver(runtime: Runtime, outputs: list[OutputFile], job_id: str) -> list[dict[str, Any]]:
    """Presigned URLs when a bucket is configured (RunPod's BUCKET_* convention), else base64 in the body."""
    s = runtime.settings
    limit = int(s.max_payload_mb * 1024 * 1024)
    use_bucket = bool(s.bucket_endpoint_url)
    encoded_total = sum(4 * ((o.size_bytes + 2) // 3) for o in outputs)
    if not use_bucket and encoded_total > limit:
        raise JobError(
            "OUTPUT_TOO_LARGE",
            f"outputs are {encoded_total / 1e6:.1f} MB as base64, over RunPod's {s.max_payload_mb:g} MB payload limit",
            {"outputs": [o.describe() for o in outputs]},
        )
    delivered = []
    for out in outputs:
        item = out.describe()
        if use_bucket:
            item["url"] = runtime.s3.put(f"{job_id}/{out.filename}", out.path, out.mime)
        else:
            item["base64"] = encode_base64(out.path)
        delivered.append(item)
    return delivered


def generate(
    runtime: Runtime, request: GenerateRequest, job_id: str, on_progress: ProgressSink | None = None
) -> dict[str, Any]:
    t0 = time.perf_counter()
    timings: dict[str, Any] = {}
    job_key = "job_" + re.sub(r"[^A-Za-z0-9]", "", job_id)[:12] + "_" + uuid.uuid4().hex[:6]
    files = JobFiles(dirs=[runtime.settings.output_dir / job_key, runtime.settings.temp_dir / job_key])
    try:
        resolved = resolve(runtime, request.workflow)
        entry = resolved.entry
        t = _lap(timings, "validate_ms", t0)
        stored = store_inputs(runtime, request, entry, job_key, files)
        patched = patch(request, entry, resolved.workflow, stored, job_key)
        t = _lap(timings, "upload_ms", t)
        judge(runtime, resolved, patched, request, stored)
        t = _lap(timings, "analysis_ms", t)
        deadline = time.monotonic() + (request.timeout_s or runtime.settings.timeout_s)
        result = execute(runtime, patched, uuid.uuid4().hex, deadline, on_progress)
        t = _lap(timings, "run_ms", t)
        dirs = {
            "output": runtime.settings.output_dir,
            "temp": runtime.settings.temp_dir,
            "input": runtime.settings.input_dir,
        }
        found = list(iter_output_files(result.outputs, dirs))
        texts = text_outputs(result.outputs)
        files.paths += [o.path for o in found if o.path.parent != runtime.settings.input_dir]
        if not found and not texts:
            raise JobError(
                "NO_OUTPUT",
                "the workflow finished but produced no output files",
                {"prompt_id": result.prompt_id, "output_nodes": sorted(result.outputs)},
            )
        for out in found:
            probe(out)
        delivered = deliver(runtime, found, job_id) + texts
        t = _lap(timings, "encode_ms", t)
        if result.started_at is not None:
            timings["queue_wait_ms"] = round((result.started_at - result.queued_at) * 1000, 2)
        timings["execution_ms"] = (
            round(result.comfy_ms, 2)
            if result.comfy_ms is not None
            else (
                round((result.finished_at - result.started_at) * 1000, 2)
                if result.started_at and result.finished_at
                else None
            )
        )
        timings["nodes_ms"] = result.node_ms
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return _response(entry, request, result.prompt_id, delivered, timings, result.from_history)
    finally:
        files.cleanup()


def _lap(timings: dict[str, Any], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = round((now - since) * 1000, 2)
    return now


def _response(
    entry: Entry | None,
    request: GenerateRequest,
    prompt_id: str,
    outputs: list[dict[str, Any]],
    timings: dict[str, Any],
    from_history: bool,
) -> dict[str, Any]:
    seed = request.params.get("seed")
    return generate_response(entry.id if entry else "inline", prompt_id, outputs, timings, seed, from_history)
