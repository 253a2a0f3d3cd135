"""The model tree as it is on disk, judged. Pure: the worker (and the client's S3 volume check) gather
the facts — what each model folder path is, each file's kind, size and first/last bytes — and this
module turns them into findings with a fix. Never raises on odd data.

Why: ComfyUI silently skips what it cannot read (a dangling symlink, a folder that became a file, an
unreadable directory, a truncated download) and the job later fails with "value not in list" or a
loader exception; each of these has a precise cause a person can fix in a minute.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from workflows.findings import Finding, error, warning
from workflows.models import MODEL_FOLDERS, VOLUME_LAYOUTS

# How many bytes of a file's start and end the gatherer reads: enough for a safetensors length prefix,
# a GGUF/zip magic and a zip's end-of-central-directory record.
HEAD_BYTES = 16
TAIL_BYTES = 22
MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024  # the format's own limit

PathKind = Literal["dir", "dangling_symlink", "file", "unreadable", "other"]
FileKind = Literal["regular", "dangling_symlink", "other"]


@dataclass(frozen=True, slots=True)
class FolderFact:
    """What a model folder path (models/<folder>) is."""

    folder: str
    path: str
    kind: PathKind
    detail: str = ""  # the symlink target, the OS error


@dataclass(frozen=True, slots=True)
class FileFact:
    """One entry under a model folder with a model extension; `head`/`tail` only for regular files."""

    path: str
    kind: FileKind
    size: int = 0
    head: bytes = b""
    tail: bytes = b""
    header: bytes | None = None  # a safetensors JSON header, when the gatherer read it


def safetensors_header_length(head: bytes) -> int | None:
    return struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else None


def header_problem(path: str, size: int, head: bytes, tail: bytes, header: bytes | None) -> str | None:
    """Why this file's header shows it is not a complete model file, or None when it looks whole."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if ext in ("safetensors", "sft"):
        n = safetensors_header_length(head)
        if n is None:
            return f"it has {size} bytes, too few for a safetensors header"
        if n == 0 or n > MAX_SAFETENSORS_HEADER or 8 + n > size:
            return f"its header declares {n:,} header bytes, more than the file's {size:,} bytes hold"
        if header is None:
            return None
        if len(header) < n:  # only the header's last bytes (a big header): its last tensor ends the data
            return _header_tail_problem(header, n, size)
        try:
            meta = json.loads(header)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return "its safetensors header is not valid JSON"
        if not isinstance(meta, dict):
            return "its safetensors header is not a JSON object"
        end = 0
        for name, tensor in meta.items():
            if name == "__metadata__":
                continue
            offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
            if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
                return f"tensor {name!r} in its header has no valid data_offsets"
            end = max(end, offsets[1])
        if 8 + n + end > size:
            return f"its header declares {8 + n + end:,} bytes of data, the file has {size:,} (truncated download?)"
        return None
    if ext == "gguf":
        if head[:4] != b"GGUF":
            return "it does not start with the GGUF magic bytes"
        version = struct.unpack("<I", head[4:8])[0] if len(head) >= 8 else 0
        if version not in (1, 2, 3):
            return f"its GGUF version field is {version}, not 1-3"
        return None
    if ext in ("ckpt", "pt", "pth"):
        if head[:4] == b"PK\x03\x04":  # torch.save's zip format: a complete file ends with the zip directory
            if b"PK\x05\x06" not in tail and b"PK\x06\x06" not in tail:
                return "it is a zip (torch) archive without its end record (truncated download?)"
            return None
        if head[:1] == b"\x80":  # legacy pickle
            return None
        if head.lstrip()[:1] in (b"<", b"{"):
            return "it holds text (an HTML or JSON page, e.g. a login or error page), not a model"
        return "it is neither a torch zip archive nor a pickle"
    return None


_LAST_OFFSETS = re.compile(rb'"data_offsets"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*\]')
HEADER_TAIL_BYTES = 4096  # of a big safetensors header: enough for its last tensor entry


