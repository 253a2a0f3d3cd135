"""Store request images (decoded and verified by workflows.images) under unique names in ComfyUI's input dir.

Stored names are built here from the job id and an index, never taken from the request, so nothing
can escape the input directory and concurrent jobs never collide.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass
from pathlib import Path

from workflows.errors import JobError
from workflows.images import MAX_PIXELS, decode_image, safe_stem


@dataclass(frozen=True, slots=True)
class StoredImage:
    requested_name: str
    role: str | None
    stored_name: str
    path: Path
    width: int
    height: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        return self.width * self.height * self.frames


def store_image(
    input_dir: Path,
    job_key: str,
    index: int,
    requested_name: str,
    role: str | None,
    data: str,
    max_pixels: int = MAX_PIXELS,
    max_frames: int = 1024,
) -> StoredImage:
    """Decode, check and store one image; `max_pixels` is what is left of the job's pixel budget."""
    label = role or f"images[{index}] ({requested_name[:60]!r})"
    raw, ext, width, height, frames = decode_image(data, label, max_pixels, max_frames)
    stored_name = f"{job_key}_{index}_{safe_stem(requested_name)}.{ext}"
    path = input_dir / stored_name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
    except OSError as exc:  # a full disk, or an input directory that is missing, read-only or a file
        with contextlib.suppress(OSError):  # NotADirectoryError too, which missing_ok doesn't cover
            path.unlink(missing_ok=True)
        raise JobError(
            "DISK_FULL" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "INPUT_DIR_UNUSABLE",
            f"could not store {stored_name} in {input_dir}: {exc.strerror}",
            {"input_dir": str(input_dir), "errno": exc.errno},
        ) from None
    return StoredImage(requested_name, role, stored_name, path, width, height, frames)
