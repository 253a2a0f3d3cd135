"""The held-out split (tests/faults/heldout.yaml) staged against the real stack.

Execution faults: a real custom node (rp_test_nodes' RPTestRaiseAs) raises the thread's exception type
and text inside the real ComfyUI; the job goes through the real RunPod local API. Import faults: real
packs raise the thread's error while the real ComfyUI imports them; diagnose reads its start-up log.
Start faults: ComfyUI ends with the thread's error, through the real entrypoint. Each must be answered
as tests/faults/figures.py computes it (the figure in docs/faults.md is the real worker's answer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import make_stack, runsync
from tests.faults.figures import answer, heldout
from tests.start_failures.test_catalogue import fake_comfy, stage, staged  # noqa: F401 (stage is a fixture)

pytestmark = pytest.mark.stack

EXECUTION = [c for c in heldout() if c["stage"] == "execution"]
IMPORT = [c for c in heldout() if c["stage"] == "import"]
START = [c for c in heldout() if c["stage"] == "start"]

# The stand-in for the exception class a report names, shared by the node and the packs below.
RAISE_AS = """
import builtins


def exception_class(name):
    module, _, cls = name.rpartition(".")
    builtin = getattr(builtins, cls, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException) and module in ("", "builtins"):
        return builtin
    base = builtin if isinstance(builtin, type) and issubclass(builtin, Exception) else Exception
    return type(cls, (base,), {"__module__": module or "builtins"})
"""


@pytest.mark.parametrize("case", EXECUTION, ids=[c["id"] for c in EXECUTION])
def test_a_node_raising_the_field_text_gets_the_computed_answer(stack, case):
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {
            "class_type": "RPTestRaiseAs",
            "inputs": {"image": ["1", 0], "exception_type": case["type"], "message": case["message"]},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "heldout"}},
    }
    envelope = runsync(stack, {"workflow": workflow}, timeout=120)
    assert envelope["status"] == "FAILED", envelope
    err = json.loads(envelope["error"])
    code, fix = answer("execution", case["type"], case["message"])
    assert err["error_code"] == code, err
    assert err["details"]["exception_type"] == case["type"]
    if code == "GENERATION_ERROR":  # nothing matched: the fix names the real raising frame
        assert "rp_test_nodes/__init__.py:" in err["fix"]
    else:
        assert err["fix"] == fix
    assert case["message"].splitlines()[0][:60] in err["error_message"]


@pytest.fixture(scope="module")
def import_stack(tmp_path_factory: pytest.TempPathFactory):
    stack = make_stack(tmp_path_factory.mktemp("heldout-imports"))
    for case in IMPORT:
        pack = stack.comfy_dir / "custom_nodes" / f"rp_heldout_{case['id'].replace('-', '_')}"
        pack.mkdir(parents=True)
        body = f"{RAISE_AS}\nraise exception_class({case['type']!r})({case['message']!r})\n"
        (pack / "__init__.py").write_text(body)
    stack.start(wait=240)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def import_findings_seen(import_stack) -> list[dict]:
    report = runsync(import_stack, {"mode": "diagnose"}, timeout=120)["output"]
    return [f for f in report["findings"] if f["code"] == "PACK_IMPORT_FAILED"]


@pytest.mark.parametrize("case", IMPORT, ids=[c["id"] for c in IMPORT])
def test_a_pack_failing_to_import_with_the_field_text_gets_the_computed_answer(import_findings_seen, case):
    name = f"rp_heldout_{case['id'].replace('-', '_')}"
    hits = [f for f in import_findings_seen if name in f["message"]]
    assert hits, [f["message"] for f in import_findings_seen]
    code, _ = answer("import", case["type"], case["message"])
    assert Path(hits[0]["path"]).name == name
    if code != "PACK_IMPORT_FAILED":  # a signature named the cause: its code in the message, its fix
        assert f"[{code}: " in hits[0]["message"] and name in hits[0]["fix"], hits[0]


@pytest.mark.parametrize("case", START, ids=[c["id"] for c in START])
def test_comfyui_ending_with_the_field_text_gets_the_computed_answer(stage, tmp_path, case):  # noqa: F811
    body = (
        f"{RAISE_AS}\nprint('Starting ComfyUI (held-out fault)', flush=True)\n"
        f"raise exception_class({case['type']!r})({case['message']!r})\n"
    )
    code, fix = answer("start", case["type"], case["message"])
    seen = staged(stage(**fake_comfy(tmp_path, body)), code)
    assert seen["health"]["cause"]["fix"] == fix == seen["error"]["fix"]
