"""`diagnose.py [--workflow NAME|FILE]`: the worker's full diagnose, re-checked against the local registry."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from client.config import Settings
from client.errors import BadResponse, JobFailed
from client.jobflow import Backend, UpdateSink, run_sync
from client.recheck import inline_findings, recheck
from workflows.analysis import is_ui_format, structure_findings
from workflows.registry import Registry

SEVERITIES = ("error", "warning", "info")


def _run(
    api: Backend, settings: Settings, job_input: dict[str, Any], on_update: UpdateSink | None
) -> tuple[dict[str, Any], str]:
    result = run_sync(
        api, job_input, timeout_s=settings.timeout_s, poll_interval_s=settings.poll_interval_s, on_update=on_update
    )
    if not isinstance(result.output, dict) or "findings" not in result.output:
        raise BadResponse(f"the diagnose job answered {str(result.output)[:200]!r}, not a diagnose report")
    return result.output, result.job_id


def _worker_diagnose(
    api: Backend,
    settings: Settings,
    workflow: str | None,
    checksums: bool,
    on_update: UpdateSink | None,
    notes: list[str],
) -> tuple[dict[str, Any], str]:
    """The worker's diagnose; a workflow the worker does not know: the whole deployment (the re-check says why)."""
    job_input: dict[str, Any] = {"mode": "diagnose", **({"checksums": True} if checksums else {})}
    try:
        return _run(api, settings, {**job_input, **({"workflow": workflow} if workflow else {})}, on_update)
    except JobFailed as exc:
        if exc.code != "WORKFLOW_NOT_FOUND" or not workflow:
            raise
    notes.append(f"the endpoint does not know workflow {workflow!r}; diagnosed the whole deployment instead")
    return _run(api, settings, job_input, on_update)


def diagnose(
    api: Backend,
    settings: Settings,
    registry: Registry,
    *,
    workflow: str | None = None,
    workflow_file: tuple[Path, dict[str, Any]] | None = None,
    checksums: bool = False,
    on_update: UpdateSink | None = None,
    volume_report: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run diagnose on the endpoint and merge the worker's findings with the client's re-check.

    workflow: a registry name (the worker checks it); workflow_file: (path, workflow in the API or the
    editor's format), judged by the client from the worker's report (in direct mode: converted and
    analysed fully against /object_info, with the worker's code).
    volume_report: a `volume check` result; where it and the worker disagree becomes VOLUME_VIEW_MISMATCH.
    """
    target = settings.require_target()
    started = time.perf_counter()
    direct = api.kind == "comfy"
    notes: list[str] = []
    extra: list[dict[str, Any]] = []
    # a backend that can judge the file itself, against ComfyUI's /object_info (direct mode), does
    judged = api.diagnose_file(workflow_file[0].name, workflow_file[1], checksums) if workflow_file else None
    if judged is not None:
        response: dict[str, Any] = dict(judged)
        job_id = "direct"
    else:
        response, job_id = _worker_diagnose(api, settings, workflow, checksums, on_update, notes)
        if workflow_file is not None:
            label = workflow_file[0].name
            # an editor save is the worker's to convert; an API export's shape and links are judged here
            structure = [] if is_ui_format(workflow_file[1]) else structure_findings(workflow_file[1])
            local = [{**f.to_dict(), "workflow": label, "source": "client"} for f in structure]
            extra = local + inline_findings(label, workflow_file[1], response)
            notes.append(
                "the workflow file was judged from the endpoint's report (node_check, ComfyUI's model lists); "
                "for a full check against /object_info use --comfy-url"
            )
    worker_findings, client_findings = _findings(
        response, registry, workflow, workflow_file, extra, direct=direct, volume_report=volume_report, notes=notes
    )
    findings = worker_findings + client_findings
    summary = {s: sum(1 for f in findings if f.get("severity") == s) for s in SEVERITIES}
    return {
        "target": target.label,
        "ok": summary["error"] == 0 and response.get("comfyui_reachable") is not False,
        "workflow": workflow or (str(workflow_file[0]) if workflow_file else None),
        "summary": summary,
        "findings": findings,
        "client_findings": client_findings,
        "notes": notes + list(response.get("limitations") or []),
        "round_trip_ms": round((time.perf_counter() - started) * 1000, 1),
        "job_id": job_id,
        "response": response,
    }


def _findings(
    response: dict[str, Any],
    registry: Registry,
    workflow: str | None,
    workflow_file: tuple[Path, dict[str, Any]] | None,
    extra: list[dict[str, Any]],
    *,
    direct: bool,
    volume_report: dict[str, Any] | None,
    notes: list[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the worker's findings that concern what was asked, the client's: re-check or own analysis, volume view)."""
    judged_here = workflow_file is not None or direct  # the client's own analysis replaces the re-check
    client_findings = extra if judged_here else recheck(response, registry, workflow=workflow)
    if volume_report is not None:
        from workflows.volume_index import view_mismatch

        volume_id = str((volume_report.get("volume") or {}).get("id") or "")
        client_findings = client_findings + [
            {**f.to_dict(), "source": "client"} for f in view_mismatch(response, volume_report, volume_id)
        ]
    if workflow and workflow not in registry.entries:
        notes.append(f"workflow {workflow!r} is not in the local registry: only the endpoint's own check applies")
    worker_findings = [{**f, "source": "worker"} for f in response.get("findings") or [] if isinstance(f, dict)]
    if not direct and (workflow or workflow_file is not None):
        # only the deployment's own findings and those of the workflow asked about
        keep = (None, workflow) if workflow else (None, workflow_file[0].name if workflow_file else None)
        worker_findings = [f for f in worker_findings if f.get("workflow") in keep]
    return worker_findings, client_findings
