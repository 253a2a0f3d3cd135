"""Every workflow input that names a file stays inside ComfyUI's input, output and temp directories. Pure.

Two halves. Here, from the workflow alone: which inputs name a file (`file_inputs`), and the refusals
that need no disk (absolute paths, `..`, URLs, NUL bytes). The handler then resolves each remaining
reference's real path and stats it (handler.generate.path_facts) and hands the facts back to
`path_findings`: a symlink out of the directory, a device, FIFO or socket is refused the same way.
ComfyUI joins a loader's value onto its directory with os.path.join, so an absolute value replaces
the directory and `..` climbs out of it; a "[output]" / "[temp]" suffix picks another directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from workflows.findings import Finding, error

Base = Literal["input", "output", "temp", "any"]
# How a value names its file: "name" relative to the base directory (ComfyUI's annotated names),
# "folder" a subfolder name (relative, pure checks only), "path" a filesystem path (VHS *Path nodes:
# must be absolute and resolve inside one of the directories).
Kind = Literal["name", "folder", "path"]

# (class_type, input) -> (base directory, kind). Verified against ComfyUI 0.3.75 and VideoHelperSuite.
FILE_INPUTS: Mapping[str, Mapping[str, tuple[Base, Kind]]] = {
    "LoadImage": {"image": ("input", "name")},
    "LoadImageMask": {"image": ("input", "name")},
    "LoadImageOutput": {"image": ("output", "name")},
    "LoadLatent": {"latent": ("input", "name")},
    "LoadVideo": {"file": ("input", "name")},
    "LoadAudio": {"audio": ("input", "name")},
    "WebcamCapture": {"image": ("input", "name")},
    "Load3D": {"model_file": ("input", "name")},
    "LoadImageDataSetFromFolder": {"folder": ("input", "name")},
    "LoadImageTextDataSetFromFolder": {"folder": ("input", "name")},
    "SaveImageDataSetToFolder": {"folder_name": ("output", "name")},
    "SaveImageTextDataSetToFolder": {"folder_name": ("output", "name")},
    "SaveTrainingDataset": {"folder_name": ("output", "name")},
    "LoadTrainingDataset": {"folder_name": ("output", "name")},
    "VHS_LoadVideo": {"video": ("input", "name")},
    "VHS_LoadVideoFFmpeg": {"video": ("input", "name")},
    "VHS_LoadImages": {"directory": ("input", "name")},
    "VHS_LoadAudioUpload": {"audio": ("input", "name")},
    "VHS_LoadVideoPath": {"video": ("any", "path")},
    "VHS_LoadVideoFFmpegPath": {"video": ("any", "path")},
    "VHS_LoadImagePath": {"image": ("any", "path")},
    "VHS_LoadImagesPath": {"directory": ("any", "path")},
    "VHS_LoadAudio": {"audio_file": ("any", "path")},
    "VHS_SelectLatest": {"filename_prefix": ("any", "path")},
}
# Inputs of any node whose name says it names a folder or file (subfolder values of custom packs).
GENERIC_INPUTS = frozenset(
    {"subfolder", "folder", "folder_name", "directory", "path", "file_path", "filepath", "output_path", "save_path"}
)
_ANNOTATION = re.compile(r"^(?P<name>.*?)\s*\[(?P<base>input|output|temp)\]$")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]+://|data:|file:)", re.IGNORECASE)  # http://, s3://, data:, file:
_DRIVE = re.compile(r"^[A-Za-z]:")
FIX = (
    "Name a file inside ComfyUI's input directory by its plain name (send it with `images`, it is stored "
    "there); absolute paths, '..', URLs, symlinks out and device files are refused."
)


@dataclass(frozen=True, slots=True)
class FileRef:
    node_id: str
    class_type: str
    input: str
    value: str
    base: Base  # after a "[output]"-style annotation
    kind: Kind
    relative: str  # the value without its annotation: what is joined onto the base directory


@dataclass(frozen=True, slots=True)
class PathFact:
    """What the handler saw on disk for one (base, relative) reference."""

    inside: bool  # the real path (symlinks resolved) is inside the allowed directory
    special: bool = False  # a device, FIFO or socket


def file_inputs(workflow: Mapping[str, Any]) -> Iterator[FileRef]:
    """Every literal string input that names a file or folder."""
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type = str(node.get("class_type"))
        known = FILE_INPUTS.get(class_type, {})
        for name, value in node["inputs"].items():
            if not isinstance(value, str):
                continue
            if name in known:
                base, kind = known[name]
            elif name in GENERIC_INPUTS:
                base, kind = "any", "folder"
            else:
                continue
            relative = value.strip().strip('"') if kind == "path" else value  # as VHS reads it
            if kind == "name" and (m := _ANNOTATION.match(value)):
                relative, base = m["name"], cast(Base, m["base"])  # _ANNOTATION matches only those names
            yield FileRef(str(node_id), class_type, name, value, base, kind, relative)


def pure_problem(ref: FileRef) -> str | None:
    """Why this reference is refused without looking at the disk (None: look at the disk)."""
    value = ref.relative.strip().strip('"')  # VHS strips whitespace and quotes before use
    if "\x00" in value:
        return "contains a NUL byte"
    if _URL.match(value):
        return "is a URL; jobs may only name local files"
    if ".." in re.split(r"[\\/]+", value):
        return "climbs out of its directory with '..'"
    if value.startswith("~"):
        return "starts with '~'"
    absolute = value.startswith(("/", "\\")) or bool(_DRIVE.match(value))
    if ref.kind == "path":
        return None if absolute else "is a relative path; give an absolute path inside ComfyUI's directories"
    if absolute:
        return "is an absolute path"
    return None


def path_findings(workflow: Mapping[str, Any], facts: Mapping[tuple[str, str], PathFact] | None) -> list[Finding]:
    found = []
    for ref in file_inputs(workflow):
        why = pure_problem(ref)
        if why is None and facts is not None and ref.kind != "folder":
            fact = facts.get((ref.base, ref.relative))
            if fact is not None and not fact.inside:
                why = "resolves outside ComfyUI's input/output/temp directories (a symlink?)"
            elif fact is not None and fact.special:
                why = "is a device, FIFO or socket, not a regular file"
        if why is not None:
            found.append(
                error(
                    "PATH_REFUSED",
                    f"Node {ref.node_id} ({ref.class_type}): {ref.input} {ref.value[:120]!r} {why}.",
                    FIX,
                    node_id=ref.node_id,
                    input=ref.input,
                )
            )
    return found
