"""Exceptions raised by the ComfyUI client (the tree is drawn in the package docstring)."""

from __future__ import annotations

from typing import Any


class ComfyError(Exception):
    """Base of everything the ComfyUI client raises. `kind` names the failure for workflows.failures
    (which maps it to a job error without importing this package)."""

    kind = "error"


class ComfyUnavailable(ComfyError):
    """ComfyUI did not answer: refused, reset or timed out."""

    kind = "unavailable"


class ComfyHTTPError(ComfyError):
    """ComfyUI answered, with an error status: it is up, the request (or what it touched) is not fine.
    A 500 from GET /models/<folder> (a scanned directory vanished) is this, not ComfyUnavailable."""

    kind = "http"

    def __init__(self, method: str, path: str, status: int, body: str = "") -> None:
        self.method, self.path, self.status = method, path, status
        super().__init__(f"ComfyUI answered {method} {path} with HTTP {status}" + (f": {body[:200]}" if body else ""))


class PromptRejected(ComfyError):
    """ComfyUI refused the prompt; `body` is its JSON answer (error + node_errors)."""

    kind = "rejected"

    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else str(body)[:500]
        super().__init__(f"ComfyUI rejected the prompt (HTTP {status}): {message}")


class ExecutionFailed(ComfyError):
    """A node raised; `data` is ComfyUI's execution_error message."""

    kind = "execution"

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        super().__init__(
            f"{data.get('node_type')} (node {data.get('node_id')}) raised "
            f"{data.get('exception_type')}: {data.get('exception_message', '').strip()}"
        )


class PromptInterrupted(ComfyError):
    """Execution was interrupted before it finished."""

    kind = "interrupted"


class PromptTimeout(ComfyError):
    """The deadline passed; the caller decides whether to interrupt and dequeue."""

    kind = "timeout"
