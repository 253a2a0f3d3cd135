"""The last-resort worker: answers every job with why the real handler can't run. Standalone.

entrypoint.sh starts it, as a script (`python handler/last_resort.py [runpod flags]`, never `-m`, so
no package `__init__` runs), when `python -m handler.worker` ended on its own with a non-zero code —
typically because the handler can't be imported (a dependency missing from the worker's venv, a
syntax error in a shipped module). It needs only the runpod SDK and the standard library: it imports
nothing from handler/, workflows/ or comfyui_client/ (workflows/secrets.py, itself stdlib-only, is
loaded by file path). Without it the container would exit, RunPod would restart it, and jobs would
wait in the queue of a worker that never answers: the restart loop this product exists to prevent.

At start it re-runs the import that failed, in a child process, to get the real exception and the
traceback's last lines; then every job gets them with a code and a fix: `test` answers ok: false
with the cause, `diagnose` an error finding, anything else (generate, a malformed request) fails with
the documented error shape. HANDLER_IMPORT_FAILED and HANDLER_EXITED are in workflows/errors.py;
their table fixes are kept equal to FIXES here by tests/start_failures/test_last_resort.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

APP_DIR = Path(__file__).resolve().parent.parent
FIXES = {
    "HANDLER_IMPORT_FAILED": "The worker's handler can't be imported, so only this last-resort handler answers: "
    "install what the message names into the handler's Python (HANDLER_PYTHON; the image installs "
    "requirements/worker.txt into /opt/venv) or fix the file and line it names, then redeploy.",
    "HANDLER_EXITED": "The worker's handler imported but its process ended (exit code in the message; its last "
    "lines are in the container log): fix what they name and redeploy. This last-resort handler answers "
    "meanwhile.",
}
_EXCEPTION_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s*(?P<text>.*))?$")
_MISSING = re.compile(r"No module named '(?P<module>[^']+)'")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')


def _secrets_module() -> Any:
    """workflows/secrets.py by path (stdlib-only): the same idea of a secret as the real worker."""
    spec = importlib.util.spec_from_file_location("_last_resort_secrets", APP_DIR / "workflows" / "secrets.py")
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Used only when workflows/secrets.py itself can't be loaded (it may be the broken file): a name that
# merely contains one of these marks a secret, broader than secrets.py's rule, so nothing leaks.
_FALLBACK_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASS", "AUTH", "CREDENTIAL", "PRIVATE", "COOKIE", "SESSION")


def _fallback_secret_values(env: Mapping[str, str]) -> list[str]:
    listed = {n.strip().upper() for n in env.get("SECRET_ENV_VARS", "").split(",") if n.strip()}
    names = [k for k in env if k.upper() in listed or any(w in k.upper() for w in _FALLBACK_SECRET_WORDS)]
    return sorted({env[k] for k in names if len(env[k]) >= 6}, key=len, reverse=True)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


def masked(cause: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The cause with every secret of the environment masked (a traceback can quote one). Never raises:
    when workflows/secrets.py can't be loaded (a syntax error there is one way the handler breaks), a
    broader stdlib rule masks instead, so this handler still starts."""
    try:
        secrets = _secrets_module()
        if secrets is not None:
            return dict(secrets.redact_data(cause, secrets.secret_values(env)))
    except Exception:  # any failure of that file must not stop the last resort
        pass
    return dict(_redact(cause, _fallback_secret_values(env)))


