"""Validation suites report cold start, first-run model load and warm generation apart, and judge
"generation under N s" on the warm runs — against the fake RunPod, through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path

from tests.client.conftest import cloud_env, run_cli
from tests.client.fake_runpod import HEALTH_OUTPUT, FakeRunPod, completed, generate_output


def _output(total_ms: float) -> dict:
    out = generate_output("smoke_image", 512, 512)
    out["timings"] = {**out["timings"], "total_ms": total_ms}
    return out


def _suite(tmp_path: Path, targets: str) -> Path:
    path = tmp_path / "suites.yaml"
    path.write_text(f"t:\n  runs: 3\n  targets: {targets}\n  cases:\n    - workflow: smoke_image\n")
    return path


def _validate(fake: FakeRunPod, tmp_path: Path, suites: Path) -> tuple[int, dict, str]:
    reports = tmp_path / "reports"
    proc = run_cli(
        "validate",
        "--suites",
        str(suites),
        "--suite",
        "t",
        "--report-dir",
        str(reports),
        env=cloud_env(fake),
    )
    report = json.loads((reports / "report.json").read_text())
    return proc.returncode, report, (reports / "report.md").read_text()


def test_a_slow_first_run_is_model_load_and_the_target_judges_the_warm_runs(fake: FakeRunPod, tmp_path: Path):
    fake.runsync_result = completed(HEALTH_OUTPUT, delay_ms=41_000)  # a cold worker: 41 s before the first job
    fake.run_scripts = [[completed(_output(total))] for total in (38_000.0, 9_000.0, 11_000.0)]
    code, report, md = _validate(fake, tmp_path, _suite(tmp_path, "{cold_start_s: 60, generate_s: 30}"))

    assert code == 0, report["checks"]
    timing = report["timing"]
    assert timing["cold_start_s"] == 41.0
    wf = timing["workflows"]["smoke_image"]
    assert wf["first_run_s"] == 38.0 and wf["warm_runs"] == 2
    assert wf["warm_p50_s"] == 10.0 and wf["warm_max_s"] == 11.0 and wf["model_load_s"] == 28.0
    check = next(c for c in report["checks"] if c["name"] == "timing:generate:smoke_image")
    assert check["status"] == "pass" and check["details"]["measured_s"] == 11.0  # warm max, not the 38 s
    assert "first run 38.00 s (model load, not judged)" in check["message"]
    assert "| smoke_image | 38.0 | 28.0 | 2 | 10.0 | 11.0 |" in md


def test_a_slow_warm_run_fails_the_target_and_a_first_run_target_is_judged_on_run_one(fake: FakeRunPod, tmp_path: Path):
    fake.run_scripts = [[completed(_output(total))] for total in (20_000.0, 9_000.0, 31_000.0)]
    code, report, _ = _validate(fake, tmp_path, _suite(tmp_path, "{first_run_s: 15, generate_s: 30}"))

    assert code == 1
    status = {c["name"]: c for c in report["checks"]}
    assert status["timing:generate:smoke_image"]["status"] == "fail"
    assert status["timing:generate:smoke_image"]["details"]["measured_s"] == 31.0
    assert status["timing:first_run:smoke_image"]["status"] == "fail"
    assert "first run (loads the models) 20.00 s (target < 15 s)" in status["timing:first_run:smoke_image"]["message"]


def test_a_single_run_is_judged_with_its_model_load_and_says_so(fake: FakeRunPod, tmp_path: Path):
    fake.run_scripts = [[completed(_output(5_000.0))]]
    suites = tmp_path / "suites.yaml"
    suites.write_text("t:\n  runs: 1\n  targets: {generate_s: 30}\n  cases:\n    - workflow: smoke_image\n")
    code, report, _ = _validate(fake, tmp_path, suites)

    assert code == 0
    check = next(c for c in report["checks"] if c["name"] == "timing:generate:smoke_image")
    assert "only the first run to time" in check["message"] and "--runs 2" in check["message"]
    assert report["timing"]["workflows"]["smoke_image"]["warm_runs"] == 0
