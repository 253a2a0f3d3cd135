"""A fake RunPod serverless endpoint API (http.server in a thread) replaying RunPod's documented payloads.

RunPod's cloud can't be reached from the tests; this replays what its documentation and SDKs show,
so the client runs the same code path as against https://api.runpod.ai/v2/<endpoint id>. Sources
(also in docs/client.md, "RunPod, as documented"):

    [ops]     docs.runpod.io serverless/endpoints/operation-reference   (routes, bodies, /runsync ?wait=)
    [send]    docs.runpod.io serverless/endpoints/send-requests         (/run vs /runsync, limits, retention)
    [states]  docs.runpod.io serverless/endpoints/job-states            (IN_QUEUE, RUNNING, IN_PROGRESS,
              COMPLETED, FAILED, CANCELLED, TIMED_OUT: expired in the queue or stopped by the execution timeout)
    [runner]  runpod-python runpod/endpoint/runner.py                   (Bearer auth, /status polling, /health)
    [rp_job]  runpod-python runpod/serverless/modules/rp_job.py         (a handler error: FAILED, `error` a string)
    [policy]  docs.runpod.io serverless/endpoints/send-requests, "Execution policies" (policy.executionTimeout
              > 5000 ms, policy.ttl 10000 ms to 1 week, policy.lowPriority) and "Webhook notifications" (a POST of
              the /status answer to `webhook` when the job is done; retried twice, 10 s apart, unless 200)
    [stream]  docs.runpod.io serverless/endpoints/operation-reference "/stream", runpod-python
              runpod/endpoint/runner.py Job.stream ({"status", "stream": [{"output": …}]}, read until final)

Routes live under /v2/<endpoint id>; `Authorization: Bearer <key>` is checked on every call (401
otherwise). /run → {"id", "status": "IN_QUEUE"}; GET|POST /status/{id} steps through a per-job
script; /runsync holds the request up to `?wait=` ms (default 90 s, [ops]) and answers the finished
job or IN_QUEUE / IN_PROGRESS with the id, after which /status continues the same script. An unknown
endpoint id and an unknown job both answer 404 ([ops]; the bodies of 401/404/429 are not documented,
so these are stand-ins the client must not depend on). Faults (status codes with or without
Retry-After, slow answers, dropped connections) are queued per route and consumed in order. Every
request is recorded, with its query string.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _policy_problem(policy: Any) -> str | None:
    """[policy] what RunPod documents it refuses in `policy`, or None."""
    if policy is None:
        return None
    if not isinstance(policy, dict):
        return "policy must be an object"
    timeout, ttl = policy.get("executionTimeout"), policy.get("ttl")
    if timeout is not None and not (isinstance(timeout, int) and timeout > 5000):
        return "executionTimeout must be > 5000 ms"
    if ttl is not None and not (isinstance(ttl, int) and 10_000 <= ttl <= 7 * 24 * 3600 * 1000):
        return "ttl must be between 10000 ms and 1 week"
    return None


def png_b64(width: int = 64, height: int = 48) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def generate_output(workflow: str = "smoke_image", width: int = 64, height: int = 48) -> dict[str, Any]:
    """A worker generate response, as the real worker shapes it."""
    return {
        "workflow": workflow,
        "prompt_id": "p-123",
        "status": "success",
        "outputs": [
            {
                "node_id": "3",
                "kind": "image",
                "filename": "smoke_00001_.png",
                "mime": "image/png",
                "size_bytes": 100,
                "width": width,
                "height": height,
                "base64": png_b64(width, height),
            }
        ],
        "timings": {
            "validate_ms": 0.2,
            "upload_ms": 0.1,
            "run_ms": 300.0,
            "queue_wait_ms": 1.0,
            "execution_ms": 280.0,
            "nodes_ms": {"1": 1.0},
            "encode_ms": 2.0,
            "total_ms": 305.0,
        },
    }


HEALTH_OUTPUT = {
    "ok": True,
    "comfyui_up": True,
    "disk_free_gb": 50.0,
    "volume_mounted": True,
    "comfyui_version": "0.3.75",
    "handler_version": "0.1.0",
    "uptime_s": 12.0,
    "timings": {"total_ms": 2.5},
}


SMOKE_NODES = ["EmptyImage", "ImageInvert", "SaveImage"]
DIAGNOSE_OUTPUT = {  # this project's worker's diagnose answer, trimmed to one workflow
    "ok": True,
    "comfyui_reachable": True,
    "system": {"comfyui_version": "0.3.75", "handler_version": "0.1.0", "devices": [{"name": "cpu"}]},
    "disks": [{"label": "container", "free_gb": 50.0, "total_gb": 100.0}],
    "volume": {"mounted": False, "path": "/runpod-volume", "layouts": []},
    "models": {"checkpoints": {"on_disk": [], "comfyui_lists": []}},
    "custom_nodes": {"packs": [], "failed": []},
    "node_check": {"required_available": SMOKE_NODES, "required_missing": []},
    "workflow_checks": {"smoke_image": {"ok": True, "nodes": SMOKE_NODES, "findings": []}},
    "findings": [],
    "summary": {"errors": 0, "warnings": 0},
}


def completed(output: Any, delay_ms: int = 1234, execution_ms: int = 567) -> dict[str, Any]:
    """[ops] a finished job: output plus delayTime (queue + cold start) and executionTime, in ms."""
    return {"status": "COMPLETED", "output": output, "delayTime": delay_ms, "executionTime": execution_ms}


def running() -> dict[str, Any]:
    """[states] RUNNING: a worker has the job (listed beside IN_PROGRESS); not final."""
    return {"status": "RUNNING", "delayTime": 900}


def failed_with_text(message: str = "CUDA out of memory") -> dict[str, Any]:
    """[rp_job] FAILED from a handler that returned {"error": "<text>"}: `error` is a plain string."""
    return {"status": "FAILED", "error": message, "delayTime": 10, "executionTime": 20}


def timed_out_in_queue(delay_ms: int = 600_000) -> dict[str, Any]:
    """[states] TIMED_OUT before any worker took the job: expired in the queue, no executionTime."""
    return {"status": "TIMED_OUT", "delayTime": delay_ms}


def timed_out_in_execution(execution_ms: int = 600_000) -> dict[str, Any]:
    """[states] TIMED_OUT by the endpoint's execution timeout (policy.executionTimeout, default 600000 ms)."""
    return {"status": "TIMED_OUT", "delayTime": 1500, "executionTime": execution_ms}


