"""A broken input directory answers INPUT_DIR_UNUSABLE with the directory and a fix; anything the
worker did not foresee answers INTERNAL_ERROR: a message that names the job and the exception type,
the traceback only in the worker's log, never in the answer."""

from __future__ import annotations

import logging

from handler import generate as generate_module
from handler.config import Settings
from handler.runtime import Runtime
from handler.worker import handle
from tests.conftest import png_base64

JOB = {"workflow": "smoke_i2v", "image_base64": png_base64(16, 16), "frames": 2, "width": 16, "height": 16}


def _runtime(tmp_path, **env: str) -> Runtime:
    base = {
        "COMFY_URL": "http://127.0.0.1:9",  # these jobs fail before ComfyUI is asked anything
        "COMFY_INPUT_DIR": str(tmp_path / "in"),
        "COMFY_OUTPUT_DIR": str(tmp_path / "out"),
        "COMFY_TEMP_DIR": str(tmp_path / "temp"),
        "COMFY_LOG": str(tmp_path / "comfyui.log"),
    }
    for name in ("in", "out", "temp"):
        (tmp_path / name).mkdir()
    return Runtime(Settings.from_env({**base, **env}))


def test_an_input_directory_that_is_a_file_is_input_dir_unusable(tmp_path):
    not_a_dir = tmp_path / "input-file"
    not_a_dir.write_text("a file where the input directory should be")
    out = handle({"id": "inputdir-1", "input": JOB}, _runtime(tmp_path, COMFY_INPUT_DIR=str(not_a_dir)))
    assert out["error_code"] == "INPUT_DIR_UNUSABLE", out
    assert out["error_message"].endswith(f"in {not_a_dir}: Not a directory")
    assert "COMFY_INPUT_DIR" in out["fix"] and out["details"]["input_dir"] == str(not_a_dir)
    assert not_a_dir.read_text().startswith("a file")  # nothing written over it


def test_an_unforeseen_exception_is_internal_error_with_the_traceback_only_in_the_log(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise KeyError("a bug the worker did not foresee")

    monkeypatch.setattr(generate_module, "store_inputs", broken)  # an injected bug, the only way to have one
    with caplog.at_level(logging.ERROR, logger="handler.worker"):
        out = handle({"id": "internal-1", "input": JOB}, _runtime(tmp_path))
    assert out["error_code"] == "INTERNAL_ERROR", out
    assert out["error_message"] == "KeyError in the worker (job internal-1); the traceback is in the worker's log"
    assert "Traceback" not in str(out) and "did not foresee" not in str(out)
    assert any("a bug the worker did not foresee" in (r.exc_text or "") for r in caplog.records)
