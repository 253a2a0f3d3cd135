"""The commit each pack is pinned to: the version the save's author used when it can be had.

Order: the registry's pin when the registry already has one (the image installs one commit per pack);
else the commit the save records, when a snapshot (COMFY_PACKS_SNAPSHOTS) holds it or git can reach
the repository; else the pack's current commit at add time (the newest snapshot, or git's HEAD),
recorded, with a note that the recorded version could not be obtained. A pin that differs from the
version the save records is a finding (PACK_VERSION_DIFFERS): widget layouts change between versions,
and the converter then maps values only where the layouts are known to agree.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from client.config import child_env
from workflows.findings import Finding, warning
from workflows.pack_plan import PlannedPack

_SNAPSHOT = re.compile(r"^(?P<name>.+)-(?P<commit>[0-9a-f]{40})(?:\.tar\.gz)?$")


@dataclass
class Pin:
    name: str
    repo: str
    commit: str | None
    source: str  # where the commit came from, in words
    notes: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


def snapshot_commits(snapshots: Path | None, name: str) -> list[str]:
    """Commits of `name` in the snapshot directory (NAME-COMMIT.tar.gz or NAME-COMMIT/), newest first."""
    if snapshots is None or not snapshots.is_dir():
        return []
    found = []
    for path in snapshots.iterdir():
        m = _SNAPSHOT.match(path.name)
        if m and m.group("name") == name and (path.is_dir() or path.name.endswith(".tar.gz")):
            found.append((path.stat().st_mtime, m.group("commit")))
    return [c for _, c in sorted(found, reverse=True)]


def remote_head(repo: str, timeout_s: float = 20.0) -> str | None:
    """The repository's current HEAD commit via `git ls-remote`, or None when git can't reach it."""
    try:
        proc = subprocess.run(
            ["git", "ls-remote", repo, "HEAD"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            # the user's environment (proxies, git config: the tests' GIT_CONFIG_* rewrite), never a prompt
            env=child_env(GIT_TERMINAL_PROMPT="0"),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = proc.stdout.split()[:1] if proc.returncode == 0 else []
    return first[0] if first and re.fullmatch(r"[0-9a-f]{40}", first[0]) else None


def choose_pin(pack: PlannedPack, snapshots: Path | None, git_timeout_s: float = 20.0) -> Pin:
    saved = pack.saved_commit
    if pack.registry_commit:
        pin = Pin(pack.name, pack.repo, pack.registry_commit, "the registry's pin")
        if saved and saved != pack.registry_commit:
            pin.findings.append(_differs(pack, saved, pack.registry_commit[:12], "the registry pins"))
        return pin
    local = snapshot_commits(snapshots, pack.name)
    head: str | None = None
    if saved:
        if saved in local:
            return Pin(pack.name, pack.repo, saved, "the commit the save records (snapshot)")
        head = remote_head(pack.repo, git_timeout_s)
        if head is not None:  # git reaches the repository: fetch_pack.sh checks the commit out
            return Pin(pack.name, pack.repo, saved, "the commit the save records (git)")
    current = local[0] if local else head or remote_head(pack.repo, git_timeout_s)
    if current is None:
        return Pin(
            pack.name,
            pack.repo,
            None,
            "none",
            [
                f"{pack.name}: no snapshot in {snapshots or '(COMFY_PACKS_SNAPSHOTS not set)'} and git cannot "
                f"reach {pack.repo}: no commit to pin"
            ],
        )
    source = "the newest snapshot" if local else "git HEAD at add time"
    pin = Pin(pack.name, pack.repo, current, f"current at add time ({source})")
    if saved and saved != current:
        pin.notes.append(
            f"{pack.name}: the save was made at commit {saved[:12]}, which cannot be obtained here (no snapshot, "
            f"git unreachable); pinned to the nearest obtainable, {current[:12]}"
        )
        pin.findings.append(_differs(pack, saved, current[:12], "the nearest obtainable version is"))
    return pin


def release_findings(pack: PlannedPack, installed: list[str]) -> list[Finding]:
    """A release version the save records (e.g. 1.2.1) that the pinned tree's pyproject.toml does not carry."""
    releases = [v for v in pack.saved_versions if v.lower() not in {i.lower() for i in installed} and len(v) != 40]
    if not installed or not releases:
        return []
    return [_differs(pack, releases[0], " / ".join(i[:12] for i in installed), "the pinned version is")]


def _differs(pack: PlannedPack, saved: str, pinned: str, what: str) -> Finding:
    return warning(
        "PACK_VERSION_DIFFERS",
        f"Pack {pack.name}: the workflow was saved with version {saved[:12]}, {what} {pinned}. Widget layouts "
        "can change between versions: nodes whose saved values don't fit this version's layout are refused.",
        f"Pin {pack.name} to {saved} if it can be obtained (a snapshot in COMFY_PACKS_SNAPSHOTS, or git), "
        "or open the workflow in an editor with the pinned version and save it again.",
    )
