"""The field-drawn signature table (workflows/signatures.yaml) and the readers that use it. Pure: no server.

Each entry's example is its thread's own text and must be answered by that entry; the held-out split
(tests/faults/heldout.yaml) must come from other threads. The figures (detection rate, generic share)
are computed in tests/faults/figures.py and checked against docs/faults.md by tests/faults/test_figures.py.
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.conftest import REPO
from workflows import signatures
from workflows.analysis import import_findings
from workflows.errors import CODES
from workflows.failures import execution_failed
from workflows.findings import FINDINGS
from workflows.startup_log import PackImport, classify_start_failure

TABLE = signatures.signatures()
HELDOUT = yaml.safe_load((REPO / "tests/faults/heldout.yaml").read_text())
THREAD = re.compile(r"^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$")


def test_the_table_has_sixty_entries_each_traced_to_its_own_public_thread():
    assert len(TABLE) >= 60
    assert len({s.id for s in TABLE}) == len(TABLE)
    assert all(THREAD.match(s.source) for s in TABLE), [s.source for s in TABLE if not THREAD.match(s.source)]
    assert len({s.source for s in TABLE}) == len(TABLE)


@pytest.mark.parametrize("sig", TABLE, ids=[s.id for s in TABLE])
def test_each_example_is_answered_by_its_own_entry_with_a_documented_code(sig):
    assert sig.code in CODES
    if set(sig.stages) & {"start", "import"}:  # reported as diagnose findings too
        assert sig.code in FINDINGS
    assert sig.code not in signatures.GENERIC_CODES
    for stage in sig.stages:
        found = signatures.match(sig.example["type"], sig.example["message"], stage=stage)
        assert found is not None and found.signature.id == sig.id, (stage, found and found.signature.id)
        assert "{" not in found.cause and "{" not in found.fix  # every placeholder filled


def test_the_heldout_split_comes_from_other_threads():
    assert len(HELDOUT) >= 20
    used = {s.source for s in TABLE}
    assert not [c["id"] for c in HELDOUT if c["source"] in used]
    assert all(THREAD.match(c["source"]) and c["code"] in CODES for c in HELDOUT)


def test_a_node_exception_is_answered_with_the_signature_code_cause_and_fix():
    data = {
        "node_id": "7",
        "node_type": "WanVideoModelLoader",
        "exception_type": "ModuleNotFoundError",
        "exception_message": "No module named 'sageattention'",
        "traceback": ['  File "/comfyui/custom_nodes/ComfyUI-WanVideoWrapper/nodes.py", line 509, in loadmodel\n'],
    }
    err = execution_failed(data, "node failed")
    assert err.code == "ATTENTION_BACKEND_MISSING"
    assert "SageAttention ('sageattention')" in err.message and "No module named 'sageattention'" in err.message
    assert "WanVideoModelLoader (node 7)" in err.message
    assert "sdpa" in err.fix and err.fix != CODES[err.code].fix  # the signature's own fix
    assert err.details["signature"]["source"] == "https://github.com/Comfy-Org/ComfyUI/issues/12697"


def test_a_disk_full_during_a_job_is_still_disk_full():
    data = {"exception_type": "OSError", "exception_message": "[Errno 28] No space left on device"}
    assert execution_failed(data, "x").code == "DISK_FULL"


def test_nothing_matched_leads_with_the_exception_and_the_frame_that_raised_it():
    data = {
        "node_id": "2",
        "node_type": "RPTestRaise",
        "exception_type": "RuntimeError",
        "exception_message": "kaboom 42\nsecond line",
        "traceback": ['  File "/comfyui/custom_nodes/rp_test_nodes/__init__.py", line 37, in run\n'],
    }
    err = execution_failed(data, "node failed")
    assert err.code == "GENERATION_ERROR"
    assert err.message.startswith("RuntimeError: kaboom 42 (raised by RPTestRaise (node 2) at ")
    assert "rp_test_nodes/__init__.py:37 in run" in err.message and "rp_test_nodes/__init__.py:37" in err.fix
    assert "see details" not in err.fix


def test_a_pack_import_error_gets_the_signature_fix():
    broken = PackImport("ComfyUI-GGUF", "/c/custom_nodes/ComfyUI-GGUF", 0.0, True, "No module named 'gguf'")
    (finding,) = import_findings([broken])
    assert finding.code == "PACK_IMPORT_FAILED"
    assert "DEPENDENCY_MISSING" in finding.message and "'gguf'" in finding.fix and "ComfyUI-GGUF" in finding.fix


def test_comfyui_dying_at_start_with_a_known_text_gets_its_code_and_fix():
    lines = [
        "Traceback (most recent call last):",
        '  File "/comfyui/main.py", line 136, in <module>',
        "RuntimeError: operator torchvision::nms does not exist",
    ]
    failure = classify_start_failure(lines, exit_code=1)
    assert failure.code == "TORCH_BUILD_MISMATCH" and failure.fix and "index" in failure.fix


def test_comfyui_dying_after_ready_names_the_cause_in_its_death():
    lines = ["got prompt", "Traceback (most recent call last):", "RuntimeError: CUDA error: an illegal memory access"]
    lines[-1] += " was encountered"
    failure = classify_start_failure(lines, exit_code=1, was_ready=True)
    assert failure.code == "COMFY_DIED" and "GPU_FAULT" in failure.message and failure.signature


def test_stage_and_exception_filters():
    # an OutOfMemoryError type with any text is GPU memory; a port text is only a start-up signature
    assert signatures.match("torch.OutOfMemoryError", "weird", stage="execution").code == "GPU_OUT_OF_MEMORY"
    assert signatures.match("OSError", "[Errno 98] address already in use", stage="execution") is None
    assert signatures.match(None, "nothing we know", stage="start") is None


def test_a_node_no_pack_provides_says_so_and_a_near_class_is_named():
    from workflows.analysis import Context, analyze_workflow

    info = {"KSampler": {"input": {"required": {}}, "output": [], "output_node": False}}
    near = analyze_workflow({"1": {"class_type": "Ksampler ", "inputs": {}}}, Context(info))
    assert near[0].code == "NODE_MISSING" and "Did you mean 'KSampler'?" in near[0].message
    unknown = analyze_workflow({"1": {"class_type": "PrivateThing", "inputs": {}}}, Context(info))
    assert unknown[0].code == "NODE_MISSING" and "no pack the registry" in unknown[0].message
    assert "Install the custom node pack that provides it" not in unknown[0].fix


def test_a_signature_code_carries_comfyuis_output_even_when_its_table_row_does_not():
    # INVALID_IMAGE is also a request error (no ComfyUI involved); read from a node's exception it needs logs_tail
    from handler.config import Settings
    from handler.runtime import Runtime
    from handler.worker import error_response

    data = {"exception_type": "PIL.UnidentifiedImageError", "exception_message": "cannot identify image file 'x'"}
    err = execution_failed(data, "node failed")
    assert err.code == "INVALID_IMAGE" and not CODES[err.code].comfy_involved
    assert "logs_tail" in error_response(Runtime(Settings.from_env({})), err, "job-1")


def test_a_cublas_or_cudnn_allocation_failure_is_gpu_memory_not_a_gpu_fault():
    text = "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"
    assert signatures.match("RuntimeError", text).code == "GPU_OUT_OF_MEMORY"
    assert signatures.match("RuntimeError", "cuDNN error: CUDNN_STATUS_ALLOC_FAILED").code == "GPU_OUT_OF_MEMORY"
    assert signatures.match("RuntimeError", "CUDA error: CUBLAS_STATUS_EXECUTION_FAILED").code == "GPU_FAULT"
