"""The one ComfyUI client: HTTP calls (pooled, with timeouts) and the WebSocket event stream.

Used by the worker (handler/) and by the client's direct-to-ComfyUI mode, so both talk to ComfyUI
the same way. Only this package speaks to ComfyUI over the network.

Exceptions::

    ComfyError
    ├── ComfyUnavailable      ComfyUI does not answer (not started, crashed, wrong URL)
    ├── ComfyHTTPError        ComfyUI answered with an error status (e.g. 500 listing a vanished folder)
    ├── PromptRejected        POST /prompt refused the workflow (validation: node_errors)
    ├── ExecutionFailed       a node raised during execution (execution_error)
    ├── PromptInterrupted     execution was interrupted (POST /interrupt)
    └── PromptTimeout         the caller's deadline passed before the prompt finished
"""

from comfyui_client.client import ComfyClient
from comfyui_client.errors import (
    ComfyError,
    ComfyHTTPError,
    ComfyUnavailable,
    ExecutionFailed,
    PromptInterrupted,
    PromptRejected,
    PromptTimeout,
)
from comfyui_client.events import EventStream
from comfyui_client.runner import PromptResult, run_prompt

__all__ = [
    "ComfyClient",
    "ComfyError",
    "ComfyHTTPError",
    "ComfyUnavailable",
    "EventStream",
    "ExecutionFailed",
    "PromptInterrupted",
    "PromptRejected",
    "PromptResult",
    "PromptTimeout",
    "run_prompt",
]
