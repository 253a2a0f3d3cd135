"""The one generate-job pipeline: resolve → store inputs → patch → judge → run → collect → deliver.

Both the worker (handler.generate) and the client's direct-to-ComfyUI mode (client.direct) run a job
with `run_job`, so the steps, their order, the lap names in `timings`, the error codes and the
cancellation of a timed-out prompt exist once. What really differs between the two is a `JobSite`:
where input images are stored (the worker writes ComfyUI's input dir, direct mode uploads them), what
facts about disk a judgement may use (the worker scans its disks and reads ComfyUI's start-up log;
direct mode sees only ComfyUI's API), how a prompt is run and stopped, and how outputs are collected
(the worker reads files, direct mode fetches them) and delivered.

Pure: every bit of I/O is a JobSite method; this module imports no client of ComfyUI and reads a
ComfyUI failure through its `kind` (workflows.failures).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from workflows.analysis import Context, pack_lookup
from workflows.errors import JobError
from workflows.failures import failure_kind, prompt_error
from workflows.findings import Finding
from workflows.judge import findings_error, judge_before_queue, judge_with_refresh
from workflows.models import ModelIndex
from workflows.outputs import generate_response, text_items
from workflows.patch import patch_job
from workflows.paths import PathFact
from workflows.policy import JobPolicy
from workflows.registry import Entry, ModelSpec, Registry
from workflows.request import GenerateRequest, require_images
from workflows.resolve import Resolved, resolve_workflow
from workflows.responses import GenerateResponse
from workflows.startup_log import PackImport
from workflows.timing import lap

ProgressSink = Callable[[dict[str, Any]], None]
FileT = TypeVar("FileT")


@dataclass(frozen=True, slots=True)
class DiskFacts:
    """What a miss is judged against the second time, beyond fresh node definitions: the model index
    (files on disk + what ComfyUI lists), the packs ComfyUI imported and their commits, and where the
    registry says models come from. Empty where a site can't see them (direct mode)."""

    models: ModelIndex | None = None
    imports: tuple[PackImport, ...] = ()
    pack_commits: dict[str, str] = field(default_factory=dict)
    known_models: Mapping[str, ModelSpec] = field(default_factory=dict)


class PromptOutcome(Protocol):
    """A prompt run to its end (comfyui_client.PromptResult)."""

    prompt_id: str
    outputs: dict[str, dict[str, Any]]
    node_ms: dict[str, float]
    from_history: bool

    def timings(self) -> dict[str, Any]: ...


class JobSite(Protocol[FileT]):
    """Where one job runs: everything of the pipeline that touches ComfyUI, disks or a bucket.

    `FileT` is the site's own handle on an output file (the worker's on-disk OutputFile, direct mode's
    fetched bytes); the pipeline only counts them and hands them back to `deliver`.
    """

    registry: Registry
    default_workflow: str
    default_timeout_s: float
    policy: JobPolicy
    job_key: str  # the job's own name prefix for its inputs and its output subfolder

    def object_info(self, refresh: bool = False) -> Mapping[str, Any]:
        """ComfyUI's node definitions (cached; fresh when `refresh`)."""
        ...

    def store_inputs(self, request: GenerateRequest) -> list[str]:
        """Store the job's images where ComfyUI's loaders read them; their stored names, in order."""
        ...

    def path_facts(self, workflow: dict[str, Any]) -> dict[tuple[str, str], PathFact] | None:
        """The disk half of path confinement (workflows.paths); None where the disk isn't visible."""
        ...

    def model_access_findings(self, workflow: dict[str, Any]) -> list[Finding]:
        """Model files the workflow names that ComfyUI's user can't open (MODEL_FILE_UNREADABLE)."""
        ...

    def disk_facts(self) -> DiskFacts:
        """Facts for judging a miss a second time (called only then: it may cost a disk scan)."""
        ...

    def installed_versions(self) -> Mapping[str, Collection[str]]:
        """Pack folder (`comfy-core`: ComfyUI) -> its installed commit / release version, where known."""
        ...

    def comfy_alive(self) -> bool | None:
        """False when ComfyUI's process is known to be gone; None when the site can't tell."""
        ...

    def run(
        self, workflow: dict[str, Any], prompt_id: str, deadline: float, on_progress: ProgressSink | None
    ) -> PromptOutcome:
        """Queue the prompt and follow it to its end; raise the ComfyUI client's failures as they are."""
        ...

    def stop(self, prompt_id: str) -> None:
        """Dequeue and interrupt a prompt whose deadline passed (best effort)."""
        ...

    def collect(self, outputs: dict[str, dict[str, Any]]) -> list[FileT]:
        """The files a prompt's history names that really exist, in node order."""
        ...

    def deliver(
        self, files: list[FileT], texts: list[dict[str, Any]], node_ms: dict[str, float]
    ) -> list[dict[str, Any]]:
        """The response's `outputs`: each file described (and as base64 or a URL), then `texts`."""
        ...


