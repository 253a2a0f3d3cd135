"""Documented codes that had no test producing them: each one produced for real, with its message and fix.

(MODEL_LIST_FAILED and SMOKE_FAILED are covered by the worker start-up work, tests/start_failures.)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, runsync
from tests.test_ui_convert import node, ui
from workflows.registry import REGISTRY_DIR
from workflows.ui_convert import ui_to_api


def failure_of(envelope: dict) -> dict:
    assert envelope["status"] == "FAILED", envelope
    return json.loads(envelope["error"])


@pytest.mark.parametrize(
    "workflow",
    [
        {"1": {"inputs": {}}},  # no class_type
        {"1": {"class_type": "SaveImage", "inputs": ["not", "an", "object"]}},
    ],
)
def test_a_workflow_that_is_not_a_graph_of_nodes_is_workflow_invalid(stack, workflow):
    err = failure_of(runsync(stack, {"workflow": workflow}))
    assert err["error_code"] == "WORKFLOW_INVALID", err
    assert "class_type" in err["error_message"] and err["fix"]
    assert err["findings"][0]["code"] == "WORKFLOW_INVALID" and err["findings"][0]["node_id"] == "1"


def test_a_broken_registry_file_is_registry_invalid_in_the_static_self_check(tmp_path: Path):
    from handler.selfcheck import static_check

    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY_DIR, registry)
    (registry / "smoke_image.yaml").write_text("id: smoke_image\nworkflow: [this is not a file name\n")
    comfy = tmp_path / "ComfyUI"
    comfy.mkdir()
    (comfy / "nodes.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    result = static_check(comfy, REPO / "extra_model_paths.yaml", registry_dir=registry, cpu_only=True)
    invalid = [f for f in result["findings"] if f["code"] == "REGISTRY_INVALID"]
    assert result["ok"] is False and len(invalid) == 1, result["findings"]
    assert invalid[0]["path"] == "smoke_image" and "smoke_image" in invalid[0]["message"] and invalid[0]["fix"]
    assert "smoke_image" not in result["workflows"] and "smoke_i2v" in result["workflows"]  # only that one is out


def test_a_get_node_without_its_set_node_is_ui_convert_link_broken(object_info):
    graph = ui(
        [
            node(1, "GetNode", ["no_such_variable"], outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, "SaveImage", ["x"], inputs=[("images", "IMAGE", 1)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    out = ui_to_api(graph, object_info)
    broken = [p for p in out.problems if p.code == "UI_CONVERT_LINK_BROKEN"]
    assert broken and broken[0].node_id == "2" and broken[0].input == "images", out.problems
    assert "SetNode" in broken[0].message and broken[0].fix
    assert "images" not in out.workflow["2"]["inputs"]  # left unconnected, never wired to a wrong node