def cancelled() -> dict[str, Any]:
    """[states] CANCELLED by POST /cancel/{id}."""
    return {"status": "CANCELLED", "delayTime": 100}


def failed(code: str = "QUEUE_FAILED", message: str = "node 1 (EmptyImage): value too big", **extra: Any) -> dict:
    """FAILED from this project's worker: its error object as a JSON string in `error`, and in `output`."""
    error = {"error_code": code, "error_message": message, "fix": f"fix for {code}", "details": {}, **extra}
    return {"status": "FAILED", "error": json.dumps(error), "output": error, "delayTime": 10, "executionTime": 20}


@dataclass
class Fault:
    status: int | None = None  # answer this HTTP status
    retry_after: float | None = None
    delay: float = 0.0  # sleep before answering (normally, unless status is set)
    drop: bool = False  # close the connection without an answer
    body: Any = None


@dataclass
class Request:
    method: str
    path: str  # below the endpoint prefix, e.g. "/run", "/status/job-1"
    headers: dict[str, str]
    body: Any
    at: float
    query: dict[str, str] = field(default_factory=dict)

    @property
    def route(self) -> str:
        parts = self.path.split("/")
        return f"{self.method} /{parts[1]}" if len(parts) > 1 else f"{self.method} {self.path}"


@dataclass
class Job:
    id: str
    input: Any
    script: list[dict[str, Any]]
    polls: int = 0
    cancelled: bool = False
    webhook: str | None = None
    policy: dict[str, Any] | None = None
    notified: bool = False


