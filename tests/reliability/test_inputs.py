"""Arbitrary job input and hostile image inputs: never an uncaught exception, never a hang, every
rejection carries a documented code, and no file lands outside ComfyUI's input directory."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from handler.runtime import Runtime
from tests.conftest import REPO, png_base64, stack_settings
from tests.reliability.conftest import LONG
from tests.test_handler_inprocess import call
from workflows.errors import CODES

pytestmark = pytest.mark.stack
FUZZ_EXAMPLES = 10_000 if LONG else 500


@pytest.fixture(scope="module")
def runtime(stack):
    # The deadline bounds a hang (fuzzed input must never hang); it is not a speed target: a cold first
    # prompt on a loaded 2-core machine took over 20 s, so 60.
    rt = Runtime(stack_settings(stack, GENERATE_TIMEOUT_S="60"))
    yield rt
    rt.events.close()


def files_under(path) -> set:
    return {p for p in path.rglob("*") if p.is_file()}


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.text(alphabet="../\\\x00é漢🙂", max_size=12)
    | st.just("A" * 5000)
)
junk = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=12
)
keys = st.sampled_from(
    [
        "mode",
        "test",
        "diagnose",
        "workflow",
        "images",
        "image_base64",
        "end_image_base64",
        "seed",
        "steps",
        "cfg",
        "frames",
        "fps",
        "width",
        "height",
        "prompt",
        "overrides",
        "timeout_s",
        "checksums",
        "unknown_key",
    ]
)
modes = st.sampled_from(["test", "diagnose", "generate", "GENERATE", "", "rm -rf", None, 3])
job_inputs = (
    junk
    | st.dictionaries(keys, junk, max_size=5)
    | st.builds(lambda m, extra: {"mode": m, **extra}, modes, st.dictionaries(keys, junk, max_size=3))
)


def test_arbitrary_job_input_never_crashes_or_hangs(runtime, stack, figures):
    input_dir = stack.comfy_dir / "input"
    before = files_under(input_dir)
    seen_codes: dict[str, int] = {}
    slowest = [0.0]

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(job_input=job_inputs)
    def run(job_input):
        started = time.monotonic()
        result = call(runtime, job_input, "fuzz")
        slowest[0] = max(slowest[0], time.monotonic() - started)
        assert isinstance(result, dict)
        json.dumps(result)  # JSON-serialisable, always
        if "error" in result:
            body = json.loads(result["error"])
            assert body["error_code"] in CODES and body["error_code"] != "INTERNAL_ERROR", body
            seen_codes[body["error_code"]] = seen_codes.get(body["error_code"], 0) + 1

    run()
    assert files_under(input_dir) == before  # nothing stored, nothing left behind
    # No input made a call hang until the runtime's 60 s deadline (a fuzzed small `timeout_s` may
    # legitimately end in TIMEOUT sooner: that is an answer, not a hang).
    assert slowest[0] < 60, slowest[0]
    figures["fuzzed_inputs"] = {
        "examples": FUZZ_EXAMPLES,
        "rejections_by_code": seen_codes,
        "slowest_call_s": round(slowest[0], 3),
    }


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares width×height (for 0×0 and absurd sizes Pillow refuses to create)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, "PNG")  # 144 Mpx, a few KB compressed
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


HOSTILE_IMAGES = {
    "invalid base64": "%%%not-base64%%%",
    "non-image bytes": b64(b"MZ\x90\x00 this is an executable, not an image"),
    "decompression bomb": None,  # built lazily: 144 Mpx
    "0x0": b64(_png_header_only(0, 0)),
    "huge dimensions": b64(_png_header_only(100_000, 100_000)),
    "truncated png": png_base64()[:60],
    "empty": "",
}


@pytest.mark.parametrize("case", list(HOSTILE_IMAGES))
def test_hostile_image_bytes_are_rejected(runtime, stack, case):
    data = HOSTILE_IMAGES[case] if HOSTILE_IMAGES[case] is not None else b64(_bomb())
    before = files_under(stack.comfy_dir)
    result = call(runtime, {"workflow": "smoke_i2v", "image_base64": data})
    assert json.loads(result["error"])["error_code"] == "INVALID_IMAGE", result["error"][:300]
    assert files_under(stack.comfy_dir) == before


@pytest.mark.parametrize(
    "name",
    [
        "../../../../tmp/pwned.png",
        "/etc/passwd",
        "a\x00b.png",
        "..",
        "漢字🙂.png",
        "sub/dir/../../x.png",
        "C:\\Windows\\evil.png",
        "x" * 5000,
    ],
)
def test_hostile_image_names_never_escape_the_input_dir(runtime, stack, tmp_path, name):
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": name}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "n"}},
    }
    input_dir = stack.comfy_dir / "input"
    # Where a naive join of the name would write: from the input dir, from ComfyUI's dir, or as given.
    targets = {
        Path(os.path.normpath(os.path.join(base, name.replace("\x00", ""))))
        for base in (input_dir, stack.comfy_dir, REPO)
    }
    targets = {p for p in targets if not p.is_relative_to(input_dir)}
    assert targets or name in ("漢字🙂.png", "x" * 5000), name  # every traversal name is checked somewhere
    before = {p: _fingerprint(p) for p in targets}
    outside_before = files_under(stack.run_dir) - files_under(input_dir)
    result = call(runtime, {"workflow": workflow, "images": [{"name": name, "image": png_base64(8, 8)}]})
    assert "error" not in result, result.get("error", "")[:300]  # the name is mapped to a safe stored name
    assert result["outputs"][0]["width"] == 8
    assert {p: _fingerprint(p) for p in targets} == before  # nothing written where the traversal points
    outside_after = files_under(stack.run_dir) - files_under(input_dir)
    assert {p for p in outside_after - outside_before if "job_" in p.name} == set()
    assert not any(p.name.startswith("job_") for p in input_dir.iterdir())  # cleaned up


def _fingerprint(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def test_nan_and_infinite_numbers_are_rejected(runtime):
    for value in (math.nan, math.inf, -1):
        result = call(runtime, {"workflow": "smoke_i2v", "image_base64": png_base64(), "fps": value})
        assert json.loads(result["error"])["error_code"] == "BAD_INPUT"


def _gif(frames: int, side: int) -> bytes:
    images = []
    for i in range(frames):
        image = Image.new("L", (side, side), 0)
        image.putpixel((i % side, 0), 255)  # one changed pixel: each frame is stored as a 1×1 patch
        images.append(image)
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:])
    return buf.getvalue()


def test_every_frame_of_every_input_image_counts_against_the_pixel_budget(stack):
    """MAX_INPUT_PIXELS is the job's, not one image's: frames of animated images count, and images add up."""
    rt = Runtime(stack_settings(stack, MAX_INPUT_PIXELS=str(40 * 64 * 64), MAX_FRAMES="50"))
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "a.gif"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "frames"}},
    }
    before = files_under(stack.comfy_dir)
    try:
        ok = call(rt, {"workflow": workflow, "images": [{"name": "a.gif", "image": b64(_gif(30, 64))}]})
        gif = b64(_gif(30, 64))
        two = call(rt, {"workflow": workflow, "images": [{"name": "a.gif", "image": gif}, {"name": "b", "image": gif}]})
        many = call(rt, {"workflow": workflow, "images": [{"name": "a.gif", "image": b64(_gif(51, 8))}]})
    finally:
        rt.events.close()
    assert "error" not in ok, ok.get("error", "")[:300]
    assert ok["outputs"][0]["width"] == 64 and len(ok["outputs"]) == 30  # ComfyUI loaded every frame
    assert json.loads(two["error"])["error_code"] == "LIMIT_EXCEEDED" and "MAX_INPUT_PIXELS" in two["error"]
    assert json.loads(many["error"])["error_code"] == "LIMIT_EXCEEDED" and "MAX_FRAMES" in many["error"]
    assert files_under(stack.comfy_dir) == before
