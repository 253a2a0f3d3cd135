"""Request images decoded and verified in memory (Pillow), and the safe file stem stored images get. Pure.

The worker stores them in ComfyUI's input dir (handler.images), the client's direct mode uploads them
to ComfyUI (client.direct): both accept and refuse exactly the same images.
"""

from __future__ import annotations

import binascii
import io
import re
import warnings

import pybase64
from PIL import Image, UnidentifiedImageError

from workflows.errors import JobError

MAX_ENCODED_BYTES = 60 * 1024 * 1024
MAX_SIDE = 16384
MAX_PIXELS = 64 * 1024 * 1024  # one frame
_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tiff"}
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _count_frames(img: Image.Image, label: str, max_pixels: int, max_frames: int) -> int:
    """Walk an animated image's frames (headers only, nothing decoded) and stop as soon as the job's
    pixel budget or frame limit is passed: ComfyUI's LoadImage loads EVERY frame, so a 13 kB GIF of
    300 frames of 1024×1024 is 300 Mpx of work."""
    frames = pixels = 0
    while True:
        frames += 1
        pixels += img.width * img.height
        if frames > max_frames:
            raise JobError(
                "LIMIT_EXCEEDED", f"{label}: more than {max_frames} frames (MAX_FRAMES); every frame is loaded"
            )
        if pixels > max_pixels:
            raise JobError(
                "LIMIT_EXCEEDED",
                f"{label}: its frames add up to more than {max_pixels:,} pixels (MAX_INPUT_PIXELS, every frame "
                "of every input image of the job counts)",
            )
        try:
            img.seek(frames)
        except EOFError:
            return frames


def decode_image(
    data: str, label: str, max_pixels: int = MAX_PIXELS, max_frames: int = 1024
) -> tuple[bytes, str, int, int, int]:
    """base64 / data URI -> (bytes, extension, width, height, frames); JobError(INVALID_IMAGE) on anything
    wrong, LIMIT_EXCEEDED when its frames together pass `max_pixels` or `max_frames`."""
    if len(data) > MAX_ENCODED_BYTES:
        raise JobError(
            "INVALID_IMAGE",
            f"{label}: {len(data):,} characters of base64 is over the {MAX_ENCODED_BYTES // 1024 // 1024} MB limit",
        )
    payload = _DATA_URI.sub("", data.strip(), count=1)
    try:
        raw = pybase64.b64decode(payload, validate=True)  # as the stdlib's but stricter on excess padding; SIMD
    except (binascii.Error, ValueError):
        raise JobError("INVALID_IMAGE", f"{label}: not valid base64") from None
    if not raw:
        raise JobError("INVALID_IMAGE", f"{label}: empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw)) as img:
                fmt, (width, height) = img.format, img.size
                if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                    raise JobError(
                        "INVALID_IMAGE",
                        f"{label}: {width}×{height} is outside 1..{MAX_SIDE} per side / {MAX_PIXELS:,} pixels",
                    )
                frames = _count_frames(img, label, max_pixels, max_frames) if getattr(img, "is_animated", False) else 1
                if frames == 1 and width * height > max_pixels:
                    raise JobError(
                        "LIMIT_EXCEEDED",
                        f"{label}: {width}×{height} is over the job's remaining {max_pixels:,} pixels "
                        "(MAX_INPUT_PIXELS)",
                    )
            with Image.open(io.BytesIO(raw)) as img:
                img.verify()
    except JobError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise JobError("INVALID_IMAGE", f"{label}: not a readable image ({type(exc).__name__})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise JobError("INVALID_IMAGE", f"{label}: corrupt image data ({exc})"[:300]) from None
    ext = _FORMATS.get(fmt or "")
    if ext is None:
        raise JobError("INVALID_IMAGE", f"{label}: format {fmt} is not accepted (PNG, JPEG, WebP, BMP, GIF, TIFF)")
    return raw, ext, width, height, frames


def safe_stem(name: str) -> str:
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return _SAFE.sub("_", stem).strip("._")[:48] or "image"
