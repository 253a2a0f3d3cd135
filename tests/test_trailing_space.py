"""A model name with a stray trailing space keeps its "did you mean" on every path a value takes:
registered, inline, editor-converted and overridden, whether or not the file is on the worker.

Issue 26's regression: with the file missing too, a trailing space came back as a bare MODEL_MISSING.
Judged by the real analysis against the real /object_info of the session's ComfyUI.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.test_analysis import REGISTRY, _index, ctx
from tests.test_ui_convert import node, ui
from workflows.analysis import analyze_workflow, model_lookup
from workflows.models import ModelFile
from workflows.patch import apply_parameters
from workflows.ui_convert import ui_to_api

ENTRY = REGISTRY.get("sdxl_basic")
SPEC = next(m for m in ENTRY.models if m.folder == "checkpoints")
LOADER = next(k for k, v in ENTRY.workflow().items() if v["class_type"] == "CheckpointLoaderSimple")


def _present() -> dict:
    """The checkpoint is on the worker: ComfyUI lists it."""
    path = f"/comfyui/models/checkpoints/{SPEC.name}"
    return {
        "folders": {"checkpoints": [SPEC.name]},
        "files": [ModelFile("checkpoints", SPEC.name, path, 1, "image", True)],
    }


def _missing() -> dict:
    return {"folders": {"checkpoints": []}, "files": []}


def _meant(findings) -> list:
    """The MODEL_MISSING findings that say what was meant."""
    return [f for f in findings if f.code == "MODEL_MISSING" and f"Did you mean {SPEC.name!r}?" in f.message]


def _judge(object_info, workflow, disk, entry=None):
    context = ctx(object_info, _index(disk["folders"], disk["files"]), entry=entry)
    if entry is None:  # an inline job: the registry's names and URLs are known to every job
        context = replace(context, known_models=model_lookup(REGISTRY))
    return analyze_workflow(workflow, context, entry)


@pytest.mark.parametrize("disk", [_present(), _missing()], ids=["file-present", "file-missing"])
def test_registered(object_info, disk):
    workflow = ENTRY.workflow()
    workflow[LOADER]["inputs"]["ckpt_name"] = SPEC.name + " "
    found = _meant(_judge(object_info, workflow, disk, ENTRY))
    assert found, _judge(object_info, workflow, disk, ENTRY)
    assert repr(SPEC.name) in found[0].fix


@pytest.mark.parametrize("disk", [_present(), _missing()], ids=["file-present", "file-missing"])
def test_inline(object_info, disk):
    workflow = ENTRY.workflow()
    workflow[LOADER]["inputs"]["ckpt_name"] = SPEC.name + " "
    found = _meant(_judge(object_info, workflow, disk))
    assert found
    if not disk["files"] and SPEC.url:  # missing too: the fix still carries the download URL
        assert SPEC.url in found[0].fix


@pytest.mark.parametrize("disk", [_present(), _missing()], ids=["file-present", "file-missing"])
def test_editor_converted(object_info, disk):
    graph = ui(
        [
            node(1, "CheckpointLoaderSimple", [SPEC.name + " "], outputs=[("MODEL", "MODEL", []), ("VAE", "VAE", [1])]),
            node(2, "EmptyLatentImage", [64, 64, 1], outputs=[("LATENT", "LATENT", [2])]),
            node(
                3, "VAEDecode", inputs=[("samples", "LATENT", 2), ("vae", "VAE", 1)], outputs=[("IMAGE", "IMAGE", [3])]
            ),
            node(4, "SaveImage", ["x"], inputs=[("images", "IMAGE", 3)]),
        ],
        [[1, 1, 2, 3, 1, "VAE"], [2, 2, 0, 3, 0, "LATENT"], [3, 3, 0, 4, 0, "IMAGE"]],
    )
    converted = ui_to_api(graph, object_info).workflow
    assert converted["1"]["inputs"]["ckpt_name"] == SPEC.name + " "  # the converter keeps the value as saved
    assert _meant(_judge(object_info, converted, disk))


@pytest.mark.parametrize("disk", [_present(), _missing()], ids=["file-present", "file-missing"])
def test_overridden(object_info, disk):
    workflow = apply_parameters(ENTRY.workflow(), ENTRY, {}, overrides={LOADER: {"ckpt_name": SPEC.name + " "}})
    found = _meant(_judge(object_info, workflow, disk, ENTRY))
    assert found and found[0].node_id == LOADER and found[0].input == "ckpt_name"


def test_a_registered_name_written_exactly_is_not_mistaken_for_a_sibling(object_info):
    # The registry also knows a file of the same stem (another extension): the exact, registered name
    # that is only missing must not get "did you mean" the sibling.
    sibling = replace(SPEC, name=SPEC.name.rsplit(".", 1)[0] + ".ckpt", node=None, input=None)
    entry = replace(ENTRY, models=(*ENTRY.models, sibling))
    found = [f for f in _judge(object_info, entry.workflow(), _missing(), entry) if f.code == "MODEL_MISSING"]
    assert found and not [f for f in found if "Did you mean" in f.message], [f.message for f in found]
