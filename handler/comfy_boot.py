"""ComfyUI's first code: tags each line ComfyUI prints with the prompt that printed it, then runs ComfyUI.

Run by ComfyUI's own interpreter in place of main.py (handler.supervisor.comfy_command):

    <comfy python> comfy_boot.py <COMFY_MAIN: main.py or the CPU launch.py> <ComfyUI's arguments...>

Why: a job's `logs_tail` must hold its own lines and no other job's. A time window can't tell whose a
line is: a timed-out prompt, or a helper thread its node started, keeps printing into the next job's
window. Attribution at the source holds for any node, thread or pack:

- ComfyUI's `execution.PromptExecutor.execute` is wrapped (by an import hook, after the module ran:
  importing it here would run ComfyUI's argument parsing too early), so the thread executing a prompt
  knows its id; threads started meanwhile inherit it, and work handed to a thread pool carries the
  submitter's. The prompt worker's thread keeps it until the next prompt (ComfyUI's "Prompt executed
  in" line is the prompt's own).
- sys.stdout and sys.stderr write through a buffer that starts each line with TAG <prompt id> SEP.
  At the byte level, because ComfyUI's app/logger.py wraps `sys.stdout.buffer` itself. Control bytes
  a node prints are removed, so no print can fake a tag.
- Control lines (CONTROL <event> [arg]) say when a prompt starts and is done, and whether the patch
  took: with another ComfyUI that lacks the target, ComfyUI runs as before with untagged lines, and
  the worker falls back to time windows (diagnose says so).

What it can't tag: bytes written to file descriptors 1 and 2 directly (C code, a subprocess). Those
are untagged lines, attributed by time window. Stdlib only: ComfyUI's interpreter lacks our packages.

It also applies Landlock's serve phase (handler.landlock_phases), given the ruleset's fd by
`--landlock-serve-fd=N` (stripped before ComfyUI sees its argv): `nodes.init_extra_nodes` is wrapped
by the same import hook, and when it returns (or raises) the main thread enters the stricter ruleset,
before ComfyUI starts its prompt worker thread and its server. A `nodes` without it gets the ruleset
at its import, and a prompt that would run before it was applied applies it first: no prompt runs in
the start phase. The control line `serve {"at": ..., "threads": [...]}` says when, and which threads
(started by packs at import) keep the start phase's domain.
"""

from __future__ import annotations

import collections.abc
import concurrent.futures
import functools
import importlib.abc
import importlib.machinery
import io
import os
import runpy
import sys
import threading
from typing import Any

FILE = os.path.abspath(__file__)  # what the supervisor runs, and Landlock lets ComfyUI read
TAG, SEP, CONTROL = "\x1e", "\x1f", "\x1d"  # ASCII record/unit/group separators: never in ComfyUI's text
START, DONE, PATCHED, UNPATCHED = "start", "done", "patched", "unpatched"
SERVE, SERVE_FD_ARG = "serve", "--landlock-serve-fd="
NODES_LOADED, NODES_IMPORTED, FIRST_PROMPT = "nodes loaded", "nodes imported", "first prompt"
_PR_SET_NO_NEW_PRIVS, _SYS_LANDLOCK_RESTRICT_SELF = 38, 446  # 446: the same on x86_64 and aarch64
_STRIP = (TAG + SEP + CONTROL).encode()

_local = threading.local()


def current_prompt() -> str | None:
    return getattr(_local, "prompt", None)


def _set_prompt(prompt: str | None) -> None:
    _local.prompt = prompt


class _Pipe:
    """One file both streams may share (the worker gives ComfyUI one pipe for stdout and stderr): a
    line one stream left open is ended before the other writes, so no line carries two owners."""

    def __init__(self, fd: int) -> None:
        self.fd, self.lock = fd, threading.Lock()
        self.open_by: object | None = None  # the stream whose line is not finished

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]


