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
    ├── JobUnsuccessful              1   the job ran (or was accepted) but did not succeed
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
    meaning = "Any client failure not named more precisely."
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
    meaning = "Bad flags, or an unreadable or malformed file given on the command line."
    fix = "Check the command line (--help lists every flag)."


class ConfigError(ClientError):
    code = "NOT_CONFIGURED"
    meaning = "No target: endpoint id, URL or API key missing."
    fix = (
        "Set RUNPOD_API_KEY and RUNPOD_ENDPOINT_ID (RunPod), or pass --url http://127.0.0.1:8000 (local stack), "
        "or --comfy-url / RUNPOD_ENDPOINT_URL (a ComfyUI server directly)."
    )


class EndpointError(ClientError):
    code = "ENDPOINT_ERROR"
    meaning = "The endpoint could not be used."


class Unreachable(EndpointError):
    code = "UNREACHABLE"
    meaning = "Connection refused or timed out after the retry budget."
    fix = "Check the URL / endpoint id and your network; for the local stack run `make up`."


class AuthFailed(EndpointError):
    code = "AUTH_FAILED"
    meaning = "HTTP 401 / 403: the API key was refused."
    fix = "Check RUNPOD_API_KEY: it must be a RunPod API key with access to this endpoint."


class RateLimited(EndpointError):
    code = "RATE_LIMITED"
    meaning = "HTTP 429 after the retry budget."
    fix = "RunPod is throttling this key/endpoint: wait and retry, or raise TEST_RETRIES."


class ServerError(EndpointError):
    code = "SERVER_ERROR"
    meaning = "HTTP 5xx after the retry budget."
    fix = "RunPod (or the server at this URL) kept failing; retry later or check status.runpod.io."


class BadResponse(EndpointError):
    code = "BAD_RESPONSE"
    meaning = "An answer that is not the JSON RunPod's API (or the worker) answers with."
    fix = "The URL does not look like a RunPod endpoint API; check --url / RUNPOD_ENDPOINT_ID."


class NotSupported(EndpointError):
    code = "NOT_SUPPORTED"
    meaning = "The endpoint has no such route (the local dev API lacks /health, /cancel, /retry)."
    fix = "Use a RunPod cloud endpoint for this operation (the RunPod local dev API lacks /health, /cancel, /retry)."


class IdempotencyConflict(ClientError):
    code = "IDEMPOTENCY_CONFLICT"
    meaning = "An idempotency key reused with a different request."
    fix = "Use a new --idempotency-key for a different request, or repeat exactly the same request."


class JobUnsuccessful(ClientError):
    code = "JOB_ERROR"
    meaning = "The job ran (or was accepted) but did not succeed."
    exit_code = EXIT_FAILED


class JobFailed(JobUnsuccessful):
    code = "JOB_FAILED"
    meaning = "FAILED without a worker error code; a job that FAILED with one carries that code instead."


class JobNotFound(JobUnsuccessful):
    code = "JOB_NOT_FOUND"
    meaning = "Unknown or expired job id."
    fix = "RunPod keeps /run results 30 minutes (/runsync: 1 minute); the local dev API forgets a job once read."


class JobCancelled(JobUnsuccessful):
    code = "JOB_CANCELLED"
    meaning = "CANCELLED on RunPod."
    fix = "The job was cancelled on RunPod; submit it again if you still need it."


class JobTimedOut(JobUnsuccessful):
    code = "JOB_TIMED_OUT"
    meaning = "TIMED_OUT on RunPod: expired in the queue, or stopped by the endpoint's execution timeout."
    fix = "The endpoint's execution timeout stopped the job: raise it in the endpoint settings or lighten the job."
    QUEUE_FIX = (
        "No worker came up before the job expired in the queue: check the endpoint's workers (`comfy-runpod jobs "
        "health`, the console's worker logs: image pull, GPU availability, max workers > 0); the execution timeout "
        "is not the cause."
    )


class ClientTimeout(JobUnsuccessful):
    code = "CLIENT_TIMEOUT"
    meaning = "Our --timeout passed; the job was cancelled."
    fix = "The job did not finish within --timeout / TEST_TIMEOUT and was cancelled: raise it (cold starts are slow)."


class VolumeError(EndpointError):
    code = "VOLUME_ERROR"
    meaning = "The network volume could not be used over RunPod's S3 API (docs/volume.md)."
    fix = "See the message; docs/volume.md lists RunPod's S3 API limits."


class Interrupted(ClientError):
    code = "INTERRUPTED"
    meaning = "Ctrl-C; the job was cancelled."
    exit_code = EXIT_INTERRUPTED
    fix = "Interrupted with Ctrl-C."


