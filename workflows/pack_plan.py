"""Which custom node packs a workflow needs, and which version of each: decided by evidence. Pure.

`plan_packs` takes the workflow's node classes with what the save records about each (workflows.editor_save),
ComfyUI-Manager's lists (workflows.ecosystem) and the registry, and returns one `PlannedPack` per pack
with the nodes it provides, why it was chosen, the runners-up a person may prefer (`--pack NODE=REPO`),
and the version the save was made with. A node nobody provides is returned as unresolved: the draft
is invalid and names it. Fetching and pinning (snapshot, git) are the client's: see client/pack_pins.py.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field

from workflows.ecosystem import Candidate, Ecosystem, NodeEvidence, NodeResolution, normal_repo, repo_name
from workflows.registry import Registry
from workflows.revisions import is_commit

SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")  # a pack's folder name (docker/plan.py requires the same)


def release_version(pyproject_text: str) -> str | None:
    """A pack's release version from its pyproject.toml text (what an editor save records as `ver` for a
    Comfy Registry pack); None when it declares none. Pure: the caller reads the file."""
    try:
        version = tomllib.loads(pyproject_text).get("project", {}).get("version")
    except (tomllib.TOMLDecodeError, AttributeError):
        return None
    return version if isinstance(version, str) and version.strip() else None


@dataclass
class PlannedPack:
    name: str  # the folder it is installed into (the repository's name)
    repo: str
    nodes: list[str] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)  # node -> why this pack
    runners_up: dict[str, tuple[Candidate, ...]] = field(default_factory=dict)  # node -> other packs
    saved_versions: list[str] = field(default_factory=list)  # what the save's nodes record (ver)
    registry_commit: str | None = None  # the registry's pin for this pack, when it has one

    @property
    def saved_commit(self) -> str | None:
        return next((v.lower() for v in self.saved_versions if is_commit(v.lower())), None)


@dataclass
class PackPlan:
    packs: list[PlannedPack]
    core: list[str]
    unresolved: dict[str, str]  # node -> why


def plan_packs(
    nodes: Mapping[str, NodeEvidence],
    ecosystem: Ecosystem,
    registry: Registry,
    overrides: Mapping[str, str] | None = None,
) -> PackPlan:
    """Packs for `nodes`: the save's own record first, then the overrides, then the ecosystem, then the registry.

    Two passes: the nodes whose save records a pack decide first, so a name several packs register goes
    to the one this save already uses."""
    overrides = overrides or {}
    pins = {p.name.lower(): p for e in registry.entries.values() for p in e.packs if p.commit}
    by_repo: dict[str, PlannedPack] = {}
    core: list[str] = []
    unresolved: dict[str, str] = {}
    recorded = [n for n, ev in nodes.items() if ev.cnr_id or ev.aux_id]
    ordered = recorded + [n for n in nodes if n not in recorded]
    for node in ordered:
        evidence = nodes[node]
        if node in overrides:
            url = overrides[node] if "://" in overrides[node] else f"https://github.com/{overrides[node].strip('/')}"
            known = ecosystem.pack(url)
            res = NodeResolution(node, known.repo if known else url, "chosen with --pack")
        else:
            res = ecosystem.resolve_node(node, evidence, used=[p.repo for p in by_repo.values()])
        if res.repo is None:
            ref = registry.pack_for_node(node)
            if ref is not None:
                res = NodeResolution(node, ref.repo, f"the registry's pack {ref.name} lists it")
        if res.repo is None:
            unresolved[node] = res.reason
            continue
        if res.is_core:
            core.append(node)
            continue
        if not SAFE_NAME.fullmatch(repo_name(res.repo)) or repo_name(res.repo) in {".", ".."}:
            unresolved[node] = f"{res.repo} does not name a repository usable as a folder"
            continue
        key = normal_repo(res.repo)
        pack = by_repo.get(key)
        twin = next((p for k, p in by_repo.items() if k != key and p.name.lower() == repo_name(res.repo).lower()), None)
        if pack is None and twin is not None:  # one custom_nodes folder per name: a fork and its original clash
            unresolved[node] = (
                f"{res.repo} installs into the same folder as {twin.repo}, which this save uses too: "
                f"choose one with --pack '{node}=owner/repo'"
            )
            continue
        pin = pins.get(repo_name(res.repo).lower())
        if pack is None and pin is not None and normal_repo(pin.repo) != key:  # the image has one folder per name
            unresolved[node] = (
                f"{res.repo} installs into custom_nodes/{pin.name}, where the registry installs {pin.repo}: "
                f"use that pack with --pack '{node}={pin.repo}', or rename the entry's pack"
            )
            continue
        if pack is None:
            name = repo_name(res.repo)
            pack = by_repo[key] = PlannedPack(name, res.repo, registry_commit=pin.commit if pin else None)
        pack.nodes.append(node)
        pack.reasons[node] = res.reason
        if res.runners_up:
            pack.runners_up[node] = res.runners_up
        if evidence.ver and (evidence.cnr_id or evidence.aux_id) and evidence.ver not in pack.saved_versions:
            pack.saved_versions.append(evidence.ver)
    return PackPlan(list(by_repo.values()), core, unresolved)
