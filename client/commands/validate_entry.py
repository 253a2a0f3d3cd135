"""`validate --workflow ID`: a registry entry's validation suite, its model-free parts judged on their own.

An entry `workflow add` just wrote has its packs and nodes but seldom its models. Each part that needs no
model is a check row of its own, from the worker's diagnose of that workflow:

    pack:<id>:<pack>   the pack imported (ComfyUI's start-up log) at the entry's pin (its installed commit)
    nodes:<id>         every node class of the workflow defined by the endpoint's ComfyUI
    contract:<id>      every parameter target and output spec is a node (and input) of the workflow
    graph:<id>         the worker's analysis finds no error but missing nodes and missing models
    models:<id>        every model listed by ComfyUI; skipped (never passed) with "models missing: …"

The generate runs (the model-dependent part) then run as in any suite, or are skipped saying why: the
missing models, or the model-free check that failed. Exit 0 when no row failed: a skip is not a failure.
The suite is the entry's own (`workflow add --suites` writes one named after it), else one case of it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from client.commands.diagnose import diagnose
from client.commands.validate import Case, EventSink, Suite, _check, _Run, load_suites, run_suite
from client.config import Settings
from client.errors import ClientError, UsageError
from client.jobflow import Backend
from workflows.models import canonical_folder
from workflows.registry import Entry, PackRef, Registry

NODE_CODES = ("NODE_MISSING", "PACK_IMPORT_FAILED")  # the nodes row's; every MODEL_* code is the models row's
ABSENT = "MODEL_MISSING"  # the only model finding that means "not there yet" (a skip, not a failure)


def entry_suite(registry: Registry, workflow: str, suites_file: Path) -> Suite:
    """The entry's validation suite: the suite named after it in `suites_file` when it runs only this
    workflow (its prompts, seeds, runs, targets), else one case of the workflow, two runs."""
    entry = registry.get(workflow)
    if entry is None:
        why = registry.problems.get(workflow)
        raise UsageError(
            f"workflow {workflow!r} is disabled: {why}"
            if why
            else f"no workflow {workflow!r} in the registry (registered: {', '.join(sorted(registry.entries))})",
            code="WORKFLOW_NOT_FOUND",
            fix="Add it with `comfy-runpod workflow add FILE`, or pass --registry DIR holding it.",
        )
    own = load_suites(suites_file).get(workflow) if suites_file.is_file() else None
    if own is not None and own.cases and all(c.workflow == workflow for c in own.cases):
        return own
    image = "test-pattern" if "image" in entry.parameters else None
    return Suite(workflow, f"{entry.title}: the entry's own checks", 2, 1.0, {}, (Case(workflow, image=image),))


def run_entry(
    api: Backend,
    settings: Settings,
    registry: Registry,
    suite: Suite,
    *,
    runs: int | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """run_suite with the model-free rows in place of the dependency row; the report also names the
    workflows and the models they miss (`models_missing`: folder/name)."""
    report = run_suite(api, settings, registry, suite, runs=runs, on_event=on_event, checks_step=model_free_step)
    report["workflows"] = sorted({c.workflow for c in suite.cases})
    report["models_missing"] = sorted(
        m for c in report["checks"] if c["group"] == "models" for m in c["details"].get("missing") or []
    )
    return report


def model_free_step(run: _Run, case: Case) -> None:
    """The worker's diagnose of the case's workflow, judged into the model-free rows (once per workflow)."""
    workflow = case.workflow
    if workflow in run.usable:
        return
    run.say(f"model-free checks of {workflow}")
    t = time.perf_counter()
    try:
        diag = diagnose(run.api, run.settings, run.registry, workflow=workflow)
    except ClientError as exc:
        run.checks.append(_check(f"diagnose:{workflow}", "graph", "fail", f"{exc.code}: {exc.message}"))
        run.usable[workflow], run.skip_reasons[workflow] = False, "the diagnose job failed"
        return
    entry = run.registry.get(workflow)
    assert entry is not None  # entry_suite refused a workflow the local registry lacks
    rows = entry_checks(entry, diag)
    rows[0]["seconds"] = round(time.perf_counter() - t, 3)  # one diagnose job judged them all
    run.checks += rows
    failed = [r["name"] for r in rows if r["status"] == "fail"]
    missing = [m for r in rows if r["group"] == "models" for m in r["details"].get("missing") or []]
    run.usable[workflow] = not failed and not missing
    if failed:
        run.skip_reasons[workflow] = f"model-free check(s) failed: {', '.join(failed)}"
    elif missing:
        run.skip_reasons[workflow] = f"models missing: {', '.join(missing)}"
    run.deployment_findings = [
        f for f in diag["findings"] if not f.get("workflow") and f.get("severity") in ("error", "warning")
    ]


def entry_checks(entry: Entry, diag: dict[str, Any]) -> list[dict[str, Any]]:
    """The model-free rows of one entry from a diagnose result (client.commands.diagnose)."""
    response = diag["response"]
    wid = entry.id
    if wid not in (response.get("workflow_checks") or {}):
        reachable = response.get("comfyui_reachable") is not False
        why = (
            "the endpoint's registry has no such workflow: start it with WORKFLOW_REGISTRY_DIR set to the "
            "registry that holds the entry, or rebuild the image from this checkout"
            if reachable
            else "ComfyUI is not reachable, so nothing was judged"
        )
        return [_check(f"graph:{wid}", "graph", "fail", f"workflow {wid} was not judged: {why}", notes=diag["notes"])]
    findings = [f for f in diag["findings"] if f.get("workflow") == wid]
    return [
        *(_pack_row(wid, pack, response) for pack in entry.packs),
        _nodes_row(entry, response, findings),
        _contract_row(entry, response, findings),
        _graph_row(wid, findings),
        _models_row(entry, response, findings),
    ]


def _pack_row(wid: str, pack: PackRef, response: dict[str, Any]) -> dict[str, Any]:
    name = f"pack:{wid}:{pack.name}"
    imports = [p for p in (response.get("custom_nodes") or {}).get("packs") or [] if isinstance(p, dict)]
    if not imports:
        return _check(name, "packs", "skip", "the endpoint reports no start-up import list: pack not verified")
    wanted = {pack.name.lower(), pack.repo.rstrip("/").rsplit("/", 1)[-1].lower()}
    found = next((p for p in imports if str(p.get("name", "")).lower() in wanted), None)
    pin = pack.commit
    if found is None:
        fix = f"install {pack.name} ({pack.repo}{f' @ {pin}' if pin else ''}) with its requirements and restart"
        return _check(name, "packs", "fail", f"{pack.name} is not installed: {fix}", pin=pin)
    if found.get("failed"):
        return _check(
            name, "packs", "fail", f"{pack.name} failed to import: {found.get('error') or 'see the start-up log'}"
        )
    installed = found.get("commit")
    if not pin:
        return _check(name, "packs", "pass", f"{pack.name} imported (the entry pins no commit)", installed=installed)
    if installed is None:
        message = f"{pack.name} imported; its installed commit is unknown (no .git, no .pack-source): pin not verified"
        return _check(name, "packs", "skip", message, pin=pin)
    if installed != pin:
        message = (
            f"{pack.name} imported at {installed[:12]}, the entry pins {pin[:12]}: install the pinned commit "
            "(make up installs the registry's pins; rebuild the image) or re-add the workflow"
        )
        return _check(name, "packs", "fail", message, pin=pin, installed=installed)
    return _check(name, "packs", "pass", f"{pack.name} imported at {pin[:12]} (the entry's pin)", pin=pin)


def _nodes_row(entry: Entry, response: dict[str, Any], findings: list[dict[str, Any]]) -> dict[str, Any]:
    needed = sorted({str(n.get("class_type")) for n in entry.workflow().values() if isinstance(n, dict)})
    defined = set(response.get("node_classes") or [])
    reported = set((response.get("workflow_checks") or {})[entry.id].get("missing_nodes") or [])
    missing = [n for n in needed if n in reported or (defined and n not in defined)]
    why = [f for f in findings if f.get("code") in NODE_CODES and f.get("severity") == "error"]
    message = f"{len(needed) - len(missing)}/{len(needed)} node classes defined"
    if missing:
        message += f"; missing {', '.join(missing)}" + (f": {why[0]['message']}" if why else "")
    return _check(f"nodes:{entry.id}", "nodes", "fail" if missing else "pass", message, missing=missing, findings=why)


def _contract_row(entry: Entry, response: dict[str, Any], findings: list[dict[str, Any]]) -> dict[str, Any]:
    """Parameters and outputs against the graph: each target an input of a node of the workflow that its
    definition knows (no INPUT_UNKNOWN on it), each output spec a node whose class is defined."""
    workflow = entry.workflow()
    defined = set(response.get("node_classes") or [])
    unknown = {(f.get("node_id"), f.get("input")) for f in findings if f.get("code") == "INPUT_UNKNOWN"}
    problems = []
    targets = [(p, t) for p, ts in entry.parameters.items() for t in ts]
    for param, t in targets:
        node = workflow.get(t.node)
        if not isinstance(node, dict):
            problems.append(f"parameter {param}: node {t.node} is not in the workflow")
        elif t.input not in (node.get("inputs") or {}) or (t.node, t.input) in unknown:
            problems.append(f"parameter {param}: {node.get('class_type')} (node {t.node}) has no input {t.input!r}")
    for spec in entry.outputs:
        node = workflow.get(spec.node)
        if not isinstance(node, dict):
            problems.append(f"output: node {spec.node} is not in the workflow")
        elif defined and node.get("class_type") not in defined:
            problems.append(f"output: node {spec.node}'s class {node.get('class_type')!r} is not defined")
    message = (
        "; ".join(problems)
        if problems
        else f"{len(targets)} parameter target(s) and {len(entry.outputs)} output(s) match the graph"
    )
    return _check(f"contract:{entry.id}", "contract", "fail" if problems else "pass", message, problems=problems)


def _graph_row(wid: str, findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The worker's analysis of the graph (links, values, inputs, an output node): missing nodes and
    models are the other rows' to judge, so the models' absence is never what fails it."""
    errors = [f for f in findings if f.get("severity") == "error"]
    own = [f for f in errors if f.get("code") not in NODE_CODES and not str(f.get("code")).startswith("MODEL_")]
    absent = sum(f.get("code") == ABSENT for f in errors)
    warnings = sum(f.get("severity") == "warning" for f in findings)
    if own:
        message = "; ".join(f"{f['code']}: {f['message']}" for f in own[:3])
    else:
        message = "the worker's analysis finds no error" + (
            f" but the models' absence ({absent} {ABSENT})" if absent else ""
        )
    if warnings:
        message += f"; {warnings} warning(s)"
    return _check(f"graph:{wid}", "graph", "fail" if own else "pass", message, findings=own)


