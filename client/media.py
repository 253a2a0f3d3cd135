"""Classify and inspect output files in memory: kind from the extension, dimensions and frames by decoding.

Pillow decodes images; PyAV (optional for the client: `pip install av`) decodes videos. A decode
failure is reported in the result, never raised: the caller decides whether it matters.
"""

from __future__ import annotations

import io
from fractions import Fraction
from typing import Any

from workflows.outputs import KIND_BY_EXT, extension, kind_of, mime_of

__all__ = ["KIND_BY_EXT", "extension", "kind_of", "mime_of", "probe"]

IMAGE_EXTS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")


def probe(data: bytes, filename: str) -> dict[str, Any]:
    """{format, width, height} for images; plus frames, fps, duration_sec for videos; or probe_error."""
    kind = kind_of(filename)
    try:
        if kind == "image":
            from PIL import Image

            with Image.open(io.BytesIO(data)) as img:
                img.load()  # a full decode: a truncated file fails here
                return {"format": (img.format or "").lower(), "width": img.width, "height": img.height}
        if kind == "video":
            return _probe_video(data)
    except ImportError as exc:
        return {"probe_error": f"cannot decode {kind}: {exc.name} is not installed (pip install av)"}
    except Exception as exc:  # any decoder error means the file is not what it claims
        return {"probe_error": f"{type(exc).__name__}: {exc}"[:300]}
    return {}


def _probe_video(data: bytes) -> dict[str, Any]:
    import av

    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))  # decode every frame: counts what a player shows
        rate = stream.average_rate or Fraction(0)
        return {
            "container": container.format.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "frames": frames,
            "fps": round(float(rate), 3),
            "duration_sec": round(frames / float(rate), 3) if rate else None,
        }


def thumbnail(data: bytes, filename: str, size: int = 192) -> str | None:
    """A small JPEG data URI of an image, or of a video's first frame (its poster); None when it won't decode."""
    import base64

    from PIL import Image

    try:
        if kind_of(filename) == "video":
            import av

            with av.open(io.BytesIO(data), mode="r") as container:
                img = next(container.decode(video=0)).to_image()
        else:
            img = Image.open(io.BytesIO(data))
            img.load()
        img = img.convert("RGB")
        img.thumbnail((size, size))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=80)
    except Exception:  # a thumbnail is a nicety: the probe already reports what does not decode
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
