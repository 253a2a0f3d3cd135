"""MODEL_FILE_UNREADABLE: a model file ComfyUI lists but its confined user can't open (a root-owned 0600
file, a closed folder on its path). The decision is pure (workflows.file_access); the real-stack test
runs the worker as root with ComfyUI as its `comfyui` user, as the image does."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from tests.conftest import make_stack, runsync, wait_for_startup_selfcheck
from tests.model_files import tiny_upscale_model
from workflows.file_access import Owner, User, blocked, can_read, can_traverse

COMFY = User("comfyui", 1000, frozenset({1000}))
FILE = stat.S_IFREG
DIR = stat.S_IFDIR


@pytest.mark.parametrize(
    ("owner", "readable"),
    [
        (Owner(FILE | 0o600, 0, 0), False),  # safetensors' save_file as root
        (Owner(FILE | 0o644, 0, 0), True),
        (Owner(FILE | 0o640, 0, 1000), True),  # the user's group may read
        (Owner(FILE | 0o640, 0, 5), False),  # another group
        (Owner(FILE | 0o600, 1000, 0), True),  # its own file
        (Owner(FILE | 0o044, 1000, 0), False),  # owner class decides, even when others may read
        (Owner(FILE | 0o004, 0, 0), True),
    ],
)
def test_read_access_follows_the_owner_group_other_classes(owner, readable):
    assert can_read(owner, COMFY) is readable


def test_root_without_capabilities_is_judged_like_any_user():
    """ComfyUI runs with no capability (handler.privileges): as root it reads root's files, not another's 0600."""
    root = User("root", 0, frozenset({0}))
    assert can_read(Owner(FILE | 0o600, 0, 0), root)
    assert not can_read(Owner(FILE | 0o600, 1000, 1000), root)
    assert can_read(Owner(FILE | 0o640, 1000, 0), root)  # its group


def test_a_closed_folder_on_the_path_blocks_a_readable_file_and_is_named():
    file = Owner(FILE | 0o644, 0, 0)
    assert can_traverse(Owner(DIR | 0o711, 0, 0), COMFY)
    assert not can_traverse(Owner(DIR | 0o700, 0, 0), COMFY)
    why = blocked(
        "/v/models/x.safetensors",
        file,
        [("/v", Owner(DIR | 0o755, 0, 0)), ("/v/models", Owner(DIR | 0o700, 0, 0))],
        COMFY,
    )
    assert why is not None and "/v/models" in why and "mode 0700" in why and "'comfyui'" in why
    assert blocked("/v/models/x.safetensors", file, [("/v", Owner(DIR | 0o755, 0, 0))], COMFY) is None
    why = blocked("/m/x.pth", Owner(FILE | 0o600, 0, 0), [], COMFY)
    assert why is not None and "owner uid 0, gid 0, mode 0600" in why


WORKFLOW = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 12, "batch_size": 1, "color": 8421504}},
    "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "tiny_closed_x2.safetensors"}},
    "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
    "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "tiny_closed"}},
}


@pytest.mark.stack
@pytest.mark.skipif(os.geteuid() != 0, reason="ComfyUI runs as another user only when the worker is root")
def test_a_root_only_model_is_a_finding_and_refused_and_runs_once_readable(tmp_path):
    stack = make_stack(tmp_path / "stack")
    model = stack.comfy_dir / "models/upscale_models/tiny_closed_x2.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(tiny_upscale_model(7))
    model.chmod(0o600)  # root's, as safetensors' save_file or a tempfile-based downloader leaves it
    stack.start(wait=180)
    try:
        wait_for_startup_selfcheck(stack)
        report = runsync(stack, {"mode": "diagnose"}, timeout=180)["output"]
        user = report["confinement"]["user"]
        assert user["active"] is True, report["confinement"]
        found = [f for f in report["findings"] if f["code"] == "MODEL_FILE_UNREADABLE"]
        assert [f["path"] for f in found] == [str(model)], report["findings"]
        assert f"user {user['name']!r}" in found[0]["message"] and "mode 0600" in found[0]["message"]
        assert f"chmod a+r {model}" in found[0]["fix"]

        envelope = runsync(stack, {"workflow": WORKFLOW}, timeout=180)
        assert envelope["status"] == "FAILED", envelope
        err = json.loads(envelope["error"])
        assert err["error_code"] == "MODEL_FILE_UNREADABLE", err
        assert err["findings"][0]["node_id"] == "2" and err["findings"][0]["path"] == str(model)
        assert "FileNotFoundError" not in envelope["error"]

        model.chmod(0o644)
        envelope = runsync(stack, {"workflow": WORKFLOW}, timeout=180)
        assert "output" in envelope, envelope
        assert (envelope["output"]["outputs"][0]["width"], envelope["output"]["outputs"][0]["height"]) == (32, 24)
        report = runsync(stack, {"mode": "diagnose"}, timeout=180)["output"]
        assert not [f for f in report["findings"] if f["code"] == "MODEL_FILE_UNREADABLE"]
    finally:
        stack.stop()


def test_the_gatherer_reads_the_real_stat_facts_of_the_file_and_each_folder_on_its_path(request):
    from handler.model_access import unreadable_findings

    root = Path(tempfile.mkdtemp(prefix="model-access-"))  # /tmp is open; pytest's own tmp is 0700
    request.addfinalizer(lambda: shutil.rmtree(root, ignore_errors=True))
    root.chmod(0o755)
    folder = root / "models/upscale_models"
    folder.mkdir(parents=True)
    model = folder / "m.safetensors"
    model.write_bytes(b"x")
    other = User("nobody-here", os.geteuid() + 4242, frozenset({os.getegid() + 4242}))
    model.chmod(0o600)
    assert [f.path for f in unreadable_findings([str(model)], other)] == [str(model)]
    model.chmod(0o644)
    assert unreadable_findings([str(model)], other) == []
    folder.chmod(0o700)  # the file is readable, its folder can't be entered
    found = unreadable_findings([str(model)], other)
    assert len(found) == 1 and str(folder) in found[0].message
    folder.chmod(0o755)
    assert unreadable_findings([str(model)], None) == []  # ComfyUI runs as the worker: nothing to check
