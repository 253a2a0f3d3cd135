"""RunPod's model cache on this worker: find the registered models in it and show them to ComfyUI.

At start, before ComfyUI is spawned, `link_cached_models` looks up every registered model whose URL
names a Hugging Face file in the cache (workflows/hf_cache.py says where), and links each one found
into a worker-owned directory (`MODEL_CACHE_LINKS_DIR`, default `$COMFY_DIR/models-cache`) as
`<folder>/<name>`: the folder and file name the workflows use. The image's extra_model_paths.yaml
lists that directory (entry `runpod_model_cache`) between the image's models and the network
volume's, so ComfyUI 0.3.75's folder_paths lists and loads them with no copy and no generated
config. Why links and not extra_model_paths entries pointing into the snapshots: a snapshot's tree
is the repository's (split_files/vae/ae.safetensors), not ComfyUI's folders, and a workflow's file
name may differ from the repository's.

Only stat, readlink and symlink calls: no model byte is read, so this costs milliseconds.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workflows.findings import Finding, warning
from workflows.hf_cache import SOURCES, CacheLookup, LookupState, hf_file, lookup_findings, workflow_sources
from workflows.load_log import first_device_loads
from workflows.models import FOLDER_ALIASES, VOLUME_LAYOUTS
from workflows.registry import ModelSpec, Registry
from workflows.revisions import is_commit

if TYPE_CHECKING:
    from handler.runtime import Runtime


def lookup(cache_dir: Path, model: ModelSpec) -> CacheLookup | None:
    """Where one registered model is in the cache; None when its URL names no Hugging Face file."""
    hf = hf_file(model.url)
    if hf is None:
        return None
    repo_dir = cache_dir / hf.repo_dir
    if not repo_dir.is_dir():
        return CacheLookup(model.folder, model.name, hf, "no_repo")
    incomplete = _incomplete_blobs(repo_dir)
    commit = hf.revision if is_commit(hf.revision) else _read_ref(repo_dir, hf.revision)
    if commit is None and not _has_refs(repo_dir):  # downloaded by commit: no refs/ at all, one snapshot
        commit = _only_snapshot(repo_dir)
    same = _blob_of_sha256(repo_dir, model.sha256)
    if commit is None or not (repo_dir / "snapshots" / commit).is_dir():
        if same is not None:  # another revision is cached, holding the very bytes the registry names
            return CacheLookup(model.folder, model.name, hf, "cached", str(same), str(same), same.stat().st_size)
        state: LookupState = "incomplete" if incomplete else "no_revision"
        return CacheLookup(model.folder, model.name, hf, state, incomplete=incomplete)
    snapshot = repo_dir / "snapshots" / commit / hf.path
    if not os.path.lexists(snapshot):
        if same is not None:
            return CacheLookup(model.folder, model.name, hf, "cached", str(same), str(same), same.stat().st_size)
        state = "incomplete" if incomplete else "not_in_snapshot"
        return CacheLookup(model.folder, model.name, hf, state, str(snapshot), incomplete=incomplete)
    try:
        target = snapshot.resolve(strict=True)
        size = target.stat().st_size
        inside = target.is_file() and target.is_relative_to(repo_dir.resolve(strict=True))
    except (OSError, RuntimeError):  # a dangling link (or a link loop): the blob never arrived
        return CacheLookup(model.folder, model.name, hf, "dangling", str(snapshot), incomplete=incomplete)
    if not inside:  # a link out of the repository (or to a folder) is no file huggingface_hub wrote: not served
        return CacheLookup(model.folder, model.name, hf, "outside", str(snapshot), incomplete=incomplete)
    return CacheLookup(model.folder, model.name, hf, "cached", str(snapshot), str(target), size, incomplete)


def _blob_of_sha256(repo_dir: Path, sha256: str | None) -> Path | None:
    """The finished LFS blob whose name is the registry's sha256 (huggingface_hub names an LFS blob by
    it): a model pinned to one commit is served from a repository cached at another (RunPod caches the
    branch) when the bytes are the same. None without a sha256, or when the blob is not a file inside
    the repository."""
    if not sha256:
        return None
    try:
        blob = (repo_dir / "blobs" / sha256).resolve(strict=True)
        return blob if blob.is_file() and blob.is_relative_to(repo_dir.resolve(strict=True)) else None
    except (OSError, RuntimeError):
        return None


def _read_ref(repo_dir: Path, revision: str) -> str | None:
    """The commit a branch or tag points at (refs/<revision>, as huggingface_hub writes it)."""
    if ".." in revision.split("/") or revision.startswith("/"):
        return None
    try:
        commit = (repo_dir / "refs" / revision).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return commit if is_commit(commit) else None


def _has_refs(repo_dir: Path) -> bool:
    try:
        return any(p.is_file() for p in (repo_dir / "refs").rglob("*"))
    except OSError:
        return False


def _only_snapshot(repo_dir: Path) -> str | None:
    try:
        snapshots = [p.name for p in (repo_dir / "snapshots").iterdir() if p.is_dir() and is_commit(p.name)]
    except OSError:
        return None
    return snapshots[0] if len(snapshots) == 1 else None


def _incomplete_blobs(repo_dir: Path) -> tuple[str, ...]:
    try:
        return tuple(sorted(str(p) for p in (repo_dir / "blobs").glob("*.incomplete")))
    except OSError:
        return ()


@dataclass
class CacheReport:
    """What the start found in the cache and linked: read by `test` and `diagnose`."""

    cache_dir: str
    links_dir: str
    present: bool  # the cache directory exists
    lookups: list[CacheLookup] = field(default_factory=list)
    linked: dict[tuple[str, str], str] = field(default_factory=dict)  # (folder, name) -> link path
    problems: list[str] = field(default_factory=list)  # links that could not be made
    ms: float = 0.0
    _summary: tuple[float, dict[str, Any]] | None = field(default=None, repr=False)  # test's, with its time

    def to_dict(self) -> dict[str, Any]:
        return {
            "dir": self.cache_dir,
            "present": self.present,
            "links_dir": self.links_dir,
            "repos": sorted({lk.file.repo for lk in self.lookups if lk.state != "no_repo"}),
            "linked": len(self.linked),
            "lookups": {
                f"{lk.folder}/{lk.name}": {"repo": lk.file.repo, "state": lk.state, "path": lk.blob_path or None}
                for lk in self.lookups
            },
            **({"problems": self.problems} if self.problems else {}),
            "ms": self.ms,
        }


def link_cached_models(cache_dir: Path, links_dir: Path, registry: Registry) -> CacheReport:
    """Link every registered model found in the cache into `links_dir/<folder>/<name>`; links left from
    an earlier start are removed first (the cache may have changed). Never raises: what fails is a
    problem in the report (and the model is then served from elsewhere, or missing)."""
    try:
        return _link_all(cache_dir, links_dir, registry)
    except Exception as exc:  # the start must never fail because of the cache: whatever slipped through
        report = CacheReport(str(cache_dir), str(links_dir), False)
        report.problems.append(f"the model cache could not be looked up: {type(exc).__name__}: {exc}")
        return report


def _link_all(cache_dir: Path, links_dir: Path, registry: Registry) -> CacheReport:
    t0 = time.perf_counter()
    unreadable = None
    try:
        present = cache_dir.is_dir()
    except OSError as exc:  # is_dir lets EACCES through: an unreadable mount is no cache to serve from
        present, unreadable = False, f"{cache_dir}: the cache can't be read: {_why(exc)}"
    report = CacheReport(str(cache_dir), str(links_dir), present)
    if unreadable:
        report.problems.append(unreadable)
    cleared = True
    try:
        _clear_links(links_dir)
    except OSError as exc:  # then no link is made either: the old ones would be in the way (or the dir is a link)
        cleared = False
        report.problems.append(f"{links_dir}: old links can't be removed: {exc.strerror or exc}")
    seen: set[tuple[str, str]] = set()
    models = [m for e in registry.entries.values() for m in e.models] if present else []
    for model in models:
        if (model.folder, model.name) in seen:
            continue
        seen.add((model.folder, model.name))
        try:
            found = lookup(cache_dir, model)
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the registry's name or URL path (os.stat's)
            report.problems.append(f"{model.folder}/{model.name}: the cache can't be read: {_why(exc)}")
            continue
        if found is not None:
            report.lookups.append(found)
            if found.state == "cached" and cleared:
                _link(report, links_dir, model, found.blob_path)
    report.ms = round((time.perf_counter() - t0) * 1000, 2)
    return report


def _link(report: CacheReport, links_dir: Path, model: ModelSpec, target: str) -> None:
    if not _inside(model.name):
        report.problems.append(f"{model.folder}/{model.name}: the name leaves its folder (.. or absolute)")
        return
    link = links_dir / model.folder / model.name
    try:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target)
        report.linked[(model.folder, model.name)] = str(link)
    except (OSError, ValueError) as exc:
        report.problems.append(f"{link}: {_why(exc)}")


def _why(exc: Exception) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _inside(name: str) -> bool:
    """A registry name stays inside its folder (no absolute path, no `..`): the link can't land elsewhere."""
    return not name.startswith("/") and ".." not in name.replace("\\", "/").split("/")


