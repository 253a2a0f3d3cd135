"""The HTML reports of real runs against the local stack, opened in headless Chromium as a person would.

Each page: no console error or failed load, its charts present, every thumbnail decoded, no sideways
scrolling at a phone's width, and the figures it shows equal to the JSON written beside it. A
screenshot of each page is kept in the test's tmp dir.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from client.commands.bench import summarize
from tests.client import chromium
from tests.client.conftest import json_out, run_cli

pytestmark = [
    pytest.mark.stack,
    pytest.mark.skipif(
        chromium.binary() is None, reason="chromium is not installed (`make chromium`; `make test` installs it)"
    ),
]
PHONE_WIDTH = 412


def shown(value: Any) -> str:
    """How the page writes a number: plain decimals, no exponent."""
    if isinstance(value, float):
        return f"{value:.8f}".rstrip("0") if 0 < abs(value) < 1e-3 else f"{value:g}"
    return "–" if value is None else str(value)


def look(page: Path, tmp_path: Path, min_charts: int) -> dict[str, Any]:
    seen = chromium.view(page, width=PHONE_WIDTH)
    (tmp_path / f"{page.stem}.png").write_bytes(seen.screenshot)
    assert seen.screenshot.startswith(b"\x89PNG") and len(seen.screenshot) > 10_000
    assert seen.errors == [], seen.errors
    assert seen.dom["charts"] >= min_charts, seen.dom
    assert seen.dom["broken_images"] == 0 and seen.dom["width"] <= PHONE_WIDTH, seen.dom
    return seen.dom


def test_validate_and_bench_reports_of_the_local_stack_in_a_browser(stack, tmp_path: Path):
    proc = run_cli("validate", "--url", stack.api_url, "--suite", "smoke", "--runs", "2", "--report-dir",
                   str(tmp_path / "v"), "--json", timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "v/report.json").read_text())
    dom = look(tmp_path / "v/report.html", tmp_path, min_charts=5)  # 2 × generation, queue, per-node, success
    assert dom["verdict"].startswith("PASSED") and dom["images"] == 4  # 2 images + 2 video poster frames
    for workflow in ("smoke_image", "smoke_i2v"):
        rows = [r for r in report["runs"] if r["workflow"] == workflow]
        stats = summarize([r["generate_s"] for r in rows if r["status"] == "pass"])
        assert dom["keys"][f"p50:{workflow}"] == shown(stats["p50"])
        assert dom["keys"][f"p95:{workflow}"] == shown(stats["p95"])
        assert dom["keys"][f"success_rate:{workflow}"] == shown(sum(r["status"] == "pass" for r in rows) / len(rows))
    assert dom["keys"]["duration_s"] == shown(report["duration_s"])

    bench = run_cli("bench", "--url", stack.api_url, "--runs", "2", "--gpu", "L40S", "--out", str(tmp_path / "b"),
                    "--json", timeout=300)  # fmt: skip
    assert bench.returncode == 0, bench.stdout + bench.stderr
    result = json.loads((tmp_path / "b/bench.json").read_text())
    dom = look(tmp_path / "b/bench.html", tmp_path, min_charts=3)  # generation, queue, per-node, success
    gen = result["stats"]["sequential_generate_s"]
    assert dom["keys"]["p50"] == shown(gen["p50"]) and dom["keys"]["p95"] == shown(gen["p95"])
    assert dom["keys"]["per_output_usd"] == shown(result["cost"]["per_output_usd"]) and dom["images"] == 2

    trend = run_cli("report", "--url", stack.api_url, "--workflow", "smoke_image", "--out", str(tmp_path / "t"),
                    "--json")  # fmt: skip
    points = json_out(trend)["result"]["trend"]["runs"]
    assert [p["kind"] for p in points] == ["validate", "bench"]
    dom = look(tmp_path / "t/trend.html", tmp_path, min_charts=3)  # p50/p95, success rate, cost
    assert dom["keys"]["p50:1"] == shown(points[0]["p50_s"]) and dom["keys"]["p50:2"] == shown(gen["p50"])
