"""Shared fixtures: one real local stack (CPU ComfyUI + the worker's RunPod local API) per session.

The stack runs through the same entrypoint.sh the image uses, on free ports, in a temporary run
directory, with the test custom node packs from tests/fixtures/custom_nodes installed, and the session
stack also with the real packs RES4LYF and ComfyUI-VideoHelperSuite at the registry's pinned commits
(tools/packs.py: a snapshot in COMFY_PACKS_SNAPSHOTS, else git). ComfyUI-WanVideoWrapper is never
installed here, so its nodes are the registered nodes that are missing in the session stack.
"""

from __future__ import annotations

import atexit
import base64
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.localstack import DEFAULT_COMFY_HOME, LocalStack, free_port  # noqa: E402
from tools.packs import PackUnavailable, install_packs  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
# The real packs of the session stack.
REAL_PACKS = ("RES4LYF", "ComfyUI-VideoHelperSuite")
# A registered pack that is never installed here: its nodes are "registered but missing" in every stack.
ABSENT_PACK = "ComfyUI-WanVideoWrapper"


def _require_comfy() -> None:
    if not (DEFAULT_COMFY_HOME / ".installed").is_file():
        pytest.fail(f"ComfyUI is not installed at {DEFAULT_COMFY_HOME}: run `make test` (it installs it first)")


def reachable(run_dir: Path) -> Path:
    """A run directory ComfyUI's unprivileged user can reach: pytest keeps /tmp/pytest-of-root 0700 (and
    makes it so again at every session start, other sessions' too), so the stack lives in a 0711
    directory of its own, removed at exit; `run_dir` becomes a link to it for the tests that use it."""
    if os.geteuid() != 0:
        return run_dir
    real = Path(tempfile.mkdtemp(prefix="comfy-stack-"))
    real.chmod(0o711)
    atexit.register(shutil.rmtree, real, ignore_errors=True)
    if run_dir.is_dir() and not any(run_dir.iterdir()):
        run_dir.rmdir()
    if not run_dir.exists():
        run_dir.symlink_to(real)
    return real


def pack_classes(*packs: Path) -> list[str]:
    """The node classes a test pack maps (its NODE_CLASS_MAPPINGS' keys, read without importing it)."""
    import ast

    names: list[str] = []
    for pack in packs:
        for node in ast.walk(ast.parse((pack / "__init__.py").read_text())):
            targets = [getattr(t, "id", "") for t in node.targets] if isinstance(node, ast.Assign) else []
            if "NODE_CLASS_MAPPINGS" in targets and isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
                keys = node.value.keys
                names += [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return names


def trusted_test_nodes() -> str:
    """TRUSTED_NODES for a test stack: the repository's own test packs are vetted as a deployer vets its
    packs (no restart after each of their jobs, handler.isolation); tests of the vetting set their own."""
    return ",".join(pack_classes(*(p for p in (FIXTURES / "custom_nodes").iterdir() if (p / "__init__.py").is_file())))


def make_stack(run_dir: Path, packs: tuple[str, ...] = (), **env: str) -> LocalStack:
    """A private stack with the test packs, plus the named real packs (PackUnavailable if one can't be had)."""
    _require_comfy()
    run_dir = reachable(run_dir)
    env.setdefault("TRUSTED_NODES", trusted_test_nodes())
    stack = LocalStack(run_dir, comfy_port=free_port(), api_port=free_port(), env_overrides=env)
    custom = stack.comfy_dir / "custom_nodes"
    custom.mkdir(parents=True, exist_ok=True)
    for pack in (FIXTURES / "custom_nodes").iterdir():
        shutil.copytree(pack, custom / pack.name, dirs_exist_ok=True)
    install_packs(custom, packs)
    stack.use_requirements_of(list(packs))
    return stack


def wait_for_startup_selfcheck(stack: LocalStack, timeout: float = 120) -> None:
    """Wait until the worker's background start-up self-check (diagnose + a smoke job) has printed its
    summary: until then its job may be running beside a test's (a queue, files in the output dir)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "self-check:" in stack.log_file.read_text(errors="replace"):
            return
        time.sleep(0.1)
    pytest.fail(f"the worker's start-up self-check did not finish within {timeout} s:\n{stack.tail()}")


# Why the session stack runs without the real packs, when it does (see `real_packs`).
_PACKS_PROBLEM: list[str] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The session's real stack. Tests must leave it running and healthy.

    Without a source for the real packs it starts without them, so that only the tests that need a pack
    (through `real_packs`) fail, each saying how to provide it.
    """
    run_dir = tmp_path_factory.mktemp("stack")
    env = {"GENERATE_TIMEOUT_S": "120", "DISK_LOW_GB": "0.5"}
    try:
        s = make_stack(run_dir, packs=REAL_PACKS, **env)
    except PackUnavailable as exc:
        _PACKS_PROBLEM.append(str(exc))
        s = make_stack(run_dir, **env)
    s.start(wait=180)
    try:
        wait_for_startup_selfcheck(s)
        yield s
    finally:
        s.stop()


@pytest.fixture
def real_packs(stack: LocalStack) -> LocalStack:
    """The session stack, which must have RES4LYF and VideoHelperSuite loaded: fails (never skips) if not."""
    if _PACKS_PROBLEM:
        pytest.fail(f"the real custom node packs are not installed: {_PACKS_PROBLEM[0]}", pytrace=False)
    return stack


def nowhere_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """GitHub unreachable for sure, also on machines that can reach it: git rewrites its URLs to nowhere."""
    for key, value in {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{tmp_path}/nowhere/.insteadOf",
        "GIT_CONFIG_VALUE_0": "https://github.com/",
    }.items():
        monkeypatch.setenv(key, value)


def runsync(stack: LocalStack, job_input: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """POST /runsync to the real RunPod local API; returns RunPod's envelope (id, status, output, error)."""
    r = requests.post(f"{stack.api_url}/runsync", json={"input": job_input}, timeout=timeout)
    r.raise_for_status()
    return r.json()


def png_base64(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 30, 30)) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="session")
def object_info(stack: LocalStack) -> dict[str, Any]:
    """The real /object_info of the session's ComfyUI (core nodes + the test packs)."""
    return requests.get(f"{stack.comfy_url}/object_info", timeout=60).json()


def stack_settings(stack: LocalStack, **overrides: str):
    """Worker settings pointing at a running stack's ComfyUI, for in-process handler calls."""
    from handler.config import Settings

    env = {k: v for k, v in stack.env().items() if k.startswith(("COMFY_", "RUNPOD_", "DISK_", "GENERATE_"))}
    env.update(
        COMFY_URL=stack.comfy_url,
        COMFY_INPUT_DIR=str(stack.comfy_dir / "input"),
        COMFY_OUTPUT_DIR=str(stack.comfy_dir / "output"),
        COMFY_TEMP_DIR=str(stack.comfy_dir / "temp"),
    )
    env.update(overrides)
    return Settings.from_env(env)


def sleep_workflow(seconds: float, prefix: str = "sleep") -> dict[str, Any]:
    return {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "RPTestSleep", "inputs": {"image": ["1", 0], "seconds": seconds}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }
