"""ComfyUI's output, line by line: to a bounded log file, to stdout (prefixed) and to recent memory.

RunPod's log view shows the container's stdout, so each line also goes there as `[comfyui] ...`,
told apart from the worker's own lines. The file rotates at COMFY_LOG_MAX_MB (one `.1` backup), so
it never fills the disk. Recent lines stay in memory, each with the jobs it belongs to, so a job's
`logs_tail` holds only its own lines and diagnose's no job's.

Whose a line is comes from ComfyUI itself (handler.comfy_boot tags each line with the prompt that
printed it, helper threads included): a line tagged with a prompt belongs to the job that queued that
prompt (`claim`), wherever in time it comes: a timed-out prompt's late line never lands in the next
job's answer, nor in diagnose's. Untagged lines (ComfyUI's server thread: "got prompt", validation
errors; bytes C code writes to the pipe directly; a ComfyUI the patch did not fit) belong to the jobs
running when they were written, the time-window fallback. A prompt tagged but never claimed is shown
nowhere: it is not the worker's (its claims are kept for the last MAX_CLAIMS prompts).

`settle` waits for the control line comfy_boot prints when a prompt is done: a failing node's
traceback comes before it.
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO, TextIO

from handler import comfy_boot
from workflows.secrets import redact

PREFIX = "[comfyui] "
MAX_CLAIMS = 1024
_UNCLAIMED = frozenset({"\x00a prompt no job claimed"})  # in no job's tail, nor in diagnose's


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
        self._jobs: frozenset[str] = frozenset()  # open jobs: the owners of untagged lines
        self._owners: collections.OrderedDict[str, str | None] = collections.OrderedDict()  # prompt -> job
        self._running: set[str] = set()  # prompts ComfyUI started and has not said done
        # until ComfyUI says otherwise; it never does when COMFY_MAIN is not a Python file (not run through comfy_boot)
        self._attribution = "ComfyUI has not said that it tags its lines by prompt (handler.comfy_boot)"
        self._serve: dict[str, object] | None = None  # comfy_boot's word on Landlock's serve phase
        self._count = 0  # lines written since the worker started (for "lines since a spawn")
        self.file_error: str | None = None  # the log file can't be written: memory and stdout still work
        self._fh: BinaryIO | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("ab")
        except OSError as exc:
            self.file_error = f"{path}: {exc.strerror or exc}"

    def feed(self, raw: str) -> None:
        """One line of ComfyUI's pipe, as handler.comfy_boot writes it: a control line, or text whose
        parts each start with their prompt's tag (a part before any tag is untagged)."""
        raw = raw.rstrip("\r\n")
        if raw.startswith(comfy_boot.CONTROL):
            event, _, arg = raw[1:].partition(" ")
            self._control(event, arg)
            return
        head, *parts = raw.split(comfy_boot.TAG)
        if head or not parts:
            self.write(head)
        for part in parts:
            prompt, sep, text = part.partition(comfy_boot.SEP)
            if sep:
                self.write(text, prompt)
            else:  # a stray TAG byte in a raw write: plain text
                self.write(part)

    def _control(self, event: str, arg: str) -> None:
        with self._lock:
            if event == comfy_boot.START:
                self._running.add(arg)
            elif event == comfy_boot.DONE:
                self._running.discard(arg)
                self._prompt_done.notify_all()
            elif event == comfy_boot.PATCHED:
                self._attribution = ""
            elif event == comfy_boot.UNPATCHED:
                self._attribution = arg
            elif event == comfy_boot.SERVE and self._serve is None:  # the first: a later one is a node's print
                try:
                    said = json.loads(arg)
                except ValueError:
                    said = None
                self._serve = said if isinstance(said, dict) else {"at": arg, "threads": []}

    def serve_phase(self) -> dict[str, object] | None:
        """What comfy_boot said when it applied Landlock's serve phase ({"at", "threads"}), None before."""
        with self._lock:
            return self._serve

    def forget_serve_phase(self) -> None:
        """A new ComfyUI process is starting: it says its own."""
        with self._lock:
            self._serve = None

    def attribution(self) -> dict[str, str | None]:
        """How ComfyUI's lines are attributed to jobs (diagnose's `confinement.logs`)."""
        why_not = self._attribution or None
        return {"by": "time window" if why_not else "prompt", "why_not": why_not}

    def write(self, line: str, prompt: str | None = None) -> None:
        """One line of ComfyUI's output; `prompt`: the prompt that printed it (None: untagged)."""
        line = redact(line.rstrip("\r\n"), self.secrets)
        data = (line + "\n").encode("utf-8", "replace")
        with self._lock:
            if prompt is None:
                owners = self._jobs
            elif prompt in self._owners:
                owner = self._owners[prompt]
                owners = frozenset() if owner is None else frozenset({owner})
            else:
                owners = _UNCLAIMED
            self._lines.append((time.time(), owners, line))
            self._count += 1
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

    def claim(self, job: str, prompt_id: str) -> None:
        """`prompt_id` is `job`'s (called before it is queued, so no line of it comes first). A prompt
        queued outside any open job (the self-check's smoke) is the worker's own: diagnose shows it."""
        with self._lock:
            self._owners[prompt_id] = job if job in self._jobs else None
            while len(self._owners) > MAX_CLAIMS:
                self._owners.popitem(last=False)

    def forget_prompts(self) -> None:
        """ComfyUI's process ended: the prompts it ran print nothing more, no job waits for their lines."""
        with self._lock:
            self._running.clear()
            self._prompt_done.notify_all()

    def settle(self, job: str, max_s: float = 0.5) -> None:
        """Wait (at most `max_s`) until ComfyUI has said `job`'s prompts are done: a failing node's
        traceback comes just before ComfyUI reports the failure, and may still be in the pipe. Returns at
        once for a job whose prompt did not start (refused by ComfyUI's validation, still queued)."""
        with self._prompt_done:
            self._prompt_done.wait_for(
                lambda: not any(self._owners.get(p) == job for p in self._running), timeout=max_s
            )

    def lines_since(self, count: int) -> list[str]:
        """Every line written after the `count`-th (those still in memory)."""
        with self._lock:
            new = self._count - count
            return [line for _, _, line in list(self._lines)[-new:]] if new > 0 else []

    def recent(self) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, _, line in self._lines]

    def tail(self, lines: int = 80, job: str | None = None) -> list[str]:
        """The last lines of `job` (its prompts', and untagged ones written while it ran); with no job,
        the last lines of no job (untagged outside every job, the worker's own prompts)."""
        with self._lock:
            picked = [text for _, jobs, text in self._lines if (job in jobs if job else not jobs)]
        return picked[-lines:]

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
