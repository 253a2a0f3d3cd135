"""`diagnose` mode: the deployment seen from inside — ComfyUI, disks, volume, models, packs, workflows.

Collects facts (the only I/O) and hands them to workflows.analysis, the same judge the client and
the image self-check use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfyui_client import ComfyHTTPError, ComfyUnavailable
from handler.config import HANDLER_VERSION
from handler.runtime import Runtime
from handler.state import State
from workflows.analysis import (
    Context,
    import_findings,
    node_check,
    pack_lookup,
    unscanned_model_findings,
    workflow_report,
)
from workflows.errors import CODES, JobError
from workflows.findings import Finding, Severity, error, warning
from workflows.model_tree import (
    HEAD_BYTES,
    HEADER_TAIL_BYTES,
    ROOT_HINT_FOLDERS,
    TAIL_BYTES,
    FileFact,
    FolderFact,
    is_models_dir,
    layout_findings,
    safetensors_header_length,
    tree_findings,
)
from workflows.models import (
    FOLDER_ALIASES,
    MODEL_EXTENSIONS,
    MODEL_FOLDERS,
    VOLUME_LAYOUTS,
    ModelFile,
    ModelIndex,
    canonical_folder,
)
from workflows.request import DiagnoseRequest
from workflows.startup_log import PackImport, parse_import_report
from workflows.timing import lap


def _walk(
    folder_dir: Path, unreadable: list[FolderFact] | None = None, folder: str = ""
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative name, entry) for every model-extension entry below a folder (files, dangling links, fifos);
    directories it can't read go to `unreadable`. Symlinked directories are followed (volumes are often
    linked in) but each directory is walked once, so a link loop can't make the scan run away."""
    stack = [(folder_dir, "")]
    seen: set[tuple[int, int]] = set()
    while stack:
        directory, prefix = stack.pop()
        try:
            st = directory.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
                    elif os.path.splitext(entry.name)[1].lower() in MODEL_EXTENSIONS:
                        yield prefix + entry.name, entry
        except OSError as exc:
            if unreadable is not None and os.path.lexists(directory):
                unreadable.append(FolderFact(folder, str(directory), "unreadable", exc.strerror or str(exc)))
            continue


def model_roots(runtime: Runtime) -> list[tuple[str, Path]]:
    """(source, models dir) for the image and each volume layout that exists."""
    s = runtime.settings
    roots = [("image", s.comfy_dir / "models")]
    roots += [("volume", s.volume_dir / sub) for sub in VOLUME_LAYOUTS if (s.volume_dir / sub).is_dir()]
    return [(src, path) for src, path in roots if path.is_dir()]


def scan_model_files(
    roots: list[tuple[str, Path]], problems: TreeFacts | None = None
) -> list[tuple[str, str, str, int, str]]:
    """(canonical folder, name, path, size, source) for every model file under the roots.

    With `problems`, what ComfyUI would silently skip is collected too: folders that are dangling
    links, files or unreadable, and model entries that are dangling links or not regular files.
    """
    found = []
    for source, root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError as exc:
            if problems is not None:
                problems.folders.append(FolderFact("", str(root), "unreadable", exc.strerror or str(exc)))
            continue
        folders = []
        for e in entries:
            if e.is_dir():
                folders.append(e)
            elif problems is not None and e.name.lower() in _KNOWN_FOLDERS:
                problems.folders.append(_folder_fact(e))
        for folder in folders:
            canonical = canonical_folder(folder.name)
            unreadable = problems.folders if problems is not None else None
            for name, entry in _walk(Path(folder.path), unreadable, canonical):
                try:
                    st = entry.stat()
                except OSError:
                    if problems is not None:
                        problems.files.append(FileFact(entry.path, "dangling_symlink"))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if problems is not None:
                        problems.files.append(FileFact(entry.path, "other"))
                    continue
                found.append((canonical, name, entry.path, st.st_size, source))
    return found


_KNOWN_FOLDERS = frozenset(f.lower() for f in MODEL_FOLDERS)
_HEADER_EXTENSIONS = frozenset({".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth"})


