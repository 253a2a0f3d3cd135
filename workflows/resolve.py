"""Which workflow a job runs: a registered name, an inline API-format workflow, or an editor save.

Pure: ComfyUI's node definitions come in through a callable, so the worker passes its cached
/object_info and the client's direct mode its own; both resolve exactly alike.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workflows.analysis import UI_FORMAT_FIX, is_ui_format, shape_findings
from workflows.errors import JobError
from workflows.registry import Entry, Registry
from workflows.ui_convert import ui_to_api

Origin = Literal["registered", "inline", "editor"]
# refresh=True asks for fresh definitions (a pack may have loaded since they were cached)
ObjectInfoSource = Callable[[bool], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Resolved:
    entry: Entry | None
    workflow: dict[str, Any]  # API format, a fresh copy the caller may patch
    origin: Origin


def resolve_workflow(
    registry: Registry,
    workflow: str | dict[str, Any] | None,
    default: str,
    object_info: ObjectInfoSource,
    versions: Callable[[], Mapping[str, Collection[str]]] | None = None,
) -> Resolved:
    """The job's workflow in API format. `versions`: the installed packs' versions (asked only for an
    editor save: the converter maps a node whose saved values don't fit only when its save records the
    installed version)."""
    if workflow is None or isinstance(workflow, str):
        name = workflow or default
        entry = registry.get(name)
        if entry is None:
            problem = registry.problems.get(name)
            if problem is not None:
                raise JobError(
                    "WORKFLOW_BROKEN",
                    f"registered workflow {name!r} is disabled: {problem}",
                    {"workflow": name, "problem": problem},
                )
            raise JobError(
                "WORKFLOW_NOT_FOUND",
                f"no registered workflow {name[:100]!r}",
                {"registered": sorted(registry.entries)},
            )
        return Resolved(entry, entry.workflow(), "registered")
    if is_ui_format(workflow):
        installed = versions() if versions is not None else None
        return Resolved(None, convert_editor_workflow(workflow, object_info, installed), "editor")
    problems = shape_findings(workflow)
    if problems:
        raise JobError("WORKFLOW_INVALID", problems[0].message, {"fix": problems[0].fix}, problems)
    return Resolved(None, workflow, "inline")


def convert_editor_workflow(
    workflow: dict[str, Any], object_info: ObjectInfoSource, versions: Mapping[str, Collection[str]] | None = None
) -> dict[str, Any]:
    """Convert an editor-format workflow with ComfyUI's node definitions; refuse when it can't be done exactly.
    `versions`: the installed packs' versions (ui_to_api), when the caller knows them."""
    result = ui_to_api(workflow, object_info(False), versions)
    if any(p.code == "UI_CONVERT_UNKNOWN_NODE" for p in result.problems):
        result = ui_to_api(workflow, object_info(True), versions)
    limit = next((p for p in result.problems if p.code == "LIMIT_EXCEEDED"), None)
    if limit is not None:
        raise JobError("LIMIT_EXCEEDED", limit.message, {}, [limit], fix=limit.fix)
    errors = [p for p in result.problems if p.severity == "error"]
    if errors and all(p.code == "UI_CONVERT_UNKNOWN_NODE" for p in errors):
        return result.workflow  # the judgement names the missing node and its pack (NODE_MISSING)
    if not result.ok:
        raise JobError(
            "WORKFLOW_UI_FORMAT",
            "the workflow is in the editor's UI format and can't be converted exactly: "
            + "; ".join(p.message for p in result.problems if p.severity == "error")[:500],
            {"fix": UI_FORMAT_FIX, "problems": [p.to_dict() for p in result.problems]},
            errors,
            # a node saved with another version: its own fix (re-save with this version) says more
            fix=errors[0].fix if errors and errors[0].code == "UI_CONVERT_WIDGET_MISMATCH" else None,
        )
    return result.workflow
