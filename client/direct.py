"""Direct-to-ComfyUI mode: the worker's three modes done by the client against a ComfyUI server.

For a ComfyUI you run yourself (a pod, a laptop) with no RunPod in between. It offers the same
run / runsync / status / cancel methods as client.runpod_api.RunPodAPI, so every command works the
same way, and answers in the worker's typed shapes (workflows.responses). A generate job runs through
the worker's own pipeline (workflows.pipeline.run_job): _DirectSite only says what differs here —
images uploaded through /upload/image, no disk facts, the prompt run over this client's event stream,
outputs fetched through /view and returned as base64. `test` and `diagnose` are built from ComfyUI's
API with the worker's pure code (workflows.analysis, workflows.responses). What it cannot do from
outside: scan disks and the network volume, read ComfyUI's start-up log (failed pack imports),
clean up job files — the responses say so under `limitations`.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import BadResponse, JobNotFound, NotSupported, Unreachable
from client.media import probe
from comfyui_client import ComfyClient, EventStream, PromptResult, run_prompt, stop_prompt
from comfyui_client.errors import ComfyHTTPError, ComfyUnavailable
from comfyui_client.stats import comfyui_version, gpu_summary, system_summary
from workflows.analysis import Context, node_check, pack_lookup, workflow_report
from workflows.compat import shaped, with_warnings
from workflows.errors import JobError
from workflows.findings import Finding, Severity
from workflows.images import decode_image, safe_stem
from workflows.models import FOLDER_ALIASES, ModelIndex, canonical_folder
from workflows.outputs import OutputRef, output_refs
from workflows.pipeline import DiskFacts, ProgressSink, run_job
from workflows.policy import JobPolicy
from workflows.registry import Entry, Registry, default_registry
from workflows.request import (
    DiagnoseRequest,
    GenerateRequest,
    ImageInput,
    Request,
    TestRequest,
    parse_request,
)
from workflows.resolve import Resolved, resolve_workflow
from workflows.responses import DiagnoseResponse, TestResponse, describe_output, diagnose_response, test_response

DEFAULT_WORKFLOW = "smoke_image"
NOT_COMFYUI_FIX = (
    "--comfy-url / RUNPOD_ENDPOINT_URL must be ComfyUI's own root (http://host:8188); for this project's worker or "
    "any RunPod-style API use --url, for RunPod cloud RUNPOD_ENDPOINT_ID."
)
DEFAULT_TIMEOUT_S = 600.0
LIMITATIONS = [
    "direct-to-ComfyUI mode: no disk, network-volume or model-file scan (only what ComfyUI lists)",
    "direct-to-ComfyUI mode: ComfyUI's start-up log is not readable, so failed custom-node imports show only "
    "as missing nodes",
]
NO_DISK_SCAN = Finding(
    "NO_DISK_SCAN",
    Severity.INFO,
    "Direct-to-ComfyUI mode: disks, the network volume and model files on disk were not inspected.",
    "Diagnose through the worker (--url / RUNPOD_ENDPOINT_ID) for the full picture.",
)


@dataclass
class _Job:
    id: str
    input: Any  # parsed (and refused) exactly as sent
    status: str = "IN_QUEUE"
    output: Any = None
    error: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    prompt_id: str | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def set_progress(self, update: dict[str, Any]) -> None:
        self.progress = update

    def envelope(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.status == "IN_PROGRESS" and self.progress is not None:
            out["output"] = self.progress
        elif self.status == "COMPLETED":
            out["output"] = self.output
        elif self.status == "FAILED" and self.error is not None:
            out["error"] = json.dumps(self.error)
            out["output"] = self.error
        return out  # no delayTime / executionTime: those are RunPod's measurements


def _parsed(job_input: Any) -> Request | JobError:
    try:
        return parse_request(job_input)
    except JobError as exc:
        return exc


class DirectComfy:
    """A ComfyUI server used as if it were the worker."""

    kind = "comfy"

    def __init__(self, base_url: str, *, registry: Registry | None = None, http_timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.comfy = ComfyClient(self.base_url, timeout=http_timeout_s)
        self._registry = registry
        self._events: EventStream | None = None
        self._object_info_cache: Mapping[str, Any] | None = None
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._identified = False

    def __repr__(self) -> str:
        return f"DirectComfy({self.base_url!r})"

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = default_registry()
        return self._registry

    def describe(self) -> dict[str, Any]:
        return {"kind": "comfyui-direct", "url": self.base_url, "limitations": LIMITATIONS}

    # -- the RunPod-like surface ------------------------------------------------------------

    def run(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = False, wait_s: float | None = None
    ) -> dict[str, Any]:
        """Start the job in a thread (`wait_s` is for RunPod's submission: nothing here waits)."""
        self.identify()
        job = self._new_job(job_input)
        threading.Thread(target=self._execute, args=(job,), name=f"direct-{job.id}", daemon=True).start()
        return {"id": job.id, "status": "IN_QUEUE"}

    def runsync(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = False, wait_s: float | None = None
    ) -> dict[str, Any]:
        if isinstance(_parsed(job_input), GenerateRequest):  # held until done or `wait_s`, as RunPod does
            job_id = self.run(job_input)["id"]
            self._jobs[job_id].done.wait(90.0 if wait_s is None else wait_s)
            return self.status(job_id)
        self.identify()
        job = self._new_job(job_input)  # test, diagnose, a bad request: quick, and unreachability raises
        self._execute(job, raise_unreachable=True)
        return job.envelope()

    def status(self, job_id: str, *, wait_s: float | None = None) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id} is unknown (direct mode keeps jobs only inside this process)")
        return job.envelope()

    def cancel(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotSupported(f"job {job_id} is unknown (direct mode keeps jobs only inside this process)")
        job.cancelled = True
        if job.prompt_id:
            stop_prompt(self.comfy, job.prompt_id, wait_s=0)
        return {"id": job_id, "status": "CANCELLED"}

    def retry(self, job_id: str, *, wait_s: float | None = None) -> dict[str, Any]:
        raise NotSupported("direct-to-ComfyUI mode has no /retry: submit the job again")

    def health(self, *, wait_s: float | None = None) -> dict[str, Any]:
        raise NotSupported("direct-to-ComfyUI mode has no RunPod /health (no queue, no workers)")

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        self.comfy.close()

    def identify(self) -> None:
        """Once per client: is this URL a ComfyUI at all? Unreachable, or NOT_COMFYUI (exit 2) for a server
        that answers otherwise (a web page, a RunPod-style API), before any job is made of it."""
        if self._identified:
            return
        try:
            stats = self.comfy.system_stats(timeout=10)
        except ComfyUnavailable as exc:
            raise Unreachable(f"ComfyUI at {self.base_url} does not answer: {exc}") from None
        except (ComfyHTTPError, ValueError) as exc:
            stats, problem = None, f"{type(exc).__name__}: {str(exc)[:160]}"
        else:
            problem = "" if isinstance(stats, dict) and "system" in stats else "no `system` in its answer"
        if problem:
            raise BadResponse(
                f"{self.base_url} answers, but not as ComfyUI does (GET /system_stats: {problem})",
                code="NOT_COMFYUI",
                fix=NOT_COMFYUI_FIX,
                details={"url": self.base_url},
            )
        self._identified = True

    # -- execution --------------------------------------------------------------------------

    def _new_job(self, job_input: dict[str, Any]) -> _Job:
        job = _Job(f"direct-{uuid.uuid4().hex[:12]}", job_input)
        with self._lock:
            self._jobs[job.id] = job
        return job

    def _execute(self, job: _Job, raise_unreachable: bool = False) -> None:
        job.status = "IN_PROGRESS"
        try:
            request = parse_request(job.input)
            if isinstance(request, TestRequest):
                job.output = self.test()
            elif isinstance(request, DiagnoseRequest):
                job.output = self.diagnose(request)
            else:
                job.output = self.generate(job, request)
            job.status = "COMPLETED"
        except JobError as exc:
            job.status = "CANCELLED" if job.cancelled else "FAILED"
            job.error = exc.body()
        except ComfyUnavailable as exc:
            if raise_unreachable:
                raise Unreachable(f"ComfyUI at {self.base_url} does not answer: {exc}") from None
            job.status, job.error = "FAILED", JobError("COMFY_NOT_READY", str(exc)).body()
        except Exception as exc:  # report, never lose the job in a dead thread
            job.status = "FAILED"
            job.error = JobError("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"[:500]).body()
        finally:
            job.done.set()

    def object_info(self, refresh: bool = False) -> Mapping[str, Any]:
        """ComfyUI's node definitions, fetched once per client (again when `refresh`)."""
        if self._object_info_cache is None or refresh:
            self._object_info_cache = self.comfy.object_info()
        return self._object_info_cache

    # -- test and diagnose ------------------------------------------------------------------

    def test(self) -> TestResponse:
        """The worker's `test` answer from /system_stats; what only the worker can measure is None."""
        started = time.perf_counter()
        stats = self.comfy.system_stats(timeout=5)
        result = test_response(ok=True, comfyui_up=True, comfyui_version=comfyui_version(stats))
        result["direct"], result["limitations"] = True, LIMITATIONS[:1]
        if gpu := gpu_summary(stats):
            result["gpu"] = gpu
        result["timings"] = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
        return result

    def _model_lists(self) -> dict[str, frozenset[str]]:
        """What ComfyUI lists per folder; a folder it fails to list counts as empty."""
        lists = self.comfy.model_lists(skip=FOLDER_ALIASES)
        return {canonical_folder(k): frozenset(v or ()) for k, v in lists.items()}

    def _facts(self) -> tuple[dict[str, Any], Mapping[str, Any], dict[str, frozenset[str]]]:
        """(/system_stats, /object_info, model lists per folder), fetched in parallel."""
        with ThreadPoolExecutor(max_workers=3) as pool:
            stats = pool.submit(self.comfy.system_stats, 5.0)
            info = pool.submit(self.object_info, True)
            lists = pool.submit(self._model_lists)
            return stats.result(), info.result(), lists.result()

    def _check(self, resolved: Resolved, label: str, ctx: Context) -> dict[str, Any]:
        entry = resolved.entry or Entry(id=label, title=label, workflow_file=Path(label))
        packs = pack_lookup(self.registry, resolved.entry)
        return workflow_report(entry, resolved.workflow, Context(ctx.object_info, ctx.models, (), packs))

    def diagnose(self, request: DiagnoseRequest, inline: tuple[str, dict[str, Any]] | None = None) -> DiagnoseResponse:
        """The worker's diagnose shape from ComfyUI's API alone; `inline` = (label, workflow file) to check too."""
        t0 = time.perf_counter()
        if request.workflow is not None:
            resolve_workflow(self.registry, request.workflow, DEFAULT_WORKFLOW, self.object_info)  # unknown: error
        stats, object_info, comfy_sees = self._facts()
        ctx = Context(object_info, ModelIndex(comfy_sees))
        wanted = [request.workflow] if request.workflow else ([] if inline else list(self.registry.entries))
        checks = {name: self._check(self._resolve(name), name, ctx) for name in wanted}
        if inline is not None:
            checks[inline[0]] = self._inline_check(*inline, ctx)
        findings = [{**f, "workflow": wid} for wid, report in checks.items() for f in report["findings"]]
        findings.append(NO_DISK_SCAN.to_dict())
        return diagnose_response(
            reachable=True,
            findings=findings,
            limitations=LIMITATIONS,
            system=system_summary(stats, None),
            disks=[],
            volume={"mounted": None, "path": None, "layouts": []},
            models={f: {"on_disk": [], "comfyui_lists": sorted(names)} for f, names in comfy_sees.items()},
            custom_nodes={"packs": [], "failed": []},
            node_check=node_check(self.registry, object_info),
            node_classes=sorted(object_info),
            workflow_checks=checks,
            timings={"total_ms": round((time.perf_counter() - t0) * 1000, 2)},
        )

    def diagnose_file(self, label: str, workflow: dict[str, Any], checksums: bool = False) -> DiagnoseResponse:
        """diagnose with a workflow file judged fully, against this ComfyUI's /object_info (the
        client's diagnose command asks a backend that offers this; the worker's report can't)."""
        return self.diagnose(DiagnoseRequest(checksums=checksums), inline=(label, workflow))

    def _inline_check(self, label: str, workflow: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """A workflow file judged like a job's (editor saves converted first); refusals become findings."""
        try:
            return self._check(self._resolve(workflow), label, ctx)
        except JobError as exc:
            first = Finding(exc.code, Severity.ERROR, exc.message, exc.fix)
            return {"ok": False, "findings": [f.to_dict() for f in (exc.findings or (first,))]}

    def _resolve(self, workflow: str | dict[str, Any] | None) -> Resolved:
        return resolve_workflow(self.registry, workflow, DEFAULT_WORKFLOW, self.object_info, self.installed_versions)

    def installed_versions(self) -> dict[str, list[str]]:
        """ComfyUI's own version (its packs' folders are not ours to look at): the converter maps a core
        node whose saved values don't fit only when the save records this version."""
        try:
            version = comfyui_version(self.comfy.system_stats(timeout=5.0))
        except (ComfyUnavailable, ComfyHTTPError):
            version = None
        return {"comfy-core": [version]} if version else {}

    # -- generate ---------------------------------------------------------------------------

    def generate(self, job: _Job, request: GenerateRequest) -> dict[str, Any]:
        """The worker's pipeline (workflows.pipeline) run at this ComfyUI, through its API."""
        response = run_job(_DirectSite(self, job), request, on_progress=job.set_progress)
        return shaped(with_warnings(response, request.warnings), request.response_format)

    def stream(self) -> EventStream:
        """One event stream per client, shared by its jobs."""
        with self._lock:
            if self._events is None:
                self._events = EventStream(self.comfy.ws_url)
            events = self._events
        return events.start(wait=2.0)


class _DirectSite:
    """Direct mode's JobSite (workflows.pipeline): images uploaded through /upload/image, no disk
    facts (ComfyUI's API only), outputs fetched through /view and returned as base64."""

    default_workflow = DEFAULT_WORKFLOW
    default_timeout_s = DEFAULT_TIMEOUT_S

    def __init__(self, direct: DirectComfy, job: _Job) -> None:
        self.direct, self.job = direct, job
        self.registry = direct.registry
        self.policy = JobPolicy()
        self.job_key = "client_" + uuid.uuid4().hex[:10]  # not the worker's job_ prefix: its cleanup is its own

    def object_info(self, refresh: bool = False) -> Mapping[str, Any]:
        return self.direct.object_info(refresh)

    def store_inputs(self, request: GenerateRequest) -> list[str]:
        return [self._upload(index, image) for index, image in enumerate(request.images)]

    def _upload(self, index: int, image: ImageInput) -> str:
        raw, ext, *_ = decode_image(image.data, image.role or f"images[{index}] ({image.name[:60]!r})")
        return self.direct.comfy.upload_image(f"{self.job_key}_{index}_{safe_stem(image.name)}.{ext}", raw)

    def path_facts(self, workflow: dict[str, Any]) -> None:
        return None  # ComfyUI's disk is not ours to look at: its own validation names a missing file

    def model_access_findings(self, workflow: dict[str, Any]) -> list[Finding]:
        return []  # ComfyUI's disk and user are not ours to look at

    def disk_facts(self) -> DiskFacts:
        return DiskFacts()

    def installed_versions(self) -> dict[str, list[str]]:
        return self.direct.installed_versions()

    def comfy_alive(self) -> bool | None:
        return None

    def run(
        self, workflow: dict[str, Any], prompt_id: str, deadline: float, on_progress: ProgressSink | None
    ) -> PromptResult:
        self.job.prompt_id = prompt_id  # cancel() stops it from now on
        comfy = self.direct.comfy
        return run_prompt(
            comfy, self.direct.stream(), workflow, prompt_id=prompt_id, deadline=deadline, on_progress=on_progress
        )

    def stop(self, prompt_id: str) -> None:
        stop_prompt(self.direct.comfy, prompt_id)

    def collect(self, outputs: dict[str, dict[str, Any]]) -> list[tuple[OutputRef, bytes]]:
        """Each file the history names, fetched through /view; one /view doesn't have (404) is left out,
        as the worker leaves out a file not on its disk."""
        found = []
        for ref in output_refs(outputs):
            try:
                found.append((ref, self.direct.comfy.view(ref.filename, ref.subfolder, ref.type)))
            except ComfyHTTPError as exc:
                if exc.status != 404:
                    raise
        return found

    def deliver(
        self, files: list[tuple[OutputRef, bytes]], texts: list[dict[str, Any]], node_ms: dict[str, float]
    ) -> list[dict[str, Any]]:
        """Each file described like the worker's (decoded here: dimensions, frames), as base64."""
        delivered = []
        for ref, raw in files:
            meta = {k: v for k, v in probe(raw, ref.filename).items() if k not in ("format", "container")}
            item = describe_output(ref.node_id, ref.kind, ref.filename, ref.mime, len(raw), meta)
            item["base64"] = base64.b64encode(raw).decode("ascii")
            delivered.append(item)
        return delivered + texts
