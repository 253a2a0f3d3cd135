"""The pure analysis against the real /object_info of the local ComfyUI and the real registry."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workflows.analysis import Context, analyze_workflow, is_ui_format, node_check, pack_lookup
from workflows.models import ModelFile, ModelIndex
from workflows.registry import default_registry
from workflows.startup_log import PackImport

pytestmark = pytest.mark.stack
REGISTRY = default_registry()


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def ctx(object_info, models=None, imports=(), entry=None) -> Context:
    return Context(object_info, models, tuple(imports), pack_lookup(REGISTRY, entry))


def sdxl_workflow() -> dict:
    return REGISTRY.get("sdxl_basic").workflow()


@pytest.mark.parametrize("workflow_id", ["smoke_image", "smoke_i2v"])
def test_smoke_workflows_have_zero_findings_on_the_local_stack(object_info, workflow_id):
    entry = REGISTRY.get(workflow_id)
    workflow = entry.workflow()
    assert analyze_workflow(workflow, ctx(object_info, entry=entry), entry) == []


def test_parameter_maps_point_at_real_node_inputs(object_info):
    for entry in REGISTRY.entries.values():
        workflow = entry.workflow()
        for name, targets in entry.parameters.items():
            for t in targets:
                assert t.node in workflow, f"{entry.id}.{name}: node {t.node} not in workflow"
                node = workflow[t.node]
                info = object_info.get(node["class_type"])
                if info is not None:  # core node: check the real definition
                    inputs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
                    assert t.input in inputs, f"{entry.id}.{name}: {node['class_type']} has no input {t.input}"
                else:  # custom pack node (not installed here): the workflow must set that input
                    assert t.input in node["inputs"], f"{entry.id}.{name}: {t.input} not set on node {t.node}"


def test_core_nodes_of_every_registered_workflow_are_valid(object_info):
    """Everything except missing packs and models is right in every registered workflow."""
    allowed = {"NODE_MISSING", "MODEL_MISSING"}
    for entry in REGISTRY.entries.values():
        found = analyze_workflow(entry.workflow(), ctx(object_info, entry=entry), entry)
        unexpected = [f for f in found if f.code not in allowed]
        assert unexpected == [], f"{entry.id}: {[f.to_dict() for f in unexpected]}"


def test_missing_custom_node_names_the_pack_from_the_registry(object_info):
    # ComfyUI-WanVideoWrapper is registered but never installed in the test stacks (conftest ABSENT_PACK).
    entry = REGISTRY.get("wan22_i2v")
    found = analyze_workflow(entry.workflow(), ctx(object_info, entry=entry), entry)
    missing = {f.message.split("'")[1]: f for f in found if f.code == "NODE_MISSING"}
    assert "WanVideoSampler" in missing
    assert "ComfyUI-WanVideoWrapper" in missing["WanVideoSampler"].message
    assert "github.com/kijai/ComfyUI-WanVideoWrapper" in missing["WanVideoSampler"].fix
    entry = REGISTRY.get("z_image_turbo_denrisi")  # RES4LYF is installed: only its models are missing
    found = analyze_workflow(entry.workflow(), ctx(object_info, entry=entry), entry)
    models = {f.input: f for f in found if f.code == "MODEL_MISSING"}
    assert "unet_name" in models and "diffusion_models" in models["unet_name"].fix


def test_unknown_node_falls_back_to_popular_pack_map(object_info):
    wf = {
        "1": {"class_type": "ImageResizeKJv2", "inputs": {}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    found = analyze_workflow(wf, ctx(object_info))
    assert codes(found) == ["NODE_MISSING"]
    assert "ComfyUI-KJNodes" in found[0].message


def test_node_of_a_pack_that_failed_to_import_is_reported_as_such(object_info):
    entry = REGISTRY.get("z_image_turbo_denrisi")
    imports = [PackImport("RES4LYF", "/comfyui/custom_nodes/RES4LYF", 0.1, True, "No module named 'pywt'")]
    pack_nodes = set(entry.packs[0].nodes)  # a pack that failed to import defined none of its nodes
    without = {name: spec for name, spec in object_info.items() if name not in pack_nodes}
    found = analyze_workflow(entry.workflow(), ctx(without, imports=imports, entry=entry), entry)
    failed = [f for f in found if f.code == "PACK_IMPORT_FAILED"]
    assert failed and "pywt" in failed[0].message and failed[0].path == "/comfyui/custom_nodes/RES4LYF"


def _index(folder_files: dict[str, list[str]], on_disk=(), checksums=None) -> ModelIndex:
    return ModelIndex({k: frozenset(v) for k, v in folder_files.items()}, tuple(on_disk), checksums)


def test_model_missing_in_wrong_folder_size_and_hash(object_info):
    entry = REGISTRY.get("sdxl_basic")
    spec = entry.models[0]
    wf = entry.workflow()
    # Missing everywhere.
    found = analyze_workflow(wf, ctx(object_info, _index({"checkpoints": []}), entry=entry), entry)
    assert codes(found) == ["MODEL_MISSING"] and spec.url in found[0].fix
    # Present but in the wrong folder.
    wrong = ModelFile("loras", spec.name, f"/runpod-volume/models/loras/{spec.name}", 10, "volume", True)
    found = analyze_workflow(
        wf, ctx(object_info, _index({"checkpoints": [], "loras": [spec.name]}, [wrong]), entry=entry), entry
    )
    assert codes(found) == ["MODEL_IN_WRONG_FOLDER"] and found[0].path == wrong.path
    # Present in a directory ComfyUI does not scan.
    unscanned = ModelFile("checkpoints", spec.name, f"/runpod-volume/stuff/{spec.name}", 10, "volume", False)
    found = analyze_workflow(wf, ctx(object_info, _index({"checkpoints": []}, [unscanned]), entry=entry), entry)
    assert codes(found) == ["MODEL_IN_WRONG_FOLDER"] and "does not scan" in found[0].message
    # Seen, but truncated; then seen with a bad hash.
    present = ModelFile("checkpoints", spec.name, f"/comfyui/models/checkpoints/{spec.name}", 1234, "image", True)
    seen = {"checkpoints": [spec.name]}
    found = analyze_workflow(wf, ctx(object_info, _index(seen, [present]), entry=entry), entry)
    assert codes(found) == (["MODEL_SIZE_MISMATCH"] if spec.size_bytes else [])
    right = ModelFile("checkpoints", spec.name, present.path, spec.size_bytes or 1234, "image", True)
    bad_hash = {right.path: "0" * 64}
    found = analyze_workflow(wf, ctx(object_info, _index(seen, [right], bad_hash), entry=entry), entry)
    assert codes(found) == (["MODEL_HASH_MISMATCH"] if spec.sha256 else [])
    good_hash = {right.path: spec.sha256 or "0" * 64}
    assert analyze_workflow(wf, ctx(object_info, _index(seen, [right], good_hash), entry=entry), entry) == []


def test_per_request_image_inputs_are_not_judged_but_others_are(object_info):
    entry = REGISTRY.get("smoke_i2v")
    wf = entry.workflow()
    wf["1"]["inputs"]["image"] = "not-uploaded-yet.png"
    assert analyze_workflow(wf, ctx(object_info, entry=entry), entry) == []
    assert codes(analyze_workflow(wf, ctx(object_info))) == ["VALUE_NOT_IN_LIST"]  # inline: judged


def test_value_and_input_findings(object_info):
    wf = REGISTRY.get("smoke_image").workflow()
    bad = copy.deepcopy(wf)
    bad["1"]["inputs"]["width"] = 0  # EmptyImage min is 1
    assert codes(analyze_workflow(bad, ctx(object_info))) == ["VALUE_OUT_OF_RANGE"]
    bad = copy.deepcopy(wf)
    del bad["1"]["inputs"]["height"]
    assert codes(analyze_workflow(bad, ctx(object_info))) == ["INPUT_MISSING"]
    bad = copy.deepcopy(wf)
    bad["1"]["inputs"]["width"] = "wide"
    assert codes(analyze_workflow(bad, ctx(object_info))) == ["VALUE_WRONG_TYPE"]
    i2v = REGISTRY.get("smoke_i2v").workflow()
    i2v["2"]["inputs"]["upscale_method"] = "magic"
    entry = REGISTRY.get("smoke_i2v")  # with the entry, LoadImage's per-request image is not judged
    found = analyze_workflow(i2v, ctx(object_info, entry=entry), entry)
    assert codes(found) == ["VALUE_NOT_IN_LIST"] and found[0].node_id == "2" and found[0].input == "upscale_method"
    typo = copy.deepcopy(wf)
    typo["1"]["inputs"]["widht"] = 5
    assert codes(analyze_workflow(typo, ctx(object_info))) == ["INPUT_UNKNOWN"]


def test_link_findings(object_info):
    wf = REGISTRY.get("smoke_image").workflow()
    for mutate in (
        lambda w: w["2"]["inputs"].update(image=["99", 0]),  # missing node
        lambda w: w["2"]["inputs"].update(image=["1", 3]),  # bad output index
        lambda w: (
            w["3"]["inputs"].update(images=["4", 0])
            or w.update(
                {"4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}}
            )
        ),
    ):
        bad = copy.deepcopy(wf)
        mutate(bad)
        assert "LINK_BROKEN" in codes(analyze_workflow(bad, ctx(object_info))), bad


def test_ui_format_and_no_output(object_info):
    ui = {
        "last_node_id": 3,
        "nodes": [{"id": 1, "type": "EmptyImage", "widgets_values": [512, 512, 1, 0]}],
        "links": [],
        "version": 0.4,
    }
    assert is_ui_format(ui)
    assert codes(analyze_workflow(ui, ctx(object_info))) == ["WORKFLOW_UI_FORMAT"]
    wf = REGISTRY.get("smoke_image").workflow()
    del wf["3"]
    assert codes(analyze_workflow(wf, ctx(object_info))) == ["NO_OUTPUT_NODE"]


def test_node_check_lists_missing_nodes_with_packs(object_info):
    report = node_check(REGISTRY, object_info)
    missing = {m["node"]: m for m in report["required_missing"]}
    assert "SaveImage" in report["required_available"]
    assert missing["WanVideoSampler"]["pack"] == "ComfyUI-WanVideoWrapper"
    assert "wan22_i2v" in missing["WanVideoSampler"]["workflows"]
    assert {"ClownsharKSampler_Beta", "VHS_VideoCombine"} <= set(report["required_available"])  # real packs


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=25,
)
node_like = st.fixed_dictionaries(
    {
        "class_type": st.sampled_from(["SaveImage", "EmptyImage", "ImageScale", "Nope", ""]) | st.text(max_size=5),
        "inputs": st.dictionaries(st.text(max_size=8), json_values, max_size=5),
    }
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(workflow=json_values | st.dictionaries(st.text(max_size=4), node_like | json_values, max_size=6))
def test_analysis_never_raises_on_arbitrary_json(object_info, workflow):
    entry = REGISTRY.get("sdxl_basic")
    index = _index({"checkpoints": ["a.safetensors"]})
    for c in (ctx(object_info), ctx(object_info, index, entry=entry)):
        found = analyze_workflow(workflow, c, entry)
        json.dumps([f.to_dict() for f in found])


def test_registry_errors_name_file_key_and_problem(tmp_path: Path):
    from workflows.registry import RegistryError, load_registry

    (tmp_path / "x.json").write_text('{"1": {"class_type": "EmptyImage", "inputs": {}}}')
    (tmp_path / "x.yaml").write_text("id: x\ntitle: t\nworkflow: x.json\nmodels:\n  - folder: nowhere\n    name: a\n")
    problem = load_registry(tmp_path).problems["x"]
    assert re.fullmatch(r"x\.yaml: models\[0\]\.folder: unknown model folder 'nowhere'", problem)
    (tmp_path / "x.yaml").write_text(
        "id: x\ntitle: t\nworkflow: x.json\nparameters:\n  sed: {node: '1', input: seed}\n"
    )
    registry = load_registry(tmp_path)
    assert "x" not in registry.entries
    assert registry.problems["x"].startswith("x.yaml: parameters.sed: unknown parameter")
    with pytest.raises(RegistryError, match=r"x\.yaml: parameters\.sed"):
        registry.require_valid()


def test_a_broken_registry_file_disables_only_its_workflow(tmp_path: Path):
    from workflows.registry import load_registry

    good = '{"1": {"class_type": "EmptyImage", "inputs": {}}}'
    for name in ("good", "python", "badyaml"):
        (tmp_path / f"{name}.json").write_text(good)
        (tmp_path / f"{name}.yaml").write_text(f"id: {name}\ntitle: t\nworkflow: {name}.json\n")
    (tmp_path / "python.json").write_text("import json\n\nWORKFLOW = {}\n")
    (tmp_path / "badyaml.yaml").write_text("id: badyaml\ntitle: [unclosed\n")
    registry = load_registry(tmp_path)
    assert sorted(registry.entries) == ["good"]
    assert registry.problems["python"] == "python.json: not valid JSON (line 1, column 1): Expecting value"
    assert registry.problems["badyaml"].startswith("badyaml.yaml: not valid YAML (line 3, column 1)")


def test_gpu_summary_reads_the_first_cuda_device():
    from comfyui_client.stats import comfyui_version, gpu_summary

    stats = {
        "system": {"comfyui_version": "0.3.75"},
        "devices": [
            {"type": "cpu", "name": "cpu"},
            {"type": "cuda", "name": "cuda:0 NVIDIA L4", "vram_total": 24e9, "vram_free": 20.5e9},
        ],
    }
    assert gpu_summary(stats) == {"name": "cuda:0 NVIDIA L4", "vram_total_gb": 24.0, "vram_free_gb": 20.5}
    assert comfyui_version(stats) == "0.3.75"
    assert gpu_summary({"devices": [{"type": "cpu"}]}) is None and gpu_summary(None) is None


# ---------------------------------------------------------------------------------------------
# Near matches, version skew, ComfyUI's own rejections (issue 13)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "choices", "meant"),
    [
        ("model.safetensors ", ["model.safetensors", "other.safetensors"], "model.safetensors"),  # whitespace
        ("Model.SafeTensors", ["model.safetensors"], "model.safetensors"),  # case
        ("model", ["model.safetensors", "modelx.safetensors"], "model.safetensors"),  # extension
        ("model.safetensors", ["sd15/model.safetensors"], "sd15/model.safetensors"),  # sub-folder prefix
        ("sd15/model.safetensors", ["model.safetensors"], "model.safetensors"),  # a prefix too many
        ("sd15\\model.safetensors", ["sd15/model.safetensors"], "sd15/model.safetensors"),  # separators
        ("Euler", ["euler", "euler_ancestral"], "euler"),
        ("model.safetensors", ["a/model.safetensors", "b/model.safetensors"], None),  # ambiguous: no guess
        ("flux.safetensors", ["sdxl.safetensors"], None),
        (12, ["12"], None),
    ],
)
def test_near_match_names_only_an_unambiguous_spelling_variant(value, choices, meant):
    from workflows.analysis import near_match

    assert near_match(value, choices) == meant


def test_value_not_in_list_says_did_you_mean(object_info):
    wf = copy.deepcopy(sdxl_workflow())
    wf["3"]["inputs"]["sampler_name"] = "DPMPP_2M "
    found = [f for f in analyze_workflow(wf, ctx(object_info)) if f.code == "VALUE_NOT_IN_LIST"]
    assert found and "Did you mean 'dpmpp_2m'?" in found[0].message and "'dpmpp_2m'" in found[0].fix


def test_model_near_miss_and_url_for_an_inline_workflow(object_info):
    from workflows.analysis import model_lookup

    wf = copy.deepcopy(sdxl_workflow())
    index = _index({"checkpoints": ["sdxl/sd_xl_base_1.0.safetensors"]})
    found = analyze_workflow(wf, Context(object_info, index, known_models=model_lookup(REGISTRY)))
    assert codes(found) == ["MODEL_MISSING"]
    assert "Did you mean 'sdxl/sd_xl_base_1.0.safetensors'?" in found[0].message
    wf["4"]["inputs"]["ckpt_name"] = "sd_xl_base_1.0.safetensors"
    found = analyze_workflow(wf, Context(object_info, _index({"checkpoints": []}), known_models=model_lookup(REGISTRY)))
    assert (
        codes(found) == ["MODEL_MISSING"] and "huggingface.co/stabilityai/stable-diffusion-xl-base-1.0" in found[0].fix
    )


def test_node_missing_says_when_the_installed_pack_is_another_version(object_info):
    entry = REGISTRY.get("z_image_turbo_denrisi")
    imports = [PackImport("RES4LYF", "/comfyui/custom_nodes/RES4LYF", 0.1, False)]
    # RES4LYF is installed in the test stack: a version of it without the sampler class is simulated
    skewed = {k: v for k, v in object_info.items() if k != "ClownsharKSampler_Beta"}
    found = analyze_workflow(entry.workflow(), ctx(skewed, imports=imports, entry=entry), entry)
    skew = [f for f in found if f.code == "NODE_MISSING" and "ClownsharKSampler_Beta" in f.message]
    pin = next(p.commit for p in entry.packs if p.name == "RES4LYF")
    assert skew and "version skew" in skew[0].message and pin in skew[0].fix
    assert skew[0].path == "/comfyui/custom_nodes/RES4LYF"


def test_structure_findings_catch_a_broken_link_without_object_info():
    from workflows.analysis import structure_findings

    wf = {"1": {"class_type": "X", "inputs": {"a": ["99", 0]}}, "2": {"class_type": "Y", "inputs": {"b": ["1", 0]}}}
    found = structure_findings(wf)
    assert [(f.code, f.node_id, f.input) for f in found] == [("LINK_BROKEN", "1", "a")]
    assert codes(structure_findings({"nodes": [], "links": []})) == ["WORKFLOW_UI_FORMAT"]


REJECTED = [
    # (workflow sent straight to ComfyUI's /prompt, finding code, node, input, text in the message)
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
        },
        "LINK_BROKEN",
        "2",
        "image",
        "node 99, which does not exist",
    ),
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "i13-not-there.safetensors"}},
            "3": {"class_type": "VAEEncode", "inputs": {"pixels": ["1", 0], "vae": ["2", 2]}},
            "5": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["2", 2]}},
            "4": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "x"}},
        },
        "MODEL_MISSING",
        "2",
        "ckpt_name",
        "models/checkpoints/",
    ),
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 999999, "height": 64, "batch_size": 1, "color": 0}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        },
        "VALUE_OUT_OF_RANGE",
        "1",
        "width",
        "outside 1..16384",
    ),
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        },
        "INPUT_MISSING",
        "1",
        "color",
        "'color'",
    ),
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": "wide", "height": 64, "batch_size": 1, "color": 0}},
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        },
        "VALUE_WRONG_TYPE",
        "1",
        "width",
        "'wide'",
    ),
    (
        {
            "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
            "2": {
                "class_type": "ImageScale",
                "inputs": {
                    "image": ["1", 0],
                    "upscale_method": "Bilinear ",
                    "width": 8,
                    "height": 8,
                    "crop": "disabled",
                },
            },
            "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
        },
        "VALUE_NOT_IN_LIST",
        "2",
        "upscale_method",
        "Did you mean 'bilinear'?",
    ),
    (
        {
            "1": {"class_type": "WanVideoDecode", "inputs": {}},  # its pack is pinned, never installed here
            "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        },
        "NODE_MISSING",
        "1",
        None,
        "ComfyUI-WanVideoWrapper",
    ),
]


@pytest.mark.parametrize(("workflow", "code", "node", "name", "says"), REJECTED, ids=[r[1] for r in REJECTED])
def test_comfyuis_own_rejections_map_to_finding_codes(stack, workflow, code, node, name, says):
    """The real 400 answers of ComfyUI's /prompt, mapped by workflows.judge.rejection_findings."""
    import requests

    from workflows.judge import rejection_findings

    r = requests.post(f"{stack.comfy_url}/prompt", json={"prompt": workflow}, timeout=30)
    assert r.status_code == 400, r.text
    found = rejection_findings(r.json(), workflow, pack_lookup(REGISTRY))
    assert found, r.json()
    assert (found[0].code, found[0].node_id, found[0].input) == (code, node, name), found
    assert says in found[0].message + found[0].fix
    assert r.json()["error"]["message"] not in found[0].message  # ComfyUI's raw text stays out of ours


