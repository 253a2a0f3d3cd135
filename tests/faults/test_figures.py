"""The figures docs/faults.md reports are computed, current and within the issue's bounds. Pure."""

from __future__ import annotations

from tests.conftest import REPO
from tests.faults.doc import render
from tests.faults.figures import summary


def test_heldout_detection_and_generic_share_meet_the_bounds():
    figures = summary()
    assert figures["heldout_total"] >= 20
    assert figures["detection_rate"] >= 0.80, figures["heldout_missed"]
    assert figures["generic_share"] <= 0.10, figures["generic_ids"]


def test_the_page_reports_the_computed_figures():
    page = (REPO / "docs/faults.md").read_text()
    assert page == render(), "run: python -m tests.faults.doc"
    figures = summary()
    assert f"**{figures['heldout_detected']} of {figures['heldout_total']} " in page
    assert f"**{figures['generic_answers']} of {figures['catalogue_answers']} " in page
