"""Facts about this deployment's disk and ComfyUI, gathered once for every user: the model scan (the
image's models dir and the network volume, file headers, trees), ComfyUI's model lists, the custom
node packs ComfyUI imported at start-up and their git commits, and the extra_model_paths.yaml check.

diagnose (handler.diagnose), generate's judgement of a miss (handler.generate) and the self-check
(handler.selfcheck) all read these here; workflows.analysis judges them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from comfyui_client.errors import ComfyHTTPError, ComfyUnavailable
from handler.model_cache import cache_pending
from workflows.findings import Finding, error
from workflows.model_tree import (
    HEAD_BYTES,
    HEADER_TAIL_BYTES,
    ROOT_HINT_FOLDERS,
    TAIL_BYTES,
    FileFact,
    FolderFact,
    is_models_dir,
    safetensors_header_length,
)
from workflows.models import (
    FOLDER_ALIASES,
    MODEL_EXTENSIONS,
    MODEL_FOLDERS,
    VOLUME_LAYOUTS,
    ModelFile,
    ModelIndex,
    canonical_folder,
)
from workflows.pack_plan import release_version
from workflows.startup_log import PackImport, parse_import_report

if TYPE_CHECKING:  # only its attributes are used: `--static` self-checks stay free of the HTTP stack
    from handler.runtime import Runtime


def _walk(
    folder_dir: Path, unreadable: list[FolderFact] | None = None, folder: str = ""
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """(relative name, entry) for every model-extension entry below a folder (files, dangling links, fifos);
    directories it can't read go to `unreadable`. Symlinked directories are followed (volumes are often
    linked in) but each directory is walked once, so a link loop can't make the scan run away."""
    stack = [(folder_dir, "")]
    seen: set[tuple[int, int]] = set()
    while stack:
        directory, prefix = stack.pop()
        try:
            st = directory.stat()
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(directory) as it:
                for entry in it:
                    if entry.is_dir():
                        stack.append((Path(entry.path), f"{prefix}{entry.name}/"))
                    elif os.path.splitext(entry.name)[1].lower() in MODEL_EXTENSIONS:
                        yield prefix + entry.name, entry
        except OSError as exc:
            if unreadable is not None and os.path.lexists(directory):
                unreadable.append(FolderFact(folder, str(directory), "unreadable", exc.strerror or str(exc)))
            continue


def model_roots(runtime: Runtime) -> list[tuple[str, Path]]:
    """(source, models dir) for the image, RunPod's model cache links and each volume layout that exists."""
    s = runtime.settings
    roots = [("image", s.comfy_dir / "models"), ("cache", s.model_cache_links)]
    roots += [("volume", s.volume_dir / sub) for sub in VOLUME_LAYOUTS if (s.volume_dir / sub).is_dir()]
    return [(src, path) for src, path in roots if path.is_dir()]


def scan_model_files(
    roots: list[tuple[str, Path]], problems: TreeFacts | None = None
) -> list[tuple[str, str, str, int, str]]:
    """(canonical folder, name, path, size, source) for every model file under the roots.

    With `problems`, what ComfyUI would silently skip is collected too: folders that are dangling
    links, files or unreadable, and model entries that are dangling links or not regular files.
    """
    found = []
    for source, root in roots:
        try:
            entries = list(os.scandir(root))
        except OSError as exc:
            if problems is not None:
                problems.folders.append(FolderFact("", str(root), "unreadable", exc.strerror or str(exc)))
            continue
        folders = []
        for e in entries:
            if e.is_dir():
                folders.append(e)
            elif problems is not None and e.name.lower() in _KNOWN_FOLDERS:
                problems.folders.append(_folder_fact(e))
        for folder in folders:
            canonical = canonical_folder(folder.name)
            unreadable = problems.folders if problems is not None else None
            for name, entry in _walk(Path(folder.path), unreadable, canonical):
                try:
                    st = entry.stat()
                except OSError:
                    if problems is not None:
                        problems.files.append(FileFact(entry.path, "dangling_symlink"))
                    continue
                if not stat.S_ISREG(st.st_mode):
                    if problems is not None:
                        problems.files.append(FileFact(entry.path, "other"))
                    continue
                found.append((canonical, name, entry.path, st.st_size, source))
    return found