@dataclass
class TreeFacts:
    """What diagnose gathers about the model tree for workflows.model_tree to judge."""

    folders: list[FolderFact] = field(default_factory=list)
    files: list[FileFact] = field(default_factory=list)
    layouts: list[str] = field(default_factory=list)  # models dirs (relative to the volume) found off-layout


def _folder_fact(entry: os.DirEntry[str]) -> FolderFact:
    if entry.is_symlink() and not os.path.exists(entry.path):
        return FolderFact(entry.name, entry.path, "dangling_symlink", os.readlink(entry.path))
    if entry.is_file():
        return FolderFact(entry.name, entry.path, "file")
    return FolderFact(entry.name, entry.path, "other")


_FIRST_READ = 64 * 1024  # one read covers the prefix and the JSON header of most safetensors files


def read_header(path: str, size: int) -> FileFact:
    """The first and last bytes of a model file (and a safetensors JSON header): never the whole file.

    Raw os.open/pread, one read for most files: 5,000 files must fit in diagnose's budget.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return FileFact(path, "regular", size)
    try:
        first = os.pread(fd, min(size, _FIRST_READ), 0)
        head, header, tail = first[:HEAD_BYTES], None, b""
        if path[-12:].lower() == ".safetensors" or path[-4:].lower() == ".sft":
            n = safetensors_header_length(head)
            if n is not None and 0 < n <= size - 8:
                # the whole header when it came with the first read, else only its end (a big checkpoint's
                # header is hundreds of KB: parsing 5,000 of them would blow diagnose's budget)
                header = (
                    first[8 : 8 + n]
                    if 8 + n <= len(first)
                    else os.pread(fd, HEADER_TAIL_BYTES, 8 + n - HEADER_TAIL_BYTES)
                )
        elif head[:4] == b"PK\x03\x04":  # a torch zip: is its end record there?
            tail = first[-TAIL_BYTES:] if size <= len(first) else os.pread(fd, TAIL_BYTES, size - TAIL_BYTES)
    except OSError:
        return FileFact(path, "regular", size)
    finally:
        os.close(fd)
    return FileFact(path, "regular", size, head, tail, header)


def file_facts(raw_files: list[tuple[str, str, str, int, str]]) -> list[FileFact]:
    """Header facts for every model file whose format we can check (zero-byte ones without reading)."""
    facts = []
    for _, _, path, size, _ in raw_files:
        if size == 0:
            facts.append(FileFact(path, "regular", 0))
        elif path[path.rfind(".") :].lower() in _HEADER_EXTENSIONS:
            facts.append(read_header(path, size))
    return facts


def off_layout_models_dirs(volume: Path, depth: int = 3) -> list[str]:
    """`models` directories (any case, up to `depth` levels below the volume root) holding a known model
    folder: the layouts people use that the worker may not scan. Relative to the volume root."""
    found: list[str] = []
    try:
        at_root = [e.name for e in os.scandir(volume) if e.is_dir() and e.name.lower() != "models"]
    except OSError:
        at_root = []
    if any(name.lower() in ROOT_HINT_FOLDERS for name in at_root):
        found.append(".")  # model folders straight on the volume: /runpod-volume/checkpoints
    stack = [(volume, "", 0)]
    while stack:
        directory, rel, level = stack.pop()
        try:
            children = [e for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for child in children:
            child_rel = f"{rel}{child.name}"
            if child.name.lower() == "models":
                try:
                    names = [e.name for e in os.scandir(child.path) if e.is_dir()]
                except OSError:
                    names = []
                if is_models_dir(names):
                    if child_rel not in VOLUME_LAYOUTS:  # the scanned layouts themselves are fine
                        found.append(child_rel)
                    continue
            if level + 1 < depth and child.name.lower() not in _KNOWN_FOLDERS and not child.name.startswith("."):
                stack.append((Path(child.path), child_rel + "/", level + 1))
    return found


def model_index(runtime: Runtime) -> ModelIndex | None:
    """The model index generate judges a miss against: files on disk + what ComfyUI lists, built fresh.

    None when it can't be built (ComfyUI's model lists unreadable): the judgement then falls back to the
    loader lists of /object_info, as on the happy path.
    """
    try:
        return _model_index(runtime)
    except (ComfyUnavailable, ValueError, OSError):
        return None


def _model_index(runtime: Runtime) -> ModelIndex:
    s = runtime.settings
    with ThreadPoolExecutor(max_workers=1) as pool:
        lists_f = pool.submit(comfy_model_lists, runtime)
        raw_files = scan_model_files(model_roots(runtime))
        if s.volume_dir.is_dir():  # where people also put models: the finding then says where the file is
            rels = off_layout_models_dirs(s.volume_dir)
            off = [("volume", s.volume_dir / rel) for rel in rels if rel != "."]
            raw_files += [(f, n, p, size, "volume-unscanned") for f, n, p, size, _ in scan_model_files(off)]
            if "." in rels:
                raw_files += _root_folder_files(s.volume_dir)
        comfy_sees, _ = lists_f.result()
    files = tuple(
        ModelFile(
            folder,
            name,
            path,
            size,
            source,
            source != "volume-unscanned" and name in comfy_sees.get(folder, frozenset()),
        )
        for folder, name, path, size, source in raw_files
    )
    return ModelIndex(comfy_sees, files)


def _root_folder_files(volume: Path) -> list[tuple[str, str, str, int, str]]:
    """Model files in known folders placed straight on the volume (/runpod-volume/loras/...)."""
    try:
        wanted = [e for e in os.scandir(volume) if e.is_dir() and e.name.lower() in ROOT_HINT_FOLDERS]
    except OSError:
        return []
    found = []
    for folder in wanted:
        for name, entry in _walk(Path(folder.path)):
            try:
                size = entry.stat().st_size
                found.append((canonical_folder(folder.name), name, entry.path, size, "volume-unscanned"))
            except OSError:
                continue
    return found


def pack_commits(imports: tuple[PackImport, ...]) -> dict[str, str]:
    """Installed pack path -> the git commit it is checked out at (read from .git, no git process)."""
    commits = {}
    for pack in imports:
        git = Path(pack.path) / ".git"
        try:
            head = (git / "HEAD").read_text().strip()
            if head.startswith("ref: "):
                ref = head[5:]
                try:
                    head = (git / ref).read_text().strip()
                except OSError:
                    packed = (git / "packed-refs").read_text().splitlines()
                    head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        except (OSError, StopIteration):
            continue
        if len(head) == 40 and all(c in "0123456789abcdef" for c in head):
            commits[pack.path] = head
    return commits


def pack_imports(runtime: Runtime) -> tuple[PackImport, ...]:
    """The custom node packs ComfyUI reported at start-up (loaded and failed)."""
    try:
        return tuple(parse_import_report(runtime.settings.comfy_log.read_text(errors="replace")))
    except OSError:
        return ()


def _layout_root_facts(runtime: Runtime) -> list[FolderFact]:
    """The volume layouts' own `models` dirs when they are dangling links or files (model_roots skips them)."""
    s = runtime.settings
    facts = []
    for sub in VOLUME_LAYOUTS:
        path = s.volume_dir / sub
        if path.is_symlink() and not path.exists():
            facts.append(FolderFact(sub, str(path), "dangling_symlink", os.readlink(path)))
        elif path.is_file():
            facts.append(FolderFact(sub, str(path), "file"))
    return facts


