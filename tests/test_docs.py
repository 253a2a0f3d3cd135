"""The README's error table is the contract: it must list every code the worker can return."""

from __future__ import annotations

import re

from tests.conftest import REPO
from workflows.errors import CODES


def test_readme_error_table_matches_the_code_table():
    readme = (REPO / "README.md").read_text()
    table = readme.split("<!-- error-table -->")[1].split("<!-- /error-table -->")[0]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([A-Z_]+)` \| (.+?) \|", table, re.M)}
    assert set(rows) == set(CODES)
    for code, spec in CODES.items():
        assert rows[code] == spec.fix, code


def test_readme_holds_the_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (REPO / ".ci/run").read_text()
