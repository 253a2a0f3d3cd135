"""Which node classes a deployment has vetted, and what a job running any other class costs. Pure.

A custom pack's node is arbitrary Python, and some load pickles or eval their inputs: a job will
sometimes run code inside ComfyUI. The kernel keeps that code inside the deployment (handler.confine);
what it must not do is wait in ComfyUI's process for the next tenant's prompt. So one ComfyUI may
serve job after job only while every job ran vetted classes:

- ComfyUI's core: /object_info's `python_module` is `nodes`, `comfy_extras.*` or `comfy_api_nodes.*`
  (a pack's nodes are `custom_nodes.<pack>`);
- every class a registered workflow uses (the deployer vetted them by registering the workflow);
- TRUSTED_NODES (comma-separated class names; `*`: every class).

A job whose prompt holds any other class is judged by UNVETTED_NODES: `restart` (default: it runs, and
ComfyUI is restarted before the next job), `deny` (refused up front, POLICY_DENIED) or `trust` (the old
behaviour: one ComfyUI for every job; unsafe when tenants don't trust each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from workflows.findings import Finding, error

Policy = Literal["restart", "deny", "trust"]
POLICIES: tuple[Policy, ...] = ("restart", "deny", "trust")
CORE_MODULES = ("nodes", "comfy_extras", "comfy_api_nodes")


def is_core(info: Mapping[str, Any]) -> bool:
    """A node definition (one /object_info entry) that ships with ComfyUI itself."""
    module = info.get("python_module")
    return isinstance(module, str) and module.split(".")[0] in CORE_MODULES


def core_classes(object_info: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(name for name, info in object_info.items() if isinstance(info, Mapping) and is_core(info))


def workflow_classes(workflow: Mapping[str, Any]) -> frozenset[str]:
    """The class_type of every node of an API-format workflow."""
    return frozenset(
        node["class_type"]
        for node in workflow.values()
        if isinstance(node, Mapping) and isinstance(node.get("class_type"), str)
    )


def vetted_classes(
    object_info: Mapping[str, Any], registered: Iterable[Mapping[str, Any]], trusted: frozenset[str]
) -> frozenset[str]:
    """Core classes, every class a registered workflow uses, and TRUSTED_NODES."""
    found = set(core_classes(object_info)) | set(trusted)
    for workflow in registered:
        found |= workflow_classes(workflow)
    return frozenset(found)


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["run", "restart_after", "deny"]
    unvetted: tuple[str, ...] = ()  # sorted

    def finding(self) -> Finding:
        """POLICY_DENIED naming the classes (deny)."""
        names = ", ".join(self.unvetted)
        return error(
            "POLICY_DENIED",
            f"this deployment runs only vetted node classes (UNVETTED_NODES=deny); not vetted: {names}",
            fix=VET_HOW,
        )

    def warning(self) -> str:
        """What the job's answer says when ComfyUI is restarted after it (restart)."""
        return (
            f"node classes not vetted on this deployment ran ({', '.join(self.unvetted)}): ComfyUI is restarted "
            f"before the next job, so nothing they left in its process can see it. To vet them: {VET_HOW}"
        )


VET_HOW = (
    "register a workflow that uses them (the deployer vets a class by registering it), or list them in "
    "TRUSTED_NODES on the endpoint"
)


def judge(classes: frozenset[str], vetted: frozenset[str], policy: str) -> Verdict:
    """What to do about a job whose prompt holds `classes`. An unknown policy is judged as `restart`."""
    if policy == "trust" or "*" in vetted:
        return Verdict("run")
    unvetted = tuple(sorted(classes - vetted))
    if not unvetted:
        return Verdict("run")
    return Verdict("deny" if policy == "deny" else "restart_after", unvetted)


def parse_policy(value: str | None) -> Policy:
    """UNVETTED_NODES: restart | deny | trust; anything else is the safe default, restart."""
    value = (value or "").strip().lower()
    return next((p for p in POLICIES if p == value), "restart")