_KNOWN_FOLDERS = frozenset(f.lower() for f in MODEL_FOLDERS)
_HEADER_EXTENSIONS = frozenset({".safetensors", ".sft", ".gguf", ".ckpt", ".pt", ".pth"})


@dataclass
class TreeFacts:
    """What diagnose gathers about the model tree for workflows.model_tree to judge."""

    folders: list[FolderFact] = field(default_factory=list)
    files: list[FileFact] = field(default_factory=list)
    layouts: list[str] = field(default_factory=list)  # models dirs (relative to the volume) found off-layout


def _folder_fact(entry: os.DirEntry[str]) -> FolderFact:
    if entry.is_symlink() and not os.path.exists(entry.path):
        return FolderFact(entry.name, entry.path, "dangling_symlink", os.readlink(entry.path))
    if entry.is_file():
        return FolderFact(entry.name, entry.path, "file")
    return FolderFact(entry.name, entry.path, "other")


_FIRST_READ = 64 * 1024  # one read covers the prefix and the JSON header of most safetensors files


def read_header(path: str, size: int) -> FileFact:
    """The first and last bytes of a model file (and a safetensors JSON header): never the whole file.

    Raw os.open/pread, one read for most files: 5,000 files must fit in diagnose's budget.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return FileFact(path, "regular", size)
    try:
        first = os.pread(fd, min(size, _FIRST_READ), 0)
        head, header, tail = first[:HEAD_BYTES], None, b""
        if path[-12:].lower() == ".safetensors" or path[-4:].lower() == ".sft":
            n = safetensors_header_length(head)
            if n is not None and 0 < n <= size - 8:
                # the whole header when it came with the first read, else only its end (a big checkpoint's
                # header is hundreds of KB: parsing 5,000 of them would blow diagnose's budget)
                header = (
                    first[8 : 8 + n]
                    if 8 + n <= len(first)
                    else os.pread(fd, HEADER_TAIL_BYTES, 8 + n - HEADER_TAIL_BYTES)
                )
        elif head[:4] == b"PK\x03\x04":  # a torch zip: is its end record there?
            tail = first[-TAIL_BYTES:] if size <= len(first) else os.pread(fd, TAIL_BYTES, size - TAIL_BYTES)
    except OSError:
        return FileFact(path, "regular", size)
    finally:
        os.close(fd)
    return FileFact(path, "regular", size, head, tail, header)


def file_facts(raw_files: list[tuple[str, str, str, int, str]]) -> list[FileFact]:
    """Header facts for every model file whose format we can check (zero-byte ones without reading)."""
    facts = []
    for _, _, path, size, _ in raw_files:
        if size == 0:
            facts.append(FileFact(path, "regular", 0))
        elif path[path.rfind(".") :].lower() in _HEADER_EXTENSIONS:
            facts.append(read_header(path, size))
    return facts


def off_layout_models_dirs(volume: Path, depth: int = 3) -> list[str]:
    """`models` directories (any case, up to `depth` levels below the volume root) holding a known model
    folder: the layouts people use that the worker may not scan. Relative to the volume root."""
    found: list[str] = []
    try:
        at_root = [e.name for e in os.scandir(volume) if e.is_dir() and e.name.lower() != "models"]
    except OSError:
        at_root = []
    if any(name.lower() in ROOT_HINT_FOLDERS for name in at_root):
        found.append(".")  # model folders straight on the volume: /runpod-volume/checkpoints
    stack = [(volume, "", 0)]
    while stack:
        directory, rel, level = stack.pop()
        try:
            children = [e for e in os.scandir(directory) if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue
        for child in children:
            child_rel = f"{rel}{child.name}"
            if child.name.lower() == "models":
                try:
                    names = [e.name for e in os.scandir(child.path) if e.is_dir()]
                except OSError:
                    names = []
                if is_models_dir(names):
                    if child_rel not in VOLUME_LAYOUTS:  # the scanned layouts themselves are fine
                        found.append(child_rel)
                    continue
            if level + 1 < depth and child.name.lower() not in _KNOWN_FOLDERS and not child.name.startswith("."):
                stack.append((Path(child.path), child_rel + "/", level + 1))
    return found


def model_index(runtime: Runtime) -> ModelIndex | None:
    """The model index generate judges a miss against: files on disk + what ComfyUI lists, built fresh.

    None when it can't be built (ComfyUI's model lists unreadable): the judgement then falls back to the
    loader lists of /object_info, as on the happy path.
    """
    try:
        return _model_index(runtime)
    except (ComfyUnavailable, ComfyHTTPError, ValueError, OSError):
        return None


def _model_index(runtime: Runtime) -> ModelIndex:
    s = runtime.settings
    with ThreadPoolExecutor(max_workers=1) as pool:
        lists_f = pool.submit(comfy_model_lists, runtime)
        raw_files = scan_model_files(model_roots(runtime))
        if s.volume_dir.is_dir():  # where people also put models: the finding then says where the file is
            rels = off_layout_models_dirs(s.volume_dir)
            off = [("volume", s.volume_dir / rel) for rel in rels if rel != "."]
            raw_files += [(f, n, p, size, "volume-unscanned") for f, n, p, size, _ in scan_model_files(off)]
            if "." in rels:
                raw_files += _root_folder_files(s.volume_dir)
        comfy_sees, _ = lists_f.result()
    files = tuple(
        ModelFile(
            folder,
            name,
            path,
            size,
            source,
            source != "volume-unscanned" and name in comfy_sees.get(folder, frozenset()),
        )
        for folder, name, path, size, source in raw_files
    )
    return ModelIndex(comfy_sees, files, cache_pending=cache_pending(runtime.model_cache))


def _root_folder_files(volume: Path) -> list[tuple[str, str, str, int, str]]:
    """Model files in known folders placed straight on the volume (/runpod-volume/loras/...)."""
    try:
        wanted = [e for e in os.scandir(volume) if e.is_dir() and e.name.lower() in ROOT_HINT_FOLDERS]
    except OSError:
        return []
    found = []
    for folder in wanted:
        for name, entry in _walk(Path(folder.path)):
            try:
                size = entry.stat().st_size
                found.append((canonical_folder(folder.name), name, entry.path, size, "volume-unscanned"))
            except OSError:
                continue
    return found


def pack_commits(imports: tuple[PackImport, ...]) -> dict[str, str]:
    """Installed pack path -> the git commit it is checked out at (read from .git, no git process)."""
    commits = {}
    for pack in imports:
        git = Path(pack.path) / ".git"
        try:
            head = (git / "HEAD").read_text().strip()
            if head.startswith("ref: "):
                ref = head[5:]
                try:
                    head = (git / ref).read_text().strip()
                except OSError:
                    packed = (git / "packed-refs").read_text().splitlines()
                    head = next(line.split()[0] for line in packed if line.endswith(" " + ref))
        except (OSError, StopIteration):
            continue
        if _is_sha(head):
            commits[pack.path] = head
    return commits


def installed_commits(imports: tuple[PackImport, ...]) -> dict[str, str]:
    """Installed pack path -> its commit: from .git, else the .pack-source every install path writes
    (docker/install_packs.sh, tools/packs.py): what `validate --workflow` compares with the entry's pin."""
    commits = pack_commits(imports)
    for pack in imports:
        try:
            source = (Path(pack.path) / ".pack-source").read_text().split()
        except OSError:
            continue
        if pack.path not in commits and len(source) > 1 and _is_sha(source[1]):
            commits[pack.path] = source[1]
    return commits


