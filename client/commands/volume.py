"""`volume check | ls | push`: a RunPod network volume over its S3-compatible API — no worker, no GPU.

The judgement is the worker's: workflows.volume_index turns the listing into the ModelIndex the
worker would build and workflows.analysis judges it. `push` plans here (registry checks: name, size,
place, before a byte moves) and hands the files to client.s3.transfer; the S3 calls are client.s3.adapter's.
Nothing here deletes an object (the only removal: AbortMultipartUpload of push's own upload of a file
whose sha256 is refused); an object is replaced only with --replace. Data in, data out: nothing printed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from client.config import VolumeTarget
from client.errors import EXIT_FAILED, EXIT_OK, UsageError
from client.s3.adapter import DEFAULT_PART, DEFAULT_WORKERS, MB, PART_MAX, PART_MIN, list_objects
from client.s3.transfer import HashCache, PartSink, ProgressSink, PushItem, upload
from workflows.models import MODEL_EXTENSIONS, MODEL_FOLDERS, VOLUME_LAYOUTS, canonical_folder
from workflows.registry import ModelSpec, Registry
from workflows.volume_index import SCANNED_DIRS, VolumeObject, is_model_key, judge_volume, layouts_present, place

# ---------------------------------------------------------------------------------------------
# check and ls
# ---------------------------------------------------------------------------------------------


def check(
    client: Any, target: VolumeTarget, registry: Registry, workflows: Sequence[str] = ()
) -> tuple[dict[str, Any], int]:
    """The volume judged against the registry (the selected workflows, else all): (report, exit code)."""
    unknown = [w for w in workflows if w not in registry.entries]
    if unknown:
        raise UsageError(
            f"no registered workflow {unknown[0]!r} (known: {', '.join(sorted(registry.entries))})",
            code="WORKFLOW_NOT_FOUND",
        )
    t0 = time.perf_counter()
    objects = list_objects(client, target.volume_id)
    listed = time.perf_counter()
    report = judge_volume(objects, registry, list(workflows) or None)
    done = time.perf_counter()
    data = {
        "volume": target.describe(),
        "objects": len(objects),
        "total_bytes": sum(o.size_bytes for o in objects),
        **report,
        "timings": {"list_ms": round((listed - t0) * 1000, 1), "analysis_ms": round((done - listed) * 1000, 1)},
    }
    return data, EXIT_OK if report["ok"] else EXIT_FAILED


def ls(client: Any, target: VolumeTarget, prefix: str = "") -> dict[str, Any]:
    """Every object under `prefix` with its size, and the total per top-level directory."""
    objects = list_objects(client, target.volume_id, prefix)
    files = [o for o in objects if not o.key.endswith("/")]
    dirs: dict[str, int] = {}
    for o in files:
        rel = o.key[len(prefix) :].lstrip("/")
        top = rel.split("/", 1)[0] + ("/" if "/" in rel else "")
        dirs[top] = dirs.get(top, 0) + o.size_bytes
    return {
        "volume": target.describe(),
        "prefix": prefix,
        "files": len(files),
        "total_bytes": sum(o.size_bytes for o in files),
        "top_level": dict(sorted(dirs.items())),
        "objects": [{"key": o.key, "size_bytes": o.size_bytes} for o in sorted(objects, key=lambda o: o.key)],
    }


# ---------------------------------------------------------------------------------------------
# push: plan (pure apart from hashing local files) and upload
# ---------------------------------------------------------------------------------------------


def local_files(paths: Sequence[str]) -> list[Path]:
    """Files named, and model files below directories named (sorted, once each)."""
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and file.suffix.lower() in MODEL_EXTENSIONS and not file.name.startswith("."):
                    found[file.resolve()] = None
        else:
            raise UsageError(f"{raw}: no such file or directory", code="PUSH_PATH_MISSING")
    return list(found)


def _specs_by_basename(registry: Registry, workflows: Sequence[str]) -> dict[str, list[ModelSpec]]:
    out: dict[str, list[ModelSpec]] = {}
    for wid in workflows or sorted(registry.entries):
        for spec in registry.entries[wid].models:
            group = out.setdefault(spec.name.rsplit("/", 1)[-1], [])
            if all((s.folder, s.name) != (spec.folder, spec.name) for s in group):
                group.append(spec)
    return out


def plan_push(
    files: Sequence[Path],
    objects: Sequence[VolumeObject],
    registry: Registry,
    *,
    workflows: Sequence[str] = (),
    layout: str | None = None,
    folder: str | None = None,
    replace: bool = False,
    hashes: HashCache | None = None,
) -> tuple[list[PushItem], str]:
    """What a push would do with each local file, checked against the registry (name, size, place) before a byte moves.

    hashes None: the sha256 checks are left to `upload` (item.expect_sha256), which runs them beside
    the transfer, each before that file becomes visible on the volume.
    """
    layout = layout or next(iter(layouts_present([o for o in objects if is_model_key(o.key)])), VOLUME_LAYOUTS[0])
    remote = {o.key: o.size_bytes for o in objects}
    seen_at: dict[tuple[str, str], list[str]] = {}  # (folder, name) ComfyUI would list -> keys
    for o in objects:
        if is_model_key(o.key):
            f, name, scanned = place(o.key)
            if scanned:
                seen_at.setdefault((f, name), []).append(o.key)
    specs = _specs_by_basename(registry, workflows)
    items: list[PushItem] = []
    for file in files:
        size = file.stat().st_size
        matches = specs.get(file.name, [])
        if not matches:
            if folder is None:
                items.append(
                    PushItem(
                        str(file),
                        "",
                        size,
                        "refused",
                        code="PUSH_NOT_IN_REGISTRY",
                        message=f"{file.name} is not a model of the selected registry workflows, so its place "
                        "and checksum are unknown.",
                        fix="Pass --folder <model folder> (e.g. loras) to upload it unchecked, or add it to the "
                        "workflow's registry entry with size_bytes and sha256.",
                    )
                )
                continue
            key = f"{layout}/{folder}/{file.name}"
            listed = seen_at.get((canonical_folder(folder), file.name))
            items.append(_unregistered(file, key, size, remote, listed, replace))
            continue
        for spec in matches:
            items.append(_registered(file, size, spec, layout, remote, seen_at, replace, hashes))
    # The same destination twice (two local copies of one model): keep the first.
    unique: dict[str, PushItem] = {}
    for item in items:
        if item.key and item.key in unique and unique[item.key].action != "refused":
            continue
        unique[item.key or item.local] = item
    return list(unique.values()), layout


def _unregistered(
    file: Path, key: str, size: int, remote: Mapping[str, int], listed: list[str] | None, replace: bool
) -> PushItem:
    for existing in [key, *(listed or [])]:
        if remote.get(existing) == size:
            return PushItem(str(file), existing, size, "present")
    item = PushItem(str(file), key, size, "upload")
    if key in remote:
        if not replace:
            return _would_replace(item, remote[key], size)
        item.replaces = remote[key]
    return item


def _would_replace(item: PushItem, existing: int, want: int) -> PushItem:
    item.action, item.code = "refused", "PUSH_WOULD_REPLACE"
    item.message = f"{item.key} exists on the volume with {existing:,} bytes, not {want:,} (an interrupted copy?)."
    item.fix = "Pass --replace to overwrite it with the local file."
    return item


def _registered(
    file: Path,
    size: int,
    spec: ModelSpec,
    layout: str,
    remote: Mapping[str, int],
    seen_at: Mapping[tuple[str, str], list[str]],
    replace: bool,
    hashes: HashCache | None,
) -> PushItem:
    key = f"{layout}/{spec.folder}/{spec.name}"
    want = spec.size_bytes if spec.size_bytes is not None else size
    for existing in seen_at.get((spec.folder, spec.name), []):
        if remote[existing] == want:
            return PushItem(str(file), existing, size, "present", "size")
    if spec.size_bytes is not None and size != spec.size_bytes:
        return PushItem(
            str(file),
            key,
            size,
            "refused",
            code="PUSH_SIZE_MISMATCH",
            message=f"{file} is {size:,} bytes; the registry expects {spec.size_bytes:,} for {spec.name} "
            "(truncated download?).",
            fix="Download it again" + (f" from {spec.url}" if spec.url else "") + ", then push.",
        )
    verified = "size" if spec.size_bytes is not None else ""
    if spec.sha256 and hashes is not None:
        digest = hashes.sha256(file)
        if digest != spec.sha256:
            refused = PushItem(str(file), key, size, "upload")
            refused.refuse_hash(digest, spec.sha256, spec.url)
            return refused
        verified = "sha256+size"
    item = PushItem(str(file), key, size, "upload", verified)
    if spec.sha256 and hashes is None:
        item.expect_sha256, item.url = spec.sha256, spec.url
    if key in remote:
        if not replace:
            return _would_replace(item, remote[key], want)
        item.replaces = remote[key]
    return item


def push(
    client: Any,
    target: VolumeTarget,
    registry: Registry,
    paths: Sequence[str],
    *,
    workflows: Sequence[str] = (),
    layout: str | None = None,
    folder: str | None = None,
    dry_run: bool = False,
    replace: bool = False,
    part_size: int = DEFAULT_PART,
    workers: int = DEFAULT_WORKERS,
    hash_cache: Path | None = None,
    progress: Callable[[int], ProgressSink] | None = None,
    on_part: PartSink | None = None,
) -> tuple[dict[str, Any], int]:
    """Plan (registry checks first), then upload what is missing, each file's sha256 checked before its
    upload completes. (report, exit code: 1 if any refused)."""
    _check_push_args(registry, workflows, layout, folder, part_size)
    t0 = time.perf_counter()
    files = local_files(paths)
    objects = list_objects(client, target.volume_id)
    items, chosen = plan_push(
        files,
        objects,
        registry,
        workflows=workflows,
        layout=layout,
        folder=folder,
        replace=replace,
        hashes=HashCache(hash_cache) if dry_run else None,
    )
    planned = time.perf_counter()
    todo = [i for i in items if i.action == "upload"]
    if todo and not dry_run:
        sink = progress(sum(i.size_bytes for i in todo)) if progress else None
        upload(
            client,
            target.volume_id,
            todo,
            part_size=part_size,
            workers=workers,
            on_bytes=sink,
            on_part=on_part,
            hashes=HashCache(hash_cache),
        )
    data = _push_report(target, items, chosen, dry_run, plan_s=planned - t0, upload_s=time.perf_counter() - planned)
    return data, EXIT_FAILED if data["summary"]["refused"] else EXIT_OK


def _check_push_args(
    registry: Registry, workflows: Sequence[str], layout: str | None, folder: str | None, part_size: int
) -> None:
    """Bad usage is refused before the volume is listed or a file read."""
    unknown = [w for w in workflows if w not in registry.entries]
    if unknown:
        raise UsageError(f"no registered workflow {unknown[0]!r}", code="WORKFLOW_NOT_FOUND")
    if layout is not None and layout not in VOLUME_LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(VOLUME_LAYOUTS)}")
    if folder is not None and folder not in SCANNED_DIRS:
        raise UsageError(f"--folder {folder!r} is not a folder the image scans ({', '.join(MODEL_FOLDERS)})")
    if not PART_MIN <= part_size <= PART_MAX:
        raise UsageError(f"the part size must be between {PART_MIN:,} and {PART_MAX:,} bytes")


def _push_report(
    target: VolumeTarget, items: Sequence[PushItem], layout: str, dry_run: bool, *, plan_s: float, upload_s: float
) -> dict[str, Any]:
    """The push's data: every item, the summary, the timings (upload time and rate only when bytes moved)."""
    todo = [i for i in items if i.action in ("upload", "uploaded")]
    to_send = sum(i.size_bytes for i in todo)
    moved = bool(todo) and not dry_run
    return {
        "volume": target.describe(),
        "dry_run": dry_run,
        "layout": layout,
        "items": [i.to_dict() for i in items],
        "summary": {
            "files": len(items),
            "upload": len(todo),
            "upload_bytes": to_send,
            "present": sum(i.action == "present" for i in items),
            "refused": sum(i.action == "refused" for i in items),
        },
        "timings": {
            "plan_s": round(plan_s, 3),
            "upload_s": round(upload_s, 3) if moved else 0.0,
            "rate_mb_s": round(to_send / MB / upload_s, 1) if moved and upload_s > 0 else None,
        },
    }


def load_volume_report(path: str) -> dict[str, Any]:
    """A saved `volume check --json` (the envelope or its result), for `diagnose --volume-report`."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"--volume-report {path}: {exc}", code="VOLUME_REPORT_INVALID") from None
    data = data.get("result", data) if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise UsageError(
            f"--volume-report {path} is not the output of `volume check --json`", code="VOLUME_REPORT_INVALID"
        )
    return data