def _models_row(entry: Entry, response: dict[str, Any], findings: list[dict[str, Any]]) -> dict[str, Any]:
    """pass: ComfyUI lists every model; skip: some are missing (and none is there but wrong); fail: a model
    finding other than absence (a file in the wrong folder, truncated, corrupt)."""
    lists: dict[str, set[str]] = {}
    for folder, info in (response.get("models") or {}).items():
        if isinstance(info, dict):
            lists.setdefault(canonical_folder(folder), set()).update(info.get("comfyui_lists") or [])
    missing = [f"{m.folder}/{m.name}" for m in entry.models if m.name not in lists.get(canonical_folder(m.folder), ())]
    reported = (response.get("workflow_checks") or {})[entry.id].get("missing_models") or {}
    named = {m.rsplit("/", 1)[-1] for m in missing}
    missing += sorted({f"{folder}/{n}" for folder, names in reported.items() for n in names if n not in named})
    wrong = [
        f
        for f in findings
        if str(f.get("code")).startswith("MODEL_") and f.get("code") != ABSENT and f.get("severity") == "error"
    ]
    wid = entry.id
    if wrong:
        message = "; ".join(f"{f['code']}: {f['message']}" for f in wrong[:3])
        return _check(f"models:{wid}", "models", "fail", message, missing=missing, findings=wrong)
    if missing:
        return _check(f"models:{wid}", "models", "skip", f"models missing: {', '.join(missing)}", missing=missing)
    return _check(f"models:{wid}", "models", "pass", f"ComfyUI lists all {len(entry.models)} model(s)", missing=[])
