"""`diagnose` mode: the deployment seen from inside — ComfyUI, disks, volume, models, packs, workflows.

Gathers facts (handler.facts holds the model scan, pack imports and the model-paths check; this
module adds disks, the volume and ComfyUI's state) and hands them to workflows.analysis, the same judge
the client and the image self-check use.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from comfyui_client import ComfyUnavailable
from comfyui_client.stats import system_summary
from handler import system_facts
from handler.config import HANDLER_VERSION
from handler.facts import (
    TreeFacts,
    check_model_paths,
    comfy_model_lists,
    file_facts,
    installed_commits,
    layout_root_facts,
    model_roots,
    off_layout_models_dirs,
    pack_commits,
    scan_model_files,
    sha256_or_none,
)
from handler.model_access import confined_user, unreadable_findings
from handler.model_cache import diagnose_section
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
from workflows.confinement import confinement_findings
from workflows.errors import CODES, JobError
from workflows.findings import Finding, Severity, error, warning
from workflows.model_tree import (
    layout_findings,
    tree_findings,
)
from workflows.models import (
    VOLUME_LAYOUTS,
    ModelFile,
    ModelIndex,
)
from workflows.request import DiagnoseRequest
from workflows.responses import DiagnoseResponse, diagnose_response
from workflows.startup_log import PackImport, parse_import_report
from workflows.timing import lap


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
        tree.folders += layout_root_facts(runtime)
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
        digests = zip(paths, pool.map(sha256_or_none, paths), strict=True)
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


@dataclass(frozen=True, slots=True)
class _HostInspection:
    """What diagnose learns besides the models: disks, volume, pack imports, the model cache's sources."""

    disks: list[dict[str, Any]]
    volume: dict[str, Any]
    imports: tuple[PackImport, ...]
    sources: dict[str, Any]  # diagnose's `model_sources`
    installed: dict[str, str]  # pack path -> its installed commit
    findings: list[Finding]

    def custom_nodes(self) -> dict[str, Any]:
        """diagnose's `custom_nodes`: each pack's import with its installed commit, and the failed ones."""
        return {
            "packs": [{**p.to_dict(), "commit": self.installed.get(p.path)} for p in self.imports],
            "failed": [p.name for p in self.imports if p.failed],
        }


def _inspect_host(runtime: Runtime, workflow: str | None) -> _HostInspection:
    """Disks and volume, the system's own answers, the startup log's pack imports, the model cache: their
    findings in that order."""
    disks, volume, findings = _disks_and_volume(runtime)
    findings += system_facts.findings(runtime)  # the system's answers, not the settings' beliefs
    imports = tuple(parse_import_report(_log_text(runtime)))
    findings += import_findings(imports)
    sources, cache_problems = diagnose_section(runtime, workflow)
    findings += cache_problems
    return _HostInspection(disks, volume, imports, sources, installed_commits(imports), findings)


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


def _require_registered(runtime: Runtime, workflow: str | None) -> None:
    registry = runtime.registry
    if workflow is not None and registry.get(workflow) is None:
        raise JobError(
            "WORKFLOW_NOT_FOUND", f"no registered workflow {workflow!r}", {"registered": sorted(registry.entries)}
        )


def diagnose(runtime: Runtime, request: DiagnoseRequest) -> DiagnoseResponse:
    """Scan, ask ComfyUI, judge: every finding with a fix; laps in `timings`."""
    t0 = time.perf_counter()
    registry = runtime.registry
    _require_registered(runtime, request.workflow)
    timings: dict[str, Any] = {}
    tree, raw_files, comfy = _scan_and_ask(runtime, timings)
    t = time.perf_counter()
    findings = worker_findings(runtime, comfy.reachable)
    confinement = runtime.confinement()
    findings += confinement_findings(confinement, os.geteuid())
    findings += tree_findings(tree.folders, tree.files)
    findings += unreadable_findings((p for _, _, p, _, _ in raw_files), confined_user(runtime))
    findings += layout_findings(tree.layouts, str(runtime.settings.volume_dir))
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
    host = _inspect_host(runtime, request.workflow)
    findings += host.findings
    t = lap(timings, "inspect_ms", t)

    workflow_checks: dict[str, Any] = {}
    tagged: list[dict[str, Any]] = []
    checked_nodes: dict[str, Any] = {}
    if comfy.reachable:
        workflow_checks, tagged = _workflow_checks(runtime, request, comfy.object_info, index, host.imports)
        checked_nodes = node_check(registry, comfy.object_info)
    t = lap(timings, "analysis_ms", t)

    dicts = [f.to_dict() for f in findings] + tagged
    result = diagnose_response(
        reachable=comfy.reachable,
        findings=dicts,
        worker=runtime.state.snapshot() if runtime.state is not None else None,
        system=system_summary(comfy.stats, HANDLER_VERSION),
        disks=host.disks,
        volume=host.volume,
        models=_models_view(files, comfy.sees, checksums),
        model_sources=host.sources,
        custom_nodes=host.custom_nodes(),
        node_check=checked_nodes,
        # every node class ComfyUI defines: what a client judges its own workflows against (`comfy-runpod ui`)
        node_classes=sorted(comfy.object_info) if comfy.reachable else [],
        workflow_checks=workflow_checks,
        timings=timings,
    )
    result["confinement"] = confinement
    if not comfy.reachable or any(f["code"] == "PACK_IMPORT_FAILED" for f in dicts):
        result["logs_tail"] = runtime.logs_tail()
    timings["total_ms"] = round((time.perf_counter() - t0) * 1000, 2)
    return result
