"""Turn "ComfyUI + disk + workflow" into findings a person can fix. Pure: plain data in, findings out.

Imported by the worker's diagnose, the image self-check and the client, so that all three judge a
deployment the same way. Nothing here touches the network or the disk.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeGuard

from workflows import signatures
from workflows.findings import Finding, error, warning
from workflows.model_tree import not_seen_finding
from workflows.models import LOADER_INPUTS, MODEL_EXTENSIONS, ModelFile, ModelIndex, canonical_folder
from workflows.registry import Entry, ModelSpec, PackRef, Registry
from workflows.startup_log import PackImport

ObjectInfo = Mapping[str, Mapping[str, Any]]
PackLookup = Mapping[str, PackRef]

UI_FORMAT_FIX = (
    "In ComfyUI enable Settings > Dev mode, then use Workflow > Export (API) and send that file; "
    "the regular 'Save' format (with 'nodes' and 'links') is for the editor, not the API."
)


# ---------------------------------------------------------------------------------------------
# Workflow shape
# ---------------------------------------------------------------------------------------------


def is_ui_format(workflow: Any) -> bool:
    """The editor's save format: {"nodes": [...], "links": [...], ...} instead of {id: {class_type}}."""
    return isinstance(workflow, dict) and isinstance(workflow.get("nodes"), list) and "links" in workflow


def is_link(value: Any) -> TypeGuard[list[Any]]:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str | int)
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def shape_findings(workflow: Any) -> list[Finding]:
    """Is this an API-format workflow at all? Empty list when it is."""
    if is_ui_format(workflow):
        return [
            error("WORKFLOW_UI_FORMAT", "The workflow is in the editor's UI format, not API format.", UI_FORMAT_FIX)
        ]
    if not isinstance(workflow, dict) or not workflow:
        return [
            error(
                "WORKFLOW_INVALID",
                "The workflow must be a non-empty JSON object of nodes.",
                'Send an API-format workflow: {"<node id>": {"class_type": ..., "inputs": {...}}}.',
            )
        ]
    bad = [
        str(k)
        for k, n in workflow.items()
        if not (isinstance(n, dict) and isinstance(n.get("class_type"), str) and isinstance(n.get("inputs", {}), dict))
    ]
    if bad:
        return [
            error(
                "WORKFLOW_INVALID",
                f"Node(s) {', '.join(bad[:10])} lack a string 'class_type' or an 'inputs' object.",
                "Re-export the workflow with Workflow > Export (API).",
                node_id=bad[0],
            )
        ]
    return []


def structure_findings(workflow: Any) -> list[Finding]:
    """What can be judged without ComfyUI: the shape, and links to nodes the workflow doesn't have.

    Used where /object_info is not at hand (the client judging a workflow file from a worker's
    diagnose report), so a broken link is never reported ok.
    """
    findings = shape_findings(workflow)
    if findings:
        return findings
    for node_id, node in workflow.items():
        for name, value in (node.get("inputs") or {}).items():
            if is_link(value) and str(value[0]) not in workflow:
                findings.append(
                    error(
                        "LINK_BROKEN",
                        f"Node {node_id}: {name} is linked to node {value[0]}, which does not exist.",
                        "Reconnect the input in the editor and export the workflow again.",
                        node_id=str(node_id),
                        input=name,
                    )
                )
    return findings


# ---------------------------------------------------------------------------------------------
# /object_info helpers
# ---------------------------------------------------------------------------------------------


def input_specs(node_info: Mapping[str, Any]) -> dict[str, tuple[Any, bool]]:
    """input name -> (spec, required) for the required and optional inputs of a node definition."""
    specs: dict[str, tuple[Any, bool]] = {}
    inputs = node_info.get("input") or {}
    for section, required in (("required", True), ("optional", False)):
        for name, spec in (inputs.get(section) or {}).items():
            specs[name] = (spec, required)
    return specs


