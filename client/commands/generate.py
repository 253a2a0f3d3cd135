"""`generate.py`: build the job input, submit it once (idempotency ledger), follow it, save the outputs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from client.config import Settings
from client.errors import (
    ClientError,
    ClientTimeout,
    IdempotencyConflict,
    Interrupted,
    JobCancelled,
    JobFailed,
    JobNotFound,
    JobTimedOut,
    JobUnsuccessful,
    UsageError,
)
from client.jobflow import Backend, JobResult, UpdateSink, submit_and_wait, wait_for_job
from client.ledger import Ledger, request_hash
from client.media import IMAGE_EXTS, extension
from client.redact import redact
from client.saving import output_dir_name, save_outputs, summarize_input
from client.workflow_files import load_workflow_file, looks_like_file
from workflows.parameters import PATCHABLE, ParameterError, check_parameter
from workflows.registry import Entry, Registry
from workflows.request import JobInput, NamedImage

MAX_IMAGE_BYTES = 40 * 1024 * 1024
RETRYABLE = frozenset({"FAILED", "TIMED_OUT"})  # RunPod's POST /retry takes only these (operation reference)


@dataclass(frozen=True, slots=True)
class JobSubmission:
    """A generate job as the client sends it (workflows.request.GenerateRequest is the worker's parse of it)."""

    label: str  # registry name, or the workflow file's stem
    job_input: JobInput

    def payload(self) -> dict[str, Any]:
        """The job input as the JSON object the backends send."""
        return dict(self.job_input)


def parse_set(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """["6.text=a cat", "3.seed=5"] → {"6": {"text": "a cat"}, "3": {"seed": 5}} (values JSON-parsed when possible)."""
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        node, dot, name = key.strip().rpartition(".")
        if not eq or not dot or not node or not name:
            raise UsageError(f"--set {item!r}: expected NODE.INPUT=VALUE, e.g. --set 6.text='a red fox'")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        overrides.setdefault(node, {})[name] = value
    return overrides


def _b64(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise UsageError(f"{path} is {size / 1e6:.0f} MB; images over {MAX_IMAGE_BYTES // 10**6} MB are refused")
        return base64.b64encode(path.read_bytes()).decode("ascii")
    except FileNotFoundError:
        raise UsageError(f"image {path} does not exist") from None
    except OSError as exc:
        raise UsageError(f"cannot read image {path}: {exc.strerror}") from None


def images_in(directory: Path) -> list[tuple[str, Path]]:
    """(name relative to the directory, path) for every image below it, sub-paths kept, sorted."""
    if not directory.is_dir():
        raise UsageError(f"--images {directory}: not a directory")
    found = [
        (p.relative_to(directory).as_posix(), p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and extension(p.name) in IMAGE_EXTS
    ]
    if not found:
        raise UsageError(f"--images {directory}: no image files ({', '.join(IMAGE_EXTS)}) found")
    return found


def build_request(
    registry: Registry,
    *,
    workflow: str | None,
    images: Sequence[str] = (),
    images_dir: Path | None = None,
    end_image: Path | None = None,
    params: dict[str, Any] | None = None,
    sets: Sequence[str] = (),
    timeout_s: float | None = None,
) -> JobSubmission:
    """The job input for the worker's generate mode; UsageError for anything the worker would reject."""
    label, job_input, entry = _workflow_input(registry, workflow)
    job_input.update(_checked_params(params or {}, job_input, entry))  # type: ignore[typeddict-item]  # PATCHABLE
    wants_role = isinstance(job_input.get("workflow"), str | type(None)) and (
        entry is None or "image" in entry.parameters
    )
    job_input.update(_image_inputs(images, images_dir, end_image, wants_role))
    if sets:
        job_input["overrides"] = parse_set(sets)
    if timeout_s is not None:
        job_input["timeout_s"] = round(min(max(timeout_s, 1), 86_400), 1)  # the worker stops the prompt too
    return JobSubmission(label, job_input)


def _workflow_input(registry: Registry, workflow: str | None) -> tuple[str, JobInput, Entry | None]:
    """(label, job input with the workflow, registry entry): a file is sent inline (API or editor format)."""
    if workflow and looks_like_file(workflow):
        path = Path(workflow)
        return path.stem, {"workflow": load_workflow_file(path)}, None
    label = workflow or "smoke_image"
    return label, ({"workflow": workflow} if workflow else {}), registry.get(label)


def _checked_params(params: dict[str, Any], job_input: JobInput, entry: Entry | None) -> dict[str, Any]:
    params = {k: v for k, v in params.items() if v is not None}
    checked = {}
    for name, value in params.items():
        if name not in PATCHABLE:
            raise UsageError(f"unknown parameter {name}")
        try:
            checked[name] = check_parameter(name, value)
        except ParameterError as exc:
            raise UsageError(f"--{name.replace('_', '-')}: {exc}") from None
    if params and isinstance(job_input.get("workflow"), dict):
        raise UsageError(
            f"{', '.join(sorted(params))} need a registered workflow (it maps them to nodes); "
            "with a workflow file use --set NODE.INPUT=VALUE"
        )
    if entry is not None and (unknown := sorted(set(params) - set(entry.parameters))):
        raise UsageError(
            f"workflow {entry.id!r} has no {', '.join(unknown)} parameter "
            f"(it accepts: {', '.join(sorted(entry.parameters)) or 'none'}); use --set NODE.INPUT=VALUE"
        )
    return checked


def _image_inputs(images: Sequence[str], images_dir: Path | None, end_image: Path | None, wants_role: bool) -> JobInput:
    """image_base64 (the first plain path, when the workflow has an image parameter), named images, end image."""
    out: JobInput = {}
    named: list[NamedImage] = []
    for item in images:
        name, eq, path = item.partition("=")
        if eq and name and not Path(item).exists():
            named.append({"name": name, "image": _b64(Path(path))})
        elif wants_role and "image_base64" not in out:
            out["image_base64"] = _b64(Path(item))
        else:
            named.append({"name": Path(item).name, "image": _b64(Path(item))})
    if images_dir is not None:
        named += [{"name": name, "image": _b64(path)} for name, path in images_in(images_dir)]
    if named:
        out["images"] = named
    if end_image is not None:
        out["end_image_base64"] = _b64(end_image)
    return out


def _reuse(row_dir: str | None) -> dict[str, Any] | None:
    if not row_dir:
        return None
    path = Path(row_dir) / "result.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def generate(
    api: Backend,
    settings: Settings,
    request: JobSubmission,
    *,
    ledger: Ledger | None = None,
    idempotency_key: str | None = None,
    out_root: Path | None = None,
    on_update: UpdateSink | None = None,
    on_submitted: Callable[[str], None] | None = None,
    run_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Submit (at most once per idempotency key), wait, save. Returns what was saved and the timings.
    `run_options`: RunPod's `webhook` / `policy` fields of the /run request (client.run_options)."""
    target = settings.require_target()
    claim = _Claim(ledger, target.url, request, idempotency_key)
    if claim.reused is not None:
        return claim.reused

    def submitted(job_id: str) -> None:
        claim.submitted(job_id)
        if on_submitted is not None:
            on_submitted(job_id)

    timeout_s, poll_s = settings.timeout_s, settings.poll_interval_s
    try:
        if claim.attach_to:
            result = wait_for_job(
                api, claim.attach_to, timeout_s=timeout_s, poll_interval_s=poll_s, on_update=on_update
            )
        else:
            result = submit_and_wait(
                api,
                request.payload(),
                timeout_s=timeout_s,
                poll_interval_s=poll_s,
                on_update=on_update,
                safe_to_retry=bool(idempotency_key),
                on_submitted=submitted,
                run_options=run_options,
            )
    except (JobUnsuccessful, Interrupted) as exc:
        claim.failed(exc)
        raise
    saved = _save(result, request, target.label, idempotency_key, out_root or settings.outputs_dir)
    claim.finished("COMPLETED", output_dir=str(Path(saved["directory"]).resolve()))
    return {"reused": False, "attached": bool(claim.attach_to), **saved}


class _Claim:
    """This request's row in the job ledger: reuse a finished job, re-attach to a submitted one, or record."""

    def __init__(self, ledger: Ledger | None, endpoint: str, request: JobSubmission, key: str | None) -> None:
        self.ledger, self.endpoint, self.request = ledger, endpoint, request
        self.digest = request_hash(request.payload())
        self.rowid: int | None = None
        self.attach_to: str | None = None
        self.reused: dict[str, Any] | None = None
        if key:
            self._claim(key)

    def _claim(self, key: str) -> None:
        if self.ledger is None:
            raise UsageError("--idempotency-key needs the job ledger")
        row, claimed = self.ledger.claim(self.endpoint, key, self.digest, self.request.label)
        self.rowid = row.rowid
        if claimed:
            return
        if row.request_hash != self.digest:
            raise IdempotencyConflict(f"idempotency key {key!r} was used for a different request (job {row.job_id})")
        if row.state == "done" and row.status == "COMPLETED":
            previous = _reuse(row.output_dir)
            if previous is not None:
                self.reused = {
                    "reused": True,
                    "job_id": row.job_id,
                    "workflow": self.request.label,
                    "directory": row.output_dir,
                    "files": previous.get("files", []),
                    "outputs": _summaries(previous.get("response", {})),
                    "timing": previous.get("timing", {}),
                }
        elif row.state == "done":
            raise JobFailed(
                f"job {row.job_id} with idempotency key {key!r} already ended {row.status}"
                + (f" ({row.error_code})" if row.error_code else ""),
                code=row.error_code or "JOB_FAILED",
                fix=(
                    "Use a new --idempotency-key to submit again, or `comfy-runpod jobs retry JOB_ID` (RunPod retries "
                    "only FAILED and TIMED_OUT jobs, within their 30-minute retention)."
                    if row.status in RETRYABLE
                    else "Use a new --idempotency-key to submit it again (RunPod retries only FAILED and TIMED_OUT "
                    "jobs, so `jobs retry` can't bring this one back)."
                ),
                details={"job_id": row.job_id},
            )
        self.attach_to = row.job_id  # submitted before (maybe by a run that crashed): follow it, don't pay twice

    def submitted(self, job_id: str) -> None:
        if self.ledger is None:
            return
        if self.rowid is not None:
            self.ledger.submitted(self.rowid, job_id)
        else:
            self.rowid = self.ledger.record(self.endpoint, job_id, self.digest, self.request.label)

    def finished(self, status: str, **fields: Any) -> None:
        if self.ledger is not None and self.rowid is not None:
            self.ledger.finished(self.rowid, status, **fields)

    def failed(self, exc: ClientError) -> None:
        """Record the end; a timeout or Ctrl-C whose cancel did not get through leaves the job running
        (a re-run re-attaches to it)."""
        cancel_sent = bool(exc.details.get("cancel", {}).get("sent"))
        if isinstance(exc, Interrupted):
            if cancel_sent:
                self.finished("CANCELLED", error_code="INTERRUPTED")
        elif isinstance(exc, JobUnsuccessful) and (not isinstance(exc, ClientTimeout) or cancel_sent):
            self.finished(_ledger_status(exc), error_code=exc.code)


def _ledger_status(exc: JobUnsuccessful) -> str:
    if isinstance(exc, ClientTimeout | JobCancelled):
        return "CANCELLED"
    if isinstance(exc, JobTimedOut):
        return "TIMED_OUT"
    if isinstance(exc, JobNotFound):
        return "NOT_FOUND"
    return "FAILED"


def _summaries(response: dict[str, Any]) -> list[dict[str, Any]]:
    keys = (
        "node_id",
        "kind",
        "filename",
        "saved_as",
        "mime",
        "size_bytes",
        "width",
        "height",
        "frames",
        "fps",
        "duration_sec",
        "url",
    )
    return [{k: o[k] for k in keys if k in o} for o in response.get("outputs") or [] if isinstance(o, dict)]


def _save(result: JobResult, request: JobSubmission, target: str, key: str | None, out_root: Path) -> dict[str, Any]:
    response = result.output
    if not isinstance(response, dict) or not isinstance(response.get("outputs"), list):
        raise ClientError(
            f"job {result.job_id} completed without the worker's outputs list: {str(response)[:200]!r}",
            code="BAD_RESPONSE",
            fix="Is this endpoint running this project's worker?",
        )
    workflow = str(response.get("workflow") or request.label)
    if workflow == "inline":
        workflow = request.label
    directory = out_root / output_dir_name(workflow, result.job_id)
    t0 = time.perf_counter()
    timing = {**result.timing(), "worker": response.get("timings")}
    meta = {
        "job_id": result.job_id,
        "status": result.status,
        "target": target,
        "workflow": workflow,
        "idempotency_key": key,
        "request": summarize_input(request.payload()),
        "timing": timing,
    }
    saved = save_outputs(response, directory, meta=meta)
    timing["client"]["save_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    stripped = json.loads(saved.result_json.read_text())
    stripped["timing"] = timing
    saved.result_json.write_text(redact(json.dumps(stripped, indent=2, default=str)) + "\n")
    return {
        "job_id": result.job_id,
        "workflow": workflow,
        "directory": str(saved.directory),
        "files": [p.name for p in saved.files],
        "result_json": str(saved.result_json),
        "outputs": _summaries(stripped["response"]),
        "timing": timing,
    }
