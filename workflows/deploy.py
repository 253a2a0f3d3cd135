"""Endpoint settings per registered workflow, computed from the registry's models (pure: no I/O).

The README's deploy table is generated from this (`python -m tools.doc_tables`). The VRAM figures are
estimates from the model files' sizes, not measurements (no GPU here): `vram_min_gb` is the smallest
RunPod GPU tier holding the largest model plus `HEADROOM_GB` for activations, latents and the VAE
decode (ComfyUI loads models one after another and offloads what does not fit, slower but working);
`vram_gb` is the smallest tier holding every model of the workflow at once, so warm runs reload nothing.
`cache` says which Hugging Face repository to set as the endpoint's "Model" (RunPod's model cache,
workflows/hf_cache.py) and what it leaves to the image or the volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workflows.hf_cache import CachePlan, cache_plan
from workflows.registry import Entry

# RunPod's serverless GPU tiers by memory (docs.runpod.io serverless/endpoints/endpoint-configurations).
GPU_TIERS_GB = (16, 24, 48, 80)
HEADROOM_GB = 6.0
# Container disk besides the image: ComfyUI's input/output/temp files and logs (DISK_LOW_GB warns below 2 GB free).
SCRATCH_GB = 20


@dataclass(frozen=True, slots=True)
class EndpointPlan:
    workflow: str
    gpu: bool
    models_gb: float
    largest_gb: float
    vram_min_gb: int
    vram_gb: int
    disk_baked_gb: int  # container disk when the models are baked into the image (BAKE_MODELS)
    cold_start_s: float | None
    generate_s: float | None
    cache: CachePlan  # the endpoint's "Model" (RunPod's model cache) and what still comes from image or volume


def _tier(needed_gb: float) -> int:
    return next((t for t in GPU_TIERS_GB if t >= needed_gb), GPU_TIERS_GB[-1])


def endpoint_plan(entry: Entry) -> EndpointPlan:
    """The settings one workflow needs; a model without a registered size counts as 0 (say so in the entry)."""
    sizes = [(m.size_bytes or 0) / 1e9 for m in entry.models]
    total, largest = sum(sizes), max(sizes, default=0.0)
    vram_min = _tier(largest + HEADROOM_GB) if sizes else GPU_TIERS_GB[0]
    return EndpointPlan(
        workflow=entry.id,
        gpu=not entry.runs_on_cpu,
        models_gb=round(total, 1),
        largest_gb=round(largest, 1),
        vram_min_gb=vram_min,
        vram_gb=max(vram_min, _tier(total)),
        disk_baked_gb=SCRATCH_GB + 5 * math.ceil(total / 5),
        cold_start_s=entry.timing.get("cold_start_s"),
        generate_s=entry.timing.get("generate_s"),
        cache=cache_plan(entry),
    )
