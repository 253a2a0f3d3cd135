"""The pure halves of issue 25's holes 1, 4, 5 and 7, with no server: a pack node's path-like values judged
by what they are (workflows.path_values) against the handler's real look at a temporary disk layout
(handler.generate.path_facts), output names fed by links, and a request nested too deep."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from handler.config import Settings
from handler.generate import path_facts
from workflows.errors import JobError
from workflows.patch import scope_outputs
from workflows.path_values import is_core, looks_like_path, says_path, value_refs
from workflows.policy import JobPolicy, policy_findings
from workflows.registry import default_registry
from workflows.request import MAX_DEPTH, parse_request, too_deep
from workflows.secrets import redact_data
from workflows.ui_convert import ui_to_api

PACK = "custom_nodes.ComfyUI-SomePack"


def spec(kind: Any = "STRING", **options: Any) -> list[Any]:
    return [kind, options] if options else [kind]


# /object_info as ComfyUI 0.3.75 answers it: `python_module` tells ComfyUI's own nodes from a pack's.
OBJECT_INFO: dict[str, Any] = {
    "PackSaver": {
        "python_module": PACK,
        "input": {
            "required": {
                "string": spec(multiline=True),
                "output_folder": spec(default="output"),
                "filename_prefix": spec(),
            }
        },
    },
    "PackLoader": {
        "python_module": PACK,
        "input": {
            "required": {
                "snapshot_path": spec(),
                "model_path": [["a.safetensors", "sub/b.safetensors"]],
                "mode": [["fast", "video/h264-mp4"]],
                "prompt": spec(multiline=True),
                "caption": spec(),
                "anything": spec("*"),
            }
        },
    },
    "PrimitiveString": {"python_module": "comfy_extras.nodes_primitive", "input": {"required": {"value": spec()}}},
    "StringConcatenate": {
        "python_module": "comfy_extras.nodes_string",
        "input": {"required": {"string_a": spec(), "string_b": spec()}},
    },
    "CLIPTextEncode": {"python_module": "nodes", "input": {"required": {"text": spec(multiline=True)}}},
    "SaveImage": {"python_module": "nodes", "input": {"required": {"filename_prefix": spec()}}},
}


@pytest.fixture
def comfy(tmp_path: Path) -> Settings:
    """A ComfyUI directory laid out as the image's: input/output/temp inside it, its user dir beside them."""
    for sub in ("input", "output", "temp", "user/default", "custom_nodes"):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / "output" / "out_link").symlink_to(tmp_path / "user")
    return Settings.from_env({"COMFY_DIR": str(tmp_path)})


def judge(settings: Settings, workflow: dict[str, Any], object_info: dict[str, Any] | None = OBJECT_INFO) -> list:
    facts = path_facts(settings, workflow, object_info)
    return policy_findings(workflow, JobPolicy(), origin="inline", paths=facts, object_info=object_info)


def node(class_type: str, **inputs: Any) -> dict[str, Any]:
    return {"class_type": class_type, "inputs": inputs}


# --- what a path is --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["snapshot_path", "output_folder", "save_dir", "ckpt_file", "json_path", "outputFolder", "imageFilePath",
     "save-dir", "Directory", "FILENAME", "dirname", "filepaths", "folder_name", "file_name", "dirName", "path"],
)  # fmt: skip
def test_names_that_say_path(name):
    assert says_path(name)


@pytest.mark.parametrize(
    "name",
    ["text", "prompt", "model_name", "profile", "directional", "pathos", "tiles", "dirty", "files_count",
     "file_extension", "caption_file_extension", "file_format", "path_type", "name", "filename_prefix"],
)  # fmt: skip
def test_names_that_do_not(name):
    assert not says_path(name)


@pytest.mark.parametrize(
    "value",
    ["/dev/shm/x", "~/x", "~root", "a/../b", "..", "C:\\x", "c:/x", "file:///etc/hostname", "\\\\srv\\share",
     ' "/etc/passwd" ', "FILE:/etc"],
)  # fmt: skip
def test_values_shaped_like_paths(value):
    assert looks_like_path(value)


@pytest.mark.parametrize(
    "value",
    ["a cat / dog", "1/2", "and/or", "video/h264-mp4", "exponential/res_2s", "wait.. what", "...", "http://x/y",
     "user", "A: a cat", "x/..y"],
)  # fmt: skip
def test_text_with_a_slash_is_not_a_path(value):
    assert not looks_like_path(value)


