"""The regression gate against a staged slowdown on the real stack: a registered workflow whose RPTestSleep
node (tests/fixtures/custom_nodes) sleeps for the job's `cfg` seconds, validated fast, then slow."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.client.conftest import json_out, run_cli
from tests.conftest import make_stack, sleep_workflow
from workflows.registry import REGISTRY_DIR

pytestmark = pytest.mark.stack

ENTRY = """id: sleepy
title: Sleep (tests)
description: An empty image through RPTestSleep; the job's cfg is the seconds it sleeps (a staged slowdown).
workflow: sleepy.json
runs_on_cpu: true
parameters:
  cfg: {node: "2", input: seconds}
  seed: {node: "1", input: color}
outputs:
  - {node: "3", kind: image, count: 1, format: png, width: 64, height: 64}
"""


def test_validate_baseline_fails_a_slowdown_of_the_real_worker(tmp_path: Path):
    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    (registry / "sleepy.yaml").write_text(ENTRY)
    (registry / "sleepy.json").write_text(json.dumps(sleep_workflow(0.1)))
    suites = tmp_path / "suites.yaml"
    worker = make_stack(tmp_path / "stack", WORKFLOW_REGISTRY_DIR=str(registry), SELF_CHECK_AT_START="0")
    worker.start(wait=180)

    def validate(seconds: float, seeds: str, name: str, *extra: str):
        # distinct seeds (the image's colour): ComfyUI would answer a repeated prompt from its cache
        suites.write_text(
            f"slow:\n  runs: 2\n  cases:\n    - workflow: sleepy\n      params: {{cfg: {seconds}}}\n"
            f"      seeds: [{seeds}]\n"
        )
        args = ["--suites", str(suites), "--suite", "slow", "--registry", str(registry), "--url", worker.api_url]
        return run_cli("validate", *args, "--report-dir", str(tmp_path / name), "--json", *extra, timeout=300)

    try:
        fast = validate(0.1, "1, 2", "fast")
        slow = validate(3.0, "3, 4", "slow", "--baseline", "last", "--max-regression", "100%")
    finally:
        worker.stop()
    assert fast.returncode == 0, fast.stdout + fast.stderr
    assert slow.returncode == 1, slow.stdout + slow.stderr
    checks = {c["name"]: c for c in json_out(slow)["result"]["report"]["checks"]}
    gate = checks["regression:generate_p50:sleepy"]
    assert gate["status"] == "fail" and gate["details"]["current"] >= 3.0 > gate["details"]["baseline"]
    assert checks["regression:success_rate:sleepy"]["status"] == checks["generate:sleepy"]["status"] == "pass"
    suite = ET.parse(tmp_path / "slow/junit.xml").getroot().find("testsuite")
    assert [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None] == [
        "regression:generate_p50:sleepy"
    ]
