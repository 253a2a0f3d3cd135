"""The one ComfyUI client: HTTP calls (pooled, with timeouts) and the WebSocket event stream.

Used by the worker (handler/) and by the client's direct-to-ComfyUI mode, so both talk to ComfyUI
the same way. Only this package speaks to ComfyUI over the network. It imports nothing from handler/ or client/.

Modules: client.py (HTTP: ComfyClient), events.py (the WebSocket EventStream), runner.py (run one
prompt to completion, stop one), errors.py (the exceptions below), stats.py (reading /system_stats).
The names below are imported lazily (PEP 562), so `comfyui_client.errors` costs neither requests nor
websocket-client.

Exceptions::

    ComfyError
    ├── ComfyUnavailable      ComfyUI does not answer (not started, crashed, wrong URL)
    ├── ComfyHTTPError        ComfyUI answered with an error status (e.g. 500 listing a vanished folder)
    ├── PromptRejected        POST /prompt refused the workflow (validation: node_errors)
    ├── ExecutionFailed       a node raised during execution (execution_error)
    ├── PromptInterrupted     execution was interrupted (POST /interrupt)
    └── PromptTimeout         the caller's deadline passed before the prompt finished

Each has a `kind` (unavailable, http, rejected, execution, interrupted, timeout) that the pure core
(workflows.failures) reads to map it to a job error without importing this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "ComfyClient": "client",
    "ComfyError": "errors",
    "ComfyHTTPError": "errors",
    "ComfyUnavailable": "errors",
    "ExecutionFailed": "errors",
    "PromptInterrupted": "errors",
    "PromptRejected": "errors",
    "PromptTimeout": "errors",
    "EventStream": "events",
    "PromptResult": "runner",
    "run_prompt": "runner",
    "stop_prompt": "runner",
}
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
    "stop_prompt",
]

if TYPE_CHECKING:
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
    from comfyui_client.runner import PromptResult, run_prompt, stop_prompt


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'comfyui_client' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"comfyui_client.{module}"), name)
    globals()[name] = value  # once: later lookups don't come here
    return value
