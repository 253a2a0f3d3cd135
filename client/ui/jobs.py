"""One editor prompt run on the endpoint: inputs up, job followed, outputs down, told to the editor.

Each job runs in a launcher thread, not in the browser: closing the editor changes nothing, the job
still ends, its outputs are still saved (the client's outputs folder with result.json, and ComfyUI's
output folder so the editor can show them) and the client's job ledger records it. The pipeline is
the `generate` command's (client.commands.generate.generate); this module adds the editor's view of it
as ComfyUI's own WebSocket messages.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.commands.generate import JobSubmission, generate
from client.config import Settings
from client.errors import EXTRA_CODES, ClientError, JobCancelled, JobFailed, Unreachable, UsageError
from client.jobflow import Backend, JobUpdate, cancel_quietly
from client.ledger import Ledger
from client.ui import protocol
from comfyui_client import ComfyClient
from comfyui_client.errors import ComfyError
from workflows.request import JobInput, NamedImage
from workflows.ui_convert import UPLOAD_FLAGS

log = logging.getLogger("client.ui")
OUTPUT_SUBFOLDER = "comfy-runpod"
RUNNING = frozenset({"IN_PROGRESS", "RUNNING"})  # RunPod's states of a job a worker has
Emit = Callable[[str | None, "dict[str, Any] | bytes"], None]


@dataclass
class RemoteJob:
    """An editor prompt and what became of it on the endpoint (the launcher's queue and history)."""

    prompt_id: str
    number: int
    client_id: str | None
    prompt: dict[str, Any]
    extra_data: dict[str, Any]
    output_nodes: list[str]
    state: str = "pending"  # pending | running | success | error | cancelled
    job_id: str | None = None
    endpoint_status: str | None = None
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: list[list[Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None
    directory: str | None = None
    cancel_requested: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def executing(self) -> bool:
        """Running on the endpoint (not waiting in the launcher or in RunPod's queue)."""
        return self.endpoint_status in RUNNING

    def item(self) -> list[Any]:
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.output_nodes]

    def history(self) -> dict[str, Any]:
        status_str = "success" if self.state == "success" else "error"
        meta = {"comfy_runpod": {"job_id": self.job_id, "timing": self.timing, "directory": self.directory}}
        return protocol.history_entry(self.item(), self.outputs, status_str, self.messages, meta)

    def describe(self) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "job_id": self.job_id,
            "state": self.state,
            "endpoint_status": self.endpoint_status,
            "error": self.error,
            "timing": self.timing,
            "directory": self.directory,
            "outputs": self.outputs,
        }


def bug(exc: BaseException) -> ClientError:
    """An unexpected exception as CLIENT_BUG, so the editor shows a code and a fix, never a traceback."""
    return ClientError(f"{type(exc).__name__}: {exc}"[:500], code="CLIENT_BUG", fix=EXTRA_CODES["CLIENT_BUG"][2])


def referenced_inputs(prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """Input files the prompt names through an upload widget (LoadImage & co): value -> (subfolder, file)."""
    found: dict[str, tuple[str, str]] = {}
    for node in prompt.values():
        if not isinstance(node, Mapping):
            continue
        info = object_info.get(str(node.get("class_type"))) or {}
        specs = {
            **((info.get("input") or {}).get("required") or {}),
            **((info.get("input") or {}).get("optional") or {}),
        }
        for name, value in (node.get("inputs") or {}).items():
            spec = specs.get(name)
            options = spec[1] if isinstance(spec, list | tuple) and len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(value, str) and value and any(options.get(flag) for flag in UPLOAD_FLAGS):
                path = value.removesuffix(" [input]")
                subfolder, _, filename = path.rpartition("/")
                found[value] = (subfolder, filename)
    return found


def inside_input_dir(subfolder: str, filename: str) -> bool:
    """A name relative to the input folder that can't leave it: no absolute path, no `..`, no empty or
    backslash part (the local ComfyUI's /view checks too, but a --local-comfy may be any server)."""
    parts = [*(subfolder.split("/") if subfolder else []), filename]
    return all(p and p not in (".", "..") and "\\" not in p and "\0" not in p for p in parts)


class JobRunner:
    """Runs RemoteJobs against the endpoint and reports each step through `emit` (thread-safe)."""

    def __init__(
        self,
        api: Backend,
        settings: Settings,
        local: ComfyClient,
        emit: Emit,
        *,
        ledger: Ledger | None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.api, self.settings, self.local, self.emit = api, settings, local, emit
        self.ledger, self.on_change = ledger, on_change

    def input_images(self, prompt: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[NamedImage]:
        """The files the editor uploaded locally, read back from the local ComfyUI, named as the prompt names them."""
        images: list[NamedImage] = []
        for value, (subfolder, filename) in referenced_inputs(prompt, object_info).items():
            if not inside_input_dir(subfolder, filename):  # the prompt is the browser's: not trusted
                raise UsageError(
                    f"the input file {value[:200]!r} is outside the local ComfyUI's input folder",
                    code="INPUT_UNREADABLE",
                    fix="Name a file the editor uploaded (LoadImage > choose file to upload), not a path.",
                )
            try:
                raw = self.local.view(filename, subfolder, "input")
            except ComfyError as exc:
                raise UsageError(
                    f"the input file {value!r} could not be read from the local ComfyUI: {exc}",
                    code="INPUT_UNREADABLE",
                    fix="Upload the image again in the editor (LoadImage > choose file to upload).",
                ) from None
            images.append({"name": value, "image": base64.b64encode(raw).decode("ascii")})
        return images

    def run(self, job: RemoteJob, images: list[NamedImage]) -> None:
        """The whole job (blocking: call in a thread). Never raises: every end is told to the editor."""
        try:
            if job.cancel_requested.is_set():
                raise JobCancelled(f"prompt {job.prompt_id} was cancelled before it was sent")
            self._start(job)
            job_input: JobInput = {"workflow": job.prompt}
            if images:
                job_input["images"] = images
            request = JobSubmission("ui", job_input)
            data = generate(
                self.api,
                self.settings,
                request,
                ledger=self.ledger,
                out_root=self.settings.outputs_dir,
                on_update=lambda update: self._update(job, update),
                on_submitted=lambda job_id: self._submitted(job, job_id),
            )
            self._finish(job, data)
        except JobCancelled as exc:
            self._end(job, "cancelled", exc)
        except ClientError as exc:
            self._end(job, "error", exc)
        except ComfyError as exc:  # the job ended well; only showing it in the editor failed
            where = f" (saved in {job.directory})" if job.directory else ""
            self._end(job, "error", Unreachable(f"the outputs could not be shown: the local ComfyUI: {exc}{where}"))
        except Exception as exc:  # a bug must still end the job in the editor, never leave it spinning
            log.exception("job %s failed in the launcher", job.prompt_id)
            self._end(job, "error", bug(exc))
        finally:
            job.done.set()
            self.on_change()

    def cancel(self, job: RemoteJob) -> dict[str, Any]:
        """Ask the endpoint to cancel (or stop the job before it is sent); what happened."""
        job.cancel_requested.set()
        if job.job_id is None:
            return {"sent": False, "reason": "not submitted yet: it will not be sent"}
        answer = cancel_quietly(self.api, job.job_id)
        if not answer["sent"]:  # e.g. RunPod's local dev API has no /cancel: the job runs to its end
            reason = str(answer["error"].get("message"))
            log.warning("job %s could not be cancelled: %s", job.job_id, reason)
            for node in job.output_nodes:  # said where the person looks: on the nodes waiting for the output
                self.emit(job.client_id, protocol.progress_text(node, f"cancel refused by the endpoint: {reason}"))
        return answer

    # -- steps ------------------------------------------------------------------------------

    def _tell(self, job: RemoteJob, kind: str, **data: Any) -> None:
        data.setdefault("prompt_id", job.prompt_id)
        if kind.startswith("execution_"):
            data.setdefault("timestamp", protocol.now_ms())
            job.messages.append([kind, data])
        self.emit(job.client_id, protocol.message(kind, **data))

    def _start(self, job: RemoteJob) -> None:
        job.state = "running"
        self.on_change()
        self._tell(job, "execution_start")
        self._tell(job, "execution_cached", nodes=[])

    def _submitted(self, job: RemoteJob, job_id: str) -> None:
        job.job_id = job_id
        log.info("prompt %s is RunPod job %s", job.prompt_id, job_id)
        if job.cancel_requested.is_set():  # cancelled while it was being sent
            cancel_quietly(self.api, job_id)
        self.on_change()

    def _update(self, job: RemoteJob, update: JobUpdate) -> None:
        if update.status != job.endpoint_status:
            job.endpoint_status = update.status
            self.on_change()
            text = f"RunPod job {job.job_id or ''}: {update.status} after {update.elapsed_s:.1f} s"
            for output in job.output_nodes:  # where the job is (a cold start waits IN_QUEUE), on its nodes
                self.emit(job.client_id, protocol.progress_text(output, text))
        progress = update.progress if isinstance(update.progress, Mapping) else {}
        node = progress.get("node")
        if node is None:
            return
        self._tell(job, "executing", node=str(node), display_node=str(node))
        if progress.get("value") is not None and progress.get("max"):
            self._tell(job, "progress", node=str(node), value=progress["value"], max=progress["max"])

    def _finish(self, job: RemoteJob, data: dict[str, Any]) -> None:
        """Show each saved output on its node (copied into ComfyUI's output folder for /view), then success."""
        t0 = time.perf_counter()
        directory = Path(data["directory"])
        job.directory = str(directory)
        job8 = "".join(c for c in (job.job_id or "job") if c.isalnum())[:8]
        for out in data.get("outputs") or []:
            node, saved = str(out.get("node_id")), out.get("saved_as")
            if not saved:
                continue
            stored = self.local.upload_image(
                f"{job8}_{saved}", (directory / saved).read_bytes(), folder_type="output", subfolder=OUTPUT_SUBFOLDER
            )
            ref: dict[str, Any] = {"filename": stored, "subfolder": OUTPUT_SUBFOLDER, "type": "output"}
            if out.get("kind") == "video":  # as ComfyUI's SaveVideo lists an MP4: under images, animated
                ref["animated"] = True
            key = "audio" if out.get("kind") == "audio" else "images"
            job.outputs.setdefault(node, {}).setdefault(key, []).append(ref)
        timing = dict(data.get("timing") or {})
        timing.setdefault("client", {})["show_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        job.timing, job.directory, job.state = timing, str(directory), "success"
        text = protocol.timing_text(job.job_id or "?", timing)
        for node, output in job.outputs.items():
            self._tell(job, "executing", node=node, display_node=node)
            self._tell(job, "executed", node=node, display_node=node, output=output)
            self.emit(job.client_id, protocol.progress_text(node, text))
        self._tell(job, "execution_success", timing=timing)
        self._tell(job, "executing", node=None, display_node=None)

    def _end(self, job: RemoteJob, state: str, exc: ClientError) -> None:
        job.state = state
        worker = exc.details.get("worker_error") if isinstance(exc, JobFailed) else None
        node_id = str((worker or {}).get("details", {}).get("node_id") or "") or None
        job.error = {"code": exc.code, "message": exc.message, "fix": exc.fix, "job_id": job.job_id}
        if state == "cancelled":
            self._tell(job, "execution_interrupted", node_id=node_id, node_type=None, executed=[])
        else:
            node_type = (job.prompt.get(node_id) or {}).get("class_type") if node_id else None
            self._tell(
                job,
                "execution_error",
                node_id=node_id,
                node_type=node_type,
                executed=[],
                exception_type=exc.code,
                exception_message=f"{exc.code}: {exc.message}" + (f"\nFix: {exc.fix}" if exc.fix else ""),
                traceback=[f"RunPod job {job.job_id}" if job.job_id else "not sent to RunPod"],
                current_inputs={},
                current_outputs={},
            )
        self._tell(job, "executing", node=None, display_node=None)
