"""A handler that can't be imported: the start-failure catalogue's row for issue 26.

Staged through the real entrypoint.sh with the real runpod local API: the worker's Python is a real
venv that lacks one dependency of the handler (websocket-client; the runpod SDK does not need it), so
`python -m handler.worker` dies at import exactly as in an image whose requirements went into another
interpreter. handler/last_resort.py must answer test, diagnose and generate with the import error,
the traceback's last lines and a fix, and the container must stay up (no restart loop).
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from handler import last_resort
from tests.conftest import runsync
from tests.start_failures.test_catalogue import error_of, stage, staged  # noqa: F401 (stage is a fixture)
from workflows.errors import CODES
from workflows.findings import FINDINGS


def venv_without(root: Path, distribution: str) -> Path:
    """A real venv holding every package of this one except `distribution`: its python."""
    venv = root / "venv-missing-dep"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
    source = Path(sysconfig.get_paths()["purelib"])
    files = importlib.metadata.distribution(distribution).files or []
    left_out = {Path(str(f)).parts[0] for f in files}
    assert left_out, distribution
    target = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    for entry in source.iterdir():
        if entry.name not in left_out:
            (target / entry.name).symlink_to(entry)
    return venv / "bin" / "python"


@pytest.mark.stack
def test_a_handler_that_cannot_import_answers_every_job_and_stays_up(stage, tmp_path):  # noqa: F811
    python = venv_without(tmp_path, "websocket-client")
    stack = stage(HANDLER_PYTHON=str(python))
    seen = staged(stack, "HANDLER_IMPORT_FAILED")
    cause = seen["health"]["cause"]
    assert "ModuleNotFoundError: No module named 'websocket'" in cause["message"], cause
    assert "'websocket'" in cause["fix"] and str(python) in cause["fix"], cause
    assert any("Traceback" in line or "File " in line for line in seen["health"]["logs_tail"])
    details = seen["error"]["details"]
    assert details["exception_type"] == "ModuleNotFoundError"
    assert details["traceback_tail"][-1].startswith("ModuleNotFoundError")
    assert details["worker_exit_code"] == 1
    # no restart loop: the entrypoint is the same live process, the worker was tried once
    pid = stack.pid()
    assert pid is not None
    again = runsync(stack, {"mode": "generate", "workflow": "smoke_image"}, timeout=30)
    assert error_of(again)["error_code"] == "HANDLER_IMPORT_FAILED"
    assert stack.pid() == pid
    printed = stack.log_file.read_text()
    assert printed.count("entrypoint: starting the worker") == 1, printed
    assert "starting the last-resort handler" in printed
    assert "entrypoint: worker exited with" not in printed  # the entrypoint never ended


@pytest.mark.stack
def test_a_malformed_job_gets_the_cause_too(stage, tmp_path):  # noqa: F811
    stack = stage(HANDLER_PYTHON=str(venv_without(tmp_path, "websocket-client")))
    stack.start(wait=0)
    stack.wait_state(("broken",), timeout=120)
    err = error_of(runsync(stack, {"mode": "no-such-mode", "x": 1}, timeout=30))
    assert err["error_code"] == "HANDLER_IMPORT_FAILED" and "websocket" in err["error_message"]


def test_the_last_resort_fixes_are_the_error_tables():
    for code, fix in last_resort.FIXES.items():
        assert CODES[code].fix == fix
        assert code in FINDINGS and not CODES[code].comfy_involved


def test_the_last_resort_imports_nothing_of_the_project():
    source = Path(last_resort.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in imports if any(p in line for p in ("handler", "workflows", "comfyui_client"))]
    # Load it and mask a cause as main() does (everything before `import runpod`): only the standard
    # library may be imported, in an interpreter without site-packages or PYTHONPATH (-I -S).
    code = (
        "import runpy; m = runpy.run_path('handler/last_resort.py'); "
        "m['masked'](m['cause_of'](1, 1, ['ValueError: x'], 'py'), {'HF_TOKEN': 'hf_abcdefgh'})"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(last_resort.__file__).parent.parent,
        check=True,
    )
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    loaded -= {"import time:", "imported package"}
    assert loaded and not loaded - set(sys.stdlib_module_names) - {"_last_resort_secrets"}, sorted(
        loaded - set(sys.stdlib_module_names)
    )


SYNTAX = [
    "Traceback (most recent call last):",
    '  File "<frozen runpy>", line 198, in _run_module_as_main',
    '  File "/opt/worker/app/handler/worker.py", line 20, in <module>',
    "    from handler.config import Settings",
    '  File "/opt/worker/app/handler/config.py", line 41',
    "    def broken(:",
    "               ^",
    "SyntaxError: invalid syntax",
]


def test_a_broken_file_is_named_with_its_line():
    cause = last_resort.cause_of(1, 1, SYNTAX, "/opt/venv/bin/python")
    assert cause["code"] == "HANDLER_IMPORT_FAILED"
    assert "SyntaxError: invalid syntax (/opt/worker/app/handler/config.py, line 41)" in cause["message"]
    assert "/opt/worker/app/handler/config.py, line 41" in cause["fix"]
    assert cause["details"]["exception_type"] == "SyntaxError"


def test_an_exit_after_a_good_import_is_its_own_code():
    cause = last_resort.cause_of(137, 0, [], "/opt/venv/bin/python")
    assert cause["code"] == "HANDLER_EXITED" and "exit code 137" in cause["message"]
    body = last_resort.answer({"mode": "generate"}, cause, 0.0)
    assert body["error_code"] == "HANDLER_EXITED" and body["refresh_worker"] is True


def test_test_diagnose_and_generate_shapes():
    cause = last_resort.cause_of(1, 1, SYNTAX, "py")
    health = last_resort.answer({"mode": "test"}, cause, 0.0)
    assert health["ok"] is False and health["state"] == "broken" and health["cause"]["code"] == cause["code"]
    report = last_resort.answer({"mode": "diagnose"}, cause, 0.0)
    assert report["findings"][0] == {"severity": "error", **health["cause"]}
    failed = last_resort.answer({"workflow": "x"}, cause, 0.0)
    assert failed["error_code"] == "HANDLER_IMPORT_FAILED" and "SyntaxError" in failed["error"]
    assert last_resort.answer(None, cause, 0.0)["error_code"] == "HANDLER_IMPORT_FAILED"


def test_secrets_in_the_traceback_are_masked():
    lines = [*SYNTAX[:-1], "ValueError: bad token hf_abcdefghijklmnop"]
    cause = last_resort.masked(last_resort.cause_of(1, 1, lines, "py"), {"HF_TOKEN": "hf_abcdefghijklmnop"})
    assert "hf_abcdefghijklmnop" not in str(cause) and "***" in cause["message"]


def test_secrets_are_masked_even_when_the_project_secrets_module_is_the_broken_file(tmp_path, monkeypatch):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "secrets.py").write_text("def broken(:\n")
    monkeypatch.setattr(last_resort, "APP_DIR", tmp_path)
    lines = [*SYNTAX[:-1], "ValueError: bad token hf_abcdefghijklmnop and pw s3cr3t-pw"]
    env = {"HF_TOKEN": "hf_abcdefghijklmnop", "DB_PASS": "s3cr3t-pw", "HOME": "/root/home"}
    cause = last_resort.masked(last_resort.cause_of(1, 1, lines, "py"), env)
    assert "hf_abcdefghijklmnop" not in str(cause) and "s3cr3t-pw" not in str(cause), cause
    assert cause["code"] == "HANDLER_IMPORT_FAILED" and "***" in cause["message"]
