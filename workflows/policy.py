"""The job policy: what a job may ask of this deployment. Pure; set by environment (handler.config).

A job is untrusted input from whoever holds the API key, often an app's end users. The policy is
enforced on the API-format workflow before anything is queued, and every refusal is a finding naming
the node, the input and the rule:

- POLICY_DENIED: registered-only deployments (ALLOW_INLINE_WORKFLOWS=0), ALLOW_NODES / DENY_NODES,
  and the safe default: the node classes in UNSAFE_NODES (they read or write arbitrary paths, fetch
  URLs or delete files) are refused in inline and editor workflows and wherever `overrides` touch
  them, unless ALLOW_UNSAFE_NODES lists them. Registered workflows are trusted as written.
- PATH_REFUSED: every input that names a file (workflows.paths), and every path-like value of a pack
  node whatever its input's name (workflows.path_values), stays inside ComfyUI's input, output and
  temp directories, for every workflow whatever its origin; an output's name fed by another node's
  output is refused (it can't be scoped to the job's folder). A pack class ALLOW_UNSAFE_NODES lists
  (or `*`) is trusted with its values' paths; its declared file inputs stay judged.
- LIMIT_EXCEEDED (`limit_findings`, judged after ComfyUI's own bounds so a value over both names
  ComfyUI's): sizes, frames and batch sizes over the deployment's MAX_SIDE, MAX_FRAMES, MAX_BATCH.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.findings import Finding, error
from workflows.path_values import judged_refs
from workflows.paths import PathFact, literal, path_findings

# Node classes refused by default in inline/editor workflows and overrides. Verified against the
# /object_info of ComfyUI 0.3.75 and VideoHelperSuite 001a508 (README "Security").
UNSAFE_NODES: Mapping[str, str] = {
    "SaveImageDataSetToFolder": "writes a folder of files outside the job's own output folder",
    "SaveImageTextDataSetToFolder": "writes a folder of files outside the job's own output folder",
    "LoadImageDataSetFromFolder": "reads a whole folder of files",
    "LoadImageTextDataSetFromFolder": "reads a whole folder of files",
    "SaveTrainingDataset": "writes a folder of files outside the job's own output folder",
    "LoadTrainingDataset": "reads a folder of serialized tensors from the output directory",
    "Load3D": "takes file paths inside a structured input",
    "VHS_LoadVideoPath": "reads any path or fetches a URL",
    "VHS_LoadVideoFFmpegPath": "reads any path or fetches a URL",
    "VHS_LoadImagePath": "reads any path or fetches a URL",
    "VHS_LoadImagesPath": "reads any directory",
    "VHS_LoadAudio": "reads any path or fetches a URL",
    "VHS_PruneOutputs": "deletes files",
    "VHS_SelectLatest": "looks up files by path",
}

# Integer inputs bounded by the deployment's limits (on any node, literal values only).
SIDE_INPUTS = frozenset({"width", "height"})
FRAME_INPUTS = frozenset({"length", "frames", "num_frames", "frame_count", "amount", "frame_load_cap"})
BATCH_INPUTS = frozenset({"batch_size"})


@dataclass(frozen=True, slots=True)
class JobPolicy:
    allow_inline: bool = True  # False: registered workflows only
    allow_nodes: frozenset[str] | None = None  # None: every node class not denied
    deny_nodes: frozenset[str] = field(default_factory=frozenset)
    allow_unsafe: frozenset[str] = field(default_factory=frozenset)  # unsafe or path-trusted classes; "*": all
    max_side: int = 4096
    max_frames: int = 1024
    max_batch: int = 64

    def unsafe(self, class_type: str) -> bool:
        return class_type in UNSAFE_NODES and "*" not in self.allow_unsafe and class_type not in self.allow_unsafe


def policy_findings(
    workflow: Mapping[str, Any],
    policy: JobPolicy,
    *,
    origin: str,
    overridden: Mapping[str, frozenset[str]] | None = None,
    paths: Mapping[tuple[str, str], PathFact] | None = None,
    object_info: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Refusals for this workflow; `origin` is registered | inline | editor, `overridden` the node
    inputs a job's `overrides` changed (node id -> input names), `paths` the handler's facts about
    the files the workflow names (workflows.path_values.judged_refs; None: the pure checks only)."""
    if origin != "registered" and not policy.allow_inline:
        return [
            error(
                "POLICY_DENIED",
                "This deployment runs registered workflows only; inline and editor workflows are refused.",
                "Send a registered workflow name (mode=diagnose lists them), or set ALLOW_INLINE_WORKFLOWS=1 "
                "on the endpoint.",
            )
        ]
    findings: list[Finding] = []
    overridden = overridden or {}
    for node_id, node in workflow.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str):
            continue
        if class_type in policy.deny_nodes or (policy.allow_nodes is not None and class_type not in policy.allow_nodes):
            rule = "DENY_NODES" if class_type in policy.deny_nodes else "ALLOW_NODES"
            findings.append(
                error(
                    "POLICY_DENIED",
                    f"Node {node_id}: class {class_type!r} is not allowed on this deployment ({rule}).",
                    f"Remove the node, or change {rule} on the endpoint.",
                    node_id=str(node_id),
                )
            )
        elif policy.unsafe(class_type) and (origin != "registered" or overridden.get(str(node_id))):
            where = "in inline workflows" if origin != "registered" else "through overrides"
            findings.append(
                error(
                    "POLICY_DENIED",
                    f"Node {node_id}: class {class_type!r} {UNSAFE_NODES[class_type]}; it is refused {where} "
                    "by the default policy (UNSAFE_NODES).",
                    f"Use a registered workflow, or list {class_type} in ALLOW_UNSAFE_NODES on the endpoint "
                    "(its file inputs stay confined to ComfyUI's directories).",
                    node_id=str(node_id),
                )
            )
    findings += path_findings(workflow, paths, object_info, judged_refs(workflow, object_info, policy.allow_unsafe))
    return findings


def _literal(workflow: Mapping[str, Any], value: Any) -> Any:
    """The value itself (unwrapped from {"__value__": x} as ComfyUI does), or the literal `value` of a
    primitive node it is linked to (PrimitiveInt & co.)."""
    value = literal(value)
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int):
        source = workflow.get(str(value[0]))
        if not isinstance(source, dict) or not isinstance(inputs := source.get("inputs"), dict):
            return value
        if str(source.get("class_type", "")).startswith("Primitive"):
            return literal(inputs.get("value"))
    return value


def limit_findings(workflow: Mapping[str, Any], policy: JobPolicy) -> list[Finding]:
    """Literal sizes, frame counts and batch sizes over this deployment's limits."""
    found = []
    for node_id, node in workflow.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            value = _literal(workflow, value)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if name in SIDE_INPUTS:
                limit, setting = policy.max_side, "MAX_SIDE"
            elif name in FRAME_INPUTS:
                limit, setting = policy.max_frames, "MAX_FRAMES"
            elif name in BATCH_INPUTS:
                limit, setting = policy.max_batch, "MAX_BATCH"
            else:
                continue
            if value > limit:
                found.append(
                    error(
                        "LIMIT_EXCEEDED",
                        f"Node {node_id}: {name} = {value} is over this deployment's limit of {limit} ({setting}).",
                        f"Send {name} ≤ {limit}, or raise {setting} on the endpoint.",
                        node_id=str(node_id),
                        input=name,
                    )
                )
    return found
