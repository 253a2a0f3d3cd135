"""Which model files ComfyUI's user can't open: stat facts gathered here, judged by workflows.file_access.

Only when ComfyUI runs as another user than the worker (handler.confine), or as root without capabilities
(handler.privileges): then a file the worker (root, with CAP_DAC_OVERRIDE) lists may be closed to ComfyUI.
Stats only, each folder once: a few microseconds per file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from workflows.analysis import looks_like_model
from workflows.file_access import Owner, User, blocked, unreadable_finding
from workflows.findings import Finding
from workflows.models import FOLDER_ALIASES, LOADER_INPUTS, MODEL_FOLDERS, canonical_folder

if TYPE_CHECKING:
    from handler.runtime import Runtime


def confined_user(runtime: Runtime) -> User | None:
    """The user ComfyUI runs as, when its access differs from the worker's (else None: nothing to check):
    another user, or root without the capabilities a root worker holds (handler.privileges)."""
    conf = runtime.supervisor.confinement if runtime.supervisor is not None else None
    if conf is not None and conf.user is None and os.geteuid() == 0:
        return User("root", 0, frozenset({0}))
    if conf is None or conf.user is None or conf.uid is None or conf.uid == os.geteuid():
        return None
    return User(conf.user, conf.uid, frozenset({conf.gid} if conf.gid is not None else ()))  # no extra groups


def _owner(path: str, cache: dict[str, Owner | None]) -> Owner | None:
    if path not in cache:
        try:
            st = os.stat(path)
            cache[path] = Owner(st.st_mode, st.st_uid, st.st_gid)
        except OSError:
            cache[path] = None
    return cache[path]


def access_problem(path: str, user: User, cache: dict[str, Owner | None]) -> str | None:
    """Why `user` can't open `path` (None: it can, or the file is gone). Folders on its real path
    (symlinks resolved, as the kernel walks them) are checked from / down."""
    real = os.path.realpath(path)
    file = _owner(real, cache)
    if file is None:
        return None
    parts = real.split("/")[1:-1]
    dirs = [("/" + "/".join(parts[:i]), None) for i in range(len(parts) + 1)]
    facts = [(d, o) for d, _ in dirs if (o := _owner(d, cache)) is not None]
    return blocked(path, file, facts, user)


def unreadable_findings(paths: Iterable[str], user: User | None) -> list[Finding]:
    """MODEL_FILE_UNREADABLE for each model file (from the scan) ComfyUI's user can't open."""
    if user is None:
        return []
    cache: dict[str, Owner | None] = {}
    return [unreadable_finding(p, why, user) for p in paths if (why := access_problem(p, user, cache)) is not None]


def workflow_findings(runtime: Runtime, roots: Iterable[str], workflow: Mapping[str, Any]) -> list[Finding]:
    """MODEL_FILE_UNREADABLE for each model file the workflow names that exists under a model root but
    ComfyUI's user can't open. Names are the job's (untrusted): only relative names without `..` are
    looked up, and only under the model roots."""
    user = confined_user(runtime)
    if user is None:
        return []
    roots = list(roots)
    cache: dict[str, Owner | None] = {}
    found: list[Finding] = []
    for node_id, node in workflow.items():
        if not isinstance(node, Mapping) or not isinstance(node.get("inputs"), Mapping):
            continue
        for name, value in node["inputs"].items():
            if not isinstance(value, str) or not looks_like_model(value):
                continue
            rel = value.strip().replace("\\", "/")
            if rel.startswith("/") or ".." in rel.split("/"):
                continue
            known = LOADER_INPUTS.get((str(node.get("class_type")), name))
            folders = _folder_names(known) if known else MODEL_FOLDERS
            for path in (os.path.join(root, folder, rel) for root in roots for folder in folders):
                if os.path.isfile(path) and (why := access_problem(path, user, cache)) is not None:
                    found.append(unreadable_finding(path, why, user, node_id=str(node_id), input=name))
                    break
    return found


def _folder_names(folder: str) -> list[str]:
    """A canonical folder and the legacy names ComfyUI also reads it from (unet, clip)."""
    canonical = canonical_folder(folder)
    return [canonical, *(alias for alias, c in FOLDER_ALIASES.items() if c == canonical)]
