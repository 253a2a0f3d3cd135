"""Print what went into the image as JSON (written to /opt/worker/build-info.json by the final stage)."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path

COMFY = Path(os.environ.get("COMFY_DIR", "/comfyui"))
COMFY_VENV = Path(os.environ.get("COMFY_PYTHON", "/opt/comfy-venv/bin/python")).parent.parent


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _dist_versions(names: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for info in COMFY_VENV.glob("lib/python*/site-packages/*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        if name.lower() in names:
            found[name.lower()] = version
    return found


def _lines(path: Path) -> list[str]:
    text = _read(path) or ""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def _freeze(venv: Path) -> list[str]:
    proc = subprocess.run([str(venv / "bin/python"), "-m", "pip", "freeze"], capture_output=True, text=True)
    return sorted(proc.stdout.split()) if proc.returncode == 0 else []


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def main() -> None:
    custom = COMFY / "custom_nodes"
    packs = (
        {p.name: _read(p / ".pack-source") for p in sorted(custom.iterdir()) if p.is_dir()} if custom.is_dir() else {}
    )
    models = sorted(str(p.relative_to(COMFY / "models")) for p in (COMFY / "models").rglob("*") if p.is_file())
    info = {
        "comfyui_source": _read(COMFY / ".source"),
        "comfyui_version": (_read(COMFY / "comfyui_version.py") or "").rpartition("=")[2].strip().strip("\"'") or None,
        "install_packs": os.environ.get("INSTALL_PACKS", "1"),
        "packs": packs,
        "baked_models": models,
        "torch": _dist_versions(("torch", "torchvision", "torchaudio")),
        "python": platform.python_version(),
        "comfy_main": os.environ.get("COMFY_MAIN"),
        # what ComfyUI's and the packs' requirements were resolved under, and what that gave
        "comfy_constraints": _lines(COMFY_VENV / "constraints.txt"),
        "comfy_venv_freeze": _freeze(COMFY_VENV),
        "worker_lock_sha256": _sha256(Path("/opt/venv/requirements.lock")),
    }
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
