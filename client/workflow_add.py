"""`workflow add FILE` with nothing but the file: packs and models resolved, a local ComfyUI started.

Returns data (client/commands/workflow.py writes the entry). The steps, each shown as progress:
1. ComfyUI-Manager's lists (client/ecosystem_cache.py) and the save's own records (workflows/editor_save.py)
   resolve every node to ComfyUI or a pack (workflows/pack_plan.py);
2. each pack is pinned (client/pack_pins.py), fetched and its requirements installed
   (client/local_comfy.py: docker/fetch_pack.sh and docker/pack_requirements.sh, the image's own path);
3. a private ComfyUI with exactly those packs gives /object_info and its version, for converting the
   save against the layouts of the versions installed (workflows/ui_convert.py) and drafting the entry;
   `--comfy-url` uses a running ComfyUI instead;
4. each model's url from the save's `properties.models`, else ComfyUI-Manager's model list, else the
   registry; its size and sha256 from Hugging Face's metadata (client/hf_metadata.py).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.ecosystem_cache import load_ecosystem
from client.errors import UsageError
from client.hf_metadata import file_facts
from client.local_comfy import LocalComfy, LocalComfyError, fetch_pack, has_checkout, pack_python, pack_versions
from client.pack_pins import Pin, choose_pin, release_findings
from comfyui_client.errors import ComfyHTTPError, ComfyUnavailable
from comfyui_client.stats import comfyui_version
from workflows.analysis import is_ui_format
from workflows.ecosystem import Ecosystem, NodeEvidence
from workflows.editor_save import node_types, saved_models
from workflows.findings import Finding, error, warning
from workflows.models import MODEL_FOLDERS, canonical_folder
from workflows.pack_plan import PackPlan, plan_packs
from workflows.registry import Registry

Progress = Callable[[str], None]


@dataclass
class Resolved:
    """What workflow add learned before drafting: the plan, the pins, ComfyUI's definitions."""

    plan: PackPlan
    pins: dict[str, Pin]
    object_info: dict[str, Any]
    versions: dict[str, list[str]]
    ecosystem: Ecosystem
    comfy: str  # which ComfyUI gave the definitions
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def pack_entries(self) -> list[dict[str, Any]]:
        """The entry's `packs`, in the plan's order, each pinned."""
        out = []
        for pack in self.plan.packs:
            pin = self.pins[pack.name]
            item: dict[str, Any] = {"name": pack.name, "repo": pack.repo}
            if pin.commit:
                item["commit"] = pin.commit
            item["nodes"] = list(pack.nodes)
            out.append(item)
        return out

    def choices(self) -> list[dict[str, Any]]:
        """Per pack: why it was chosen and the runners-up (for --pack NODE=REPO)."""
        return [
            {
                "pack": p.name,
                "repo": p.repo,
                "commit": self.pins[p.name].commit,
                "pinned_from": self.pins[p.name].source,
                "saved_versions": p.saved_versions,
                "nodes": {
                    n: {
                        "why": p.reasons.get(n, ""),
                        "runners_up": [{"repo": c.repo, "stars": c.stars} for c in p.runners_up.get(n, ())],
                    }
                    for n in p.nodes
                },
            }
            for p in self.plan.packs
        ]


def evidence(workflow: Mapping[str, Any]) -> dict[str, NodeEvidence]:
    if is_ui_format(workflow):
        return node_types(workflow)
    return {
        n["class_type"]: NodeEvidence()
        for n in workflow.values()
        if isinstance(n, Mapping) and isinstance(n.get("class_type"), str)
    }


def resolve(
    workflow: Mapping[str, Any],
    *,
    registry: Registry,
    ecosystem_dir: Path | None,
    refresh_ecosystem: bool,
    overrides: Mapping[str, str],
    snapshots: Path | None,
    comfy_home: Path,
    packs_cache: Path | None = None,
    comfy_url_info: Callable[[], tuple[dict[str, Any], dict[str, Any]]] | None,
    progress: Progress,
) -> Resolved:
    """Resolve packs, pin them, and read node definitions from a local ComfyUI with them (or --comfy-url)."""
    progress("reading ComfyUI-Manager's node map, pack list, model list and usage statistics")
    loaded = load_ecosystem(directory=ecosystem_dir, refresh=refresh_ecosystem)
    notes = list(loaded.notes)
    plan = plan_packs(evidence(workflow), loaded.ecosystem, registry, overrides)
    for pack in plan.packs:
        progress(f"{pack.name} ({pack.repo}) provides {', '.join(pack.nodes)}")
    for node, why in plan.unresolved.items():
        progress(f"{node}: {why}")
    pins = {p.name: choose_pin(p, snapshots) for p in plan.packs}
    findings = [f for pin in pins.values() for f in pin.findings]
    notes += [n for pin in pins.values() for n in pin.notes]
    if comfy_url_info is not None:
        progress("reading node definitions from --comfy-url")
        object_info, stats = comfy_url_info()
        versions = _core_version(stats)
        return Resolved(plan, pins, object_info, versions, loaded.ecosystem, "--comfy-url", notes, findings)
    object_info, versions, more = _local_definitions(pins, snapshots, comfy_home, packs_cache, progress, findings)
    for pack in plan.packs:
        findings += release_findings(pack, versions.get(pack.name, []))
    return Resolved(plan, pins, object_info, versions, loaded.ecosystem, "a local ComfyUI", notes + more, findings)


def _core_version(stats: Any) -> dict[str, list[str]]:
    version = comfyui_version(stats)
    return {"comfy-core": [version]} if version else {}


