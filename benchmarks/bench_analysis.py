"""Registry analysis of a 30-node workflow: `workflows.analysis.analyze_workflow` on real data.

The context is the real deployment: the live ComfyUI's /object_info (every core node, loader combos
listing the 5,000 model files), the model index the worker builds (what ComfyUI lists per folder +
every file on disk), the parsed start-up log and the registry's pack lookup. The workflow is a
30-node SDXL-style graph (checkpoint, a six-LoRA chain, ControlNet, hires pass, upscaler, image
post-processing, three outputs) whose models all exist, described by a registry Entry with each
model's size, so every check runs its full path (links, types, combos, ranges, model presence and
size) and the result is no error. Pure function, timed with perf_counter, many repetitions.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

import requests

from benchmarks._common import reps, stats, write_result
from benchmarks.stack import BenchStack

TARGET_P50_MS = 5.0


def pick_models(index: Any, rnd: random.Random) -> dict[str, list[str]]:
    by_folder: dict[str, list[str]] = {}
    for f in index.on_disk:
        if f.scanned:
            by_folder.setdefault(f.folder, []).append(f.name)
    return {k: sorted(v) for k, v in by_folder.items()}


def workflow_30(
    models: dict[str, list[str]], rnd: random.Random
) -> tuple[dict[str, Any], list[tuple[str, str, str, str]]]:
    """(API-format workflow of 30 nodes, [(node, input, folder, model name)])."""
    ckpt = rnd.choice(models["checkpoints"])
    loras = rnd.sample(models["loras"], 6)
    vae, upscaler, cnet = (
        rnd.choice(models["vae"]),
        rnd.choice(models["upscale_models"]),
        rnd.choice(models["controlnet"]),
    )
    wf: dict[str, Any] = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPSetLastLayer", "inputs": {"clip": ["1", 1], "stop_at_clip_layer": -2}},
    }
    model, clip = ["1", 0], ["2", 0]
    for i, lora in enumerate(loras):
        node = str(3 + i)  # 3..8
        wf[node] = {
            "class_type": "LoraLoader",
            "inputs": {"model": model, "clip": clip, "lora_name": lora, "strength_model": 0.8, "strength_clip": 0.8},
        }
        model, clip = [node, 0], [node, 1]
    wf.update(
        {
            "9": {"class_type": "FreeU_V2", "inputs": {"model": model, "b1": 1.3, "b2": 1.4, "s1": 0.9, "s2": 0.2}},
            "10": {
                "class_type": "CLIPTextEncode",
                "inputs": {"text": "a lighthouse at dusk, film grain", "clip": clip},
            },
            "11": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry, low quality", "clip": clip}},
            "12": {"class_type": "LoadImage", "inputs": {"image": "pose.png"}},
            "13": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": cnet}},
            "14": {
                "class_type": "ControlNetApplyAdvanced",
                "inputs": {
                    "positive": ["10", 0],
                    "negative": ["11", 0],
                    "control_net": ["13", 0],
                    "image": ["12", 0],
                    "strength": 0.7,
                    "start_percent": 0.0,
                    "end_percent": 0.8,
                    "vae": ["15", 0],
                },
            },
            "15": {"class_type": "VAELoader", "inputs": {"vae_name": vae}},
            "16": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
            "17": {
                "class_type": "KSampler",
                "inputs": {
                    "model": ["9", 0],
                    "seed": 42,
                    "steps": 25,
                    "cfg": 7.0,
                    "sampler_name": "dpmpp_2m",
                    "scheduler": "karras",
                    "positive": ["14", 0],
                    "negative": ["14", 1],
                    "latent_image": ["16", 0],
                    "denoise": 1.0,
                },
            },
            "18": {"class_type": "VAEDecode", "inputs": {"samples": ["17", 0], "vae": ["15", 0]}},
            "19": {"class_type": "SaveImage", "inputs": {"images": ["18", 0], "filename_prefix": "base"}},
            "20": {
                "class_type": "LatentUpscaleBy",
                "inputs": {"samples": ["17", 0], "upscale_method": "nearest-exact", "scale_by": 1.5},
            },
            "21": {
                "class_type": "KSampler",
                "inputs": {
                    "model": ["9", 0],
                    "seed": 42,
                    "steps": 12,
                    "cfg": 6.0,
                    "sampler_name": "euler",
                    "scheduler": "normal",
                    "positive": ["14", 0],
                    "negative": ["14", 1],
                    "latent_image": ["20", 0],
                    "denoise": 0.45,
                },
            },
            "22": {"class_type": "VAEDecode", "inputs": {"samples": ["21", 0], "vae": ["15", 0]}},
            "23": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": upscaler}},
            "24": {"class_type": "ImageUpscaleWithModel", "inputs": {"upscale_model": ["23", 0], "image": ["22", 0]}},
            "25": {
                "class_type": "ImageScale",
                "inputs": {
                    "image": ["24", 0],
                    "upscale_method": "lanczos",
                    "width": 2048,
                    "height": 2048,
                    "crop": "center",
                },
            },
            "26": {
                "class_type": "ImageSharpen",
                "inputs": {"image": ["25", 0], "sharpen_radius": 1, "sigma": 0.6, "alpha": 0.4},
            },
            "27": {"class_type": "ImageBlur", "inputs": {"image": ["25", 0], "blur_radius": 2, "sigma": 1.0}},
            "28": {
                "class_type": "ImageBlend",
                "inputs": {"image1": ["26", 0], "image2": ["27", 0], "blend_factor": 0.2, "blend_mode": "soft_light"},
            },
            "29": {"class_type": "SaveImage", "inputs": {"images": ["28", 0], "filename_prefix": "hires"}},
            "30": {"class_type": "PreviewImage", "inputs": {"images": ["24", 0]}},
        }
    )
    used = [
        ("1", "ckpt_name", "checkpoints", ckpt),
        ("13", "control_net_name", "controlnet", cnet),
        ("15", "vae_name", "vae", vae),
        ("23", "model_name", "upscale_models", upscaler),
    ]
    used += [(str(3 + i), "lora_name", "loras", lora) for i, lora in enumerate(loras)]
    return wf, used


def build_context(bs: BenchStack, runtime: Any) -> tuple[Any, Any, Any]:
    """(object_info, ModelIndex, imports) of the running deployment, gathered the way diagnose does."""
    from handler.facts import comfy_model_lists, model_roots, scan_model_files
    from workflows.models import ModelFile, ModelIndex
    from workflows.startup_log import parse_import_report

    assert bs.stack is not None
    object_info = requests.get(f"{bs.stack.comfy_url}/object_info", timeout=60).json()
    comfy_sees, _ = comfy_model_lists(runtime)
    files = tuple(
        ModelFile(folder, name, path, size, source, name in comfy_sees.get(folder, frozenset()))
        for folder, name, path, size, source in scan_model_files(model_roots(runtime))
    )
    imports = tuple(parse_import_report(bs.stack.comfy_log.read_text(errors="replace")))
    return object_info, ModelIndex(comfy_sees, files), imports


def run(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    from workflows.analysis import Context, analyze_workflow, pack_lookup, workflow_report
    from workflows.registry import Entry, ModelSpec, Target, default_registry

    object_info, index, imports = build_context(bs, runtime)
    rnd = random.Random(30)
    workflow, used = workflow_30(pick_models(index, rnd), rnd)
    path = bs.run_dir / "bench30.json"
    path.write_text(json.dumps(workflow))
    sizes = {(f.folder, f.name): f.size_bytes for f in index.on_disk}
    entry = Entry(
        id="bench30",
        title="30-node SDXL-style benchmark workflow",
        workflow_file=Path(path),
        models=tuple(
            ModelSpec(folder, name, size_bytes=sizes[(folder, name)], node=node, input=inp)
            for node, inp, folder, name in used
        ),
        parameters={"image": (Target("12", "image"),), "seed": (Target("17", "seed"), Target("21", "seed"))},
    )
    registry = default_registry()
    packs = pack_lookup(registry, entry)
    ctx = Context(object_info, index, imports, packs)
    findings = analyze_workflow(workflow, ctx, entry)
    errors = [f.to_dict() for f in findings if f.severity.value == "error"] if findings else []
    if errors:
        raise RuntimeError(f"the benchmark workflow should analyse clean, got: {errors[:3]}")

    def timed(fn: Any, n: int) -> dict[str, Any]:
        for _ in range(20):
            fn()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
        return stats(out, 3)

    n = reps(500, 50)
    figures = {
        "analyze_workflow_ms": timed(lambda: analyze_workflow(workflow, ctx, entry), n),
        "with_context_and_pack_lookup_ms": timed(
            lambda: analyze_workflow(
                workflow, Context(object_info, index, imports, pack_lookup(registry, entry)), entry
            ),
            n,
        ),
        "workflow_report_ms": timed(lambda: workflow_report(entry, workflow, ctx), n),
    }
    # The same workflow judged from /object_info alone (no model index: the client's offline check).
    bare = Context(object_info, None, (), packs)
    figures["analyze_without_model_index_ms"] = timed(lambda: analyze_workflow(workflow, bare, entry), n)
    return {
        "target": f"analyze_workflow p50 ≤ {TARGET_P50_MS:g} ms",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "setup": {
            "nodes": len(workflow),
            "links": sum(1 for node in workflow.values() for v in node["inputs"].values() if isinstance(v, list)),
            "model_inputs": len(used),
            "object_info_nodes": len(object_info),
            "model_index_files": len(index.on_disk),
            "findings": [f.code for f in findings],
        },
        "figures": figures,
        "met": figures["analyze_workflow_ms"]["median"] <= TARGET_P50_MS,
    }


def main(bs: BenchStack, runtime: Any) -> dict[str, Any]:
    result = run(bs, runtime)
    write_result("analysis", result)
    return result
