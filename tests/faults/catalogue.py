"""The fault catalogue: deployment faults people hit in the field, each staged against the real stack.

One row per fault: how it is staged (on the disk of a private stack before ComfyUI starts, or as the
job sent), the public thread it was drawn from, and what diagnose or generate must answer (a code and
a piece of the message or fix that names the cause). docs/faults.md is the same table for people;
tests/faults/test_faults.py checks they agree. Start-up faults live in tests/start_failures/ (issue 12).
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def safetensors_bytes(data_len: int = 4, declared_end: int | None = None) -> bytes:
    """A small valid safetensors file (or one whose header declares more data than it holds)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, declared_end or data_len]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * data_len


@dataclass(frozen=True)
class Layout:
    """Paths of one private stack: the image's ComfyUI dir and the stand-in network volume."""

    comfy: Path
    volume: Path


def write(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------------
# Disk faults (staged before the stack starts; judged by one diagnose call)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiskFault:
    id: str
    area: str
    fault: str
    source: str
    stage: Callable[[Layout], str]  # returns the path the finding must name
    code: str


def _dangling_folder(s: Layout) -> str:
    (s.volume / "ComfyUI/models").mkdir(parents=True, exist_ok=True)
    link = s.volume / "ComfyUI/models/loras"
    os.symlink(s.volume / "gone/loras", link)
    return str(link)


def _folder_is_file(s: Layout) -> str:
    return str(write(s.volume / "models/vae", b"wget -O models/vae wrote this"))


def _dangling_file(s: Layout) -> str:
    link = s.volume / "models/controlnet/linked.safetensors"
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink("/nonexistent/cache/model.safetensors", link)
    return str(link)


def _empty(s: Layout) -> str:
    return str(write(s.volume / "models/upscale_models/4x_empty.pth"))


def _truncated(s: Layout) -> str:
    return str(write(s.volume / "models/checkpoints/truncated.safetensors", safetensors_bytes(4, declared_end=4096)))


def _html(s: Layout) -> str:
    page = b"<!DOCTYPE html><html><head><title>Sign in | Civitai</title></head><body>login</body></html>"
    return str(write(s.volume / "models/loras/civitai_login.safetensors", page))


def _lfs_pointer(s: Layout) -> str:
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:4e1b\nsize 6938078334\n"
    return str(write(s.volume / "models/checkpoints/lfs_pointer.safetensors", pointer))


def _ckpt_html(s: Layout) -> str:
    return str(write(s.volume / "models/checkpoints/old_model.ckpt", b"<html><body>403 Forbidden</body></html>"))


def _ckpt_truncated_zip(s: Layout) -> str:
    return str(write(s.volume / "models/upscale_models/cut.pth", b"PK\x03\x04" + b"\0" * 200))


def _gguf_bad(s: Layout) -> str:
    return str(write(s.volume / "models/diffusion_models/wan_q4.gguf", b"<html>rate limited</html>" + b"\0" * 64))


def _layout_lowercase(s: Layout) -> str:
    write(s.volume / "comfyui/models/checkpoints/third_layout.safetensors", safetensors_bytes())
    return str(s.volume / "comfyui/models")


def _layout_root(s: Layout) -> str:
    write(s.volume / "checkpoints/on_root.safetensors", safetensors_bytes())
    return str(s.volume)


def _layout_workspace(s: Layout) -> str:
    write(s.volume / "workspace/ComfyUI/models/loras/pod_layout.safetensors", safetensors_bytes())
    return str(s.volume / "workspace/ComfyUI/models")


def _layout_case(s: Layout) -> str:
    write(s.volume / "Models/vae/capital.safetensors", safetensors_bytes())
    return str(s.volume / "Models")


def _custom_folder(s: Layout) -> str:
    return str(write(s.volume / "models/ultralytics/bbox/hand_yolov8s.pt", b"\x80\x02}q\x00."))


def _fifo(s: Layout) -> str:
    path = s.volume / "models/embeddings/pipe.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return str(path)


def _a1111_folder(s: Layout) -> str:
    return str(write(s.volume / "models/Stable-diffusion/realisticVision.safetensors", safetensors_bytes()))


def _singular_folder(s: Layout) -> str:
    return str(write(s.volume / "models/lora/style.safetensors", safetensors_bytes()))


DISK_FAULTS: tuple[DiskFault, ...] = (
    DiskFault(
        "dangling-folder-link",
        "model folders",
        "a model folder is a symlink to storage that is not mounted",
        "https://github.com/willmiao/ComfyUI-Lora-Manager/issues/392",
        _dangling_folder,
        "MODEL_FOLDER_DANGLING_LINK",
    ),
    DiskFault(
        "folder-is-file",
        "model folders",
        "`wget -O models/<folder>` without the folder: a file where the folder should be",
        "(staged only)",
        _folder_is_file,
        "MODEL_FOLDER_IS_FILE",
    ),
    DiskFault(
        "dangling-file-link",
        "model files",
        "a model file symlinked into a cache that is gone",
        "https://github.com/gokayfem/ComfyUI_VLM_nodes/issues/55",
        _dangling_file,
        "MODEL_FILE_DANGLING_LINK",
    ),
    DiskFault(
        "zero-byte",
        "model files",
        "a 0-byte model file left by an interrupted download",
        "https://github.com/hiyouga/LlamaFactory/issues/327",
        _empty,
        "MODEL_FILE_EMPTY",
    ),
    DiskFault(
        "truncated-safetensors",
        "model files",
        "a truncated .safetensors (MetadataIncompleteBuffer at load time)",
        "https://github.com/Gourieff/ComfyUI-ReActor/issues/80",
        _truncated,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "html-as-safetensors",
        "model files",
        "a Civitai login page saved as .safetensors (HeaderTooLarge at load time)",
        "https://github.com/deepbeepmeep/Wan2GP/issues/1805",
        _html,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "git-lfs-pointer",
        "model files",
        "a git-lfs pointer cloned instead of the model",
        "https://github.com/Guang000/Generative-Dataset-Distillation-Based-on-Diffusion-Model/issues/2",
        _lfs_pointer,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "ckpt-is-html",
        "model files",
        "a .ckpt that is an error page (`UnpicklingError: invalid load key`)",
        "https://github.com/Iyashinouta/sd-model-downloader/issues/11",
        _ckpt_html,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "torch-zip-truncated",
        "model files",
        "a torch zip checkpoint cut short (no end-of-archive record)",
        "https://github.com/Comfy-Org/ComfyUI/issues/15602",
        _ckpt_truncated_zip,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "gguf-not-gguf",
        "model files",
        "a .gguf that is not GGUF (a rate-limit page)",
        "https://github.com/artokun/comfyui-mcp/issues/473",
        _gguf_bad,
        "MODEL_FILE_CORRUPT",
    ),
    DiskFault(
        "layout-comfyui-lowercase",
        "volume layouts",
        "models under /runpod-volume/comfyui/models (a third layout)",
        "issue 13 (the third layout it names)",
        _layout_lowercase,
        "MODEL_LAYOUT_NOT_SCANNED",
    ),
    DiskFault(
        "layout-volume-root",
        "volume layouts",
        "model folders straight on the volume (/runpod-volume/checkpoints)",
        "https://github.com/runpod-workers/worker-comfyui/pull/185",
        _layout_root,
        "MODEL_LAYOUT_NOT_SCANNED",
    ),
    DiskFault(
        "layout-pod-workspace",
        "volume layouts",
        "a pod's /workspace/ComfyUI/models copied onto the volume as is",
        "https://github.com/runpod-workers/worker-comfyui/issues/72",
        _layout_workspace,
        "MODEL_LAYOUT_NOT_SCANNED",
    ),
    DiskFault(
        "layout-case",
        "volume layouts",
        "/runpod-volume/Models (case differs; Linux is case-sensitive)",
        "(staged only)",
        _layout_case,
        "MODEL_LAYOUT_NOT_SCANNED",
    ),
    DiskFault(
        "custom-folder-unscanned",
        "model folders",
        "a pack's own model folder (ultralytics) that extra_model_paths.yaml does not register",
        "https://github.com/runpod-workers/worker-comfyui/issues/91",
        _custom_folder,
        "MODEL_NOT_SEEN",
    ),
    DiskFault(
        "a1111-folder-name",
        "model folders",
        "models kept in Automatic1111's folder names (models/Stable-diffusion)",
        "https://github.com/yolain/ComfyUI-Easy-Use/issues/753",
        _a1111_folder,
        "MODEL_NOT_SEEN",
    ),
    DiskFault(
        "singular-folder-name",
        "model folders",
        "LoRAs in models/lora instead of models/loras",
        "https://github.com/mirabarukaso/character_select_stand_alone_app/issues/66",
        _singular_folder,
        "MODEL_NOT_SEEN",
    ),
    DiskFault(
        "fifo",
        "model files",
        "a fifo / device node with a model extension (staged; no field report)",
        "(staged only)",
        _fifo,
        "MODEL_FILE_NOT_REGULAR",
    ),
)


def stage_models(s: Layout) -> dict[str, Path]:
    """The valid model files the job rows refer to (tiny, valid safetensors)."""
    return {
        "ckpt": write(s.volume / "models/checkpoints/fault_ok.safetensors", safetensors_bytes()),
        "lora_sub": write(s.volume / "models/loras/styles/Detail Tweaker.safetensors", safetensors_bytes()),
        "unet": write(s.volume / "models/unet/flux1-schnell.safetensors", safetensors_bytes()),
        "upscale": write(s.comfy / "models/upscale_models/RealESRGAN_x4.pth", b"\x80\x02}q\x00."),
    }


def stage_skewed_pack(s: Layout) -> None:
    """A pack installed under a known pack's name (RES4LYF) whose version registers other class names."""
    pack = s.comfy / "custom_nodes/RES4LYF"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "__init__.py").write_text(
        "class ClownSamplerRenamed:\n"
        "    @classmethod\n"
        "    def INPUT_TYPES(cls):\n"
        "        return {'required': {}}\n"
        "    RETURN_TYPES = ()\n"
        "    FUNCTION = 'run'\n"
        "    CATEGORY = 'test'\n"
        "    def run(self):\n"
        "        return ()\n"
        "NODE_CLASS_MAPPINGS = {'ClownSamplerRenamed': ClownSamplerRenamed}\n"
    )
    (pack / ".git").mkdir(exist_ok=True)  # checked out at another commit than the workflow pins
    (pack / ".git/HEAD").write_text(INSTALLED_SKEW_COMMIT + "\n")


