"""Read a workflow the user points at: a registry name, or a file in the API format or the editor's format.

An editor save ("nodes" and "links") is accepted as it is: through RunPod the worker converts it
with its own /object_info, in direct mode the client converts it with the same code
(workflows.resolve), so both halves run exactly the same workflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from client.errors import UsageError
from workflows.analysis import is_ui_format, shape_findings


def looks_like_file(value: str) -> bool:
    return value.endswith(".json") or "/" in value or "\\" in value or Path(value).is_file()


def load_workflow_file(path: Path) -> dict[str, Any]:
    """A workflow from a file (API or editor format); UsageError (WORKFLOW_NOT_FOUND / WORKFLOW_INVALID) otherwise."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"workflow file {path} does not exist", code="WORKFLOW_NOT_FOUND") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read workflow file {path}: {exc}", code="WORKFLOW_INVALID") from None
    except ValueError as exc:
        raise UsageError(f"workflow file {path} is not valid JSON: {exc}", code="WORKFLOW_INVALID") from None
    if is_ui_format(data):
        return data
    problems = shape_findings(data)
    if problems:
        raise UsageError(f"{path}: {problems[0].message}", code="WORKFLOW_INVALID", fix=problems[0].fix)
    return data