class TaggingBuffer(io.BufferedIOBase):
    """A byte stream that starts every line with the writing thread's prompt tag (none outside a prompt)."""

    def __init__(self, pipe: _Pipe) -> None:
        super().__init__()
        self.pipe = pipe

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.pipe.fd

    def isatty(self) -> bool:
        return os.isatty(self.pipe.fd)

    def close(self) -> None:
        """Never closed: ComfyUI's LogInterceptor wraps this buffer, and the text stream it replaced is
        dropped and finalised (which would close it under ComfyUI's feet)."""

    def write(self, b: Any) -> int:
        size = memoryview(b).nbytes
        data = bytes(b).translate(None, _STRIP)
        prompt = current_prompt()
        tag = f"{TAG}{prompt}{SEP}".encode("utf-8", "replace") if prompt else b""
        with self.pipe.lock:
            out = bytearray()
            if self.pipe.open_by not in (None, self):
                out += b"\n"  # the other stream's unfinished line ends here
                self.pipe.open_by = None
            at_start = self.pipe.open_by is None
            pieces = data.split(b"\n")
            for i, piece in enumerate(pieces):
                last = i == len(pieces) - 1
                if last and not piece:
                    break
                if at_start:
                    out += tag
                out += piece
                at_start = not last
                if not last:
                    out += b"\n"
            self.pipe.open_by = None if at_start else self
            self.pipe.write(bytes(out))
        return size

    def control(self, event: str, arg: str = "") -> None:
        """One control line for the worker, on a line of its own."""
        line = f"{CONTROL}{event} {arg}".translate({ord(c): None for c in "\n" + TAG + SEP}).encode("utf-8", "replace")
        with self.pipe.lock:
            self.pipe.write((b"\n" if self.pipe.open_by is not None else b"") + line + b"\n")
            self.pipe.open_by = None


def install_streams() -> TaggingBuffer:
    """sys.stdout and sys.stderr through tagging buffers (one _Pipe per distinct file); the stdout one."""
    pipes: dict[tuple[int, int], _Pipe] = {}
    buffers = []
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        fd = stream.fileno()
        st = os.fstat(fd)
        pipe = pipes.setdefault((st.st_dev, st.st_ino), _Pipe(fd))
        buffer = TaggingBuffer(pipe)
        errors = stream.errors or "strict"
        setattr(
            sys,
            name,
            io.TextIOWrapper(buffer, encoding=stream.encoding, errors=errors, line_buffering=True, write_through=True),
        )
        buffers.append(buffer)
    return buffers[0]


