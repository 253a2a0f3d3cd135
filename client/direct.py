"""Direct-to-ComfyUI mode: the worker's three modes done by the client against a ComfyUI server.

For a ComfyUI you run yourself (a pod, a laptop) with no RunPod in between. It offers the same
run / runsync / status / cancel methods as client.runpod_api.RunPodAPI, so every command works the
same way, and answers in the worker's shapes. It talks to ComfyUI only through comfyui_client and
judges with workflows.analysis, like the worker. What it cannot do from outside: scan disks and the
network volume, read ComfyUI's start-up log (failed pack imports), clean up job files — the
responses say so under `limitations`.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.errors import JobNotFound, NotSupported, Unreachable
from client.media import kind_of, mime_of, probe
from comfyui_client import (
    ComfyClient,
    ComfyHTTPError,
    ComfyUnavailable,
    EventStream,
    ExecutionFailed,
    PromptInterrupted,
    PromptRejected,
    PromptTimeout,
    run_prompt,
)
from comfyui_client.stats import comfyui_version, gpu_summary
from workflows.analysis import (
    UI_FORMAT_FIX,
    Context,
    is_ui_format,
    node_check,
    pack_lookup,
    shape_findings,
    workflow_report,
)
from workflows.findings import Finding, Severity
from workflows.models import FOLDER_ALIASES, ModelIndex, canonical_folder
from workflows.parameters import PATCHABLE, ParameterError, check_parameters
from workflows.patch import PatchError, apply_parameters
from workflows.registry import Entry, Registry, default_registry

DEFAULT_WORKFLOW = "smoke_image"
DEFAULT_TIMEOUT_S = 600.0
LIMITATIONS = [
    "direct-to-ComfyUI mode: no disk, network-volume or model-file scan (only what ComfyUI lists)",
    "direct-to-ComfyUI mode: ComfyUI's start-up log is not readable, so failed custom-node imports show only "
    "as missing nodes",
]
_OUTPUT_KEYS = ("images", "gifs", "videos", "video", "audio", "files")
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GENERATE_KEYS = {
    "mode",
    "workflow",
    "images",
    "image_base64",
    "end_image_base64",
    "overrides",
    "timeout_s",
    *PATCHABLE,
}
FIXES = {
    "BAD_INPUT": "Fix the request as the message says; docs/client.md lists the accepted keys.",
    "WORKFLOW_NOT_FOUND": "Use a registered workflow name or pass a workflow file.",
    "WORKFLOW_UI_FORMAT": "Export with Workflow > Export (API) in ComfyUI (enable dev mode) and send that.",
    "WORKFLOW_INVALID": "Send an API-format workflow: {node_id: {class_type, inputs}}.",
    "NO_IMAGE": "This workflow needs an input image: pass --image.",
    "NO_END_IMAGE": "This workflow needs an end image: pass --end-image.",
    "INVALID_IMAGE": "Send a PNG/JPEG/WebP image.",
    "QUEUE_FAILED": "ComfyUI rejected the workflow: see details.node_errors for each node and input.",
    "TIMEOUT": "The job passed its deadline and was interrupted. Raise --timeout or lighten the workflow.",
    "NO_OUTPUT": "The workflow finished without any output file. Check that it has a Save node.",
    "GENERATION_ERROR": "A node raised during execution: see details (node, exception) and ComfyUI's log.",
    "COMFY_NOT_READY": "ComfyUI is not answering: check that it runs and the URL.",
    "COMFY_DIED": "ComfyUI stopped answering during the job (often out of memory): check its log.",
}


class _JobFailure(Exception):
    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}

    def error(self) -> dict[str, Any]:
        return {
            "error_code": self.code,
            "error_message": self.message,
            "fix": FIXES.get(self.code, ""),
            "details": self.details,
        }


@dataclass
class _Job:
    id: str
    input: dict[str, Any]
    status: str = "IN_QUEUE"
    output: Any = None
    error: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
    prompt_id: str | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)

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


class DirectComfy:
    """A ComfyUI server used as if it were the worker."""

    kind = "comfy"

    def __init__(self, base_url: str, *, registry: Registry | None = None, http_timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.comfy = ComfyClient(self.base_url, timeout=http_timeout_s)
        self._registry = registry
        self._events: EventStream | None = None
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

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

    def run(self, job_input: dict[str, Any], *, safe_to_retry: bool = False) -> dict[str, Any]:
        job = _Job(f"direct-{uuid.uuid4().hex[:12]}", dict(job_input))
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=self._execute, args=(job,), name=f"direct-{job.id}", daemon=True).start()
        return {"id": job.id, "status": "IN_QUEUE"}

    def runsync(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = False, wait_s: float | None = None
    ) -> dict[str, Any]:
        try:
            mode = _mode(job_input)
        except _JobFailure:
            mode = "test"  # fails with BAD_INPUT right away, in the worker's shape
        if mode in ("test", "diagnose"):  # quick: run in the caller's thread, so unreachability raises
            job = _Job(f"direct-{uuid.uuid4().hex[:12]}", dict(job_input))
            self._execute(job, raise_unreachable=True)
            return job.envelope()
        first = self.run(job_input)
        return self.status(first["id"], wait_s=wait_s)

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
            try:
                self.comfy.delete_queued([job.prompt_id])
                self.comfy.interrupt(job.prompt_id)
            except ComfyUnavailable:
                pass
        return {"id": job_id, "status": "CANCELLED"}

    def retry(self, job_id: str) -> dict[str, Any]:
        raise NotSupported("direct-to-ComfyUI mode has no /retry: submit the job again")

    def health(self) -> dict[str, Any]:
        raise NotSupported("direct-to-ComfyUI mode has no RunPod /health (no queue, no workers)")

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        self.comfy.close()

    # -- execution --------------------------------------------------------------------------

    def _execute(self, job: _Job, raise_unreachable: bool = False) -> None:
        job.status = "IN_PROGRESS"
        try:
            mode = _mode(job.input)
            if mode == "test":
                job.output = self.test(job.input)
            elif mode == "diagnose":
                job.output = self.diagnose(job.input)
            else:
                job.output = self.generate(job)
            job.status = "COMPLETED"
        except _JobFailure as exc:
            job.status = "CANCELLED" if job.cancelled else "FAILED"
            job.error = exc.error()
        except ComfyUnavailable as exc:
            if raise_unreachable:
                raise Unreachable(f"ComfyUI at {self.base_url} does not answer: {exc}") from None
            job.status, job.error = "FAILED", _JobFailure("COMFY_NOT_READY", str(exc)).error()
        except Exception as exc:  # report, never lose the job in a dead thread
            job.status = "FAILED"
            job.error = _JobFailure("INTERNAL_ERROR", f"{type(exc).__name__}: {exc}"[:500]).error()
        finally:
            job.done.set()

    def test(self, job_input: dict[str, Any]) -> dict[str, Any]:
        _reject_unknown(job_input, {"mode", "test"}, "test")
        started = time.perf_counter()
        stats = self.comfy.system_stats(timeout=5)
        result: dict[str, Any] = {
            "ok": True,
            "comfyui_up": True,
            "disk_free_gb": None,
            "volume_mounted": None,
            "comfyui_version": comfyui_version(stats),
            "handler_version": None,
            "uptime_s": None,
            "direct": True,
            "limitations": LIMITATIONS[:1],
        }
        if gpu := gpu_summary(stats):
            result["gpu"] = gpu
        result["timings"] = {"total_ms": round((time.perf_counter() - started) * 1000, 2)}
        return result

    def _model_lists(self) -> dict[str, frozenset[str]]:
        folders = [f for f in self.comfy.model_folders() if f not in FOLDER_ALIASES]

        def listing(folder: str) -> list[str]:
            try:
                return self.comfy.models(folder)
            except (ComfyUnavailable, ComfyHTTPError, ValueError):
                return []

        with ThreadPoolExecutor(max_workers=8) as pool:
            lists = dict(zip(folders, pool.map(listing, folders), strict=True))
        return {canonical_folder(k): frozenset(v) for k, v in lists.items()}

    def diagnose(self, job_input: dict[str, Any], inline: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """The worker's diagnose shape from ComfyUI's API alone; `inline` = (label, workflow) to check as well."""
        _reject_unknown(job_input, {"mode", "diagnose", "workflow", "checksums"}, "diagnose")
        t0 = time.perf_counter()
        registry = self.registry
        name = job_input.get("workflow")
        if name is not None and registry.get(name) is None:
            raise _JobFailure(
                "WORKFLOW_NOT_FOUND", f"no registered workflow {name!r}", {"registered": sorted(registry.entries)}
            )
        with ThreadPoolExecutor(max_workers=3) as pool:
            stats_f = pool.submit(self.comfy.system_stats, 5.0)
            info_f = pool.submit(self.comfy.object_info)
            lists_f = pool.submit(self._model_lists)
            stats, object_info, comfy_sees = stats_f.result(), info_f.result(), lists_f.result()
        index = ModelIndex(comfy_sees)
        entries = [registry.entries[name]] if name else ([] if inline else list(registry.entries.values()))
        checks: dict[str, Any] = {}
        findings: list[dict[str, Any]] = []
        for entry in entries:
            report = workflow_report(
                entry, entry.workflow(), Context(object_info, index, (), pack_lookup(registry, entry))
            )
            checks[entry.id] = report
            findings += [{**f, "workflow": entry.id} for f in report["findings"]]
        if inline is not None:
            label, workflow = inline
            entry = Entry(id=label, title=label, workflow_file=Path(label))
            report = workflow_report(entry, workflow, Context(object_info, index, (), pack_lookup(registry)))
            checks[label] = report
            findings += [{**f, "workflow": label} for f in report["findings"]]
        findings.append(
            Finding(
                "NO_DISK_SCAN",
                Severity.INFO,
                "Direct-to-ComfyUI mode: disks, the network volume and model files on disk were not inspected.",
                "Diagnose through the worker (--url / RUNPOD_ENDPOINT_ID) for the full picture.",
            ).to_dict()
        )
        return {
            "ok": not any(f["severity"] == "error" for f in findings),
            "comfyui_reachable": True,
            "direct": True,
            "limitations": LIMITATIONS,
            "system": {"handler_version": None, **(stats.get("system") or {}), "devices": stats.get("devices", [])},
            "disks": [],
            "volume": {"mounted": None, "path": None, "layouts": []},
            "models": {f: {"on_disk": [], "comfyui_lists": sorted(names)} for f, names in comfy_sees.items()},
            "custom_nodes": {"packs": [], "failed": []},
            "node_check": node_check(registry, object_info),
            "workflow_checks": checks,
            "findings": findings,
            "summary": {
                "errors": sum(f["severity"] == "error" for f in findings),
                "warnings": sum(f["severity"] == "warning" for f in findings),
            },
            "timings": {"total_ms": round((time.perf_counter() - t0) * 1000, 2)},
        }

    # -- generate ---------------------------------------------------------------------------

    def _stream(self) -> EventStream:
        with self._lock:
            if self._events is None:
                self._events = EventStream(self.comfy.ws_url)
            events = self._events
        return events.start(wait=2.0)

    def _resolve(self, workflow: Any) -> tuple[Entry | None, dict[str, Any]]:
        if workflow is None or isinstance(workflow, str):
            name = workflow or DEFAULT_WORKFLOW
            entry = self.registry.get(name)
            if entry is None:
                raise _JobFailure(
                    "WORKFLOW_NOT_FOUND",
                    f"no registered workflow {name[:100]!r}",
                    {"registered": sorted(self.registry.entries)},
                )
            return entry, entry.workflow()
        if is_ui_format(workflow):
            raise _JobFailure("WORKFLOW_UI_FORMAT", "the workflow is in the editor's UI format", {"fix": UI_FORMAT_FIX})
        problems = shape_findings(workflow)
        if problems:
            raise _JobFailure("WORKFLOW_INVALID", problems[0].message, {"fix": problems[0].fix})
        return None, workflow

    def _upload(self, job_key: str, index: int, name: str, data: Any) -> str:
        if not isinstance(data, str):
            raise _JobFailure("BAD_INPUT", f"image {name!r} must be a base64 string")
        payload = re.sub(r"^data:[\w/+.-]*;base64,", "", data.strip(), count=1, flags=re.I)
        try:
            raw = base64.b64decode(payload, validate=True)
            from PIL import Image

            with Image.open(io.BytesIO(raw)) as img:
                fmt = (img.format or "png").lower().replace("jpeg", "jpg")
                img.verify()
        except (binascii.Error, ValueError, OSError, SyntaxError) as exc:
            raise _JobFailure("INVALID_IMAGE", f"image {name!r}: not a readable image ({type(exc).__name__})") from None
        stem = _SAFE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("._")[:48]
        return self.comfy.upload_image(f"{job_key}_{index}_{stem or 'image'}.{fmt}", raw)

    def generate(self, job: _Job) -> dict[str, Any]:
        data = job.input
        _reject_unknown(data, _GENERATE_KEYS, "generate")
        t0 = time.perf_counter()
        timings: dict[str, Any] = {}
        entry, workflow = self._resolve(data.get("workflow"))
        try:
            params = check_parameters(data)
        except ParameterError as exc:
            raise _JobFailure("BAD_INPUT", str(exc)) from None
        roles = {
            role: data[key]
            for key, role in (("image_base64", "image"), ("end_image_base64", "end_image"))
            if key in data
        }
        if entry is not None:
            if "image" in entry.parameters and "image" not in roles:
                raise _JobFailure("NO_IMAGE", f"workflow {entry.id!r} needs an input image")
            if "end_image" in entry.parameters and "end_image" not in roles:
                raise _JobFailure("NO_END_IMAGE", f"workflow {entry.id!r} needs an end image")
        t = _lap(timings, "validate_ms", t0)
        job_key = "client_" + uuid.uuid4().hex[:10]  # not the worker's job_ prefix: its cleanup is its own
        stored_roles = {role: self._upload(job_key, i, role, value) for i, (role, value) in enumerate(roles.items())}
        renames = {}
        for i, item in enumerate(data.get("images") or []):
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
                raise _JobFailure("BAD_INPUT", f'images[{i}] must be {{"name": str, "image": base64 str}}')
            renames[item["name"]] = self._upload(job_key, len(roles) + i, item["name"], item.get("image"))
        try:
            patched = apply_parameters(
                workflow, entry, params, images=stored_roles, overrides=data.get("overrides") or {}, renames=renames
            )
        except PatchError as exc:
            raise _JobFailure(exc.code, str(exc)) from None
        for node in patched.values():  # a per-job output subfolder also defeats ComfyUI's cache
            prefix = node.get("inputs", {}).get("filename_prefix")
            if isinstance(prefix, str):
                node["inputs"]["filename_prefix"] = f"{job_key}/{prefix.lstrip('/')}"
        t = _lap(timings, "upload_ms", t)
        job.prompt_id = uuid.uuid4().hex
        timeout = float(data.get("timeout_s") or DEFAULT_TIMEOUT_S)
        result = self._run(patched, job, time.monotonic() + timeout)
        t = _lap(timings, "run_ms", t)
        outputs = self._collect(result.outputs)
        if not outputs:
            raise _JobFailure(
                "NO_OUTPUT", "the workflow finished but produced no output files", {"prompt_id": result.prompt_id}
            )
        _lap(timings, "encode_ms", t)
        if result.started_at is not None:
            timings["queue_wait_ms"] = round((result.started_at - result.queued_at) * 1000, 2)
        timings["execution_ms"] = round(result.comfy_ms, 2) if result.comfy_ms is not None else None
        timings["nodes_ms"] = result.node_ms
        timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        response: dict[str, Any] = {
            "workflow": entry.id if entry else "inline",
            "prompt_id": result.prompt_id,
            "outputs": outputs,
            "timings": timings,
            "status": "success",
        }
        video = next((o for o in outputs if o.get("kind") == "video"), None)
        if video is not None:
            response.update(fps=video.get("fps"), frames=video.get("frames"), duration_sec=video.get("duration_sec"))
        if "seed" in params:
            response["seed"] = params["seed"]
        return response

    def _run(self, workflow: dict[str, Any], job: _Job, deadline: float) -> Any:
        assert job.prompt_id is not None

        def progress(update: dict[str, Any]) -> None:
            job.progress = update

        try:
            return run_prompt(
                self.comfy, self._stream(), workflow, prompt_id=job.prompt_id, deadline=deadline, on_progress=progress
            )
        except PromptRejected as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            nodes = [
                {"node_id": node_id, "class_type": info.get("class_type"), **e}
                for node_id, info in (body.get("node_errors") or {}).items()
                for e in info.get("errors", [])
            ]
            raise _JobFailure("QUEUE_FAILED", str(exc), {"node_errors": nodes}) from None
        except PromptTimeout:
            self.cancel(job.id)
            raise _JobFailure("TIMEOUT", "the job did not finish before its deadline; it was interrupted") from None
        except ExecutionFailed as exc:
            raise _JobFailure(
                "GENERATION_ERROR",
                str(exc),
                {k: exc.data.get(k) for k in ("node_id", "node_type", "exception_type", "exception_message")},
            ) from None
        except PromptInterrupted as exc:
            raise _JobFailure("GENERATION_ERROR", f"{exc} (interrupted)") from None
        except ComfyUnavailable as exc:
            raise _JobFailure("COMFY_DIED", str(exc)) from None

    def _collect(self, outputs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        collected = []
        for node_id, output in outputs.items():
            for key in _OUTPUT_KEYS:
                for item in output.get(key) or []:
                    if not isinstance(item, dict) or "filename" not in item:
                        continue
                    filename = item["filename"]
                    raw = self.comfy.view(filename, item.get("subfolder", ""), item.get("type", "output"))
                    described = {
                        "node_id": node_id,
                        "kind": kind_of(filename),
                        "filename": filename,
                        "mime": mime_of(filename),
                        "size_bytes": len(raw),
                        **{k: v for k, v in probe(raw, filename).items() if k != "format"},
                        "base64": base64.b64encode(raw).decode("ascii"),
                    }
                    collected.append(described)
            for text in output.get("text") or []:
                if isinstance(text, str):
                    collected.append(
                        {
                            "node_id": node_id,
                            "kind": "text",
                            "mime": "text/plain",
                            "text": text,
                            "size_bytes": len(text.encode()),
                        }
                    )
        return collected


def _mode(job_input: dict[str, Any]) -> str:
    mode = job_input.get("mode")
    if mode is None:
        return (
            "test" if job_input.get("test") is True else "diagnose" if job_input.get("diagnose") is True else "generate"
        )
    if mode not in ("test", "diagnose", "generate"):
        raise _JobFailure("BAD_INPUT", f"mode must be one of test, diagnose, generate, got {str(mode)[:80]!r}")
    return str(mode)


def _reject_unknown(data: dict[str, Any], allowed: set[str], mode: str) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _JobFailure(
            "BAD_INPUT",
            f"unknown key(s) for mode {mode!r}: {', '.join(unknown)[:300]}",
            {"unknown_keys": unknown[:50], "allowed_keys": sorted(allowed)},
        )


def _lap(timings: dict[str, Any], name: str, since: float) -> float:
    now = time.perf_counter()
    timings[name] = round((now - since) * 1000, 2)
    return now