def format_widget_names(specs: Mapping[str, tuple[Any, bool]], inputs: Mapping[str, Any]) -> set[str]:
    """Inputs a combo adds for its chosen value: VideoHelperSuite's `formats` option (video/h264-mp4 -> pix_fmt,
    crf, save_metadata, trim_to_audio) declares them there, not as inputs of the node."""
    names: set[str] = set()
    for name, (spec, _required) in specs.items():
        options = spec[1] if isinstance(spec, list | tuple) and len(spec) > 1 and isinstance(spec[1], Mapping) else {}
        formats, chosen = options.get("formats"), inputs.get(name)
        if isinstance(formats, Mapping) and isinstance(chosen, str):
            widgets = formats.get(chosen)
            for widget in widgets if isinstance(widgets, list) else ():
                if isinstance(widget, list | tuple) and widget and isinstance(widget[0], str):
                    names.add(widget[0])
    return names


def combo_choices(spec: Any) -> list[Any] | None:
    """The allowed values of a combo input (both the old and the 'COMBO' spelling), else None."""
    if isinstance(spec, list | tuple) and spec:
        if isinstance(spec[0], list):
            return spec[0]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return list(spec[1].get("options") or [])
    return None


def spec_type(spec: Any) -> str:
    if combo_choices(spec) is not None:
        return "COMBO"
    if isinstance(spec, list | tuple) and spec and isinstance(spec[0], str):
        return spec[0]
    return "*"


def spec_options(spec: Any) -> Mapping[str, Any]:
    if isinstance(spec, list | tuple) and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1]
    return {}


def _types_compatible(output_type: Any, input_type: str) -> bool:
    if isinstance(output_type, list):  # a node that outputs a combo list
        output_type = "COMBO"
    if not isinstance(output_type, str) or "*" in (output_type, input_type):
        return True
    if output_type == input_type:
        return True
    return bool(set(output_type.split(",")) & set(input_type.split(",")))


# ---------------------------------------------------------------------------------------------
# Findings for one workflow
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """Everything the analysis may know about a deployment besides the workflow itself."""

    object_info: ObjectInfo
    models: ModelIndex | None = None
    imports: tuple[PackImport, ...] = ()
    packs: PackLookup = field(default_factory=dict)  # node class -> pack (registry pins + popular packs)
    uploaded: frozenset[str] = frozenset()  # input file names this job stored (newer than object_info's lists)
    known_models: Mapping[str, ModelSpec] = field(default_factory=dict)  # file name -> spec (URL) of any entry
    pack_commits: Mapping[str, str] = field(default_factory=dict)  # installed pack path -> its git commit


def model_lookup(registry: Registry | None) -> dict[str, ModelSpec]:
    """Model file name (and its base name) -> a registry spec, so an inline job's MODEL_MISSING names a URL."""
    lookup: dict[str, ModelSpec] = {}
    for entry in registry.entries.values() if registry is not None else ():
        for spec in entry.models:
            for key in (spec.name, spec.name.rsplit("/", 1)[-1]):
                if key not in lookup or (spec.url and not lookup[key].url):
                    lookup[key] = spec
    return lookup


def _norm(value: str) -> str:
    return value.strip().replace("\\", "/").lower()


def near_match(value: Any, choices: Iterable[Any]) -> str | None:
    """A listed value that differs from `value` only by whitespace, case, path separators, extension or
    a sub-folder prefix: the "did you mean" of VALUE_NOT_IN_LIST and MODEL_MISSING."""
    if not isinstance(value, str) or not value.strip():
        return None
    options = [c for c in choices if isinstance(c, str) and c != value]
    want = _norm(value)
    keys = (
        lambda c: _norm(c),  # whitespace, case, separators
        lambda c: _norm(c).rsplit("/", 1)[-1],  # sub-folder prefix on either side
        lambda c: _stem(_norm(c).rsplit("/", 1)[-1]),  # extension
    )
    targets = (want, want.rsplit("/", 1)[-1], _stem(want.rsplit("/", 1)[-1]))
    for key, target in zip(keys, targets, strict=True):
        hits = [c for c in options if key(c) == target]
        if len(hits) == 1:
            return hits[0]
    return None


def _stem(name: str) -> str:
    dot = name.rfind(".")
    return name[:dot] if dot > 0 and name[dot:] in MODEL_EXTENSIONS | {".png", ".jpg", ".jpeg", ".webp"} else name