def _list_or_none(runtime: Runtime, folder: str) -> list[str] | None:
    try:
        return runtime.comfy.models(folder)
    except (ComfyUnavailable, ComfyHTTPError):
        return None  # ComfyUI answers 500 when a scanned directory vanished after it was cached


def comfy_model_lists(runtime: Runtime) -> tuple[dict[str, frozenset[str]], list[str]]:
    """(folder -> names ComfyUI lists, folders ComfyUI failed to list)."""
    folders = runtime.comfy.model_folders()
    wanted = [f for f in folders if f not in FOLDER_ALIASES]  # aliases list the same files
    with ThreadPoolExecutor(max_workers=8) as pool:
        lists = dict(zip(wanted, pool.map(lambda f: _list_or_none(runtime, f), wanted), strict=True))
    failed = sorted(k for k, v in lists.items() if v is None)
    return {canonical_folder(k): frozenset(v or ()) for k, v in lists.items()}, failed


def _sha256_or_none(path: str) -> str | None:
    """The file's sha256; None when it vanished or can't be read (the model-tree findings name why)."""
    try:
        return _sha256(path)
    except OSError:
        return None


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _disk(label: str, path: Path, low_gb: float, severity_error: bool) -> tuple[dict[str, Any], list[Finding]]:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {"label": label, "path": str(path), "free_gb": None, "total_gb": None}, []
    free = round(usage.free / 1e9, 2)
    info = {"label": label, "path": str(path), "free_gb": free, "total_gb": round(usage.total / 1e9, 2)}
    if free >= low_gb:
        return info, []
    make = error if severity_error else warning
    return info, [
        make(
            "DISK_LOW",
            f"Only {free} GB free on {label} ({path}); the threshold is {low_gb} GB.",
            "Free space (old outputs, unused models) or enlarge the container disk / network volume.",
            path=str(path),
        )
    ]