def _is_sha(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def installed_versions(imports: tuple[PackImport, ...], comfyui_version: str | None) -> dict[str, list[str]]:
    """Pack folder -> what identifies its installed version (its commit: from .git, else the .pack-source
    the install scripts write; its release version from pyproject.toml); `comfy-core` -> ComfyUI's
    version. The editor-save converter maps a node's values by the installed layout only when the save
    records exactly one of these (workflows.ui_convert)."""
    commits = pack_commits(imports)
    out: dict[str, list[str]] = {"comfy-core": [comfyui_version]} if comfyui_version else {}
    for pack in imports:
        if pack.failed:
            continue
        found = [commits[pack.path]] if pack.path in commits else []
        root = Path(pack.path)
        try:
            source = (root / ".pack-source").read_text().split()
            found += [c for c in source[1:2] if c not in found]
        except OSError:
            pass
        try:
            release = release_version((root / "pyproject.toml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            release = None
        found += [release] if release else []
        if found:
            out[root.name] = found
    return out


def pack_imports(runtime: Runtime) -> tuple[PackImport, ...]:
    """The custom node packs ComfyUI reported at start-up (loaded and failed)."""
    try:
        return tuple(parse_import_report(runtime.settings.comfy_log.read_text(errors="replace")))
    except OSError:
        return ()


def layout_root_facts(runtime: Runtime) -> list[FolderFact]:
    """The volume layouts' own `models` dirs when they are dangling links or files (model_roots skips them)."""
    s = runtime.settings
    facts = []
    for sub in VOLUME_LAYOUTS:
        path = s.volume_dir / sub
        if path.is_symlink() and not path.exists():
            facts.append(FolderFact(sub, str(path), "dangling_symlink", os.readlink(path)))
        elif path.is_file():
            facts.append(FolderFact(sub, str(path), "file"))
    return facts


def comfy_model_lists(runtime: Runtime) -> tuple[dict[str, frozenset[str]], list[str]]:
    """(folder -> names ComfyUI lists, folders ComfyUI failed to list: it answers 500 when a directory
    it scanned vanished after it was cached)."""
    lists = runtime.comfy.model_lists(skip=FOLDER_ALIASES)
    failed = sorted(k for k, v in lists.items() if v is None)
    return {canonical_folder(k): frozenset(v or ()) for k, v in lists.items()}, failed


def sha256_or_none(path: str) -> str | None:
    """The file's sha256; None when it vanished or can't be read (the model-tree findings name why)."""
    try:
        return _sha256(path)
    except OSError:
        return None


def _sha256(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def check_model_paths(path: Path) -> list[Finding]:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        return [
            error(
                "MODEL_PATHS_INVALID",
                f"{path}: cannot be read: {exc.strerror}",
                "Copy the repository's extra_model_paths.yaml there (or set COMFY_EXTRA_MODEL_PATHS).",
                path=str(path),
            )
        ]
    except yaml.YAMLError as exc:
        return [error("MODEL_PATHS_INVALID", f"{path}: not valid YAML: {exc}", "Fix the YAML syntax.", path=str(path))]
    findings = []
    if not isinstance(data, dict):
        return [
            error(
                "MODEL_PATHS_INVALID", f"{path}: expected sections of folder: path", "See the README.", path=str(path)
            )
        ]
    for section, folders in data.items():
        if not isinstance(folders, dict) or "base_path" not in folders:
            findings.append(
                error(
                    "MODEL_PATHS_INVALID",
                    f"{path}: section {section!r} has no base_path",
                    "Add base_path to the section.",
                    path=str(path),
                )
            )
            continue
        for key in folders:
            if key not in (*MODEL_FOLDERS, "base_path", "is_default", "custom_nodes", "download_model_base"):
                findings.append(
                    error(
                        "MODEL_PATHS_INVALID",
                        f"{path}: section {section!r}: unknown folder {key!r}",
                        "Use ComfyUI's folder names (checkpoints, diffusion_models, …).",
                        path=str(path),
                    )
                )
    return findings
