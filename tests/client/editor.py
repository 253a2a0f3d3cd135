"""Drive the ComfyUI editor in headless Chromium (Debian's `chromium`) over the DevTools protocol.

A page stays open while a test works in it: evaluate JavaScript in it, wait for a condition in it with
a deadline, click what a person would click, take a screenshot. Console errors are collected.
"""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.client.chromium import FLAGS, _errors, _page_ws, _Session, binary


class Editor:
    """One headless Chromium with one page (use as a context manager)."""

    def __init__(self, width: int = 1400, height: int = 900) -> None:
        self.width, self.height = width, height

    def __enter__(self) -> Editor:
        exe = binary()
        assert exe, "chromium is not installed (make chromium)"
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)  # late writers
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.s = _Session(_page_ws(Path(self._profile.name), self.proc))
        for domain in ("Runtime", "Log", "Page"):
            self.s.call(f"{domain}.enable")
        self.s.call(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.s.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._profile.cleanup()

    def open(self, url: str) -> None:
        self.s.events.clear()
        self.s.call("Page.navigate", url=url)
        self.s.wait_event("Page.loadEventFired", timeout=120)

    def js(self, expression: str) -> Any:
        """Evaluate in the page (promises awaited); the value, JSON-decoded."""
        answer = self.s.call(
            "Runtime.evaluate", expression=f"(async () => JSON.stringify(await ({expression})))()", awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(
                f"{expression[:80]}: {answer['exceptionDetails'].get('exception', {}).get('description')}"
            )
        value = answer.get("result", {}).get("value")
        return json.loads(value) if isinstance(value, str) else None

    def wait(
        self, expression: str, timeout: float = 60, what: str = "", explain: Callable[[], str] | None = None
    ) -> Any:
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.js(expression)
            except RuntimeError as exc:
                last = str(exc)
            else:
                if last:
                    return last
            time.sleep(0.2)
        more = f"\n{explain()}" if explain is not None else ""
        raise TimeoutError(f"not seen within {timeout} s: {what or expression} (last: {str(last)[:300]}){more}")

    def click(self, selector: str) -> None:
        """A real mouse click at the centre of the element (as a person presses a button)."""
        box = self.wait(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e || e.disabled) return null;"
            " const r = e.getBoundingClientRect(); const x = r.x + r.width / 2, y = r.y + r.height / 2;"
            " return r.width && e.contains(document.elementFromPoint(x, y)) ? {x, y} : null })()",
            what=f"an enabled {selector}, not covered by anything",
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.s.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    def screenshot(self) -> bytes:
        shot = self.s.call("Page.captureScreenshot", format="png")
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        return _errors(self.s.events)
