"""The security probes' stack: one real stack (ComfyUI + the worker's RunPod local API) whose worker
holds secrets in its environment, shared by every probe (CI budget), plus a leaky test node pack.

Every probe goes through `attack()`: it sends a hostile job to /runsync and checks that nothing
escaped — no file appeared or vanished anywhere in the stack's run directory (ComfyUI's logs and
database aside), no secret is in any byte of the response or the worker's log, the worker is healthy.
Figures (probes tried, blocked, by code) go to $SECURITY_RESULTS when it is set (`make bench-security`);
the test run itself writes no tracked file.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import make_stack, runsync, trusted_test_nodes
from tools.localstack import LocalStack

NODES = Path(__file__).parent / "nodes"
SECRETS = {
    "RUNPOD_API_KEY": "rpa_PROBE_runpod_key_7f3a9c",
    "HF_TOKEN": "hf_PROBE_token_51d2e8",
    "DB_PASSWORD": "PROBE-db-password-0b7c",
    "PLAIN_LOOKING": "PROBE-listed-value-99e1",  # secret only because SECRET_ENV_VARS lists it
    "HF_ENDPOINT": "https://u:sekrit123@mirror.invalid",  # secret by its shape only, under a documented name
}
# Parts of a secret that must not appear alone either: a URL's password.
SECRET_PARTS = {"HF_ENDPOINT password": "sekrit123"}
# Codes that refuse a job (before queueing, or its response before it is sent).
REFUSALS = frozenset({"POLICY_DENIED", "PATH_REFUSED", "LIMIT_EXCEEDED", "INVALID_IMAGE", "OUTPUT_TOO_LARGE"})
# Changed by ComfyUI itself while it runs, not by jobs.
_VOLATILE = ("comfyui.log", "worker.log", "comfy/user/")


def tree(root: Path) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in [*dirnames, *filenames]:
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            if not rel.startswith(_VOLATILE) and rel not in _VOLATILE:
                out.add(rel)
    return out


@dataclass
class Probes:
    stack: LocalStack
    tried: list[dict[str, Any]] = field(default_factory=list)

    def leaked(self, text: str) -> list[str]:
        return [name for name, value in {**SECRETS, **SECRET_PARTS}.items() if value in text]

    def attack(self, name: str, job_input: dict[str, Any], expect: str | None, timeout: float = 120) -> dict[str, Any]:
        """Send one hostile job; assert it is blocked with `expect` (None: it may run) and nothing escaped."""
        before = tree(self.stack.run_dir)
        log_size = self.stack.log_file.stat().st_size
        started = time.monotonic()
        envelope = runsync(self.stack, job_input, timeout=timeout)
        seconds = time.monotonic() - started
        raw = json.dumps(envelope)
        output = envelope.get("output") if isinstance(envelope.get("output"), dict) else {}
        error = json.loads(envelope["error"]) if isinstance(envelope.get("error"), str) else None
        code = (error or output or {}).get("error_code")
        record = {"probe": name, "code": code, "expected": expect, "seconds": round(seconds, 3), "contained": False}
        self.tried.append(record)
        assert code == expect, f"{name}: expected {expect}, got {code}: {raw[:600]}"
        assert not self.leaked(raw), f"{name}: secrets {self.leaked(raw)} in the response"
        assert tree(self.stack.run_dir) == before, f"{name}: files changed: {tree(self.stack.run_dir) ^ before}"
        with self.stack.log_file.open("rb") as fh:
            fh.seek(log_size)
            new_log = fh.read().decode("utf-8", "replace")
        assert not self.leaked(new_log), f"{name}: secrets {self.leaked(new_log)} in the worker's log"
        # healthy afterwards: `test` answers ok (its ComfyUI probe has a 0.5 s timeout; a loaded 2-core
        # machine may need a few tries)
        deadline = time.monotonic() + 30
        while not (health := runsync(self.stack, {"mode": "test"})["output"])["ok"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert health["ok"] and health["comfyui_up"], f"{name}: worker unhealthy afterwards: {health}"
        record["contained"] = True
        return {"envelope": envelope, "error": error, "output": output, "seconds": seconds}


@pytest.fixture(scope="session")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probes]:
    stack = make_stack(
        tmp_path_factory.mktemp("security"),
        GENERATE_TIMEOUT_S="60",
        DISK_LOW_GB="0.5",
        MAX_PAYLOAD_MB="1",
        SECRET_ENV_VARS="PLAIN_LOOKING",
        # the leaky pack is vetted here: these probes are about what reaches a response, not restarts
        TRUSTED_NODES=f"{trusted_test_nodes()},RPSecEnvEcho",
        **SECRETS,
    )
    shutil.copytree(NODES / "rp_security_nodes", stack.comfy_dir / "custom_nodes" / "rp_security_nodes")
    stack.start(wait=180)
    # ComfyUI creates some folders the first time its node definitions are listed (input/3d): not a job's doing
    requests.get(f"{stack.comfy_url}/object_info", timeout=60).raise_for_status()
    # and the worker's background self-check runs a smoke job of its own: let it finish first
    deadline = time.monotonic() + 120
    while "self-check:" not in stack.log_file.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"the worker's self-check did not finish:\n{stack.tail()}"
        time.sleep(0.1)
    p = Probes(stack)
    try:
        yield p
    finally:
        stack.stop()
        results = os.environ.get("SECURITY_RESULTS")
        if results and p.tried:
            blocked = [t for t in p.tried if t["code"] in REFUSALS and t["code"] == t["expected"]]
            codes: dict[str, int] = {}
            for t in blocked:
                codes[t["code"]] = codes.get(t["code"], 0) + 1
            summary = {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "probes_tried": len(p.tried),
                "blocked": len(blocked),
                "blocked_by_code": dict(sorted(codes.items())),
                "ran_and_contained": sum(1 for t in p.tried if t["code"] not in REFUSALS and t["contained"]),
                "escaped": sum(1 for t in p.tried if not t["contained"]),
                "probes": p.tried,
            }
            Path(results).write_text(json.dumps(summary, indent=2) + "\n")
