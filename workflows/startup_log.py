"""Read ComfyUI's start-up log: which custom node packs loaded, failed, and how long each took."""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflows import signatures

_HEADER = "Import times for custom nodes:"
_LINE = re.compile(r"^\s*(?P<secs>\d+(?:\.\d+)?) seconds(?P<failed> \(IMPORT FAILED\))?: (?P<path>.+?)\s*$")
_CANNOT = re.compile(r"^Cannot import (?P<path>.+?) module for custom nodes: (?P<error>.*)$")


@dataclass(frozen=True, slots=True)
class PackImport:
    name: str
    path: str
    seconds: float
    failed: bool
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "path": self.path,
            "seconds": self.seconds,
            "failed": self.failed,
            "error": self.error,
        }


def parse_import_report(log_text: str) -> list[PackImport]:
    """Every pack listed in the last 'Import times for custom nodes' block, with its import error."""
    lines = log_text.splitlines()
    errors: dict[str, str] = {}
    for line in lines:
        if m := _CANNOT.match(line.strip()):
            errors[m["path"].rstrip("/")] = m["error"].strip()
    start = max((i for i, line in enumerate(lines) if line.strip() == _HEADER), default=None)
    if start is None:
        return []
    packs = []
    for line in lines[start + 1 :]:
        m = _LINE.match(line)
        if not m:
            break
        path = m["path"].rstrip("/")
        name = path.rsplit("/", 1)[-1].removesuffix(".py")
        packs.append(PackImport(name, path, float(m["secs"]), bool(m["failed"]), errors.get(path)))
    return packs


# Why ComfyUI is not ready, read from its output and process state. The order matters: the most
# specific cause wins (a port clash also ends in a traceback; a CUDA failure too).
_PORT_IN_USE = re.compile(r"address already in use|\[Errno 98\]|EADDRINUSE", re.I)
_CUDA = re.compile(
    r"CUDA driver version is insufficient|no kernel image is available|Found no NVIDIA driver"
    r"|NVIDIA driver on your system is too old|CUDA error|libcuda\.so|Torch not compiled with CUDA enabled"
    r"|cudaGetDeviceCount|CUDA initialization",
    re.I,
)
_MODEL_PATHS = re.compile(r"extra_config\.py|load_extra_path_config")
_PACK_PATH = re.compile(r"custom_nodes[/\\](?P<pack>[^/\\\s\"']+)")
_EXCEPTION = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Fault)\w*)(?::\s*(?P<text>.*))?$")
# ComfyUI prints these right after a traceback it handled (a node module that failed to import).
_HANDLED = ("Cannot import ", "Error while calling comfy_entrypoint", "Failed to execute startup-script")
# ComfyUI logs these before it imports custom node packs and after, respectively.
NODES_LOADING_MARKERS = ("Using pytorch attention", "Using split optimization", "Set vram state to", "Device:")


@dataclass(frozen=True, slots=True)
class StartFailure:
    """Why ComfyUI is not (or no longer) ready: a code from workflows.errors.CODES and a message that
    names the evidence; `evidence` are the log lines it was read from."""

    code: str
    message: str
    evidence: tuple[str, ...] = ()
    pack: str | None = None
    fix: str | None = None  # a signature's own fix (workflows.signatures), more specific than the table's
    signature: dict[str, str] | None = None


def last_exception(lines: list[str]) -> tuple[str | None, list[str]]:
    """The exception line of the traceback that ended the process, and that traceback's lines.

    ComfyUI also prints tracebacks it handled (a pack that failed to import, "Cannot import ...")
    and carries on: only a traceback followed by at most two more lines of output counts.
    """
    start = max((i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line), default=None)
    if start is None:
        return None, []
    block = lines[start:]
    for i, line in enumerate(block[1:], 1):
        text = _strip_prefix(line)
        if text and not text.startswith((" ", "\t", "^", "~")) and _EXCEPTION.match(text):
            after = [_strip_prefix(rest) for rest in block[i + 1 :] if rest.strip()]
            if any(rest.startswith(_HANDLED) for rest in after[:3]):
                return None, []  # ComfyUI reported it and carried on
            if len([rest for rest in after if not rest.startswith((" ", "\t"))]) > 2:
                return None, []  # ComfyUI carried on after it
            # A multi-line message (YAML's "in <file>, line L, column C") belongs to the exception.
            return " ".join([text, *(rest.strip() for rest in after[:4])]), block

    return None, block


def _strip_prefix(line: str) -> str:
    """ComfyUI's log lines may carry a timestamp prefix ("[2025-01-01 10:00:00.000] ")."""
    return re.sub(r"^\[\d{4}-\d\d-\d\d [\d:.]+\] ", "", line.rstrip())


def _pack_in(lines: list[str]) -> str | None:
    packs = [m["pack"] for line in lines if (m := _PACK_PATH.search(line))]
    return packs[-1].removesuffix(".py") if packs else None