def _local_definitions(
    pins: Mapping[str, Pin],
    snapshots: Path | None,
    comfy_home: Path,
    cache: Path | None,
    progress: Progress,
    findings: list[Finding],
) -> tuple[dict[str, Any], dict[str, list[str]], list[str]]:
    """Fetch the pinned packs, install their requirements, start a private ComfyUI, read its definitions.

    One function on purpose: the steps share the run directory and the ComfyUI process, which must be
    stopped whatever happens; each step is a call into client/local_comfy.py."""
    if not has_checkout():
        raise UsageError(
            "workflow add starts a local ComfyUI with the workflow's packs, which needs this project's checkout",
            fix="Run it from a checkout (git clone; pip install -e .), "
            "or pass --comfy-url of a ComfyUI with the packs.",
        )
    python = comfy_home / "venv/bin/python"
    if not (comfy_home / "launch.py").is_file() or not python.is_file():
        raise UsageError(
            f"no local ComfyUI at {comfy_home}",
            fix="Install it once with `make comfyui` (scripts/install_comfyui.sh; COMFY_HOME moves it), "
            "or pass --comfy-url of a ComfyUI with the workflow's packs.",
        )
    notes: list[str] = []
    dirs: dict[str, Path] = {}
    versions: dict[str, list[str]] = {}
    for name, pin in pins.items():
        if not pin.commit:
            continue
        progress(f"fetching {name} @ {pin.commit[:12]} ({pin.source})")
        try:
            dirs[name] = fetch_pack(name, pin.repo, pin.commit, cache, snapshots=snapshots)
        except LocalComfyError as exc:
            notes.append(f"{name}: {exc}")
            continue
        versions[name] = pack_versions(dirs[name], pin.commit)
    problems: dict[str, str] = {}
    if dirs:
        try:
            python, problems = pack_python(python, list(dirs.values()), cache, progress=progress)
        except LocalComfyError as exc:
            raise UsageError(str(exc), code="UNREACHABLE", fix="Reinstall the local ComfyUI: make comfyui.") from None
    for name, problem in problems.items():  # the pack may still load: its nodes decide (a TODO if missing)
        findings.append(
            warning(
                "PACK_REQUIREMENTS_FAILED",
                f"Pack {name}: a requirement cannot be installed: {problem}",
                f"Install it by hand into ComfyUI's venv, or pin {name} to a commit whose requirements install.",
            )
        )
    with tempfile.TemporaryDirectory(prefix="comfy-runpod-add-") as tmp:
        run = Path(tmp)
        custom = run / "custom_nodes"
        custom.mkdir()
        for name, source in dirs.items():
            (custom / name).symlink_to(source, target_is_directory=True)
        comfy = LocalComfy(comfy_home, python, custom, run)
        progress(f"starting a local ComfyUI with {len(dirs)} pack(s) on port {comfy.port}")
        try:
            comfy.start()
            object_info = comfy.client().object_info()
            versions.update(_core_version(comfy.client().system_stats()))
            failed = [ln for ln in comfy.tail(400).splitlines() if "IMPORT FAILED" in ln and str(custom) in ln]
        except (LocalComfyError, ComfyUnavailable, ComfyHTTPError, OSError, ValueError) as exc:
            raise UsageError(
                f"the local ComfyUI with the workflow's packs did not start: {exc}", code="UNREACHABLE"
            ) from None
        finally:
            comfy.stop()
        progress(f"ComfyUI {versions.get('comfy-core', ['?'])[0]} defines {len(object_info)} node classes")
    for line in failed:
        findings.append(
            error(
                "PACK_IMPORT_FAILED",
                f"A pack failed to import in the local ComfyUI: {line.strip()}",
                "Its nodes are missing from the entry: fix the pack's requirements, or pin another commit.",
            )
        )
    return object_info, versions, notes


def model_sources(
    names: list[str],
    workflow: Mapping[str, Any],
    ecosystem: Ecosystem,
    registry: Registry,
    *,
    hf_endpoint: str | None,
    hf_token: str | None,
    download_sha256: bool,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    """File name -> url, folder, size_bytes, sha256 (and `problem`): the save, then model-list, then the registry."""
    saved = saved_models(workflow) if is_ui_format(workflow) else {}
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        source: dict[str, Any] = {}
        base = name.replace("\\", "/").rsplit("/", 1)[-1]  # "flux/ae.safetensors": a subfolder of the folder
        record = ecosystem.model(name) or ecosystem.model(base)
        known = next((m for e in registry.entries.values() for m in e.models if m.name == name), None)
        mine = saved.get(name) or saved.get(base)
        if mine is not None and mine.url:
            source = {"url": mine.url, "folder": mine.directory, "from": "the save"}
        elif record is not None:
            source = {"url": record.url, "folder": record.folder, "from": "ComfyUI-Manager's model list"}
        elif known is not None and known.url:
            source = {"url": known.url, "folder": known.folder, "from": "the registry"}
            source.update({"size_bytes": known.size_bytes, "sha256": known.sha256})
        folder = source.get("folder")
        source["folder"] = canonical_folder(folder) if isinstance(folder, str) and folder in MODEL_FOLDERS else None
        if source.get("url") and not (source.get("size_bytes") and source.get("sha256")):
            progress(f"reading {name}'s size and sha256")
            facts = file_facts(source["url"], endpoint=hf_endpoint, token=hf_token, download_sha256=download_sha256)
            source.update({"size_bytes": facts.size_bytes, "sha256": facts.sha256, "problem": facts.problem})
        out[name] = source
    return out
