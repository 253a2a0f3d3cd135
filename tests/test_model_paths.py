"""extra_model_paths.yaml: a file placed in each folder of each layout is listed by the real ComfyUI."""

from __future__ import annotations

import pytest
import requests
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.stack

# Folders whose entries ComfyUI lists with other rules (directories, config files).
SPECIAL = {"diffusers": None, "configs": ".yaml"}


def layout_paths() -> list[tuple[str, str, str]]:
    """(section, folder, path relative to the section's base) for every entry of the shipped file."""
    data = yaml.safe_load((REPO / "extra_model_paths.yaml").read_text())
    rows = []
    for section, folders in data.items():
        for folder, value in folders.items():
            if folder in ("base_path", "is_default", "custom_nodes"):
                continue
            rows += [(section, folder, line.strip()) for line in str(value).splitlines() if line.strip()]
    return rows


def test_every_layout_covers_every_common_folder():
    data = yaml.safe_load((REPO / "extra_model_paths.yaml").read_text())
    assert [s["base_path"] for s in data.values()] == [
        "/comfyui/",
        "/comfyui/models-cache/",  # RunPod's model cache, linked at start: after the image, before the volume
        "/runpod-volume/",
        "/runpod-volume/ComfyUI/",
    ]
    required = {
        "checkpoints",
        "diffusion_models",
        "text_encoders",
        "clip_vision",
        "vae",
        "loras",
        "controlnet",
        "upscale_models",
        "embeddings",
    }
    for name, section in data.items():
        assert required <= set(section)
        if name == "runpod_model_cache":  # the worker's own links: canonical folder names only
            continue
        assert "models/unet/" in section["diffusion_models"] and "models/clip/" in section["text_encoders"]


def test_a_file_in_each_folder_of_each_layout_is_listed_by_comfyui(stack):
    bases = {
        "/comfyui/": stack.comfy_dir,
        "/comfyui/models-cache/": stack.comfy_dir / "models-cache",
        "/runpod-volume/": stack.volume_dir,
        "/runpod-volume/ComfyUI/": stack.volume_dir / "ComfyUI",
    }
    data = yaml.safe_load((REPO / "extra_model_paths.yaml").read_text())
    placed = []
    for section, folder, rel in layout_paths():
        if folder == "diffusers":
            continue
        ext = SPECIAL.get(folder) or ".safetensors"
        name = f"probe_{section}_{rel.strip('/').replace('/', '_')}{ext}"
        path = bases[data[section]["base_path"]] / rel / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\0" * 16)
        placed.append((folder, name, path))
    try:
        missing = []
        for folder, name, path in placed:
            listed = requests.get(f"{stack.comfy_url}/models/{folder}", timeout=10).json()
            if name not in listed:
                missing.append(str(path))
        assert missing == [], f"ComfyUI does not list: {missing}"
        assert len(placed) >= 4 * 17
    finally:
        for _, _, path in placed:
            path.unlink()
