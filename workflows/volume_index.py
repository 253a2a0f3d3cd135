"""A network volume's S3 listing as the worker would see it: a ModelIndex, judged by workflows.analysis. Pure.

The client's `volume check` lists the volume over RunPod's S3-compatible API (object key = path on
the volume, https://docs.runpod.io/storage/s3-api) and hands the (key, size) pairs here. This module
decides which of them ComfyUI in the image would list — the directories extra_model_paths.yaml names
under each of VOLUME_LAYOUTS — and builds the same ModelIndex the worker's diagnose builds from its
disk, so the same analysis code gives the same codes, messages and fixes without a GPU.

Paths in findings are the worker's: `/runpod-volume/<key>`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from workflows.analysis import Context, model_findings, unscanned_model_findings, workflow_report
from workflows.findings import Finding, warning
from workflows.model_tree import in_models_tree, layout_findings, layouts_from_paths
from workflows.models import MODEL_EXTENSIONS, MODEL_FOLDERS, VOLUME_LAYOUTS, ModelFile, ModelIndex, canonical_folder
from workflows.registry import Registry

VOLUME_ROOT = "/runpod-volume"  # where RunPod mounts the volume in a serverless worker

# Directory under a layout -> the folder ComfyUI lists its files in (extra_model_paths.yaml: every
# folder by its own name, unet/clip as aliases, t2i_adapter under controlnet). A test compares this
# with the shipped yaml.
SCANNED_DIRS: Mapping[str, str] = {
    **{name: canonical_folder(name) for name in MODEL_FOLDERS},
    "t2i_adapter": "controlnet",
}

# RunPod keeps in-progress multipart uploads in this hidden folder on the volume (S3 API docs,
# "Known issues and limitations > Multipart uploads"): never model files.
UPLOADS_DIR = ".s3compat_uploads/"


@dataclass(frozen=True, slots=True)
class VolumeObject:
    key: str
    size_bytes: int


def is_model_key(key: str) -> bool:
    """A file (not a directory marker) with a model extension, outside RunPod's upload scratch folder."""
    if key.endswith("/") or key.startswith(UPLOADS_DIR):
        return False
    base = posixpath.basename(key)
    return not base.startswith(".") and posixpath.splitext(base)[1].lower() in MODEL_EXTENSIONS


def place(key: str) -> tuple[str, str, bool]:
    """(canonical folder, name as ComfyUI would list it, does ComfyUI in the image scan it?) for one key."""
    for layout in sorted(VOLUME_LAYOUTS, key=len, reverse=True):
        if key.startswith(layout + "/"):
            folder_dir, _, name = key[len(layout) + 1 :].partition("/")
            if name:
                scanned = folder_dir in SCANNED_DIRS
                return (SCANNED_DIRS[folder_dir] if scanned else canonical_folder(folder_dir)), name, scanned
    # Outside the layouts: name the file after the nearest known folder above it, so that
    # MODEL_IN_WRONG_FOLDER can say where it is (e.g. workspace/ComfyUI/models/loras/x.safetensors).
    parts = key.split("/")
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] in SCANNED_DIRS:
            return SCANNED_DIRS[parts[i]], "/".join(parts[i + 1 :]), False
    return (parts[-2] if len(parts) > 1 else ""), parts[-1], False


def volume_path(key: str, root: str = VOLUME_ROOT) -> str:
    return f"{root.rstrip('/')}/{key}"


def volume_index(objects: Iterable[VolumeObject], root: str = VOLUME_ROOT) -> ModelIndex:
    """The ModelIndex the worker would build with this volume mounted at `root` (no image models)."""
    files: list[ModelFile] = []
    sees: dict[str, set[str]] = {}
    for obj in objects:
        if not is_model_key(obj.key):
            continue
        folder, name, scanned = place(obj.key)
        files.append(ModelFile(folder, name, volume_path(obj.key, root), obj.size_bytes, "volume", scanned))
        if scanned:
            sees.setdefault(folder, set()).add(name)
    return ModelIndex({k: frozenset(v) for k, v in sees.items()}, tuple(files))


def layouts_present(objects: Iterable[VolumeObject]) -> list[str]:
    """The VOLUME_LAYOUTS that hold at least one object (directory markers count)."""
    keys = [o.key for o in objects]
    return [layout for layout in VOLUME_LAYOUTS if any(k.startswith(layout + "/") for k in keys)]


