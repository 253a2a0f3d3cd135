"""What the worker and direct mode tell the editor-save converter about the installed versions
(handler/facts.installed_versions, workflows/resolve.resolve_workflow): a save with fewer values than
widgets is mapped when it records exactly the installed version, refused otherwise."""

from __future__ import annotations

import pytest

from handler.facts import installed_versions
from tests.test_ui_convert import node, ui
from workflows.errors import JobError
from workflows.registry import default_registry
from workflows.resolve import resolve_workflow
from workflows.startup_log import PackImport

COMMIT = "13b4399c00b5ef5a97b1b6800fc1185874740f5d"


def test_a_packs_commit_and_release_come_from_its_tree(tmp_path):
    """From a snapshot install (no .git): the .pack-source the install scripts write, and pyproject.toml."""
    pack = tmp_path / "ComfyUI-KJNodes"
    pack.mkdir()
    (pack / ".pack-source").write_text(f"https://github.com/kijai/ComfyUI-KJNodes {COMMIT}\n")
    (pack / "pyproject.toml").write_text('[project]\nname = "comfyui-kjnodes"\nversion = "1.2.1"\n')
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "pyproject.toml").write_text("[project\nversion = ")
    imports = (
        PackImport("ComfyUI-KJNodes", str(pack), 0.1, False),
        PackImport("broken", str(broken), 0.1, False),
        PackImport("failed", str(tmp_path / "failed"), 0.1, True),
    )
    assert installed_versions(imports, "0.3.75") == {"comfy-core": ["0.3.75"], "ComfyUI-KJNodes": [COMMIT, "1.2.1"]}
    assert installed_versions((), None) == {}


def test_the_converter_gets_the_installed_versions_for_an_editor_save(object_info):
    save = ui([node(1, "EmptyImage", [64, 64], properties={"cnr_id": "comfy-core", "ver": "0.3.75"})], [])
    asked: list[str] = []

    def versions() -> dict[str, list[str]]:
        asked.append("versions")
        return {"comfy-core": ["0.3.75"]}

    def info(refresh: bool) -> dict:
        return object_info

    resolved = resolve_workflow(default_registry(), save, "sdxl_basic", info, versions)
    assert resolved.workflow["1"]["inputs"] == {"width": 64, "height": 64, "batch_size": 1, "color": 0}
    with pytest.raises(JobError) as exc:  # nothing known about what is installed: refused, not guessed
        resolve_workflow(default_registry(), save, "sdxl_basic", info)
    assert exc.value.code == "WORKFLOW_UI_FORMAT" and "node 1" in exc.value.message.lower()
    resolve_workflow(default_registry(), "sdxl_basic", "sdxl_basic", info, versions)
    assert asked == ["versions"]  # asked only for an editor save