def near_class(class_type: str, object_info: Mapping[str, Any]) -> str | None:
    """A node class ComfyUI has that differs from `class_type` only by case, spaces or punctuation."""
    key = re.sub(r"[\W_]+", "", class_type).lower()
    hits = [c for c in object_info if c != class_type and re.sub(r"[\W_]+", "", c).lower() == key]
    return hits[0] if len(hits) == 1 else None


def _did_you_mean(value: Any, choices: Iterable[Any]) -> tuple[str, str | None]:
    hit = near_match(value, choices)
    return (f" Did you mean {hit!r}?" if hit is not None else ""), hit


def pack_lookup(registry: Registry | None, entry: Entry | None = None) -> dict[str, PackRef]:
    """node class -> providing pack, with the entry's own pins winning over everything else."""
    lookup: dict[str, PackRef] = {}
    if registry is not None:
        for pack in registry.known_packs:
            lookup.update(dict.fromkeys(pack.nodes, pack))
        for other in registry.entries.values():
            for pack in other.packs:
                lookup.update(dict.fromkeys(pack.nodes, pack))
    if entry is not None:
        for pack in entry.packs:
            lookup.update(dict.fromkeys(pack.nodes, pack))
    return lookup


def _failed_import(pack: PackRef, imports: Iterable[PackImport]) -> PackImport | None:
    wanted = {pack.name.lower(), pack.repo.rstrip("/").rsplit("/", 1)[-1].lower()}
    return next((i for i in imports if i.failed and i.name.lower() in wanted), None)


def _installed_import(pack: PackRef, imports: Iterable[PackImport]) -> PackImport | None:
    wanted = {pack.name.lower(), pack.repo.rstrip("/").rsplit("/", 1)[-1].lower()}
    return next((i for i in imports if not i.failed and i.name.lower() in wanted), None)


def _node_missing(node_id: str, class_type: str, ctx: Context) -> Finding:
    pack = ctx.packs.get(class_type)
    failed = [i for i in ctx.imports if i.failed]
    if pack is None and failed:
        names = ", ".join(i.name for i in failed[:5])
        return error(
            "NODE_MISSING",
            f"Node {node_id}: class {class_type!r} is not defined; {len(failed)} custom node pack(s) failed to "
            f"import ({names}) and may be the one that provides it.",
            f"Fix the import error of {names} (see the start-up log: usually a missing Python requirement, "
            f"pip install -r {failed[0].path}/requirements.txt) and restart; otherwise install the pack "
            "that provides the node.",
            node_id=node_id,
            path=failed[0].path,
        )
    if pack is None:
        # No pack this worker knows of provides it: a near miss of a class ComfyUI has says what was meant.
        hit = near_class(class_type, ctx.object_info)
        if hit is not None:
            return error(
                "NODE_MISSING",
                f"Node {node_id}: class {class_type!r} is not defined; ComfyUI has {hit!r}. Did you mean {hit!r}?",
                f"Set the node's class_type to {hit!r} (class names are exact: case, spaces and punctuation count).",
                node_id=node_id,
            )
        return error(
            "NODE_MISSING",
            f"Node {node_id}: class {class_type!r} is not defined by ComfyUI or any loaded pack, and no pack the "
            "registry or its known-packs map names provides it (a private pack, a renamed class, or a typo).",
            f"Find the pack that defines {class_type!r} where the workflow came from (ComfyUI-Manager's "
            "'Install Missing Custom Nodes' lists it by name), add it to the image with its requirements, and pin "
            "it in the registry; or remove the node.",
            node_id=node_id,
        )
    broken = _failed_import(pack, ctx.imports)
    if broken is not None:
        cause, fix = import_failure_cause(broken)
        return error(
            "PACK_IMPORT_FAILED",
            f"Node {node_id}: {class_type!r} comes from pack {pack.name}, which failed to import: "
            f"{broken.error or 'see the start-up log'}{cause}.",
            fix,
            node_id=node_id,
            path=broken.path,
        )
    pin = f" at commit {pack.commit}" if pack.commit else ""
    installed = _installed_import(pack, ctx.imports)
    if installed is not None:
        return error(
            "NODE_MISSING",
            f"Node {node_id}: class {class_type!r} is missing although its pack {pack.name} is installed "
            f"({installed.path}"
            + (f" at commit {ctx.pack_commits[installed.path][:12]}" if installed.path in ctx.pack_commits else "")
            + (f"; this workflow pins {pack.commit[:12]}" if pack.commit else "")
            + "): the installed version registers other class names (version skew).",
            f"Install the version of {pack.name} this workflow was made with{pin or ' (pin a commit in the registry)'}"
            f": cd {installed.path} && git fetch && git checkout {pack.commit or '<commit>'}, then restart; "
            "or re-save the workflow with the installed version.",
            node_id=node_id,
            path=installed.path,
        )
    return error(
        "NODE_MISSING",
        f"Node {node_id}: class {class_type!r} is missing; it is provided by pack {pack.name}.",
        f"Install {pack.name} ({pack.repo}){pin} into ComfyUI/custom_nodes and its requirements.txt.",
        node_id=node_id,
    )


