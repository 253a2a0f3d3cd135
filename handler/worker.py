"""The RunPod entry point: `python -m handler.worker [runpod flags]`.

Started by entrypoint.sh. It starts ComfyUI itself (handler.supervisor) before importing the
runpod SDK, so the slow import overlaps ComfyUI's boot, and then ALWAYS starts the SDK: whatever
state ComfyUI or the configuration is in, every job gets an answer — the result, or the cause
(code, message, fix, logs_tail) of why this worker can't run it. Nothing here exits before the SDK
has started. `handle(job)` stays short: parse -> dispatch -> respond; failures become the
documented error shape here and only here.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

from handler import privileges
from handler.config import Settings
from handler.diagnose import diagnose
from handler.generate import generate
from handler.health import health
from handler.model_cache import link_cached_models
from handler.runtime import Runtime
from handler.state import Cause, State, WorkerState
from workflows.compat import COMFY_ORG_KEY_NAMES, WORKER_COMFYUI, shaped, with_warnings
from workflows.errors import JobError
from workflows.request import DiagnoseRequest, GenerateRequest, TestRequest, parse_request
from workflows.secrets import redact, redact_data

# Passed through unscanned: output file content (base64: scanning megabytes costs time, and ComfyUI's
# own environment holds no secret, see handler.confine.comfy_environment; README "Security" names what
# a custom pack could still do) and the presigned URLs the worker itself made, which carry the
# bucket's access key id (an identifier; never the secret key).
_UNSCANNED_KEYS = frozenset({"base64", "video_base64", "url", "video_url"})

_IMPORTED_AT = time.time()
log = logging.getLogger("handler")
_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


def error_response(rt: Runtime, exc: JobError, job_id: str | None = None) -> dict[str, Any]:
    """The FAILED shape. RunPod marks a job FAILED when `error` is set, and keeps only that string
    (the local API drops `output` of failed jobs), so `error` is our error object as a JSON string;
    the same fields also ride in `output` for RunPod cloud, which keeps it."""
    spec = exc.spec
    body = exc.body()
    if spec.comfy_involved or "signature" in exc.details:  # a signature read ComfyUI's own text
        # A job's own lines of ComfyUI's output (handler.comfylog); for a start-up cause, no job's lines.
        cause = exc.code in _CAUSE_CODES or exc.details.get("state") == "broken"  # the worker's, not the job's
        body["logs_tail"] = rt.logs_tail(job=None if cause else job_id)
    # masked before serialising: a secret holding a quote or backslash would not match its escaped JSON form
    body = redact_data(json.loads(json.dumps(body, default=str)), tuple(rt.settings.secrets()))
    text = json.dumps(body)
    response: dict[str, Any] = {"error": text, **body}
    if spec.refresh_worker:
        response["refresh_worker"] = True
    return response


def _progress_sink(job: dict[str, Any], interval: float):
    """At most one update per `interval`, the first once the job has run that long. The SDK sends each
    update from a new thread with its own event loop and HTTP session (~0.7 ms of the job's CPU): a job
    done sooner gets none, as its result follows at once (and can't be overtaken by a late update)."""
    last = time.monotonic()

    def send(update: dict[str, Any]) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval:
            last = now
            try:
                import runpod

                runpod.serverless.progress_update(job, update)
            except Exception:  # progress is best effort
                log.debug("progress_update failed", exc_info=True)

    return send


_CAUSE_CODES = frozenset(
    {
        "COMFY_STARTING",
        "COMFY_START_FAILED",
        "COMFY_START_TIMEOUT",
        "COMFY_PORT_IN_USE",
        "COMFY_CUDA_MISMATCH",
        "COMFY_PACK_KILLED_START",
        "COMFY_MODEL_PATHS_INVALID",
        "COMFY_CRASH_LOOP",
        "SELF_CHECK_FAILED",
    }
)


def handle(job: dict[str, Any], rt: Runtime | None = None) -> dict[str, Any]:
    """One job; every response, success included, leaves with every secret of the environment masked.
    `rt`: the runtime to use (tests and benchmarks pass their own); default: the process's."""
    rt = rt or runtime()
    response, response_format = _handle(rt, job)
    secrets = (*rt.settings.secrets(), *request_secrets(job.get("input")))
    # masked in our own shape (where file content and presigned URLs have known keys), then reshaped
    return shaped(redact_data(response, secrets, _UNSCANNED_KEYS), response_format)


def request_secrets(job_input: Any) -> list[str]:
    """Secrets a job itself carries (a per-request Comfy.org key): masked in its response like the environment's."""
    if isinstance(job_input, str):  # compatibility mode takes the input as a JSON string too
        try:
            job_input = json.loads(job_input)
        except ValueError:
            return []
    if not isinstance(job_input, dict):
        return []
    return [v for k in COMFY_ORG_KEY_NAMES if isinstance(v := job_input.get(k), str) and len(v) >= 6]


class _RedactingStream:
    """stdout/stderr of the worker with every secret masked: the SDK prints, logging and tracebacks alike."""

    def __init__(self, stream: Any, secrets: list[str]) -> None:
        self._stream, self._secrets = stream, secrets

    def write(self, text: str) -> int:
        self._stream.write(redact(text, self._secrets))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _handle(rt: Runtime, job: dict[str, Any]) -> tuple[Mapping[str, Any], str | None]:
    """The response in our own shape, and the shape a successful generate asked to be answered in."""
    arrived = time.monotonic()  # the job's deadline counts from here, waiting for ComfyUI included
    job_id = str(job.get("id", "local"))
    if rt.state is not None:
        rt.state.phase("first_job_taken")
    rt.begin_job(job_id)
    try:
        request = parse_request(job.get("input"), compat=rt.settings.response_format == WORKER_COMFYUI)
        if isinstance(request, TestRequest):
            return health(rt), None
        if isinstance(request, DiagnoseRequest):
            return diagnose(rt, request), None
        assert isinstance(request, GenerateRequest)
        rt.require_ready(arrived + (request.timeout_s or rt.settings.timeout_s))
        sink = _progress_sink(job, rt.settings.progress_interval_s)
        result = with_warnings(generate(rt, request, job_id, sink, arrived=arrived), request_warnings(rt, request))
        return result, request.response_format or rt.settings.response_format
    except JobError as exc:
        # the job's own Comfy.org key too: its workflow may carry it where ComfyUI's message echoes it
        secrets = [*rt.settings.secrets(), *request_secrets(job.get("input"))]
        log.warning("job %s failed: %s: %s", job_id, exc.code, redact(exc.message, secrets))
        return error_response(rt, exc, job_id), None
    except Exception as exc:  # a bug: the traceback goes to the worker's log, never to the caller
        log.exception("unexpected error in job %s", job_id)
        message = f"{type(exc).__name__} in the worker (job {job_id}); the traceback is in the worker's log"
        return error_response(rt, JobError("INTERNAL_ERROR", message), job_id), None
    finally:
        rt.end_job(job_id)


def request_warnings(rt: Runtime, request: GenerateRequest) -> list[str]:
    """What the response says the worker did not do as asked: ignored keys (compatibility mode), a Comfy.org
    key while API nodes are disabled."""
    warnings = list(request.warnings)
    if request.comfy_org_api_key and not rt.settings.api_nodes:
        warnings.append(
            "comfy_org_api_key was passed to ComfyUI, but its API nodes are disabled on this worker "
            "(--disable-api-nodes; COMFY_API_NODES=1 enables them)"
        )
    return warnings


def _on_ready(rt: Runtime, first: bool) -> Cause | None:
    """ComfyUI answers (at start or after a restart): follow its events; at start, self-check."""
    rt.forget_object_info()
    rt.events.start()
    # Fetch the node definitions every job needs now, off the critical path; a job arriving
    # meanwhile shares this one fetch (Runtime.object_info is single-flight).
    threading.Thread(target=_warm_object_info, args=(rt,), name="object-info", daemon=True).start()
    if first:
        from handler.selfcheck import live_check_at_start

        cause = live_check_at_start(rt)
        if cause is not None:
            print(f"worker: not taking jobs: [{cause.code}] {cause.message}", file=sys.stderr, flush=True)
            return cause
    print(f"worker: ComfyUI ready at {rt.settings.comfy_url}; taking jobs", file=sys.stderr, flush=True)
    return None


def _warm_object_info(rt: Runtime) -> None:
    try:
        rt.object_info()
    except Exception:  # the job that needs it will report ComfyUI's state itself
        log.debug("could not prefetch /object_info", exc_info=True)


def _preload() -> None:
    """Import now, while ComfyUI boots, what would otherwise be imported after it is ready: the
    SDK's local API server (~300 ms, --rp_serve_api only) and PyAV (~90 ms, the first video probe)."""
    import av  # noqa: F401

    if "--rp_serve_api" in sys.argv:
        import runpod.serverless.modules.rp_fastapi  # noqa: F401


def start_worker(settings: Settings) -> Runtime:
    """The runtime with its state machine, ComfyUI's output log and ComfyUI's supervisor running.
    Never raises for anything ComfyUI or the configuration does: that becomes the state's cause."""
    from handler.supervisor import Supervisor, open_log

    global _runtime
    from handler.reaper import become_subreaper

    if (why := become_subreaper()) is not None:  # orphans of ComfyUI's tree come to the worker, to be killed
        log.warning("the worker is not a child subreaper: %s", why)
    state = WorkerState(origin=settings.entrypoint_started_at)
    comfy_log = open_log(settings)
    rt = Runtime.for_worker(settings, state, comfy_log)
    _runtime = rt
    rt.model_cache = link_cached_models(settings.model_cache_dir, settings.model_cache_links, rt.registry)
    state.phase("model_cache_linked")
    rt.supervisor = supervisor = Supervisor(settings, state, comfy_log, on_ready=lambda first: _on_ready(rt, first))
    try:
        supervisor.start()
    except Exception as exc:  # the ComfyUI command itself can't run (wrong COMFY_PYTHON / COMFY_MAIN)
        state.set(
            State.BROKEN,
            Cause("COMFY_START_FAILED", f"cannot start ComfyUI ({settings.comfy_python} {settings.comfy_main}): {exc}"),
        )
    state.phase("handler_imported", at=_IMPORTED_AT)
    return rt


def main() -> int:
    # first: from now on the worker's /proc/<pid>/environ needs CAP_SYS_PTRACE, even for a process of its
    # own uid (a ComfyUI running as root or as the worker's user: handler.privileges)
    privileges.make_undumpable()
    settings = Settings.from_env()
    if settings.secrets():
        sys.stdout = _RedactingStream(sys.stdout, settings.secrets())
        sys.stderr = _RedactingStream(sys.stderr, settings.secrets())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rt = start_worker(settings)
    supervisor = rt.supervisor
    assert supervisor is not None  # start_worker runs ComfyUI
    try:
        import runpod  # ~1.5 s, while ComfyUI boots
    except BaseException:  # no SDK: nothing can answer (entrypoint.sh tries handler/last_resort.py, which needs it too)
        supervisor.stop()
        raise
    try:
        _preload()
    except Exception:  # best effort: only a head start
        log.warning("preloading failed", exc_info=True)
    from handler.supervisor import stop_on_sigterm

    stop_on_sigterm(supervisor)
    assert rt.state is not None
    rt.state.phase("sdk_started")
    print(f"worker: job API starting (ComfyUI {rt.state.state.value})", file=sys.stderr, flush=True)
    try:
        runpod.serverless.start({"handler": handle})
    finally:
        supervisor.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
