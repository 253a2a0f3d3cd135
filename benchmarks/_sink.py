"""A stand-in for RunPod's job API on 127.0.0.1, in its own process.

- POST anything (the SDK's progress updates and results go to RUNPOD_WEBHOOK_POST_OUTPUT): 200 {}.
- GET /job-take/...: the first N requests each get a `test` job, later ones 204 (no job).
- GET /job-stop/...: the SDK's stop channel, a long poll: 204 after 2 s.
Every request is logged with its arrival time (wall clock) as a JSON line to EVENTS, so the worker
start benchmark sees when the SDK's production job loop asked for its first job and when the
answer came back.

Usage: python -m benchmarks._sink PORT [EVENTS_FILE [JOBS]]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_lock = threading.Lock()
_state = {"jobs_left": 0, "events": None, "served": 0}


def _log(kind: str, path: str, **fields: object) -> None:
    if _state["events"]:
        with _lock, open(str(_state["events"]), "a") as fh:
            fh.write(json.dumps({"t": time.time(), "kind": kind, "path": path[:200], **fields}) + "\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes = b"") -> None:
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status = json.loads(body or b"{}").get("status")
        except ValueError:
            status = None
        _log("post", self.path, status=status, bytes=len(body))
        self._send(200, b"{}")

    def do_GET(self) -> None:
        if "/job-stop" in self.path:
            time.sleep(2)
            self._send(204)
            return
        if "/job-take" in self.path:
            with _lock:
                job = _state["jobs_left"] > 0
                if job:
                    _state["jobs_left"] -= 1
                    _state["served"] += 1
                    n = _state["served"]
            if job:
                _log("job-take", self.path, job=f"bench-start-{n}")
                self._send(200, json.dumps({"id": f"bench-start-{n}", "input": {"mode": "test"}}).encode())
            else:
                _log("job-take-empty", self.path)
                self._send(204)
            return
        _log("get", self.path)
        self._send(200, b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    _state["events"] = sys.argv[2] if len(sys.argv) > 2 else None
    _state["jobs_left"] = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), _Handler).serve_forever()