# Codes raised with `code=` on one of the classes above rather than by a class of their own:
# code -> (class, meaning, fix). With the classes they make the client's error table (docs/client.md,
# generated by `python -m tools.doc_tables`; tests/test_docs.py checks every `code="..."` in client/ is here).
EXTRA_CODES: dict[str, tuple[type[ClientError], str, str]] = {
    "PAYLOAD_TOO_LARGE": (
        UsageError,
        "The request body is over RunPod's limit (10 MB /run, 20 MB /runsync).",
        "Send smaller or fewer images (JPEG/WebP compress far better than PNG).",
    ),
    "WORKFLOW_NOT_FOUND": (
        UsageError,
        "A workflow file given on the command line does not exist, or `validate --workflow` names no registry entry.",
        "Check the path, or the id and --registry (`workflow add` writes the entry).",
    ),
    "WORKFLOW_INVALID": (UsageError, "A workflow file that is not JSON or not a workflow.", UsageError.fix),
    "REGISTRY_INVALID": (
        UsageError,
        "The workflow registry given with --registry cannot be loaded.",
        "Fix the entry the message names (docs/workflows.md has the schema).",
    ),
    "ENDPOINT_NOT_FOUND": (
        BadResponse,
        "HTTP 404 for the endpoint itself: RunPod does not know this endpoint id.",
        "Check RUNPOD_ENDPOINT_ID / --endpoint-id / --url: RunPod does not know this endpoint.",
    ),
    "NOT_COMFYUI": (
        BadResponse,
        "--comfy-url / RUNPOD_ENDPOINT_URL answers, but not as ComfyUI does (a web page, a RunPod-style API).",
        "--comfy-url / RUNPOD_ENDPOINT_URL must be ComfyUI's own root (http://host:8188); for this project's worker "
        "or any RunPod-style API use --url, for RunPod cloud RUNPOD_ENDPOINT_ID.",
    ),
    "REQUEST_REJECTED": (
        ClientError,
        "Another 4xx answer: the endpoint refused the request as sent.",
        "The endpoint refused the request as sent; see details.",
    ),
    "DOWNLOAD_FAILED": (
        ClientError,
        "An output's presigned URL could not be downloaded.",
        "The presigned URL may have expired; result.json keeps the rest of the response.",
    ),
    "CLIENT_BUG": (
        ClientError,
        "An unexpected exception inside the client.",
        "This is a bug in the client: re-run with -vv and report it.",
    ),
    "BASELINE_NOT_FOUND": (
        UsageError,
        "A --baseline / --compare run id that is not in the run history.",
        "List the recorded runs with `comfy-runpod report`; use one of their ids, or `last`.",
    ),
    "VOLUME_ID_INVALID": (UsageError, "--volume-id / --datacenter is not a valid id.", UsageError.fix),
    "VOLUME_NO_KEYS": (
        ConfigError,
        "No S3 API key for the volume in the environment.",
        "Export RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY (RunPod console > Settings > S3 API keys).",
    ),
    "VOLUME_NEEDS_BOTO3": (
        UsageError,
        "The volume commands need boto3.",
        "In your comfy-runpod checkout: pip install '.[volume]' (adds boto3; comfy-runpod is not on PyPI).",
    ),
    "VOLUME_UNREACHABLE": (VolumeError, "The datacenter's S3 endpoint does not answer.", "Check --datacenter."),
    "VOLUME_AUTH_FAILED": (VolumeError, "The S3 API key was refused.", "Check the S3 API key (not the API key)."),
    "VOLUME_NOT_FOUND": (VolumeError, "No such volume in that datacenter.", "Check --volume-id and --datacenter."),
    "VOLUME_LIST_FAILED": (VolumeError, "Listing the volume failed part way.", "Retry; see docs/volume.md."),
    "VOLUME_S3_ERROR": (VolumeError, "Another S3 error.", "Retry; if it persists see docs/volume.md."),
    "VOLUME_REPORT_INVALID": (
        UsageError,
        "--volume-report is not the output of `volume check --json`.",
        "Pass the file `comfy-runpod volume check --json > FILE` wrote.",
    ),
    "PUSH_PATH_MISSING": (UsageError, "A path given to `volume push` does not exist.", UsageError.fix),
    "PUSH_FAILED": (VolumeError, "An upload failed after its retries.", "Run the push again: it resumes."),
    "INPUT_UNREADABLE": (
        UsageError,
        "`ui`: an input file the editor's workflow names could not be read from the local ComfyUI.",
        "Upload the image again in the editor (LoadImage > choose file to upload).",
    ),
    "LOCAL_COMFY_FAILED": (
        UsageError,
        "`ui`: the local ComfyUI that serves the editor did not start.",
        "Check the log the message names; --local-comfy URL uses a ComfyUI you run instead.",
    ),
}

# Per-file refusals of `volume push` (the command exits 1; the other files still go): code -> (meaning, fix).
PUSH_REFUSALS: dict[str, tuple[str, str]] = {
    "PUSH_NOT_IN_REGISTRY": (
        "The file is no model of the selected workflows.",
        "Pass --folder to upload it unchecked.",
    ),
    "PUSH_SIZE_MISMATCH": (
        "The file's size differs from the registry's.",
        "Download it again from the registry's URL.",
    ),
    "PUSH_HASH_MISMATCH": (
        "The file's sha256 differs from the registry's.",
        "Download it again from the registry's URL.",
    ),
    "PUSH_WOULD_REPLACE": ("An object of another size is at the key.", "Pass --replace to overwrite it."),
}


def client_codes() -> list[tuple[str, int, str, str]]:
    """Every client error code as (code, exit code, meaning, fix): the classes, depth first, then EXTRA_CODES."""
    rows: list[tuple[str, int, str, str]] = []

    def walk(cls: type[ClientError]) -> None:
        rows.append((cls.code, cls.exit_code, cls.meaning, cls.fix))
        for sub in cls.__subclasses__():
            if sub.__module__ == __name__:
                walk(sub)

    walk(ClientError)
    rows += [(code, cls.exit_code, meaning, fix) for code, (cls, meaning, fix) in EXTRA_CODES.items()]
    rows += [(code, EXIT_FAILED, meaning, fix) for code, (meaning, fix) in PUSH_REFUSALS.items()]
    return rows
