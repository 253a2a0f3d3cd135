"""The benchmark stack: the real local stack (CPU ComfyUI + worker, via entrypoint.sh) on free ports,
with 5,000 model files spread over the image's models dir and both network-volume layouts.

In-process handler calls get a Runtime pointing at the same ComfyUI (as tests/conftest.py does), so
handler time is measured without the RunPod local API in between.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._common import REPO
from tools.localstack import DEFAULT_COMFY_HOME, LocalStack, free_port

MODEL_FILES = 5000
# (models root relative to the run dir, share of the files)
MODEL_ROOTS = (("comfy/models", 0.25), ("runpod-volume/models", 0.55), ("runpod-volume/ComfyUI/models", 0.20))
# Folders and their weight: LoRAs dominate real collections.
MODEL_FOLDERS = (
    ("loras", 50),
    ("checkpoints", 12),
    ("diffusion_models", 8),
    ("unet", 2),
    ("text_encoders", 5),
    ("clip", 2),
    ("vae", 5),
    ("controlnet", 6),
    ("upscale_models", 4),
    ("embeddings", 4),
    ("clip_vision", 2),
)
EXTENSIONS = (".safetensors",) * 8 + (".ckpt", ".pt", ".pth", ".gguf")


def make_model_files(run_dir: Path, count: int = MODEL_FILES, seed: int = 5000) -> dict[str, Any]:
    """Tiny model files with valid headers (diagnose reads headers only), a third of the LoRAs in
    sub-folders, plus the registered workflows' models as sparse files of their real size."""
    rnd = random.Random(seed)
    folders = [f for f, w in MODEL_FOLDERS for _ in range(w)]
    per_root: dict[str, int] = {}
    made = 0
    for root, share in MODEL_ROOTS:
        n = round(count * share) if root != MODEL_ROOTS[-1][0] else count - made
        per_root[root] = n
        for _ in range(n):
            folder = rnd.choice(folders)
            sub = f"pack_{rnd.randrange(12):02d}/" if folder == "loras" and rnd.random() < 0.33 else ""
            path = run_dir / root / folder / f"{sub}{folder}_{made:05d}{rnd.choice(EXTENSIONS)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_model_header(path.suffix))  # diagnose reads headers: give each a valid one
            made += 1
    registered = 0
    from workflows.registry import default_registry

    for entry in default_registry().entries.values():
        for model in entry.models:
            path = run_dir / "runpod-volume/models" / model.folder / model.name
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("wb") as fh:
                    fh.write(_model_header(path.suffix, model.size_bytes or 0))
                    fh.truncate(model.size_bytes or 0)  # sparse: no disk used
                registered += 1
    return {"files": made + registered, "generic": made, "registered_models": registered, "per_root": per_root}


def _model_header(suffix: str, size: int = 0) -> bytes:
    """The first bytes of a well-formed model file of `size` bytes (a minimal one when 0)."""
    if suffix == ".safetensors":
        head = b'{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}'
        n = len(head % (0, 0)) + 40
        data = max(0, size - 8 - n) if size else 4
        header = (head % (data, data)).ljust(n)
        return struct.pack("<Q", n) + header + (b"" if size else b"\0" * data)
    if suffix == ".gguf":
        return b"GGUF" + struct.pack("<I", 3) + b"\0" * 16
    return b"\x80\x02}q\x00."  # a pickle (.ckpt / .pt / .pth)


@dataclass
class BenchStack:
    """A LocalStack in a temporary run dir; `start()` returns once ComfyUI and the worker answer."""

    run_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="comfy-bench-")))
    model_files: int = MODEL_FILES
    env: dict[str, str] = field(default_factory=dict)
    handler_python: str | None = None
    stack: LocalStack | None = None
    models: dict[str, Any] = field(default_factory=dict)

    def start(self, wait: float = 180.0) -> BenchStack:
        if not (DEFAULT_COMFY_HOME / ".installed").is_file():
            raise RuntimeError(f"ComfyUI is not installed at {DEFAULT_COMFY_HOME}: run scripts/install_comfyui.sh")
        if self.model_files:
            self.models = make_model_files(self.run_dir, self.model_files)
        kwargs: dict[str, Any] = {}
        if self.handler_python:
            kwargs["handler_python"] = self.handler_python
        self.stack = LocalStack(
            self.run_dir, comfy_port=free_port(), api_port=free_port(), env_overrides=self.env, **kwargs
        )
        self.stack.start(wait=wait)
        if wait > 0 and self.env.get("SELF_CHECK_AT_START") != "0":  # wait=0: the caller times the start itself
            self._wait_for_startup_selfcheck(wait)
        return self

    def _wait_for_startup_selfcheck(self, timeout: float) -> None:
        """Until the worker's start-up self-check (diagnose + a smoke job) has printed its summary, its
        job runs beside the benchmark's on the same ComfyUI, and its clean-up sweep of the output dir
        can take a benchmark job's files (as tests/conftest.py's wait_for_startup_selfcheck says)."""
        assert self.stack is not None
        deadline = time.monotonic() + timeout
        while "self-check:" not in self.stack.log_file.read_text(errors="replace"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker's start-up self-check did not finish within {timeout} s")
            time.sleep(0.1)

    def settings(self, **overrides: str):
        from handler.config import Settings

        s = self.stack
        assert s is not None
        env = {k: v for k, v in s.env().items() if k.startswith(("COMFY_", "RUNPOD_"))}
        env.update(
            COMFY_URL=s.comfy_url,
            COMFY_INPUT_DIR=str(s.comfy_dir / "input"),
            COMFY_OUTPUT_DIR=str(s.comfy_dir / "output"),
            COMFY_TEMP_DIR=str(s.comfy_dir / "temp"),
            DISK_LOW_GB="0.5",
        )
        env.update(overrides)
        return Settings.from_env(env)

    def stop(self, keep: bool = False) -> None:
        if self.stack is not None:
            self.stack.stop()
        if not keep:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def use_runtime(runtime: Any) -> None:
    """Make handler.worker.handle() use this Runtime (the worker builds its own from the environment)."""
    import handler.worker as worker

    worker._runtime = runtime


def comfy_stats(url: str) -> dict[str, Any]:
    import requests

    try:
        return requests.get(f"{url}/system_stats", timeout=5).json()
    except (requests.RequestException, ValueError):
        return {}


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env
