"""RunPod's serverless endpoint API over HTTP: the only module of the client that talks to RunPod.

Works against RunPod cloud (https://api.runpod.ai/v2/<endpoint id>), the SDK's local dev API
(`--rp_serve_api`) and anything speaking the same routes. Every call has a connect and a read
timeout; transient failures (connection errors, 429 honouring Retry-After, 5xx) are retried with
exponential backoff by urllib3's Retry. Submissions (/run, /runsync) are different: a lost answer
may still have started a paid job, so they are retried after a failure only when the caller says
it is safe (an idempotency key); otherwise only failures that prove nothing was accepted (could
not connect, 429) are retried. urllib3's Retry would also re-send after 413 / 503 carrying
Retry-After whatever `status_forcelist` says, so submissions use their own policy (_SubmitRetry).

`/runsync` carries `?wait=<ms>` (RunPod holds the request up to 90 s by default; the operation
reference documents `wait`), so the answer — finished, or IN_QUEUE / IN_PROGRESS with the job id —
comes within the caller's deadline and the job can be cancelled when that passes.

A 404 means an unknown endpoint or an unknown job (RunPod answers both alike): on a job route the
client asks GET /health once to tell them apart.

Differences of the local dev API, handled here so that callers see one API:
- `/status/{id}` is POST-only (cloud accepts GET and POST) and blocks until the job has run;
- `/run` jobs start when first polled, and a job is forgotten once its status was read;
- no /health, /cancel, /retry, /purge-queue: NotSupported, with the reason.
"""

from __future__ import annotations

import json
import time
from typing import Any, Self

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.util.retry import Retry

from client.errors import (
    AuthFailed,
    BadResponse,
    ClientError,
    JobNotFound,
    NotSupported,
    RateLimited,
    ServerError,
    Unreachable,
    UsageError,
)
from client.redact import redact

USER_AGENT = "comfy-runpod-client/0.1"
RUN_PAYLOAD_LIMIT = 10 * 1024 * 1024  # RunPod: /run 10 MB, /runsync 20 MB
RUNSYNC_PAYLOAD_LIMIT = 20 * 1024 * 1024
RUNSYNC_WAIT_MS = (1000, 90_000)  # ?wait= range we send (RunPod's default hold is 90 s; JS SDK clamps alike)
RUNSYNC_GRACE_S = 10.0  # read timeout beyond `wait`: RunPod's own latency on top of the hold
TRANSIENT_STATUSES = (429, 500, 502, 503, 504)
CANCEL_BUDGET_S = 10.0  # a cancel goes out once the caller's own time is up: it gets this much of its own
LOCAL_API_ROUTES = "/run, /runsync, /status and /stream"
MAYBE_SUBMITTED_FIX = (
    "The job may have been accepted: look at the endpoint's queue (`comfy-runpod jobs health` or the RunPod "
    "console) before submitting again."
)


class _Attempts:
    """One call's attempts, shared by the Retry objects urllib3 derives from each other (Retry is immutable)."""

    def __init__(self) -> None:
        self.sent = 1
        self.maybe_received = False  # an attempt reached the server without a refusal (5xx, a lost answer)
        self.deadline_hit = False


class _Retry(Retry):
    """urllib3's Retry that counts attempts and stops at the caller's deadline: no new attempt, and no
    backoff or Retry-After sleep, past the time left (urllib3's own budget is a count, not a time)."""

    def __init__(self, *args: Any, deadline: float | None = None, attempts: _Attempts | None = None, **kw: Any):
        super().__init__(*args, **kw)
        self.deadline = deadline
        self.attempts = attempts if attempts is not None else _Attempts()

    def new(self, **kw: Any) -> Self:
        kw.setdefault("deadline", self.deadline)
        kw.setdefault("attempts", self.attempts)
        return super().new(**kw)

    def increment(self, *args: Any, **kw: Any) -> Self:
        response, error = kw.get("response"), kw.get("error")
        if (response is not None and response.status >= 500) or (
            error is not None and not self._is_connection_error(error)
        ):
            self.attempts.maybe_received = True
        new = super().increment(*args, **kw)  # raises MaxRetryError when the count is spent
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.attempts.deadline_hit = True
            url = kw.get("url") or (args[1] if len(args) > 1 else "")  # urllib3 passes (method, url) positionally
            raise MaxRetryError(kw.get("_pool"), url, error or ResponseError("deadline passed"))  # type: ignore[arg-type]
        self.attempts.sent += 1
        return new

    def sleep(self, response: urllib3.BaseHTTPResponse | None = None) -> None:
        if self.deadline is None:
            return super().sleep(response)
        wait = self.get_retry_after(response) if response is not None and self.respect_retry_after_header else None
        wait = self.get_backoff_time() if wait is None else wait
        time.sleep(max(0.0, min(wait, self.deadline - time.monotonic())))


