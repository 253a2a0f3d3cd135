"""The client's side of issue 13, against the real local stack: a workflow file with a broken link is
never reported ok by `diagnose.py --workflow FILE`, and a refused job prints its findings first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.client.conftest import json_out, run_cli
from tests.conftest import REPO

pytestmark = pytest.mark.stack


def test_diagnose_a_workflow_file_with_a_broken_link_is_not_ok(stack, tmp_path: Path):
    wf = json.loads((REPO / "workflows/registry/smoke_image.json").read_text())
    target = next(k for k, v in wf.items() if v["class_type"] == "SaveImage")
    wf[target]["inputs"]["images"] = ["99", 0]
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(wf))
    proc = run_cli("diagnose", "--url", stack.api_url, "--workflow", str(path), "--json")
    assert proc.returncode == 1, proc.stdout
    result = json_out(proc)["result"]
    assert result["ok"] is False
    broken = [f for f in result["client_findings"] if f["code"] == "LINK_BROKEN"]
    assert broken and broken[0]["node_id"] == target and broken[0]["input"] == "images"


def test_a_refused_generate_prints_the_findings_first(stack, tmp_path: Path):
    wf = json.loads((REPO / "workflows/registry/smoke_image.json").read_text())
    source = next(k for k, v in wf.items() if v["class_type"] == "EmptyImage")
    wf[source]["inputs"]["width"] = 999999
    path = tmp_path / "too_wide.json"
    path.write_text(json.dumps(wf))
    proc = run_cli(
        "generate", "--url", stack.api_url, "--workflow", str(path), "--no-open", "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 1, proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    first = next(i for i, line in enumerate(lines) if line.startswith("• VALUE_OUT_OF_RANGE"))
    assert f"node {source} width" in lines[first] and lines[first + 1].startswith("fix: Set width between")
