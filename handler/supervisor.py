"""The worker owns ComfyUI's process: start it, read its output, notice its death, restart it.

One long-lived thread runs the loop below (all spawns come from it, so the child's parent-death
signal stays armed); one reader thread per process pipes ComfyUI's output into handler.comfylog.

    spawn -> poll /system_stats every 50 ms -> ready -> wait for the process to end -> classify
          -> restart with backoff (at most COMFY_MAX_RESTARTS in RESTART_WINDOW_S) or give up

A start that fails the first time is not retried: same image, same config, same failure — the
state turns broken with the cause, and every job answers with it. A death after ComfyUI was ready
(out of memory, a node crashing the process) is restarted: the next job usually runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from comfyui_client import ComfyClient
from handler import comfy_boot, confine, jobfiles, listener, memcap, memwatch, privileges, reaper
from handler.comfylog import ComfyLog
from handler.config import Settings, worker_environment
from handler.state import Cause, State, WorkerState
from workflows.startup_log import StartFailure, classify_start_failure, parse_import_report

log = logging.getLogger("handler.supervisor")

POLL_S = 0.05
RESTART_WINDOW_S = 600.0


API_NODES_OFF = "--disable-api-nodes"


def comfy_command(s: Settings) -> list[str]:
    """ComfyUI's command line, from the worker's settings (what entrypoint.sh used to assemble). A Python
    COMFY_MAIN runs through handler.comfy_boot, which tags each output line with its prompt; another
    (a wrapper script) runs as it is, its lines attributed by time window."""
    boot = [comfy_boot.FILE] if s.comfy_main.suffix == ".py" else []
    command = [
        s.comfy_python,
        *boot,
        str(s.comfy_main),
        "--listen",
        s.comfy_host,
        "--port",
        str(s.comfy_port),
        "--disable-auto-launch",
        "--input-directory",
        str(s.input_dir),
        "--output-directory",
        str(s.output_dir),
        "--temp-directory",
        str(s.temp_dir),
        "--user-directory",
        str(s.user_dir),
        "--database-url",
        f"sqlite:///{s.user_dir}/comfyui.db",
    ]
    if s.extra_model_paths is not None and s.extra_model_paths.is_file():
        command += ["--extra-model-paths-config", str(s.extra_model_paths)]
    if s.isolate_jobs:  # no node result outlives its job: a caller can't time another job's inputs
        command.append("--cache-none")
    # API nodes (paid Comfy.org calls) stay off whatever COMFY_EXTRA_ARGS adds; COMFY_API_NODES=1 turns them on.
    if not s.api_nodes and API_NODES_OFF not in s.comfy_extra_args:
        command.append(API_NODES_OFF)
    return command + list(s.comfy_extra_args)


def _cause(failure: StartFailure) -> Cause:
    details: dict[str, Any] = {"evidence": list(failure.evidence)}
    if failure.pack:
        details["pack"] = failure.pack
    if failure.signature:
        details["signature"] = failure.signature
    return Cause(failure.code, failure.message, details, failure.fix)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        state: WorkerState,
        comfy_log: ComfyLog,
        *,
        on_ready: Callable[[bool], Cause | None] | None = None,
        command: list[str] | None = None,
    ) -> None:
        """on_ready(first): called each time ComfyUI answers; a Cause returned marks the worker broken
        (the strict self-check)."""
        self.settings, self.state, self.log = settings, state, comfy_log
        self.on_ready = on_ready
        self.command = command or comfy_command(settings)
        self.client = ComfyClient(settings.comfy_url, timeout=2.0)
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._deaths: list[float] = []
        self._thread: threading.Thread | None = None
        self.confinement = confine.Confinement()
        self._restart_cause: Cause | None = None  # set by restart(): a death the worker asked for
        self._foreign: Cause | None = None  # set by _await_ready: another process holds ComfyUI's port
        self.memory = memwatch.MemoryCap(settings, self._over_memory)
        self.kernel_memory = memcap.KernelCap.ask(self.memory.max_mb)  # the cgroup or RLIMIT_DATA under it
        # what ComfyUI starts dies with it (handler.reaper); its memory counts against the cap
        account, note = confine.resolve_user(settings)
        shared = f"ComfyUI runs as {account.pw_name}, a user not its own" if account and note else None
        self.reaper = reaper.Reaper(account.pw_uid if account else None, shared)
        self.memory.members = self.reaper.members
        self.memory.shm_uid = account.pw_uid if account else os.getuid()  # its /dev/shm files are its memory
        # what a job that ran unvetted classes changed in its HOME and user directory, gone before it starts again
        home, tmp = confine.scratch_dirs(settings)
        self.tainted = jobfiles.TaintedDirs((settings.user_dir,), self.memory.shm_uid, keep=(home, tmp))

    # --- process ----------------------------------------------------------------------------
    def spawn(self) -> subprocess.Popen[bytes]:
        s = self.settings
        self._ended()  # what an earlier ComfyUI (this worker's or a previous one's) left: a daemon, a listener
        if swept := self.tainted.sweep():
            log.warning("removed %d files a job with unvetted classes changed in ComfyUI's HOME/user directory", swept)
        # the user, Landlock, rlimits (the memory cap's RLIMIT_DATA among them), the environment
        launch = confine.prepare(
            s, worker_environment(), data_limit=self.kernel_memory.rlimit_bytes, boot=comfy_boot.FILE in self.command
        )
        self.log.forget_serve_phase()  # the new process says its own (handler.landlock_phases)
        try:
            with self.reaper.spawning():
                proc = subprocess.Popen(
                    launch.argv(self.command),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    cwd=str(s.comfy_dir) if s.comfy_dir.is_dir() else None,
                    start_new_session=True,  # its session tells its orphans from the worker's own children
                    **launch.popen_kwargs(),
                )
                self.reaper.watch(proc.pid)
        finally:
            launch.close()
        self.kernel_memory.place(proc.pid)
        memory = {"max_mb": self.memory.max_mb or None, "mechanism": self.kernel_memory.mechanism}
        self.confinement = dataclasses.replace(launch.confinement, memory=memory)
        self.proc = proc
        self.memory.watch(proc.pid)
        if s.comfy_pid_file is not None:
            with contextlib.suppress(OSError):
                s.comfy_pid_file.parent.mkdir(parents=True, exist_ok=True)
                s.comfy_pid_file.write_text(str(proc.pid))
        self._reader = threading.Thread(target=self._read, args=(proc,), name="comfy-output", daemon=True)
        self._reader.start()
        self.state.phase("comfyui_process_started")
        return proc

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self.log.feed(raw.decode("utf-8", "replace"))
        proc.stdout.close()
        self.log.forget_prompts()  # the process ended: its prompts print nothing more

    def alive(self) -> bool | None:
        return None if self.proc is None else self.proc.poll() is None

    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def report(self) -> dict[str, Any]:
        """What confines ComfyUI now (diagnose's `confinement`)."""
        return {
            **self.confinement.report(self.log.serve_phase()),
            "memory": {**self.memory.report(), **self.kernel_memory.report()},
            "processes": self.reaper.report(self.settings.max_procs),
            "logs": self.log.attribution(),
            "capabilities": {**privileges.status(self.pid()), "worker_dumpable": privileges.dumpable()},
        }

    def restart(self, cause: Cause, timeout: float = 5.0) -> bool:
        """Stop ComfyUI now (a prompt that would not stop); the loop starts it again at once, without
        counting it as a crash. True when the process was running and has ended."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return False
        self._restart_cause = cause
        self.state.died(cause)
        self.state.set(State.RESTARTING, cause)
        self.reaper.kill_all()  # ComfyUI and whatever its nodes started, wherever it went
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
        if self._reader is not None:  # its last lines belong to the job that asked, read them now
            self._reader.join(2.0)
        return proc.poll() is not None

    def _over_memory(self, rss_mb: float) -> None:
        self.restart(
            Cause(
                "COMFY_MEMORY_LIMIT",
                f"ComfyUI used {rss_mb:.0f} MB ({self.memory.in_files_mb:.0f} MB of it in files in memory: /dev/shm, "
                f"memfd), over its cap of {self.memory.max_mb:g} MB (COMFY_MEMORY_MAX_MB); "
                "the worker stopped and restarted it",
                {"rss_mb": round(rss_mb), "in_files_mb": round(self.memory.in_files_mb), "max_mb": self.memory.max_mb},
            )
        )

    def _ended(self) -> None:
        """ComfyUI's process has ended: nothing it started outlives it (handler.reaper)."""
        self.reaper.comfy_pid = None
        self.reaper.kill_all()

    def start(self) -> Supervisor:
        self.spawn()
        self.reaper.start()
        self.memory.start()
        self._thread = threading.Thread(target=self._run, name="comfy-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.memory.stop()
        self.reaper.stop()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc is not None:
            self._ended()
        if self.settings.comfy_pid_file is not None:
            self.settings.comfy_pid_file.unlink(missing_ok=True)

    # --- the loop ---------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never leave the state hanging in starting/restarting
            log.exception("the ComfyUI supervisor failed")
            self.state.set(
                State.BROKEN, Cause("COMFY_START_FAILED", f"the worker could not (re)start ComfyUI: {exc}"[:500])
            )

    def _loop(self) -> None:
        proc = self.proc
        assert proc is not None
        first = True
        while not self._stop.is_set():
            spawned_at = self.log.count
            ready = self._await_ready(proc, spawned_at)
            if self._stop.is_set():
                return
            if ready:
                self._record_imports(spawned_at, first)
                cause = self.on_ready(first) if self.on_ready else None
                if cause is not None:
                    self.state.set(State.BROKEN, cause)
                    return  # the strict self-check failed: nothing a restart would change
                self.state.phase("comfyui_ready")
                self.state.set(State.READY)
                code = proc.wait()
                self._ended()
                if self._stop.is_set():
                    return
                # Say so at once; the cause is refined below once the last output is read.
                self.state.set(State.RESTARTING, Cause("COMFY_DIED", f"ComfyUI's process ended (code {code})"))
            else:
                code = proc.returncode
                self._ended()
            if self._port_taken():
                return
            if (asked := self._restart_cause) is not None:  # the worker stopped it: restart at once, uncounted
                self._restart_cause = None
                if not ready and asked.code == "COMFY_MEMORY_LIMIT":  # the same start would be over it again
                    self.state.set(State.BROKEN, memcap.start_cause(asked.message, self.kernel_memory))
                    return
                log.warning("ComfyUI restarted by the worker (%s): %s", asked.code, asked.message)
                self.state.restarting(asked)
                first = False
                proc = self.spawn()
                continue
            failure = self._classify(spawned_at, code, was_ready=ready)
            self.state.died(_cause(failure))
            log.warning("ComfyUI ended (%s): %s", failure.code, failure.message)
            if first and not ready:
                self.state.set(State.BROKEN, _cause(failure))
                return
            first = False
            if not self._may_restart():
                self.state.set(
                    State.BROKEN,
                    Cause(
                        "COMFY_CRASH_LOOP",
                        f"ComfyUI died {len(self._deaths)} times within {RESTART_WINDOW_S:g} s; "
                        f"the worker stopped restarting it. Last death: {failure.message}",
                        {"last_death": failure.code, "evidence": list(failure.evidence)},
                    ),
                )
                return
            self.state.restarting(_cause(failure))
            backoff = self.settings.comfy_restart_backoff_s * 2 ** (len(self._deaths) - 1)
            if self._stop.wait(min(backoff, 30.0)):
                return
            proc = self.spawn()

    def _port_taken(self) -> bool:
        """Another process held ComfyUI's port: broken, naming it (not ComfyUI's to fix, nor a restart's)."""
        foreign = self._foreign
        if foreign is None:
            return False
        self.state.died(foreign)
        self.state.set(State.BROKEN, foreign)
        log.warning("ComfyUI's port is taken: %s", foreign.message)
        return True

    def _await_ready(self, proc: subprocess.Popen[bytes], spawned_at: int) -> bool:
        """Poll until ComfyUI answers (True) or its process ends (False). Past the ready timeout the
        worker is broken with COMFY_START_TIMEOUT, but keeps polling: a slow start may still end."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        timed_out = False
        while not self._stop.is_set():
            if proc.poll() is not None:
                self._foreign = self._port_holder(proc)
                return False
            if self.client.is_up(timeout=0.5):
                # an answer proves only that something listens: the kernel says whose socket it is
                self._foreign = self._port_holder(proc)
                if self._foreign is None:
                    return True
                proc.kill()
                proc.wait()
                return False
            if not timed_out and time.monotonic() >= deadline:
                timed_out = True
                failure = classify_start_failure(
                    self.log.lines_since(spawned_at), timed_out_after=self.settings.ready_timeout_s
                )
                self.state.set(State.BROKEN, _cause(failure))
            self._stop.wait(POLL_S)
        return False

    def _port_holder(self, proc: subprocess.Popen[bytes]) -> Cause | None:
        """COMFY_PORT_IN_USE naming the process, when a process outside ComfyUI's tree listens on its port."""
        port = self.settings.comfy_port
        own = reaper.tree(proc.pid) if proc.poll() is None else []
        other = listener.foreign_listener(port, own, self.confinement.uid)
        if other is None:
            return None
        return Cause(
            "COMFY_PORT_IN_USE",
            f"ComfyUI's port {port} is held by {other.describe()}, not by the ComfyUI the worker started; "
            "the worker does not talk to it",
            {"port": port, "pid": other.pid, "user": other.user, "command": other.command},
        )

    def _classify(self, spawned_at: int, code: int | None, *, was_ready: bool) -> StartFailure:
        if self._reader is not None:
            self._reader.join(1.0)  # the last lines (the traceback) are still in the pipe
        lines = self.log.lines_since(spawned_at)
        failure = classify_start_failure(lines, exit_code=code, was_ready=was_ready)
        return memcap.classify_death(failure, self.kernel_memory, lines, was_ready=was_ready)

    def _record_imports(self, spawned_at: int, first: bool) -> None:
        if not first:
            return
        packs = parse_import_report("\n".join(self.log.lines_since(spawned_at)))
        self.state.pack_imports.update({p.name: p.seconds for p in packs})

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW_S] + [now]
        return len(self._deaths) <= self.settings.comfy_max_restarts


def open_log(settings: Settings) -> ComfyLog:
    return ComfyLog(
        settings.comfy_log,
        max_bytes=int(settings.comfy_log_max_mb * 1024 * 1024),
        secrets=settings.secrets(),
        echo=sys.stdout,
    )


def stop_on_sigterm(supervisor: Supervisor) -> None:
    """SIGTERM (RunPod stopping the worker) stops ComfyUI too, then ends the worker. The SDK's local
    API server installs its own handler while it runs; the worker stops ComfyUI when it returns."""

    def handler(signum: int, _frame: object) -> None:
        supervisor.stop(timeout=5)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
