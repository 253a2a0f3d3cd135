"""A local server that answers as huggingface.co's `resolve` endpoint does, a tiny real model, and the
Hugging Face cache staged by huggingface_hub itself (the copy in ComfyUI's venv, a dependency of
transformers) downloading from that server: the layout RunPod's model cache uses, byte for byte.

What huggingface_hub reads from huggingface.co for a download (huggingface_hub 2.x,
file_download.get_hf_file_metadata): a HEAD on `/<repo>/resolve/<revision>/<path>` answering
`X-Repo-Commit` (the commit the revision resolves to), `ETag` (or `X-Linked-Etag` for LFS files) and
`Content-Length` (or `X-Linked-Size`), then a GET of the same URL for the bytes.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import subprocess
import threading
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

COMMIT = "4f1e2d3c4b5a69788796a5b4c3d2e1f0a9b8c7d6"


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


class _Handler(BaseHTTPRequestHandler):
    files: ClassVar[dict[str, dict[str, bytes]]] = {}  # repo -> path -> bytes (set per server)

    def log_message(self, *_args: object) -> None:
        pass

    def _find(self) -> bytes | None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        if len(parts) < 5 or parts[2] != "resolve" or parts[3] not in ("main", COMMIT):
            return None
        return self.files.get("/".join(parts[:2]), {}).get("/".join(parts[4:]))

    def _headers(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()

    def do_HEAD(self) -> None:
        body = self._find()
        if body is None:
            self.send_response(404)
            self.send_header("X-Error-Code", "EntryNotFound")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._headers(body)

    def do_GET(self) -> None:
        body = self._find()
        if body is None:
            self.do_HEAD()
            return
        self._headers(body)
        self.wfile.write(body)


@contextmanager
def hf_server(files: dict[str, dict[str, bytes]]) -> Iterator[str]:
    """The server's endpoint URL while the block runs."""
    handler = type("Handler", (_Handler,), {"files": files})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


_DOWNLOAD = """
import sys
from huggingface_hub import hf_hub_download
cache, repo = sys.argv[1], sys.argv[2]
for name in sys.argv[3:]:
    print(hf_hub_download(repo, name, cache_dir=cache))
"""


def stage_cache(python: str, cache_dir: Path, endpoint: str, repo: str, paths: list[str]) -> list[str]:
    """Download `paths` of `repo` into `cache_dir` with huggingface_hub (in the interpreter `python`):
    the snapshot paths it returns."""
    env = {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_XET": "1", "PATH": "/usr/bin"}
    out = subprocess.run(
        [python, "-c", _DOWNLOAD, str(cache_dir), repo, *paths],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


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
