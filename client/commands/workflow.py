"""`workflow add`: a workflow file never seen by the project becomes a registry entry and a suite.

Returns data only. ComfyUI's /object_info (from `--comfy-url`, a ComfyUI with the same packs as the
deployment, e.g. the local stack's) converts an editor save and says which pack defines each node;
workflows.draft does the judging. Nothing is guessed: what can't be known is listed as a TODO.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from client.errors import UsageError
from comfyui_client import ComfyClient, ComfyUnavailable
from comfyui_client.errors import ComfyHTTPError
from workflows.analysis import is_ui_format
from workflows.draft import draft_entry
from workflows.errors import JobError
from workflows.registry import Registry, RegistryError, load_entry
from workflows.resolve import convert_editor_workflow

_ID = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


def workflow_id_for(path: Path, requested: str | None) -> str:
    """The entry id: as given, else the file name made safe (lower case, underscores)."""
    wid = requested or re.sub(r"[^a-z0-9_]+", "_", path.stem.lower()).strip("_")
    if not _ID.match(wid):
        raise UsageError(f"workflow id {wid!r} must be lower case letters, digits and underscores (max 64)")
    return wid


def object_info_from(comfy_url: str, timeout_s: float) -> dict[str, Any]:
    """/object_info of the ComfyUI at `comfy_url`; UsageError (exit 2) when it is unreachable or not ComfyUI."""
    client = ComfyClient(comfy_url, timeout=timeout_s)
    fix = "Start a ComfyUI with the deployment's packs (make up) and pass its URL with --comfy-url."
    try:
        info = client.object_info()
    except ComfyUnavailable as exc:
        raise UsageError(
            f"ComfyUI at {comfy_url} does not answer /object_info: {exc}", code="UNREACHABLE", fix=fix
        ) from None
    except ComfyHTTPError as exc:
        raise UsageError(f"{comfy_url} is not a ComfyUI: /object_info answered HTTP {exc.status}", fix=fix) from None
    except ValueError:  # a page that is not JSON
        raise UsageError(f"{comfy_url} is not a ComfyUI: /object_info is not JSON", fix=fix) from None
    finally:
        client.close()
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise UsageError(f"{comfy_url} is not a ComfyUI: /object_info is not a map of node definitions", fix=fix)
    return info


def add_workflow(
    workflow: dict[str, Any],
    *,
    workflow_id: str,
    registry_dir: Path,
    registry: Registry,
    object_info: dict[str, Any],
    title: str = "",
    suites_file: Path | None = None,
    force: bool = False,
    versions: Mapping[str, Collection[str]] | None = None,
    draft_options: Mapping[str, Any] | None = None,
    model_lookup: Callable[[list[str]], dict[str, dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Write <id>.json (API format) and <id>.yaml into `registry_dir`, and a suite for it when asked.

    `versions`, `draft_options` and `model_lookup` come from client/workflow_add.py: the installed packs'
    versions (for the converter's layout rule), the resolved packs, and the models' url/size/sha256."""
    if is_ui_format(workflow):
        try:
            workflow = convert_editor_workflow(workflow, lambda refresh: object_info, versions)
        except JobError as exc:
            raise UsageError(exc.message, code=exc.code, fix=exc.fix, details=exc.details) from None
    entry_file, workflow_file = registry_dir / f"{workflow_id}.yaml", registry_dir / f"{workflow_id}.json"
    if not force and (entry_file.exists() or workflow_id in registry.entries):
        raise UsageError(
            f"workflow {workflow_id!r} is already registered ({entry_file})", fix="Pass --force to replace it."
        )
    options = dict(draft_options or {})
    draft = draft_entry(workflow_id, workflow, object_info, registry, title, **options)
    if model_lookup is not None and draft.entry.get("models"):
        names = list(dict.fromkeys(m["name"] for m in draft.entry["models"]))
        options["model_sources"] = model_lookup(names)
        draft = draft_entry(workflow_id, workflow, object_info, registry, title, **options)
    registry_dir.mkdir(parents=True, exist_ok=True)
    workflow_file.write_text(json.dumps(workflow, indent=2) + "\n", encoding="utf-8")
    header = "".join(f"# TODO: {t}\n" for t in draft.todos)
    entry_file.write_text(header + yaml.safe_dump(draft.entry, sort_keys=False, width=120), encoding="utf-8")
    try:
        load_entry(entry_file)
        problem = None
    except RegistryError as exc:  # a TODO left in a required field: the entry stays disabled until fixed
        problem = str(exc)
    result: dict[str, Any] = {
        "workflow": workflow_id,
        "entry_file": str(entry_file),
        "workflow_file": str(workflow_file),
        "todos": draft.todos,
        "valid": problem is None and not any(p.get("name") == "TODO" for p in draft.entry.get("packs", [])),
        "problem": problem,
        "entry": draft.entry,
    }
    if suites_file is not None:
        result["suite"] = _add_suite(suites_file, workflow_id, draft.entry)
    return result


def _add_suite(suites_file: Path, workflow_id: str, entry: dict[str, Any]) -> str:
    """A validation suite named after the workflow: two verified runs (a test pattern as the image)."""
    suites = yaml.safe_load(suites_file.read_text(encoding="utf-8")) if suites_file.exists() else {}
    case: dict[str, Any] = {"workflow": workflow_id}
    if "image" in (entry.get("parameters") or {}):
        case["image"] = "test-pattern"
    suites[workflow_id] = {
        "description": f"{entry['title']}: generated by `comfy-runpod workflow add`.",
        "runs": 2,
        "success_rate": 1.0,
        "cases": [case],
    }
    suites_file.parent.mkdir(parents=True, exist_ok=True)
    suites_file.write_text(yaml.safe_dump(suites, sort_keys=False, width=120), encoding="utf-8")
    return workflow_id
