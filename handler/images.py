"""Decode request images, verify them with Pillow and store them under unique names in ComfyUI's input dir.

Stored names are built here from the job id and an index, never taken from the request, so nothing
can escape the input directory and concurrent jobs never collide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workflows.errors import JobError
from workflows.images import decode_image, safe_stem

__all__ = ["StoredImage", "decode_image", "safe_stem", "store_image"]


@dataclass(frozen=True, slots=True)
class StoredImage:
    requested_name: str
    role: str | None
    stored_name: str
    path: Path
    width: int
    height: int


def store_image(
    input_dir: Path, job_key: str, index: int, requested_name: str, role: str | None, data: str
) -> StoredImage:
    raw, ext, width, height = decode_image(data, role or f"images[{index}] ({requested_name[:60]!r})")
    stored_name = f"{job_key}_{index}_{safe_stem(requested_name)}.{ext}"
    path = input_dir / stored_name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise JobError(
            "DISK_FULL" if exc.errno == 28 else "INTERNAL_ERROR", f"could not store {stored_name}: {exc.strerror}"
        ) from None
    return StoredImage(requested_name, role, stored_name, path, width, height)
