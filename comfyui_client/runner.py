"""Run one prompt to completion: queue it, follow its events, fall back to /history on a drop."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from comfyui_client.client import ComfyClient
from comfyui_client.errors import ComfyUnavailable, ExecutionFailed, PromptInterrupted, PromptTimeout
from comfyui_client.events import Event, EventStream

ProgressCallback = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class PromptResult:
    prompt_id: str
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # node id -> ComfyUI output dict
    queued_at: float = 0.0  # monotonic, when POST /prompt was sent
    started_at: float | None = None  # monotonic, execution_start received
    finished_at: float | None = None  # monotonic, execution_success received
    comfy_ms: float | None = None  # execution_success - execution_start, ComfyUI's own timestamps
    node_ms: dict[str, float] = field(default_factory=dict)
    cached_nodes: list[str] = field(default_factory=list)
    from_history: bool = False

    def timings(self) -> dict[str, Any]:
        """queue_wait_ms, execution_ms (ComfyUI's own timestamps, else ours) and nodes_ms, for a response."""
        timings: dict[str, Any] = {}
        if self.started_at is not None:
            timings["queue_wait_ms"] = round((self.started_at - self.queued_at) * 1000, 2)
        if self.comfy_ms is not None:
            timings["execution_ms"] = round(self.comfy_ms, 2)
        elif self.started_at and self.finished_at:
            timings["execution_ms"] = round((self.finished_at - self.started_at) * 1000, 2)
        else:
            timings["execution_ms"] = None
        timings["nodes_ms"] = self.node_ms
        return timings


def _probe_dead(client: ComfyClient, within: float = 1.2) -> bool:
    """True when ComfyUI stays unreachable for `within` seconds (a crash, not a blip)."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if client.is_up(timeout=0.3):
            return False
        time.sleep(0.1)
    return True


class _Tracker:
    def __init__(self, result: PromptResult, on_progress: ProgressCallback | None, total_nodes: int) -> None:
        self.result, self.on_progress = result, on_progress
        self.total_nodes, self.nodes_done = total_nodes, 0
        self.current: tuple[str, float] | None = None
        self.start_ts: float | None = None
        self.done = False

    def _close_node(self, now: float) -> None:
        if self.current is not None:
            node, since = self.current
            self.result.node_ms[node] = round((now - since) * 1000, 2)
            self.current = None

    def _report(self, node: Any, value: Any, maximum: Any) -> None:
        if self.on_progress:
            self.on_progress(
                {
                    "node": node,
                    "value": value,
                    "max": maximum,
                    "nodes_done": min(self.nodes_done, self.total_nodes),
                    "nodes_total": self.total_nodes,
                }
            )

    def handle(self, event: Event) -> None:
        kind, data = event.get("type"), event.get("data") or {}
        now = event.get("_received", time.monotonic())
        if kind == "execution_start":
            self.result.started_at, self.start_ts = now, data.get("timestamp")
        elif kind == "execution_cached":
            self.result.cached_nodes = [str(n) for n in data.get("nodes") or []]
            self.nodes_done = len(self.result.cached_nodes)
        elif kind == "executing":
            self._close_node(now)
            if data.get("node") is not None:
                self.current = (str(data["node"]), now)
                self.nodes_done += 1
                self._report(str(data["node"]), None, None)
        elif kind == "executed":
            self.result.outputs[str(data.get("node"))] = data.get("output") or {}
        elif kind == "progress":
            self._report(data.get("node"), data.get("value"), data.get("max"))
        elif kind == "execution_success":
            self._close_node(now)
            self.result.finished_at = now
            if self.start_ts is not None and data.get("timestamp") is not None:
                self.result.comfy_ms = float(data["timestamp"]) - float(self.start_ts)
            self.done = True
        elif kind == "execution_error":
            raise ExecutionFailed(data)
        elif kind == "execution_interrupted":
            raise PromptInterrupted(f"prompt interrupted at node {data.get('node_id')}")


def result_from_history(prompt_id: str, entry: dict[str, Any], result: PromptResult) -> PromptResult | None:
    """Complete `result` from a /history entry; None while the prompt has not finished."""
    status = entry.get("status") or {}
    messages = status.get("messages") or []
    if status.get("status_str") == "error":
        for name, data in messages:
            if name == "execution_error":
                raise ExecutionFailed(data)
            if name == "execution_interrupted":
                raise PromptInterrupted("prompt interrupted")
        raise ExecutionFailed({"exception_message": "ComfyUI reported an error", "prompt_id": prompt_id})
    if not status.get("completed"):
        return None
    stamps = {name: data.get("timestamp") for name, data in messages if isinstance(data, dict)}
    start, success = stamps.get("execution_start"), stamps.get("execution_success")
    if start is not None and success is not None:
        result.comfy_ms = float(success) - float(start)
    result.outputs = {str(k): v for k, v in (entry.get("outputs") or {}).items()}
    result.finished_at = result.finished_at or time.monotonic()
    result.from_history = True
    return result


def run_prompt(
    client: ComfyClient,
    stream: EventStream,
    workflow: dict[str, Any],
    *,
    prompt_id: str,
    deadline: float,
    on_progress: ProgressCallback | None = None,
    on_queued: Callable[[], None] | None = None,
    extra_data: dict[str, Any] | None = None,
) -> PromptResult:
    """Queue `workflow` under `prompt_id` and wait until it finishes or `deadline` (monotonic) passes.

    Raises PromptRejected, ExecutionFailed, PromptInterrupted, PromptTimeout or ComfyUnavailable (the
    server stopped answering mid-job). On PromptTimeout the prompt is still in ComfyUI: the caller
    interrupts and dequeues it.
    """
    events = stream.subscribe(prompt_id)  # before queueing: no event can be missed
    try:
        # Stamped before POST /prompt: execution_start can arrive before the POST's answer does.
        result = PromptResult(prompt_id, queued_at=time.monotonic())
        client.queue_prompt(workflow, prompt_id=prompt_id, client_id=stream.client_id, extra_data=extra_data)
        if on_queued:
            on_queued()
        tracker = _Tracker(result, on_progress, len(workflow))
        poll_history = not stream.connected
        while not tracker.done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PromptTimeout(f"prompt {prompt_id} did not finish before the deadline")
            try:
                event = events.get(timeout=min(remaining, 0.5 if poll_history else 2.0))
            except queue.Empty:
                event = {"type": "_idle"}
            kind = event.get("type")
            if kind == "_disconnected":
                if _probe_dead(client):
                    raise ComfyUnavailable("ComfyUI stopped answering while the prompt was running")
                poll_history = True
            elif kind == "_reconnected":
                poll_history = True  # once more, for anything that finished while we were away
            elif kind != "_idle":
                tracker.handle(event)
                continue
            if poll_history:
                entry = client.history(prompt_id)
                if entry is not None and result_from_history(prompt_id, entry, result) is not None:
                    return result
                poll_history = not stream.connected
        return result
    finally:
        stream.unsubscribe(prompt_id)


def stop_prompt(client: ComfyClient, prompt_id: str, wait_s: float = 3.0) -> None:
    """Dequeue and interrupt a prompt (a timed-out or cancelled job), then wait briefly until ComfyUI
    has really let go of it. Best effort: ComfyUI may be gone."""
    try:
        client.delete_queued([prompt_id])
        client.interrupt(prompt_id)
        end = time.monotonic() + wait_s
        while prompt_id in client.queued_prompt_ids() and time.monotonic() < end:
            time.sleep(0.05)
    except Exception:
        pass
