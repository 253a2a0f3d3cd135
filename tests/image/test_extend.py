"""The `FROM` pattern without Docker: docker/extend.sh, as a derived image's one RUN runs it, adds a new
registry entry's pack (at its pinned commit) and model to an "image" laid out in a temporary directory,
then the static self-check passes. The scripts are the ones the Dockerfile ships in /opt/worker/build."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.image.test_build_inputs import _git
from tools.localstack import DEFAULT_COMFY_HOME

DOCKER = REPO / "docker"


def _pack_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "pack-repo"
    shutil.copytree(REPO / "tests/fixtures/custom_nodes/rp_test_nodes", repo)
    _git(repo, "init", "-q")
    _git(repo, "config", "uploadpack.allowAnySHA1InWant", "true")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "pinned")
    return repo, _git(repo, "rev-parse", "HEAD")


def _image(tmp_path: Path, pack_uri: str, commit: str, model: Path) -> tuple[Path, Path]:
    """(a ComfyUI root shaped like the image's /comfyui, the registry with my_flow copied in)."""
    comfyui = DEFAULT_COMFY_HOME / "ComfyUI"
    if not (comfyui / "nodes.py").is_file():
        pytest.fail(f"ComfyUI is not installed at {DEFAULT_COMFY_HOME}: run `make comfyui`")
    comfy = tmp_path / "comfyui"
    (comfy / "custom_nodes").mkdir(parents=True)
    (comfy / "nodes.py").symlink_to(comfyui / "nodes.py")
    (comfy / "comfy_extras").symlink_to(comfyui / "comfy_extras")
    registry = tmp_path / "registry"
    registry.mkdir()
    for name in ("smoke_image.yaml", "smoke_image.json"):  # what the base image was built with
        shutil.copy2(REPO / "workflows/registry" / name, registry / name)
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    (registry / "my_flow.json").write_text(
        json.dumps(
            {
                "1": {"class_type": "RPTestSleep", "inputs": {"seconds": 0.0}},
                "2": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
                "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "mine"}},
            }
        )
    )
    (registry / "my_flow.yaml").write_text(
        f"id: my_flow\ntitle: Mine\nworkflow: my_flow.json\n"
        f"packs:\n  - name: rp_test_nodes\n    repo: {pack_uri}\n    commit: {commit}\n    nodes: [RPTestSleep]\n"
        f"models:\n  - folder: loras\n    name: mine.safetensors\n    url: {model.as_uri()}\n"
        f"    sha256: {sha}\n    size_bytes: {model.stat().st_size}\n"
    )
    return comfy, registry


def _extend(tmp_path: Path, comfy: Path, registry: Path, *ids: str) -> subprocess.CompletedProcess:
    venv = tmp_path / "comfy-venv"  # ComfyUI's venv: the pack's requirements go there, torch constrained
    if not venv.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        (venv / "torch-constraints.txt").write_text("")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COMFY_DIR": str(comfy),
        "COMFY_VENV": str(venv),
        "HANDLER_PYTHON": sys.executable,
        "WORKFLOW_REGISTRY_DIR": str(registry),
        "COMFY_EXTRA_MODEL_PATHS": str(REPO / "extra_model_paths.yaml"),
    }
    return subprocess.run(
        ["bash", str(DOCKER / "extend.sh"), *ids], capture_output=True, text=True, env=env, timeout=240
    )


def test_extend_adds_the_new_entrys_pack_and_model_and_the_self_check_passes(tmp_path: Path):
    repo, commit = _pack_repo(tmp_path)
    model = tmp_path / "mine.safetensors"
    model.write_bytes(b"\x02" * 2048)
    comfy, registry = _image(tmp_path, repo.as_uri(), commit, model)

    first = _extend(tmp_path, comfy, registry, "my_flow")
    assert first.returncode == 0, first.stdout + first.stderr
    pack = comfy / "custom_nodes/rp_test_nodes"
    assert (pack / ".pack-source").read_text().split() == [repo.as_uri(), commit]
    assert (comfy / "models/loras/mine.safetensors").read_bytes() == model.read_bytes()
    assert re.search(r"self-check.*ok|OK", first.stdout, re.I), first.stdout

    again = _extend(tmp_path, comfy, registry, "my_flow")  # a rebuild of the same layer: nothing fetched twice
    assert again.returncode == 0, again.stdout + again.stderr
    assert "rp_test_nodes @" in again.stdout and "already installed" in again.stdout
    assert "loras/mine.safetensors already in the image" in again.stdout


def test_extend_refuses_to_move_an_installed_pin_and_fails_on_an_undefined_node(tmp_path: Path):
    repo, commit = _pack_repo(tmp_path)
    model = tmp_path / "mine.safetensors"
    model.write_bytes(b"\x02" * 2048)
    comfy, registry = _image(tmp_path, repo.as_uri(), commit, model)
    assert _extend(tmp_path, comfy, registry).returncode == 0  # no ids: packs only, models stay on the volume
    assert not (comfy / "models/loras/mine.safetensors").exists()

    (registry / "my_flow.yaml").write_text((registry / "my_flow.yaml").read_text().replace(commit, "f" * 40))
    moved = _extend(tmp_path, comfy, registry)
    assert moved.returncode == 2 and "build from a checkout to change a pin" in moved.stderr

    (registry / "my_flow.yaml").write_text((registry / "my_flow.yaml").read_text().replace("f" * 40, commit))
    flow = json.loads((registry / "my_flow.json").read_text())
    flow["4"] = {"class_type": "NoSuchNodeAnywhere", "inputs": {}}
    (registry / "my_flow.json").write_text(json.dumps(flow))
    undefined = _extend(tmp_path, comfy, registry)
    assert undefined.returncode == 1, undefined.stdout + undefined.stderr
    assert "NoSuchNodeAnywhere" in undefined.stdout + undefined.stderr


def test_the_final_image_ships_every_script_extend_calls():
    dockerfile = (REPO / "Dockerfile").read_text()
    final = dockerfile.split("FROM base AS final", 1)[1]
    copy = re.search(r"^COPY (docker/extend\.sh[^\n]*(?:\\\n[^\n]*)*) /opt/worker/build/$", final, re.M)
    assert copy, "the final stage does not copy docker/extend.sh to /opt/worker/build/"
    shipped = {Path(p).name for p in copy.group(1).replace("\\", " ").split()}
    needed, todo = set(), ["extend.sh"]
    while todo:  # every script reached through "$here/<name>", transitively
        name = todo.pop()
        needed.add(name)
        todo += [n for n in re.findall(r"\$here/([\w.]+)", (DOCKER / name).read_text()) if n != "wheelhouse"]
    assert needed <= shipped, sorted(needed - shipped)
    assert {"install_packs.sh", "fetch_pack.sh", "fetch_git.sh", "plan.py", "selfcheck.sh"} <= needed