def test_core_and_pack_nodes_are_told_apart_by_python_module():
    assert is_core(OBJECT_INFO, "CLIPTextEncode") and is_core(OBJECT_INFO, "PrimitiveString")
    assert is_core(OBJECT_INFO, "PackSaver") is False
    assert is_core(OBJECT_INFO, "NoSuchNode") is None  # ComfyUI refuses the whole prompt
    assert is_core(None, "CLIPTextEncode") is False  # no definitions at hand: everything is judged


def test_core_nodes_keep_their_own_handling():
    workflow = {"1": node("CLIPTextEncode", text="/imagine a cat"), "2": node("SaveImage", filename_prefix="x")}
    assert list(value_refs(workflow, OBJECT_INFO)) == []


# --- hole 1 and 5: a pack's path inputs under any name ---------------------------------------------


@pytest.mark.parametrize(
    "inputs",
    [
        {"output_folder": "/dev/shm/x"},  # hole 1: SaveStringKJ plants a pickle
        {"output_folder": "user"},  # hole 5: relative to ComfyUI's directory, its user dir
        {"output_folder": "user/default"},
        {"output_folder": "."},
        {"output_folder": "custom_nodes/ComfyUI-SomePack"},
        {"output_folder": "output/../user"},
        {"output_folder": "output/out_link"},  # a symlink inside output that leads out
        {"output_folder": "~/x"},
        {"output_folder": "file:///etc"},
        {"output_folder": "https://example.com/x"},
        {"output_folder": "C:\\Windows"},
        {"output_folder": "a\x00b"},
    ],
)
def test_a_pack_path_outside_the_allowed_directories_is_refused(comfy, inputs):
    workflow = {"1": node("PackSaver", string="text", filename_prefix="p", **inputs)}
    [finding] = judge(comfy, workflow)
    assert (finding.code, finding.node_id, finding.input) == ("PATH_REFUSED", "1", "output_folder")
    assert "input, output or temp" in finding.fix


@pytest.mark.parametrize(
    "inputs",
    [
        {"snapshot_path": "/dev/shm/x/pk_00001_.pkl"},  # hole 1: pickle.load of the planted file
        {"snapshot_path": "/etc/hostname"},
        {"snapshot_path": "/dev/zero"},
        {"caption": "/etc/hostname"},  # a name nobody would list: the value's shape is enough
        {"anything": {"__value__": ["x", ["/proc/self/environ"]]}},  # nested, wrapped
        {"prompt": "user", "snapshot_path": "x/../../etc/hostname"},
        {"caption": "user/default/x.png"},  # relative, under a name nobody would list: ComfyUI's user dir
        {"caption": "custom_nodes/ComfyUI-SomePack/__init__.py"},
        {"anything": ["ok", "user\\default"]},
    ],
)
def test_a_pack_read_outside_is_refused(comfy, inputs):
    findings = judge(comfy, {"1": node("PackLoader", **inputs)})
    assert findings and findings[0].code == "PATH_REFUSED" and findings[0].input in inputs


def test_a_path_behind_a_primitive_or_built_by_a_node(comfy):
    primitive = {"2": node("PrimitiveString", value="/dev/shm/x/pk.pkl"), "1": node("PackLoader", caption=["2", 0])}
    [finding] = judge(comfy, primitive)
    assert finding.input == "caption" and "/dev/shm/x/pk.pkl" in finding.message
    built = {
        "2": node("StringConcatenate", string_a="/dev/", string_b="shm"),
        "1": node("PackLoader", snapshot_path=["2", 0]),
    }
    [finding] = judge(comfy, built)
    assert finding.input == "snapshot_path" and "not a literal" in finding.message
    # a built string under a name that does not say path is the kernel's to hold, not the policy's
    assert judge(comfy, {**built, "1": node("PackLoader", caption=["2", 0])}) == []


@pytest.mark.parametrize(
    "inputs",
    [
        {"output_folder": "output"},  # KJNodes' default
        {"output_folder": "output/my_run"},
        {"output_folder": "input"},
        {"output_folder": "temp/x"},
        {"output_folder": ""},
        {"string": "/imagine a cat, ~/home, ../x"},  # a multiline text box: a prompt
    ],
)
def test_pack_paths_inside_and_text_pass(comfy, inputs):
    workflow = {"1": node("PackSaver", **{"string": "a", "output_folder": "output", "filename_prefix": "p", **inputs})}
    assert judge(comfy, workflow) == []


