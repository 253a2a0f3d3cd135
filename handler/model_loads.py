"""How long each model took to load the first time a job ran its loader: the cold start's last phase.

ComfyUI 0.3.75 logs no file name or time for a load ("Requested to load AutoencoderKL", "loaded
completely; … MB loaded" are the later moves to the compute device), but a loader node (VAELoader,
UNETLoader, UpscaleModelLoader, …) does nothing else than read its file and build the model, and it
runs once: ComfyUI caches its output across prompts. So the loader node's execution time, which the
job's event stream measures (`nodes_ms`), is the model's load time, and its first value is the cold one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from workflows.models import LOADER_INPUTS

_lock = threading.Lock()


def loads_of(workflow: Mapping[str, Any], node_ms: Mapping[str, float]) -> dict[str, dict[str, Any]]:
    """folder/name -> {ms, node, class_type} for every loader the prompt actually ran (cached nodes
    don't run, so a warm job yields nothing). A loader with several model inputs (DualCLIPLoader)
    loads them together: each is given the node's time."""
    found: dict[str, dict[str, Any]] = {}
    for node_id, ms in node_ms.items():
        node = workflow.get(node_id)
        if not isinstance(node, dict):
            continue
        class_type = node.get("class_type")
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for (cls, name), folder in LOADER_INPUTS.items():
            value = inputs.get(name) if cls == class_type else None
            if isinstance(value, str):
                found[f"{folder}/{value}"] = {"ms": ms, "node": node_id, "class_type": class_type}
    return found


def record(first_loads: dict[str, dict[str, Any]], workflow: Mapping[str, Any], node_ms: Mapping[str, float]) -> None:
    """Keep each model's first load (the cold one); later loads after an unload are not recorded."""
    loads = loads_of(workflow, node_ms)
    with _lock:
        for key, value in loads.items():
            first_loads.setdefault(key, value)
