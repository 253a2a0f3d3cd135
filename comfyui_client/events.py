"""One persistent WebSocket to ComfyUI per process, with events routed to the prompt they belong to.

A new WebSocket per job costs a handshake on the hot path and misses events that arrive before it
is open. Instead one reader thread owns the connection, reconnects when it drops, and hands each
event to the queue subscribed for its prompt_id. Subscribers also get two synthetic events,
`_disconnected` and `_reconnected`, so they can fall back to /history for what they missed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from typing import Any

import websocket

log = logging.getLogger(__name__)

Event = dict[str, Any]


class EventStream:
    def __init__(self, ws_url: str, *, client_id: str | None = None, connect_timeout: float = 2.0) -> None:
        self.client_id = client_id or uuid.uuid4().hex
        self._url = f"{ws_url}?clientId={self.client_id}"
        self._connect_timeout = connect_timeout
        self._subscribers: dict[str, queue.SimpleQueue[Event]] = {}
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._ws: websocket.WebSocket | None = None
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self, wait: float = 0.0) -> EventStream:
        """Start the reader thread (idempotent); optionally wait up to `wait` s for the first connect."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="comfy-events", daemon=True)
            self._thread.start()
        if wait:
            self._connected.wait(wait)
        return self

    def subscribe(self, prompt_id: str) -> queue.SimpleQueue[Event]:
        q: queue.SimpleQueue[Event] = queue.SimpleQueue()
        with self._lock:
            self._subscribers[prompt_id] = q
        return q

    def unsubscribe(self, prompt_id: str) -> None:
        with self._lock:
            self._subscribers.pop(prompt_id, None)

    def drop_connection(self) -> None:
        """Close the socket from our side (tests use it to simulate a dropped connection)."""
        if self._ws is not None:
            self._ws.close()

    def close(self) -> None:
        self._stop.set()
        self.drop_connection()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _broadcast(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers.values())
        for q in subscribers:
            q.put(event)

    def _route(self, message: Event) -> None:
        data = message.get("data")
        prompt_id = data.get("prompt_id") if isinstance(data, dict) else None
        if prompt_id is None:
            return
        with self._lock:
            q = self._subscribers.get(prompt_id)
        if q is not None:
            message["_received"] = time.monotonic()
            q.put(message)

    def _run(self) -> None:
        delay = 0.05
        was_connected = False
        while not self._stop.is_set():
            try:
                ws = websocket.create_connection(self._url, timeout=self._connect_timeout, enable_multithread=True)
            except (OSError, websocket.WebSocketException):
                self._stop.wait(delay)
                delay = min(delay * 2, 1.0)
                continue
            ws.settimeout(None)
            self._ws = ws
            self._connected.set()
            delay = 0.05
            if was_connected:
                self._broadcast({"type": "_reconnected", "data": {}})
            was_connected = True
            try:
                while not self._stop.is_set():
                    frame = ws.recv()
                    if isinstance(frame, str):
                        try:
                            self._route(json.loads(frame))
                        except (ValueError, AttributeError):
                            log.debug("ignoring malformed event frame")
            except (OSError, websocket.WebSocketException):
                pass
            finally:
                self._connected.clear()
                self._ws = None
                ws.close()
            if not self._stop.is_set():
                log.warning("ComfyUI event stream dropped; reconnecting")
                self._broadcast({"type": "_disconnected", "data": {}})