def _model_folder(class_type: str, name: str, value: Any, spec: Any, entry: Entry | None) -> str | None:
    if entry is not None:
        for model in entry.models:
            if model.node is not None and model.input == name and model.name in (value, _stripped(value)):
                return model.folder
    if (class_type, name) in LOADER_INPUTS:
        return LOADER_INPUTS[(class_type, name)]
    if isinstance(value, str) and spec_type(spec) == "COMBO" and looks_like_model(value):
        return ""  # a model file in a loader we don't know the folder of
    return None


def looks_like_model(value: str) -> bool:
    value = value.strip()  # a stray space must not hide that it names a model file
    dot = value.rfind(".")
    return dot > 0 and value[dot:].lower() in MODEL_EXTENSIONS


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _model_findings(
    node_id: str | None,
    name: str | None,
    folder: str,
    value: str,
    ctx: Context,
    entry: Entry | None,
    choices: Iterable[Any] = (),
) -> list[Finding]:
    # The registry's spec by the name as written or without stray whitespace (a pasted trailing space).
    names = (value, value.strip())
    spec = next((m for m in entry.models if m.name in names), None) if entry else None
    spec = spec or next((ctx.known_models[n] for n in names if n in ctx.known_models), None)
    spec = spec or ctx.known_models.get(value.strip().rsplit("/", 1)[-1])
    index = ctx.models
    if index is not None and folder and index.sees(folder, value):
        return _model_file_findings(node_id, name, folder, value, index, spec) if spec is not None else []
    where = f"models/{folder}/" if folder else "its model folder"
    if value.strip() in ("", "None", "none", "null", "undefined"):
        return [_unselected_model(node_id, name, folder, value, where)]
    registered = _registered_names(folder, ctx, entry)
    return _missing_model_findings(node_id, name, folder, value, where, index, spec, choices, registered)


def _model_file_findings(
    node_id: str | None, name: str | None, folder: str, value: str, index: ModelIndex, spec: ModelSpec
) -> list[Finding]:
    """A model ComfyUI lists, checked against the registry's size and sha256 for it."""
    findings = []
    for file in (f for f in index.files_named(value) if f.scanned and f.folder == canonical_folder(folder)):
        if spec.size_bytes is not None and file.size_bytes != spec.size_bytes:
            findings.append(
                error(
                    "MODEL_SIZE_MISMATCH",
                    f"{value} is {file.size_bytes:,} bytes; the registry expects {spec.size_bytes:,} "
                    "(truncated download?).",
                    f"Delete {file.path} and download it again" + (f" from {spec.url}." if spec.url else "."),
                    node_id=node_id,
                    input=name,
                    path=file.path,
                )
            )
        digest = (index.checksums or {}).get(file.path)
        if digest and spec.sha256 and digest.lower() != spec.sha256:
            findings.append(
                error(
                    "MODEL_HASH_MISMATCH",
                    f"{value} has sha256 {digest[:12]}…, the registry expects {spec.sha256[:12]}….",
                    f"The file is corrupt or a different version: replace {file.path}"
                    + (f" with {spec.url}." if spec.url else "."),
                    node_id=node_id,
                    input=name,
                    path=file.path,
                )
            )
    return findings


def _unselected_model(node_id: str | None, name: str | None, folder: str, value: str, where: str) -> Finding:
    """A loader saved with no file chosen ("None", "", "undefined")."""
    return error(
        "MODEL_MISSING",
        f"No model is selected for {name or folder!r}"
        + (f" (node {node_id})" if node_id else "")
        + f": the workflow was saved with {value!r}, which happens when the editor had no file in "
        f"{where} to offer.",
        f"Put the model into {where} (network volume: /runpod-volume/models/{folder or '<folder>'}/) "
        f"and set {name or 'the input'} to its file name.",
        node_id=node_id,
        input=name,
    )


