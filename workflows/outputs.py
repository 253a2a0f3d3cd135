"""What kind of output a file is. Pure; shared by the worker and the client so both classify alike.

By file type, not by ComfyUI's history key: ComfyUI lists MP4s under 'images' and
VideoHelperSuite's videos under 'gifs'.
"""

from __future__ import annotations

import mimetypes

KIND_BY_EXT: dict[str, str] = {
    **dict.fromkeys(("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff"), "image"),
    **dict.fromkeys(("gif", "mp4", "webm", "mov", "mkv", "avi", "m4v"), "video"),
    **dict.fromkeys(("wav", "mp3", "flac", "ogg", "opus", "m4a"), "audio"),
    **dict.fromkeys(("txt", "json"), "text"),
}


def extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def kind_of(filename: str) -> str:
    """image | video | audio | text | file."""
    return KIND_BY_EXT.get(extension(filename), "file")


def mime_of(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"