class _SubmitRetry(_Retry):
    """Retry only the statuses asked for: never a 503 / 413 merely because it carries Retry-After."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        listed = bool(self.status_forcelist) and status_code in self.status_forcelist
        return listed and self._is_method_retryable(method)


class _DeadlineTimeout(urllib3.Timeout):
    """A Timeout whose every attempt gets at most the time left: urllib3 clones the timeout per attempt."""

    def __init__(self, deadline: float, connect: float, read: float) -> None:
        super().__init__(connect=connect, read=read)
        self.deadline, self.limits = deadline, (connect, read)

    def clone(self) -> urllib3.Timeout:
        left = max(self.deadline - time.monotonic(), 0.001)
        return urllib3.Timeout(connect=min(self.limits[0], left), read=min(self.limits[1], left))


def runsync_wait_ms(wait_s: float | None) -> int:
    """The `?wait=` for a /runsync that must answer within `wait_s` (RunPod's 90 s when None)."""
    low, high = RUNSYNC_WAIT_MS
    return high if wait_s is None else int(min(max(wait_s * 1000, low), high))


class RunPodAPI:
    """One RunPod-style endpoint. Methods return RunPod's JSON; failures raise client.errors types."""

    kind = "runpod"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        retries: int = 3,
        http_timeout_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        backoff_factor: float = 0.5,
        max_retry_after_s: int = 30,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = max(0, int(retries))
        self.http_timeout_s = http_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.backoff_factor = backoff_factor
        self.max_retry_after_s = max_retry_after_s
        self._headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._has_key = bool(api_key)
        self._pool = urllib3.PoolManager(num_pools=4, maxsize=32)
        self._status_method = "GET"
        self.local_dev_api: bool | None = None  # learnt from the first /status call

    def __repr__(self) -> str:  # never the key
        return f"RunPodAPI({self.base_url!r}, key={'set' if self._has_key else 'none'})"

    def describe(self) -> dict[str, Any]:
        return {"kind": "runpod-api", "url": self.base_url, "local_dev_api": self.local_dev_api}

    def diagnose_file(self, label: str, workflow: dict[str, Any], checksums: bool = False) -> None:
        """None: the worker judges no file sent to it (client.jobflow.Backend); the diagnose command
        judges the file from the worker's report instead."""
        return None

    # -- operations -------------------------------------------------------------------------

    def run(
        self,
        job_input: dict[str, Any],
        *,
        safe_to_retry: bool = False,
        policy: dict[str, Any] | None = None,
        webhook: str | None = None,
        wait_s: float | None = None,
    ) -> dict[str, Any]:
        """POST /run → {"id", "status"}. `policy` ({"executionTimeout", "ttl", "lowPriority"}) and `webhook` are
        RunPod's top-level fields of the request (send-requests); `wait_s`: the time left for the submission."""
        body: dict[str, Any] = {"input": job_input}
        if policy:
            body["policy"] = policy
        if webhook:
            body["webhook"] = webhook
        answer = self._call(
            "POST",
            "/run",
            body=body,
            safe=safe_to_retry,
            limit=RUN_PAYLOAD_LIMIT,
            submission=True,
            deadline=_deadline(wait_s),
        )
        if not isinstance(answer.get("id"), str):
            raise BadResponse(f"POST /run answered without a job id: {_snippet(answer)}")
        return answer

    def runsync(
        self, job_input: dict[str, Any], *, safe_to_retry: bool = False, wait_s: float | None = None
    ) -> dict[str, Any]:
        """POST /runsync?wait=ms → the finished job, or IN_QUEUE / IN_PROGRESS with an id to poll.

        `wait_s` is how long RunPod may hold the request (the caller's remaining deadline); the local
        dev API ignores `wait` and answers when the job is done, so there the read waits that long.
        """
        wait_ms = runsync_wait_ms(wait_s)
        read = wait_ms / 1000 + min(self.http_timeout_s, RUNSYNC_GRACE_S)
        answer = self._call(
            "POST",
            f"/runsync?wait={wait_ms}",
            body={"input": job_input},
            safe=safe_to_retry,
            read_timeout=read,
            limit=RUNSYNC_PAYLOAD_LIMIT,
            submission=True,
            deadline=_deadline(None if wait_s is None else wait_s + RUNSYNC_GRACE_S),
        )
        if not isinstance(answer.get("status"), str):
            raise BadResponse(f"POST /runsync answered without a status: {_snippet(answer)}")
        return answer

    def status(self, job_id: str, *, wait_s: float | None = None) -> dict[str, Any]:
        """GET /status/{id} (POST on the local dev API, which also blocks until the job has run).

        `wait_s`: the caller's time left; every attempt and every pause between retries ends by then."""
        path = f"/status/{_job_path(job_id)}"
        deadline = _deadline(wait_s)
        if self._status_method == "GET":
            try:
                answer = self._call("GET", path, job_id=job_id, deadline=deadline)
                self.local_dev_api = False if self.local_dev_api is None else self.local_dev_api
                return self._check_status(answer, job_id)
            except NotSupported as exc:
                if exc.details.get("http_status") != 405:
                    raise
                self._status_method, self.local_dev_api = "POST", True
        read = max(self.http_timeout_s, (wait_s or 0) + 5)
        answer = self._call("POST", path, job_id=job_id, read_timeout=read, deadline=deadline)
        return self._check_status(answer, job_id)

    def stream(self, job_id: str, *, wait_s: float | None = None) -> dict[str, Any]:
        """GET /stream/{id} → {"status", "stream": [{"output": …}]}: a generator handler's partial outputs
        since the last call (runpod-python's Job.stream reads it so; POST on the local dev API)."""
        path = f"/stream/{_job_path(job_id)}"
        method = "POST" if self.local_dev_api else "GET"
        answer = self._call(method, path, job_id=job_id, deadline=_deadline(wait_s))
        if not isinstance(answer.get("status"), str):
            raise BadResponse(f"stream of {job_id}: no status in the answer: {_snippet(answer)}")
        return answer

    def cancel(self, job_id: str, *, wait_s: float = CANCEL_BUDGET_S) -> dict[str, Any]:
        """POST /cancel/{id}, within its own short budget (it is sent when the caller's time is up)."""
        path = f"/cancel/{_job_path(job_id)}"
        return self._call("POST", path, job_id=job_id, read_timeout=10, deadline=_deadline(wait_s))

    def retry(self, job_id: str, *, wait_s: float | None = None) -> dict[str, Any]:
        """POST /retry/{id}: requeue a FAILED or TIMED_OUT job under the same id (not retried itself).
        `wait_s`: the caller's time left (`--timeout`), as for every call."""
        path = f"/retry/{_job_path(job_id)}"
        return self._call("POST", path, job_id=job_id, safe=False, submission=True, deadline=_deadline(wait_s))

    def health(self, *, wait_s: float | None = None) -> dict[str, Any]:
        """GET /health → {"jobs": {...}, "workers": {...}}, every attempt ending within `wait_s`."""
        return self._call("GET", "/health", deadline=_deadline(wait_s))

    def close(self) -> None:
        self._pool.clear()

    # -- plumbing ---------------------------------------------------------------------------

    def _retry(self, safe: bool, submission: bool, deadline: float | None = None) -> _Retry:
        n = self.retries
        unsafe_submission = submission and not safe
        return (_SubmitRetry if unsafe_submission else _Retry)(
            deadline=deadline,
            total=n,
            connect=n,
            read=False if unsafe_submission else n,  # a read error after sending: the server may have acted
            status=n,
            other=0,
            redirect=0,
            allowed_methods=None,  # every method; `safe` decides what a submission may retry
            status_forcelist=(429,) if unsafe_submission else TRANSIENT_STATUSES,
            backoff_factor=self.backoff_factor,
            backoff_max=10,
            backoff_jitter=0.2,
            raise_on_status=False,
            raise_on_redirect=False,
            respect_retry_after_header=True,
            retry_after_max=self.max_retry_after_s,
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        safe: bool = True,
        read_timeout: float | None = None,
        job_id: str | None = None,
        limit: int | None = None,
        submission: bool = False,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """One API call: JSON in, JSON out. `deadline` (monotonic): every attempt and every pause between
        attempts ends by then (the caller's time left), whatever the retry count still allows."""
        op = f"{method} /{path.lstrip('/').split('/', 1)[0].split('?', 1)[0]}"
        data = json.dumps(body).encode() if body is not None else None
        if data is not None and limit is not None and len(data) > limit:
            raise UsageError(
                f"the request is {len(data) / 1e6:.1f} MB; RunPod accepts at most {limit // 1024 // 1024} MB on {path}",
                code="PAYLOAD_TOO_LARGE",
                fix="Send smaller or fewer images (JPEG/WebP compress far better than PNG).",
            )
        read = read_timeout or self.http_timeout_s
        timeout: urllib3.Timeout = (
            urllib3.Timeout(connect=self.connect_timeout_s, read=read)
            if deadline is None
            else _DeadlineTimeout(deadline, self.connect_timeout_s, read)
        )
        retry = self._retry(safe, submission, deadline)
        started = time.monotonic()
        try:
            response = self._pool.request(
                method,
                self.base_url + path,
                body=data,
                headers=self._headers,
                retries=retry,
                timeout=timeout,
                redirect=False,
            )
        except MaxRetryError as exc:
            raise self._transport_error(op, exc.reason, started, retry.attempts, submission=submission) from None
        except (ProtocolError, ReadTimeoutError) as exc:  # a submission's read error, deliberately not retried
            retry.attempts.maybe_received = True
            raise self._transport_error(op, exc, started, retry.attempts, submission=submission) from None
        except HTTPError as exc:
            raise Unreachable(redact(f"{op} to {self.base_url} failed: {type(exc).__name__}: {exc}")) from None
        try:
            return self._decode(op, response, job_id, retry.attempts)
        except (ServerError, RateLimited) as exc:
            if submission:  # say whether a paid job may exist: a 5xx may come after the job was accepted
                maybe = isinstance(exc, ServerError)
                exc.message += "; the job may have been accepted" if maybe else "; the job was not submitted"
                exc.args = (exc.message,)
                exc.details["maybe_submitted"] = maybe
                if maybe:
                    exc.fix = MAYBE_SUBMITTED_FIX
            raise

    def _transport_error(
        self, op: str, reason: Any, started: float, attempts: _Attempts, *, submission: bool
    ) -> ClientError:
        """Unreachable, saying how many attempts went out, in how long, why it stopped and, for a submission,
        whether a paid job may exist."""
        if isinstance(reason, ConnectTimeoutError):
            what = "could not connect to"
        elif isinstance(reason, ReadTimeoutError):
            what = "got no answer in time from"
        else:
            what = "lost the connection to"
        tried = f"{attempts.sent} attempt{'s' if attempts.sent != 1 else ''} in {time.monotonic() - started:.1f} s"
        message = f"{op}: {what} {self.base_url} ({tried}"
        message += ", stopped at the deadline)" if attempts.deadline_hit else ")"
        details: dict[str, Any] = {
            "reason": type(reason).__name__ if reason is not None else None,
            "attempts": attempts.sent,
            "deadline_passed": attempts.deadline_hit,
        }
        fix = None
        if submission:
            details["maybe_submitted"] = attempts.maybe_received
            if attempts.maybe_received:
                message += "; the job may have been accepted"
                if attempts.sent == 1:
                    message += (
                        " (not re-sent: without an idempotency key a second submission could start a second paid job)"
                    )
                fix = MAYBE_SUBMITTED_FIX
            else:
                message += "; the job was not submitted"
        return Unreachable(redact(message), fix=fix, details=details)

    def _decode(
        self, op: str, response: urllib3.BaseHTTPResponse, job_id: str | None, attempts: _Attempts | None = None
    ) -> dict[str, Any]:
        status = response.status
        raw = response.data or b""
        try:
            payload: Any = json.loads(raw) if raw else {}
        except ValueError:
            payload = None
        if 200 <= status < 300:
            if not isinstance(payload, dict):
                raise BadResponse(redact(f"{op}: {self.base_url} answered HTTP {status} with non-JSON data"))
            return payload
        text = _snippet(payload if payload is not None else raw.decode("utf-8", "replace"))
        details: dict[str, Any] = {"http_status": status, "body": text}
        if status in (401, 403):
            sent = "" if self._has_key else " (no API key was sent: set RUNPOD_API_KEY)"
            raise AuthFailed(redact(f"{op}: HTTP {status} from {self.base_url}{sent}"), details=details)
        if status == 405 or (status == 404 and _route_missing(payload)):
            hint = ""
            if self.local_dev_api or op != "GET /status":
                hint = f"; the RunPod local dev API offers only {LOCAL_API_ROUTES}"
            raise NotSupported(
                redact(f"{op}: {self.base_url} has no such route (HTTP {status}){hint}"), details=details
            )
        if status == 404:
            if job_id is not None and self._endpoint_known():
                raise JobNotFound(redact(f"{op}: job {job_id} is unknown to {self.base_url}"), details=details)
            raise BadResponse(
                redact(f"{op}: HTTP 404 from {self.base_url}: no such endpoint"),
                code="ENDPOINT_NOT_FOUND",
                fix="Check RUNPOD_ENDPOINT_ID / --endpoint-id / --url: RunPod does not know this endpoint.",
                details=details,
            )
        count = attempts.sent if attempts is not None else 1
        tried = f"{count} attempt{'s' if count != 1 else ''}"
        details["attempts"] = count
        if attempts is not None and attempts.deadline_hit:  # retries stopped by the caller's deadline
            details["deadline_passed"] = True
            tried += ", stopped at the deadline"
        if status == 429:
            raise RateLimited(redact(f"{op}: HTTP 429 (rate limited), {tried}"), details=details)
        if status >= 500:
            raise ServerError(redact(f"{op}: HTTP {status}, {tried}: {text}"), details=details)
        raise ClientError(
            redact(f"{op}: HTTP {status}: {text}"),
            code="REQUEST_REJECTED",
            fix="The endpoint refused the request as sent; see details.",
            details=details,
        )

    def _endpoint_known(self) -> bool:
        """After a 404 on a job route: does the endpoint itself exist? (GET /health, once, not retried)."""
        try:
            response = self._pool.request(
                "GET",
                self.base_url + "/health",
                headers=self._headers,
                retries=False,
                timeout=urllib3.Timeout(connect=self.connect_timeout_s, read=self.http_timeout_s),
                redirect=False,
            )
        except HTTPError:
            return True  # can't tell: keep the job's own answer
        return response.status != 404 or _route_missing(_json_or_none(response.data))

    def _check_status(self, answer: dict[str, Any], job_id: str) -> dict[str, Any]:
        if not isinstance(answer.get("status"), str):
            raise BadResponse(f"status of {job_id}: no status in the answer: {_snippet(answer)}")
        if answer.get("status") == "FAILED" and answer.get("error") == "Job ID not found":
            raise JobNotFound(
                f"job {job_id} is unknown to {self.base_url}",
                fix="The RunPod local dev API forgets a job once its status was read; submit it again.",
            )
        return answer


def _deadline(wait_s: float | None) -> float | None:
    return None if wait_s is None else time.monotonic() + max(wait_s, 0.0)


def _job_path(job_id: str) -> str:
    if not job_id or any(c in job_id for c in "/?#% \t\r\n"):
        raise UsageError(f"not a job id: {job_id[:60]!r}")
    return job_id


def _json_or_none(raw: bytes | None) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _route_missing(payload: Any) -> bool:
    """FastAPI's answer for an unknown route (the local dev API), as opposed to an unknown job."""
    return isinstance(payload, dict) and payload.get("detail") == "Not Found"


def _snippet(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return redact(text[:limit])
