"""What the endpoint has (its own diagnose), and the judgement of an editor prompt against it.

The editor builds its prompt from the *local* ComfyUI's node definitions; what matters is whether the
*endpoint* can run it. The endpoint's diagnose names every node class it defines (`node_classes`),
what ComfyUI lists per model folder and which custom node packs failed to import. The judgement is the
worker's own (workflows.judge.judge_before_queue) with those facts: node definitions are the local ones
restricted to the classes the endpoint has, models are the endpoint's lists. A refusal is answered in
ComfyUI's own /prompt error shape, so the editor shows the code and the fix where it shows any error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from client.errors import ClientError
from client.jobflow import Backend, run_sync
from workflows.analysis import Context, pack_lookup
from workflows.findings import Finding
from workflows.judge import judge_before_queue
from workflows.models import ModelIndex, canonical_folder
from workflows.policy import JobPolicy
from workflows.registry import Registry
from workflows.startup_log import PackImport


@dataclass(frozen=True, slots=True)
class EndpointFacts:
    """The parts of the endpoint's diagnose a judgement needs; `node_classes` None: the worker did not say."""

    node_classes: frozenset[str] | None
    models: dict[str, frozenset[str]]
    imports: tuple[PackImport, ...]
    ok: bool
    errors: int
    fetched_at: float = field(default_factory=time.time)

    @classmethod
    def from_diagnose(cls, report: Mapping[str, Any]) -> EndpointFacts:
        classes = report.get("node_classes")
        models = {
            canonical_folder(str(folder)): frozenset(map(str, (view or {}).get("comfyui_lists") or ()))
            for folder, view in (report.get("models") or {}).items()
            if isinstance(view, Mapping)
        }
        imports = tuple(
            PackImport(
                str(p.get("name")),
                str(p.get("path")),
                float(p.get("seconds") or 0),
                bool(p.get("failed")),
                p.get("error"),
            )
            for p in ((report.get("custom_nodes") or {}).get("packs") or ())
            if isinstance(p, Mapping)
        )
        summary = report.get("summary") or {}
        return cls(
            frozenset(map(str, classes)) if isinstance(classes, list) else None,
            models,
            imports,
            bool(report.get("ok")),
            int(summary.get("errors") or 0),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "node_classes": len(self.node_classes) if self.node_classes is not None else None,
            "model_folders": {k: len(v) for k, v in sorted(self.models.items()) if v},
            "failed_packs": [p.name for p in self.imports if p.failed],
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.fetched_at)),
        }


def judge_prompt(
    prompt: dict[str, Any],
    facts: EndpointFacts,
    local_object_info: Mapping[str, Any],
    registry: Registry | None,
    uploaded: frozenset[str],
) -> list[Finding]:
    """Every error finding that would make this prompt fail on the endpoint (empty: send it).

    `uploaded`: the input file names the launcher sends with the job (not judged against any list)."""
    if facts.node_classes is None:  # an older worker: the local definitions stand in for node presence
        info: Mapping[str, Any] = local_object_info
    else:
        info = {name: local_object_info.get(name) or {"input": {}} for name in facts.node_classes}
    ctx = Context(info, ModelIndex(facts.models), facts.imports, pack_lookup(registry), uploaded=uploaded)
    return judge_before_queue(prompt, ctx, entry=None, origin="inline", policy=JobPolicy())


def comfy_error(findings: list[Finding], prompt: Mapping[str, Any]) -> dict[str, Any]:
    """ComfyUI's 400 body for /prompt (`error` + `node_errors`), carrying our codes and fixes.

    The editor prints `error.message: error.details`, then per node `class_type:` and each error's
    `message: details`, and outlines those nodes in red."""
    first = findings[0]
    more = f" ({len(findings) - 1} more finding(s) below)" if len(findings) > 1 else ""
    node_errors: dict[str, Any] = {}
    for f in findings:
        if f.node_id is None:
            continue
        node = prompt.get(f.node_id) if isinstance(prompt.get(f.node_id), Mapping) else {}
        entry = node_errors.setdefault(
            f.node_id,
            {"errors": [], "dependent_outputs": [], "class_type": str((node or {}).get("class_type") or "?")},
        )
        entry["errors"].append(_error_item(f))
    return {
        "error": {
            "type": first.code,
            "message": f"{first.code} on the RunPod endpoint: {first.message}{more}",
            "details": f"Fix: {first.fix}",
            "extra_info": {"source": "comfy-runpod", "findings": [f.to_dict() for f in findings]},
        },
        "node_errors": node_errors,
    }


def client_error(exc: ClientError) -> dict[str, Any]:
    """A launcher-side failure (endpoint unreachable, images unreadable) in the same /prompt error shape."""
    return {
        "error": {
            "type": exc.code,
            "message": f"{exc.code}: {exc.message}",
            "details": f"Fix: {exc.fix}" if exc.fix else "",
            "extra_info": {"source": "comfy-runpod"},
        },
        "node_errors": {},
    }


def _error_item(f: Finding) -> dict[str, Any]:
    extra: dict[str, Any] = {"code": f.code}
    if f.input:
        extra["input_name"] = f.input
    return {"type": f.code, "message": f"{f.code}: {f.message}", "details": f"Fix: {f.fix}", "extra_info": extra}


class FactsCache:
    """The endpoint's facts, fetched once (a diagnose job) and again on demand; thread-safe."""

    def __init__(self, api: Backend, *, timeout_s: float, poll_interval_s: float = 1.0) -> None:
        self.api, self.timeout_s, self.poll_interval_s = api, timeout_s, poll_interval_s
        self._facts: EndpointFacts | None = None
        self._lock = threading.Lock()

    def get(self, refresh: bool = False) -> EndpointFacts:
        with self._lock:
            if self._facts is None or refresh:
                result = run_sync(  # a cold endpoint starts a worker first: the job deadline applies
                    self.api, {"mode": "diagnose"}, timeout_s=self.timeout_s, poll_interval_s=self.poll_interval_s
                )
                self._facts = EndpointFacts.from_diagnose(result.output if isinstance(result.output, dict) else {})
            return self._facts

    def peek(self) -> EndpointFacts | None:
        return self._facts