def _missing_model_findings(
    node_id: str | None,
    name: str | None,
    folder: str,
    value: str,
    where: str,
    index: ModelIndex | None,
    spec: ModelSpec | None,
    choices: Iterable[Any],
    registered: Sequence[str] = (),
) -> list[Finding]:
    """A model ComfyUI does not list: a near name it does list, the file found elsewhere, or missing."""
    listed = index.comfy_sees.get(canonical_folder(folder), frozenset()) if index and folder else choices
    hint, hit = _did_you_mean(value, sorted(c for c in listed if isinstance(c, str)))
    if hit is None:
        # Not on the worker under any near name either: the registry's names still say what was meant,
        # so "did you mean" survives a model that is missing as well as misspelled.
        # a registered name written exactly is only missing: no sibling of the same stem was meant
        hit = near_match(value, registered) if value not in registered else None
        if hit is not None:
            url = f" Download: {spec.url}" if spec and spec.url else ""
            return [
                error(
                    "MODEL_MISSING",
                    f"Model {value!r} is not available to ComfyUI ({where})"
                    + (f" (node {node_id}, {name})" if node_id else "")
                    + f". Did you mean {hit!r}? That file is not on the worker either.",
                    f"Set {name or 'the input'} to {hit!r} (mind spaces, case, extension and sub-folder) and put "
                    f"{hit} into {where} (network volume: /runpod-volume/models/{folder or '<folder>'}/).{url}",
                    node_id=node_id,
                    input=name,
                )
            ]
    if hit is not None:
        return [
            error(
                "MODEL_MISSING",
                f"Model {value!r} is not listed in {where}"
                + (f" (node {node_id}, {name})" if node_id else "")
                + f".{hint}",
                f"Set {name or 'the input'} to {hit!r}, the name ComfyUI lists (mind spaces, case, extension "
                "and sub-folder).",
                node_id=node_id,
                input=name,
            )
        ]
    elsewhere = index.files_named(value) if index else []
    if elsewhere:
        file = elsewhere[0]
        reason = "in a directory ComfyUI does not scan" if not file.scanned else f"in the {file.folder!r} folder"
        return [
            error(
                "MODEL_IN_WRONG_FOLDER",
                f"{value} exists at {file.path} ({reason}), but ComfyUI does not list it "
                f"for {name or folder!r}" + (f" (node {node_id})." if node_id else "."),
                f"Move it to {where} on the volume or image, or add its directory to extra_model_paths.yaml "
                f"under '{folder or 'the right folder'}'.",
                node_id=node_id,
                input=name,
                path=file.path,
            )
        ]
    url = f" Download: {spec.url}" if spec and spec.url else ""
    pending = index.cache_pending.get(f"{canonical_folder(folder)}/{value}") if index and folder else None
    return [
        error(
            "MODEL_MISSING",
            f"Model {value!r} is not available to ComfyUI ({where})"
            + (f" (node {node_id}, {name})." if node_id else ".")
            + (f" {pending}" if pending else ""),
            f"Put {value} into {where} (on the network volume: /runpod-volume/models/{folder or '<folder>'}/).{url}"
            + (
                " Or wait for RunPod to finish caching the endpoint's Model, then restart the worker."
                if pending
                else ""
            ),
            node_id=node_id,
            input=name,
        )
    ]


def _value_findings(node_id: str, name: str, value: Any, spec: Any) -> list[Finding]:
    kind = spec_type(spec)
    choices = combo_choices(spec)
    if choices is not None:
        return [] if value in choices else [_not_in_list(node_id, name, value, spec, choices)]
    if kind in ("INT", "FLOAT"):
        return _number_findings(node_id, name, value, spec, kind)
    if kind == "STRING" and not isinstance(value, str):
        return [
            error(
                "VALUE_WRONG_TYPE",
                f"Node {node_id}: {name} must be a string, got {type(value).__name__}.",
                f"Send a string for {name}.",
                node_id=node_id,
                input=name,
            )
        ]
    if kind == "BOOLEAN" and not isinstance(value, bool):
        return [
            error(
                "VALUE_WRONG_TYPE",
                f"Node {node_id}: {name} must be true or false, got {value!r}.",
                f"Send a boolean for {name}.",
                node_id=node_id,
                input=name,
            )
        ]
    return []


