"""HTML reports, the run history, `report` / `report --compare` and the regression gate, against the fake RunPod API.

The staged slowdown: the fake endpoint's worker answers with a longer timings.total_ms (its generation
time) or a failing job, exactly as a slower or broken deployment would report it.
"""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.client import chromium
from tests.client.conftest import cloud_env, json_out, run_cli
from tests.client.fake_runpod import FakeRunPod, completed, failed, generate_output

SUITE = "one:\n  runs: 3\n  cases:\n    - workflow: smoke_image\n"


def answers(fake: FakeRunPod, total_ms: float = 305.0) -> None:
    out = generate_output(width=512, height=512)  # the registry's smoke_image size
    out["timings"]["total_ms"] = total_ms
    fake.script = [completed(out)]


def validate(fake: FakeRunPod, tmp_path: Path, name: str, *extra: str, env: dict[str, str] | None = None):
    suites = tmp_path / "suites.yaml"
    suites.write_text(SUITE)
    args = ("--suites", str(suites), "--suite", "one", "--report-dir", str(tmp_path / name), "--json", *extra)
    return run_cli("validate", *args, env={**cloud_env(fake), **(env or {})})


def failed_checks(directory: Path) -> list[str]:
    suite = ET.parse(directory / "junit.xml").getroot().find("testsuite")
    return [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]


def test_validate_writes_a_self_contained_html_report_beside_its_json(fake, tmp_path: Path):
    answers(fake)
    proc = validate(fake, tmp_path, "r")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    envelope = json_out(proc)["result"]
    assert envelope["reports"]["html"] == str(tmp_path / "r/report.html") and envelope["run_id"] == 1
    page = (tmp_path / "r/report.html").read_text()
    assert page.count('<svg class="chart"') >= 4  # generation, cold vs warm, queue, per-node, success rate
    assert page.count('src="data:image/jpeg;base64,') == 3  # a thumbnail per output
    assert "PASSED: " in page and 'data-key="p50:smoke_image">0.305<' in page
    assert not any(f'{attr}="http' in page for attr in ("src", "href")) and "url(http" not in page
    report = json.loads((tmp_path / "r/report.json").read_text())
    assert "thumbnail" not in json.dumps(report) and "thumbnail" not in proc.stdout  # the HTML page only
    assert report["runs"][0]["nodes_ms"] == {"1": 1.0} and report["cold_start_s"] == 1.234
    assert fake.api_key not in page  # redacted like the other reports


def test_every_run_is_recorded_where_COMFY_RUNPOD_HISTORY_says(fake, tmp_path: Path):
    answers(fake)
    history = tmp_path / "elsewhere/runs.sqlite"
    assert validate(fake, tmp_path, "r", env={"COMFY_RUNPOD_HISTORY": str(history)}).returncode == 0
    bench = run_cli(
        "bench", "--runs", "2", "--gpu", "L40S", "--out", str(tmp_path / "b"), "--json",
        env={**cloud_env(fake), "COMFY_RUNPOD_HISTORY": str(history)},
    )  # fmt: skip
    assert bench.returncode == 0, bench.stdout + bench.stderr
    with sqlite3.connect(history) as conn:
        runs = conn.execute("SELECT id, kind, name, passed FROM runs ORDER BY id").fetchall()
        cost = conn.execute("SELECT cost_per_output_usd FROM metrics WHERE run_id = 2").fetchone()[0]
    assert runs == [(1, "validate", "one", 1), (2, "bench", "smoke_image", 1)]
    assert cost == json.loads((tmp_path / "b/bench.json").read_text())["cost"]["per_output_usd"] > 0
    page = (tmp_path / "b/bench.html").read_text()
    assert page.count('<svg class="chart"') >= 4 and 'data-key="per_output_usd">' in page
    assert not (tmp_path / "history.sqlite").exists()  # not beside the ledger when the variable says otherwise