def classify_start_failure(
    lines: list[str],
    *,
    exit_code: int | None = None,
    timed_out_after: float | None = None,
    was_ready: bool = False,
) -> StartFailure:
    """Why ComfyUI ended (exit_code set) or has not answered (timed_out_after set). Pure.

    `lines` is ComfyUI's output so far; `was_ready` says the death came after it had answered once.
    """
    tail = lines[-200:]
    hit = next((line for line in reversed(tail) if _PORT_IN_USE.search(line)), None)
    if hit is not None:
        return StartFailure(
            "COMFY_PORT_IN_USE", f"ComfyUI cannot listen: its port is taken ({_strip_prefix(hit).strip()})", (hit,)
        )
    exception, block = last_exception(tail)
    found = _signature(exception, block)  # the field-drawn signature of the exception, when one knows it
    hit = next((line for line in reversed(tail) if _CUDA.search(line)), None)
    if hit is not None and exit_code is not None and found is None:
        return StartFailure(
            "COMFY_CUDA_MISMATCH", f"ComfyUI could not use the GPU: {_strip_prefix(hit).strip()}", (hit,)
        )
    if exception is not None and exit_code is not None and any(_MODEL_PATHS.search(line) for line in block):
        return StartFailure(
            "COMFY_MODEL_PATHS_INVALID",
            f"ComfyUI could not read extra_model_paths.yaml: {exception}",
            tuple(block[-6:]),
        )
    if exit_code is not None:
        return _exit_failure(tail, exit_code, was_ready, exception, block, found)
    waited = f"{timed_out_after:g} s" if timed_out_after is not None else "its start timeout"
    stage = " while importing custom node packs (a slow or hung pack)" if _importing_packs(tail) else ""
    return StartFailure(
        "COMFY_START_TIMEOUT",
        f"ComfyUI did not answer within {waited}{stage}; last output: {_last_text(tail)}",
        tuple(tail[-5:]),
    )


def _signature(exception: str | None, block: list[str]) -> signatures.Match | None:
    """The field-drawn signature of the exception that ended ComfyUI ("Type: message"), if any."""
    if exception is None:
        return None
    kind, _, text = exception.partition(": ")
    return signatures.match(kind, text, [_strip_prefix(line) for line in block], stage="start")


def _exit_failure(
    tail: list[str],
    exit_code: int,
    was_ready: bool,
    exception: str | None,
    block: list[str],
    found: signatures.Match | None = None,
) -> StartFailure:
    """ComfyUI's process ended: died while running, a Python error, a pack that ended it, or unknown."""
    when = "while running" if was_ready else "during start-up"
    signal_text = f"was killed by signal {-exit_code}" if exit_code < 0 else f"exited with code {exit_code}"
    if exit_code == -9:
        signal_text += " (SIGKILL: often the out-of-memory killer)"
    if was_ready:
        last = exception or _last_text(tail)
        cause = f" ({found.code}: {found.cause})" if found else ""
        return StartFailure(
            "COMFY_DIED",
            f"ComfyUI {signal_text} {when}; last output: {last}{cause}",
            tuple(tail[-5:]),
            signature=found.details() if found else None,
        )
    if exception is not None:
        pack = _pack_in(block)
        where = f" in custom node pack {pack}" if pack else ""
        if found is not None:
            return StartFailure(
                found.code,
                f"ComfyUI {signal_text} {when}{where}: {found.cause}: {exception}",
                tuple(block[-6:]),
                pack,
                fix=found.fix,
                signature=found.details(),
            )
        return StartFailure(
            "COMFY_START_FAILED", f"ComfyUI {signal_text} {when}{where}: {exception}", tuple(block[-6:]), pack
        )
    if _importing_packs(tail):
        pack = _pack_in(tail[-20:])
        named = f"custom node pack {pack}" if pack else "a custom node pack"
        return StartFailure(
            "COMFY_PACK_KILLED_START",
            f"ComfyUI {signal_text} while importing custom node packs, without a Python error: {named} "
            f"ended the process (sys.exit, os._exit or a crash in native code); last output: {_last_text(tail)}",
            tuple(tail[-5:]),
            pack,
        )
    return StartFailure(
        "COMFY_START_FAILED", f"ComfyUI {signal_text} {when}; last output: {_last_text(tail)}", tuple(tail[-5:])
    )


def _importing_packs(lines: list[str]) -> bool:
    """ComfyUI got past device set-up but never printed its custom-node import report."""
    started = any(any(marker in line for marker in NODES_LOADING_MARKERS) for line in lines)
    return started and not any(line.strip().endswith(_HEADER) for line in lines)


def _last_text(lines: list[str]) -> str:
    return next((_strip_prefix(line).strip() for line in reversed(lines) if line.strip()), "(no output)")[:300]
