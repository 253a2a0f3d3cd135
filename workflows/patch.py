"""Patch parameters, overrides and uploaded image names into an API-format workflow. Pure."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from workflows.errors import JobError
from workflows.parameters import ParameterError, check_parameter
from workflows.paths import FILE_INPUTS, OUTPUT_NAMING, is_link, linked_literal, literal
from workflows.registry import Entry
from workflows.request import GenerateRequest, ImageInput

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


class PatchError(ValueError):
    """A parameter or override can't be applied; `code` is the error code for the response."""

    def __init__(self, message: str, code: str = "BAD_INPUT") -> None:
        super().__init__(message)
        self.code = code


def _set(workflow: dict[str, Any], node_id: str, input_name: str, value: Any, what: str) -> None:
    node = workflow.get(node_id)
    if not isinstance(node, dict):
        raise PatchError(f"{what}: node {node_id!r} is not in the workflow", "WORKFLOW_INVALID")
    node.setdefault("inputs", {})[input_name] = value


def apply_parameters(
    workflow: Mapping[str, Any],
    entry: Entry | None,
    params: Mapping[str, Any],
    images: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    renames: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A patched copy of `workflow`.

    params: patchable parameters (see PATCHABLE), mapped through the registry entry's parameter map.
    images: 'image' / 'end_image' -> stored input file name, mapped the same way.
    overrides: {node_id: {input: value}} applied last, for anything else.
    renames: requested input file name -> stored name; every string input equal to a requested name is
        rewritten, so inline workflows that reference uploaded images by name keep working.
    """
    patched = copy.deepcopy(dict(workflow))
    targeted = {**params, **(images or {})}
    if targeted and entry is None:
        raise PatchError(
            f"parameters {', '.join(sorted(targeted))} need a registered workflow that maps them to nodes; "
            "with an inline workflow use 'overrides': {node_id: {input: value}} instead"
        )
    for name, value in params.items():
        try:
            check_parameter(name, value)
        except ParameterError as exc:
            raise PatchError(str(exc)) from None
    for name, value in targeted.items():
        assert entry is not None
        targets = entry.parameters.get(name)
        if not targets:
            accepted = ", ".join(sorted(entry.parameters)) or "none"
            raise PatchError(f"workflow {entry.id!r} has no {name!r} parameter (it accepts: {accepted})")
        for target in targets:
            _set(patched, target.node, target.input, value, f"parameter {name}")
    # Only where a file is meant: a loader's file input (workflows.paths.FILE_INPUTS), or a value that is
    # an image file name (a custom pack's loader). An image named "euler" must not change a sampler.
    if renames:
        for node in patched.values():
            if isinstance(node, dict):
                inputs = node.get("inputs") or {}
                file_inputs = FILE_INPUTS.get(str(node.get("class_type")), {})
                for key, value in inputs.items():
                    is_file = key in file_inputs or (
                        isinstance(value, str) and value.lower().endswith(IMAGE_EXTENSIONS)
                    )
                    if is_file and isinstance(value, str) and value in renames:
                        inputs[key] = renames[value]
    for node_id, values in (overrides or {}).items():
        if not isinstance(values, Mapping):
            raise PatchError(f"overrides[{node_id!r}] must be an object of input: value")
        for input_name, value in values.items():
            _set(patched, str(node_id), str(input_name), value, "override")
    return patched


def scope_outputs(workflow: dict[str, Any], job_key: str) -> None:
    """Send every output of the job into its own subfolder, in place.

    Unique names per job (no collisions, no cache hit on a repeated prompt) and one folder to remove
    afterwards. Path separators and '..' in a requested prefix can't climb out of that folder.

    Each output-naming input (workflows.paths.OUTPUT_NAMING) is scoped as ComfyUI would read it: a
    `{"__value__": x}` is x, a number its text, a link from a Primitive node that node's literal (the
    input gets the scoped literal; the Primitive, which may feed other inputs, is left alone). A name
    fed by any other node's output is built at run time, so it can't be scoped here: it is left as it is
    and the judge refuses it (PATH_REFUSED, workflows.paths.file_inputs). Scoping at the root instead
    (ComfyUI's folder_paths.get_save_image_path) would mean patching ComfyUI, and every pack that names
    its files its own way would still escape; the kernel's confinement holds the rest.
    """
    for node in workflow.values():
        if not isinstance(node, dict) or not isinstance(inputs := node.get("inputs"), dict):
            continue
        for name in OUTPUT_NAMING & inputs.keys():
            prefix = literal(inputs[name])
            if is_link(prefix):
                prefix = linked_literal(workflow, prefix)
            if isinstance(prefix, list | dict):
                continue  # a link from another node (or a list): judged, and refused, by the policy
            parts = [p for p in str(prefix).replace("\\", "/").split("/") if p not in ("", ".", "..")]
            inputs[name] = "/".join([job_key, *parts]) if parts else f"{job_key}/output"


def patch_job(
    workflow: Mapping[str, Any],
    entry: Entry | None,
    request: GenerateRequest,
    stored: Mapping[ImageInput, str],
    job_key: str,
) -> dict[str, Any]:
    """The workflow a job queues: its parameters, stored image names and overrides patched in, outputs
    scoped to the job's folder. `stored` maps each request image to the name it was stored under."""
    try:
        patched = apply_parameters(
            workflow,
            entry,
            request.params,
            images={i.role: name for i, name in stored.items() if i.role},
            overrides=request.overrides,
            renames={i.name: name for i, name in stored.items() if not i.role},
        )
    except PatchError as exc:
        raise JobError(exc.code, str(exc)) from None
    scope_outputs(patched, job_key)
    return patched
