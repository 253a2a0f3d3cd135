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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from workflows.findings import Finding, error

# "cwd": a pack's value, relative to ComfyUI's working directory or to any of the three (workflows.path_values);
# "entry": the same, judged only when its first part names something in that working directory.
Base = Literal["input", "output", "temp", "any", "cwd", "entry"]
# How a value names its file: "name" relative to the base directory (ComfyUI's annotated names),
# "folder" a subfolder name (relative, pure checks only), "path" a filesystem path (VHS *Path nodes:
# must be absolute and resolve inside one of the directories), "value" a pack's path-like value
# (absolute, or relative to any base: it must land inside whichever the node joins it to), "prefix" an
# output-naming input (workflows.patch.scope_outputs scopes it; judged only when it is not a literal).
Kind = Literal["name", "folder", "path", "value", "prefix"]

# (class_type, input) -> (base directory, kind). Verified against ComfyUI 0.3.75 and VideoHelperSuite.
FILE_INPUTS: Mapping[str, Mapping[str, tuple[Base, Kind]]] = {
    "LoadImage": {"image": ("input", "name")},
    "LoadImageMask": {"image": ("input", "name")},
    "LoadImageOutput": {"image": ("output", "name")},
    "LoadLatent": {"latent": ("input", "name")},
    "LoadVideo": {"file": ("input", "name")},
    "LoadAudio": {"audio": ("input", "name")},
    "WebcamCapture": {"image": ("input", "name")},
    "RecordAudio": {"audio": ("input", "name")},
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
# Inputs that name a job's outputs: workflows.patch.scope_outputs puts them in the job's own folder.
OUTPUT_NAMING = frozenset({"filename_prefix"})
# What /object_info tells of an input that names a file: an upload flag in its options (image_upload,
# audio_upload, video_upload, upload, ...: the editor offers an upload, the node reads that file), a
# folder (image_folder: output/temp) or a remote list; or a widget type that stands for a file
# (WEBCAM: a captured frame saved as an input file, AUDIO_RECORD: a recording, *UPLOAD*).
_FILE_FLAGS = ("upload", "image_folder", "remote")
_FILE_TYPES = frozenset({"WEBCAM", "AUDIO_RECORD"})
_ANNOTATION = re.compile(r"^(?P<name>.*?)\s*\[(?P<base>input|output|temp)\]$")
_URL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]+://|data:|file:)", re.IGNORECASE)  # http://, s3://, data:, file:
_DRIVE = re.compile(r"^[A-Za-z]:")
FIX = (
    "Name a file inside ComfyUI's input directory by its plain name (send it with `images`, it is stored "
    "there); absolute paths, '..', URLs, symlinks out and device files are refused."
)
VALUE_FIX = (
    "Give a path inside ComfyUI's input, output or temp directory: relative to ComfyUI's directory "
    "(e.g. 'output/my_folder', 'input/my_file.png') or absolute inside them, as a literal (or a Primitive "
    "node's literal); '..', '~', URLs, symlinks out and device files are refused."
)
PREFIX_FIX = (
    "Give filename_prefix as a literal string (or a Primitive node's literal): the worker puts every output "
    "in the job's own folder, which a name built by another node at run time would escape."
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
    literal: bool = True  # False: the input is fed by a link or holds no string (refused)


@dataclass(frozen=True, slots=True)
class PathFact:
    """What the handler saw on disk for one (base, relative) reference."""

    inside: bool  # the real path (symlinks resolved) is inside the allowed directory
    special: bool = False  # a device, FIFO or socket


def literal(value: Any) -> Any:
    """A value as ComfyUI's executor sees it: `{"__value__": x}` is x (its way to pass a list literally)."""
    return value["__value__"] if isinstance(value, dict) and "__value__" in value else value


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


def declared_file_inputs(object_info: Mapping[str, Any] | None, class_type: str) -> dict[str, tuple[Base, Kind]]:
    """The inputs of `class_type` that /object_info says name a file (see _FILE_FLAGS, _FILE_TYPES)."""
    info = (object_info or {}).get(class_type)
    if not isinstance(info, dict) or not isinstance(info.get("input"), dict):
        return {}
    found: dict[str, tuple[Base, Kind]] = {}
    for section in info["input"].values():
        for name, spec in section.items() if isinstance(section, dict) else ():
            if not isinstance(spec, list | tuple) or not spec:
                continue
            kind_name = spec[0] if isinstance(spec[0], str) else ""
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            flagged = any(any(f in str(k) for f in _FILE_FLAGS) and v for k, v in options.items())
            if flagged or kind_name in _FILE_TYPES or "UPLOAD" in kind_name:
                folder = options.get("image_folder")
                found[name] = (folder if folder in ("input", "output", "temp") else "input", "name")
    return found


def linked_literal(workflow: Mapping[str, Any], value: Any) -> Any:
    """The literal behind a link from a Primitive* node (its `value`), else the link itself."""
    source = workflow.get(str(value[0]))
    if isinstance(source, dict) and str(source.get("class_type", "")).startswith("Primitive"):
        inputs = source.get("inputs")
        if isinstance(inputs, dict) and "value" in inputs and not is_link(literal(inputs["value"])):
            return literal(inputs["value"])
    return value


def file_inputs(workflow: Mapping[str, Any], object_info: Mapping[str, Any] | None = None) -> Iterator[FileRef]:
    """Every input that names a file or folder (by the table, by its name, or by /object_info's metadata),
    its value unwrapped as ComfyUI would; a value that is not a literal string (a link from a node other
    than a primitive, a list, a number) comes with `value` = "" and is refused by `pure_problem`."""
    for node_id, node in workflow.items():
        if not isinstance(node, dict) or not isinstance(node.get("inputs"), dict):
            continue
        class_type = str(node.get("class_type"))
        known = {**declared_file_inputs(object_info, class_type), **FILE_INPUTS.get(class_type, {})}
        for name, raw in node["inputs"].items():
            value = literal(raw)
            if is_link(value):
                value = linked_literal(workflow, value)
            if name in known:
                base, kind = known[name]
            elif name in OUTPUT_NAMING:  # scoped to the job's folder when it is a literal (workflows.patch)
                if is_link(value) or isinstance(value, list | dict):
                    yield FileRef(str(node_id), class_type, name, str(raw)[:120], "output", "prefix", "", literal=False)
                continue
            elif name in GENERIC_INPUTS:
                base, kind = "any", "folder"
            else:
                continue
            if not isinstance(value, str):
                if name in known or is_link(value):  # a generic name with a number or a bool names no file
                    yield FileRef(str(node_id), class_type, name, str(raw)[:120], base, kind, "", literal=False)
                continue
            relative = value.strip().strip('"') if kind == "path" else value  # as VHS reads it
            if kind == "name" and (m := _ANNOTATION.match(value)):
                relative, base = m["name"], cast(Base, m["base"])  # _ANNOTATION matches only those names
            yield FileRef(str(node_id), class_type, name, value, base, kind, relative)


def pure_problem(ref: FileRef) -> str | None:
    """Why this reference is refused without looking at the disk (None: look at the disk)."""
    if not ref.literal:
        if ref.kind == "prefix":
            return "is not a literal name (fed by a node's output, or not a string), so it can't be scoped to the job"
        return "is not a literal file name (fed by a node's output, or not a string); name the file itself"
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
    if ref.kind == "value":  # absolute or relative: the disk tells where it lands (handler path_facts)
        return "is a Windows drive path" if _DRIVE.match(value) else None
    if ref.kind == "path":
        return None if absolute else "is a relative path; give an absolute path inside ComfyUI's directories"
    if absolute:
        return "is an absolute path"
    return None


def path_findings(
    workflow: Mapping[str, Any],
    facts: Mapping[tuple[str, str], PathFact] | None,
    object_info: Mapping[str, Any] | None = None,
    refs: Iterable[FileRef] | None = None,
) -> list[Finding]:
    """PATH_REFUSED for each input whose reference is refused, one per input. `refs`: the references to
    judge (default: `file_inputs`; workflows.path_values adds the packs' path-like values); `facts`:
    the handler's look at the disk (None: the pure checks only)."""
    found: list[Finding] = []
    seen: set[tuple[str, str]] = set()
    for ref in file_inputs(workflow, object_info) if refs is None else refs:
        if (ref.node_id, ref.input) in seen:
            continue
        why = pure_problem(ref)
        if why is None and facts is not None and ref.kind != "folder":
            fact = facts.get((ref.base, ref.relative))
            if fact is None and ref.kind == "value":  # every value is looked at: a gap is refused, not let by
                why = "could not be checked on disk"
            elif fact is not None and not fact.inside:
                why = (
                    "lands outside ComfyUI's input/output/temp directories (resolved against ComfyUI's directory "
                    "and each of those, symlinks followed)"
                    if ref.kind == "value"
                    else "resolves outside ComfyUI's input/output/temp directories (a symlink?)"
                )
            elif fact is not None and fact.special:
                why = "is a device, FIFO or socket, not a regular file"
        if why is not None:
            seen.add((ref.node_id, ref.input))
            fix = VALUE_FIX if ref.kind == "value" else PREFIX_FIX if ref.kind == "prefix" else FIX
            found.append(
                error(
                    "PATH_REFUSED",
                    f"Node {ref.node_id} ({ref.class_type}): {ref.input} {ref.value[:120]!r} {why}.",
                    fix,
                    node_id=ref.node_id,
                    input=ref.input,
                )
            )
    return found