def run_job(
    site: JobSite[FileT],
    request: GenerateRequest,
    *,
    arrived: float | None = None,
    on_progress: ProgressSink | None = None,
) -> GenerateResponse:
    """The documented generate answer for one job. `arrived`: when the job arrived (monotonic); its
    deadline counts from then, waits included. Failures are JobErrors with their codes."""
    t0 = time.perf_counter()
    arrived = time.monotonic() if arrived is None else arrived
    timings: dict[str, Any] = {}
    resolved = resolve_workflow(
        site.registry, request.workflow, site.default_workflow, site.object_info, site.installed_versions
    )
    entry = resolved.entry
    t = lap(timings, "validate_ms", t0)
    require_images(request, entry)
    stored = site.store_inputs(request)
    patched = patch_job(resolved.workflow, entry, request, dict(zip(request.images, stored, strict=True)), site.job_key)
    t = lap(timings, "upload_ms", t)
    judge(site, resolved, patched, request, frozenset(stored))
    t = lap(timings, "analysis_ms", t)
    deadline = arrived + (request.timeout_s or site.default_timeout_s)
    result = execute(site, patched, uuid.uuid4().hex, deadline, on_progress)
    t = lap(timings, "run_ms", t)
    files = site.collect(result.outputs)
    texts = text_items(result.outputs)
    if not files and not texts:
        raise JobError(
            "NO_OUTPUT",
            "the workflow finished but produced no output files",
            {"prompt_id": result.prompt_id, "output_nodes": sorted(result.outputs)},
        )
    delivered = site.deliver(files, texts, result.node_ms)
    lap(timings, "encode_ms", t)
    timings.update(result.timings())
    timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return job_response(entry, request, result.prompt_id, delivered, timings, result.from_history)


def judge(
    site: JobSite[FileT],
    resolved: Resolved,
    patched: dict[str, Any],
    request: GenerateRequest,
    uploaded: frozenset[str],
) -> None:
    """Refuse, before ComfyUI sees it, a workflow the analysis can already tell will fail.

    Judged against the cached /object_info (its loader lists stand in for the model index, which
    costs nothing on the happy path); a miss is judged once more against fresh definitions and the
    site's disk facts, so the findings say where a file really is, which URL it comes from, and
    whether its pack is installed at another version.
    """
    paths = site.path_facts(patched)
    packs = pack_lookup(site.registry, resolved.entry)

    def findings(refresh: bool) -> list[Finding]:
        disk = site.disk_facts() if refresh else DiskFacts()
        ctx = Context(
            site.object_info(refresh),
            models=disk.models,
            imports=disk.imports,
            pack_commits=disk.pack_commits,
            packs=packs,
            uploaded=uploaded,
            known_models=disk.known_models,
        )
        return judge_before_queue(
            patched,
            ctx,
            entry=resolved.entry,
            origin=resolved.origin,
            policy=site.policy,
            overridden=request.overridden(),
            paths=paths,
        )

    if site.comfy_alive() is False:
        raise JobError("COMFY_NOT_READY", "ComfyUI is not running")
    try:
        found = judge_with_refresh(findings)
    except Exception as exc:
        if failure_kind(exc) != "unavailable":
            raise
        raise JobError("COMFY_NOT_READY", f"ComfyUI's node definitions can't be read: {exc}") from None
    found = found or site.model_access_findings(patched)
    if found:
        raise findings_error(found)


def execute(
    site: JobSite[FileT],
    workflow: dict[str, Any],
    prompt_id: str,
    deadline: float,
    on_progress: ProgressSink | None,
) -> PromptOutcome:
    """Run the prompt; a timed-out one is stopped (dequeued, interrupted) before TIMEOUT is raised."""
    if site.comfy_alive() is False:
        raise JobError("COMFY_NOT_READY", "ComfyUI is not running")
    try:
        return site.run(workflow, prompt_id, deadline, on_progress)
    except Exception as exc:
        kind = failure_kind(exc)
        if kind is None:
            raise
        if kind == "timeout":
            site.stop(prompt_id)
        raise prompt_error(exc, site.registry, workflow, prompt_id) from None


def job_response(
    entry: Entry | None,
    request: GenerateRequest,
    prompt_id: str,
    outputs: list[dict[str, Any]],
    timings: dict[str, Any],
    from_history: bool,
) -> GenerateResponse:
    seed = request.params.get("seed")
    return generate_response(entry.id if entry else "inline", prompt_id, outputs, timings, seed, from_history)