def _not_in_list(node_id: str, name: str, value: Any, spec: Any, choices: list[Any]) -> Finding:
    shown = ", ".join(map(str, choices[:8])) + (" …" if len(choices) > 8 else "")
    hint, hit = _did_you_mean(value, choices)
    return error(
        "VALUE_NOT_IN_LIST",
        f"Node {node_id}: {name}={value!r} is not one of: {shown or '(empty list)'}.{hint}",
        f"Set {name} to {hit!r}."
        if hit is not None
        else (
            f"Send the file with the job (input.images: [{{'name': {value!r}, 'image': <base64>}}]) "
            "or use a file already in ComfyUI's input folder."
            if spec_options(spec).get("image_upload")
            else f"Set {name} to one of the listed values."
        ),
        node_id=node_id,
        input=name,
    )


def _number_findings(node_id: str, name: str, value: Any, spec: Any, kind: str) -> list[Finding]:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and math.isnan(value))
    ):
        return [
            error(
                "VALUE_WRONG_TYPE",
                f"Node {node_id}: {name} must be a number, got {value!r}.",
                f"Send a {kind.lower()} for {name}.",
                node_id=node_id,
                input=name,
            )
        ]
    opts = spec_options(spec)
    lo, hi = opts.get("min"), opts.get("max")
    if (isinstance(lo, int | float) and value < lo) or (isinstance(hi, int | float) and value > hi):
        return [
            error(
                "VALUE_OUT_OF_RANGE",
                f"Node {node_id}: {name}={value} is outside {lo}..{hi}.",
                f"Set {name} between {lo} and {hi}.",
                node_id=node_id,
                input=name,
            )
        ]
    return []


def _link_findings(
    node_id: str, name: str, link: list[Any], spec: Any, workflow: Mapping[str, Any], ctx: Context
) -> list[Finding]:
    source_id, index = str(link[0]), link[1]
    source = workflow.get(source_id)
    if not isinstance(source, dict):
        return [
            error(
                "LINK_BROKEN",
                f"Node {node_id}: {name} is linked to node {source_id}, which does not exist.",
                "Reconnect the input in the editor and export the workflow again.",
                node_id=node_id,
                input=name,
            )
        ]
    source_info = ctx.object_info.get(source.get("class_type", ""))
    if source_info is None:
        return []  # the missing source node is reported on its own
    outputs = source_info.get("output") or []
    if not 0 <= index < len(outputs):
        return [
            error(
                "LINK_BROKEN",
                f"Node {node_id}: {name} uses output {index} of node {source_id} "
                f"({source['class_type']}), which has {len(outputs)} output(s).",
                "Reconnect the input in the editor and export the workflow again.",
                node_id=node_id,
                input=name,
            )
        ]
    if not _types_compatible(outputs[index], spec_type(spec)):
        return [
            error(
                "LINK_BROKEN",
                f"Node {node_id}: {name} expects {spec_type(spec)} but node {source_id} output "
                f"{index} gives {outputs[index]}.",
                "Connect an output of the expected type.",
                node_id=node_id,
                input=name,
            )
        ]
    return []


def analyze_workflow(workflow: Any, ctx: Context, entry: Entry | None = None) -> list[Finding]:
    """All findings for one API-format workflow against one deployment. Never raises on bad data."""
    findings = shape_findings(workflow)
    if findings:
        return findings
    has_output = False
    # Image inputs are filled per request, so their placeholder values are not judged.
    per_request = {
        (t.node, t.input) for name in ("image", "end_image") for t in (entry.parameters.get(name, ()) if entry else ())
    }
    for node_id, node in workflow.items():
        node_id = str(node_id)
        class_type = node["class_type"]
        info = ctx.object_info.get(class_type)
        if not isinstance(info, Mapping):
            findings.append(_node_missing(node_id, class_type, ctx))
            continue
        has_output = has_output or bool(info.get("output_node"))
        findings += _node_findings(
            node_id, class_type, node.get("inputs") or {}, info, workflow, ctx, entry, per_request
        )
    if entry is not None:
        findings += _unreferenced_model_findings(entry, ctx)
    if not has_output and not any(f.code in ("NODE_MISSING", "PACK_IMPORT_FAILED") for f in findings):
        findings.append(
            error(
                "NO_OUTPUT_NODE",
                "The workflow has no output node, so ComfyUI would run nothing.",
                "Add a SaveImage, SaveVideo or VHS_VideoCombine node.",
                node_id=None,
            )
        )
    return findings


