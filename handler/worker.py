"""The RunPod entry point: `python -m handler.worker [runpod flags]`.

Started by entrypoint.sh beside ComfyUI, so the runpod import (~2 s) overlaps ComfyUI's boot. It
waits for ComfyUI to answer, runs the live self-check, then takes jobs. `handle(job)` stays short:
parse -> dispatch -> respond; failures become the documented error shape here and only here.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import Any

import runpod

from handler.config import Settings
from handler.diagnose import diagnose
from handler.generate import generate
from handler.health import health
from handler.runtime import Runtime, redact
from workflows.errors import JobError
from workflows.request import DiagnoseRequest, GenerateRequest, TestRequest, parse_request

log = logging.getLogger("handler")
_runtime: Runtime | None = None


def runtime() -> Runtime:
    global _runtime
    if _runtime is None:
        _runtime = Runtime(Settings.from_env())
    return _runtime


def error_response(rt: Runtime, exc: JobError) -> dict[str, Any]:
    """The FAILED shape. RunPod marks a job FAILED when `error` is set, and keeps only that string
    (the local API drops `output` of failed jobs), so `error` is our error object as a JSON string;
    the same fields also ride in `output` for RunPod cloud, which keeps it."""
    spec = exc.spec
    body = exc.body()
    if spec.comfy_involved:
        body["logs_tail"] = rt.logs_tail()
    secrets = rt.settings.secrets()
    text = json.dumps(body, default=str)
    if secrets:
        text = redact(text, secrets)
        body = json.loads(text)
    response: dict[str, Any] = {"error": text, **body}
    if spec.refresh_worker:
        response["refresh_worker"] = True
    return response


def _progress_sink(job: dict[str, Any], interval: float):
    last = 0.0

    def send(update: dict[str, Any]) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= interval:
            last = now
            try:
                runpod.serverless.progress_update(job, update)
            except Exception:  # progress is best effort
                log.debug("progress_update failed", exc_info=True)

    return send


def handle(job: dict[str, Any], rt: Runtime | None = None) -> dict[str, Any]:
    """One job. `rt`: the runtime to use (tests and benchmarks pass their own); default: the process's."""
    rt = rt or runtime()
    try:
        request = parse_request(job.get("input"))
        if isinstance(request, TestRequest):
            return health(rt)
        if isinstance(request, DiagnoseRequest):
            return diagnose(rt, request)
        assert isinstance(request, GenerateRequest)
        return generate(rt, request, str(job.get("id", "local")), _progress_sink(job, rt.settings.progress_interval_s))
    except JobError as exc:
        log.warning("job %s failed: %s: %s", job.get("id"), exc.code, redact(exc.message, rt.settings.secrets()))
        return error_response(rt, exc)
    except Exception as exc:
        log.exception("unexpected error in job %s", job.get("id"))
        return error_response(
            rt,
            JobError(
                "INTERNAL_ERROR",
                f"{type(exc).__name__}: {exc}"[:500],
                {"traceback": traceback.format_exc().splitlines()[-6:]},
            ),
        )


def wait_until_ready(rt: Runtime) -> bool:
    """Poll ComfyUI every 50 ms until it answers; False (with the reason printed) on death or timeout."""
    deadline = time.monotonic() + rt.settings.ready_timeout_s
    while time.monotonic() < deadline:
        if rt.comfy_process_alive() is False:
            _print_failure(rt, "ComfyUI exited during start-up")
            return False
        if rt.comfy.is_up(timeout=0.5):
            return True
        time.sleep(0.05)
    _print_failure(rt, f"ComfyUI did not answer /system_stats within {rt.settings.ready_timeout_s:g} s")
    return False


def _print_failure(rt: Runtime, reason: str) -> None:
    print(f"worker: {reason}; last ComfyUI log lines:", file=sys.stderr)
    for line in rt.logs_tail(50):
        print(f"  | {line}", file=sys.stderr)


def _preload() -> None:
    """Import now, while ComfyUI boots, what would otherwise be imported after it is ready: the
    SDK's local API server (~300 ms, --rp_serve_api only) and PyAV (~90 ms, the first video probe)."""
    import av  # noqa: F401

    if "--rp_serve_api" in sys.argv:
        import runpod.serverless.modules.rp_fastapi  # noqa: F401


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rt = runtime()
    _preload()
    if not wait_until_ready(rt):
        return 1
    rt.events.start(wait=1.0)
    print(f"worker: ComfyUI ready at {rt.settings.comfy_url}; taking jobs", file=sys.stderr, flush=True)
    from handler.selfcheck import live_check_at_start

    if not live_check_at_start(rt):
        return 1
    runpod.serverless.start({"handler": handle})
    return 0


if __name__ == "__main__":
    sys.exit(main())