def judge_volume(
    objects: Sequence[VolumeObject], registry: Registry, workflows: Sequence[str] | None = None
) -> dict[str, Any]:
    """Findings for the selected registry workflows (all when None) against the volume's contents.

    Only the model findings: node classes and values need ComfyUI's /object_info, which a volume
    listing can't give. MODEL_HASH_MISMATCH needs the bytes: `diagnose --checksums` on a worker.
    """
    index = volume_index(objects)
    # As the worker's diagnose: a models tree outside the layouts is one MODEL_LAYOUT_NOT_SCANNED, not
    # a MODEL_NOT_SEEN per file in it; any other file ComfyUI won't list is MODEL_NOT_SEEN.
    trees = layouts_from_paths(o.key for o in objects)
    loose = [f for f in index.on_disk if not in_models_tree(f.path[len(VOLUME_ROOT) + 1 :], trees)]
    findings = [f.to_dict() for f in (*layout_findings(trees, VOLUME_ROOT), *unscanned_model_findings(loose))]
    ids = list(workflows) if workflows else sorted(registry.entries)
    checks: dict[str, Any] = {}
    tagged: list[dict[str, Any]] = []
    for wid in ids:
        entry = registry.entries[wid]
        workflow = entry.workflow()
        ctx = Context({}, index)
        report = workflow_report(entry, workflow, ctx, findings=model_findings(workflow, ctx, entry))
        del report["nodes"], report["missing_nodes"], report["invalid_values"]
        checks[wid] = report
        tagged += [{**f, "workflow": wid} for f in report["findings"]]
    models: dict[str, Any] = {}
    for f in index.on_disk:
        models.setdefault(f.folder or "(none)", []).append(
            {"name": f.name, "path": f.path, "size_bytes": f.size_bytes, "seen_by_comfyui": f.scanned}
        )
    all_findings = findings + tagged
    summary = {s: sum(1 for f in all_findings if f["severity"] == s) for s in ("error", "warning", "info")}
    return {
        "ok": summary["error"] == 0,
        "layouts": layouts_present(objects),
        "models": models,
        "workflow_checks": checks,
        "findings": all_findings,
        "summary": summary,
    }


def _first_five(mount: str, paths: Sequence[str]) -> str:
    return ", ".join(mount + p for p in paths[:5]) + (" …" if len(paths) > 5 else "")


def view_mismatch(worker: Mapping[str, Any], volume: Mapping[str, Any], volume_id: str = "") -> list[Finding]:
    """Where the worker's diagnose and the volume check disagree about the same volume.

    worker: a worker diagnose response (its `volume` and `models` blocks); volume: `judge_volume`'s
    result (its `models` block). A model file on the volume that the worker doesn't have under its
    volume mount means the endpoint has no volume, another volume, or mounts it elsewhere.
    """
    name = f"volume {volume_id}" if volume_id else "the volume"
    on_volume = {m["path"]: m["size_bytes"] for group in (volume.get("models") or {}).values() for m in group}
    mount = str((worker.get("volume") or {}).get("path") or VOLUME_ROOT).rstrip("/")
    # Compare paths relative to the mounts, so a worker with RUNPOD_VOLUME_DIR elsewhere still matches.
    rel_volume = {p[len(VOLUME_ROOT) :]: s for p, s in on_volume.items()}
    rel_worker = _worker_volume_files(worker, mount)
    if not (worker.get("volume") or {}).get("mounted", True) and rel_volume:
        return [
            warning(
                "VOLUME_VIEW_MISMATCH",
                f"{name} holds {len(rel_volume)} model file(s), but the worker has no volume at {mount}.",
                f"Attach {name} to the endpoint (Manage > Edit endpoint > Advanced > Network volume); "
                "the endpoint's workers must run in the volume's datacenter.",
                path=mount,
            )
        ]
    return _differences(name, mount, rel_worker, rel_volume)


def _worker_volume_files(worker: Mapping[str, Any], mount: str) -> dict[str, Any]:
    """The model files the worker's diagnose found on its volume: path below the mount -> size."""
    on_worker = {
        m.get("path"): m.get("size_bytes")
        for group in (worker.get("models") or {}).values()
        if isinstance(group, dict)
        for m in group.get("on_disk") or []
        if isinstance(m, dict) and m.get("source") == "volume"
    }
    return {str(p)[len(mount) :]: s for p, s in on_worker.items() if str(p).startswith(mount + "/")}


def _differences(name: str, mount: str, rel_worker: Mapping[str, Any], rel_volume: Mapping[str, Any]) -> list[Finding]:
    """Files on one side only (within the scanned layouts), and files whose sizes differ."""
    findings: list[Finding] = []
    unseen = sorted(set(rel_volume) - set(rel_worker))
    # The worker scans only the layouts; a file elsewhere on the volume is not on its list either.
    unseen = [p for p in unseen if any(p.startswith(f"/{layout}/") for layout in VOLUME_LAYOUTS)]
    if unseen:
        shown = _first_five(mount, unseen)
        findings.append(
            warning(
                "VOLUME_VIEW_MISMATCH",
                f"{len(unseen)} model file(s) on {name} are not on the worker's disk: {shown}.",
                f"The endpoint is attached to another volume or mounts it elsewhere: attach {name} "
                f"(mounted at {VOLUME_ROOT}) and run diagnose again.",
                path=mount + unseen[0],
            )
        )
    extra = sorted(set(rel_worker) - set(rel_volume))
    if extra:
        shown = _first_five(mount, extra)
        findings.append(
            warning(
                "VOLUME_VIEW_MISMATCH",
                f"The worker's volume holds {len(extra)} model file(s) that {name} does not: {shown}.",
                f"The endpoint uses a different network volume than {name}: check the endpoint's volume id.",
                path=mount + extra[0],
            )
        )
    differ = sorted(p for p in set(rel_worker) & set(rel_volume) if rel_worker[p] != rel_volume[p])
    if differ:
        p = differ[0]
        findings.append(
            warning(
                "VOLUME_VIEW_MISMATCH",
                f"{len(differ)} file(s) differ in size between the worker and {name}, e.g. {mount + p}: "
                f"{rel_worker[p]:,} vs {rel_volume[p]:,} bytes (a copy still in progress, or another volume).",
                "Wait for running uploads to finish, then run diagnose and volume check again.",
                path=mount + p,
            )
        )
    return findings