def _clear_links(links_dir: Path) -> None:
    """Remove the symlinks (and then empty folders) a previous start left; never a regular file. os.walk
    does not descend into linked folders, but it does list a linked top: a links dir that is itself a
    link is refused (OSError, a CACHE_LINK_FAILED problem), so nothing outside it is ever touched."""
    if links_dir.is_symlink():
        raise OSError(f"{links_dir} is a symlink (to {os.readlink(links_dir)}): not clearing through it")
    if not links_dir.is_dir():
        return
    for root, dirs, files in os.walk(links_dir, topdown=False):
        for name in files + dirs:
            path = os.path.join(root, name)
            if os.path.islink(path):
                os.unlink(path)
        if root != str(links_dir):
            with contextlib.suppress(OSError):
                os.rmdir(root)


def on_disk(
    comfy_dir: Path, volume_dir: Path, report: CacheReport | None, registry: Registry
) -> dict[str, dict[tuple[str, str], str]]:
    """source -> (folder, name) -> path for every registered model: a stat per model and layout, no walk."""
    wanted = {(m.folder, m.name) for e in registry.entries.values() for m in e.models}
    roots = {"image": [comfy_dir / "models"], "volume": [volume_dir / layout for layout in VOLUME_LAYOUTS]}
    found: dict[str, dict[tuple[str, str], str]] = {src: {} for src in SOURCES}
    for folder, name in wanted:
        names = (folder, *(alias for alias, canonical in FOLDER_ALIASES.items() if canonical == folder))
        for source, dirs in roots.items():
            for d in dirs:
                for sub in names:
                    path = d / sub / name
                    if os.path.isfile(path):  # never raises (an unreadable directory is "not there")
                        found[source].setdefault((folder, name), str(path))
        if report is not None and (folder, name) in report.linked and os.path.exists(report.linked[(folder, name)]):
            found["cache"][(folder, name)] = report.linked[(folder, name)]
    return found


