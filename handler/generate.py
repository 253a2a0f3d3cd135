"""`generate` mode: patch a workflow, run it on the local ComfyUI, return every output with timings.

validate -> store inputs -> patch -> run -> collect -> deliver, each a small function; JobError
carries the failure code to the edge (handler.worker).
"""

from __future__ import annotations

import json
import os
import re
import stat
import time
import uuid
from collections.abc import Callable
from typing import Any

from comfyui_client import ComfyUnavailable, PromptResult, run_prompt
from handler.bounds import run_bounded
from handler.config import Settings
from handler.diagnose import model_index, pack_commits, pack_imports
from handler.images import StoredImage, store_image
from handler.jobfiles import JobFiles
from handler.outputs import OutputFile, encode_base64, iter_output_files, probe
from handler.runtime import Runtime
from workflows.analysis import Context, model_lookup, pack_lookup
from workflows.errors import JobError
from workflows.findings import Finding
from workflows.judge import findings_error, judge_before_queue, judge_with_refresh
from workflows.outputs import generate_response, text_items
from workflows.patch import patch_job
from workflows.paths import PathFact, file_inputs, pure_problem
from workflows.registry import Entry
from workflows.request import GenerateRequest, require_images
from workflows.resolve import Resolved, resolve_workflow
from workflows.timing import lap

ProgressSink = Callable[[dict[str, Any]], None]


def path_facts(
    settings: Settings, workflow: dict[str, Any], object_info: dict[str, Any] | None = None
) -> dict[tuple[str, str], PathFact]:
    """The disk half of path confinement: each file the workflow names, resolved (symlinks followed)
    and stat'ed, as facts for the pure half (workflows.paths.path_findings)."""
    dirs = {"input": settings.input_dir, "output": settings.output_dir, "temp": settings.temp_dir}
    roots = {k: os.path.realpath(v) for k, v in dirs.items()}
    facts: dict[tuple[str, str], PathFact] = {}
    for ref in file_inputs(workflow, object_info):
        key = (ref.base, ref.relative)
        if ref.kind == "folder" or key in facts or pure_problem(ref) is not None:
            continue
        if ref.base == "any":
            real, allowed = os.path.realpath(ref.relative), list(roots.values())
        else:
            real, allowed = os.path.realpath(os.path.join(dirs[ref.base], ref.relative)), [roots[ref.base]]
        inside = any(real == root or real.startswith(root + os.sep) for root in allowed)
        try:
            mode = os.stat(real).st_mode
            special = not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
        except OSError:
            special = False  # missing: ComfyUI's own validation names it
        facts[key] = PathFact(inside, special)
    return facts


def resolve(runtime: Runtime, workflow: str | dict[str, Any] | None) -> Resolved:
    return resolve_workflow(
        runtime.registry, workflow, runtime.settings.default_workflow, lambda refresh: runtime.object_info(refresh)
    )


def judge(
    runtime: Runtime, resolved: Resolved, patched: dict[str, Any], request: GenerateRequest, stored: list[StoredImage]
) -> None:
    """Refuse, before ComfyUI sees it, a workflow the analysis can already tell will fail.

    Judged against the cached /object_info (its loader lists stand in for the model index, which
    costs nothing on the happy path); a miss is judged once more against fresh definitions, the model
    index (files on disk + what ComfyUI lists) and the pack-import report, so the findings say where a
    file really is, which URL it comes from, and whether its pack is installed at another version.
    """

    def findings(refresh: bool) -> list[Finding]:
        paths = path_facts(runtime.settings, patched, runtime.object_info(refresh))
        imports = pack_imports(runtime) if refresh else ()
        ctx = Context(
            runtime.object_info(refresh),
            models=model_index(runtime) if refresh else None,
            imports=imports,
            pack_commits=pack_commits(imports),
            packs=pack_lookup(runtime.registry, resolved.entry),
            uploaded=frozenset(s.stored_name for s in stored),
            known_models=model_lookup(runtime.registry) if refresh else {},
        )
        return judge_before_queue(
            patched,
            ctx,
            entry=resolved.entry,
            origin=resolved.origin,
            policy=runtime.settings.policy,
            overridden=request.overridden(),
            paths=paths,
        )

    if runtime.comfy_process_alive() is False:
        raise JobError("COMFY_NOT_READY", "ComfyUI is not running")
    try:
        found = judge_with_refresh(findings)
    except ComfyUnavailable as exc:
        raise JobError("COMFY_NOT_READY", f"ComfyUI's node definitions can't be read: {exc}") from None
    if found:
        raise findings_error(found)


def store_inputs(
    runtime: Runtime, request: GenerateRequest, entry: Entry | None, job_key: str, files: JobFiles
) -> list[StoredImage]:
    require_images(request, entry)
    stored: list[StoredImage] = []
    budget = runtime.settings.max_input_pixels  # every frame of every image of the job counts
    for index, image in enumerate(request.images):
        item = store_image(
            runtime.settings.input_dir,
            job_key,
            index,
            image.name,
            image.role,
            image.data,
            max_pixels=budget - sum(s.pixels for s in stored),
            max_frames=runtime.settings.policy.max_frames,
        )
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
    # the deadline, disk budget and memory cap are the process's (handler.bounds)
    return run_bounded(runtime, workflow, prompt_id, deadline, on_progress, runner=run_prompt)


_ENVELOPE_BYTES = 4096  # ids, status, timings, video metadata: measured well under 2 kB


