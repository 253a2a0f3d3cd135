"""Open a report in headless Chromium (Debian's `chromium`) over the DevTools protocol, as a person would see it.

Returns what the page showed: the console errors and exceptions, every `data-key` figure's text, the
number of charts, the images that failed to decode, and a full-page PNG screenshot at a phone's width.
`make chromium` installs the browser (the Makefile's test target does it on a fresh machine).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import websocket

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]
_READ = """JSON.stringify({
  keys: Object.fromEntries([...document.querySelectorAll('[data-key]')].map(e => [e.dataset.key, e.textContent])),
  charts: document.querySelectorAll('svg.chart').length,
  verdict: (document.getElementById('verdict') || {}).textContent,
  broken_images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
  images: document.images.length,
  width: document.documentElement.scrollWidth,
})"""


def binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageView:
    errors: list[str] = field(default_factory=list)
    dom: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""


class _Session:
    def __init__(self, ws_url: str) -> None:
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))


def _page_ws(profile: Path, proc: subprocess.Popen, timeout: float = 60) -> str:
    """The DevTools websocket of the browser's first page (its port from DevToolsActivePort)."""
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while True:
        if port_file.exists() and (lines := port_file.read_text().split()):
            pages = requests.get(f"http://127.0.0.1:{lines[0]}/json/list", timeout=10).json()
            page = next((p for p in pages if p.get("type") == "page"), None)
            if page:
                return page["webSocketDebuggerUrl"]
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"chromium did not start (exit {proc.poll()})")
        time.sleep(0.1)


def _errors(events: list[dict[str, Any]]) -> list[str]:
    found = []
    for e in events:
        params = e.get("params") or {}
        if e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            found.append("exception: " + str(params.get("exceptionDetails", {}).get("text")))
        elif e.get("method") == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            found.append("log: " + str(params["entry"].get("text")) + " " + str(params["entry"].get("url", "")))
    return found


def view(page: Path, width: int = 412, height: int = 915) -> PageView:
    """Load `page` at a phone's size; its errors, figures and a full-page screenshot."""
    exe = binary()
    assert exe, "chromium is not installed (make chromium)"
    # Chromium's helpers (crashpad, utility processes) may still write the profile as the browser exits:
    # its whole process group is ended before the profile goes, and a late write can't fail the test.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            s = _Session(_page_ws(Path(profile), proc))
            for domain in ("Runtime", "Log", "Page"):
                s.call(f"{domain}.enable")
            s.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=True)
            s.call("Page.navigate", url=page.resolve().as_uri())
            s.wait_event("Page.loadEventFired")
            dom = json.loads(s.call("Runtime.evaluate", expression=_READ, returnByValue=True)["result"]["value"])
            size = s.call("Page.getLayoutMetrics")["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": width, "height": min(size["height"], 12000), "scale": 1}
            shot = s.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
            s.ws.close()
            return PageView(_errors(s.events), dom, base64.b64decode(shot["data"]))
        finally:
            _end_group(proc)


def _end_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the browser's whole process group, SIGKILL to what is left after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
