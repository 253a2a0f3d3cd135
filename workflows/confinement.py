"""diagnose's findings on ComfyUI's confinement: a part that is off is a warning with its fix.

Judged from the report handler.supervisor builds (diagnose's `confinement`): the deployment still
works without a part, but a node a job runs then reaches further (README "Security").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflows.findings import FINDINGS, Finding, warning


def _off(code: str, message: str) -> Finding:
    """A confinement part that is off: a warning with the finding table's fix."""
    return warning(code, message, FINDINGS[code].fix)


def confinement_findings(report: Mapping[str, Any], worker_uid: int) -> list[Finding]:
    """CONFINEMENT_USER_OFF, CONFINEMENT_LANDLOCK_OFF, CONFINEMENT_MEMORY_UNCAPPED for what `report`
    says is off; nothing for a report without the parts (ComfyUI not started by this worker)."""
    found: list[Finding] = []
    user = report.get("user")
    if isinstance(user, Mapping) and not user.get("active"):
        who = "root" if worker_uid == 0 else f"the worker's own user (uid {worker_uid})"
        reach = (
            "it owns every root-owned file Landlock lets it reach and may signal root's processes"
            if worker_uid == 0
            else "it may write wherever the worker may, and only Landlock keeps it from the worker's processes"
        )
        found.append(_off("CONFINEMENT_USER_OFF", f"ComfyUI runs as {who} ({user.get('why_not')}): {reach}."))
    landlock = report.get("landlock")
    if isinstance(landlock, Mapping) and not landlock.get("active"):
        found.append(
            _off(
                "CONFINEMENT_LANDLOCK_OFF",
                f"ComfyUI's files and network are not confined by Landlock: {landlock.get('why_not')}. A node "
                "may read and write whatever its user may.",
            )
        )
    memory = report.get("memory")
    if isinstance(memory, Mapping) and not memory.get("active"):
        found.append(
            _off(
                "CONFINEMENT_MEMORY_UNCAPPED",
                f"ComfyUI's memory is not capped ({memory.get('why_not')}): a job can grow until the kernel's "
                "OOM killer ends ComfyUI, or the worker.",
            )
        )
    return found
