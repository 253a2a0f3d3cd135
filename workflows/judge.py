"""The judgement before queueing: is this job's workflow runnable here, and if not, exactly why?

Pure. The worker's generate and the client's direct mode both call `judge_before_queue` with the
same facts (ComfyUI's /object_info, the model index, the pack map, the job policy), so ComfyUI never
sees a workflow that can already be told broken, and both halves give the same codes and fixes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workflows.analysis import Context, analyze_workflow, shape_findings
from workflows.errors import CODES, JobError
from workflows.findings import Finding, Severity
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
    refused = policy_findings(workflow, policy, origin=origin, overridden=overridden, paths=paths)
    if refused:
        return sorted(refused, key=lambda f: _ORDER.index(f.code))
    errors = [f for f in analyze_workflow(workflow, ctx, entry) if f.severity is Severity.ERROR]
    if not errors:  # within ComfyUI's own bounds: now the deployment's (MAX_SIDE, MAX_FRAMES, MAX_BATCH)
        return limit_findings(workflow, policy)
    return sorted(errors, key=lambda f: _ORDER.index(f.code) if f.code in _ORDER else len(_ORDER))


def findings_error(findings: Sequence[Finding]) -> JobError:
    """The job error for a non-empty list of findings: led by the first, carrying all of them."""
    first = findings[0]
    code = first.code if first.code in CODES else "WORKFLOW_INVALID"
    more = f" (and {len(findings) - 1} more finding(s): see findings)" if len(findings) > 1 else ""
    return JobError(code, first.message + more, {}, findings, fix=first.fix)
