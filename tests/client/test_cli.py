"""The one command: `comfy-runpod SUBCOMMAND`, one parser and one dispatcher, every subcommand run against
the fake RunPod (the same code path as the cloud)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client import cli
from tests.client.conftest import cloud_env, json_out
from tests.client.fake_runpod import FakeRunPod, completed, generate_output
from tests.conftest import REPO

SCRIPT = Path(sys.executable).parent / "comfy-runpod"


def comfy_runpod(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    if not SCRIPT.exists():
        pytest.fail(f"the comfy-runpod console script is missing at {SCRIPT}: run `make venv` (pip install -e .)")
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
    )


@pytest.mark.parametrize("name", [name for name, _ in cli.COMMANDS])
def test_every_subcommand_has_help_from_the_one_parser(name: str):
    proc = comfy_runpod(name, "--help")
    assert proc.returncode == 0 and f"comfy-runpod {name}" in proc.stdout and "--endpoint-id" in proc.stdout


def test_bad_usage_exits_2():
    assert comfy_runpod("no-such-command").returncode == 2
    assert comfy_runpod("jobs", "status").returncode == 2  # needs a JOB_ID


def test_adding_a_subcommand_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(cli, "COMMANDS", (*cli.COMMANDS, ("echo", "tests.client.sample_command")))
    assert cli.dispatch(["echo", "--word", "hi", "--json"]) == 0
    envelope = json.loads(capsys.readouterr().out)
    assert envelope["command"] == "echo" and envelope["result"] == {"word": "hi", "json": True}


def test_every_command_runs_against_the_fake(fake: FakeRunPod, tmp_path: Path):
    env = cloud_env(fake, COMFY_RUNPOD_OUTPUTS=str(tmp_path / "out"))
    fake.script = [completed(generate_output(width=512, height=512))]
    suites = tmp_path / "suites.yaml"
    suites.write_text("one:\n  runs: 1\n  cases:\n    - workflow: smoke_image\n")
    runs = {
        "health": comfy_runpod("health", "--json", env=env),
        "diagnose --test": comfy_runpod("diagnose", "--test", "--json", env=env),
        "diagnose": comfy_runpod("diagnose", "--workflow", "smoke_image", "--json", env=env),
        "generate": comfy_runpod("generate", "smoke_image", "--no-open", "--json", env=env),
        "jobs list": comfy_runpod("jobs", "list", "--json", env=env),
        "jobs status": comfy_runpod("jobs", "status", "job-0001-abcdef", "--json", env=env),
        "jobs health": comfy_runpod("jobs", "health", "--json", env=env),
        "validate": comfy_runpod(
            "validate", "--suites", str(suites), "--suite", "one", "--report-dir", str(tmp_path / "r"), env=env
        ),
        "bench": comfy_runpod("bench", "--runs", "1", "--out", str(tmp_path / "b"), "--json", env=env),
    }
    codes = {name: proc.returncode for name, proc in runs.items()}
    assert set(codes.values()) == {0}, {n: p.stdout + p.stderr for n, p in runs.items() if p.returncode}
    assert json_out(runs["health"])["command"] == json_out(runs["diagnose --test"])["command"] == "health"
    assert json_out(runs["diagnose"])["result"]["response"]["workflow_checks"]["smoke_image"]["ok"] is True
    assert json_out(runs["jobs list"])["result"]["jobs"][0]["job_id"] == "job-0001-abcdef"
    assert json.loads((tmp_path / "r/report.json").read_text())["passed"] is True
    assert json.loads((tmp_path / "b/bench.json").read_text())["cost"]["note"].startswith("no GPU price")
    # generate, validate's one run, bench's one run and bench's `test` for the worker's start phases
    assert fake.count("POST /run") == 4