def comfy_answering(runtime: Runtime) -> bool:
    """Worth asking ComfyUI: the worker says it is ready, or (starting, the strict self-check) it answers."""
    state = runtime.state
    if state is None or state.ready:
        return True
    return state.state is not State.BROKEN and runtime.comfy.is_up(timeout=0.3)


def _log_text(runtime: Runtime) -> str:
    """ComfyUI's start-up output (for the pack import report): from memory, else the log file's start."""
    if runtime.log is not None:
        return "\n".join(line for _, line in runtime.log.recent())
    try:
        with runtime.settings.comfy_log.open("rb") as fh:
            return fh.read(4 * 1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return ""


def worker_findings(runtime: Runtime, reachable: bool) -> list[Finding]:
    """Why ComfyUI is not ready (the state's cause), broken registry files, extra_model_paths.yaml."""
    from handler.selfcheck import check_model_paths

    s = runtime.settings
    found: list[Finding] = []
    cause = runtime.state.cause if runtime.state is not None else None
    if cause is not None:
        found.append(error(cause.code, cause.message, cause.fix))
    elif not reachable:
        state = runtime.state.state.value if runtime.state is not None else "unknown"
        found.append(
            error(
                "COMFY_NOT_READY" if state in ("ready", "unknown") else "COMFY_STARTING",
                f"ComfyUI at {s.comfy_url} is not answering (worker state: {state}).",
                "See logs_tail for the start-up error (missing dependency, CUDA/OOM, port in use).",
            )
        )
    if runtime.state is not None and runtime.state.last_death is not None and cause is None:
        death = runtime.state.last_death
        found.append(warning(death.code, f"ComfyUI died and was restarted: {death.message}", death.fix))
    found += [
        error("WORKFLOW_BROKEN", f"registered workflow {name!r} is disabled: {problem}", CODES["WORKFLOW_BROKEN"].fix)
        for name, problem in sorted(runtime.registry.problems.items())
    ]
    if (full := runtime.disk_full()) is not None:
        found.append(error("DISK_FULL", full, CODES["DISK_FULL"].fix, path=str(s.output_dir)))
    if s.extra_model_paths is not None and s.extra_model_paths.exists():
        found += check_model_paths(s.extra_model_paths)
    return found


@dataclass
class ComfyView:
    """What ComfyUI says about itself: empty when it is not reachable."""

    reachable: bool = False
    stats: dict[str, Any] = field(default_factory=dict)
    object_info: dict[str, Any] = field(default_factory=dict)
    sees: dict[str, frozenset[str]] = field(default_factory=dict)  # folder -> names it lists
    unlisted: list[str] = field(default_factory=list)  # folders it failed to list


def _scan_and_ask(
    runtime: Runtime, timings: dict[str, Any]
) -> tuple[TreeFacts, list[tuple[str, str, str, int, str]], ComfyView]:
    """The model tree on disk, and ComfyUI's stats, node definitions and model lists fetched in
    parallel with the scan — unless the worker knows ComfyUI is not ready: then only the disk."""
    s = runtime.settings
    use_comfy = comfy_answering(runtime)
    with ThreadPoolExecutor(max_workers=3) as pool:
        if use_comfy:
            stats_f = pool.submit(runtime.comfy.system_stats, 2.0)
            info_f = pool.submit(runtime.object_info)  # shared with jobs: fetched once per ComfyUI start
            lists_f = pool.submit(comfy_model_lists, runtime)
        t = time.perf_counter()
        tree = TreeFacts()
        raw_files = scan_model_files(model_roots(runtime), tree)
        tree.files += file_facts(raw_files)
        tree.folders += _layout_root_facts(runtime)
        if s.volume_dir.is_dir():
            tree.layouts = off_layout_models_dirs(s.volume_dir)
        t = lap(timings, "disk_scan_ms", t)
        view = ComfyView()
        if use_comfy:
            try:
                sees, unlisted = lists_f.result()
                view = ComfyView(True, stats_f.result(), info_f.result(), sees, unlisted)
            except (ComfyUnavailable, ValueError, OSError):
                pass
        lap(timings, "comfyui_ms", t)
    return tree, raw_files, view


def _model_list_failed(folders: list[str]) -> list[Finding]:
    return [
        error(
            "MODEL_LIST_FAILED",
            f"ComfyUI fails to list its {folder!r} models (HTTP 500): a directory "
            "it scans disappeared after start-up (network volume unmounted or a folder deleted).",
            "Restore the directory or restart the worker so ComfyUI rescans its model paths; loaders of "
            "this folder are missing from /object_info until then.",
        )
        for folder in folders
    ]


def _checksums(runtime: Runtime, raw_files: list[tuple[str, str, str, int, str]]) -> dict[str, str]:
    """sha256 of the files on disk that the registry has a hash for (the others are not read)."""
    entries = runtime.registry.entries.values()
    wanted = {m.name.rsplit("/", 1)[-1] for e in entries for m in e.models if m.sha256}
    paths = [path for _, name, path, _, _ in raw_files if name.rsplit("/", 1)[-1] in wanted]
    with ThreadPoolExecutor(max_workers=4) as pool:
        digests = zip(paths, pool.map(_sha256_or_none, paths), strict=True)
        return {path: digest for path, digest in digests if digest is not None}


def _disks_and_volume(runtime: Runtime) -> tuple[list[dict[str, Any]], dict[str, Any], list[Finding]]:
    s = runtime.settings
    mounted = s.volume_dir.is_dir()
    disks, findings = [], []
    for label, path, is_error in (
        ("container", Path("/"), False),
        ("output", s.output_dir, True),
        *((("volume", s.volume_dir, False),) if mounted else ()),
    ):
        info, disk_findings = _disk(label, path, s.disk_low_gb, is_error)
        disks.append(info)
        findings += disk_findings
    layouts = [sub for sub in VOLUME_LAYOUTS if (s.volume_dir / sub).is_dir()]
    volume = {"mounted": mounted, "path": str(s.volume_dir), "layouts": layouts}
    if not mounted:
        findings.append(
            Finding(
                "VOLUME_NOT_MOUNTED",
                Severity.INFO,
                f"No network volume at {s.volume_dir}.",
                "Attach a network volume to the endpoint if your models live there.",
                path=str(s.volume_dir),
            )
        )
    return disks, volume, findings


def _workflow_checks(
    runtime: Runtime,
    request: DiagnoseRequest,
    object_info: dict[str, Any],
    index: ModelIndex,
    imports: tuple[PackImport, ...],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each registered workflow (or the one asked for) judged by the shared analysis; its findings
    tagged with the workflow's id."""
    registry = runtime.registry
    commits = pack_commits(imports)
    entries = [registry.entries[request.workflow]] if request.workflow else list(registry.entries.values())
    checks: dict[str, Any] = {}
    tagged: list[dict[str, Any]] = []
    for entry in entries:
        ctx = Context(object_info, index, imports, pack_lookup(registry, entry), pack_commits=commits)
        report = workflow_report(entry, entry.workflow(), ctx)
        checks[entry.id] = report
        tagged += [{**f, "workflow": entry.id} for f in report["findings"]]
    return checks, tagged


def _models_view(
    files: tuple[ModelFile, ...], sees: dict[str, frozenset[str]], checksums: dict[str, str] | None
) -> dict[str, Any]:
    """Per folder: the files on disk (and whether ComfyUI lists each) and the names ComfyUI lists."""
    models: dict[str, Any] = {}
    for f in files:
        models.setdefault(f.folder, {"on_disk": [], "comfyui_lists": []})["on_disk"].append(
            {
                "name": f.name,
                "path": f.path,
                "size_bytes": f.size_bytes,
                "source": f.source,
                "seen_by_comfyui": f.scanned,
                **({"sha256": checksums[f.path]} if checksums and f.path in checksums else {}),
            }
        )
    for folder, names in sees.items():
        models.setdefault(folder, {"on_disk": [], "comfyui_lists": []})["comfyui_lists"] = sorted(names)
    return models


def diagnose(runtime: Runtime, request: DiagnoseRequest) -> dict[str, Any]:
    t0 = time.perf_counter()
    s = runtime.settings
    registry = runtime.registry
    if request.workflow is not None and registry.get(request.workflow) is None:
        raise JobError(
            "WORKFLOW_NOT_FOUND",
            f"no registered workflow {request.workflow!r}",
            {"registered": sorted(registry.entries)},
        )
    timings: dict[str, Any] = {}
    tree, raw_files, comfy = _scan_and_ask(runtime, timings)
    t = time.perf_counter()
    findings = worker_findings(runtime, comfy.reachable)
    findings += tree_findings(tree.folders, tree.files)
    findings += layout_findings(tree.layouts, str(s.volume_dir))
    findings += _model_list_failed(comfy.unlisted)

    checksums = None
    if request.checksums:
        checksums = _checksums(runtime, raw_files)
        t = lap(timings, "checksums_ms", t)
    files = tuple(
        ModelFile(folder, name, path, size, source, name in comfy.sees.get(folder, frozenset()))
        for folder, name, path, size, source in raw_files
    )
    index = ModelIndex(comfy.sees, files, checksums)
    if comfy.reachable:
        findings += unscanned_model_findings(files)
    disks, volume, disk_findings = _disks_and_volume(runtime)
    findings += disk_findings
    imports = tuple(parse_import_report(_log_text(runtime)))
    findings += import_findings(imports)
    t = lap(timings, "inspect_ms", t)

    workflow_checks: dict[str, Any] = {}
    tagged: list[dict[str, Any]] = []
    checked_nodes: dict[str, Any] = {}
    if comfy.reachable:
        workflow_checks, tagged = _workflow_checks(runtime, request, comfy.object_info, index, imports)
        checked_nodes = node_check(registry, comfy.object_info)
    t = lap(timings, "analysis_ms", t)

    dicts = [f.to_dict() for f in findings] + tagged
    result: dict[str, Any] = {
        "ok": comfy.reachable and not any(f["severity"] == "error" for f in dicts),
        "comfyui_reachable": comfy.reachable,
        **({"worker": runtime.state.snapshot()} if runtime.state is not None else {}),
        "confinement": runtime.confinement(),
        "system": {
            "handler_version": HANDLER_VERSION,
            **(comfy.stats.get("system") or {}),
            "devices": comfy.stats.get("devices", []),
        },
        "disks": disks,
        "volume": volume,
        "models": _models_view(files, comfy.sees, checksums),
        "custom_nodes": {"packs": [p.to_dict() for p in imports], "failed": [p.name for p in imports if p.failed]},
        "node_check": checked_nodes,
        "workflow_checks": workflow_checks,
        "findings": dicts,
        "summary": {
            "errors": sum(f["severity"] == "error" for f in dicts),
            "warnings": sum(f["severity"] == "warning" for f in dicts),
        },
        "timings": timings,
    }
    if not comfy.reachable or any(f["code"] == "PACK_IMPORT_FAILED" for f in dicts):
        result["logs_tail"] = runtime.logs_tail()
    timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return result