def test_absolute_paths_inside_the_allowed_directories_pass(comfy):
    out = str(comfy.output_dir / "run")
    assert judge(comfy, {"1": node("PackSaver", string="a", output_folder=out, filename_prefix="p")}) == []


@pytest.mark.parametrize(
    "inputs",
    [
        {"caption": "a cat / dog"},
        {"caption": "1/2"},
        {"caption": "user"},  # not a path name, not a path shape
        {"model_path": "sub/b.safetensors"},  # one of the node's own options (ComfyUI checks the list)
        {"mode": "video/h264-mp4"},
        {"prompt": "/no_think describe the image"},
        {"prompt": "user/default/x"},  # a text box
        {"caption": "and/or"},  # names nothing in ComfyUI's directory
        {"caption": "https://huggingface.co/org/repo/resolve/main/x.safetensors"},  # a URL: not a path here
        {"caption": "data:image/png;base64,iVBORw0KGgo/AAAA+user/x"},
        {"caption": "user:pass/x"},
        {"caption": "input/cat.png"},
        {"caption": "output/run/x.png"},
    ],
)
def test_no_false_positives_on_text_and_listed_options(comfy, inputs):
    assert judge(comfy, {"1": node("PackLoader", **inputs)}) == []


def test_a_value_missing_from_the_facts_is_refused_not_let_by(comfy):
    workflow = {"1": node("PackLoader", snapshot_path="output/x")}
    findings = policy_findings(workflow, JobPolicy(), origin="inline", paths={}, object_info=OBJECT_INFO)
    assert findings[0].code == "PATH_REFUSED" and "could not be checked" in findings[0].message


def test_without_disk_facts_only_the_shape_is_judged():
    """The client's direct mode (no look at ComfyUI's disk): '..' and '~' are still refused."""
    workflow = {"1": node("PackLoader", snapshot_path="../x", caption="~/y")}
    found = policy_findings(workflow, JobPolicy(), origin="inline", paths=None, object_info=OBJECT_INFO)
    assert [f.input for f in found] == ["snapshot_path", "caption"]


def test_registered_workflows_pass_even_with_every_node_judged_as_a_packs(comfy):
    """Denrisi (RES4LYF), Wan (WanVideoWrapper, VHS), SDXL and the smoke workflows: with no /object_info at
    hand every node is judged as a pack's, the strictest reading; none of their values is a path out."""
    entries = default_registry().entries
    assert {"z_image_turbo_denrisi", "wan22_i2v", "sdxl_basic", "smoke_vhs"} <= set(entries)
    for entry in entries.values():
        workflow = entry.workflow()
        scope_outputs(workflow, "job_abc")
        facts = path_facts(comfy, workflow, None)
        found = policy_findings(workflow, JobPolicy(), origin="registered", paths=facts, object_info=None)
        assert found == [], (entry.id, found)


# --- hole 4: output names fed by a link --------------------------------------------------------------


def test_a_primitive_or_wrapped_prefix_is_scoped_and_the_primitive_left_alone():
    workflow = {
        "1": node("PrimitiveString", value="../../../dev/shm/x"),
        "2": node("SaveImage", filename_prefix=["1", 0]),
        "3": node("SaveImage", filename_prefix={"__value__": "../escape/y"}),
        "4": node("SaveImage", filename_prefix=7),
        "5": node("PackLoader", caption=["1", 0]),
    }
    scope_outputs(workflow, "job_k")
    assert workflow["2"]["inputs"]["filename_prefix"] == "job_k/dev/shm/x"
    assert workflow["3"]["inputs"]["filename_prefix"] == "job_k/escape/y"
    assert workflow["4"]["inputs"]["filename_prefix"] == "job_k/7"
    assert workflow["1"]["inputs"]["value"] == "../../../dev/shm/x" and workflow["5"]["inputs"]["caption"] == ["1", 0]


@pytest.mark.parametrize("class_type", ["SaveImage", "PackSaver"])
def test_a_prefix_built_by_another_node_is_refused(comfy, class_type):
    workflow = {
        "1": node("StringConcatenate", string_a="a", string_b="b"),
        "2": node(class_type, filename_prefix=["1", 0], output_folder="output", string="s"),
    }
    scope_outputs(workflow, "job_k")
    assert workflow["2"]["inputs"]["filename_prefix"] == ["1", 0]
    [finding] = judge(comfy, workflow)
    assert (finding.code, finding.input) == ("PATH_REFUSED", "filename_prefix")
    assert "job's own folder" in finding.fix