INSTALLED_SKEW_COMMIT = "0123456789abcdef0123456789abcdef01234567"


# ---------------------------------------------------------------------------------------------
# Job faults (sent to generate; judged before queueing)
# ---------------------------------------------------------------------------------------------


def _empty_image(w: Any = 64) -> dict[str, Any]:
    return {"class_type": "EmptyImage", "inputs": {"width": w, "height": 64, "batch_size": 1, "color": 0}}


def _save(src: str = "1") -> dict[str, Any]:
    return {"class_type": "SaveImage", "inputs": {"images": [src, 0], "filename_prefix": "fault"}}


def _sd(
    ckpt: str = "fault_ok.safetensors",
    lora: str | None = None,
    sampler: str = "euler",
    scheduler: str = "normal",
    seed: int = 1,
) -> dict[str, Any]:
    """A checkpoint text-to-image graph (never run: the rows' faults are caught before queueing)."""
    wf: dict[str, Any] = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": 20,
                "cfg": 7.0,
                "sampler_name": sampler,
                "scheduler": scheduler,
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "fault"}},
    }
    if lora is not None:
        wf["10"] = {
            "class_type": "LoraLoader",
            "inputs": {
                "model": ["4", 0],
                "clip": ["4", 1],
                "lora_name": lora,
                "strength_model": 1.0,
                "strength_clip": 1.0,
            },
        }
        wf["3"]["inputs"]["model"] = ["10", 0]
    return wf


