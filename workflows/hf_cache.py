"""RunPod's cached models: the Hugging Face cache layout, mapped to the registry's models. Pure (no I/O).

An endpoint's "Model" setting names one Hugging Face repository; RunPod places it on the host before
the worker starts (download time not billed) at `<cache>/models--ORG--NAME/` in huggingface_hub's
layout: `refs/<branch>` holds the commit, `snapshots/<commit>/<path>` are symlinks into `blobs/`,
and a download in progress is `blobs/<etag>.incomplete`. The registry's URLs
(`https://huggingface.co/ORG/NAME/resolve/REV/PATH`) say which repository and path each model is, so
the worker can find a model there without any list of its own. Sources: RunPod's docs
(serverless/endpoints/model-caching), huggingface_hub's docs ("Understand caching").

The worker gathers `CacheLookup` facts (handler/model_cache.py); this module says where each model is
served from, what is missing, and which finding (with a fix) a broken cache entry is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from workflows.findings import Finding, error, warning
from workflows.hf_url import HfFile, parse_hf_url
from workflows.registry import Entry, ModelSpec

# Where ComfyUI finds a model, in the order its extra_model_paths.yaml lists the roots (the first hit
# wins): the image's local disk, then the cache's links, then the network volume.
SOURCES = ("image", "cache", "volume")


def hf_file(url: str | None) -> HfFile | None:
    """The model repository file a registry URL names (workflows.hf_url); None for any other URL, a
    dataset or Space (RunPod caches model repositories), or a path with a '.'/'..' part."""
    hf = parse_hf_url(url)
    if hf is None or hf.repo_type != "model":
        return None
    # each '/'-part after unquoting: "..%2F..%2Fetc" is one URL segment but two steps up in the cache
    if any(p in (".", "..") for p in (*hf.repo.split("/"), *hf.revision.split("/"), *hf.path.split("/"))):
        return None
    return hf


# "outside": the snapshot file links out of its repository (not how huggingface_hub writes it): never served
LookupState = Literal["cached", "no_repo", "no_revision", "not_in_snapshot", "incomplete", "dangling", "outside"]


@dataclass(frozen=True, slots=True)
class CacheLookup:
    """What the worker found in the cache for one registered model (gathered by handler/model_cache.py)."""

    folder: str
    name: str
    file: HfFile
    state: LookupState
    snapshot_path: str = ""  # <cache>/models--ORG--NAME/snapshots/<commit>/<path>, when a commit is known
    blob_path: str = ""  # the file the snapshot link resolves to (state "cached")
    size: int = 0
    incomplete: tuple[str, ...] = ()  # blobs/*.incomplete of the repository (a download in progress or cut)


def lookup_findings(lookups: Iterable[CacheLookup], cache_dir: str) -> list[Finding]:
    """A finding with a fix for every registered model whose repository is in the cache but whose file
    can't be served from it. A repository absent from the cache is no finding: most endpoints cache
    one repository, or none."""
    found: list[Finding] = []
    for lk in lookups:
        where = f"{lk.file.repo} ({lk.file.path})"
        if lk.state == "dangling":
            found.append(
                error(
                    "CACHE_MODEL_INCOMPLETE",
                    f"{lk.folder}/{lk.name} is in the model cache as {lk.snapshot_path}, a link into blobs/ whose "
                    f"target is missing{_partial(lk)}: the download of {where} did not finish.",
                    _redownload(lk, cache_dir),
                    path=lk.snapshot_path,
                )
            )
        elif lk.state == "incomplete":
            found.append(
                error(
                    "CACHE_MODEL_INCOMPLETE",
                    f"{lk.folder}/{lk.name} is not in the model cache yet: {where} has "
                    f"{len(lk.incomplete)} partial download(s) ({', '.join(lk.incomplete[:3])}) and no finished file.",
                    _redownload(lk, cache_dir),
                    path=lk.incomplete[0] if lk.incomplete else None,
                )
            )
        elif lk.state in ("no_revision", "not_in_snapshot", "outside"):
            missing = {
                "no_revision": f"has no snapshot of revision {lk.file.revision!r}",
                "not_in_snapshot": f"has no {lk.file.path} in {lk.snapshot_path.rsplit('/' + lk.file.path, 1)[0]}",
                "outside": f"holds {lk.snapshot_path} as a link out of the repository (or to a folder), "
                "which the worker does not serve",
            }[lk.state]
            found.append(
                warning(
                    "CACHE_MODEL_NOT_IN_REPO",
                    f"{lk.folder}/{lk.name}: the cached repository {lk.file.repo} {missing}.",
                    f"Check the registry URL names a file of {lk.file.repo} at that revision, or serve "
                    f"{lk.name} from the image or the volume (models/{lk.folder}/).",
                    path=lk.snapshot_path or f"{cache_dir.rstrip('/')}/{lk.file.repo_dir}",
                )
            )
    return found


def _partial(lk: CacheLookup) -> str:
    return f" ({len(lk.incomplete)} partial blob(s) beside it)" if lk.incomplete else ""


def _redownload(lk: CacheLookup, cache_dir: str) -> str:
    return (
        f"Wait for RunPod to finish caching {lk.file.repo} (the worker links cached files at start: restart "
        f"the worker after), or re-set the endpoint's Model to {lk.file.repo} so RunPod downloads it again; "
        f"on a volume you manage, delete {cache_dir.rstrip('/')}/{lk.file.repo_dir} and download it again."
    )


@dataclass(frozen=True, slots=True)
class Served:
    """Where ComfyUI reads one registered model from: `source` is one of SOURCES, or "missing"."""

    folder: str
    name: str
    source: str
    path: str = ""
    repo: str | None = None  # the Hugging Face repository its URL names, when one

    def to_dict(self) -> dict[str, str]:
        return {
            "folder": self.folder,
            "name": self.name,
            "source": self.source,
            **({"path": self.path} if self.path else {}),
            **({"repo": self.repo} if self.repo else {}),
        }


def served_from(model: ModelSpec, on_disk: Mapping[str, Mapping[tuple[str, str], str]]) -> Served:
    """The first source (image, cache, volume: ComfyUI's own order) holding the model, by folder and
    name; `on_disk` is source -> (folder, name) -> path."""
    hf = hf_file(model.url)
    for source in SOURCES:
        path = on_disk.get(source, {}).get((model.folder, model.name))
        if path is not None:
            return Served(model.folder, model.name, source, path, hf.repo if hf else None)
    return Served(model.folder, model.name, "missing", "", hf.repo if hf else None)


def workflow_sources(
    entries: Iterable[Entry], on_disk: Mapping[str, Mapping[tuple[str, str], str]]
) -> dict[str, dict[str, object]]:
    """Per registered workflow: each model's source, and the models no source holds."""
    report: dict[str, dict[str, object]] = {}
    for entry in entries:
        served = [served_from(m, on_disk) for m in entry.models]
        report[entry.id] = {
            "models": [s.to_dict() for s in served],
            "missing": [f"{s.folder}/{s.name}" for s in served if s.source == "missing"],
            "by_source": {src: sum(s.source == src for s in served) for src in (*SOURCES, "missing")},
        }
    return report


@dataclass(frozen=True, slots=True)
class CachePlan:
    """Which repository to set as an endpoint's Model for one workflow, and what it leaves out."""

    repo: str | None  # None: no model of the workflow has a Hugging Face URL
    covered: tuple[str, ...]  # folder/name of the models that repository serves
    covered_gb: float
    rest: tuple[str, ...]  # folder/name of the models that must come from the image or the volume
    rest_gb: float
    total: int


def cache_plan(entry: Entry) -> CachePlan:
    """The repository holding the most of the workflow's model bytes (then the most files): RunPod
    caches one repository per endpoint, so that is the one to name; the rest still come from the
    image or the volume."""
    by_repo: dict[str, list[ModelSpec]] = {}
    for m in entry.models:
        if (hf := hf_file(m.url)) is not None:
            by_repo.setdefault(hf.repo, []).append(m)

    def weight(repo: str) -> tuple[int, int, str]:
        models = by_repo[repo]
        return (sum(m.size_bytes or 0 for m in models), len(models), repo)

    repo = max(by_repo, key=weight, default=None)
    chosen = by_repo.get(repo, []) if repo else []
    rest = [m for m in entry.models if m not in chosen]
    return CachePlan(
        repo,
        tuple(f"{m.folder}/{m.name}" for m in chosen),
        round(sum(m.size_bytes or 0 for m in chosen) / 1e9, 1),
        tuple(f"{m.folder}/{m.name}" for m in rest),
        round(sum(m.size_bytes or 0 for m in rest) / 1e9, 1),
        len(entry.models),
    )
