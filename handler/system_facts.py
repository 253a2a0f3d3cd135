"""Ask the system, not the configuration: the facts a job depends on, as the kernel and the processes
report them, against what the worker's settings believe.

- ComfyUI's directories (output, input, temp): a real write probe (create, write, fsync, unlink) and
  statvfs (read-only flag, free bytes, free inodes). A read-only or inode-starved disk gets its own
  code and fix (DISK_READ_ONLY, DISK_INODES_FULL), never a free-space fix.
- ComfyUI's own command line (/proc/<pid>/cmdline, else /system_stats' argv) against the settings:
  a later --output-directory or --port in COMFY_EXTRA_ARGS wins inside ComfyUI (argparse keeps the
  last), so the worker would look for outputs where ComfyUI does not write them.
- The output bucket answering (HEAD bucket), when one is configured.

A disagreement is a CONFIG_MISMATCH finding naming both sides. diagnose calls `findings`; a job calls
`job_blocker` before it runs, which re-probes only what can have gone stale (the disks every
PROBE_TTL_S, the command line once per ComfyUI process).
"""

from __future__ import annotations

import errno
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from handler.config import Settings
from workflows.errors import JobError
from workflows.findings import Finding, error

PROBE_TTL_S = 30.0
MIN_FREE_INODES = 16  # fewer than this: the next job's outputs and temp files can't all be created


