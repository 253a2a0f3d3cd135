"""The job policy: what a job may ask of this deployment. Pure; set by environment (handler.config).

A job is untrusted input from whoever holds the API key, often an app's end users. The policy is
enforced on the API-format workflow before anything is queued, and every refusal is a finding
(POLICY_DENIED, ...) naming the node and the rule.

Default: inline workflows are allowed, but nodes that read or write arbitrary paths or fetch URLs are
refused in inline workflows and in `overrides`; registered workflows are trusted as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.findings import Finding, error


@dataclass(frozen=True, slots=True)
class JobPolicy:
    allow_inline: bool = True  # False: registered workflows only
    allow_nodes: frozenset[str] | None = None  # None: every node class not denied
    deny_nodes: frozenset[str] = field(default_factory=frozenset)


def policy_findings(
    workflow: Mapping[str, Any],
    policy: JobPolicy,
    *,
    origin: str,
    overridden: Mapping[str, frozenset[str]] | None = None,
) -> list[Finding]:
    """Refusals for this workflow; `origin` is registered | inline | editor, `overridden` the node
    inputs a job's `overrides` changed (node id -> input names)."""
    findings: list[Finding] = []
    if origin != "registered" and not policy.allow_inline:
        return [
            error(
                "POLICY_DENIED",
                "This deployment runs registered workflows only; inline and editor workflows are refused.",
                "Send a registered workflow name (mode=diagnose lists them), or set ALLOW_INLINE_WORKFLOWS=1 "
                "on the endpoint.",
            )
        ]
    for node_id, node in workflow.items():
        class_type = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(class_type, str):
            continue
        if class_type in policy.deny_nodes or (policy.allow_nodes is not None and class_type not in policy.allow_nodes):
            rule = "DENY_NODES" if class_type in policy.deny_nodes else "ALLOW_NODES"
            findings.append(
                error(
                    "POLICY_DENIED",
                    f"Node {node_id}: class {class_type!r} is not allowed on this deployment ({rule}).",
                    f"Remove the node, or change {rule} on the endpoint.",
                    node_id=str(node_id),
                )
            )
    return findings
