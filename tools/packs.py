"""Real custom node packs for the local stack and the tests, by name at the registry's pinned commit.

    python -m tools.packs [NAME ...]      fetch into the cache and print where each pack is

The packs come from docker/fetch_pack.sh, the script the image build uses: a snapshot in the directory
named by COMFY_PACKS_SNAPSHOTS (`NAME-COMMIT.tar.gz`; ../shared/packs on the development machines and
CI, which the Makefile and .ci/run export when it exists), else git at the pinned commit. Each pack is
fetched once into ~/.cache/comfy-runpod/packs/NAME-COMMIT/ and copied into a stack's custom_nodes.
Their Python requirements are in ComfyUI's venv already (scripts/install_comfyui.sh).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FETCH = REPO / "docker" / "fetch_pack.sh"
SNAPSHOTS_ENV = "COMFY_PACKS_SNAPSHOTS"
CACHE = Path(os.environ.get("COMFY_PACKS_CACHE", Path.home() / ".cache/comfy-runpod/packs"))

sys.path.insert(0, str(REPO))
from workflows.registry import PackRef, default_registry  # noqa: E402


class PackUnavailable(RuntimeError):
    """Neither a snapshot nor git can provide a pinned pack; the message says how to provide it."""


def pinned(name: str) -> PackRef:
    """The registry's pin for a pack (the image installs the same commit)."""
    packs = {p.name: p for p in default_registry().packs()}
    if name not in packs:
        raise KeyError(f"no registered workflow uses a pack named {name!r} (registered: {', '.join(sorted(packs))})")
    pack = packs[name]
    if not pack.commit:
        raise PackUnavailable(f"pack {name} has no commit pin in workflows/registry")
    return pack


def ensure_pack(name: str, cache: Path = CACHE) -> Path:
    """The pack's tree at its pinned commit in the cache, fetched the first time (safe to race)."""
    pack = pinned(name)
    target = cache / f"{name}-{pack.commit}" / name
    if target.is_dir():
        return target
    target.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=f".{name}-") as tmp:
        dest = Path(tmp) / name
        proc = subprocess.run(
            ["bash", str(FETCH), name, pack.repo, pack.commit, str(dest)],
            capture_output=True,
            text=True,
            env={**os.environ, "FETCH_GIT_ATTEMPTS": os.environ.get("FETCH_GIT_ATTEMPTS", "1")},
            timeout=600,
        )
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if line.startswith("fetch_pack:")]
            raise PackUnavailable(lines[-1] if lines else (proc.stderr or proc.stdout).strip()[-2000:])
        (dest / ".pack-source").write_text(f"{pack.repo} {pack.commit}\n")
        try:
            Path(tmp).rename(target.parent)
        except OSError:  # another process put it there first
            if not target.is_dir():
                raise
    return target


def install_packs(custom_nodes: Path, names: list[str] | tuple[str, ...], cache: Path = CACHE) -> list[Path]:
    """Copy the named packs into a ComfyUI custom_nodes folder; PackUnavailable says how to provide one."""
    installed = []
    for name in names:
        source = ensure_pack(name, cache)
        dest = custom_nodes / name
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        installed.append(dest)
    return installed


def install_available(custom_nodes: Path, cache: Path = CACHE) -> tuple[list[str], dict[str, str]]:
    """Every registered pack that can be had, for the local stack: (installed names, name -> why not)."""
    installed, problems = [], {}
    for pack in default_registry().packs():
        try:
            install_packs(custom_nodes, [pack.name], cache)
            installed.append(pack.name)
        except PackUnavailable as exc:
            problems[pack.name] = str(exc)
    return installed, problems


def main(argv: list[str]) -> int:
    names = argv or [p.name for p in default_registry().packs()]
    rc = 0
    for name in names:
        try:
            print(f"{name}: {ensure_pack(name)}")
        except (PackUnavailable, KeyError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
