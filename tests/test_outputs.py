"""The output probe: a video's size, frame count and rate read without decoding a frame (handler.outputs).

Real files, encoded here with PyAV (the library ComfyUI's SaveVideo and VideoHelperSuite write with),
in the containers and codecs a workflow produces; each probe is checked against a full decode.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import pytest
from PIL import Image

from handler.outputs import OutputFile, probe


def _encode(path: Path, codec: str, pix_fmt: str, frames: int = 9, size: tuple[int, int] = (96, 64)) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(6))
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        for i in range(frames):
            frame = av.VideoFrame.from_image(Image.new("RGB", size, (i * 25 % 256, 90, 200 - i * 20)))
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def _decoded(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [
        ("a.mp4", "h264", "yuv420p"),
        ("a.webm", "libvpx-vp9", "yuv420p"),
        ("a.mkv", "mpeg4", "yuv420p"),
        ("a.avi", "mpeg4", "yuv420p"),
        ("a.gif", "gif", "rgb8"),
    ],
)
def test_video_probe_matches_a_full_decode(tmp_path: Path, name: str, codec: str, pix_fmt: str):
    path = tmp_path / name
    _encode(path, codec, pix_fmt)
    out = OutputFile("9", "video", name, "", "video/x", path, path.stat().st_size, {})
    probe(out)
    frames, width, height = _decoded(path)
    assert "probe_error" not in out.meta
    assert (out.meta["frames"], out.meta["width"], out.meta["height"]) == (frames, width, height) == (9, 96, 64)
    if codec != "gif":  # GIF stores per-frame delays in 1/100 s: 6 fps is not exact there
        assert out.meta["fps"] == 6 and out.meta["duration_sec"] == 1.5


def test_a_video_under_another_extension_is_still_probed(tmp_path: Path):
    path = tmp_path / "a.webm"
    _encode(path, "libvpx-vp9", "yuv420p")
    path = path.rename(tmp_path / "mislabelled.mp4")  # the quick open, told it is an MP4, fails
    out = OutputFile("9", "video", path.name, "", "video/mp4", path, path.stat().st_size, {})
    probe(out)
    assert (out.meta["frames"], out.meta["width"], out.meta["height"], out.meta["fps"]) == (9, 96, 64, 6)


def test_a_file_that_is_no_video_keeps_its_output_with_the_cause(tmp_path: Path):
    path = tmp_path / "broken.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    out = OutputFile("9", "video", path.name, "", "video/mp4", path, path.stat().st_size, {})
    probe(out)
    assert out.meta.keys() == {"probe_error"}
