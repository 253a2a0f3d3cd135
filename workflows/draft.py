"""Draft a registry entry for a workflow the project has never seen. Pure: workflow + /object_info in.

`comfy-runpod workflow add FILE` uses it: every node class and the pack that provides it, every
model input with its folder, the parameters people patch, the outputs it produces. What can't be
known from the workflow and ComfyUI's definitions (a pack nobody maps, a model's download URL and
size) is never guessed: it becomes a named TODO that the command lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.analysis import ObjectInfo, combo_choices, input_specs, is_link
from workflows.models import LOADER_INPUTS, MODEL_EXTENSIONS
from workflows.registry import ModelSpec, PackRef, Registry
from workflows.vetting import is_core

_SCALARS: dict[str, tuple[str, ...]] = {  # parameter -> input names that carry it
    "seed": ("seed", "noise_seed"),
    "steps": ("steps",),
    "cfg": ("cfg",),
    "denoise": ("denoise",),
    "frames": ("length", "num_frames", "frame_count"),
    "fps": ("fps", "frame_rate"),
}
_KIND_BY_CLASS = {"SaveImage": "image", "SaveAnimatedWEBP": "image", "SaveAnimatedPNG": "image"}


@dataclass
class Draft:
    entry: dict[str, Any]  # the registry YAML mapping, ready for yaml.safe_dump
    todos: list[str] = field(default_factory=list)


def _node_items(workflow: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (str(nid), node["class_type"], node.get("inputs") or {})
        for nid, node in sorted(workflow.items(), key=lambda kv: _sort_key(str(kv[0])))
        if isinstance(node, dict) and isinstance(node.get("class_type"), str)
    ]


def _sort_key(node_id: str) -> tuple[int, str]:
    return (int(node_id), "") if node_id.isdigit() else (1 << 30, node_id)


def _consumers(workflow: Mapping[str, Any]) -> dict[str, list[str]]:
    """node id -> the input names its outputs feed (to tell a positive prompt from a negative one)."""
    fed: dict[str, list[str]] = {}
    for _, _, inputs in _node_items(workflow):
        for name, value in inputs.items():
            if is_link(value):
                fed.setdefault(str(value[0]), []).append(name)
    return fed


def _packs(
    nodes: list[tuple[str, str, dict[str, Any]]], object_info: ObjectInfo, registry: Registry, todos: list[str]
) -> list[dict[str, Any]]:
    pins = {p.name.lower(): p for e in registry.entries.values() for p in e.packs}
    by_pack: dict[str, dict[str, Any]] = {}
    for node_id, class_type, _ in nodes:
        info = object_info.get(class_type) or {}
        if is_core(info):
            continue
        module = str(info.get("python_module", ""))
        folder = module.removeprefix("custom_nodes.").split(".")[0] if module.startswith("custom_nodes.") else None
        known: PackRef | None = registry.pack_for_node(class_type)
        if folder is not None and folder.lower() in pins:
            known = pins[folder.lower()]
        name = known.name if known else folder
        if name is None:
            todos.append(f"node {node_id}: {class_type!r} is not defined here and no known pack provides it")
            continue
        pack = by_pack.setdefault(name, {"name": name, "nodes": []})
        if class_type not in pack["nodes"]:
            pack["nodes"].append(class_type)
        if known is not None:
            pack["repo"] = known.repo
            if known.commit:
                pack["commit"] = known.commit
    for pack in by_pack.values():
        if "repo" not in pack:
            todos.append(f"pack {pack['name']}: add its repo URL and the commit to pin")
            pack["repo"] = "TODO"
        elif "commit" not in pack:
            todos.append(f"pack {pack['name']}: add the commit to pin (40 hex characters)")
    return list(by_pack.values())


def _planned_packs(
    nodes: list[tuple[str, str, dict[str, Any]]],
    object_info: ObjectInfo,
    planned: list[dict[str, Any]],
    unresolved: Mapping[str, str],
    todos: list[str],
) -> list[dict[str, Any]]:
    """The packs resolved by evidence (workflows.pack_plan, pinned by the client), checked against the
    nodes ComfyUI reports: a custom node no planned pack lists, or a node nobody provides, is a TODO."""
    packs = [dict(p) for p in planned]
    listed = {n for p in packs for n in p.get("nodes", [])}
    for pack in packs:
        if not pack.get("commit"):
            todos.append(f"pack {pack['name']}: add the commit to pin (40 hex characters): no snapshot or git source")
            pack["commit"] = "TODO"
    missing: list[str] = []
    undefined: list[str] = []
    for node_id, class_type, _ in nodes:
        info = object_info.get(class_type)
        module = str((info or {}).get("python_module", ""))
        if class_type in listed and info is None and class_type not in undefined:
            undefined.append(class_type)  # resolved, but the ComfyUI that was read does not define it
            owner = next(p["name"] for p in packs if class_type in p.get("nodes", []))
            todos.append(
                f"node {node_id}: {class_type!r} (pack {owner}) is not defined in the ComfyUI whose definitions "
                "were read (the pack is missing there or failed to import), so its values were not converted: "
                "install the pack there and run workflow add again"
            )
            continue
        if class_type in listed or (info is not None and not module.startswith("custom_nodes.")):
            continue
        if class_type in missing:
            continue
        missing.append(class_type)
        why = unresolved.get(class_type) or (
            "no resolved pack defines it in the local ComfyUI" if info is None else f"{module} defines it"
        )
        todos.append(
            f"node {node_id}: {class_type!r} is not provided by any known pack ({why}): install the pack that "
            "provides it and pass --pack 'NODE=owner/repo', or remove the node"
        )
    if missing or undefined:  # the entry stays disabled (WORKFLOW_BROKEN) until a person names the pack
        packs.append({"name": "TODO", "repo": "TODO", "commit": "TODO", "nodes": missing + undefined})
    return packs


def _known_model(registry: Registry, name: str) -> ModelSpec | None:
    return next((m for e in registry.entries.values() for m in e.models if m.name == name), None)


def _models(
    nodes: list[tuple[str, str, dict[str, Any]]],
    object_info: ObjectInfo,
    registry: Registry,
    todos: list[str],
    sources: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    models = []
    for node_id, class_type, inputs in nodes:
        specs = input_specs(object_info.get(class_type) or {})
        for name, value in inputs.items():
            if not isinstance(value, str):
                continue
            folder = LOADER_INPUTS.get((class_type, name))
            looks_like_model = value.rsplit(".", 1)[-1].lower() in {e.lstrip(".") for e in MODEL_EXTENSIONS}
            is_combo = combo_choices(specs.get(name, (None, True))[0]) is not None
            if folder is None and not (looks_like_model and is_combo):
                continue
            source = sources.get(value) or {}
            folder = folder or source.get("folder")
            model: dict[str, Any] = {"folder": folder or "TODO", "name": value, "node": node_id, "input": name}
            if folder is None:
                todos.append(f"model {value} (node {node_id}.{name}): add the model folder ComfyUI reads it from")
            known = _known_model(registry, value)
            facts = {k: source[k] for k in ("url", "size_bytes", "sha256") if source.get(k) is not None}
            if facts:
                model.update(facts)
                missing = [key for key in ("url", "size_bytes", "sha256") if key not in facts]
                if missing:  # one line per model: the reason is the same for each missing fact
                    why = f" ({source['problem']})" if source.get("problem") else ""
                    todos.append(f"model {value}: add its {' and '.join(missing)}{why}")
            elif known is not None:
                model.update(
                    {
                        k: v
                        for k, v in (("url", known.url), ("size_bytes", known.size_bytes), ("sha256", known.sha256))
                        if v is not None
                    }
                )
            else:
                todos.append(f"model {value}: add its download url, size_bytes and sha256")
            models.append(model)
    return models


def _parameters(workflow: Mapping[str, Any], nodes: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    params: dict[str, list[dict[str, str]]] = {}
    consumers = _consumers(workflow)

    def add(param: str, node_id: str, name: str) -> None:
        params.setdefault(param, []).append({"node": node_id, "input": name})

    for node_id, class_type, inputs in nodes:
        plain = {k for k, v in inputs.items() if not is_link(v)}
        for param, names in _SCALARS.items():
            for name in names:
                if name in plain:
                    add(param, node_id, name)
        if class_type.startswith("Empty") and {"width", "height"} <= plain:
            add("width", node_id, "width")
            add("height", node_id, "height")
        if "filename_prefix" in plain:
            add("filename_prefix", node_id, "filename_prefix")
        text = next((n for n in ("text", "prompt") if n in plain and isinstance(inputs[n], str)), None)
        if text and "TextEncode" in class_type:
            negative = "negative" in consumers.get(node_id, [])
            add("negative_prompt" if negative else "prompt", node_id, text)
        if class_type == "LoadImage" and "image" in plain:
            role = "end_image" if any("end" in c for c in consumers.get(node_id, [])) else "image"
            add(role, node_id, "image")
    # One image per role: a second start image is left for overrides rather than patched twice.
    for role in ("image", "end_image"):
        if len(params.get(role, [])) > 1:
            params[role] = params[role][:1]
    return {k: v[0] if len(v) == 1 else v for k, v in params.items()}


def _outputs(
    nodes: list[tuple[str, str, dict[str, Any]]], object_info: ObjectInfo, todos: list[str]
) -> list[dict[str, Any]]:
    outputs = []
    for node_id, class_type, _ in nodes:
        info = object_info.get(class_type) or {}
        if not info.get("output_node") or class_type.startswith("Preview"):
            continue
        lowered = class_type.lower()
        kind = _KIND_BY_CLASS.get(class_type) or next(
            (
                k
                for k, words in (("video", ("video", "gif")), ("audio", ("audio",)), ("image", ("image",)))
                if any(w in lowered for w in words)
            ),
            None,
        )
        if kind is None:
            todos.append(f"output node {node_id} ({class_type}): add its kind (image, video, audio or text)")
            continue
        outputs.append({"node": node_id, "kind": kind, "count": 1})
    if not outputs:
        todos.append("the workflow has no output node that saves a file: add a SaveImage or SaveVideo node")
    return outputs


def draft_entry(
    workflow_id: str,
    workflow: Mapping[str, Any],
    object_info: ObjectInfo,
    registry: Registry,
    title: str = "",
    *,
    packs: list[dict[str, Any]] | None = None,
    unresolved: Mapping[str, str] | None = None,
    model_sources: Mapping[str, Mapping[str, Any]] | None = None,
) -> Draft:
    """A registry entry for an API-format workflow, with the TODOs a person must fill in.

    `packs`: the packs resolved by evidence and pinned (else found from /object_info's modules and the
    registry); `unresolved`: node -> why no pack provides it; `model_sources`: file name -> url,
    size_bytes, sha256, folder (and `problem`) found by the client."""
    todos: list[str] = []
    nodes = _node_items(workflow)
    if packs is None:
        packs = _packs(nodes, object_info, registry, todos)
    else:
        packs = _planned_packs(nodes, object_info, packs, unresolved or {}, todos)
    models = _models(nodes, object_info, registry, todos, model_sources or {})
    entry: dict[str, Any] = {
        "id": workflow_id,
        "title": title or workflow_id.replace("_", " ").capitalize(),
        "description": "Added with `comfy-runpod workflow add`.",
        "workflow": f"{workflow_id}.json",
        "runs_on_cpu": not packs and not models,
    }
    if packs:
        entry["packs"] = packs
    if models:
        entry["models"] = models
    parameters = _parameters(workflow, nodes)
    if parameters:
        entry["parameters"] = parameters
    entry["outputs"] = _outputs(nodes, object_info, todos)
    return Draft(entry, todos)