def _registered_names(folder: str, ctx: Context, entry: Entry | None) -> list[str]:
    """Model names the registry knows for this folder (the entry's first, then every entry's)."""
    specs = [*(entry.models if entry else ()), *ctx.known_models.values()]
    wanted = canonical_folder(folder) if folder else None
    return sorted({m.name for m in specs if wanted is None or canonical_folder(m.folder) == wanted})


def _node_findings(
    node_id: str,
    class_type: str,
    inputs: Mapping[str, Any],
    info: Mapping[str, Any],
    workflow: Mapping[str, Any],
    ctx: Context,
    entry: Entry | None,
    per_request: set[tuple[str, str]],
) -> list[Finding]:
    """One node's inputs against its definition: missing, linked, model, value and unknown inputs."""
    findings: list[Finding] = []
    specs = input_specs(info)
    for name, (spec, required) in specs.items():
        if name not in inputs:
            if required:
                findings.append(
                    error(
                        "INPUT_MISSING",
                        f"Node {node_id} ({class_type}): required input {name!r} is missing.",
                        f"Set {name} or connect it.",
                        node_id=node_id,
                        input=name,
                    )
                )
            continue
        value = inputs[name]
        if (node_id, name) in per_request or (isinstance(value, str) and value in ctx.uploaded):
            continue
        if is_link(value):
            findings += _link_findings(node_id, name, value, spec, workflow, ctx)
            continue
        folder = _model_folder(class_type, name, value, spec, entry)
        if folder is not None and isinstance(value, str):
            findings += _model_findings_for(node_id, class_type, name, folder, value, ctx, entry)
            continue
        findings += _value_findings(node_id, name, value, spec)
    hidden = set((info.get("input") or {}).get("hidden") or {}) | format_widget_names(specs, inputs)
    for name in inputs:
        if name not in specs and name not in hidden:
            findings.append(
                warning(
                    "INPUT_UNKNOWN",
                    f"Node {node_id} ({class_type}) has no input {name!r}; it is ignored.",
                    f"Check the spelling; known inputs: {', '.join(specs) or 'none'}.",
                    node_id=node_id,
                    input=name,
                )
            )
    return findings


def _model_findings_for(
    node_id: str, class_type: str, name: str, folder: str, value: str, ctx: Context, entry: Entry | None
) -> list[Finding]:
    spec = input_specs(ctx.object_info.get(class_type, {})).get(name, (None, True))[0]
    if (ctx.models is None or not folder) and value in (combo_choices(spec) or []):
        return []
    if ctx.models is None:
        ctx = (
            replace(ctx, models=ModelIndex({canonical_folder(folder): frozenset(combo_choices(spec) or [])}))
            if folder
            else ctx
        )
        if not folder:
            return _value_findings(node_id, name, value, spec)
    return _model_findings(node_id, name, folder, value, ctx, entry, combo_choices(spec) or ())


def _unreferenced_model_findings(entry: Entry, ctx: Context) -> list[Finding]:
    """Registry models that no node input names (loaded by path inside a pack, say)."""
    if ctx.models is None:
        return []
    return [
        finding
        for spec in entry.models
        if spec.node is None
        for finding in _model_findings(None, None, spec.folder, spec.name, ctx, entry)
    ]


def model_findings(workflow: Any, ctx: Context, entry: Entry | None = None) -> list[Finding]:
    """Only the model findings of analyze_workflow, for an index without ComfyUI (the volume check).

    The loader inputs come from the registry entry's models and LOADER_INPUTS, since there is no
    /object_info to tell a model combo from any other; the judgement is `_model_findings`, as above.
    """
    if ctx.models is None or shape_findings(workflow):
        return []
    findings: list[Finding] = []
    for node_id, node in workflow.items():
        for name, value in (node.get("inputs") or {}).items():
            if not isinstance(value, str):
                continue
            folder = _model_folder(node["class_type"], name, value, None, entry)
            if folder:
                findings += _model_findings(str(node_id), name, folder, value, ctx, entry)
    if entry is not None:
        findings += _unreferenced_model_findings(entry, ctx)
    return findings


