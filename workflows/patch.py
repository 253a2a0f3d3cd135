"""Patch parameters, overrides and uploaded image names into an API-format workflow. Pure."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from workflows.registry import Entry

# parameter -> (accepted Python types, lower bound, description for errors)
_PARAM_RULES: dict[str, tuple[tuple[type, ...], float | None, str]] = {
    "seed": ((int,), 0, "a whole number ≥ 0"),
    "steps": ((int,), 1, "a whole number ≥ 1"),
    "cfg": ((int, float), 0, "a number ≥ 0"),
    "denoise": ((int, float), 0, "a number from 0 to 1"),
    "frames": ((int,), 1, "a whole number ≥ 1"),
    "fps": ((int, float), 0.01, "a number > 0"),
    "width": ((int,), 16, "a whole number ≥ 16"),
    "height": ((int,), 16, "a whole number ≥ 16"),
    "prompt": ((str,), None, "a string"),
    "negative_prompt": ((str,), None, "a string"),
    "filename_prefix": ((str,), None, "a string"),
}
PATCHABLE = tuple(_PARAM_RULES)


class PatchError(ValueError):
    """A parameter or override can't be applied; `code` is the error code for the response."""

    def __init__(self, message: str, code: str = "BAD_INPUT") -> None:
        super().__init__(message)
        self.code = code


def check_parameter(name: str, value: Any) -> Any:
    """Validate one patchable parameter's value and return it (ints stay ints for INT inputs)."""
    kinds, low, described = _PARAM_RULES[name]
    ok = isinstance(value, kinds) and not isinstance(value, bool)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if ok and low is not None and value < low:
        ok = False
    if ok and name == "denoise" and value > 1:
        ok = False
    if ok and name in ("prompt", "negative_prompt") and len(value) > 100_000:
        ok = False
    if not ok:
        raise PatchError(f"{name} must be {described}, got {value!r:.80}")
    return value


def check_parameters(data: Mapping[str, Any]) -> dict[str, Any]:
    """The patchable parameters present in a job input, each validated (PatchError on the first bad one)."""
    return {name: check_parameter(name, data[name]) for name in PATCHABLE if name in data}


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
        check_parameter(name, value)
    for name, value in targeted.items():
        assert entry is not None
        targets = entry.parameters.get(name)
        if not targets:
            accepted = ", ".join(sorted(entry.parameters)) or "none"
            raise PatchError(f"workflow {entry.id!r} has no {name!r} parameter (it accepts: {accepted})")
        for target in targets:
            _set(patched, target.node, target.input, value, f"parameter {name}")
    if renames:
        for node in patched.values():
            if isinstance(node, dict):
                inputs = node.get("inputs") or {}
                for key, value in inputs.items():
                    if isinstance(value, str) and value in renames:
                        inputs[key] = renames[value]
    for node_id, values in (overrides or {}).items():
        if not isinstance(values, Mapping):
            raise PatchError(f"overrides[{node_id!r}] must be an object of input: value")
        for input_name, value in values.items():
            _set(patched, str(node_id), str(input_name), value, "override")
    return patched