def model_sources(
    comfy_dir: Path, volume_dir: Path, report: CacheReport | None, registry: Registry, workflow: str | None = None
) -> dict[str, Any]:
    """What `test` and `diagnose` say about the registered models: per workflow where each is served
    from (image, cache, volume) or that it is missing, and the cache's own state."""
    disk = on_disk(comfy_dir, volume_dir, report, registry)
    entries = [registry.entries[workflow]] if workflow else list(registry.entries.values())
    return {
        "workflows": workflow_sources(entries, disk),
        **({"cache": report.to_dict()} if report is not None else {}),
    }


def cache_pending(report: CacheReport | None) -> dict[str, str]:
    """folder/name -> a sentence for generate's MODEL_MISSING: the model is in RunPod's model cache only as
    an unfinished download (diagnose's CACHE_MODEL_INCOMPLETE says the same with its fix)."""
    if report is None:
        return {}
    return {
        f"{lk.folder}/{lk.name}": f"RunPod's model cache holds it only as an unfinished download of "
        f"{lk.file.repo} ({(lk.incomplete or (lk.snapshot_path,))[0]})."
        for lk in report.lookups
        if lk.state in ("dangling", "incomplete")
    }


def cache_findings(report: CacheReport | None) -> list[Finding]:
    if report is None:
        return []
    found = lookup_findings(report.lookups, report.cache_dir)
    if report.problems:
        found.append(
            warning(
                "CACHE_LINK_FAILED",
                f"RunPod's model cache could not be read or linked into {report.links_dir} "
                f"({len(report.problems)} problem(s)), so ComfyUI does not see those models there: "
                f"{'; '.join(report.problems[:3])}.",
                f"Make {report.cache_dir} readable and {report.links_dir} writable by the worker (or set "
                "MODEL_CACHE_LINKS_DIR to a writable directory that extra_model_paths.yaml lists), then restart "
                "the worker.",
                path=report.links_dir,
            )
        )
    return found


