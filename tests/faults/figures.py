"""The two figures docs/faults.md reports, computed (never typed): `python -m tests.faults.figures`.

- detection rate on the held-out split (tests/faults/heldout.yaml: field faults from threads that were
  not the source of any signature): each fault's text goes through the worker's own reader for its
  stage (a node's exception: workflows.failures.execution_failed; a pack failing to import:
  workflows.analysis.import_findings; ComfyUI ending at start: workflows.startup_log) and counts as
  detected when the answer carries the code a person needs. tests/faults/test_heldout.py stages the
  same faults on the real stack and checks the worker answers there as here.
- generic share over the whole catalogue: every answer the catalogue holds (signature examples,
  held-out faults, the disk/job fault catalogue, the start-failure catalogue) whose code is a catch-all
  (GENERATION_ERROR, COMFY_START_FAILED, QUEUE_FAILED, INTERNAL_ERROR) or whose fix is a catch-all's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from tests.conftest import REPO
from workflows import signatures
from workflows.analysis import import_findings
from workflows.errors import CODES
from workflows.failures import execution_failed
from workflows.findings import FINDINGS
from workflows.startup_log import PackImport, classify_start_failure

HELDOUT_FILE = REPO / "tests/faults/heldout.yaml"
_BRACKETED = re.compile(r"\[(?P<code>[A-Z_]+): ")


@dataclass(frozen=True)
class Answer:
    source: str  # which part of the catalogue
    id: str
    code: str  # the code the worker answers with (for an import failure: the signature's, in the finding)
    fix: str


@cache
def heldout() -> tuple[dict[str, Any], ...]:
    return tuple(yaml.safe_load(HELDOUT_FILE.read_text()))


def answer(stage: str, kind: str | None, message: str) -> tuple[str, str]:
    """(code, fix) the worker's own reader for `stage` gives a fault with this exception type and text."""
    if stage == "execution":
        data = {"node_id": "2", "node_type": "RPTestRaiseAs", "exception_type": kind, "exception_message": message}
        err = execution_failed(data, "node failed")
        return err.code, err.fix
    if stage == "import":
        # ComfyUI logs "Cannot import <pack> module for custom nodes: <first line of the error>"
        first = message.splitlines()[0]
        (finding,) = import_findings([PackImport("rp_pack", "/comfyui/custom_nodes/rp_pack", 0.0, True, first)])
        named = _BRACKETED.search(finding.message)
        return (named["code"] if named else finding.code), finding.fix
    lines = ["Traceback (most recent call last):", '  File "/comfyui/main.py", line 1, in <module>']
    lines += f"{kind}: {message}".splitlines()
    failure = classify_start_failure(lines, exit_code=1)
    return failure.code, failure.fix or CODES[failure.code].fix


def detection() -> tuple[int, int, list[str]]:
    """(detected, total, ids missed) on the held-out split."""
    missed = [c["id"] for c in heldout() if answer(c["stage"], c["type"], c["message"])[0] != c["code"]]
    return len(heldout()) - len(missed), len(heldout()), missed


def _start_catalogue() -> list[Answer]:
    """The start-failure catalogue as its tests stage it: the code each `staged(...)` call asserts."""
    answers = []
    for name in ("test_catalogue.py", "test_last_resort.py"):
        text = (REPO / "tests/start_failures" / name).read_text()
        for i, m in enumerate(re.finditer(r'staged\([^\n]*?"(?P<code>[A-Z_]+)"', text)):
            answers.append(Answer("start-failure catalogue", f"{name}#{i}", m["code"], CODES[m["code"]].fix))
    return answers


def catalogue() -> list[Answer]:
    """Every answer in the whole catalogue."""
    from tests.faults.catalogue import DISK_FAULTS, JOB_FAULTS

    answers = [
        Answer("signatures", s.id, *answer(s.stages[0], s.example["type"], s.example["message"]))
        for s in signatures.signatures()
    ]
    answers += [Answer("held-out", c["id"], *answer(c["stage"], c["type"], c["message"])) for c in heldout()]
    answers += [Answer("fault catalogue", f.id, f.code, FINDINGS[f.code].fix) for f in (*DISK_FAULTS, *JOB_FAULTS)]
    return answers + _start_catalogue()


def generic_fixes() -> set[str]:
    fixes = {CODES[c].fix for c in signatures.GENERIC_CODES}
    return fixes | {CODES["PACK_IMPORT_FAILED"].fix, FINDINGS["PACK_IMPORT_FAILED"].fix}


def generic_share() -> tuple[int, int, list[str]]:
    """(generic answers, all answers, their ids) over the whole catalogue."""
    fixes = generic_fixes()
    generic = [f"{a.source}:{a.id}" for a in catalogue() if signatures.is_generic(a.code, a.fix, fixes)]
    return len(generic), len(catalogue()), generic


def summary() -> dict[str, Any]:
    found, total, missed = detection()
    generic, answers, which = generic_share()
    return {
        "heldout_detected": found,
        "heldout_total": total,
        "heldout_missed": missed,
        "detection_rate": round(found / total, 3),
        "generic_answers": generic,
        "catalogue_answers": answers,
        "generic_ids": which,
        "generic_share": round(generic / answers, 3),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(summary(), indent=2))
