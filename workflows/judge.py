"""The judgement before queueing: is this job's workflow runnable here, and if not, exactly why?

Pure. The worker's generate and the client's direct mode both call `judge_before_queue` with the
same facts (ComfyUI's /object_info, the model index, the pack map, the job policy), so ComfyUI never
sees a workflow that can already be told broken, and both halves give the same codes and fixes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from workflows.analysis import (
    Context,
    PackLookup,
    analyze_workflow,
    combo_choices,
    is_link,
    looks_like_model,
    near_match,
    shape_findings,
    spec_options,
    spec_type,
)
from workflows.errors import CODES, JobError
from workflows.findings import Finding, Severity, error
from workflows.models import LOADER_INPUTS
from workflows.paths import PathFact
from workflows.policy import JobPolicy, limit_findings, policy_findings
from workflows.registry import Entry

# Most specific first: a policy refusal ends the judgement before anything else is looked at.
_ORDER = (
    "POLICY_DENIED",
    "PATH_REFUSED",
    "LIMIT_EXCEEDED",
    "NODE_MISSING",
    "PACK_IMPORT_FAILED",
    "LINK_BROKEN",
    "MODEL_MISSING",
)


def judge_before_queue(
    workflow: dict,
    ctx: Context,
    *,
    entry: Entry | None,
    origin: str,
    policy: JobPolicy,
    overridden: Mapping[str, frozenset[str]] | None = None,
    paths: Mapping[tuple[str, str], PathFact] | None = None,
) -> list[Finding]:
    """Every error finding that would make this job fail, most important first (empty: go ahead).

    `paths`: the caller's facts about the files the workflow names (workflows.paths); None when it
    can't look at ComfyUI's disk (the client), so only the pure path checks apply."""
    shape = shape_findings(workflow)
    if shape:
        return shape
    refused = policy_findings(
        workflow, policy, origin=origin, overridden=overridden, paths=paths, object_info=ctx.object_info
    )
    if refused:
        return sorted(refused, key=lambda f: _ORDER.index(f.code))
    # Only what makes the job fail: a size or hash that differs from the registry's is diagnose's evidence.
    errors = [f for f in analyze_workflow(workflow, ctx, entry) if f.severity is Severity.ERROR and f.code in CODES]
    if not errors:  # within ComfyUI's own bounds: now the deployment's (MAX_SIDE, MAX_FRAMES, MAX_BATCH)
        return limit_findings(workflow, policy)
    return sorted(errors, key=lambda f: _ORDER.index(f.code) if f.code in _ORDER else len(_ORDER))


# Refusals that fresh node definitions or a fresh model index can't change: no second look for them.
FINAL_CODES = frozenset({"POLICY_DENIED", "PATH_REFUSED", "LIMIT_EXCEEDED"})


def judge_with_refresh(judge: Callable[[bool], list[Finding]]) -> list[Finding]:
    """`judge(refresh)` against cached facts; on a miss, once more against fresh ones (a pack or a model
    file may have appeared since they were cached). The worker and direct mode share this rule."""
    found = judge(False)
    if found and found[0].code not in FINAL_CODES:
        found = judge(True)
    return found


def findings_error(findings: Sequence[Finding], details: Mapping[str, Any] | None = None) -> JobError:
    """The job error for a non-empty list of findings: led by the first, carrying all of them."""
    first = findings[0]
    code = first.code if first.code in CODES else "WORKFLOW_INVALID"
    more = f" (and {len(findings) - 1} more finding(s): see findings)" if len(findings) > 1 else ""
    return JobError(code, first.message + more, dict(details or {}), findings, fix=first.fix)


# ---------------------------------------------------------------------------------------------
# ComfyUI's own rejection (POST /prompt -> 400), mapped to the same finding codes
# ---------------------------------------------------------------------------------------------

DOES_NOT_EXIST = re.compile(r"node (?P<cls>.+?) does not exist")
_RANGE = ("value_smaller_than_min", "value_bigger_than_max")
_LINKS = ("exception_during_inner_validation", "bad_linked_input", "return_type_mismatch")


def rejection_findings(body: Any, workflow: Mapping[str, Any], packs: PackLookup | None = None) -> list[Finding]:
    """ComfyUI's 400 answer to /prompt as findings with our codes and fixes (empty: nothing we recognise).

    Why: the pre-queue judgement catches most of these, but ComfyUI may know more (a list that changed
    since /object_info was cached, a pack's own validation); its raw text stays in the job's details.
    """
    if not isinstance(body, Mapping):
        return []
    err = found if isinstance(found := body.get("error"), Mapping) else {}
    if m := DOES_NOT_EXIST.search(str(err.get("message") or "")):
        pack = (packs or {}).get(m["cls"])
        node_id = next(
            (str(k) for k, v in workflow.items() if isinstance(v, dict) and v.get("class_type") == m["cls"]), None
        )
        where = f"; it is provided by pack {pack.name} ({pack.repo})" if pack else ""
        fix = (
            f"Install {pack.name} ({pack.repo})"
            + (f" at commit {pack.commit}" if pack.commit else "")
            + " into ComfyUI/custom_nodes with its requirements.txt."
            if pack
            else "Install the custom node pack that provides it (search the node name in ComfyUI-Manager), "
            "or remove the node."
        )
        return [error("NODE_MISSING", f"ComfyUI has no node class {m['cls']!r}{where}.", fix, node_id=node_id)]
    findings: list[Finding] = []
    node_errors = found if isinstance(found := body.get("node_errors"), Mapping) else {}
    for node_id, info in node_errors.items():
        if not isinstance(info, Mapping):
            continue
        node_id = str(node_id)
        class_type = str(info.get("class_type") or (workflow.get(node_id) or {}).get("class_type") or "?")
        for e in info.get("errors") or []:
            if isinstance(e, Mapping):
                finding = _node_error_finding(node_id, class_type, e, workflow)
                if finding is not None:
                    findings.append(finding)
    return sorted(findings, key=lambda f: _ORDER.index(f.code) if f.code in _ORDER else len(_ORDER))


def _node_error_finding(
    node_id: str, class_type: str, e: Mapping[str, Any], workflow: Mapping[str, Any]
) -> Finding | None:
    kind = e.get("type")
    extra = found if isinstance(found := e.get("extra_info"), Mapping) else {}
    name = extra.get("input_name") if isinstance(extra.get("input_name"), str) else None
    inputs = (workflow.get(node_id) or {}).get("inputs") or {}
    value = extra.get("received_value", inputs.get(name) if name else None)
    config = extra.get("input_config")
    where = f"Node {node_id} ({class_type})"
    if kind == "value_not_in_list":
        return _not_in_list_finding(where, node_id, class_type, name, value, config)
    if kind in _LINKS:
        return _link_finding(where, node_id, kind, name, inputs, workflow)
    if kind == "custom_validation_failed" and "Invalid image file" in str(e.get("details") or ""):
        return error(
            "VALUE_NOT_IN_LIST",
            f"{where}: {name or 'image'}={value!r} is not a file in ComfyUI's input folder.",
            f"Send the file with the job (input.images: [{{'name': {value!r}, 'image': <base64>}}]).",
            node_id=node_id,
            input=name or "image",
        )
    if kind == "required_input_missing":
        return error(
            "INPUT_MISSING",
            f"{where}: required input {name!r} is missing.",
            f"Set {name} or connect it.",
            node_id=node_id,
            input=name,
        )
    if kind in _RANGE:
        opts = spec_options(config)
        return error(
            "VALUE_OUT_OF_RANGE",
            f"{where}: {name}={value!r} is outside {opts.get('min')}..{opts.get('max')}.",
            f"Set {name} between {opts.get('min')} and {opts.get('max')}.",
            node_id=node_id,
            input=name,
        )
    if kind == "invalid_input_type":
        return error(
            "VALUE_WRONG_TYPE",
            f"{where}: {name}={value!r} is not a valid {spec_type(config).lower()}.",
            f"Send a {spec_type(config).lower()} for {name}.",
            node_id=node_id,
            input=name,
        )
    return None


def _not_in_list_finding(
    where: str, node_id: str, class_type: str, name: str | None, value: Any, config: Any
) -> Finding:
    """ComfyUI's value_not_in_list: MODEL_MISSING for a loader's file, else VALUE_NOT_IN_LIST."""
    choices = combo_choices(config) or []
    folder = LOADER_INPUTS.get((class_type, name or ""))
    hit = near_match(value, choices)
    hint = f" Did you mean {hit!r}?" if hit else ""
    if folder or (isinstance(value, str) and looks_like_model(value)):
        place = f"models/{folder}/" if folder else "its model folder"
        return error(
            "MODEL_MISSING",
            f"{where}: model {value!r} for {name} is not in {place} as ComfyUI lists it.{hint}",
            f"Set {name} to {hit!r}."
            if hit
            else f"Put {value} into {place} (network volume: /runpod-volume/models/{folder or '<folder>'}/).",
            node_id=node_id,
            input=name,
        )
    shown = ", ".join(map(str, choices[:8])) + (" …" if len(choices) > 8 else "")
    return error(
        "VALUE_NOT_IN_LIST",
        f"{where}: {name}={value!r} is not one of: {shown or '(empty list)'}.{hint}",
        f"Set {name} to {hit!r}." if hit else f"Set {name} to one of the listed values.",
        node_id=node_id,
        input=name,
    )


def _link_finding(
    where: str, node_id: str, kind: Any, name: str | None, inputs: Mapping[str, Any], workflow: Mapping[str, Any]
) -> Finding:
    """A link ComfyUI refused: to a node that does not exist, or to an output of the wrong type."""
    if name is None or name not in inputs or not is_link(inputs[name]):  # ComfyUI names the downstream input
        name = next((k for k, v in inputs.items() if is_link(v) and str(v[0]) not in workflow), name)
    link = inputs.get(name) if name else None
    target = (
        f"linked to node {link[0]}, which does not exist"
        if is_link(link) and str(link[0]) not in workflow
        else f"linked to an output that does not fit ({kind})"
    )
    return error(
        "LINK_BROKEN",
        f"{where}: {name or 'an input'} is {target}.",
        "Reconnect the input in the editor and export the workflow again.",
        node_id=node_id,
        input=name,
    )
