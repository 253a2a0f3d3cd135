"""ComfyUI's server messages, built for jobs that run on the endpoint, so the editor shows them as its own.

Shapes as ComfyUI 0.3.75 sends them (server.py, execution.py) and the editor 1.32 reads them: WebSocket
JSON `{"type", "data"}` messages, the binary PROGRESS_TEXT frame (uint32 3, uint32 length of the node id,
node id, text: shown on the node), `/queue` items `[number, prompt_id, prompt, extra_data, outputs]` and
`/history` entries. Pure: data in, data out.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Mapping
from typing import Any

PROGRESS_TEXT = 3


def message(kind: str, **data: Any) -> dict[str, Any]:
    return {"type": kind, "data": data}


def now_ms() -> int:
    return int(time.time() * 1000)


def status(queue_remaining: int, sid: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return {"type": "status", "data": data}


def progress_text(node_id: str, text: str) -> bytes:
    """The binary frame that shows `text` on node `node_id` in the editor."""
    node = node_id.encode()
    return struct.pack(">II", PROGRESS_TEXT, len(node)) + node + text.encode()


def queue_item(number: int, prompt_id: str, prompt: Mapping[str, Any], extra: Mapping[str, Any]) -> list[Any]:
    outputs = [k for k, v in prompt.items() if isinstance(v, Mapping) and _is_output(v)]
    return [number, prompt_id, dict(prompt), dict(extra), outputs]


def _is_output(node: Mapping[str, Any]) -> bool:
    return str(node.get("class_type", "")).startswith(("Save", "Preview"))


def history_entry(
    item: list[Any], outputs: Mapping[str, Any], status_str: str, messages: list[list[Any]], meta: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "prompt": item,
        "outputs": dict(outputs),
        "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages},
        "meta": dict(meta),
    }


def timing_text(job_id: str, timing: Mapping[str, Any]) -> str:
    """One line for the node: where it ran and how long each part took (RunPod's and the worker's)."""
    runpod = timing.get("runpod") or {}
    worker = timing.get("worker") or {}
    client = timing.get("client") or {}
    parts = ["ran on RunPod"]
    if isinstance(client.get("wall_s"), int | float):
        parts.append(f"total {client['wall_s']:.2f} s")
    if isinstance(runpod.get("delayTime_ms"), int | float):
        parts.append(f"queue {runpod['delayTime_ms'] / 1000:.2f} s")
    if isinstance(worker.get("execution_ms"), int | float):
        parts.append(f"ComfyUI {worker['execution_ms'] / 1000:.2f} s")
    elif isinstance(worker.get("run_ms"), int | float):
        parts.append(f"run {worker['run_ms'] / 1000:.2f} s")
    if isinstance(client.get("save_ms"), int | float):
        parts.append(f"saved in {client['save_ms']:.0f} ms")
    parts.append(f"job {job_id[:13]}")
    return " · ".join(parts)
