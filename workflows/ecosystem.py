"""ComfyUI-Manager's public lists, parsed: which pack provides a node, which file a model name is.

Why the ecosystem's data and not our own list: ComfyUI-Manager publishes the node -> pack map
(`extension-node-map.json`, ~5,600 packs), pack metadata (`custom-node-list.json`), known model files
(`model-list.json`) and how much each repository is used (`github-stats.json`); it is what the field
installs from. The client fetches and caches the files (client/ecosystem_cache.py); this module is pure:
the four parsed JSON documents in, answers out.

Resolution of a node class name, strongest evidence first (`resolve_node`):
  1. the editor save's own record on the node: `properties.aux_id` (GitHub owner/repo) or `cnr_id`
     (the Comfy Registry id; `comfy-core` is ComfyUI itself);
  2. ComfyUI-Manager's preemptions (the core entry's names count as preemptions, as in its own lookup);
  3. the packs that list the name exactly; several: one the save already uses for another node, else
     the most-starred repository (github-stats.json), with the runners-up shown so a person can override;
  4. the packs whose `nodename_pattern` matches (re.search), decided the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

CORE_REPO = "https://github.com/comfyanonymous/ComfyUI"
CORE_CNR_ID = "comfy-core"
FILES = ("extension-node-map.json", "custom-node-list.json", "model-list.json", "github-stats.json")
_GITHUB_ID = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")  # aux_id: owner/repo; anything else is not evidence
_SIZE = re.compile(r"^\s*([\d.]+)\s*([KMGT]?)B\s*$", re.IGNORECASE)


def normal_repo(url: str) -> str:
    """A repository URL as a comparable key: no trailing slash or .git, lower case."""
    return url.strip().removesuffix("/").removesuffix(".git").lower()


def repo_name(url: str) -> str:
    """The folder ComfyUI-Manager clones a pack into: the repository's last path component."""
    return url.strip().removesuffix("/").removesuffix(".git").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class PackInfo:
    repo: str  # as ComfyUI-Manager writes it, e.g. https://github.com/city96/ComfyUI-GGUF
    title: str
    nodes: frozenset[str] = frozenset()
    pattern: str | None = None
    preemptions: frozenset[str] = frozenset()
    ids: frozenset[str] = frozenset()  # custom-node-list `id` and the repository name, lower case
    stars: int | None = None

    @property
    def name(self) -> str:
        return repo_name(self.repo)

    @property
    def is_core(self) -> bool:
        return normal_repo(self.repo) == normal_repo(CORE_REPO)


@dataclass(frozen=True, slots=True)
class ModelRecord:
    name: str  # the file name ComfyUI sees
    url: str
    folder: str  # ComfyUI's models/ folder ("default" resolved from the record's type)
    size_text: str = ""

    @property
    def approx_bytes(self) -> int | None:
        """model-list's "4.71MB" as bytes (decimal units, as written); None when not given."""
        m = _SIZE.match(self.size_text or "")
        if not m:
            return None
        return int(float(m.group(1)) * 1000 ** "_KMGT".index(m.group(2).upper() or "_"))


@dataclass(frozen=True, slots=True)
class NodeEvidence:
    """What an editor save records on a node about the pack that made it."""

    cnr_id: str | None = None
    aux_id: str | None = None  # "owner/repo"
    ver: str | None = None  # a release version, or the commit the author had installed


@dataclass(frozen=True, slots=True)
class Candidate:
    repo: str
    stars: int | None


@dataclass(frozen=True, slots=True)
class NodeResolution:
    node: str
    repo: str | None  # None: unresolved; CORE_REPO: ComfyUI itself
    reason: str  # how it was decided, in words
    runners_up: tuple[Candidate, ...] = ()

    @property
    def is_core(self) -> bool:
        return self.repo is not None and normal_repo(self.repo) == normal_repo(CORE_REPO)


# folder for model-list's "default" save_path, by its `type` (ComfyUI-Manager's get_model_dir)
_DEFAULT_FOLDER = {
    "checkpoint": "checkpoints",
    "checkpoints": "checkpoints",
    "unclip": "checkpoints",
    "clip": "text_encoders",
    "text_encoders": "text_encoders",
    "vae": "vae",
    "lora": "loras",
    "t2i-adapter": "controlnet",
    "t2i-style": "style_models",
    "controlnet": "controlnet",
    "clip_vision": "clip_vision",
    "gligen": "gligen",
    "upscale": "upscale_models",
    "embedding": "embeddings",
    "embeddings": "embeddings",
    "unet": "diffusion_models",
    "diffusion_model": "diffusion_models",
    "vae_approx": "vae_approx",
}