def _header_tail_problem(tail: bytes, n: int, size: int) -> str | None:
    """Judge a big header (hundreds of KB for a full checkpoint) from its end alone: the safetensors
    library writes tensors in data order, so the last entry's end is the data size. Never a false alarm:
    any entry ending past the file is a truncated file, whatever the order."""
    if not tail.rstrip().endswith(b"}"):
        return "its safetensors header is not valid JSON"
    ends = [int(m[2]) for m in _LAST_OFFSETS.finditer(tail)]
    if ends and 8 + n + max(ends) > size:
        return f"its header declares {8 + n + max(ends):,} bytes of data, the file has {size:,} (truncated download?)"
    return None


def tree_findings(folders: Iterable[FolderFact], files: Iterable[FileFact]) -> list[Finding]:
    """Findings for model folders and files that ComfyUI would skip or fail to load."""
    found = [_folder_finding(f) for f in folders] + [_file_finding(m) for m in files]
    return [f for f in found if f is not None]


def _folder_finding(f: FolderFact) -> Finding | None:
    if f.kind == "dangling_symlink":
        return error(
            "MODEL_FOLDER_DANGLING_LINK",
            f"Model folder {f.path} is a symlink to {f.detail or 'a missing target'}, which does not exist.",
            "Point the link at an existing directory (is the network volume attached at the same path?) "
            "or replace it with a real folder.",
            path=f.path,
        )
    if f.kind == "file":
        return error(
            "MODEL_FOLDER_IS_FILE",
            f"{f.path} should be the {f.folder!r} model folder but is a file, so ComfyUI lists nothing there.",
            f"Move the file away, create the directory {f.path} and put the {f.folder} models inside.",
            path=f.path,
        )
    if f.kind == "unreadable":
        return error(
            "MODEL_FOLDER_UNREADABLE",
            f"Model folder {f.path} can't be read ({f.detail or 'permission denied'}); ComfyUI sees it empty.",
            f"Make it readable by the worker's user: chmod -R a+rX {f.path} (or fix its owner).",
            path=f.path,
        )
    return None


def _file_finding(m: FileFact) -> Finding | None:
    if m.kind == "dangling_symlink":
        return error(
            "MODEL_FILE_DANGLING_LINK",
            f"{m.path} is a symlink whose target does not exist.",
            "Re-create the link to the real file or copy the file in its place.",
            path=m.path,
        )
    if m.kind == "other":
        return warning(
            "MODEL_FILE_NOT_REGULAR",
            f"{m.path} is not a regular file (a fifo, socket or device); no loader can read it.",
            "Replace it with the real model file.",
            path=m.path,
        )
    if m.size == 0:
        return error(
            "MODEL_FILE_EMPTY",
            f"{m.path} is 0 bytes (an interrupted download or a failed copy).",
            "Delete it and download the model again.",
            path=m.path,
        )
    if (problem := header_problem(m.path, m.size, m.head, m.tail, m.header)) is not None:
        return error(
            "MODEL_FILE_CORRUPT",
            f"{m.path} is not a loadable model: {problem}.",
            "Delete it and download it again (check the URL returns the file, not a login page; "
            "Hugging Face and Civitai may need a token).",
            path=m.path,
        )
    return None


def layout_findings(candidates: Iterable[str], volume_root: str) -> list[Finding]:
    """Directories that look like a models tree (a `models` dir holding known folders) but sit where the
    worker's extra_model_paths.yaml does not look. `candidates` are paths relative to the volume root."""
    scanned = {layout.lower() for layout in VOLUME_LAYOUTS}
    findings = []
    root = volume_root.rstrip("/")
    scanned_paths = " and ".join(f"{root}/{layout}" for layout in VOLUME_LAYOUTS)
    for rel in sorted(set(candidates)):
        if rel.strip("/") in VOLUME_LAYOUTS:
            continue
        if rel == ".":
            findings.append(
                error(
                    "MODEL_LAYOUT_NOT_SCANNED",
                    f"Model folders (checkpoints/, loras/ ...) sit straight in {root}, but ComfyUI only scans "
                    f"{scanned_paths}.",
                    f"Move them one level down: mkdir -p {root}/models && mv {root}/<folder> {root}/models/.",
                    path=root,
                )
            )
            continue
        hint = " (only the case differs)" if rel.strip("/").lower() in scanned else ""
        findings.append(
            error(
                "MODEL_LAYOUT_NOT_SCANNED",
                f"{volume_root.rstrip('/')}/{rel} looks like a models folder{hint}, but ComfyUI only scans "
                + " and ".join(f"{volume_root.rstrip('/')}/{layout}" for layout in VOLUME_LAYOUTS)
                + ".",
                f"Move its sub-folders to {volume_root.rstrip('/')}/models/ (e.g. mv {volume_root.rstrip('/')}/{rel}/* "
                f"{volume_root.rstrip('/')}/models/), or add it to extra_model_paths.yaml.",
                path=f"{volume_root.rstrip('/')}/{rel}",
            )
        )
    return findings


