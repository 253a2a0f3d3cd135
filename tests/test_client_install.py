"""Every documented way of installing the client gives a `comfy-runpod` that works, not only `--help`.

Each way the docs name (README, docs/client.md, docs/volume.md: `pip install .`, `pipx install .`,
`pip install '.[volume]'`, `pip install '.[report]'`, `pip install '.[ui]'`) installs a copy of the project
into a fresh virtualenv (no system site-packages; dependencies from PyPI or pip's cache), then runs real
commands of the installed
client from outside the checkout, text and `--json`, against the replay of RunPod's documented API
(tests/client/fake_runpod.py): the health ping, `diagnose --test`, a full diagnose, a generate that saves a
PNG, `jobs health`, and `volume check` (boto3 only with the `volume` extra). Text output is what broke
when `rich` was only an extra.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.fake_runpod import FakeRunPod
from tests.conftest import REPO

SOURCES = ("pyproject.toml", "README.md", "handler", "client", "workflows", "comfyui_client")
# The documented ways of installing the client (the test below keeps the docs to these).
OPTIONAL = ("runpod", "boto3", "matplotlib", "aiohttp")  # the worker's, the volume, report and ui extras
WAYS = ("pip install .", "pip install '.[volume]'", "pip install '.[report]'", "pip install '.[ui]'", "pipx install .")


def test_pyproject_lets_the_client_run_on_any_python_from_3_11():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    names = " ".join(project["dependencies"]).lower()
    assert "runpod" not in names and "boto3" not in names  # only in the `worker` extra
    assert any(d.startswith("runpod==") for d in project["optional-dependencies"]["worker"])
    assert any(d.startswith("rich==") for d in project["dependencies"])  # the client's text output


def test_the_docs_name_exactly_the_ways_this_test_installs():
    """A new install instruction in the docs must be added here (and so tested)."""
    docs = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    text = "\n".join(p.read_text() for p in docs)
    import re

    found = re.findall(r"\b(pipx?) install ('?\.[^\s`;&)]*|comfy-runpod\S*)", text)
    named = {f"{tool} install {what.rstrip('.,:') if what != '.' else what}" for tool, what in found}
    assert "pip install ." in named and "pipx install ." in named, sorted(named)
    assert named <= set(WAYS), sorted(named - set(WAYS))
    assert "comfy-runpod[" not in text  # the package is not on PyPI: extras are installed from the checkout


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("install") / "src"
    for name in SOURCES:  # a copy: setuptools writes build/ and *.egg-info next to the sources
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(path, src / name)
    return src


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRunPod]:
    server = FakeRunPod().start()
    yield server
    server.stop()


def _install(way: str, src: Path, scratch: Path) -> tuple[Path, Path]:
    """Install the client the documented way; returns (the comfy-runpod command, the python of its venv)."""
    if way == "pipx install .":
        env = {**os.environ, "PIPX_HOME": str(scratch / "pipx"), "PIPX_BIN_DIR": str(scratch / "bin")}
        env.pop("PYTHONPATH", None)
        cmd = [sys.executable, "-m", "pipx", "install", "--python", sys.executable, str(src)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=540, env=env)
        _skip_if_offline(done)
        assert done.returncode == 0, done.stdout + done.stderr
        return scratch / "bin" / "comfy-runpod", scratch / "pipx" / "venvs" / "comfy-runpod" / "bin" / "python"
    env_dir = scratch / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    py = env_dir / "bin" / "python"
    target = str(src) + (way.split("'.")[1].rstrip("'") if "'." in way else "")
    done = subprocess.run(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", target],
        capture_output=True,
        text=True,
        timeout=540,
    )
    _skip_if_offline(done)
    assert done.returncode == 0, done.stdout + done.stderr
    return env_dir / "bin" / "comfy-runpod", py


def _skip_if_offline(done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0 and "No matching distribution" in done.stderr + done.stdout:
        pytest.skip(f"PyPI (or pip's cache) is not reachable here: {done.stderr[-300:]}")


@pytest.mark.timeout(900)
@pytest.mark.parametrize("way", WAYS)
def test_each_documented_install_runs_real_commands(way: str, source: Path, fake: FakeRunPod, tmp_path: Path):
    """One install way, then a new user's first commands in order (health, diagnose, generate, jobs, volume)
    and which optional modules came with it: one long test, as one venv per way is the expensive part."""
    command, py = _install(way, source, tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{command.parent}:/usr/bin:/bin",
        "HOME": str(home),
        "RUNPOD_API_KEY": fake.api_key,
        "RUNPOD_ENDPOINT_ID": fake.endpoint_id,
        "RUNPOD_API_BASE": fake.api_base,
        "TEST_POLL_INTERVAL": "0.2",
        "RUNPOD_S3_ACCESS_KEY": "user_install_test",
        "RUNPOD_S3_SECRET_KEY": "rps_install_test_secret",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        # cwd outside the checkout: the installed package is what runs; no TTY, as in CI
        return subprocess.run([str(command), *args], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)

    health = run("health")
    assert health.returncode == 0, health.stdout + health.stderr
    assert "healthy" in health.stdout and "Traceback" not in health.stderr
    health_json = json.loads(run("health", "--json").stdout)
    assert health_json["ok"] is True and health_json["result"]["health"]["comfyui_version"] == "0.3.75"

    ping = run("diagnose", "--test")
    assert ping.returncode == 0 and "healthy" in ping.stdout, ping.stdout + ping.stderr
    full = run("diagnose", "--workflow", "smoke_image")
    assert full.returncode == 0 and "smoke_image" in full.stdout, full.stdout + full.stderr
    diagnosed = json.loads(run("diagnose", "--workflow", "smoke_image", "--json").stdout)
    assert diagnosed["command"] == "diagnose" and diagnosed["exit_code"] == 0

    generated = run("generate", "--workflow", "smoke_image", "--no-open", "--out", str(tmp_path / "out"))
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "smoke_00001_.png" in generated.stdout and list((tmp_path / "out").rglob("smoke_00001_.png"))

    jobs = run("jobs", "health")
    assert jobs.returncode == 0 and "inQueue 2" in jobs.stdout, jobs.stdout + jobs.stderr

    # boto3 comes only with the `volume` extra; without it the error names the install that adds it
    s3 = ("--volume-id", "vol123", "--datacenter", "EU-RO-1", "--endpoint-url", "http://127.0.0.1:9")  # refused
    volume = run("volume", "check", *s3, "--json")
    volume_code = json.loads(volume.stdout)["error"]["code"]
    assert volume.returncode == 2
    if "[volume]" in way:
        assert volume_code == "VOLUME_UNREACHABLE", volume.stdout
    else:
        assert volume_code == "VOLUME_NEEDS_BOTO3" and "pip install '.[volume]'" in volume.stdout

    probe = subprocess.run(
        [str(py), "-c", f"import importlib.util as u; print([m for m in {OPTIONAL!r} if u.find_spec(m)])"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    expected = {"[volume]": ["boto3"], "[report]": ["matplotlib"], "[ui]": ["aiohttp"]}.get(
        next((extra for extra in ("[volume]", "[report]", "[ui]") if extra in way), ""), []
    )
    assert probe.returncode == 0 and probe.stdout.strip() == str(expected), probe.stdout + probe.stderr
    assert fake.api_key not in health.stdout + health.stderr + generated.stdout + generated.stderr