def install_thread_inheritance() -> None:
    """A thread started during a prompt is that prompt's for its whole life; a thread pool's work item
    is its submitter's (pool threads outlive prompts, so they carry no prompt of their own)."""
    start = threading.Thread.start

    def started(self: threading.Thread) -> None:
        prompt = current_prompt()
        if prompt is not None:
            run = self.run

            def run_as_prompt() -> None:
                _set_prompt(prompt)
                run()

            self.run = run_as_prompt  # type: ignore[method-assign]
        start(self)

    submit = concurrent.futures.ThreadPoolExecutor.submit

    def submitted(self: concurrent.futures.ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        prompt = current_prompt()

        def as_submitter(*a: Any, **k: Any) -> Any:
            before = current_prompt()
            _set_prompt(prompt)
            try:
                return fn(*a, **k)
            finally:
                _set_prompt(before)

        return submit(self, as_submitter, *args, **kwargs)

    threading.Thread.start = started  # type: ignore[method-assign]
    concurrent.futures.ThreadPoolExecutor.submit = submitted  # type: ignore[method-assign,assignment]


def patch_executor(module: Any, out: TaggingBuffer) -> None:
    """Wrap `module.PromptExecutor.execute(prompt, prompt_id, ...)`; say whether it could be done."""
    executor: Any = getattr(module, "PromptExecutor", None)
    execute = getattr(executor, "execute", None)
    if executor is None or not callable(execute):
        out.control(UNPATCHED, f"{module.__name__}.PromptExecutor.execute not found in this ComfyUI")
        return

    def execute_tagged(self: Any, *args: Any, **kwargs: Any) -> Any:
        prompt_id = args[1] if len(args) > 1 else kwargs.get("prompt_id")
        if prompt_id is None:
            return execute(self, *args, **kwargs)
        prompt = str(prompt_id)
        _set_prompt(prompt)  # kept after it returns: the prompt worker's next lines are this prompt's
        out.control(START, prompt)
        try:
            return execute(self, *args, **kwargs)
        finally:
            out.control(DONE, prompt)

    executor.execute = execute_tagged
    out.control(PATCHED, f"{module.__name__}.PromptExecutor.execute")


class ServePhase:
    """Landlock's serve ruleset (an fd the worker passed), entered once by the thread calling `apply`;
    threads and processes it starts afterwards inherit it. A failure ends ComfyUI: it must not serve
    jobs with packs' folders writable."""

    def __init__(self, fd: int, out: TaggingBuffer | None) -> None:
        self.fd, self.out = fd, out
        self.at: str | None = None
        self._lock = threading.Lock()
        os.set_inheritable(fd, False)  # nothing ComfyUI starts needs it

    def apply(self, at: str) -> None:
        import ctypes  # here, not at the top: what ComfyUI's start needs is unchanged until then (a memory cap)
        import json

        with self._lock:
            if self.at is not None:
                return
            libc = ctypes.CDLL(None, use_errno=True)
            libc.syscall.restype = ctypes.c_long
            if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) or libc.syscall(
                ctypes.c_long(_SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_long(self.fd), ctypes.c_long(0)
            ):
                why = os.strerror(ctypes.get_errno())
                print(f"comfy_boot: could not apply Landlock's serve phase ({at}): {why}", file=sys.stderr, flush=True)
                os._exit(1)
            os.close(self.fd)
            self.at = at
        me = threading.current_thread()
        threads = sorted(t.name for t in threading.enumerate() if t is not me)
        said = json.dumps({"at": at, "threads": threads})
        if self.out is not None:
            self.out.control(SERVE, said)
        else:
            print(f"comfy_boot: Landlock's serve phase applied: {said}", file=sys.stderr, flush=True)

    def patch_nodes(self, module: Any) -> None:
        """Enter the serve phase when `module.init_extra_nodes` (ComfyUI's loading of every node and
        pack, a coroutine run in the main thread) is done; at once where there is none to wrap."""
        init = getattr(module, "init_extra_nodes", None)
        if not callable(init):
            self.apply(NODES_IMPORTED)
            return

        async def finish(pending: Any) -> Any:
            try:
                return await pending
            finally:
                self.apply(NODES_LOADED)

        def init_extra_nodes(*args: Any, **kwargs: Any) -> Any:
            try:
                result = init(*args, **kwargs)
            except BaseException:
                self.apply(NODES_LOADED)
                raise
            if isinstance(result, collections.abc.Awaitable):
                return finish(result)
            self.apply(NODES_LOADED)
            return result

        try:
            module.init_extra_nodes = functools.wraps(init)(init_extra_nodes)
        except Exception:  # no hook: packs load with their folders read-only rather than jobs run with them open
            self.apply(NODES_IMPORTED)

    def guard_executor(self, module: Any) -> None:
        """No prompt runs in the start phase: one that would (nodes never loaded through the hook)
        applies the serve ruleset in its own thread first."""
        executor: Any = getattr(module, "PromptExecutor", None)
        execute = getattr(executor, "execute", None)
        if executor is None or not callable(execute):
            return

        def execute_served(this: Any, *args: Any, **kwargs: Any) -> Any:
            self.apply(FIRST_PROMPT)
            return execute(this, *args, **kwargs)

        executor.execute = execute_served


class _PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `name` through the other finders, lets its loader run it, then calls `patch` on it."""

    def __init__(self, name: str, patch: Any) -> None:
        self.name, self.patch = name, patch
        self.loader: Any = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once: ComfyUI has one executor module
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        self.loader, spec.loader = spec.loader, self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            self.patch(module)
        except Exception as exc:  # never ComfyUI's failure: it runs untagged
            sys.stdout.write(f"comfy_boot: could not patch {self.name}: {exc!r}\n")


def main(argv: list[str]) -> None:
    serve_fd = None
    if len(argv) > 1 and argv[1].startswith(SERVE_FD_ARG):
        serve_fd = int(argv[1][len(SERVE_FD_ARG) :])
        argv = [argv[0], *argv[2:]]
    if len(argv) < 2:
        sys.exit(f"usage: {argv[0]} [{SERVE_FD_ARG}N] <ComfyUI main.py or launcher> [its arguments...]")
    target = os.path.abspath(argv[1])
    if not os.path.isfile(target):  # as `python main.py` says it (the start-failure catalogue reads it)
        print(f"{sys.executable}: can't open file {target!r}: [Errno 2] No such file or directory", file=sys.stderr)
        sys.exit(2)
    sys.argv = [target, *argv[2:]]  # what ComfyUI's argparse and /system_stats see
    sys.path[0] = os.path.dirname(target)  # as `python main.py` would have it, never this file's folder
    out: TaggingBuffer | None = None
    try:
        out = install_streams()
    except (AttributeError, OSError, ValueError) as exc:  # no real stdout (closed, None): ComfyUI runs untagged
        print(f"comfy_boot: ComfyUI's lines are not tagged: {exc!r}", file=sys.stderr)
    else:
        install_thread_inheritance()
    serve = None if serve_fd is None else ServePhase(serve_fd, out)
    if serve is not None:
        sys.meta_path.insert(0, _PatchAfterImport("nodes", serve.patch_nodes))

    def patch_execution(module: Any) -> None:
        if serve is not None:
            serve.guard_executor(module)
        if out is not None:
            patch_executor(module, out)

    sys.meta_path.insert(0, _PatchAfterImport("execution", patch_execution))
    runpy.run_path(target, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