def _upscale(name: str) -> dict[str, Any]:
    return {
        "1": _empty_image(),
        "2": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": name}},
        "3": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["2", 0], "image": ["1", 0]}},
        "4": _save("3"),
    }


def _ui_node(node_id: int, node_type: str, widgets: Any, inputs=(), outputs=()) -> dict[str, Any]:
    return {
        "id": node_id,
        "type": node_type,
        "mode": 0,
        "inputs": [{"name": n, "type": t, "link": link} for n, t, link in inputs],
        "outputs": [{"name": n, "type": t, "links": links} for n, t, links in outputs],
        "widgets_values": widgets,
    }


def _ui(nodes: list[dict], links: list[list]) -> dict[str, Any]:
    return {"last_node_id": 9, "last_link_id": 9, "nodes": nodes, "links": links, "version": 0.4}


def _ui_smoke(empty_widgets: list[Any], middle: tuple[str, list[Any]] = ("ImageInvert", [])) -> dict[str, Any]:
    return _ui(
        [
            _ui_node(1, "EmptyImage", empty_widgets, outputs=[("IMAGE", "IMAGE", [1])]),
            _ui_node(2, middle[0], middle[1], inputs=[("image", "IMAGE", 1)], outputs=[("IMAGE", "IMAGE", [2])]),
            _ui_node(3, "SaveImage", ["fault"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"]],
    )


def _ui_lora_missing() -> dict[str, Any]:
    return _ui(
        [
            _ui_node(1, "EmptyImage", [64, 64, 1, 0], outputs=[("IMAGE", "IMAGE", [1])]),
            _ui_node(4, "UpscaleModelLoader", ["4x-UltraSharp.pth"], outputs=[("UPSCALE_MODEL", "UPSCALE_MODEL", [3])]),
            _ui_node(
                2,
                "ImageUpscaleWithModel",
                [],
                inputs=[("upscale_model", "UPSCALE_MODEL", 3), ("image", "IMAGE", 1)],
                outputs=[("IMAGE", "IMAGE", [2])],
            ),
            _ui_node(3, "SaveImage", ["fault"], inputs=[("images", "IMAGE", 2)]),
        ],
        [[1, 1, 0, 2, 1, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 4, 0, 2, 0, "UPSCALE_MODEL"]],
    )


@dataclass(frozen=True)
class JobFault:
    id: str
    area: str
    fault: str
    source: str
    job: Callable[[], dict[str, Any]]  # the job input sent to generate
    code: str
    says: str  # a piece of the error message or fix that names the cause


def _lora_missing() -> dict[str, Any]:
    return {"workflow": _sd(lora="add_detail.safetensors")}


JOB_FAULTS: tuple[JobFault, ...] = (
    JobFault(
        "model-missing-lora",
        "models",
        "a LoRA that is not on the disk or volume (`lora_name: ... not in []`)",
        "https://github.com/Comfy-Org/ComfyUI/issues/7885",
        _lora_missing,
        "MODEL_MISSING",
        "models/loras/",
    ),
    JobFault(
        "model-missing-checkpoint",
        "models",
        "the checkpoint the workflow names is not on the worker (`ckpt_name ... not in []`)",
        "https://github.com/ai-dock/comfyui/issues/75",
        lambda: {"workflow": _sd(ckpt="v1-5-pruned-emaonly.ckpt")},
        "MODEL_MISSING",
        "models/checkpoints/",
    ),
    JobFault(
        "model-url-from-registry",
        "models",
        "an inline job names a model the registry knows: the fix carries the download URL",
        "https://github.com/Comfy-Org/ComfyUI/issues/8826",
        lambda: {"workflow": _sd(ckpt="sd_xl_base_1.0.safetensors")},
        "MODEL_MISSING",
        "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0",
    ),
    JobFault(
        "model-wrong-folder-unet",
        "models",
        "a FLUX checkpoint downloaded into models/unet but loaded with CheckpointLoaderSimple",
        "https://github.com/runpod-workers/worker-comfyui/issues/163",
        lambda: {"workflow": _sd(ckpt="flux1-schnell.safetensors")},
        "MODEL_IN_WRONG_FOLDER",
        "models/unet/flux1-schnell.safetensors",
    ),
    JobFault(
        "model-off-layout",
        "volume layouts",
        "the model is on the volume, but in a layout ComfyUI does not scan",
        "https://github.com/runpod-workers/worker-comfyui/pull/185",
        lambda: {"workflow": _sd(ckpt="on_root.safetensors")},
        "MODEL_IN_WRONG_FOLDER",
        "does not scan",
    ),
    JobFault(
        "model-trailing-space",
        "inputs",
        "a model name with a stray trailing space",
        "issue 13 (an inline job tried as a new user)",
        lambda: {"workflow": _sd(ckpt="fault_ok.safetensors ")},
        "MODEL_MISSING",
        "Did you mean 'fault_ok.safetensors'?",
    ),
    JobFault(
        "model-subfolder-prefix",
        "inputs",
        "a LoRA kept in a sub-folder, named without it",
        "https://github.com/badjeff/comfyui_lora_tag_loader/issues/4",
        lambda: {"workflow": _sd(lora="Detail Tweaker.safetensors")},
        "MODEL_MISSING",
        "Did you mean 'styles/Detail Tweaker.safetensors'?",
    ),
    JobFault(
        "model-windows-separator",
        "inputs",
        "a workflow made on Windows names `styles\\Detail Tweaker.safetensors`",
        "https://github.com/Kinglord/ComfyUI_LoRA_Sidebar/issues/13",
        lambda: {"workflow": _sd(lora="styles\\Detail Tweaker.safetensors")},
        "MODEL_MISSING",
        "Did you mean 'styles/Detail Tweaker.safetensors'?",
    ),
    JobFault(
        "model-case",
        "inputs",
        "a model name whose case differs (Windows is case-insensitive, the worker is not)",
        "https://github.com/JasonS09/comfy_sd_krita_plugin/issues/20",
        lambda: {"workflow": _sd(ckpt="Fault_OK.safetensors")},
        "MODEL_MISSING",
        "Did you mean 'fault_ok.safetensors'?",
    ),
    JobFault(
        "model-absolute-path",
        "inputs",
        "the model given by its absolute volume path instead of its name",
        "https://github.com/runpod-workers/worker-comfyui/issues/48",
        lambda: {"workflow": _sd(ckpt="/runpod-volume/models/checkpoints/fault_ok.safetensors")},
        "MODEL_MISSING",
        "Did you mean 'fault_ok.safetensors'?",
    ),
    JobFault(
        "model-no-extension",
        "inputs",
        "a model named without its extension",
        "https://github.com/asagi4/comfyui-prompt-control/issues/29",
        lambda: {"workflow": _upscale("RealESRGAN_x4")},
        "MODEL_MISSING",
        "Did you mean 'RealESRGAN_x4.pth'?",
    ),
    JobFault(
        "value-case",
        "inputs",
        "a sampler name typed with another case",
        "(staged only)",
        lambda: {"workflow": _sd(sampler="Euler")},
        "VALUE_NOT_IN_LIST",
        "Did you mean 'euler'?",
    ),
    JobFault(
        "link-to-missing-node",
        "workflow formats",
        "an input linked to a node id that is not in the workflow (`Exception when validating inner node`)",
        "issue 13 (an inline job tried as a new user)",
        lambda: {
            "workflow": {
                "1": _empty_image(),
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}},
                "3": _save("2"),
            }
        },
        "LINK_BROKEN",
        "node 99, which does not exist",
    ),
    JobFault(
        "link-bad-output",
        "workflow formats",
        "a link to an output index the node does not have",
        "(staged only)",
        lambda: {
            "workflow": {
                "1": _empty_image(),
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 3]}},
                "3": _save("2"),
            }
        },
        "LINK_BROKEN",
        "output 3 of node 1",
    ),
    JobFault(
        "input-missing",
        "inputs",
        "a required input left out of a hand-written API workflow",
        "https://github.com/NimaNzrii/comfyui-photoshop/issues/319",
        lambda: {
            "workflow": {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
                "3": _save(),
            }
        },
        "INPUT_MISSING",
        "'color'",
    ),
    JobFault(
        "value-out-of-range",
        "inputs",
        "a size beyond the node's maximum (`Value bigger than max`)",
        "(staged only)",
        lambda: {"workflow": {"1": _empty_image(999999), "3": _save()}},
        "VALUE_OUT_OF_RANGE",
        "width",
    ),
    JobFault(
        "value-wrong-type",
        "inputs",
        "a number sent as text by a client template",
        "https://github.com/kijai/ComfyUI-KJNodes/issues/408",
        lambda: {"workflow": {"1": _empty_image("sixty-four"), "3": _save()}},
        "VALUE_WRONG_TYPE",
        "width must be a number",
    ),
    JobFault(
        "node-missing-pack",
        "pack installs",
        "a node of a pack that is not installed",
        "https://github.com/Comfy-Org/ComfyUI/issues/9362",
        lambda: {"workflow": {"1": _empty_image(), "2": {"class_type": "UnetLoaderGGUF", "inputs": {}}, "3": _save()}},
        "NODE_MISSING",
        "ComfyUI-GGUF",
    ),
    JobFault(
        "node-version-skew",
        "pack versions",
        "the pack is installed, but its version renamed the node (old workflow, new pack)",
        "https://github.com/kijai/ComfyUI-CogVideoXWrapper/issues/285",
        lambda: {
            "workflow": {"1": _empty_image(), "2": {"class_type": "ClownsharKSampler_Beta", "inputs": {}}, "3": _save()}
        },
        "NODE_MISSING",
        "at commit 0123456789ab; this workflow pins 7750bf7800b6",
    ),
    JobFault(
        "pack-import-failed",
        "pack installs",
        "a node whose pack failed to import (missing requirement)",
        "https://github.com/Comfy-Org/ComfyUI/issues/8903",
        lambda: {"workflow": {"1": _empty_image(), "2": {"class_type": "RPBrokenNode", "inputs": {}}, "3": _save()}},
        "NODE_MISSING",
        "rp_broken_pack",
    ),
    JobFault(
        "no-output-node",
        "workflow formats",
        "a workflow without any output node (`Prompt has no outputs`)",
        "https://github.com/Comfy-Org/ComfyUI/issues/8195",
        lambda: {"workflow": {"1": _empty_image(), "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}}}},
        "NO_OUTPUT_NODE",
        "no output node",
    ),
    JobFault(
        "missing-class-type",
        "workflow formats",
        "a node without class_type (`Cannot execute because a node is missing the class_type property`)",
        "https://github.com/Comfy-Org/ComfyUI/issues/11717",
        lambda: {"workflow": {"1": {"inputs": {"width": 64}}, "3": _save()}},
        "WORKFLOW_INVALID",
        "class_type",
    ),
    JobFault(
        "editor-model-missing",
        "workflow formats",
        "an editor-format workflow whose model is missing: converted, then MODEL_MISSING",
        "https://github.com/ValyrianTech/ComfyUI_with_Flux/issues/11",
        lambda: {"workflow": _ui_lora_missing()},
        "MODEL_MISSING",
        "models/upscale_models/",
    ),
    JobFault(
        "editor-unknown-node",
        "workflow formats",
        "an editor-format workflow using a node (without widgets) this ComfyUI lacks",
        "https://github.com/Comfy-Org/ComfyUI/issues/10429",
        lambda: {"workflow": _ui_smoke([64, 64, 1, 0], ("ImageInvertFancy", []))},
        "NODE_MISSING",
        "ImageInvertFancy",
    ),
    JobFault(
        "editor-widget-shift",
        "pack versions",
        "an editor workflow saved with another node version: widget values no longer line up",
        "https://github.com/gokayfem/ComfyUI_VLM_nodes/issues/156",
        lambda: {"workflow": _ui_smoke([64, 64, 1, 0], ("ImageScale", [512, "nearest-exact", 512, 512, "disabled"]))},
        "WORKFLOW_UI_FORMAT",
        "5 saved widget value(s)",
    ),
    JobFault(
        "image-not-uploaded",
        "inputs",
        "LoadImage names a file that was never uploaded to the worker",
        "https://github.com/fictions-ai/sharing-is-caring/issues/9",
        lambda: {
            "workflow": {
                "1": {"class_type": "LoadImage", "inputs": {"image": "ComfyUI_temp_kqydq_00005_.png"}},
                "3": _save(),
            }
        },
        "VALUE_NOT_IN_LIST",
        "input.images",
    ),
    JobFault(
        "seed-minus-one",
        "inputs",
        'seed -1 sent for "random" (`Value -1 smaller than min of 0`)',
        "https://github.com/Stability-AI/StableSwarmUI/issues/348",
        lambda: {"workflow": _sd(seed=-1)},
        "VALUE_OUT_OF_RANGE",
        "seed=-1 is outside 0..",
    ),
    JobFault(
        "link-type-mismatch",
        "workflow formats",
        "an output of the wrong type wired into an input (`Return type mismatch between linked nodes`)",
        "https://github.com/ShmuelRonen/ComfyUI-LatentSyncWrapper/issues/19",
        lambda: {
            "workflow": {
                "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
                "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
                "3": _save("2"),
            }
        },
        "LINK_BROKEN",
        "LATENT",
    ),
    JobFault(
        "scheduler-from-a-pack",
        "pack installs",
        "a scheduler (beta57) that only exists while a pack patches the core lists",
        "https://github.com/rgthree/rgthree-comfy/issues/598",
        lambda: {"workflow": _sd(scheduler="beta57")},
        "VALUE_NOT_IN_LIST",
        "scheduler='beta57'",
    ),
    JobFault(
        "model-none-selected",
        "models",
        "a workflow saved while the editor had no model to offer (`ckpt_name: 'None' not in []`)",
        "https://github.com/cubiq/ComfyUI_InstantID/issues/114",
        lambda: {"workflow": _sd(ckpt="None")},
        "MODEL_MISSING",
        "No model is selected for 'ckpt_name'",
    ),
    JobFault(
        "model-missing-text-encoder",
        "models",
        "a text encoder missing from models/text_encoders (`clip_name: 'umt5_xxl…' not in []`)",
        "https://github.com/runpod-workers/worker-comfyui/issues/165",
        lambda: {
            "workflow": {
                "1": {
                    "class_type": "CLIPLoader",
                    "inputs": {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors", "type": "wan"},
                },
                "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 0]}},
                "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
                "4": _save("3"),
            }
        },
        "MODEL_MISSING",
        "models/text_encoders/",
    ),
)