def probe_import(python: str, timeout: float = 120.0) -> tuple[int | None, list[str]]:
    """Import handler.worker as the entrypoint did, in a child: its exit code and stderr lines."""
    try:
        done = subprocess.run(
            [python, "-c", "import handler.worker"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, [f"{type(exc).__name__}: {exc}"]
    return done.returncode, done.stderr.splitlines()


def cause_of(exit_code: int, probe_rc: int | None, stderr: list[str], python: str) -> dict[str, Any]:
    """The cause every job is answered with: code, message, fix and details. Pure."""
    tail = [line for line in stderr if line.strip()][-12:]
    if probe_rc == 0:
        message = (
            f"the worker process (python -m handler.worker) ended with exit code {exit_code} after its handler "
            "imported; a last-resort handler answers jobs instead"
        )
        return {"code": "HANDLER_EXITED", "message": message, "fix": FIXES["HANDLER_EXITED"], "details": {}}
    exc_line = next((line.strip() for line in reversed(tail) if _EXCEPTION_LINE.match(line.strip())), None)
    exc_line = exc_line or (tail[-1].strip() if tail else f"exit code {probe_rc}")
    exc_type, _, exc_text = exc_line.partition(": ")
    frames = [m for line in tail if (m := _FRAME.match(line))]
    where = f" ({frames[-1]['file']}, line {frames[-1]['line']})" if frames else ""
    message = f"the worker's handler can't be imported: {exc_line}{where}; a last-resort handler answers jobs instead"
    fix = FIXES["HANDLER_IMPORT_FAILED"]
    if missing := _MISSING.search(exc_line):
        module = missing["module"].split(".")[0]
        fix = (
            f"Install the Python module '{module}' into the handler's Python ({python}): add its package to the "
            f"image's worker requirements (requirements/worker.txt, `make lock`) and rebuild, or `{python} -m pip "
            f"install <package providing {module}>` in a derived image; then redeploy."
        )
    elif frames:
        fix = (
            f"Fix {exc_type} at {frames[-1]['file']}, line {frames[-1]['line']} (the traceback's last frame) and "
            "redeploy; until then only this last-resort handler answers."
        )
    details = {
        "exception_type": exc_type,
        "exception_message": exc_text,
        "traceback_tail": tail,
        "handler_python": python,
        "worker_exit_code": exit_code,
    }
    return {"code": "HANDLER_IMPORT_FAILED", "message": message, "fix": fix, "details": details}


def answer(job_input: Any, cause: dict[str, Any], since: float) -> dict[str, Any]:
    """The response to one job: health for `test`, a finding for `diagnose`, the error shape otherwise."""
    short = {"code": cause["code"], "message": cause["message"], "fix": cause["fix"]}
    tail = cause["details"].get("traceback_tail", [])
    mode = job_input.get("mode") if isinstance(job_input, dict) else None
    if isinstance(job_input, dict) and (mode == "test" or (mode is None and job_input.get("test") is True)):
        return {
            "ok": False,
            "state": "broken",
            "comfyui_up": False,
            "last_resort": True,
            "cause": short,
            "logs_tail": tail,
            "uptime_s": round(time.monotonic() - since, 1),
        }
    if mode == "diagnose":
        finding = {"severity": "error", **short}
        return {"ok": False, "last_resort": True, "cause": short, "findings": [finding], "logs_tail": tail}
    body = {
        "error_code": cause["code"],
        "error_message": cause["message"],
        "fix": cause["fix"],
        "details": cause["details"],
    }
    response: dict[str, Any] = {"error": json.dumps(body), **body}
    if cause["code"] == "HANDLER_EXITED":
        response["refresh_worker"] = True  # the process died after a good import: a fresh worker may not
    return response


def main() -> int:
    since = time.monotonic()
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # run as a script: handler/'s modules (config, state, ...) must not shadow others
    python = os.environ.get("HANDLER_PYTHON") or sys.executable
    exit_code = int(os.environ.get("WORKER_EXIT_CODE", "1") or 1)
    probe_rc, stderr = probe_import(python)
    cause = cause_of(exit_code, probe_rc, stderr, python)
    cause = masked(cause, os.environ)  # masked once: the cause is all a job ever gets back
    print(f"last-resort handler: answering every job with [{cause['code']}] {cause['message']}", flush=True)
    import runpod  # the one dependency: without it nothing in this container can answer a job

    runpod.serverless.start({"handler": lambda job: answer(job.get("input"), cause, since)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
