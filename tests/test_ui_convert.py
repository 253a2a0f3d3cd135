"""UI-format -> API-format conversion against the real /object_info of the local ComfyUI.

Real editor templates (tests/fixtures/ui_workflows, see its README) must convert to workflows the
analysis finds nothing wrong with except the model files this machine does not have; hand-built
graphs pin down each rule (widgets, control values, links through reroutes / primitives / bypass,
muted nodes, subgraphs).
"""

from __future__ import annotations

import contextlib
import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.analysis import Context, analyze_workflow
from workflows.registry import default_registry
from workflows.ui_convert import ui_to_api

pytestmark = pytest.mark.stack
UI_DIR = Path(__file__).parent / "fixtures" / "ui_workflows"
TEMPLATES = sorted(p.name for p in UI_DIR.glob("*.json"))
MODEL_OR_FILE = (".safetensors", ".pth", ".pt", ".ckpt", ".gguf", ".png", ".jpg", ".jpeg", ".webp", ".mp4")


def template(name: str) -> dict[str, Any]:
    return json.loads((UI_DIR / name).read_text())


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def strip_meta(workflow: dict[str, Any]) -> dict[str, Any]:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in workflow.items()}


def node(node_id: int, node_type: str, widgets: Any = None, inputs=(), outputs=(), mode: int = 0, **extra) -> dict:
    """A UI node; inputs are (name, type, link) and outputs (name, type, [links])."""
    return {
        "id": node_id,
        "type": node_type,
        "mode": mode,
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
        "widgets_values": [] if widgets is None else widgets,
        **extra,
    }


def ui(nodes: list[dict], links: list[list], **extra) -> dict:
    return {"last_node_id": 99, "last_link_id": 99, "nodes": nodes, "links": links, "version": 0.4, **extra}


