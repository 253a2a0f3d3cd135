"""`generate` mode on the worker: the job pipeline (workflows.pipeline) run at the worker's site.

WorkerSite is what the pipeline needs from the worker: images stored in ComfyUI's input dir, path
facts from the disk, disk facts for a miss (handler.facts), the prompt run over the worker's pooled
client and event stream, outputs read from disk and delivered as base64 or presigned URLs (refused
with OUTPUT_TOO_LARGE first). JobError carries the failure code to the edge (handler.worker).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import stat
import uuid
from typing import Any

from comfyui_client import PromptResult, run_prompt
from comfyui_client.errors import ComfyHTTPError, ComfyUnavailable
from comfyui_client.stats import comfyui_version
from handler import isolation, model_loads
from handler.bounds import run_bounded, stop_prompt
from handler.config import Settings
from handler.facts import installed_versions, model_index, model_roots, pack_commits, pack_imports
from handler.images import StoredImage, store_image
from handler.jobfiles import JobFiles
from handler.model_access import workflow_findings
from handler.outputs import OutputFile, encode_base64, iter_output_files, probe
from handler.runtime import Runtime
from handler.scratch import comfy_scratch
from workflows.analysis import model_lookup
from workflows.compat import with_warnings
from workflows.errors import JobError
from workflows.findings import Finding
from workflows.path_values import judged_refs
from workflows.paths import PathFact, pure_problem
from workflows.pipeline import DiskFacts, ProgressSink, run_job
from workflows.request import GenerateRequest
from workflows.responses import GenerateResponse


def path_facts(
    settings: Settings, workflow: dict[str, Any], object_info: dict[str, Any] | None = None
) -> dict[tuple[str, str], PathFact]:
    """The disk half of path confinement: each file the workflow names, resolved (symlinks followed)
    and stat'ed, as facts for the pure half (workflows.paths.path_findings). A pack's path-like value
    (base "cwd") is resolved as the node might: against ComfyUI's working directory and each allowed
    directory; it is inside only when every one lands inside ("entry": only when its first part names
    something in ComfyUI's directory, else it names no file there: "1/2"). Every node is looked at as a pack's too
    (object_info None), so a judge with fresher node definitions finds a fact for each value."""
    dirs = {"input": settings.input_dir, "output": settings.output_dir, "temp": settings.temp_dir}
    roots = {k: os.path.realpath(v) for k, v in dirs.items()}
    facts: dict[tuple[str, str], PathFact] = {}
    for ref in itertools.chain(judged_refs(workflow, None), judged_refs(workflow, object_info)):
        key = (ref.base, ref.relative)
        if ref.kind in ("folder", "prefix") or key in facts or pure_problem(ref) is not None:
            continue
        first = os.path.join(settings.comfy_dir, re.split(r"[\\/]", ref.relative, maxsplit=1)[0])
        if ref.base == "entry" and not os.path.lexists(first):
            facts[key] = PathFact(True)  # "1/2", "and/or": names nothing in ComfyUI's directory
        elif ref.base in ("cwd", "entry"):
            bases = ["/"] if os.path.isabs(ref.relative) else [str(settings.comfy_dir), *map(str, dirs.values())]
            reals, allowed = [os.path.realpath(os.path.join(b, ref.relative)) for b in bases], [*roots.values()]
            facts[key] = _landing(reals, allowed)
        elif ref.base == "any":
            facts[key] = _landing([os.path.realpath(ref.relative)], list(roots.values()))
        else:
            facts[key] = _landing([os.path.realpath(os.path.join(dirs[ref.base], ref.relative))], [roots[ref.base]])
    return facts


def _landing(reals: list[str], allowed: list[str]) -> PathFact:
    """Inside when every real path is inside one of the allowed roots; special when one is a device & co."""
    inside = all(any(r == root or r.startswith(root + os.sep) for root in allowed) for r in reals)
    return PathFact(inside, any(_special(r) for r in reals))


def _special(real: str) -> bool:
    """A device, FIFO or socket (a missing file is not: ComfyUI's own validation names it)."""
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def store_inputs(runtime: Runtime, request: GenerateRequest, job_key: str, files: JobFiles) -> list[StoredImage]:
    """Each image of the job written to ComfyUI's input dir (checked, within the pixel budget), as the
    job's own file."""
    settings = runtime.settings
    stored: list[StoredImage] = []
    budget = settings.max_input_pixels  # every frame of every image of the job counts
    for index, image in enumerate(request.images):
        item = store_image(
            settings.input_dir,
            job_key,
            index,
            image.name,
            image.role,
            image.data,
            max_pixels=budget - sum(s.pixels for s in stored),
            max_frames=settings.policy.max_frames,
        )
        files.paths.append(item.path)
        stored.append(item)
    return stored


class WorkerSite:
    """The worker's JobSite (workflows.pipeline): inputs written to ComfyUI's input dir, outputs read
    from its output/temp dirs, disk facts from handler.facts, every file the job wrote in `files`."""

    def __init__(
        self, runtime: Runtime, job_id: str, job_key: str, files: JobFiles, extra_data: dict[str, Any] | None = None
    ) -> None:
        self.runtime, self.job_id, self.job_key, self.files = runtime, job_id, job_key, files
        self.extra_data = extra_data  # ComfyUI's extra_data of the prompt (comfy_org_extra)
        self.registry = runtime.registry
        self.default_workflow = runtime.settings.default_workflow
        self.default_timeout_s = runtime.settings.timeout_s
        self.policy = runtime.settings.policy
        self.warnings: list[str] = []  # what the answer says beyond its outputs (a restart after unvetted classes)

    def object_info(self, refresh: bool = False) -> dict[str, Any]:
        return self.runtime.object_info(refresh)

    def store_inputs(self, request: GenerateRequest) -> list[str]:
        return [s.stored_name for s in store_inputs(self.runtime, request, self.job_key, self.files)]

    def path_facts(self, workflow: dict[str, Any]) -> dict[tuple[str, str], PathFact]:
        try:  # /object_info names more file inputs (upload flags); the judge reads it, and names its failure
            info: dict[str, Any] | None = self.runtime.object_info()
        except Exception:
            info = None
        return path_facts(self.runtime.settings, workflow, info)

    def model_access_findings(self, workflow: dict[str, Any]) -> list[Finding]:
        roots = [str(root) for _, root in model_roots(self.runtime)]
        return workflow_findings(self.runtime, roots, workflow)

    def disk_facts(self) -> DiskFacts:
        imports = pack_imports(self.runtime)
        return DiskFacts(
            models=model_index(self.runtime),
            imports=imports,
            pack_commits=pack_commits(imports),
            known_models=model_lookup(self.runtime.registry),
        )

    def installed_versions(self) -> dict[str, list[str]]:
        try:
            stats = self.runtime.comfy.system_stats(timeout=2.0)
        except (ComfyUnavailable, ComfyHTTPError):
            stats = None  # ComfyUI's own version unknown: its nodes' mismatches are refused, not guessed
        return installed_versions(pack_imports(self.runtime), comfyui_version(stats))

    def comfy_alive(self) -> bool | None:
        return self.runtime.comfy_process_alive()

    def run(
        self, workflow: dict[str, Any], prompt_id: str, deadline: float, on_progress: ProgressSink | None
    ) -> PromptResult:
        rt = self.runtime
        rt.claim_prompt(self.job_id, prompt_id)  # the lines ComfyUI tags with it are this job's (handler.comfylog)
        # the deadline, the disk budget and the memory cap are the process's (handler.bounds): its
        # failures come as JobErrors with their codes (TIMEOUT says whether ComfyUI was restarted)
        runner = functools.partial(run_prompt, extra_data=self.extra_data)
        guard = isolation.before_run(rt, workflow)  # unvetted classes: refused, or ComfyUI restarted after
        try:
            result = run_bounded(rt, workflow, prompt_id, deadline, on_progress, runner=runner)
        finally:
            if (warning := isolation.after_run(rt, guard, self.job_id)) is not None:
                self.warnings.append(warning)
        model_loads.record(rt.model_loads, workflow, result.node_ms)  # each model's first (cold) load
        return result

    def stop(self, prompt_id: str) -> None:
        stop_prompt(self.runtime, prompt_id)

    def collect(self, outputs: dict[str, dict[str, Any]]) -> list[OutputFile]:
        settings = self.runtime.settings
        dirs = {"output": settings.output_dir, "temp": settings.temp_dir, "input": settings.input_dir}
        found = list(iter_output_files(outputs, dirs))
        self.files.paths += [o.path for o in found if o.path.parent != settings.input_dir]
        return found

    def deliver(
        self, files: list[OutputFile], texts: list[dict[str, Any]], node_ms: dict[str, float]
    ) -> list[dict[str, Any]]:
        if self.runtime.state is not None:  # the cold-start breakdown; also tells the self-check its smoke is moot
            self.runtime.state.phase("first_output")
        for out in files:
            probe(out)
        return deliver(self.runtime, files, self.job_id, texts, self.job_key, node_ms)


def comfy_org_extra(runtime: Runtime, request: GenerateRequest) -> dict[str, Any] | None:
    """ComfyUI's `extra_data` for its API nodes, as the official worker sends it: the request's key, else
    COMFY_ORG_API_KEY. Harmless while API nodes are disabled (the default; COMFY_API_NODES=1 enables them)."""
    key = request.comfy_org_api_key or runtime.settings.comfy_org_api_key
    return {"api_key_comfy_org": key} if key else None


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
            key = s3_key(job_id, job_key, out)
            item["url"] = runtime.s3.put(f"{s.bucket_prefix}/{key}" if s.bucket_prefix else key, out.path, out.mime)
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
) -> GenerateResponse:
    """One job through the pipeline (workflows.pipeline.run_job), its files removed afterwards.
    `arrived`: when the job arrived (monotonic); its deadline counts from then, waits included."""
    job_key = "job_" + re.sub(r"[^A-Za-z0-9]", "", job_id)[:12] + "_" + uuid.uuid4().hex[:6]
    settings = runtime.settings
    scratch = comfy_scratch(runtime)  # ComfyUI's TMPDIR and its files in /dev/shm
    files = JobFiles(
        runtime.jobs_activity,
        dirs=[settings.output_dir / job_key, settings.temp_dir / job_key],
        # not the input dir: a person or `volume push` may add files there while jobs run
        roots=(settings.output_dir, settings.temp_dir, *scratch.private),
        shared=scratch.shared,
        uid=scratch.uid,
    )
    with files:
        site = WorkerSite(runtime, job_id, job_key, files, extra_data=comfy_org_extra(runtime, request))
        try:
            response = run_job(site, request, arrived=arrived, on_progress=on_progress)
        except JobError as exc:
            if site.warnings:  # a failed job's answer says so too
                exc.details.setdefault("warnings", site.warnings)
            raise
        return with_warnings(response, site.warnings)  # type: ignore[return-value]
