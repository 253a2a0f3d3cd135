"""Re-check a worker's diagnose answer against the local registry. Pure: dicts and a Registry in, findings out.

The worker judges its deployment with *its* copy of the registry. When the image is older than the
checkout you test from, the worker cannot know what it lacks. Here the local registry is the
requirement and the answer (node_check, workflow_checks, ComfyUI's model lists) is the evidence:

    WORKFLOW_UNKNOWN_TO_WORKER  error    a local workflow the worker did not check (stale image)
    WORKFLOW_DIFFERS            warning  the worker's copy of a workflow uses other nodes than the local one
    NODE_MISSING                error    a node the local workflow needs and the worker reports missing
    NODE_UNVERIFIED             warning  a node the worker's report says nothing about
    MODEL_MISSING               error    a model the local registry needs that ComfyUI does not list
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.analysis import is_ui_format
from workflows.findings import Finding, error, warning
from workflows.models import LOADER_INPUTS, canonical_folder
from workflows.registry import Entry, Registry
from workflows.ui_convert import UI_ONLY

STALE_FIX = "Rebuild and redeploy the worker image from this checkout so its registry matches the one you test with."


def _node_classes(workflow: Mapping[str, Any]) -> set[str]:
    if is_ui_format(workflow):
        return _editor_node_types(workflow)
    return {n["class_type"] for n in workflow.values() if isinstance(n, dict) and isinstance(n.get("class_type"), str)}


def _editor_node_types(workflow: Mapping[str, Any]) -> set[str]:
    """The ComfyUI node classes of an editor save, subgraphs included (frontend-only nodes left out)."""
    subgraphs = [g for g in (workflow.get("definitions") or {}).get("subgraphs") or [] if isinstance(g, dict)]
    graph_ids = {g.get("id") for g in subgraphs}
    nodes = [*workflow.get("nodes", []), *(n for g in subgraphs for n in g.get("nodes") or [])]
    return {
        n["type"]
        for n in nodes
        if isinstance(n, dict) and isinstance(n.get("type"), str) and n["type"] not in UI_ONLY | graph_ids
    }


def _tag(findings: list[Finding], workflow: str) -> list[dict[str, Any]]:
    return [{**f.to_dict(), "workflow": workflow, "source": "client"} for f in findings]


class _Evidence:
    def __init__(self, response: Mapping[str, Any]) -> None:
        report = response.get("node_check") or {}
        self.available = set(report.get("required_available") or [])
        self.missing = {m.get("node"): m for m in report.get("required_missing") or [] if isinstance(m, dict)}
        self.checks: Mapping[str, Any] = response.get("workflow_checks") or {}
        self.lists = {
            canonical_folder(folder): set(info.get("comfyui_lists") or [])
            for folder, info in (response.get("models") or {}).items()
            if isinstance(info, dict)
        }

    def node_findings(self, nodes: set[str], where: str) -> list[Finding]:
        out = []
        for node in sorted(nodes):
            if node in self.available:
                continue
            if node in self.missing:
                pack = self.missing[node].get("pack")
                out.append(
                    error(
                        "NODE_MISSING",
                        f"{where} needs node {node!r}, which the endpoint does not have"
                        + (f" (pack {pack})." if pack else "."),
                        f"Install {pack} ({self.missing[node].get('repo')}) in the image."
                        if pack
                        else "Install the custom node pack that provides it in the image.",
                    )
                )
            else:
                out.append(
                    warning(
                        "NODE_UNVERIFIED",
                        f"{where} needs node {node!r}; the endpoint's report says nothing about it "
                        "(its registry does not use it), so it may be missing.",
                        STALE_FIX,
                    )
                )
        return out

    def model_findings(self, folder: str, name: str, where: str, url: str | None = None) -> list[Finding]:
        listing = self.lists.get(canonical_folder(folder))
        if listing is None or name in listing:
            return []
        where_to = f"/runpod-volume/models/{canonical_folder(folder)}/"
        return [
            error(
                "MODEL_MISSING",
                f"{where} needs {name!r} in {folder!r}, which ComfyUI on the endpoint does not list.",
                f"Put {name} into {where_to} (or bake it into the image)." + (f" Download: {url}" if url else ""),
            )
        ]


def _entry_findings(entry: Entry, ev: _Evidence) -> list[dict[str, Any]]:
    workflow = entry.workflow()
    local_nodes = _node_classes(workflow)
    check = ev.checks.get(entry.id)
    if check is None:
        findings = [
            error(
                "WORKFLOW_UNKNOWN_TO_WORKER",
                f"The local registry has workflow {entry.id!r}, but the endpoint did not check it: the worker's "
                "registry is older than this checkout (stale image?), so generate with it will fail.",
                STALE_FIX,
            )
        ]
        findings += ev.node_findings(local_nodes, f"Workflow {entry.id!r}")
        for model in entry.models:
            findings += ev.model_findings(model.folder, model.name, f"Workflow {entry.id!r}", model.url)
        return _tag(findings, entry.id)
    remote_nodes = set(check.get("nodes") or [])
    if remote_nodes and remote_nodes != local_nodes:
        extra, lacking = sorted(local_nodes - remote_nodes), sorted(remote_nodes - local_nodes)
        detail = "; ".join(
            part
            for part in (
                f"the local copy also uses {', '.join(extra)}" if extra else "",
                f"the worker's copy also uses {', '.join(lacking)}" if lacking else "",
            )
            if part
        )
        differs = warning(
            "WORKFLOW_DIFFERS", f"Workflow {entry.id!r} differs between here and the endpoint: {detail}.", STALE_FIX
        )
        return _tag(
            [differs, *ev.node_findings(set(extra), f"Workflow {entry.id!r}")],
            entry.id,
        )
    return []


def inline_findings(label: str, workflow: Mapping[str, Any], response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What can be judged of a workflow file from a worker's diagnose answer (nodes, loader models).

    An editor save is judged by its node classes only: which widget holds a model name needs
    ComfyUI's /object_info, which the worker's report does not carry.
    """
    ev = _Evidence(response)
    findings = ev.node_findings(_node_classes(workflow), f"Workflow file {label}")
    if is_ui_format(workflow):
        return _tag(findings, label)
    for node_id, node in workflow.items():
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str):
            continue  # no loader: LOADER_INPUTS is keyed by class names
        for name, value in (node.get("inputs") or {}).items():
            folder = LOADER_INPUTS.get((class_type, name))
            if folder and isinstance(value, str):
                for f in ev.model_findings(folder, value, f"Workflow file {label} (node {node_id})"):
                    findings.append(Finding(f.code, f.severity, f.message, f.fix, node_id=str(node_id), input=name))
    return _tag(findings, label)


def recheck(response: Mapping[str, Any], registry: Registry, *, workflow: str | None = None) -> list[dict[str, Any]]:
    """Findings for the local registry (or one workflow of it) against a worker's diagnose answer."""
    if response.get("comfyui_reachable") is False:
        return []  # the worker already says ComfyUI is down; nothing to compare
    ev = _Evidence(response)
    if workflow is not None:
        entries = [registry.entries[workflow]] if workflow in registry.entries else []
    else:
        entries = list(registry.entries.values())
    return [f for entry in entries for f in _entry_findings(entry, ev)]