def _b64_len(size: int) -> int:
    return 4 * ((size + 2) // 3)


def response_size(outputs: list[OutputFile], texts: list[dict[str, Any]], use_bucket: bool, extra: Any) -> int:
    """The JSON body's size in bytes, predicted before any file is encoded.

    Every output kind counts: files as base64 (or their URL), text outputs as JSON strings, the first
    video's base64 twice (it is repeated as `video_base64`), plus descriptions, timings and envelope.
    """
    described = [o.describe() for o in outputs]
    size = len(json.dumps([described, texts, extra], default=str)) + _ENVELOPE_BYTES
    if use_bucket:
        return size + 2048 * (len(outputs) + 1)  # a presigned URL each (and video_url)
    size += sum(_b64_len(o.size_bytes) + 12 for o in outputs)
    video = next((o for o in outputs if o.kind == "video"), None)
    return size + (_b64_len(video.size_bytes) if video is not None else 0)


def s3_key(job_id: str, job_key: str, out: OutputFile) -> str:
    """`<job id>/[temp/]<subfolder>/<filename>`: the output's own subfolder (less the per-job folder)
    is kept, so `a/x.png` and `b/x.png` of one job never share a key."""
    parts = [p for p in out.subfolder.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    if parts[:1] == [job_key]:
        parts = parts[1:]
    if out.source != "output":
        parts.insert(0, out.source)
    return "/".join([job_id, *parts, out.filename])


def deliver(
    runtime: Runtime,
    outputs: list[OutputFile],
    job_id: str,
    texts: list[dict[str, Any]] | None = None,
    job_key: str = "",
    extra: Any = None,
) -> list[dict[str, Any]]:
    """Presigned URLs when a bucket is configured (RunPod's BUCKET_* convention), else base64 in the body.

    Refused with OUTPUT_TOO_LARGE, before anything is encoded, when the whole response body would be
    over MAX_PAYLOAD_MB (RunPod drops larger results).
    """
    s = runtime.settings
    texts = texts or []
    limit = int(s.max_payload_mb * 1024 * 1024)
    use_bucket = bool(s.bucket_endpoint_url)
    total = response_size(outputs, texts, use_bucket, extra)
    if total > limit:
        text_bytes = sum(t.get("size_bytes", 0) for t in texts)
        raise JobError(
            "OUTPUT_TOO_LARGE",
            f"the response would be {total / 1e6:.1f} MB (files{'' if use_bucket else ' as base64'}, "
            f"{text_bytes / 1e6:.1f} MB of text), over the {s.max_payload_mb:g} MB payload limit (MAX_PAYLOAD_MB)",
            {"outputs": [o.describe() for o in outputs], "response_bytes": total, "limit_bytes": limit},
        )
    delivered = []
    for out in outputs:
        item = out.describe()
        if use_bucket:
            item["url"] = runtime.s3.put(s3_key(job_id, job_key, out), out.path, out.mime)
        else:
            item["base64"] = encode_base64(out.path)
        delivered.append(item)
    return delivered + texts


def generate(
    runtime: Runtime,
    request: GenerateRequest,
    job_id: str,
    on_progress: ProgressSink | None = None,
    arrived: float | None = None,
) -> dict[str, Any]:
    """`arrived`: when the job arrived (monotonic); its deadline counts from then, waits included."""
    t0 = time.perf_counter()
    arrived = time.monotonic() if arrived is None else arrived
    timings: dict[str, Any] = {}
    job_key = "job_" + re.sub(r"[^A-Za-z0-9]", "", job_id)[:12] + "_" + uuid.uuid4().hex[:6]
    settings = runtime.settings
    files = JobFiles(
        runtime.jobs_activity,
        dirs=[settings.output_dir / job_key, settings.temp_dir / job_key],
        # not the input dir: a person or `volume push` may add files there while jobs run
        roots=(settings.output_dir, settings.temp_dir),
    )
    with files:
        resolved = resolve(runtime, request.workflow)
        entry = resolved.entry
        t = lap(timings, "validate_ms", t0)
        stored = store_inputs(runtime, request, entry, job_key, files)
        patched = patch(request, entry, resolved.workflow, stored, job_key)
        t = lap(timings, "upload_ms", t)
        judge(runtime, resolved, patched, request, stored)
        t = lap(timings, "analysis_ms", t)
        deadline = arrived + (request.timeout_s or runtime.settings.timeout_s)
        result = execute(runtime, patched, uuid.uuid4().hex, deadline, on_progress)
        t = lap(timings, "run_ms", t)
        dirs = {
            "output": runtime.settings.output_dir,
            "temp": runtime.settings.temp_dir,
            "input": runtime.settings.input_dir,
        }
        found = list(iter_output_files(result.outputs, dirs))
        texts = text_items(result.outputs)
        files.paths += [o.path for o in found if o.path.parent != runtime.settings.input_dir]
        if not found and not texts:
            raise JobError(
                "NO_OUTPUT",
                "the workflow finished but produced no output files",
                {"prompt_id": result.prompt_id, "output_nodes": sorted(result.outputs)},
            )
        if runtime.state is not None:  # the cold-start breakdown; also tells the self-check its smoke is moot
            runtime.state.phase("first_output")
        for out in found:
            probe(out)
        delivered = deliver(runtime, found, job_id, texts, job_key, result.node_ms)
        t = lap(timings, "encode_ms", t)
        timings.update(result.timings())
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return _response(entry, request, result.prompt_id, delivered, timings, result.from_history)


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
