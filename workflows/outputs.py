"""What kind of output a file is. Pure; shared by the worker and the client so both classify alike.

By file type, not by ComfyUI's history key: ComfyUI lists MP4s under 'images' and
VideoHelperSuite's videos under 'gifs'.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from workflows.responses import GenerateResponse

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


# ComfyUI's history lists files under these keys (VideoHelperSuite: gifs; core SaveVideo: images/video).
FILE_KEYS = ("images", "gifs", "videos", "video", "audio", "files")


@dataclass(frozen=True, slots=True)
class OutputRef:
    """One file a prompt produced, as ComfyUI's history names it; where its bytes live is the caller's business."""

    node_id: str
    filename: str
    subfolder: str
    type: str  # ComfyUI's folder type: output | temp | input
    kind: str
    mime: str


def output_refs(history_outputs: Mapping[str, Any]) -> list[OutputRef]:
    """Every file of a prompt's history `outputs`, in node order (the worker reads them from disk,
    the client's direct mode through /view)."""
    refs = []
    for node_id, output in history_outputs.items():
        if not isinstance(output, Mapping):
            continue
        for key in FILE_KEYS:
            for item in output.get(key) or []:
                if isinstance(item, Mapping) and isinstance(item.get("filename"), str):
                    name = item["filename"]
                    refs.append(
                        OutputRef(
                            str(node_id),
                            name,
                            str(item.get("subfolder") or ""),
                            str(item.get("type") or "output"),
                            kind_of(name),
                            mime_of(name),
                        )
                    )
    return refs


def text_items(history_outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The text outputs (e.g. a 'text' list from a show-text node) as response items."""
    return [
        {"node_id": str(node_id), "kind": "text", "mime": "text/plain", "text": t, "size_bytes": len(t.encode())}
        for node_id, output in history_outputs.items()
        if isinstance(output, Mapping)
        for t in output.get("text") or []
        if isinstance(t, str)
    ]


def generate_response(
    workflow_id: str,
    prompt_id: str,
    outputs: list[dict[str, Any]],
    timings: dict[str, Any],
    seed: int | None = None,
    from_history: bool = False,
) -> GenerateResponse:
    """The documented generate answer; a video's fields are lifted to the top for simple clients."""
    response: GenerateResponse = {
        "workflow": workflow_id,
        "prompt_id": prompt_id,
        "outputs": outputs,
        "timings": timings,
        "status": "success",
    }
    if from_history:
        response["recovered_from_history"] = True
    video = next((o for o in outputs if o.get("kind") == "video"), None)
    if video is not None:
        if "base64" in video:
            response["video_base64"] = video["base64"]
        else:
            response["video_url"] = video.get("url")
        response["fps"], response["frames"] = video.get("fps"), video.get("frames")
        response["duration_sec"] = video.get("duration_sec")
        response["metadata"] = {k: video.get(k) for k in ("width", "height", "mime", "size_bytes", "filename")}
    if seed is not None:
        response["seed"] = seed
    return response
