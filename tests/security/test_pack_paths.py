"""Issue 25's red-team holes 1, 4, 5 and 7, replayed against the real stack with a real pack (ComfyUI-KJNodes
at its snapshot, with its requirements), through the worker's RunPod local API as an attacker would send them.

Each job goes through `Probes.attack` (tests/security/conftest.py): the documented code, no secret in the
answer or the log, no file changed in the stack's run directory, the worker healthy afterwards. On main
a397831 each of these ran (or failed inside ComfyUI) instead of being refused.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from client.local_comfy import fetch_pack, pack_python
from tests.conftest import make_stack
from tests.security.conftest import SECRETS, Probes
from tools.localstack import DEFAULT_COMFY_HOME

pytestmark = pytest.mark.stack

SNAPSHOTS = Path(os.environ.get("COMFY_PACKS_SNAPSHOTS", "/nonexistent"))
KJNODES = ("ComfyUI-KJNodes", "https://github.com/kijai/ComfyUI-KJNodes", "ff7f876c09ff5a53be051073c3c1731b96ee31a3")


@pytest.fixture(scope="module")
def kj(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probes]:
    """A stack at the image's defaults (inline workflows on, default policy) with KJNodes loaded."""
    pack = fetch_pack(*KJNODES, snapshots=SNAPSHOTS)
    stack = make_stack(tmp_path_factory.mktemp("packpaths"), GENERATE_TIMEOUT_S="60", DISK_LOW_GB="0.5", **SECRETS)
    shutil.copytree(pack, stack.comfy_dir / "custom_nodes" / pack.name, ignore=shutil.ignore_patterns("__pycache__"))
    stack.comfy_python, problems = pack_python(DEFAULT_COMFY_HOME / "venv/bin/python", [pack])
    assert problems == {}, problems
    stack.start(wait=240)
    try:
        info = requests.get(f"{stack.comfy_url}/object_info", timeout=60).json()  # also makes input/3d
        for name in ("SaveStringKJ", "SaveImageKJ", "VisualizeCUDAMemoryHistory", "LoadImagesFromFolderKJ"):
            assert info[name]["python_module"] == "custom_nodes.ComfyUI-KJNodes", name  # really the pack's
        deadline = time.monotonic() + 120
        while "self-check:" not in stack.log_file.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"the worker's self-check did not finish:\n{stack.tail()}"
            time.sleep(0.1)
        yield Probes(stack)
    finally:
        stack.stop()


def prim(value: str) -> dict:
    return {"class_type": "PrimitiveString", "inputs": {"value": value}}


def empty() -> dict:
    return {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}}


def save_string(output_folder: str, text: str = "planted", prefix: object = ("3", 0)) -> dict:
    return {
        "1": prim(text),
        "3": prim("pk"),
        "2": {
            "class_type": "SaveStringKJ",
            "inputs": {
                "string": ["1", 0],
                "filename_prefix": list(prefix) if isinstance(prefix, tuple) else prefix,
                "output_folder": output_folder,
                "file_extension": ".pkl",
            },
        },
    }


def from_folder(folder: str) -> dict:
    return {
        "1": {
            "class_type": "LoadImagesFromFolderKJ",
            "inputs": {
                "folder": folder,
                "width": 16,
                "height": 16,
                "keep_aspect_ratio": "crop",
                "include_subfolders": True,
                "image_load_cap": 0,
                "start_index": 0,
            },
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "b"}},
    }


# --- hole 1: a pickle planted by one job, loaded by the next ----------------------------------------


def test_a_pack_cannot_plant_a_file_outside_or_load_one_from_there(kj):
    folder = Path(f"/dev/shm/rt_i29_{uuid.uuid4().hex[:8]}")
    planted = kj.attack(
        "pack path: SaveStringKJ output_folder /dev/shm", {"workflow": save_string(str(folder))}, "PATH_REFUSED"
    )
    finding = planted["error"]["findings"][0]
    assert (finding["node_id"], finding["input"]) == ("2", "output_folder")
    assert not folder.exists()
    load = {"1": {"class_type": "VisualizeCUDAMemoryHistory", "inputs": {"snapshot_path": f"{folder}/pk_00001_.pkl"}}}
    loaded = kj.attack("pack path: VisualizeCUDAMemoryHistory snapshot_path", {"workflow": load}, "PATH_REFUSED")
    assert loaded["error"]["findings"][0]["input"] == "snapshot_path"


@pytest.mark.parametrize("where", ["user/default", "{comfy}/user/default", "{comfy}/custom_nodes/ComfyUI-KJNodes", "."])
def test_a_pack_cannot_write_into_comfyuis_own_directories(kj, where):
    folder = where.format(comfy=kj.stack.comfy_dir)
    result = kj.attack(
        f"pack path: SaveStringKJ output_folder {where}", {"workflow": save_string(folder)}, "PATH_REFUSED"
    )
    assert result["error"]["findings"][0]["input"] == "output_folder"
    assert not list((kj.stack.comfy_dir / "custom_nodes").rglob("pk_*"))


