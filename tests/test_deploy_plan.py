"""The endpoint settings the README's deploy table shows, computed from the registry's model sizes."""

from __future__ import annotations

from workflows.deploy import GPU_TIERS_GB, HEADROOM_GB, SCRATCH_GB, endpoint_plan
from workflows.registry import default_registry


def test_gpu_memory_and_disk_follow_the_registered_models():
    registry = default_registry()
    z = endpoint_plan(registry.entries["z_image_turbo_denrisi"])  # 12.3 + 8.0 + 0.3 GB
    assert (z.models_gb, z.largest_gb, z.vram_min_gb, z.vram_gb) == (20.7, 12.3, 24, 24)
    assert z.disk_baked_gb == SCRATCH_GB + 25 and (z.cold_start_s, z.generate_s) == (50, 12)
    wan = endpoint_plan(registry.entries["wan22_i2v"])  # two 14.3 GB experts + 11.4 GB encoder: all resident at 48
    assert (wan.vram_min_gb, wan.vram_gb) == (24, 48) and wan.gpu
    smoke = endpoint_plan(registry.entries["smoke_image"])
    assert not smoke.gpu and smoke.models_gb == 0 and smoke.disk_baked_gb == SCRATCH_GB
    for entry in registry.entries.values():
        plan = endpoint_plan(entry)
        assert plan.vram_min_gb in GPU_TIERS_GB and plan.vram_min_gb <= plan.vram_gb
        assert plan.vram_min_gb >= min(plan.largest_gb + HEADROOM_GB, GPU_TIERS_GB[-1])


def test_the_plan_names_the_repository_to_cache_and_what_it_leaves_to_the_image_or_volume():
    registry = default_registry()
    z = endpoint_plan(registry.entries["z_image_turbo"]).cache
    assert z.repo == "Comfy-Org/z_image_turbo" and len(z.covered) == z.total == 3 and z.rest == ()
    assert z.covered_gb == endpoint_plan(registry.entries["z_image_turbo"]).models_gb
    wan = endpoint_plan(registry.entries["wan22_flf2v"]).cache
    assert wan.repo == "Comfy-Org/Wan_2.2_ComfyUI_Repackaged" and (len(wan.covered), wan.total) == (3, 4)
    assert wan.rest == ("text_encoders/umt5-xxl-enc-bf16.safetensors",)
    assert round(wan.covered_gb + wan.rest_gb, 1) == endpoint_plan(registry.entries["wan22_flf2v"]).models_gb
    smoke = endpoint_plan(registry.entries["smoke_image"]).cache
    assert smoke.repo is None and smoke.total == 0
