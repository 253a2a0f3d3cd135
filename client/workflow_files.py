"""Read a workflow the user points at: a registry name or an API-format JSON file (UI format refused clearly)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from client.errors import UsageError
from workflows.analysis import UI_FORMAT_FIX, is_ui_format, shape_findings


def looks_like_file(value: str) -> bool:
    return value.endswith(".json") or "/" in value or "\\" in value or Path(value).is_file()


def load_workflow_file(path: Path) -> dict[str, Any]:
    """An API-format workflow from a file; UsageError (WORKFLOW_UI_FORMAT / WORKFLOW_INVALID) otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"workflow file {path} does not exist", code="WORKFLOW_NOT_FOUND") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read workflow file {path}: {exc}", code="WORKFLOW_INVALID") from None
    except ValueError as exc:
        raise UsageError(f"workflow file {path} is not valid JSON: {exc}", code="WORKFLOW_INVALID") from None
    if is_ui_format(data):
        raise UsageError(
            f"{path} is a ComfyUI editor (UI-format) workflow with 'nodes' and 'links'; the API needs the API format",
            code="WORKFLOW_UI_FORMAT",
            fix=UI_FORMAT_FIX,
        )
    problems = shape_findings(data)
    if problems:
        raise UsageError(f"{path}: {problems[0].message}", code="WORKFLOW_INVALID", fix=problems[0].fix)
    return data
