"""`make lint`'s Python checks, in the suite so that CI enforces them: ruff, and mypy on the four
packages (its settings are pyproject.toml's [tool.mypy])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean_and_the_tree_formatted():
    for argv in (("check", "--no-cache", "."), ("format", "--check", "--no-cache", ".")):
        proc = _run(str(BIN / "ruff"), *argv)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_is_clean_on_the_four_packages(tmp_path):
    proc = _run(str(BIN / "mypy"), "--cache-dir", str(tmp_path / "mypy-cache"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout, proc.stdout
