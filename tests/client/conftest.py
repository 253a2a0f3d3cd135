"""Client test fixtures: an isolated ledger / outputs dir per test, the fake RunPod API, a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.client.fake_runpod import FakeRunPod
from tests.conftest import REPO


@pytest.fixture(autouse=True)
def client_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """No real RunPod settings leak in; ledger and outputs live in the test's tmp dir."""
    for key in list(os.environ):
        if key.startswith(("RUNPOD_", "TEST_")) or key in ("COMFY_RUNPOD_LEDGER", "COMFY_RUNPOD_OUTPUTS"):
            monkeypatch.delenv(key, raising=False)
    env = {"COMFY_RUNPOD_LEDGER": str(tmp_path / "ledger.sqlite"), "COMFY_RUNPOD_OUTPUTS": str(tmp_path / "outputs")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture(autouse=True)
def own_secret_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's process-wide secret set (client.redact) starts empty in every test and what a test
    registers (directly or by loading settings with a key) is gone after it: no test depends on another."""
    import client.redact

    monkeypatch.setattr(client.redact, "_secrets", set())


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    server = FakeRunPod().start()
    try:
        yield server
    finally:
        server.stop()


def cloud_env(fake: FakeRunPod, **extra: str) -> dict[str, str]:
    """The cloud configuration (endpoint id + key), with the API base pointed at the fake."""
    return {
        "RUNPOD_API_KEY": fake.api_key,
        "RUNPOD_ENDPOINT_ID": fake.endpoint_id,
        "RUNPOD_API_BASE": fake.api_base,
        "TEST_POLL_INTERVAL": "0.2",
        **extra,
    }


def run_cli(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 90
) -> subprocess.CompletedProcess:
    """`python client/<script>.py ARGS` from the repo root, as a user runs it."""
    return subprocess.run(
        [sys.executable, f"client/{script}.py", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def json_out(proc: subprocess.CompletedProcess) -> dict[str, Any]:
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"not JSON (exit {proc.returncode}):\n{proc.stdout}\n--- stderr\n{proc.stderr}") from None
