"""ComfyUI's own account of moving models to the compute device, read from its log. Pure.

ComfyUI 0.3.75 prints, when a node needs models on the device (comfy/model_management.py
load_models_gpu, comfy/model_patcher.py load):

    Requested to load AutoencoderKL                 (one line per model not loaded yet)
    loaded completely; 9805.80 MB usable, 159.56 MB loaded, full load: True
    loaded partially; 5000.00 MB usable, 4800.00 MB loaded, 1200.00 MB offloaded, ...

one "loaded" line per requested model, in the same order. With ComfyUI's default mmap loading the
file's bytes are read here (the loader node only mapped them), so on a GPU this, not the loader
node, is where a slow disk or volume shows. The log names the model's class, not its file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_REQUESTED = re.compile(r"Requested to load (?P<model>[A-Za-z_][\w.]*)")
_LOADED = re.compile(r"loaded (?P<how>completely|partially); .*?(?P<mb>\d+(?:\.\d+)?) MB loaded")


@dataclass(frozen=True, slots=True)
class DeviceLoad:
    model: str  # the model's class name, as ComfyUI logs it
    seconds: float  # from the request (or the previous model's load) to this "loaded" line
    mb: float
    full: bool  # "loaded completely" (else partially: the rest stays in RAM, offloaded)

    def to_dict(self) -> dict[str, object]:
        return {"model": self.model, "s": self.seconds, "mb": self.mb, "full": self.full}


def device_loads(lines: Iterable[tuple[float, str]]) -> list[DeviceLoad]:
    """Every model load in timestamped log lines (wall-clock seconds, line), in order."""
    pending: list[str] = []
    since: float | None = None
    loads: list[DeviceLoad] = []
    for t, line in lines:
        if m := _REQUESTED.search(line):
            pending.append(m["model"])
            since = t
        elif (m := _LOADED.search(line)) and pending and since is not None:
            loads.append(DeviceLoad(pending.pop(0), round(t - since, 3), float(m["mb"]), m["how"] == "completely"))
            since = t
    return loads


def first_device_loads(lines: Iterable[tuple[float, str]]) -> dict[str, dict[str, object]]:
    """Each model class's first load (the cold one), keyed by class name."""
    first: dict[str, dict[str, object]] = {}
    for load in device_loads(lines):
        first.setdefault(load.model, load.to_dict())
    return first