def test_the_pre_queue_judgement_refuses_only_what_makes_a_job_fail(object_info):
    """A size that differs from the registry's is diagnose's evidence, not a reason to refuse a job."""
    from workflows.judge import judge_before_queue
    from workflows.policy import JobPolicy

    entry = REGISTRY.get("sdxl_basic")
    spec = entry.models[0]
    present = ModelFile("checkpoints", spec.name, f"/comfyui/models/checkpoints/{spec.name}", 1234, "image", True)
    c = ctx(object_info, _index({"checkpoints": [spec.name]}, [present]), entry=entry)
    assert codes(analyze_workflow(entry.workflow(), c, entry)) == ["MODEL_SIZE_MISMATCH"]
    judged = judge_before_queue(entry.workflow(), c, entry=entry, origin="registered", policy=JobPolicy())
    assert judged == []


def test_a_pack_loader_of_unknown_folder_gets_a_near_match_from_its_own_list():
    info = {
        "PackLoader": {"input": {"required": {"model": [["sub/b.safetensors", "c.safetensors"], {}]}}, "output": ["M"]},
        "PackSave": {"input": {"required": {"m": ["M"]}}, "output": [], "output_node": True},
    }
    wf = {
        "1": {"class_type": "PackLoader", "inputs": {"model": "B.safetensors"}},
        "2": {"class_type": "PackSave", "inputs": {"m": ["1", 0]}},
    }
    cached = analyze_workflow(wf, Context(info))
    refreshed = analyze_workflow(wf, Context(info, _index({"checkpoints": []})))
    assert codes(cached) == ["VALUE_NOT_IN_LIST"] and codes(refreshed) == ["MODEL_MISSING"]
    for found in (cached, refreshed):
        assert "Did you mean 'sub/b.safetensors'?" in found[0].message
