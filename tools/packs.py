"""Real custom node packs for the local stack and the tests: any registered pack at its pin, with its requirements.

    python -m tools.packs [NAME ...]      fetch into the cache and print where each pack is

The one install path (client/local_comfy.py, the same scripts as the image build): the pack from
docker/fetch_pack.sh (a snapshot in COMFY_PACKS_SNAPSHOTS, `NAME-COMMIT.tar.gz`; ../shared/packs on the
development machines and CI, which the Makefile and .ci/run export when it exists; else git at the pinned
commit), cached once in ~/.cache/comfy-runpod/packs/NAME-COMMIT/ and copied into a stack's custom_nodes;
its requirements.txt and install.py through docker/pack_requirements.sh into an overlay venv over
ComfyUI's (ComfyUI's own venv is never changed), which the stack then runs ComfyUI with.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GIT_ATTEMPTS = int(os.environ.get("FETCH_GIT_ATTEMPTS", "1"))

sys.path.insert(0, str(REPO))
from client.config import packs_cache  # noqa: E402
from client.local_comfy import LocalComfyError, fetch_pack, pack_python  # noqa: E402
from workflows.registry import PackRef, Registry, default_registry  # noqa: E402

CACHE = packs_cache(os.environ)


class PackUnavailable(RuntimeError):
    """Neither a snapshot nor git can provide a pinned pack; the message says how to provide it."""


def pinned(name: str, registry: Registry | None = None) -> PackRef:
    """The registry's pin for a pack (the image installs the same commit)."""
    packs = {p.name: p for p in (registry or default_registry()).packs()}
    if name not in packs:
        raise KeyError(f"no registered workflow uses a pack named {name!r} (registered: {', '.join(sorted(packs))})")
    pack = packs[name]
    if not pack.commit:
        raise PackUnavailable(f"pack {name} has no commit pin in workflows/registry")
    return pack


def ensure_pack(name: str, cache: Path = CACHE, registry: Registry | None = None) -> Path:
    """The pack's tree at its pinned commit in the cache, fetched the first time (safe to race)."""
    pack = pinned(name, registry)
    assert pack.commit is not None
    try:
        return fetch_pack(name, pack.repo, pack.commit, cache, git_attempts=GIT_ATTEMPTS)
    except LocalComfyError as exc:
        raise PackUnavailable(str(exc)) from None


def install_packs(
    custom_nodes: Path, names: list[str] | tuple[str, ...], cache: Path = CACHE, registry: Registry | None = None
) -> list[Path]:
    """Copy the named packs into a ComfyUI custom_nodes folder; PackUnavailable says how to provide one."""
    installed = []
    for name in names:
        source = ensure_pack(name, cache, registry)
        dest = custom_nodes / name
        shutil.copytree(source, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        installed.append(dest)
    return installed


def requirements_python(
    comfy_python: Path, names: list[str], cache: Path = CACHE, registry: Registry | None = None
) -> tuple[Path, dict[str, str]]:
    """A python for ComfyUI with the named packs' requirements installed (an overlay venv over `comfy_python`):
    (its path, pack -> the requirement that could not be installed)."""
    sources = [ensure_pack(name, cache, registry) for name in names]
    return pack_python(comfy_python, sources, cache)


def install_available(
    custom_nodes: Path, cache: Path = CACHE, registry: Registry | None = None
) -> tuple[list[str], dict[str, str]]:
    """Every registered pack that can be had, for the local stack: (installed names, name -> why not)."""
    installed, problems = [], {}
    for pack in (registry or default_registry()).packs():
        try:
            install_packs(custom_nodes, [pack.name], cache, registry)
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
