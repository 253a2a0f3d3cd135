"""`diagnose` mode: the deployment seen from inside — ComfyUI, disks, volume, models, packs, workflows.

Collects facts (the only I/O) and hands them to workflows.analysis, the same judge the client and
the image self-check use.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from comfyui_client import ComfyUnavailable
from handler.config import HANDLER_VERSION
from handler.runtime import Runtime
from workflows.analysis import (
    Context,
    import_findings,
    node_check,
    pack_lookup,
    unscanned_model_findings,
    workflow_report,
)
from workflows.errors import JobError
from workflows.findings import Finding, Severity, error, warning
from workflows.models import FOLDER_ALIASES, MODEL_EXTENSIONS, VOLUME_LAYOUTS, ModelFile, ModelIndex, canonical_folder
from workflows.request import DiagnoseRequest
from workflows.startup_log import parse_import_report


def _walk(folder_dir: Path) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative name, entry) for every model file below a folder, following no symlinked dirs loops."""
    stack = [(folder_dir, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
                    elif os.path.splitext(entry.name)[1].lower() in MODEL_EXTENSIONS:
                        yield prefix + entry.name, entry
        except OSError:
            continue


def model_roots(runtime: Runtime) -> list[tuple[str, Path]]:
    """(source, models dir) for the image and each volume layout that exists."""
    s = runtime.settings
    roots = [("image", s.comfy_dir / "models")]
    roots += [("volume", s.volume_dir / sub) for sub in VOLUME_LAYOUTS if (s.volume_dir / sub).is_dir()]
    return [(src, path) for src, path in roots if path.is_dir()]


def scan_model_files(roots: list[tuple[str, Path]]) -> list[tuple[str, str, str, int, str]]:
    """(canonical folder, name, path, size, source) for every model file under the roots."""
    found = []
    for source, root in roots:
        try:
            folders = [e for e in os.scandir(root) if e.is_dir()]
        except OSError:
            continue
        for folder in folders:
            canonical = canonical_folder(folder.name)
            for name, entry in _walk(Path(folder.path)):
                try:
                    size = entry.stat().st_size
                except OSError:
                    continue
                found.append((canonical, name, entry.path, size, source))
    return found


def _list_or_none(runtime: Runtime, folder: str) -> list[str] | None:
    try:
        return runtime.comfy.models(folder)
    except ComfyUnavailable:
        return None  # ComfyUI answers 500 when a scanned directory vanished after it was cached


def comfy_model_lists(runtime: Runtime) -> tuple[dict[str, frozenset[str]], list[str]]:
    """(folder -> names ComfyUI lists, folders ComfyUI failed to list)."""
    folders = runtime.comfy.model_folders()
    wanted = [f for f in folders if f not in FOLDER_ALIASES]  # aliases list the same files
    with ThreadPoolExecutor(max_workers=8) as pool:
        lists = dict(zip(wanted, pool.map(lambda f: _list_or_none(runtime, f), wanted), strict=True))
    failed = sorted(k for k, v in lists.items() if v is None)
    return {canonical_folder(k): frozenset(v or ()) for k, v in lists.items()}, failed


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
    timings: dict[str, float] = {}
    findings: list[Finding] = []

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round((now - since) * 1000, 2)
        return now

    # ComfyUI: stats, node definitions and model lists, fetched in parallel with the disk scan.
    with ThreadPoolExecutor(max_workers=3) as pool:
        stats_f = pool.submit(runtime.comfy.system_stats, 2.0)
        info_f = pool.submit(runtime.comfy.object_info)
        lists_f = pool.submit(comfy_model_lists, runtime)
        t = time.perf_counter()
        roots = model_roots(runtime)
        raw_files = scan_model_files(roots)
        t = lap("disk_scan_ms", t)
        try:
            stats, object_info, (comfy_sees, unlisted) = stats_f.result(), info_f.result(), lists_f.result()
            reachable = True
        except (ComfyUnavailable, ValueError, OSError):
            stats, object_info, comfy_sees, unlisted, reachable = {}, {}, {}, [], False
        t = lap("comfyui_ms", t)
    if not reachable:
        findings.append(
            error(
                "COMFY_NOT_READY",
                f"ComfyUI at {s.comfy_url} is not answering.",
                "See logs_tail for the start-up error (missing dependency, CUDA/OOM, port in use).",
            )
        )

    findings += [
        error(
            "MODEL_LIST_FAILED",
            f"ComfyUI fails to list its {folder!r} models (HTTP 500): a directory "
            "it scans disappeared after start-up (network volume unmounted or a folder deleted).",
            "Restore the directory or restart the worker so ComfyUI rescans its model paths; loaders of "
            "this folder are missing from /object_info until then.",
        )
        for folder in unlisted
    ]

    checksums = None
    if request.checksums:
        wanted = {m.name.rsplit("/", 1)[-1] for e in registry.entries.values() for m in e.models if m.sha256}
        paths = [path for _, name, path, _, _ in raw_files if name.rsplit("/", 1)[-1] in wanted]
        with ThreadPoolExecutor(max_workers=4) as pool:
            checksums = dict(zip(paths, pool.map(_sha256, paths), strict=True))
        t = lap("checksums_ms", t)

    files = tuple(
        ModelFile(folder, name, path, size, source, name in comfy_sees.get(folder, frozenset()))
        for folder, name, path, size, source in raw_files
    )
    index = ModelIndex(comfy_sees, files, checksums)
    if reachable:
        findings += unscanned_model_findings(files)

    disks, volume = [], {"mounted": s.volume_dir.is_dir(), "path": str(s.volume_dir), "layouts": []}
    for label, path, is_error in (
        ("container", Path("/"), False),
        ("output", s.output_dir, True),
        *((("volume", s.volume_dir, False),) if volume["mounted"] else ()),
    ):
        info, disk_findings = _disk(label, path, s.disk_low_gb, is_error)
        disks.append(info)
        findings += disk_findings
    volume["layouts"] = [sub for sub in VOLUME_LAYOUTS if (s.volume_dir / sub).is_dir()]
    if not volume["mounted"]:
        findings.append(
            Finding(
                "VOLUME_NOT_MOUNTED",
                Severity.INFO,
                f"No network volume at {s.volume_dir}.",
                "Attach a network volume to the endpoint if your models live there.",
                path=str(s.volume_dir),
            )
        )

    try:
        log_text = s.comfy_log.read_text(errors="replace")
    except OSError:
        log_text = ""
    imports = tuple(parse_import_report(log_text))
    findings += import_findings(imports)
    t = lap("inspect_ms", t)

    workflow_checks: dict[str, Any] = {}
    tagged: list[dict[str, Any]] = []
    checked_nodes: dict[str, Any] = {}
    if reachable:
        entries = [registry.entries[request.workflow]] if request.workflow else list(registry.entries.values())
        for entry in entries:
            ctx = Context(object_info, index, imports, pack_lookup(registry, entry))
            report = workflow_report(entry, entry.workflow(), ctx)
            workflow_checks[entry.id] = report
            tagged += [{**f, "workflow": entry.id} for f in report["findings"]]
        checked_nodes = node_check(registry, object_info)
    t = lap("analysis_ms", t)

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
    for folder, names in comfy_sees.items():
        models.setdefault(folder, {"on_disk": [], "comfyui_lists": []})["comfyui_lists"] = sorted(names)

    dicts = [f.to_dict() for f in findings] + tagged
    result: dict[str, Any] = {
        "ok": reachable and not any(f["severity"] == "error" for f in dicts),
        "comfyui_reachable": reachable,
        "system": {
            "handler_version": HANDLER_VERSION,
            **(stats.get("system") or {}),
            "devices": stats.get("devices", []),
        },
        "disks": disks,
        "volume": volume,
        "models": models,
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
    if not reachable or any(f["code"] in ("PACK_IMPORT_FAILED",) for f in dicts):
        result["logs_tail"] = runtime.logs_tail()
    timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return result
