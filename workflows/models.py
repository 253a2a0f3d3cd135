"""Model folders: ComfyUI's folder names, their aliases, and the loader inputs that name a model file."""

from __future__ import annotations

from dataclasses import dataclass, field

# ComfyUI serves these pairs from one list (folder_paths maps both names to the same paths).
FOLDER_ALIASES: dict[str, str] = {"unet": "diffusion_models", "clip": "text_encoders"}

# Every model folder ComfyUI 0.3.x knows, canonical names first.
MODEL_FOLDERS: tuple[str, ...] = (
    "checkpoints",
    "diffusion_models",
    "text_encoders",
    "vae",
    "loras",
    "clip_vision",
    "controlnet",
    "upscale_models",
    "embeddings",
    "hypernetworks",
    "style_models",
    "gligen",
    "photomaker",
    "vae_approx",
    "model_patches",
    "audio_encoders",
    "diffusers",
    "configs",
    "unet",
    "clip",
)

# (node class, input name) -> model folder, for loaders whose inputs name a file.
LOADER_INPUTS: dict[tuple[str, str], str] = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints",
    ("CheckpointLoader", "ckpt_name"): "checkpoints",
    ("ImageOnlyCheckpointLoader", "ckpt_name"): "checkpoints",
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders",
    ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name1"): "text_encoders",
    ("TripleCLIPLoader", "clip_name2"): "text_encoders",
    ("TripleCLIPLoader", "clip_name3"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("ControlNetLoader", "control_net_name"): "controlnet",
    ("UpscaleModelLoader", "model_name"): "upscale_models",
    ("StyleModelLoader", "style_model_name"): "style_models",
    ("WanVideoModelLoader", "model"): "diffusion_models",
    ("WanVideoVAELoader", "model_name"): "vae",
    ("LoadWanVideoT5TextEncoder", "model_name"): "text_encoders",
    ("WanVideoLoraSelect", "lora"): "loras",
}

MODEL_EXTENSIONS: frozenset[str] = frozenset(
    {".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".sft", ".pkl", ".onnx", ".yaml"}
)


# The network-volume layouts the image's extra_model_paths.yaml scans, relative to the volume root.
# The worker's diagnose and the client's volume check judge a volume against these same layouts.
VOLUME_LAYOUTS: tuple[str, ...] = ("models", "ComfyUI/models")


def canonical_folder(folder: str) -> str:
    return FOLDER_ALIASES.get(folder, folder)


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One model file found on disk by the worker."""

    folder: str  # canonical folder name the file sits in
    name: str  # path relative to that folder, '/'-separated: what ComfyUI would list
    path: str  # absolute path
    size_bytes: int
    source: str  # "image" | "cache" (RunPod's model cache, linked at start) | "volume" | "volume-unscanned"
    scanned: bool  # is the directory one that ComfyUI scans (per extra_model_paths)?


@dataclass(frozen=True, slots=True)
class ModelIndex:
    """What ComfyUI lists per folder and what the worker found on disk."""

    comfy_sees: dict[str, frozenset[str]]
    on_disk: tuple[ModelFile, ...] = ()
    checksums: dict[str, str] | None = None  # absolute path -> sha256, when asked for
    # folder/name -> why RunPod's model cache does not serve it yet (an unfinished download), for MODEL_MISSING
    cache_pending: dict[str, str] = field(default_factory=dict)
    # file name (without sub-folders) -> the files of that name, built once: a lookup per model
    # input must not scan every file (5,000 files x 10 model inputs was 6 ms per analysis).
    _by_basename: dict[str, tuple[ModelFile, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_basename: dict[str, list[ModelFile]] = {}
        for f in self.on_disk:
            by_basename.setdefault(f.name.rsplit("/", 1)[-1], []).append(f)
        object.__setattr__(self, "_by_basename", {k: tuple(v) for k, v in by_basename.items()})

    def sees(self, folder: str, name: str) -> bool:
        return name in self.comfy_sees.get(canonical_folder(folder), frozenset())

    def files_named(self, name: str) -> list[ModelFile]:
        return list(self._by_basename.get(name.rsplit("/", 1)[-1], ()))
