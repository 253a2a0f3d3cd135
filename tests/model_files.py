"""Model files for tests and benchmarks, real ones that ComfyUI's core loaders load on CPU, and RunPod's
model cache staged exactly as huggingface_hub writes it (huggingface_hub itself, downloading from
tests/hf_standin.py, the local server that answers as huggingface.co does)."""

from __future__ import annotations

import json
import random
import struct
import subprocess
from array import array
from pathlib import Path


def tiny_upscale_model(seed: int = 28, features: int = 8, scale: int = 2) -> bytes:
    """A Real-ESRGAN Compact (SRVGGNetCompact) ×`scale` upscaler with small random weights, as
    safetensors: ComfyUI's UpscaleModelLoader (spandrel) loads it on CPU. ~3 KB."""
    rnd = random.Random(seed)
    out = 3 * scale * scale
    shapes = {
        "body.0.weight": [features, 3, 3, 3],
        "body.0.bias": [features],
        "body.1.weight": [features],  # PReLU
        "body.2.weight": [features, features, 3, 3],
        "body.2.bias": [features],
        "body.3.weight": [features],
        "body.4.weight": [out, features, 3, 3],
        "body.4.bias": [out],
    }
    header: dict[str, object] = {}
    data = bytearray()
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        values = array("f", (rnd.uniform(-0.05, 0.05) for _ in range(count)))
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * count]}
        data += values.tobytes()
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + bytes(data)


def stage_cache(cache_dir: Path, endpoint: str, repo: str, paths: list[str]) -> list[str]:
    """Download `paths` of `repo` into `cache_dir` with huggingface_hub from `endpoint` (tests/hf_standin.py,
    which answers as huggingface.co does): the snapshot paths it returns. The layout is huggingface_hub's
    own: refs/main, snapshots/<commit>/<path> linked into blobs/<sha256>."""
    from huggingface_hub import hf_hub_download

    return [hf_hub_download(repo, path, cache_dir=str(cache_dir), endpoint=endpoint) for path in paths]


_TAESD = """
import contextlib, sys, torch
for name, arg in (("nms", "dets"), ("qnms", "qdets")):  # the CPU torchvision of tools/localstack (launch.py)
    with contextlib.suppress(RuntimeError):
        torch.library.define(f"torchvision::{name}", f"(Tensor {arg}, Tensor scores, float iou_threshold) -> Tensor")
out, root = sys.argv[1], sys.argv[2]
sys.path.insert(0, root)
import comfy.options
comfy.options.enable_args_parsing()
sys.argv = ["main.py", "--cpu"]
from safetensors.torch import save_file
from comfy.taesd.taesd import TAESD
torch.manual_seed(28)
model = TAESD()
for part in ("encoder", "decoder"):
    sd = getattr(model, f"taesd_{part}").state_dict()
    save_file({k: v.contiguous() for k, v in sd.items()}, f"{out}/taesd_{part}.safetensors")
"""


def make_taesd(python: str, comfy_root: str, out_dir: Path) -> None:
    """TAESD's encoder and decoder with random weights (ComfyUI's own classes, in its venv), as the two
    vae_approx files VAELoader's "taesd" loads: a real VAE whose decode goes through ComfyUI's model
    management ("Requested to load TAESD", "loaded completely"). ~10 MB."""
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([python, "-c", _TAESD, str(out_dir), comfy_root], check=True, capture_output=True, timeout=120)
