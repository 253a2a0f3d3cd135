"""ComfyUI's output, line by line: to a bounded log file, to stdout (prefixed) and to recent memory.

RunPod's log view shows the container's stdout, so each line also goes there as `[comfyui] ...`,
told apart from the worker's own lines. The file rotates at COMFY_LOG_MAX_MB (one `.1` backup), so
it never fills the disk. Recent lines stay in memory, each tagged with the jobs running when it was
written: a job's `logs_tail` holds only its own lines, diagnose's only lines outside any job.

ComfyUI may print a job's last lines (the traceback of a failed node) after the job has answered.
A job that queued a prompt ("got prompt") keeps its window open until ComfyUI says the prompt is
done ("Prompt executed in ...", printed after every prompt, failed ones too) or DRAIN_S passes;
ComfyUI runs prompts one at a time, so the next job's lines can't come before that line.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, TextIO

from workflows.secrets import redact

PREFIX = "[comfyui] "
DRAIN_S = 5.0
_QUEUED, _DONE = "got prompt", "Prompt executed in"


class ComfyLog:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 20 * 1024 * 1024,
        secrets: list[str] | None = None,
        echo: TextIO | None = sys.stdout,
        keep: int = 5000,
    ) -> None:
        self.path, self.max_bytes, self.echo = path, max(4096, max_bytes), echo
        self.secrets = [s for s in secrets or [] if s]
        self._lock = threading.Lock()
        self._prompt_done = threading.Condition(self._lock)  # notified when ComfyUI finishes a prompt
        self._lines: collections.deque[tuple[float, frozenset[str], str]] = collections.deque(maxlen=keep)
        self._jobs: frozenset[str] = frozenset()
        self._prompting: set[str] = set()  # open jobs whose prompt ComfyUI has not finished
        self._draining: dict[str, float] = {}  # ended jobs still owed their prompt's last lines
        self._count = 0  # lines written since the worker started (for "lines since a spawn")
        self.file_error: str | None = None  # the log file can't be written: memory and stdout still work
        self._fh: BinaryIO | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab")
        except OSError as exc:
            self.file_error = f"{path}: {exc.strerror or exc}"

    def write(self, line: str) -> None:
        line = redact(line.rstrip("\r\n"), self.secrets)
        data = (line + "\n").encode("utf-8", "replace")
        with self._lock:
            now = time.monotonic()
            self._draining = {job: until for job, until in self._draining.items() if until > now}
            # ComfyUI is serial: until the draining prompt is done, its lines are only its own.
            tags = frozenset(self._draining) or self._jobs
            self._lines.append((time.time(), tags, line))
            self._count += 1
            if _QUEUED in line:
                self._prompting |= self._jobs
            elif _DONE in line:
                self._prompting.clear()
                self._draining.clear()
                self._prompt_done.notify_all()
            if self._fh is not None:
                try:
                    if self._fh.tell() + len(data) > self.max_bytes:
                        self._rotate()
                    self._fh.write(data)
                    self._fh.flush()
                except OSError as exc:  # a full disk: keep going without the file
                    self.file_error = f"{self.path}: {exc.strerror or exc}"
        if self.echo is not None:
            try:
                self.echo.write(PREFIX + line + "\n")
                self.echo.flush()
            except (OSError, ValueError):
                pass

    def _rotate(self) -> None:
        assert self._fh is not None
        self._fh.close()
        self._fh = None
        self.path.replace(self.path.with_name(self.path.name + ".1"))
        self._fh = self.path.open("ab")

    @property
    def count(self) -> int:
        return self._count

    def begin_job(self, job: str) -> None:
        with self._lock:
            self._jobs = self._jobs | {job}

    def end_job(self, job: str) -> None:
        with self._lock:
            self._jobs = self._jobs - {job}
            if job in self._prompting:
                self._prompting.discard(job)
                self._draining[job] = time.monotonic() + DRAIN_S

    def forget_prompts(self) -> None:
        """ComfyUI was killed: the prompts it ran print nothing more, no job waits for their lines."""
        with self._lock:
            self._prompting.clear()
            self._draining.clear()
            self._prompt_done.notify_all()

    def settle(self, job: str, max_s: float = 0.5) -> None:
        """Wait (at most `max_s`) until ComfyUI has printed that `job`'s prompt is done: a failing node's
        traceback comes just before ComfyUI reports the failure, and may still be in the pipe. Returns at
        once for a job that queued no prompt."""
        with self._prompt_done:
            self._prompt_done.wait_for(lambda: job not in self._prompting, timeout=max_s)

    def lines_since(self, count: int) -> list[str]:
        """Every line written after the `count`-th (those still in memory)."""
        with self._lock:
            new = self._count - count
            return [line for _, _, line in list(self._lines)[-new:]] if new > 0 else []

    def recent(self) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, _, line in self._lines]

    def tail(self, lines: int = 80, job: str | None = None) -> list[str]:
        """The last lines written while `job` ran; with no job, the last lines written outside every job."""
        with self._lock:
            picked = [text for _, jobs, text in self._lines if (job in jobs if job else not jobs)]
        return picked[-lines:]

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
