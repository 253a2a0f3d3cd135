"""INTERNAL_ERROR: what the worker answers when something it did not foresee goes wrong — a code and a
message that names the job, the traceback only in the worker's log, never in the answer."""

from __future__ import annotations

import logging

import pytest

from handler.runtime import Runtime
from handler.worker import handle
from tests.conftest import png_base64, stack_settings

pytestmark = pytest.mark.stack


def test_an_unforeseen_failure_is_internal_error_with_the_traceback_only_in_the_log(stack, tmp_path, caplog):
    # A deployment fault nothing checks for: the input directory is a file.
    not_a_dir = tmp_path / "input"
    not_a_dir.write_text("a file where the input directory should be")
    rt = Runtime(stack_settings(stack, COMFY_INPUT_DIR=str(not_a_dir)))
    job = {"workflow": "smoke_i2v", "image_base64": png_base64(16, 16), "frames": 2, "width": 16, "height": 16}
    with caplog.at_level(logging.ERROR, logger="handler.worker"):
        out = handle({"id": "internal-1", "input": job}, rt)
    assert out["error_code"] == "INTERNAL_ERROR", out
    assert out["error_message"] == (
        "NotADirectoryError in the worker (job internal-1); the traceback is in the worker's log"
    )
    assert "Traceback" not in str(out) and str(not_a_dir) not in out["error_message"]
    assert any("NotADirectoryError" in (r.exc_text or "") for r in caplog.records)
    assert not_a_dir.read_text().startswith("a file")  # nothing written over it