def sources_summary(
    comfy_dir: Path, volume_dir: Path, report: CacheReport | None, registry: Registry
) -> dict[str, Any]:
    """`test`'s short form: how many registered models each source serves, and which are missing
    (`workflow: folder/name`). Stats only (a few per registered model)."""
    view = model_sources(comfy_dir, volume_dir, report, registry)
    counts = {src: 0 for src in (*SOURCES, "missing")}
    missing = []
    seen: set[str] = set()
    for wf, info in view["workflows"].items():
        for m in info["models"]:
            key = f"{m['folder']}/{m['name']}"
            if key not in seen:
                seen.add(key)
                counts[m["source"]] += 1
        missing += [f"{wf}: {name}" for name in info["missing"]]
    summary: dict[str, Any] = {"by_source": counts, "missing": missing}
    if report is not None:
        summary["cache"] = {"present": report.present, "dir": report.cache_dir, "linked": len(report.linked)}
    return summary


SUMMARY_TTL_S = 10.0


def health_models(runtime: Runtime) -> dict[str, Any]:
    """`test`'s `models`, recomputed at most every SUMMARY_TTL_S: on a network volume each stat may
    cost a round trip, and `test` must stay a sub-second ping however often it is called."""
    s, report = runtime.settings, runtime.model_cache
    if report is None:
        return sources_summary(s.comfy_dir, s.volume_dir, None, runtime.registry)
    now = time.monotonic()
    if report._summary is None or now - report._summary[0] > SUMMARY_TTL_S:
        report._summary = (now, sources_summary(s.comfy_dir, s.volume_dir, report, runtime.registry))
    return report._summary[1]


def diagnose_section(runtime: Runtime, workflow: str | None) -> tuple[dict[str, Any], list[Finding]]:
    """diagnose's `model_sources`: where each registered model is served from, the cache's state,
    each model's first load time (handler/model_loads.py) and each model class's first move to the
    device as ComfyUI logs it (workflows/load_log.py); with the cache's findings."""
    s = runtime.settings
    view = model_sources(s.comfy_dir, s.volume_dir, runtime.model_cache, runtime.registry, workflow)
    sources = {f"{m['folder']}/{m['name']}": m["source"] for info in view["workflows"].values() for m in info["models"]}
    view["first_loads"] = {
        key: {**load, "source": sources.get(key, "unregistered")} for key, load in dict(runtime.model_loads).items()
    }
    view["device_loads"] = first_device_loads(runtime.log.recent() if runtime.log is not None else [])
    return view, cache_findings(runtime.model_cache)
