"""Start ComfyUI's main.py on a CPU-only torch.

The CPU torch wheel available here pairs with a torchvision build whose C++ operators are
missing, so `import torchvision` fails with "operator torchvision::nms does not exist".
ComfyUI imports torchvision at load time; registering the two operator schemas first is
enough for everything that runs on CPU. Production images use a matched torch/torchvision
and start main.py directly.
"""

import contextlib
import runpy
import sys
from pathlib import Path

import torch

for name, arg in (("nms", "dets"), ("qnms", "qdets")):
    # RuntimeError: already defined, i.e. a matched torchvision is installed.
    with contextlib.suppress(RuntimeError):
        torch.library.define(f"torchvision::{name}", f"(Tensor {arg}, Tensor scores, float iou_threshold) -> Tensor")

comfy_root = Path(__file__).resolve().parent / "ComfyUI"
sys.path.insert(0, str(comfy_root))
sys.argv[0] = str(comfy_root / "main.py")
runpy.run_path(str(comfy_root / "main.py"), run_name="__main__")
