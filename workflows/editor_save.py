"""What an editor save records beyond the graph: per node, the pack and version that made it, and the
model files (with download URLs) its loaders use. Pure: the parsed save in, plain data out.

The editor writes `properties.cnr_id` (the Comfy Registry id; `comfy-core` for ComfyUI's own nodes) or
`properties.aux_id` (GitHub owner/repo), and `properties.ver` (a release version, or the exact commit
the author had installed) on every node it saves; ComfyUI's templates add `properties.models`
(name, url, directory) on loader nodes. Subgraph definitions hold nodes too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from workflows.ecosystem import NodeEvidence

# Nodes the editor itself draws (never sent to ComfyUI): no pack provides them on the server.
FRONTEND_ONLY = frozenset({"Note", "MarkdownNote", "PrimitiveNode", "Reroute", "SetNode", "GetNode"})


@dataclass(frozen=True, slots=True)
class SavedModel:
    name: str
    url: str | None
    directory: str | None
    node_type: str


def iter_nodes(ui: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every node of the save: the root graph's and each subgraph definition's."""
    yield from (n for n in ui.get("nodes") or [] if isinstance(n, Mapping))
    definitions = ui.get("definitions")
    for sg in (definitions.get("subgraphs") or []) if isinstance(definitions, Mapping) else []:
        if isinstance(sg, Mapping):
            yield from (n for n in sg.get("nodes") or [] if isinstance(n, Mapping))


def _subgraph_ids(ui: Mapping[str, Any]) -> set[str]:
    definitions = ui.get("definitions")
    subgraphs = definitions.get("subgraphs") if isinstance(definitions, Mapping) else None
    return {str(sg.get("id")) for sg in subgraphs or [] if isinstance(sg, Mapping)}


def evidence_of(node: Mapping[str, Any]) -> NodeEvidence:
    props = node.get("properties")
    props = props if isinstance(props, Mapping) else {}

    def text(key: str) -> str | None:
        value = props.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return NodeEvidence(text("cnr_id"), text("aux_id"), text("ver"))


def node_types(ui: Mapping[str, Any]) -> dict[str, NodeEvidence]:
    """Node class -> what the save records about its pack (the first node with a record wins)."""
    skip = _subgraph_ids(ui) | FRONTEND_ONLY
    found: dict[str, NodeEvidence] = {}
    for node in iter_nodes(ui):
        kind = node.get("type")
        if not isinstance(kind, str) or kind in skip or kind.startswith(("workflow>", "workflow/")):
            continue
        evidence = evidence_of(node)
        if kind not in found or (found[kind] == NodeEvidence() and evidence != NodeEvidence()):
            found[kind] = evidence
    return found


def saved_models(ui: Mapping[str, Any]) -> dict[str, SavedModel]:
    """File name -> what `properties.models` records about it (URL, ComfyUI folder)."""
    out: dict[str, SavedModel] = {}
    for node in iter_nodes(ui):
        props = node.get("properties")
        models = props.get("models") if isinstance(props, Mapping) else None
        for m in models if isinstance(models, list) else []:
            if isinstance(m, Mapping) and isinstance(m.get("name"), str) and m["name"] not in out:
                url, directory = m.get("url"), m.get("directory")
                out[m["name"]] = SavedModel(
                    m["name"],
                    url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
                    directory if isinstance(directory, str) and directory else None,
                    str(node.get("type")),
                )
    return out