# --- hole 7: nesting -----------------------------------------------------------------------------------


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_a_request_nested_too_deep_is_bad_input_before_any_walk():
    job = {"workflow": {"1": node("PreviewAny", source={"__value__": nested(900)})}}
    with pytest.raises(JobError) as caught:
        parse_request(job)
    assert caught.value.code == "BAD_INPUT" and f"{MAX_DEPTH} levels" in str(caught.value)
    assert "input.workflow.1.inputs.source.__value__.0" in str(caught.value)
    with pytest.raises(JobError):  # a JSON string in compatibility mode too
        parse_request(json.dumps(job), compat=True)


def test_nesting_within_the_bound_passes():
    assert too_deep({"workflow": {"1": node("PreviewAny", source={"__value__": nested(MAX_DEPTH - 6)})}}) is None
    assert too_deep(nested(MAX_DEPTH + 1)) is not None and too_deep(nested(MAX_DEPTH)) is None


def test_the_other_walks_hold_deep_data():
    deep = {"k": nested(5000), "s": "pw-secret-1"}
    masked = redact_data(deep, ("pw-secret-1",))
    assert masked["s"] == "***" and too_deep(masked["k"], 6000) is None
    # a chain of 600 reroutes in an editor save: named as a broken link, not a RecursionError
    nodes: list[dict[str, Any]] = [
        {"id": 1, "type": "EmptyImage", "mode": 0, "widgets_values": [8, 8, 1, 0], "outputs": [{"links": [1]}]}
    ]
    links = []
    for i in range(2, 602):
        nodes.append({"id": i, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": i - 1}]})
        links.append([i - 1, i - 1, 0, i, 0, "*"])
    nodes.append({"id": 602, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "link": 601}]})
    links.append([601, 601, 0, 602, 0, "IMAGE"])
    info = {
        "EmptyImage": {"input": {"required": {k: ["INT", {}] for k in ("width", "height", "batch_size", "color")}}},
        "SaveImage": {"input": {"required": {"images": ["IMAGE"], "filename_prefix": ["STRING", {}]}}},
    }
    info["EmptyImage"]["output"] = ["IMAGE"]
    result = ui_to_api({"nodes": nodes, "links": links}, info)
    broken = [p for p in result.problems if p.code == "UI_CONVERT_LINK_BROKEN"]
    assert broken and "too long" in broken[0].message and "Recursion" not in str(result.problems)


def test_path_facts_follow_symlinks_for_pack_values(comfy):
    """The handler asks the filesystem: a name inside output that is a symlink to the user dir is out."""
    facts = path_facts(comfy, {"1": node("PackLoader", snapshot_path="output/out_link/x")}, OBJECT_INFO)
    assert facts[("cwd", "output/out_link/x")].inside is False
    facts = path_facts(comfy, {"1": node("PackLoader", snapshot_path="output/x")}, OBJECT_INFO)
    assert facts[("cwd", "output/x")].inside is True
    assert os.path.islink(comfy.output_dir / "out_link")


def test_a_class_trusted_with_paths_is_left_to_the_kernel(comfy):
    """ALLOW_UNSAFE_NODES lists a pack class (or is `*`: the node policy off, as the kernel layer's tests run
    it): its values are no longer judged; declared file inputs and other packs' values still are."""
    workflow = {
        "1": node("PackLoader", snapshot_path="/etc/hostname"),
        "2": node("PackSaver", string="s", output_folder="user", filename_prefix="p"),
        "3": node("LoadImage", image="/etc/hostname"),
    }
    facts = path_facts(comfy, workflow, OBJECT_INFO)

    def refused(allow: set[str]) -> list[str | None]:
        policy = JobPolicy(allow_unsafe=frozenset(allow))
        found = policy_findings(workflow, policy, origin="inline", paths=facts, object_info=OBJECT_INFO)
        return sorted(f.node_id or "" for f in found)

    assert refused(set()) == ["1", "2", "3"]
    assert refused({"PackLoader"}) == ["2", "3"]
    assert refused({"*"}) == ["3"]
