"""Can ComfyUI's user read a model file? Decided from stat facts alone (pure).

Why: ComfyUI runs as an unprivileged user (handler.confine) while the worker that scans the models is
root, so a root-owned 0600 file (safetensors' save_file, a tempfile-based downloader, a copy by root onto
the volume) is listed everywhere but can't be opened; safetensors then reports "No such file or
directory", which sends people looking for a file that is there.
"""

from __future__ import annotations

import stat
from collections.abc import Collection
from dataclasses import dataclass

from workflows.findings import Finding, error

READ, EXECUTE = 4, 1


@dataclass(frozen=True, slots=True)
class Owner:
    """The stat facts that decide access: st_mode, st_uid, st_gid."""

    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class User:
    """The user ComfyUI runs as: its name, uid and every group id it holds."""

    name: str
    uid: int
    gids: frozenset[int]


def allowed(owner: Owner, user: User, need: int) -> bool:
    """Classic Unix permission check (owner class, else group class, else other) for `need` bits
    (READ, EXECUTE or both), uid 0 included: ComfyUI holds no capability whatever its uid
    (handler.privileges), so a root ComfyUI has no CAP_DAC_OVERRIDE. ACLs are not seen (a rare false alarm)."""
    if owner.uid == user.uid:
        bits = (owner.mode >> 6) & 7
    elif owner.gid in user.gids:
        bits = (owner.mode >> 3) & 7
    else:
        bits = owner.mode & 7
    return bits & need == need


def can_read(owner: Owner, user: User) -> bool:
    return allowed(owner, user, READ)


def can_traverse(owner: Owner, user: User) -> bool:
    """A directory the user may pass through (x) on the way to a file."""
    return not stat.S_ISDIR(owner.mode) or allowed(owner, user, EXECUTE)


def describe(owner: Owner) -> str:
    """e.g. "owner uid 0, gid 0, mode 0600"."""
    return f"owner uid {owner.uid}, gid {owner.gid}, mode {stat.S_IMODE(owner.mode):04o}"


def blocked(path: str, file: Owner, dirs: Collection[tuple[str, Owner]], user: User) -> str | None:
    """Why `user` can't open `path` (the file itself or a folder on its way), or None when it can."""
    for directory, owner in dirs:
        if not can_traverse(owner, user):
            return f"its folder {directory} ({describe(owner)}) can't be entered by user {user.name!r}"
    if not can_read(file, user):
        return f"it ({describe(file)}) can't be read by user {user.name!r}"
    return None


def unreadable_finding(path: str, why: str, user: User, **where: str) -> Finding:
    """MODEL_FILE_UNREADABLE: ComfyUI lists the file but its user can't open it."""
    return error(
        "MODEL_FILE_UNREADABLE",
        f"{path} is listed but ComfyUI, running as user {user.name!r} (uid {user.uid}), can't open it: {why}.",
        f"Make it readable: chmod a+r {path} (folders on its way: chmod a+rx), or chown it to uid {user.uid}; "
        "on a network volume, fix the permissions of the files you copied there.",
        path=path,
        **where,
    )