def is_models_dir(children: Iterable[str]) -> bool:
    """Does a directory named `models` (any case) hold at least one known model folder (any case)?"""
    known = {f.lower() for f in MODEL_FOLDERS}
    return any(c.lower() in known for c in children)


# Folder names that, straight on a volume's root, mean "model folders in the wrong place" (generic names
# like configs/ or diffusers/ are left out: a volume may hold those for other reasons).
ROOT_HINT_FOLDERS = frozenset(f.lower() for f in MODEL_FOLDERS) - {"configs", "diffusers"}


def _in_root_hint_folder(parts: list[str]) -> bool:
    """A file inside a model folder straight on the volume's root (/runpod-volume/loras/x)."""
    return len(parts) > 1 and parts[0].lower() in ROOT_HINT_FOLDERS


def layouts_from_paths(paths: Iterable[str], depth: int = 3) -> list[str]:
    """The off-layout models trees (as `layout_findings` takes them) seen in a list of file paths
    relative to the volume root: the same judgement from a bucket listing as from a directory walk."""
    known = {f.lower() for f in MODEL_FOLDERS}
    found: set[str] = set()
    for path in paths:
        parts = [p for p in path.replace("\\", "/").split("/") if p]
        if _in_root_hint_folder(parts):
            found.add(".")
        for i, part in enumerate(parts[:depth]):  # as the walk: `models` up to `depth` levels down
            if part.lower() == "models" and i + 2 < len(parts) and parts[i + 1].lower() in known:
                rel = "/".join(parts[: i + 1])
                if rel not in VOLUME_LAYOUTS:
                    found.add(rel)
                break
            if part.lower() in known or part.startswith("."):  # the walk doesn't descend into these
                break
    return sorted(found)


def in_models_tree(path: str, trees: Iterable[str]) -> bool:
    """Is `path` (relative to the volume root) inside one of the off-layout models trees that
    `layouts_from_paths` found ("." stands for model folders straight on the root)?"""
    for rel in trees:
        if rel == "." and _in_root_hint_folder(path.split("/")):
            return True
        if rel != "." and path.startswith(rel + "/"):
            return True
    return False


# Folder names people use that ComfyUI does not (Automatic1111's, singular forms) -> ComfyUI's folder.
FOLDER_HINTS: dict[str, str] = {
    "stable-diffusion": "checkpoints",
    "stable_diffusion": "checkpoints",
    "checkpoint": "checkpoints",
    "lora": "loras",
    "lycoris": "loras",
    "esrgan": "upscale_models",
    "realesrgan": "upscale_models",
    "upscalers": "upscale_models",
    "embedding": "embeddings",
    "controlnets": "controlnet",
    "text_encoder": "text_encoders",
    "unets": "diffusion_models",
}


def not_seen_finding(path: str, folder: str) -> Finding:
    """A file on disk that ComfyUI does not list; when its folder's name is another tool's (Automatic1111)
    or another case of ComfyUI's own, the fix names the folder ComfyUI reads."""
    known = {f.lower(): f for f in MODEL_FOLDERS}
    meant = FOLDER_HINTS.get(folder.lower()) or (known.get(folder.lower()) if folder not in MODEL_FOLDERS else None)
    if meant is not None and meant != folder:
        return warning(
            "MODEL_NOT_SEEN",
            f"{path} is on disk but ComfyUI does not list it: its folder {folder!r} is not a ComfyUI model "
            f"folder (ComfyUI reads {meant!r}).",
            f"Rename the folder {folder!r} to {meant!r} (or move the file into {meant}/), then restart ComfyUI.",
            path=path,
        )
    return warning(
        "MODEL_NOT_SEEN",
        f"{path} is on disk but ComfyUI does not list it under {folder!r}.",
        "Check extra_model_paths.yaml covers this directory and folder name, then restart ComfyUI.",
        path=path,
    )