class Runtime(Protocol):
    """What these checks read of handler.runtime.Runtime. Not imported from there: Runtime.require_ready
    calls job_blocker, and the layers test forbids the import cycle."""

    settings: Settings
    supervisor: Any

    @property
    def comfy(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class DirFacts:
    """One directory as the system reports it."""

    label: str  # "output", "input", "temp"
    setting: str  # the variable that names it
    path: str
    exists: bool
    write_error: str | None  # None: a file could be created, written and removed
    errno_name: str | None
    read_only: bool  # statvfs ST_RDONLY
    free_bytes: int | None
    free_inodes: int | None  # f_favail; None where the file system does not count inodes (0 total)


def probe_dir(label: str, setting: str, path: Path) -> DirFacts:
    """A real write probe and statvfs of `path`."""
    write_error = errno_name = None
    try:
        exists = path.is_dir()
    except OSError as exc:  # EACCES on a parent: is_dir raises for what it can't classify
        return DirFacts(
            label,
            setting,
            str(path),
            True,
            f"{type(exc).__name__}: {exc.strerror or exc}",
            errno.errorcode.get(exc.errno or 0),
            False,
            None,
            None,
        )
    read_only = False
    free_bytes = free_inodes = None
    if exists:
        try:
            st = os.statvfs(path)
            read_only = bool(st.f_flag & os.ST_RDONLY)
            free_bytes = st.f_bavail * st.f_frsize
            free_inodes = st.f_favail if st.f_files else None
        except OSError:
            pass
        probe = path / f".rp-write-probe-{uuid.uuid4().hex}"
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            try:
                os.write(fd, b"x")
                os.fsync(fd)
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            write_error = f"{type(exc).__name__}: {exc.strerror or exc}"
            errno_name = errno.errorcode.get(exc.errno or 0)
    else:
        write_error, errno_name = "no such directory", "ENOENT"
    return DirFacts(label, setting, str(path), exists, write_error, errno_name, read_only, free_bytes, free_inodes)


def dir_finding(f: DirFacts) -> Finding | None:
    """The finding for a directory a job must write to, from its facts (None: usable). Pure."""
    where = f"ComfyUI's {f.label} directory {f.path} ({f.setting})"
    if not f.exists:
        return error(
            "CONFIG_MISMATCH",
            f"{f.setting} says {f.path}, but the system has no such directory.",
            f"Create {f.path} (or mount the disk it belongs to), or set {f.setting} to a directory that exists.",
            path=f.path,
        )
    if f.read_only or f.errno_name == "EROFS":
        return error(
            "DISK_READ_ONLY",
            f"{where} is on a read-only file system (statvfs ST_RDONLY; a write probe failed: {f.write_error}).",
            f"Mount {f.path} read-write, or set {f.setting} to a writable disk (COMFY_OUTPUT_DIR/COMFY_TEMP_DIR).",
            path=f.path,
        )
    starved = f.free_inodes is not None and f.free_inodes < MIN_FREE_INODES
    # ENOSPC with plenty of bytes left where the file system does not report inodes is inode starvation too
    starved = starved or (f.errno_name == "ENOSPC" and f.free_inodes is None and (f.free_bytes or 0) > 64e6)
    if starved:
        free = f"{(f.free_bytes or 0) / 1e6:.0f} MB free" if f.free_bytes is not None else "free space"
        return error(
            "DISK_INODES_FULL",
            f"{where} has {free} but {f.free_inodes if f.free_inodes is not None else 'no'} free inodes: no new "
            f"file can be created there (write probe: {f.write_error or 'not yet failing'}).",
            f"Delete many small files under {f.path} (old outputs, caches, temp files) or move {f.setting} to a "
            "disk with free inodes; freeing bytes does not help.",
            path=f.path,
        )
    if f.errno_name in ("EACCES", "EPERM"):
        return error(
            "PERMISSION_DENIED",
            f"{where} is not writable by the worker's user (uid {os.geteuid()}): {f.write_error}.",
            f"chown/chmod {f.path} for the user the container runs as, or set {f.setting} to a directory it owns.",
            path=f.path,
        )
    if f.errno_name in ("ENOSPC", "EDQUOT"):
        return error(
            "DISK_FULL",
            f"{where} is full ({f.write_error}).",
            f"Free space under {f.path} or enlarge the disk / volume.",
            path=f.path,
        )
    if f.write_error is not None:
        return error(
            "PERMISSION_DENIED",
            f"A file can't be created in {where}: {f.write_error}.",
            f"Make {f.path} writable by the worker, or set {f.setting} to a writable directory.",
            path=f.path,
        )
    return None


def directories(rt: Runtime) -> list[DirFacts]:
    s = rt.settings
    wanted = (("output", "COMFY_OUTPUT_DIR", s.output_dir), ("temp", "COMFY_TEMP_DIR", s.temp_dir))
    return [probe_dir(*w) for w in (*wanted, ("input", "COMFY_INPUT_DIR", s.input_dir))]


# ---------------------------------------------------------------------------------------------------
# ComfyUI's command line
# ---------------------------------------------------------------------------------------------------


def flag(argv: Sequence[str], name: str) -> str | None:
    """The value argparse gives `name` in argv: the last "--name value" or "--name=value"."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def comfy_argv(rt: Runtime) -> tuple[list[str], str] | None:
    """ComfyUI's argv as the kernel has it (its PID from the supervisor or COMFY_PID_FILE), else as
    ComfyUI reports it in /system_stats; and where it was read."""
    pid = rt.supervisor.pid() if rt.supervisor is not None else None
    if pid is None:
        pid_file = rt.settings.comfy_pid_file
        try:
            pid = int(pid_file.read_text()) if pid_file is not None else None
        except (OSError, ValueError):
            pid = None
    if pid is not None:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            return [a.decode(errors="replace") for a in raw.split(b"\0") if a], f"/proc/{pid}/cmdline"
        except OSError:
            pass
    try:
        argv = rt.comfy.system_stats(timeout=2.0, probe=True).get("system", {}).get("argv")
    except Exception:
        return None
    return (list(map(str, argv)), "ComfyUI's /system_stats argv") if isinstance(argv, list) else None


def argv_findings(settings: Any, argv: Sequence[str], source: str) -> list[Finding]:
    """Each setting ComfyUI's command line contradicts, with both sides named. Pure."""
    checks = (
        ("--output-directory", "COMFY_OUTPUT_DIR", settings.output_dir, "outputs are collected"),
        ("--input-directory", "COMFY_INPUT_DIR", settings.input_dir, "job images are stored"),
        ("--temp-directory", "COMFY_TEMP_DIR", settings.temp_dir, "previews are cleaned up"),
        ("--port", "COMFY_PORT", settings.comfy_port, "the worker connects"),
    )
    findings = []
    for name, setting, believed, role in checks:
        actual = flag(argv, name)
        if actual is None or _same(actual, believed):
            continue
        findings.append(
            error(
                "CONFIG_MISMATCH",
                f"{setting} says {believed} (where {role}), but ComfyUI runs with {name} {actual} ({source}).",
                f"Remove {name} from COMFY_EXTRA_ARGS (the worker passes {setting} itself), or set {setting} to "
                f"{actual}; the last {name} wins inside ComfyUI.",
                path=str(actual),
            )
        )
    return findings


def _same(actual: str, believed: Any) -> bool:
    if isinstance(believed, int):
        return actual.strip() == str(believed)
    return os.path.realpath(actual) == os.path.realpath(str(believed))


# ---------------------------------------------------------------------------------------------------
# The output bucket
# ---------------------------------------------------------------------------------------------------


def bucket_finding(rt: Runtime) -> Finding | None:
    """HEAD the configured bucket with short timeouts; None when it answers (or none is configured)."""
    s = rt.settings
    if not s.bucket_endpoint_url:
        return None
    from handler.outputs import endpoint_region, sdk_bucket

    bucket = s.bucket_name or sdk_bucket()  # the bucket uploads go to (unset: the official worker's month)
    try:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=s.bucket_endpoint_url,
            aws_access_key_id=s.bucket_access_key_id,
            aws_secret_access_key=s.bucket_secret_access_key,
            region_name=s.bucket_region or endpoint_region(s.bucket_endpoint_url) or "us-east-1",
            config=Config(signature_version="s3v4", connect_timeout=3, read_timeout=3, retries={"max_attempts": 1}),
        )
        client.head_bucket(Bucket=bucket)
    except Exception as exc:
        response = getattr(exc, "response", None)
        detail = (response or {}).get("Error", {}).get("Code") if isinstance(response, dict) else None
        return error(
            "BUCKET_UNREACHABLE",
            f"BUCKET_ENDPOINT_URL={s.bucket_endpoint_url} with bucket {bucket!r} is configured, but "
            f"the bucket does not answer: {detail or type(exc).__name__}.",
            "Check BUCKET_ENDPOINT_URL, BUCKET_NAME and the bucket keys (and that the bucket exists); until it "
            "answers, outputs that need it fail with OUTPUT_UPLOAD_FAILED.",
        )
    return None