def test_a_path_through_a_primitive_or_built_by_a_node_is_refused(kj):
    through = {
        "2": prim("/etc/hostname"),
        "1": {"class_type": "VisualizeCUDAMemoryHistory", "inputs": {"snapshot_path": ["2", 0]}},
    }
    kj.attack("pack path: snapshot_path from a PrimitiveString", {"workflow": through}, "PATH_REFUSED")
    built = {
        "2": {
            "class_type": "StringConcatenate",
            "inputs": {"string_a": "/etc/", "string_b": "hostname", "delimiter": ""},
        },
        "1": {"class_type": "VisualizeCUDAMemoryHistory", "inputs": {"snapshot_path": ["2", 0]}},
    }
    result = kj.attack("pack path: snapshot_path built by StringConcatenate", {"workflow": built}, "PATH_REFUSED")
    assert "not a literal" in result["error"]["error_message"]


# --- hole 5: another job's files through a relative folder -------------------------------------------


@pytest.mark.parametrize("folder", ["user", ".", "custom_nodes", "{comfy}/user"])
def test_a_folder_relative_to_comfyuis_directory_is_refused(kj, folder):
    folder = folder.format(comfy=kj.stack.comfy_dir)
    result = kj.attack(
        f"pack path: LoadImagesFromFolderKJ folder {folder}", {"workflow": from_folder(folder)}, "PATH_REFUSED"
    )
    assert result["error"]["findings"][0]["input"] == "folder"


# --- hole 4: output names fed by links ----------------------------------------------------------------


@pytest.mark.parametrize("saver", ["SaveImage", "SaveImageKJ"])
def test_a_prefix_built_by_another_node_is_refused(kj, saver):
    inputs = {"images": ["1", 0], "filename_prefix": ["3", 0]}
    if saver == "SaveImageKJ":
        inputs.update(output_folder="output", caption_file_extension=".txt")
    workflow = {
        "1": empty(),
        "3": {"class_type": "StringConcatenate", "inputs": {"string_a": "..", "string_b": "x", "delimiter": "/"}},
        "2": {"class_type": saver, "inputs": inputs},
    }
    result = kj.attack(
        f"prefix: {saver} filename_prefix from StringConcatenate", {"workflow": workflow}, "PATH_REFUSED"
    )
    finding = result["error"]["findings"][0]
    assert finding["input"] == "filename_prefix" and "job's own folder" in finding["fix"]


@pytest.mark.parametrize(
    "prefix", [["3", 0], {"__value__": "../../../../../../dev/shm/rt_i29_prefix/x"}], ids=["primitive", "wrapped"]
)
def test_a_primitive_or_wrapped_prefix_is_scoped_to_the_job(kj, prefix):
    """Scoped, the save lands in the job's folder and runs (ComfyUI itself refused the unscoped '..'), and the
    job leaves nothing behind (the tree check)."""
    workflow = {
        "1": empty(),
        "3": prim("../../../../../../dev/shm/rt_i29_prefix/x"),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": prefix}},
    }
    result = kj.attack(f"prefix: SaveImage {type(prefix).__name__} prefix with '..'", {"workflow": workflow}, None)
    assert result["output"]["status"] == "success", result
    assert [o["filename"] for o in result["output"]["outputs"]] == ["x_00001_.png"]
    assert not Path("/dev/shm/rt_i29_prefix").exists()


def test_pack_savers_keep_working_inside_output(kj):
    """No false positive: KJNodes' SaveImageKJ with its default output_folder, a Primitive's text with slashes
    as its caption, runs (it reports no image to ComfyUI's history, only its file name, shown by PreviewAny)
    and leaves nothing behind."""
    workflow = {
        "1": empty(),
        "3": prim("a cat / dog, 1/2"),
        "2": {
            "class_type": "SaveImageKJ",
            "inputs": {
                "images": ["1", 0],
                "filename_prefix": "kj",
                "output_folder": "output",
                "caption": ["3", 0],
                "caption_file_extension": ".txt",
            },
        },
        "4": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
    }
    result = kj.attack("pack path: SaveImageKJ output_folder output (allowed)", {"workflow": workflow}, None)
    assert result["output"]["status"] == "success", result
    assert [o["text"] for o in result["output"]["outputs"]] == ["kj_00001_.png"]


# --- hole 7: nesting ------------------------------------------------------------------------------------


def test_a_deeply_nested_input_is_bad_input_not_an_internal_error(kj):
    value: object = "x"
    for _ in range(900):
        value = [value]
    job = {"workflow": {"1": {"class_type": "PreviewAny", "inputs": {"source": {"__value__": value}}}}}
    result = kj.attack("nesting: 900-deep list in an input", job, "BAD_INPUT")
    assert "levels deep" in result["error"]["error_message"]
