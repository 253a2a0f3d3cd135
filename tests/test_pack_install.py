"""The one install path for packs (docker/pack_requirements.sh through client/local_comfy.py) and the pins
`workflow add` chooses (client/pack_pins.py), on real venvs, real snapshots and a real (unreachable) git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from client.local_comfy import fetch_pack, pack_python
from client.pack_pins import choose_pin, release_findings
from tests.conftest import REPO, nowhere_git
from tools.localstack import DEFAULT_COMFY_HOME
from workflows.pack_plan import PlannedPack

SNAPSHOTS = Path(os.environ.get("COMFY_PACKS_SNAPSHOTS", "/nonexistent"))
GGUF = ("ComfyUI-GGUF", "https://github.com/city96/ComfyUI-GGUF", "795e45156ece99afbc3efef911e63fcb46e6a20d")
ESSENTIALS = (
    "ComfyUI_essentials",
    "https://github.com/cubiq/ComfyUI_essentials",
    "33ff89fd354d8ec3ab6affb605a79a931b445d99",
)
RGTHREE = ("rgthree-comfy", "https://github.com/rgthree/rgthree-comfy", "13b4399c00b5ef5a97b1b6800fc1185874740f5d")
KJNODES = ("ComfyUI-KJNodes", "https://github.com/kijai/ComfyUI-KJNodes", "ff7f876c09ff5a53be051073c3c1731b96ee31a3")


@pytest.fixture
def base_venv(tmp_path: Path) -> Path:
    venv = tmp_path / "base"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    return venv / "bin/python"


def test_a_requirement_that_cannot_be_installed_is_named_and_nothing_changes(tmp_path: Path, base_venv: Path):
    pack = tmp_path / "conflicting_pack"
    pack.mkdir()
    (pack / "requirements.txt").write_text("pip<1\n")  # conflicts with the pip the venv holds
    before = subprocess.run([str(base_venv), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    proc = subprocess.run(
        ["bash", str(REPO / "docker/pack_requirements.sh"), str(pack), str(base_venv)], capture_output=True, text=True
    )
    assert proc.returncode == 4
    lines = [
        ln for ln in proc.stderr.splitlines() if ln.startswith("pack_requirements: cannot install: conflicting_pack")
    ]
    assert any("pip<1" in ln for ln in lines), proc.stderr
    assert subprocess.run([str(base_venv), "-m", "pip", "freeze"], capture_output=True, text=True).stdout == before

    python, problems = pack_python(base_venv, [pack], cache=tmp_path / "cache")  # PACK_REQUIREMENTS_FAILED's source
    assert "pip<1" in problems["conflicting_pack"] and python.is_file()


def test_install_py_runs_in_the_pack_and_an_empty_requirements_file_installs_nothing(tmp_path: Path, base_venv: Path):
    pack = tmp_path / "pack_with_install"
    pack.mkdir()
    (pack / "requirements.txt").write_text("# nothing\n")
    (pack / "install.py").write_text("import sys, pathlib; pathlib.Path('ran.txt').write_text(sys.prefix)\n")
    proc = subprocess.run(
        ["bash", str(REPO / "docker/pack_requirements.sh"), str(pack), str(base_venv)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert (pack / "ran.txt").read_text() == str(base_venv.parent.parent)


def test_a_requirements_file_that_includes_another_reads_it_from_the_pack(tmp_path: Path, base_venv: Path):
    """`-r base.txt` in a pack's requirements.txt is read from the pack's folder, as pip would there."""
    pack = tmp_path / "pack_with_include"
    pack.mkdir()
    (pack / "requirements.txt").write_text("-r base.txt\n")
    (pack / "base.txt").write_text("pip\n")  # already in the venv: nothing to download
    proc = subprocess.run(
        ["bash", str(REPO / "docker/pack_requirements.sh"), str(pack), str(base_venv)], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "every requirement is already installed" in proc.stdout, proc.stderr
    (pack / "requirements.txt").write_text("this is ::: not a requirement\n")
    broken = subprocess.run(
        ["bash", str(REPO / "docker/pack_requirements.sh"), str(pack), str(base_venv)], capture_output=True, text=True
    )
    assert broken.returncode == 4 and "cannot install: pack_with_include: ERROR: Invalid requirement" in broken.stderr


def test_the_overlay_venv_adds_the_packs_requirements_with_headless_opencv_and_leaves_comfyuis_venv_alone():
    """ComfyUI_essentials' pixeloe and transparent-background ask for the GUI opencv-python: the overlay gets
    them without it (the headless build ComfyUI's venv has serves `cv2`), and ComfyUI's venv is unchanged."""
    comfy_python = DEFAULT_COMFY_HOME / "venv/bin/python"
    if not comfy_python.is_file():
        pytest.fail(f"no ComfyUI venv at {comfy_python}: run `make comfyui`", pytrace=False)
    before = subprocess.run([str(comfy_python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout
    # the four packs of tests/fixtures/editor_saves/four_packs.json: the overlay workflow add builds for it
    packs = [fetch_pack(*p, snapshots=SNAPSHOTS) for p in (GGUF, ESSENTIALS, RGTHREE, KJNODES)]
    python, problems = pack_python(comfy_python, packs)
    assert problems == {}
    listed = json.loads(
        subprocess.run([str(python), "-m", "pip", "list", "--format=json"], capture_output=True, text=True).stdout
    )
    names = {p["name"].lower() for p in listed}
    assert {"gguf", "pixeloe", "transparent-background", "color-matcher", "torch", "opencv-python-headless"} <= names
    assert "opencv-python" not in names
    probe = "import cv2, gguf, torch; print(torch.__file__)"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0 and str(DEFAULT_COMFY_HOME) in out.stdout, out.stderr
    assert subprocess.run([str(comfy_python), "-m", "pip", "freeze"], capture_output=True, text=True).stdout == before


def test_pins_the_saves_commit_when_a_snapshot_has_it_else_the_nearest_with_a_finding(monkeypatch, tmp_path):
    name, repo, commit = GGUF
    saved = PlannedPack(name, repo, ["UnetLoaderGGUF"], saved_versions=[commit])
    pin = choose_pin(saved, SNAPSHOTS)
    assert (pin.commit, pin.findings) == (commit, []) and "snapshot" in pin.source

    nowhere_git(monkeypatch, tmp_path)  # git can't reach GitHub, for sure
    older = PlannedPack(name, repo, ["UnetLoaderGGUF"], saved_versions=["a" * 40])
    pin = choose_pin(older, SNAPSHOTS, git_timeout_s=10)
    assert pin.commit == commit and "cannot be obtained" in pin.notes[0]
    [finding] = pin.findings
    assert finding.code == "PACK_VERSION_DIFFERS" and "aaaaaaaaaaaa" in finding.message

    pinned = PlannedPack(name, repo, ["UnetLoaderGGUF"], saved_versions=["a" * 40], registry_commit=commit)
    pin = choose_pin(pinned, SNAPSHOTS)
    assert (
        pin.commit == commit and pin.source == "the registry's pin" and pin.findings[0].code == "PACK_VERSION_DIFFERS"
    )

    nothing = choose_pin(PlannedPack("NoSuchPack", "https://github.com/nobody/NoSuchPack"), SNAPSHOTS, git_timeout_s=10)
    assert nothing.commit is None and "no commit to pin" in nothing.notes[0]


def test_a_release_version_the_pinned_tree_does_not_carry_is_a_finding():
    pack = PlannedPack("ComfyUI-KJNodes", "https://github.com/kijai/ComfyUI-KJNodes", saved_versions=["1.1.9"])
    assert [f.code for f in release_findings(pack, ["ff7f876c09ff5a53be051073c3c1731b96ee31a3", "1.2.1"])] == [
        "PACK_VERSION_DIFFERS"
    ]
    pack.saved_versions = ["1.2.1"]
    assert release_findings(pack, ["ff7f876c09ff5a53be051073c3c1731b96ee31a3", "1.2.1"]) == []


def test_a_python_that_cannot_make_the_overlay_venv_is_a_named_error(tmp_path: Path):
    """workflow add turns this into UNREACHABLE with the fix; never a CalledProcessError traceback."""
    from client.local_comfy import LocalComfyError

    pack = tmp_path / "pack"
    pack.mkdir()
    with pytest.raises(LocalComfyError, match="could not make a venv"):
        pack_python(Path("/bin/false"), [pack], cache=tmp_path / "cache")
    assert not any((tmp_path / "cache" / "venvs").iterdir())  # nothing half-built left behind