@dataclass(frozen=True)
class Ecosystem:
    packs: Mapping[str, PackInfo]  # normal_repo(url) -> pack, in the node map's file order
    models: tuple[ModelRecord, ...] = ()
    by_node: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # node -> normal repos, file order
    preempted: Mapping[str, str] = field(default_factory=dict)  # node -> normal repo

    @classmethod
    def from_documents(
        cls,
        node_map: Mapping[str, Any],
        node_list: Mapping[str, Any] | None = None,
        model_list: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
    ) -> Ecosystem:
        """Build from the four parsed JSON files (missing ones: empty). Malformed records are skipped."""
        stats = stats if isinstance(stats, Mapping) else {}
        stars = {normal_repo(k): v.get("stars") for k, v in stats.items() if isinstance(v, Mapping)}
        ids: dict[str, set[str]] = {}
        for record in (node_list or {}).get("custom_nodes") or []:
            if isinstance(record, Mapping) and isinstance(record.get("reference"), str):
                key = normal_repo(record["reference"])
                if isinstance(record.get("id"), str):
                    ids.setdefault(key, set()).add(record["id"].lower())
        packs: dict[str, PackInfo] = {}
        by_node: dict[str, list[str]] = {}
        preempted: dict[str, str] = {}
        for url, value in node_map.items():
            if not isinstance(url, str) or not isinstance(value, list) or not value:
                continue
            names = [n for n in value[0] if isinstance(n, str)] if isinstance(value[0], list) else []
            meta = value[1] if len(value) > 1 and isinstance(value[1], Mapping) else {}
            key = normal_repo(url)
            pattern = meta.get("nodename_pattern") if isinstance(meta.get("nodename_pattern"), str) else None
            pre = frozenset(n for n in meta.get("preemptions") or [] if isinstance(n, str))
            star = stars.get(key)
            pack = PackInfo(
                url,
                str(meta.get("title_aux") or meta.get("title") or repo_name(url)),
                frozenset(names),
                pattern,
                pre,
                frozenset({*ids.get(key, set()), repo_name(url).lower()}),
                star if isinstance(star, int) else None,
            )
            packs[key] = pack
            for name in names:
                by_node.setdefault(name, []).append(key)
            for name in pre | (pack.nodes if pack.is_core else frozenset()):
                preempted.setdefault(name, key)
        models = tuple(_model_records((model_list or {}).get("models") or []))
        return cls(packs, models, {k: tuple(v) for k, v in by_node.items()}, preempted)

    def pack(self, repo: str) -> PackInfo | None:
        return self.packs.get(normal_repo(repo))

    def by_id(self, cnr_id: str) -> list[PackInfo]:
        """Packs whose custom-node-list id or repository name is this Comfy Registry id, most-starred first."""
        wanted = cnr_id.lower()
        return sorted((p for p in self.packs.values() if wanted in p.ids), key=lambda p: -(p.stars or 0))

    def candidates(self, node: str) -> list[str]:
        """The repos that list `node` (file order), then those whose `nodename_pattern` matches it.

        Both count: rgthree-comfy's map entry lists its Python class names while it registers
        "Seed (rgthree)", which only its pattern matches (and a copy of the pack lists exactly)."""
        listed = list(self.by_node.get(node, ()))
        return listed + [k for k, p in self.packs.items() if k not in listed and p.pattern and _search(p.pattern, node)]

    def resolve_node(self, node: str, evidence: NodeEvidence | None = None, used: Iterable[str] = ()) -> NodeResolution:
        """The pack that provides `node` (see the module docstring); `used`: repos the save already uses."""
        evidence = evidence or NodeEvidence()
        if evidence.cnr_id == CORE_CNR_ID:
            return NodeResolution(node, CORE_REPO, f"the save records it as ComfyUI core ({evidence.ver or '?'})")
        if evidence.aux_id and _GITHUB_ID.fullmatch(evidence.aux_id) and ".." not in evidence.aux_id:
            url = f"https://github.com/{evidence.aux_id}"
            known = self.pack(url)
            return NodeResolution(node, known.repo if known else url, f"the save records aux_id {evidence.aux_id}")
        if evidence.cnr_id:
            by_id = self.by_id(evidence.cnr_id)
            if by_id:
                return NodeResolution(
                    node,
                    by_id[0].repo,
                    f"the save records cnr_id {evidence.cnr_id}",
                    tuple(Candidate(p.repo, p.stars) for p in by_id[1:4]),
                )
        if node in self.preempted:
            pack = self.packs[self.preempted[node]]
            return NodeResolution(node, pack.repo, "ComfyUI core" if pack.is_core else f"{pack.name} preempts it")
        keys = self.candidates(node)
        if not keys:
            return NodeResolution(node, None, "no pack in ComfyUI-Manager's node map provides it")
        used_keys = {normal_repo(u) for u in used}
        ranked = sorted(keys, key=lambda k: (k not in used_keys, -(self.packs[k].stars or 0)))
        chosen = self.packs[ranked[0]]
        why = "the only pack that provides it"
        if len(ranked) > 1:
            why = f"{len(ranked)} packs provide it; " + (
                "this save uses this pack for other nodes" if ranked[0] in used_keys else "the most-starred"
            )
        runners = tuple(Candidate(self.packs[k].repo, self.packs[k].stars) for k in ranked[1:4])
        return NodeResolution(node, chosen.repo, why, runners)

    def model(self, name: str) -> ModelRecord | None:
        """The known model file with this file name (the first listed)."""
        return next((m for m in self.models if m.name == name), None)


def _search(pattern: str, name: str) -> bool:
    try:
        return re.search(pattern, name) is not None
    except re.error:
        return False


def _model_records(raw: list[Any]) -> Iterable[ModelRecord]:
    for record in raw:
        if not isinstance(record, Mapping) or not isinstance(record.get("url"), str):
            continue
        filename = record.get("filename")
        if not isinstance(filename, str) or filename == "<huggingface>":
            filename = record["url"].split("?", 1)[0].rsplit("/", 1)[-1]
        folder = str(record.get("save_path") or "default")
        if folder == "default":
            folder = _DEFAULT_FOLDER.get(str(record.get("type", "")).lower(), "")
        yield ModelRecord(filename, record["url"], folder.split("/", 1)[0], str(record.get("size") or ""))
