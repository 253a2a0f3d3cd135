"""Everything the client shows: the one renderer on stdout (human text via rich, or a versioned JSON
envelope), progress on stderr, and the report files.

Text is built first (into a string), redacted, then written: nothing the client prints can hold the
API key. JSON envelope: {"schema", "command", "ok", "exit_code", "result" | "error"}.

    __init__.py       Renderer (stdout: text or JSON) and ProgressLine (stderr)
    text.py           the pieces every command's text uses (sizes, findings, the workflow table, errors)
    command_text.py   each command's human text; volume_text.py the `volume` commands' and workflow_text.py
                      `workflow add`'s (each loaded when printed)
    report_files.py   validate / bench / history reports: JSON, Markdown, JUnit XML, HTML (html.py, charts.py)
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from client.config import color_allowed
from client.errors import ClientError
from client.jobflow import JobUpdate
from client.redact import redact, redact_data
from client.render.text import error_text

if TYPE_CHECKING:  # rich is imported only when a transfer shows its bar
    from rich.progress import Progress

SCHEMA = "comfy-runpod.client/1"


class Renderer:
    def __init__(self, *, json_mode: bool = False, out: IO[str] | None = None, err: IO[str] | None = None) -> None:
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.color = _isatty(self.out) and color_allowed()

    # -- output -------------------------------------------------------------------------------

    def result(self, command: str, data: dict[str, Any], exit_code: int) -> None:
        if self.json_mode:
            envelope = {
                "schema": SCHEMA,
                "command": command,
                "ok": exit_code == 0,
                "exit_code": exit_code,
                "result": redact_data(data),
            }
            self._write(json.dumps(envelope, indent=2, default=str) + "\n")
            return
        build = _text_builder(command)
        self._write(self._build(lambda c: build(c, data, exit_code)) if build else json.dumps(data, indent=2) + "\n")

    def error(self, command: str, exc: ClientError) -> None:
        if self.json_mode:
            envelope = {
                "schema": SCHEMA,
                "command": command,
                "ok": False,
                "exit_code": exc.exit_code,
                "error": redact_data(exc.to_dict()),
            }
            self._write(json.dumps(envelope, indent=2, default=str) + "\n")
            return
        self._write(self._build(lambda c: error_text(c, exc)))

    def note(self, message: str) -> None:
        """A line of progress on stderr (never on stdout, which may be JSON)."""
        self.err.write(redact(message) + "\n")
        self.err.flush()

    def job_progress(self, label: str = "job") -> ProgressLine:
        return ProgressLine(self.err, label)

    def transfer_progress(self, label: str, enabled: bool = True) -> TransferProgress:
        return TransferProgress(self.err, label, enabled=enabled)

    # -- plumbing -----------------------------------------------------------------------------

    def _build(self, body: Callable[[Any], None]) -> str:
        from rich.console import Console

        buf = io.StringIO()
        width = 160  # not a terminal: wide enough that ids and paths are not cut
        if self.color:
            try:
                width = os.get_terminal_size(self.out.fileno()).columns
            except (OSError, ValueError, AttributeError):
                width = 100
        console = Console(
            file=buf,
            force_terminal=self.color,
            no_color=not self.color,
            width=width,
            highlight=False,
            soft_wrap=not self.color,
            emoji=False,
        )
        body(console)
        return buf.getvalue()

    def _write(self, text: str) -> None:
        self.out.write(redact(text))
        self.out.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressLine:
    """Live job status on stderr: a spinner line on a terminal, one line per state change otherwise."""

    def __init__(self, stream: IO[str], label: str) -> None:
        self.stream, self.label = stream, label
        self.tty = _isatty(stream)
        self._status: Any = None
        self._last: str | None = None

    def __enter__(self) -> ProgressLine:
        if self.tty:
            from rich.console import Console

            self._status = Console(file=self.stream, highlight=False).status(f"{self.label}: submitting…")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def submitted(self, job_id: str) -> None:
        self._line(f"{self.label} {job_id} submitted")

    def __call__(self, update: JobUpdate) -> None:
        text = f"{self.label} {update.job_id}: {update.status} {update.elapsed_s:5.1f} s"
        progress = update.progress
        if isinstance(progress, dict):
            parts = []
            if progress.get("nodes_total"):
                parts.append(f"nodes {progress.get('nodes_done')}/{progress.get('nodes_total')}")
            if progress.get("node") is not None:
                step = f" step {progress['value']}/{progress['max']}" if progress.get("max") else ""
                parts.append(f"node {progress['node']}{step}")
            if parts:
                text += " · " + " · ".join(parts)
        elif isinstance(progress, str) and progress:
            text += f" · {progress[:80]}"
        if self._status is not None:
            self._status.update(redact(text))
        elif update.status != self._last and update.status in ("IN_QUEUE", "IN_PROGRESS"):
            self._line(text)  # one line per pending state; the result itself is printed on stdout
        self._last = update.status

    def _line(self, text: str) -> None:
        if self._status is not None:
            self._status.console.print(redact(text), highlight=False)
        else:
            self.stream.write(redact(text) + "\n")
            self.stream.flush()


class TransferProgress:
    """rich's progress bar on stderr: bytes, rate and ETA of a whole transfer (`volume push`).

    `start(total)` returns the sink that advances it by n bytes (None when disabled); `stop()` ends it.
    """

    def __init__(self, stream: Any, label: str, enabled: bool = True) -> None:
        self.stream, self.label, self.enabled = stream, label, enabled
        self._progress: Progress | None = None

    def start(self, total: int) -> Any:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=self.stream, highlight=False)
        progress = self._progress = Progress(
            TextColumn(self.label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,
        )
        progress.start()
        task = progress.add_task(self.label, total=total)
        return lambda n: progress.advance(task, n)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _text_builder(command: str) -> Callable[[Any, dict[str, Any], int], None] | None:
    """The text renderer of a command; the volume commands' live in client.render.volume_text (imported
    only when one runs, so the other commands never load it)."""
    if command.startswith("volume "):
        from client.render.volume_text import HUMAN as VOLUME

        return VOLUME.get(command)
    if command == "workflow":
        from client.render.workflow_text import render

        return render
    from client.render.command_text import HUMAN

    return HUMAN.get(command)
