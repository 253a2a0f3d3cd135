"""The worker (`python -m handler.worker ...`) with timestamps, for bench_worker_start.

entrypoint.sh runs `$HANDLER_PYTHON -m handler.worker ARGS`; the benchmark points HANDLER_PYTHON at a
two-line shell script that runs this module with the same arguments. It records, as JSON lines in
$BENCH_WORKER_EVENTS (wall-clock seconds): the process's creation time, when `import handler.worker`
finished, and every line the worker writes to stdout/stderr ("worker: ComfyUI ready ...; taking
jobs", "Uvicorn running on ...", "self-check: ..."). Then it runs the worker's own main().
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

_EVENTS = os.environ.get("BENCH_WORKER_EVENTS", "worker-events.jsonl")


def event(name: str, **fields: Any) -> None:
    with open(_EVENTS, "a") as fh:
        fh.write(json.dumps({"event": name, "t": time.time(), **fields}) + "\n")


class _Stamped:
    """A text stream that records a timestamped event for every line written through it."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream, self._label = stream, label

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                event("line", stream=self._label, text=line[:300])
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main() -> int:
    event("exec")
    args = sys.argv[1:]
    if args[:2] == ["-m", "handler.worker"]:
        args = args[2:]
    sys.argv = ["handler/worker.py", *args]
    sys.stdout = _Stamped(sys.stdout, "stdout")  # type: ignore[assignment]
    sys.stderr = _Stamped(sys.stderr, "stderr")  # type: ignore[assignment]
    import handler.worker as worker

    event("imported")
    for module in filter(None, os.environ.get("BENCH_WORKER_PREIMPORT", "").split(",")):
        __import__(module)  # experiments: what moving an import before the readiness wait would save
    if os.environ.get("BENCH_WORKER_SELFCHECK_DELAY_S"):
        _delay_self_check(float(os.environ["BENCH_WORKER_SELFCHECK_DELAY_S"]))
    event("preimported")
    return worker.main()


def _delay_self_check(seconds: float) -> None:
    """Experiment: start the background self-check `seconds` after the worker decided to take jobs."""
    import threading

    import handler.selfcheck as selfcheck

    original = selfcheck.live_check_at_start

    def delayed(runtime: Any) -> bool:
        if runtime.settings.self_check_strict:
            return original(runtime)
        threading.Timer(seconds, original, args=(runtime,)).start()
        return True

    selfcheck.live_check_at_start = delayed


if __name__ == "__main__":
    sys.exit(main())