def smoke_ui(invert_mode: int = 0, empty_mode: int = 0) -> dict:
    """The editor's save of workflows/registry/smoke_image.json (EmptyImage -> ImageInvert -> SaveImage)."""
    return ui(
        [
            node(1, "EmptyImage", [512, 512, 1, 3355647], outputs=[("IMAGE", "IMAGE", [1])], mode=empty_mode),
            node(2, "ImageInvert", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])], mode=invert_mode),
            node(3, "SaveImage", ["smoke"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    )


# ---------------------------------------------------------------------------------------------
# Real templates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_convert_to_workflows_the_analysis_accepts(object_info, name):
    result = ui_to_api(template(name), object_info)
    assert result.ok and result.problems == [], [p.to_dict() for p in result.problems]
    found = analyze_workflow(result.workflow, Context(object_info))
    unexpected = [f.to_dict() for f in found if f.code not in ("MODEL_MISSING", "VALUE_NOT_IN_LIST")]
    assert unexpected == []
    for f in found:  # only files this machine lacks: models, and the templates' example input images
        value = result.workflow[f.node_id]["inputs"][f.input]
        assert isinstance(value, str) and value.lower().endswith(MODEL_OR_FILE), f.to_dict()
    for node_id, api_node in result.workflow.items():
        assert isinstance(node_id, str) and api_node["_meta"]["title"]
        assert api_node["class_type"] in object_info


def test_sd15_default_template_equals_the_known_api_export(object_info):
    result = ui_to_api(template("sd15_default.json"), object_info)
    assert result.workflow == {
        "4": {
            "inputs": {"ckpt_name": "v1-5-pruned-emaonly-fp16.safetensors"},
            "class_type": "CheckpointLoaderSimple",
            "_meta": {"title": "Load Checkpoint"},
        },
        "3": {
            "inputs": {
                "seed": 685468484323813,
                "steps": 20,
                "cfg": 8,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
            "class_type": "KSampler",
            "_meta": {"title": "KSampler"},
        },
        "8": {
            "inputs": {"samples": ["3", 0], "vae": ["4", 2]},
            "class_type": "VAEDecode",
            "_meta": {"title": "VAE Decode"},
        },
        "9": {
            "inputs": {"filename_prefix": "SD1.5", "images": ["8", 0]},
            "class_type": "SaveImage",
            "_meta": {"title": "Save Image"},
        },
        "7": {
            "inputs": {"text": "text, watermark", "clip": ["4", 1]},
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
        "5": {
            "inputs": {"width": 512, "height": 512, "batch_size": 1},
            "class_type": "EmptyLatentImage",
            "_meta": {"title": "Empty Latent Image"},
        },
        "6": {
            "inputs": {
                "text": "beautiful scenery nature glass bottle landscape, purple galaxy bottle,",
                "clip": ["4", 1],
            },
            "class_type": "CLIPTextEncode",
            "_meta": {"title": "CLIP Text Encode (Prompt)"},
        },
    }
    assert result.problems == []


def test_primitive_nodes_put_their_value_into_every_target(object_info):
    wf = template("sdxl_simple_example.json")
    out = ui_to_api(wf, object_info).workflow
    assert not any(n["class_type"] == "PrimitiveNode" for n in out.values())
    assert out["10"]["inputs"]["steps"] == out["11"]["inputs"]["steps"] == 25  # primitive 45
    assert out["10"]["inputs"]["end_at_step"] == out["11"]["inputs"]["start_at_step"] == 20  # primitive 47
    assert out["10"]["inputs"]["noise_seed"] == 721897303308196  # its "randomize" control value is not sent
    assert out["6"]["inputs"]["text"] == out["15"]["inputs"]["text"]
    # The primitive's own value wins over the (possibly stale) copy in the target's widgets.
    changed = copy.deepcopy(wf)
    for n in changed["nodes"]:
        if n["id"] == 45:
            n["widgets_values"][0] = 31
        if n["id"] == 51:
            n["widgets_values"][0] = "a red fox"
    out = ui_to_api(changed, object_info).workflow
    assert out["10"]["inputs"]["steps"] == out["11"]["inputs"]["steps"] == 31
    assert out["6"]["inputs"]["text"] == out["15"]["inputs"]["text"] == "a red fox"


def test_reroute_resolves_to_its_source_and_primitive_feeds_a_float(object_info):
    wf = template("hidream_e1_1.json")  # Reroute 48 carries CFGNorm 55's MODEL; primitives 56/57 the cfgs
    out = ui_to_api(wf, object_info).workflow
    assert "48" not in out
    assert out["49"]["inputs"]["model"] == ["55", 0] and out["53"]["inputs"]["model"] == ["55", 0]
    assert (out["53"]["inputs"]["cfg_conds"], out["53"]["inputs"]["cfg_cond2_negative"]) == (3, 1.5)
    for n in wf["nodes"]:
        if n["id"] == 56:
            n["widgets_values"][0] = 4.5
    assert ui_to_api(wf, object_info).workflow["53"]["inputs"]["cfg_conds"] == 4.5


def test_subgraph_instances_are_expanded_with_instance_prefixed_ids(object_info):
    result = ui_to_api(template("image_z_image_turbo.json"), object_info)  # instance 57, proxyWidgets style
    out = result.workflow
    assert "57" not in out
    assert sorted(k for k in out if k.startswith("57:")) == [
        "57:11", "57:13", "57:27", "57:28", "57:29", "57:3", "57:30", "57:33", "57:8",
    ]  # fmt: skip
    assert out["9"]["inputs"]["images"] == ["57:8", 0]  # the instance's output, resolved inside
    sampler = out["57:3"]["inputs"]
    assert sampler["model"] == ["57:11", 0] and sampler["latent_image"] == ["57:13", 0]
    assert (sampler["seed"], sampler["steps"], sampler["sampler_name"]) == (0, 8, "res_multistep")
    assert out["57:27"]["inputs"]["text"].startswith("Latina female")  # unconnected input: inner value stands


def test_promoted_subgraph_widget_values_override_the_inner_ones(object_info):
    wf = template("sd3.5_large_depth.json")  # instance 68 promotes vae_name, unet_name, sigma, sampler_name
    out = ui_to_api(wf, object_info).workflow
    assert out["68:97"]["inputs"]["pixels"] == ["70", 0]  # linked subgraph input -> outer node
    assert out["77"]["inputs"]["pixels"] == ["68:99", 0]
    instance = next(n for n in wf["nodes"] if n["id"] == 68)
    instance["widgets_values"][2:] = [123.0, "dpmpp_2m"]
    out = ui_to_api(wf, object_info).workflow
    assert out["68:101"]["inputs"]["sigma"] == 123.0 and out["68:100"]["inputs"]["sampler_name"] == "dpmpp_2m"
    instance["widgets_values"] = [1, 2]  # a count that fits no rule: keep the inner values, say so
    result = ui_to_api(wf, object_info)
    assert result.workflow["68:101"]["inputs"]["sigma"] == 10000
    assert codes(result.problems) == ["UI_CONVERT_WIDGET_MISMATCH"] and result.problems[0].node_id == "68"


def test_bypassed_and_muted_template_nodes(object_info):
    out = ui_to_api(template("video_wan2_2_5B_ti2v.json"), object_info).workflow
    assert "56" not in out  # bypassed LoadImage (no inputs to pass through)
    assert "start_image" not in out["55"]["inputs"]  # optional: left unconnected, no finding
    out = ui_to_api(template("hunyuan_video_text_to_video.json"), object_info).workflow
    assert "8" not in out  # the muted VAEDecode


# ---------------------------------------------------------------------------------------------
# Hand-built graphs: one rule each
# ---------------------------------------------------------------------------------------------


def test_smoke_image_ui_converts_to_the_registered_api_workflow(object_info):
    result = ui_to_api(smoke_ui(), object_info)
    registered = default_registry().get("smoke_image").workflow()
    assert strip_meta(result.workflow) == strip_meta(registered)
    assert result.problems == []
    assert analyze_workflow(result.workflow, Context(object_info)) == []


def test_seed_control_after_generate_values_are_consumed_not_sent(object_info):
    graph = ui(
        [
            node(1, "KSampler", [42, "increment", 12, 6.5, "euler", "karras", 0.75]),
            node(2, "RandomNoise", [7, "fixed"]),
            node(3, "PrimitiveInt", [5, "randomize"]),  # spec says control_after_generate: true
            node(4, "KSamplerAdvanced", ["enable", 9, "decrement", 30, 7, "euler", "normal", 0, 30, "disable"]),
            node(5, "KSampler", [42, 12, 6.5, "euler", "karras", 0.75]),  # an old save without the control value
        ],
        [],
    )
    out = ui_to_api(graph, object_info)
    ksampler = {"seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "euler", "scheduler": "karras", "denoise": 0.75}
    assert out.workflow["1"]["inputs"] == ksampler
    assert out.workflow["5"]["inputs"] == ksampler
    assert out.workflow["2"]["inputs"] == {"noise_seed": 7}
    assert out.workflow["3"]["inputs"] == {"value": 5}
    assert out.workflow["4"]["inputs"] == {
        "add_noise": "enable",
        "noise_seed": 9,
        "steps": 30,
        "cfg": 7,
        "sampler_name": "euler",
        "scheduler": "normal",
        "start_at_step": 0,
        "end_at_step": 30,
        "return_with_leftover_noise": "disable",
    }
    assert out.problems == []


def test_control_value_before_a_string_widget_is_not_taken_for_the_string(object_info):
    """A type-fit alignment (comfyui-autograph) gives text="randomize" here; the editor's rule does not."""
    spec = {
        "input": {
            "required": {
                "seed": ["INT", {"default": 0, "min": 0, "max": 100, "control_after_generate": True}],
                "text": ["STRING", {"multiline": True}],
            }
        },
        "input_order": {"required": ["seed", "text"]},
        "output": ["STRING"],
        "display_name": "Seeded Text",
    }
    result = ui_to_api(ui([node(1, "SeededText", [5, "randomize", "hello"])], []), {**object_info, "SeededText": spec})
    assert result.workflow["1"] == {
        "inputs": {"seed": 5, "text": "hello"},
        "class_type": "SeededText",
        "_meta": {"title": "Seeded Text"},
    }


def test_converted_widget_with_a_link_takes_the_link_and_keeps_value_positions(object_info):
    graph = ui(
        [
            node(1, "PrimitiveInt", [1234, "fixed"], outputs=[("INT", "INT", [1])]),
            node(2, "KSampler", [42, "randomize", 12, 6.5, "euler", "karras", 0.75], inputs=[("seed", "INT", 1)]),
        ],
        [[1, 1, 0, 2, 4, "INT"]],
    )
    graph["nodes"][1]["inputs"][0]["widget"] = {"name": "seed"}
    inputs = ui_to_api(graph, object_info).workflow["2"]["inputs"]
    assert inputs["seed"] == ["1", 0] and inputs["steps"] == 12 and inputs["denoise"] == 0.75


def test_dict_form_widgets_values_are_keyed_by_input_name(object_info):
    graph = ui([node(1, "EmptyImage", {"width": 64, "height": 32, "batch_size": 2, "color": 5, "preview": {}})], [])
    out = ui_to_api(graph, object_info)
    assert out.workflow["1"]["inputs"] == {"width": 64, "height": 32, "batch_size": 2, "color": 5}
    assert out.problems == []
    saved = {"video": "a.mp4", "force_rate": 8, "videopreview": {"hidden": False}}
    unknown = ui(
        [
            node(1, "RPNoSuchLoadVideo", saved, outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, "SaveImage", ["v"], inputs=[("images", "IMAGE", 1)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    out = ui_to_api(unknown, object_info)
    assert out.workflow["1"]["inputs"] == {"video": "a.mp4", "force_rate": 8}  # usable without the definition
    assert codes(out.problems) == ["UI_CONVERT_UNKNOWN_NODE"] and out.problems[0].severity == "warning"


def test_upload_button_values_are_not_sent_and_arrays_are_wrapped(object_info):
    button = {"name": "upload", "type": "button", "options": {"serialize": False}}
    graph = ui(
        [
            node(1, "LoadImage", ["a.png", "image"]),
            node(2, "LoadImage", ["b.png", button]),
            node(3, "LoadImage", [["c.png", "d.png"], "image"]),
        ],
        [],
    )
    out = ui_to_api(graph, object_info)
    assert [out.workflow[k]["inputs"] for k in "123"] == [
        {"image": "a.png"},
        {"image": "b.png"},
        {"image": {"__value__": ["c.png", "d.png"]}},  # the editor's wrapping: bare arrays mean links
    ]
    assert out.problems == []


def test_bypass_passes_the_matching_input_through(object_info):
    result = ui_to_api(smoke_ui(invert_mode=4), object_info)
    assert "2" not in result.workflow and result.workflow["3"]["inputs"]["images"] == ["1", 0]
    assert result.problems == []
    # Two bypassed nodes in a row, the second with two IMAGE inputs: slot 0 matches the output slot.
    graph = smoke_ui(invert_mode=4)
    graph["nodes"].insert(
        2,
        node(
            4,
            "ImageBlend",
            [0.5, "normal"],
            inputs=[("image1", "IMAGE", 2), ("image2", "IMAGE", None)],
            outputs=[("IMAGE", "IMAGE", [3])],
            mode=4,
        ),
    )
    graph["nodes"][3]["inputs"][0]["link"] = 3
    graph["links"] = [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 4, 0, "IMAGE"], [3, 4, 0, 3, 0, "IMAGE"]]
    assert ui_to_api(graph, object_info).workflow["3"]["inputs"]["images"] == ["1", 0]


def test_muted_source_is_dropped_with_its_links_and_said_for_required_inputs(object_info):
    result = ui_to_api(smoke_ui(empty_mode=2), object_info)
    assert "1" not in result.workflow and "image" not in result.workflow["2"]["inputs"]
    assert codes(result.problems) == ["UI_CONVERT_INPUT_DROPPED"]
    assert result.problems[0].node_id == "2" and "muted" in result.problems[0].message
    assert "INPUT_MISSING" in codes(analyze_workflow(result.workflow, Context(object_info)))


def test_get_and_set_nodes_are_resolved_by_name(object_info):
    graph = ui(
        [
            node(1, "EmptyImage", [64, 64, 1, 0], outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, "SetNode", ["pic"], inputs=[("IMAGE", "IMAGE", 1)], outputs=[("*", "*", [])]),
            node(3, "GetNode", ["pic"], outputs=[("IMAGE", "IMAGE", [2])]),
            node(4, "SaveImage", ["x"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 3, 0, 4, 0, "IMAGE"]],
    )
    out = ui_to_api(graph, object_info)
    assert sorted(out.workflow) == ["1", "4"] and out.workflow["4"]["inputs"]["images"] == ["1", 0]


def _subgraph(sg_id: str, inner_nodes: list[dict], links: list[dict]) -> dict:
    return {
        "id": sg_id,
        "name": sg_id,
        "inputs": [{"id": f"{sg_id}-in", "name": "img", "type": "IMAGE", "linkIds": [1]}],
        "outputs": [{"id": f"{sg_id}-out", "name": "IMAGE", "type": "IMAGE", "linkIds": [2]}],
        "nodes": inner_nodes,
        "links": links,
    }


def _io_links(target: int, source: int) -> list[dict]:
    return [
        {"id": 1, "origin_id": -10, "origin_slot": 0, "target_id": target, "target_slot": 0, "type": "IMAGE"},
        {"id": 2, "origin_id": source, "origin_slot": 0, "target_id": -20, "target_slot": 0, "type": "IMAGE"},
    ]


def nested_subgraph_ui(inner_type: str = "sg-b") -> dict:
    """EmptyImage -> [A: [B: ImageInvert]] -> SaveImage, two subgraph levels deep."""
    instance = node(5, inner_type, inputs=[("img", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])])
    sg_a = _subgraph("sg-a", [instance], _io_links(5, 5))
    invert = node(3, "ImageInvert", inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])])
    sg_b = _subgraph("sg-b", [invert], _io_links(3, 3))
    return ui(
        [
            node(1, "EmptyImage", [64, 64, 1, 0], outputs=[("IMAGE", "IMAGE", [1])]),
            node(10, "sg-a", inputs=[("img", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])]),
            node(2, "SaveImage", ["nested"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 10, 0, "IMAGE"], [2, 10, 0, 2, 0, "IMAGE"]],
        definitions={"subgraphs": [sg_a, sg_b]},
    )


def test_nested_subgraphs_expand_to_colon_paths(object_info):
    result = ui_to_api(nested_subgraph_ui(), object_info)
    assert strip_meta(result.workflow) == {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "10:5:3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "2": {"class_type": "SaveImage", "inputs": {"filename_prefix": "nested", "images": ["10:5:3", 0]}},
    }
    assert result.problems == []
    assert analyze_workflow(result.workflow, Context(object_info)) == []


def test_unconvertible_parts_are_reported_not_guessed(object_info):
    # A subgraph that contains itself.
    result = ui_to_api(nested_subgraph_ui(inner_type="sg-a"), object_info)
    assert "UI_CONVERT_UNSUPPORTED" in codes(result.problems) and not result.ok
    # A legacy group node, an unknown class with list widgets, a browser-filled widget.
    graph = ui(
        [
            node(1, "workflow>my group", [1, 2], outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, "SomePackNode", [3, "x"], inputs=[("images", "IMAGE", 1)]),
            node(3, "Load3D", ["a.glb", "upload3dmodel", "uploadExtraResources", "clear", "", 512, 512]),
            node(4, "Note", ["just a note"]),
            node(5, "Fast Groups Muter (rgthree)", []),  # unknown but unconnected: UI only, dropped silently
        ],
        [[1, 1, 0, 2, 0, "IMAGE"]],
        extra={"groupNodes": {"my group": {"nodes": []}}},
    )
    result = ui_to_api(graph, object_info)
    assert sorted(result.workflow) == ["2", "3"]
    assert result.workflow["3"]["inputs"]["width"] == 512 and result.workflow["3"]["inputs"]["model_file"] == "a.glb"
    assert sorted((p.code, p.node_id, str(p.severity)) for p in result.problems) == [
        ("UI_CONVERT_INPUT_DROPPED", "2", "warning"),
        ("UI_CONVERT_UNKNOWN_NODE", "2", "error"),
        ("UI_CONVERT_UNSUPPORTED", "1", "error"),
        ("UI_CONVERT_UNSUPPORTED", "3", "error"),
    ]


def test_widget_values_that_do_not_fit_are_reported(object_info):
    graph = ui(
        [
            node(1, "EmptyImage", [64, 64]),  # too few, version not recorded: refused, never "appended at the end"
            node(2, "ImageScale", [512, "nearest-exact", 512, 512, "disabled"]),  # shifted: wrong types
            node(3, "CLIPTextEncode", ["a {red|blue} fox"]),  # dynamic prompt
        ],
        [],
    )
    result = ui_to_api(graph, object_info)
    assert [(p.code, p.node_id, str(p.severity)) for p in result.problems] == [
        ("UI_CONVERT_WIDGET_MISMATCH", "1", "error"),
        ("UI_CONVERT_WIDGET_MISMATCH", "2", "error"),  # shifted: refused, never a silent positional shift
        ("UI_CONVERT_DYNAMIC_PROMPT", "3", "warning"),
    ]
    assert "batch_size" in result.problems[0].message and "width" in result.problems[1].message
    assert "does not record the version" in result.problems[0].message
    assert not result.ok


def test_too_few_values_are_mapped_only_against_the_layout_of_the_version_the_save_was_made_with(object_info):
    """The RES4LYF case: a pack inserted a widget mid-list between versions. Fewer saved values than
    widgets is mapped (defaults for the rest) only when the save records exactly the installed version."""
    saved = node(1, "EmptyImage", [64, 64], properties={"cnr_id": "comfy-core", "ver": "0.3.40"})
    installed = {"comfy-core": ["0.3.75"]}
    older = ui_to_api(ui([saved], []), object_info, installed)
    [problem] = older.problems
    assert not older.ok and str(problem.severity) == "error" and problem.node_id == "1"
    assert "saved with version 0.3.40, this ComfyUI has 0.3.75" in problem.message
    saved["properties"]["ver"] = "0.3.75"
    same = ui_to_api(ui([saved], []), object_info, installed)
    assert same.ok and same.workflow["1"]["inputs"] == {"width": 64, "height": 64, "batch_size": 1, "color": 0}
    assert [str(p.severity) for p in same.problems] == ["warning"]


def test_display_only_saved_text_is_not_a_widget_value(object_info):
    """GetImageSize sends its size as progress text; the editor saves that text as a widget value."""
    graph = ui(
        [
            node(1, "EmptyImage", [64, 48, 1, 0], outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, "GetImageSize", ["width: 64, height: 48\n batch size: 1"], inputs=[("image", "IMAGE", 1)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"]],
    )
    result = ui_to_api(graph, object_info)
    assert result.ok and result.workflow["2"]["inputs"] == {"image": ["1", 0]}, result.problems
    graph["nodes"][1]["widgets_values"] = [64]  # a number is not display text: still refused
    assert not ui_to_api(graph, object_info).ok


@pytest.mark.parametrize(
    ("widgets", "says"),
    [
        # a number landing in a combo of names: one value more than this version's widgets
        ([512, "nearest-exact", 512, 512, "disabled"], "5 saved widget value(s), this ComfyUI's ImageScale expects 4"),
        # the same count, but values that can't belong to their inputs' types (reordered inputs)
        ([512, 512, "nearest-exact", "disabled"], "upscale_method would get 512 (COMBO expected)"),
        # a surplus value of the right types: a newer version's extra widget, not guessed away
        (["nearest-exact", 512, 512, "disabled", "lanczos"], "1 saved value(s) left over"),
    ],
)
def test_version_skewed_widget_values_are_refused_naming_node_and_counts(object_info, widgets, says):
    node_type = "ImageScale"
    graph = ui(
        [
            node(1, "EmptyImage", [64, 64, 1, 0], outputs=[("IMAGE", "IMAGE", [1])]),
            node(2, node_type, widgets, inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])]),
            node(3, "SaveImage", ["x"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    )
    result = ui_to_api(graph, object_info)
    mismatch = [p for p in result.problems if p.code == "UI_CONVERT_WIDGET_MISMATCH"]
    assert not result.ok and mismatch and mismatch[0].node_id == "2" and str(mismatch[0].severity) == "error"
    assert f"Node 2 ({node_type})" in mismatch[0].message and says in mismatch[0].message


def test_a_combo_holding_another_combos_option_is_a_shift_not_a_missing_value(object_info):
    """Right types and count, but sampler_name holds a scheduler: two saved values swapped places."""
    graph = ui([node(1, "KSampler", [1, "fixed", 20, 8.0, "karras", "euler", 1.0])], [])
    result = ui_to_api(graph, object_info)
    [mismatch] = [p for p in result.problems if p.code == "UI_CONVERT_WIDGET_MISMATCH"]
    assert not result.ok and "sampler_name would get 'karras'" in mismatch.message
    graph = ui([node(1, "KSampler", [1, "fixed", 20, 8.0, "euler_but_renamed", "karras", 1.0])], [])
    assert not [p for p in ui_to_api(graph, object_info).problems if p.code == "UI_CONVERT_WIDGET_MISMATCH"]


def test_generate_refuses_a_version_skewed_editor_workflow_and_judges_converted_templates(stack):
    """Through the real worker: a skewed editor save is refused with the node and counts; a real editor
    template whose models are missing comes back MODEL_MISSING with its folder, not ComfyUI's text."""
    import json as _json

    from tests.conftest import runsync

    skewed = smoke_ui()
    skewed["nodes"][0]["widgets_values"] = [64, "64", 1, 0, 7]
    env = runsync(stack, {"workflow": skewed})
    err = _json.loads(env["error"])
    assert env["status"] == "FAILED" and err["error_code"] == "WORKFLOW_UI_FORMAT", err
    assert "Node 1 (EmptyImage): 5 saved widget value(s)" in err["error_message"]
    assert "node pack version" in err["fix"] and err["findings"][0]["code"] == "UI_CONVERT_WIDGET_MISMATCH"

    env = runsync(stack, {"workflow": template("sd15_default.json")})
    err = _json.loads(env["error"])
    assert env["status"] == "FAILED" and err["error_code"] == "MODEL_MISSING", err
    first = err["findings"][0]
    assert first["code"] == "MODEL_MISSING" and first["input"] == "ckpt_name" and "models/checkpoints/" in first["fix"]
    assert "QUEUE_FAILED" not in env["error"]

    unknown = smoke_ui()
    unknown["nodes"][1]["type"] = "ImageInvertFromAnotherPack"
    env = runsync(stack, {"workflow": unknown})
    err = _json.loads(env["error"])
    assert err["error_code"] == "NODE_MISSING" and err["findings"][0]["node_id"] == "2", err

    # a node of a pinned pack that is not installed here, with widgets
    unknown["nodes"][1].update(type="WanVideoDecode", widgets_values=[True, 272, 272, 144, 128])
    env = runsync(stack, {"workflow": unknown})
    err = _json.loads(env["error"])
    assert err["error_code"] == "NODE_MISSING" and "WanVideoWrapper" in err["error_message"], err


def test_not_a_ui_workflow(object_info):
    for bad in (None, [], {"1": {"class_type": "SaveImage", "inputs": {}}}, {"nodes": "x", "links": []}):
        result = ui_to_api(bad, object_info)
        assert result.workflow == {} and codes(result.problems) == ["UI_CONVERT_INVALID"] and not result.ok
    assert codes(ui_to_api(ui([node(1, "Note", ["hi"])], []), object_info).problems) == ["UI_CONVERT_INVALID"]


# ---------------------------------------------------------------------------------------------
# Never raises
# ---------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-30, 30) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
small_ids = st.integers(-20, 6) | st.sampled_from(["1", "x", None, 1.0, True])
node_types = st.sampled_from(
    ["KSampler", "EmptyImage", "SaveImage", "LoadImage", "Reroute", "PrimitiveNode", "GetNode", "SetNode", "sg", ""]
)
ui_input = st.fixed_dictionaries(
    {"name": st.sampled_from(["image", "images", "seed", "model", "img", ""]), "link": small_ids},
    optional={"type": st.sampled_from(["IMAGE", "*", "INT", ""]) | json_values, "widget": json_values},
)
ui_node = st.fixed_dictionaries(
    {"id": small_ids, "type": node_types | json_values},
    optional={
        "mode": st.sampled_from([0, 2, 4]) | json_values,
        "inputs": st.lists(ui_input | json_values, max_size=3),
        "outputs": st.lists(st.fixed_dictionaries({"type": json_values, "links": json_values}), max_size=2),
        "widgets_values": json_values,
    },
)
ui_link = st.lists(small_ids, min_size=0, max_size=6) | st.fixed_dictionaries(
    {
        "id": small_ids,
        "origin_id": small_ids,
        "origin_slot": small_ids,
        "target_id": small_ids,
        "target_slot": small_ids,
    }
)
subgraph = st.fixed_dictionaries(
    {"id": st.just("sg"), "nodes": st.lists(ui_node, max_size=4), "links": st.lists(ui_link, max_size=4)},
    optional={"inputs": st.lists(st.fixed_dictionaries({"name": st.sampled_from(["img", "seed"])}), max_size=2)},
)
ui_like = st.fixed_dictionaries(
    {"nodes": st.lists(ui_node, max_size=6), "links": st.lists(ui_link, max_size=6)},
    optional={"definitions": st.fixed_dictionaries({"subgraphs": st.lists(subgraph, max_size=2)}) | json_values},
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    inner = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    return [path, *(p for k, v in inner for p in _paths(v, (*path, k)))]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(TEMPLATES),
    edits=st.lists(st.tuples(st.integers(min_value=0), json_values | small_ids), min_size=1, max_size=6),
)
def test_conversion_never_raises_on_damaged_real_templates(object_info, name, edits):
    workflow = template(name)
    paths = _paths(workflow)[1:]
    for index, junk in edits:
        *parents, last = paths[index % len(paths)]
        with contextlib.suppress(IndexError, KeyError, TypeError):  # an earlier edit may have changed the shape
            target = workflow
            for key in parents:
                target = target[key]
            target[last] = junk
    result = ui_to_api(workflow, object_info)
    json.dumps(result.workflow, allow_nan=True)
    assert not any("could not be converted (" in f.message for f in result.problems), result.problems


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workflow=json_values | ui_like)
def test_conversion_never_raises_on_arbitrary_json(object_info, workflow):
    result = ui_to_api(workflow, object_info)
    json.dumps(result.workflow, allow_nan=True)
    json.dumps([f.to_dict() for f in result.problems])
    # A converter code, or the expansion bound (a subgraph that nests itself: hypothesis finds one now and then).
    assert all(f.code.startswith("UI_CONVERT_") or f.code == "LIMIT_EXCEEDED" for f in result.problems)
    # Bad data is handled where it occurs, not by the last-resort catch-all.
    assert not any("could not be converted (" in f.message for f in result.problems), result.problems


def test_a_subgraph_that_nests_itself_is_refused_by_the_expansion_bound(object_info):
    """The shape hypothesis found: a definition holding two instances of itself doubles per level."""
    workflow = {
        "nodes": [{"id": 0, "type": "sg"}],
        "links": [],
        "definitions": {
            "subgraphs": [
                {
                    "id": "sg",
                    "nodes": [{"id": 0, "type": "KSampler"}, {"id": 1, "type": "sg"}, {"id": 2, "type": "sg"}],
                    "links": [],
                }
            ]
        },
    }
    result = ui_to_api(workflow, object_info)
    assert [f.code for f in result.problems] == ["LIMIT_EXCEEDED"]
