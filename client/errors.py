"""Everything the client raises, with a stable code, a fix line and the process exit code.

Commands raise these; only the CLIs turn them into text and an exit status. Messages never hold the
API key (they are built from URLs and status codes, and the renderer redacts once more)::

    ClientError                      exit
    ├── UsageError                   2   bad flags, unreadable or malformed files
    ├── ConfigError                  2   no target configured (endpoint id / URL / API key missing)
    ├── EndpointError                2   the endpoint could not be used
    │   ├── Unreachable                  connection refused / timed out after the retry budget
    │   ├── AuthFailed                   HTTP 401 / 403
    │   ├── RateLimited                  HTTP 429 after the retry budget
    │   ├── ServerError                  HTTP 5xx after the retry budget
    │   ├── BadResponse                  not the JSON RunPod's API answers with
    │   └── NotSupported                 the endpoint has no such route (the local dev API: /health, /cancel, /retry)
    ├── IdempotencyConflict          2   a key reused with a different request
    ├── JobError                     1   the job ran (or was accepted) but did not succeed
    │   ├── JobFailed                    FAILED: the worker's error_code / error_message / fix
    │   ├── JobNotFound                  unknown or expired job id
    │   ├── JobCancelled                 CANCELLED on RunPod
    │   ├── JobTimedOut                  TIMED_OUT on RunPod: expired in the queue, or the execution timeout
    │   └── ClientTimeout                our --timeout passed; the job was cancelled
    └── Interrupted                  130 Ctrl-C; the job was cancelled
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1  # unhealthy, error findings, failed job, failed validation
EXIT_UNUSABLE = 2  # unreachable, misconfigured, bad usage
EXIT_INTERRUPTED = 130


class ClientError(Exception):
    code = "CLIENT_ERROR"
    exit_code = EXIT_UNUSABLE
    fix = ""

    def __init__(
        self, message: str, *, code: str | None = None, fix: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if fix is not None:
            self.fix = fix
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message, "fix": self.fix}
        if self.details:
            out["details"] = self.details
        return out


class UsageError(ClientError):
    code = "BAD_ARGUMENT"
    fix = "Check the command line (--help lists every flag)."


class ConfigError(ClientError):
    code = "NOT_CONFIGURED"
    fix = (
        "Set RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID (RunPod), or pass --url http://127.0.0.1:8000 (local stack), "
        "or --comfy-url / RUNPOD_ENDPOINT_URL (a ComfyUI server directly)."
    )


class EndpointError(ClientError):
    code = "ENDPOINT_ERROR"


class Unreachable(EndpointError):
    code = "UNREACHABLE"
    fix = "Check the URL / endpoint id and your network; for the local stack run `make up`."


class AuthFailed(EndpointError):
    code = "AUTH_FAILED"
    fix = "Check RUNPOD_API_KEY: it must be a RunPod API key with access to this endpoint."


class RateLimited(EndpointError):
    code = "RATE_LIMITED"
    fix = "RunPod is throttling this key/endpoint: wait and retry, or raise TEST_RETRIES."


class ServerError(EndpointError):
    code = "SERVER_ERROR"
    fix = "RunPod (or the server at this URL) kept failing; retry later or check status.runpod.io."


class BadResponse(EndpointError):
    code = "BAD_RESPONSE"
    fix = "The URL does not look like a RunPod endpoint API; check --url / RUNPOD_ENDPOINT_ID."


class NotSupported(EndpointError):
    code = "NOT_SUPPORTED"
    fix = "Use a RunPod cloud endpoint for this operation (the RunPod local dev API lacks /health, /cancel, /retry)."


class IdempotencyConflict(ClientError):
    code = "IDEMPOTENCY_CONFLICT"
    fix = "Use a new --idempotency-key for a different request, or repeat exactly the same request."


class JobError(ClientError):
    code = "JOB_ERROR"
    exit_code = EXIT_FAILED


class JobFailed(JobError):
    code = "JOB_FAILED"


class JobNotFound(JobError):
    code = "JOB_NOT_FOUND"
    fix = "RunPod keeps /run results 30 minutes (/runsync: 1 minute); the local dev API forgets a job once read."


class JobCancelled(JobError):
    code = "JOB_CANCELLED"
    fix = "The job was cancelled on RunPod; submit it again if you still need it."


class JobTimedOut(JobError):
    code = "JOB_TIMED_OUT"
    fix = "The endpoint's execution timeout stopped the job: raise it in the endpoint settings or lighten the job."
    QUEUE_FIX = (
        "No worker came up before the job expired in the queue: check the endpoint's workers (`comfy-runpod jobs "
        "health`, the console's worker logs: image pull, GPU availability, max workers > 0); the execution timeout "
        "is not the cause."
    )


class ClientTimeout(JobError):
    code = "CLIENT_TIMEOUT"
    fix = "The job did not finish within --timeout / TEST_TIMEOUT and was cancelled: raise it (cold starts are slow)."


class Interrupted(ClientError):
    code = "INTERRUPTED"
    exit_code = EXIT_INTERRUPTED
    fix = "Interrupted with Ctrl-C."
