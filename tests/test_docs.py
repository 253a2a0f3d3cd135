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


def test_generated_tables_match_their_catalogues():
    from tools.doc_tables import TABLES, section

    for name, (path, make) in TABLES.items():
        stale = f"{path.name}: {name} is stale: run python -m tools.doc_tables"
        assert section(path.read_text(), name) == make(), stale


def test_every_finding_code_the_code_reports_is_in_the_catalogue():
    from workflows.findings import FINDINGS

    used = set()
    for folder in ("workflows", "handler"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text()
            used |= set(re.findall(r"\b(?:error|warning|info|_finding)\(\s*\"([A-Z][A-Z_]+)\"", text))
            used |= set(re.findall(r"\"code\": \"([A-Z][A-Z_]+)\",\s*\"severity\"", text))
    assert used, "the scan found no finding codes"
    assert used <= set(FINDINGS), sorted(used - set(FINDINGS))
    assert {"REGISTRY_INVALID", "SMOKE_FAILED", "MODEL_FILE_CORRUPT", "VOLUME_NOT_MOUNTED"} <= set(FINDINGS)
    for spec in FINDINGS.values():
        assert spec.severity in ("error", "warning", "info", "error / warning") and spec.meaning and spec.fix


def test_every_client_code_is_in_the_client_error_table():
    from client.errors import client_codes

    documented = {row[0] for row in client_codes()}
    raised = set()
    for path in (REPO / "client").rglob("*.py"):
        raised |= set(re.findall(r"code=\"([A-Z][A-Z_]+)\"", path.read_text()))
    assert raised and raised <= documented, sorted(raised - documented)
    assert all(meaning for _, _, meaning, _ in client_codes())