def test_the_regression_gate_fails_a_staged_slowdown(fake, tmp_path: Path):
    answers(fake, total_ms=300.0)
    first = validate(fake, tmp_path, "before", "--baseline", "last")
    assert first.returncode == 0, first.stdout  # nothing to compare with yet: a skipped row says so
    assert {c["name"]: c["status"] for c in json_out(first)["result"]["report"]["checks"]}["regression"] == "skip"
    answers(fake, total_ms=390.0)  # 30 % slower
    slower = validate(fake, tmp_path, "after", "--baseline", "last", "--max-regression", "20%")
    assert slower.returncode == 1, slower.stdout
    assert failed_checks(tmp_path / "after") == ["regression:generate_p50:smoke_image"]
    row = next(c for c in json_out(slower)["result"]["report"]["checks"] if c["status"] == "fail")
    assert row["details"]["baseline_run"] == 1 and row["details"]["change"] == 0.3
    tolerant = validate(fake, tmp_path, "tolerant", "--baseline", "1", "--max-regression", "35%")
    assert tolerant.returncode == 0, tolerant.stdout  # the same slowdown within a wider threshold


def test_the_regression_gate_fails_when_the_success_rate_drops(fake, tmp_path: Path):
    answers(fake)
    assert validate(fake, tmp_path, "before").returncode == 0
    fake.script = [failed(logs_tail=["got prompt", "ValueError: value too big for EmptyImage"])]
    proc = validate(fake, tmp_path, "after", "--baseline", "last")
    assert proc.returncode == 1
    assert "regression:success_rate:smoke_image" in failed_checks(tmp_path / "after")
    page = (tmp_path / "after/report.html").read_text()
    assert "QUEUE_FAILED" in page and "fix for QUEUE_FAILED" in page  # every failure with its code, fix
    assert "ValueError: value too big for EmptyImage" in page  # and the worker's log tail


def test_a_bad_baseline_or_threshold_is_refused_before_any_job(fake, tmp_path: Path):
    answers(fake)
    for extra, code in ((["--baseline", "7"], "BASELINE_NOT_FOUND"), (["--max-regression", "lots"], "BAD_ARGUMENT")):
        proc = validate(fake, tmp_path, "r", *extra)
        assert proc.returncode == 2 and json_out(proc)["error"]["code"] == code, proc.stdout
    assert fake.count("POST /run") == fake.count("POST /runsync") == 0  # refused before any job


def test_report_shows_the_trend_and_compares_two_runs(fake, tmp_path: Path):
    for total_ms in (300.0, 600.0):
        answers(fake, total_ms)
        assert validate(fake, tmp_path, f"r{total_ms:g}").returncode == 0
    env = cloud_env(fake)
    trend = run_cli("report", "--workflow", "smoke_image", "--out", str(tmp_path / "t"), "--json", env=env)
    points = json_out(trend)["result"]["trend"]["runs"]
    assert [(p["run_id"], p["p50_s"], p["success_rate"]) for p in points] == [(1, 0.3, 1.0), (2, 0.6, 1.0)]
    page = (tmp_path / "t/trend.html").read_text()
    assert page.count('<svg class="chart"') >= 3 and 'data-key="p50:2">0.6<' in page
    cmp = run_cli("report", "--compare", "1", "2", "--out", str(tmp_path / "c"), "--json", env=env)
    rows = json_out(cmp)["result"]["compare"]["rows"]
    p50 = next(r for r in rows if r["measure"] == "p50_s")
    assert (p50["a"], p50["b"], p50["change"]) == (0.3, 0.6, 1.0)
    assert 'data-key="b:smoke_image:p50_s">0.6<' in (tmp_path / "c/compare.html").read_text()
    missing = run_cli("report", "--compare", "1", "9", "--json", env=env)
    assert missing.returncode == 2 and json_out(missing)["error"]["code"] == "BASELINE_NOT_FOUND"


@pytest.mark.skipif(chromium.binary() is None, reason="chromium is not installed (`make chromium`)")
def test_a_failed_report_reads_in_a_browser(fake, tmp_path: Path):
    fake.script = [failed(logs_tail=["got prompt", "ValueError: value too big for EmptyImage"])]
    assert validate(fake, tmp_path, "r").returncode == 1
    seen = chromium.view(tmp_path / "r/report.html")
    (tmp_path / "failed.png").write_bytes(seen.screenshot)
    assert seen.errors == [] and seen.dom["verdict"].startswith("FAILED") and seen.dom["width"] <= 412
    assert seen.dom["keys"]["success_rate:smoke_image"] == "0" and seen.dom["keys"]["p50:smoke_image"] == "–"


def test_max_regression_is_a_percentage():
    from client.commands.report import parse_threshold
    from client.errors import UsageError

    assert parse_threshold("20%") == parse_threshold("20") == 0.2 and parse_threshold("0.5") == 0.005
    with pytest.raises(UsageError):
        parse_threshold("-5%")