# ---------------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------------


def findings(rt: Runtime) -> list[Finding]:
    """diagnose: every directory, ComfyUI's command line and the bucket, as the system has them."""
    found = [f for f in map(dir_finding, directories(rt)) if f is not None]
    argv = comfy_argv(rt)
    if argv is not None:
        found += argv_findings(rt.settings, *argv)
    if (bucket := bucket_finding(rt)) is not None:
        found.append(bucket)
    return found


@dataclass
class _Cache:
    at: float = float("-inf")
    dirs: list[Finding] | None = None
    argv_pid: object = None
    argv: list[Finding] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _cache_of(rt: Runtime) -> _Cache:
    """The runtime's own cache, kept on the object (not in a module dict keyed by id(), which a later
    Runtime can reuse and so inherit stale findings). setdefault is atomic under the GIL."""
    cache: _Cache = vars(rt).setdefault("_system_facts_cache", _Cache())
    return cache


def job_blocker(rt: Runtime) -> JobError | None:
    """Before a job: the output/temp directories' facts (re-probed every PROBE_TTL_S) and ComfyUI's
    command line (read once per ComfyUI process); the first error as the job's failure, else None."""
    cache = _cache_of(rt)
    now = time.monotonic()
    with cache.lock:
        if cache.dirs is None or now - cache.at > PROBE_TTL_S:
            dirs = directories(rt)[:2]  # output and temp: what a job writes
            cache.dirs = [f for f in map(dir_finding, dirs) if f is not None]
            cache.at = now
        pid = rt.supervisor.pid() if rt.supervisor is not None else "unsupervised"
        if cache.argv is None or cache.argv_pid != pid:
            argv = comfy_argv(rt)
            cache.argv = argv_findings(rt.settings, *argv) if argv is not None else []
            cache.argv_pid = pid
        blockers = [*cache.dirs, *cache.argv]
    if not blockers:
        return None
    first = blockers[0]
    return JobError(first.code, first.message, {"path": first.path}, findings=blockers, fix=first.fix)