def unscanned_model_findings(files: Iterable[ModelFile]) -> list[Finding]:
    """MODEL_NOT_SEEN for every model file found where ComfyUI does not list it (on a worker's disk or
    in a volume's S3 listing alike)."""
    return [not_seen_finding(f.path, f.folder) for f in files if not f.scanned]


def import_failure_cause(p: PackImport) -> tuple[str, str]:
    """What a pack's import error means and how to fix it, from the field-drawn signature table
    (" [CODE: cause]", fix); without a match, the pack's requirements are the usual cause."""
    found = signatures.match(None, p.error or "", stage="import")
    if found is None:
        return "", (
            f"Read the import error above (the traceback is in logs_tail): usually a missing requirement, "
            f"pip install -r {p.path}/requirements.txt into ComfyUI's venv; or remove the pack. Then restart."
        )
    return f" [{found.code}: {found.cause}]", f"{found.fix} (pack {p.name} at {p.path})"


def import_findings(imports: Iterable[PackImport]) -> list[Finding]:
    findings = []
    for p in imports:
        if not p.failed:
            continue
        cause, fix = import_failure_cause(p)
        findings.append(
            error(
                "PACK_IMPORT_FAILED",
                f"Custom node pack {p.name} failed to import: {p.error or 'see the start-up log'}{cause}.",
                fix,
                path=p.path,
            )
        )
    return findings


# ---------------------------------------------------------------------------------------------
# Across the registry
# ---------------------------------------------------------------------------------------------


def node_check(registry: Registry, object_info: ObjectInfo) -> dict[str, Any]:
    """Which node classes the registry needs are defined, and which pack provides each missing one."""
    needed = registry.required_nodes()
    missing = []
    for class_type in sorted(needed):
        if class_type not in object_info:
            pack = registry.pack_for_node(class_type)
            missing.append(
                {
                    "node": class_type,
                    "pack": pack.name if pack else None,
                    "repo": pack.repo if pack else None,
                    "workflows": needed[class_type],
                }
            )
    return {"required_available": sorted(set(needed) - {m["node"] for m in missing}), "required_missing": missing}


def workflow_report(entry: Entry, workflow: Any, ctx: Context, findings: list[Finding] | None = None) -> dict[str, Any]:
    """The per-workflow block of a diagnose response (findings: already judged, e.g. models only)."""
    if findings is None:
        findings = analyze_workflow(workflow, ctx, entry)
    nodes = sorted({n["class_type"] for n in workflow.values()}) if not shape_findings(workflow) else []
    missing_models: dict[str, list[str]] = {}
    for f in findings:
        if f.code in ("MODEL_MISSING", "MODEL_IN_WRONG_FOLDER") and f.node_id and f.input:
            folder = LOADER_INPUTS.get((workflow[f.node_id]["class_type"], f.input)) if f.node_id in workflow else None
            spec_folder = next((m.folder for m in entry.models if m.node == f.node_id and m.input == f.input), None)
            value = workflow.get(f.node_id, {}).get("inputs", {}).get(f.input)
            missing_models.setdefault(spec_folder or folder or "unknown", []).append(str(value))
    return {
        "workflow": entry.id,
        "ok": not any(f.severity == "error" for f in findings),
        "nodes": nodes,
        "missing_nodes": sorted(
            {
                workflow[f.node_id]["class_type"]
                for f in findings
                if f.code in ("NODE_MISSING", "PACK_IMPORT_FAILED") and f.node_id in workflow
            }
        ),
        "missing_models": missing_models,
        "invalid_values": [
            f.to_dict()
            for f in findings
            if f.code in ("VALUE_NOT_IN_LIST", "VALUE_OUT_OF_RANGE", "VALUE_WRONG_TYPE", "INPUT_MISSING")
        ],
        "findings": [f.to_dict() for f in findings],
    }