@dataclass
class FakeRunPod:
    api_key: str = "rp_fake_key_0123456789"
    endpoint_id: str = "ep-fake"
    requests: list[Request] = field(default_factory=list)
    jobs: dict[str, Job] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    script: list[dict[str, Any]] = field(default_factory=lambda: [completed(generate_output())])
    run_scripts: list[list[dict[str, Any]]] = field(default_factory=list)  # scripts of the next /run jobs, in order
    runsync_result: dict[str, Any] = field(default_factory=lambda: completed(HEALTH_OUTPUT))
    diagnose_result: dict[str, Any] = field(default_factory=lambda: completed(DIAGNOSE_OUTPUT))
    runsync_script: list[dict[str, Any]] | None = None  # steps of the /runsync job; default [runsync_result]
    runsync_hold_s: float = 90.0  # [ops] /runsync holds the request up to 90 s unless ?wait= says otherwise
    webhook_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # [policy] (url, payload) sent
    health_body: dict[str, Any] = field(  # [ops] GET /health; [runner] Endpoint.health()
        default_factory=lambda: {
            "jobs": {"completed": 5, "failed": 1, "inProgress": 1, "inQueue": 2, "retried": 0},
            "workers": {"idle": 1, "running": 1, "initializing": 0, "ready": 1, "throttled": 0},
        }
    )

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake._handle(self, "GET")

            def do_POST(self) -> None:
                fake._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- test-facing --------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v2"

    @property
    def files_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/files"

    @property
    def base_url(self) -> str:
        return f"{self.api_base}/{self.endpoint_id}"

    def start(self) -> FakeRunPod:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, route: str, *faults: Fault) -> None:
        self.faults.setdefault(route, []).extend(faults)

    def calls(self, route: str) -> list[Request]:
        return [r for r in self.requests if r.route == route]

    def count(self, route: str) -> int:
        return len(self.calls(route))

    def wait_for(self, route: str, n: int = 1, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.count(route) >= n:
                return True
            time.sleep(0.02)
        return False

    # -- server side --------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        prefix = f"/v2/{self.endpoint_id}"
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        path, _, raw_query = h.path.partition("?")
        query = dict(part.partition("=")[::2] for part in raw_query.split("&") if part)
        if method == "GET" and path.startswith("/files/"):  # a stand-in for a presigned S3 URL
            self.requests.append(Request(method, path, dict(h.headers), None, time.monotonic()))
            return self._send_bytes(h, 200, base64.b64decode(png_b64(32, 16)), "image/png")
        if not path.startswith(prefix + "/"):  # [ops] 404 for an unknown endpoint id (body undocumented)
            self.requests.append(Request(method, path, dict(h.headers), body, time.monotonic()))
            return self._send(h, 404, {"error": "not found"})
        req = Request(method, path[len(prefix) :], dict(h.headers), body, time.monotonic(), query)
        with self._lock:
            self.requests.append(req)
            queue = self.faults.get(req.route) or []
            fault = queue.pop(0) if queue else None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                h.close_connection = True
                with contextlib.suppress(OSError):
                    h.connection.shutdown(2)
                return None
            if fault.status is not None:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return self._send(h, fault.status, fault.body or {"error": f"fault {fault.status}"}, headers)
        auth = h.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":  # [runner] Bearer auth; 401 body undocumented: echo the header
            return self._send(h, 401, {"error": f"Unauthorized: bad Authorization header {auth!r}"})
        return self._route(h, req)

    def _route(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        parts = req.path.strip("/").split("/")
        op, job_id = parts[0], (parts[1] if len(parts) > 1 else None)
        if req.method == "POST" and op == "run":  # [ops] / [send]: {"id", "status": "IN_QUEUE"}
            refused = _policy_problem((req.body or {}).get("policy"))
            if refused:  # [policy] the documented constraints; the 400 body is a stand-in
                return self._send(h, 400, {"error": refused})
            with self._lock:
                script = self.run_scripts.pop(0) if self.run_scripts else self.script
            job = self._new_job(req.body, script)
            job.webhook, job.policy = (req.body or {}).get("webhook"), (req.body or {}).get("policy")
            return self._send(h, 200, {"id": job.id, "status": "IN_QUEUE"})
        if req.method == "POST" and op == "runsync":
            return self._runsync(h, req)
        if op == "status" and job_id:
            job = self.jobs.get(job_id)
            if job is None:  # [ops] 404 for an unknown or expired job id (body undocumented)
                return self._send(h, 404, {"error": "not found"})
            return self._send(h, 200, self._step(job))
        if op == "stream" and job_id:  # [stream] GET on the cloud (POST on the SDK's local API)
            job = self.jobs.get(job_id)
            if job is None:
                return self._send(h, 404, {"error": "not found"})
            return self._send(h, 200, self._stream_step(job))
        if req.method == "POST" and op == "cancel" and job_id:  # [ops] {"id", "status": "CANCELLED"}
            job = self.jobs.get(job_id)
            if job is None:
                return self._send(h, 404, {"error": "request does not exist"})
            job.cancelled = True
            return self._send(h, 200, {"id": job.id, "status": "CANCELLED"})
        if req.method == "POST" and op == "retry" and job_id:  # [ops] requeued under the same id
            job = self.jobs.get(job_id)
            if job is None:
                return self._send(h, 404, {"error": "request does not exist"})
            job.polls, job.cancelled = 0, False
            return self._send(h, 200, {"id": job.id, "status": "IN_QUEUE"})
        if req.method == "GET" and op == "health":  # [ops]
            return self._send(h, 200, self.health_body)
        return self._send(h, 404, {"error": "no such route"})

    def _new_job(self, body: Any, script: list[dict[str, Any]], prefix: str = "job") -> Job:
        with self._lock:
            n = sum(j.id.startswith(prefix + "-") for j in self.jobs.values()) + 1
            job = Job(f"{prefix}-{n:04d}-abcdef", (body or {}).get("input"), list(script))
            self.jobs[job.id] = job
        return job

    def _step(self, job: Job) -> dict[str, Any]:
        if job.cancelled:
            return {"id": job.id, **cancelled()}
        step = job.script[min(job.polls, len(job.script) - 1)]
        job.polls += 1
        answer = {"id": job.id, **{k: v for k, v in step.items() if k != "stream"}}
        if answer["status"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT") and job.webhook and not job.notified:
            job.notified = True  # [policy] RunPod POSTs the /status answer to the webhook once the job is done
            threading.Thread(target=self._notify, args=(job.webhook, answer), daemon=True).start()
        return answer

    def _stream_step(self, job: Job) -> dict[str, Any]:
        """[stream] the step's status and the partial outputs produced since the last read (a step's `stream`)."""
        answer = self._step(job)
        step = job.script[min(job.polls - 1, len(job.script) - 1)] if not job.cancelled else {}
        return {"id": job.id, "status": answer["status"], "stream": [{"output": o} for o in step.get("stream", [])]}

    def _notify(self, url: str, payload: dict[str, Any]) -> None:
        import urllib.request

        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        for _ in range(3):  # [policy] the first call, then up to two more (not waiting 10 s here)
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                continue
        self.webhook_calls.append((url, payload))

    def _runsync(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        """[ops] hold up to ?wait= ms (default 90 s); answer the job when final, else its id and state."""
        mode = ((req.body or {}).get("input") or {}).get("mode")
        default = self.diagnose_result if mode == "diagnose" else self.runsync_result
        job = self._new_job(req.body, self.runsync_script or [default], prefix="sync")
        final = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")
        if job.script[0].get("status") not in final:
            wait_s = int(req.query["wait"]) / 1000 if req.query.get("wait", "").isdigit() else self.runsync_hold_s
            time.sleep(min(wait_s, self.runsync_hold_s))
        return self._send(h, 200, self._step(job))

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._send_bytes(h, status, json.dumps(body).encode(), "application/json", headers)

    def _send_bytes(
        self, h: BaseHTTPRequestHandler, status: int, data: bytes, mime: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", mime)
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (read timeout): nothing to do
            pass
