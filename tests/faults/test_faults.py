"""The fault catalogue (tests/faults/catalogue.py, docs/faults.md) staged against a real private stack.

Disk faults are staged on the stack's image dir and stand-in network volume before ComfyUI starts and
judged by one real `diagnose`; job faults are sent to the real `generate` through RunPod's local API
and must be refused before queueing with a specific code, naming the cause.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, make_stack
from tests.faults.catalogue import DISK_FAULTS, JOB_FAULTS, Layout, stage_models, stage_skewed_pack

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = make_stack(tmp_path_factory.mktemp("faults"), GENERATE_TIMEOUT_S="60", DISK_LOW_GB="0.01")
    layout = Layout(stack.comfy_dir, stack.volume_dir)
    (stack.comfy_dir / "models").mkdir(parents=True, exist_ok=True)
    stack.volume_dir.mkdir(parents=True, exist_ok=True)
    stage_models(layout)
    stage_skewed_pack(layout)
    paths = {fault.id: fault.stage(layout) for fault in DISK_FAULTS}
    stack.start(wait=180)
    try:
        yield stack, paths
    finally:
        stack.stop()


def runsync(stack, job_input: dict[str, Any]) -> dict[str, Any]:
    r = requests.post(f"{stack.api_url}/runsync", json={"input": job_input}, timeout=120)
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="module")
def diagnosis(fault_stack) -> dict[str, Any]:
    stack, _ = fault_stack
    envelope = runsync(stack, {"mode": "diagnose"})
    assert envelope["status"] == "COMPLETED", envelope
    return envelope["output"]


@pytest.mark.parametrize("fault", DISK_FAULTS, ids=[f.id for f in DISK_FAULTS])
def test_disk_fault_is_named_by_diagnose(fault_stack, diagnosis, fault):
    _, paths = fault_stack
    path = paths[fault.id]
    hits = [f for f in diagnosis["findings"] if f["code"] == fault.code and f.get("path") == path]
    assert hits, (fault.code, path, [(f["code"], f.get("path")) for f in diagnosis["findings"]])
    assert hits[0]["fix"] and hits[0]["message"]
    if fault.id in FIX_SAYS:
        assert FIX_SAYS[fault.id] in hits[0]["fix"], hits[0]


FIX_SAYS = {"a1111-folder-name": "to 'checkpoints'", "singular-folder-name": "to 'loras'"}


@pytest.mark.parametrize("fault", JOB_FAULTS, ids=[f.id for f in JOB_FAULTS])
def test_job_fault_is_refused_with_a_specific_code(fault_stack, fault):
    stack, _ = fault_stack
    job = fault.job()
    job["workflow"] = _volume_paths(job["workflow"], stack.volume_dir)
    before = set(requests.get(f"{stack.comfy_url}/history", timeout=30).json())
    envelope = runsync(stack, job)
    assert envelope["status"] == "FAILED", envelope
    history = requests.get(f"{stack.comfy_url}/history", timeout=30).json()
    ran = [k for k in set(history) - before if "fault" in json.dumps(history[k].get("prompt"))]
    assert ran == []  # ComfyUI never ran it (the worker's own start-up smoke job may land meanwhile)
    err = json.loads(envelope["error"])
    assert err["error_code"] == fault.code, err
    said = " ".join(
        [err["error_message"], err["fix"], *(f["message"] + " " + f["fix"] for f in err.get("findings", []))]
    )
    said += json.dumps(err["details"])
    assert fault.says in said, (fault.says, err)
    assert "QUEUE_FAILED" not in said


def _volume_paths(workflow: Any, volume: Path) -> Any:
    """Rows write /runpod-volume/...; this stack's volume lives in its run directory."""
    text = json.dumps(workflow).replace("/runpod-volume/", f"{volume}/")
    return json.loads(text)


def test_docs_page_is_the_catalogue():
    from tests.faults.doc import render

    assert (REPO / "docs/faults.md").read_text() == render(), "run: python -m tests.faults.doc"


def test_docs_table_lists_every_staged_fault():
    doc = (REPO / "docs/faults.md").read_text()
    rows = {m[1] for m in re.finditer(r"^\| `([a-z0-9-]+)` \|", doc, re.M)}
    assert rows == {f.id for f in DISK_FAULTS} | {f.id for f in JOB_FAULTS}
    for fault in (*DISK_FAULTS, *JOB_FAULTS):
        line = next(line for line in doc.splitlines() if line.startswith(f"| `{fault.id}` |"))
        assert f"`{fault.code}`" in line and fault.source in line, fault.id
