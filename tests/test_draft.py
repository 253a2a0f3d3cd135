"""`workflow add`'s drafting: real editor templates converted with the real /object_info, then drafted."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from workflows.draft import draft_entry
from workflows.registry import default_registry, load_registry
from workflows.resolve import convert_editor_workflow

UI_DIR = Path(__file__).parent / "fixtures" / "ui_workflows"


def _converted(name: str, object_info) -> dict:
    return convert_editor_workflow(json.loads((UI_DIR / name).read_text()), lambda refresh: object_info)


def test_sd15_template_drafts_models_parameters_and_outputs(object_info):
    workflow = _converted("sd15_default.json", object_info)
    draft = draft_entry("my_sd15", workflow, object_info, default_registry())
    entry = draft.entry
    assert entry["runs_on_cpu"] is False and "packs" not in entry
    [model] = entry["models"]
    assert model["folder"] == "checkpoints" and model["name"].endswith(".safetensors")
    params = entry["parameters"]
    assert {"seed", "steps", "cfg", "denoise", "prompt", "negative_prompt", "width", "height"} <= set(params)
    ksampler = params["seed"]["node"]
    assert workflow[ksampler]["class_type"] == "KSampler"
    # positive and negative are told apart by what the encoder feeds
    negative = params["negative_prompt"]["node"]
    assert workflow[ksampler]["inputs"]["negative"][0] == negative
    assert entry["outputs"] == [{"node": params["filename_prefix"]["node"], "kind": "image", "count": 1}]
    assert any(model["name"] in todo and "url" in todo for todo in draft.todos)


def test_a_model_free_workflow_drafts_a_valid_cpu_entry_with_no_todos(object_info, tmp_path: Path):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 96, "height": 64, "batch_size": 1, "color": 255}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "blur"}},
    }
    draft = draft_entry("blur_me", workflow, object_info, default_registry())
    assert draft.todos == []
    assert draft.entry["runs_on_cpu"] is True
    assert draft.entry["parameters"] == {
        "width": {"node": "1", "input": "width"},
        "height": {"node": "1", "input": "height"},
        "filename_prefix": {"node": "3", "input": "filename_prefix"},
    }
    (tmp_path / "blur_me.json").write_text(json.dumps(workflow))
    (tmp_path / "blur_me.yaml").write_text(yaml.safe_dump(draft.entry, sort_keys=False))
    registry = load_registry(tmp_path)
    assert registry.problems == {} and registry.entries["blur_me"].outputs[0].kind == "image"


def test_an_unknown_node_and_pack_are_named_todos_never_guesses(object_info):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "TotallyUnknownNode", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    draft = draft_entry("odd", workflow, object_info, default_registry())
    assert draft.todos == ["node 2: 'TotallyUnknownNode' is not defined here and no known pack provides it"]


def test_a_pinned_pack_node_drafts_the_pack_with_repo_and_commit(object_info):
    registry = default_registry()
    pin = registry.entries["z_image_turbo_denrisi"].pack_for_node("ClownsharKSampler_Beta")
    workflow = {
        "1": {"class_type": "ClownsharKSampler_Beta", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    draft = draft_entry("shark", workflow, object_info, registry)
    [pack] = draft.entry["packs"]
    assert pack == {"name": pin.name, "nodes": ["ClownsharKSampler_Beta"], "repo": pin.repo, "commit": pin.commit}
    assert draft.entry["runs_on_cpu"] is False and draft.todos == []


def test_planned_packs_are_checked_against_the_definitions_read():
    """workflow add's packs (resolved by evidence) against the ComfyUI that was read: a pack node it does not
    define, and a node nobody provides, are TODOs that keep the entry disabled (a TODO pack)."""

    info = {
        "SaveImage": {"python_module": "nodes", "output_node": True, "input": {"required": {}}},
        "Seed (rgthree)": {"python_module": "custom_nodes.rgthree-comfy", "input": {"required": {}}},
    }
    workflow = {
        "1": {"class_type": "Seed (rgthree)", "inputs": {}},
        "2": {"class_type": "ColorMatch", "inputs": {}},
        "3": {"class_type": "Mystery", "inputs": {}},
        "4": {"class_type": "SaveImage", "inputs": {"filename_prefix": "x"}},
    }
    planned = [
        {
            "name": "rgthree-comfy",
            "repo": "https://github.com/rgthree/rgthree-comfy",
            "commit": "1" * 40,
            "nodes": ["Seed (rgthree)"],
        },
        {"name": "ComfyUI-KJNodes", "repo": "https://github.com/kijai/ComfyUI-KJNodes", "nodes": ["ColorMatch"]},
    ]
    draft = draft_entry("x", workflow, info, load_registry(), packs=planned, unresolved={"Mystery": "no pack lists it"})
    assert [p["name"] for p in draft.entry["packs"]] == ["rgthree-comfy", "ComfyUI-KJNodes", "TODO"]
    assert draft.entry["packs"][2]["nodes"] == ["Mystery", "ColorMatch"]
    todos = "\n".join(draft.todos)
    assert "pack ComfyUI-KJNodes: add the commit to pin" in todos
    assert "node 2: 'ColorMatch' (pack ComfyUI-KJNodes) is not defined in the ComfyUI" in todos
    assert "node 3: 'Mystery' is not provided by any known pack (no pack lists it)" in todos
    assert "Seed (rgthree)" not in todos
