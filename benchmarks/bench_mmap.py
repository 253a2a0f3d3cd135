"""ComfyUI's model load with and without `--disable-mmap`, from a deliberately slowed filesystem.

Why: ComfyUI loads safetensors through mmap (page faults pull the file in as tensors are touched);
on network storage that was reported 30–50× slower than one sequential read (Comfy-Org/ComfyUI
#2288). `--disable-mmap` makes comfy.utils.load_torch_file copy each tensor out as it is read.

Set-up (root): an ext4 filesystem on a loop device, its reads capped by the kernel's block-I/O
throttle — cgroup v2 `io.max` when the io controller is there, else cgroup v1
`blkio.throttle.read_{bps,iops}_device` — for the probe process only. The model is a real SD1.x VAE
with random weights (ComfyUI's own AutoencoderKL, fp32, 335 MB) written with safetensors; the probe
(ComfyUI's venv, a fresh process per load, page cache of the file dropped before) times what the
VAELoader node does: `comfy.utils.load_torch_file` and `comfy.sd.VAE(sd=…)`, then reads every weight
once (what moving the model to the GPU does), so lazily mapped bytes are counted too. Profiles: the
loop device unthrottled; a bandwidth cap; the same cap plus an I/O-operations cap (each request pays a
latency, as on network storage). Modes interleaved, fresh process each time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import reps, stats, write_result
from tools.localstack import DEFAULT_COMFY_HOME

PROFILES: dict[str, dict[str, int]] = {
    "local (loop device, no cap)": {},
    "200 MB/s": {"rbps": 200 * 1024 * 1024},
    "200 MB/s, 300 IOPS": {"rbps": 200 * 1024 * 1024, "riops": 300},
    "60 MB/s, 150 IOPS": {"rbps": 60 * 1024 * 1024, "riops": 150},
    "25 MB/s, 40 IOPS": {"rbps": 25 * 1024 * 1024, "riops": 40},
}
MODES = {"mmap (default)": [], "--disable-mmap": ["--disable-mmap"]}

_SHIM = """
import contextlib, sys, torch
for name, arg in (("nms", "dets"), ("qnms", "qdets")):  # tools/localstack's CPU torchvision (launch.py)
    with contextlib.suppress(RuntimeError):
        torch.library.define(f"torchvision::{name}", f"(Tensor {arg}, Tensor scores, float iou_threshold) -> Tensor")
"""

_MAKE_MODEL = (
    _SHIM
    + """
from safetensors.torch import save_file
sys.path.insert(0, sys.argv[2])
import comfy.options
comfy.options.enable_args_parsing()
out = sys.argv[1]
sys.argv = ["main.py", "--cpu"]
from comfy.ldm.models.autoencoder import AutoencoderKL
torch.manual_seed(28)
ddconfig = {'double_z': True, 'z_channels': 4, 'resolution': 256, 'in_channels': 3, 'out_ch': 3, 'ch': 128,
            'ch_mult': [1, 2, 4, 4], 'num_res_blocks': 2, 'attn_resolutions': [], 'dropout': 0.0}
model = AutoencoderKL(ddconfig=ddconfig, embed_dim=4)
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
"""
)

_PROBE = (
    _SHIM
    + """
import json, os, time
path, root, extra = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, root)
import comfy.options
comfy.options.enable_args_parsing()
sys.argv = ["main.py", "--cpu", *extra]
import comfy.utils, comfy.sd
fd = os.open(path, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)
t0 = time.perf_counter()
sd = comfy.utils.load_torch_file(path)
t1 = time.perf_counter()
vae = comfy.sd.VAE(sd=sd)
t2 = time.perf_counter()
total = sum(float(p.detach().float().sum()) for p in vae.first_stage_model.parameters())
t3 = time.perf_counter()
print(json.dumps({"load_torch_file_s": t1 - t0, "vae_build_s": t2 - t1, "read_weights_s": t3 - t2,
                  "loader_s": t2 - t0, "total_s": t3 - t0, "mmap_disabled": comfy.utils.DISABLE_MMAP}))
"""
)


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def slow_fs(size_mb: int = 1024) -> Iterator[tuple[Path, str]]:
    """An ext4 filesystem on a loop device: (mount point, the device's major:minor)."""
    work = Path(tempfile.mkdtemp(prefix="comfy-bench-mmap-"))
    image, mnt = work / "fs.img", work / "mnt"
    mnt.mkdir()
    with image.open("wb") as fh:
        fh.truncate(size_mb * 1024 * 1024)
    loop = _run("losetup", "-f", "--show", str(image))
    try:
        _run("mkfs.ext4", "-q", loop)
        _run("mount", loop, str(mnt))
        try:
            yield mnt, _run("cat", f"/sys/block/{Path(loop).name}/dev")
        finally:
            _run("umount", str(mnt))
    finally:
        _run("losetup", "-d", loop)
        shutil.rmtree(work, ignore_errors=True)


class Throttle:
    """A cgroup whose processes' reads from one block device are capped (v2 io.max, else v1 blkio)."""

    def __init__(self, device: str) -> None:
        self.device = device
        v2 = Path("/sys/fs/cgroup/cgroup.controllers")
        if v2.is_file() and "io" in v2.read_text().split():
            self.kind, self.dir = "v2 io.max", Path(tempfile.mkdtemp(prefix="comfy-bench-mmap-", dir="/sys/fs/cgroup"))
        elif Path("/sys/fs/cgroup/blkio").is_dir():
            self.kind, self.dir = "v1 blkio.throttle", Path(f"/sys/fs/cgroup/blkio/comfy-bench-mmap-{os.getpid()}")
            self.dir.mkdir(exist_ok=True)
        else:
            raise RuntimeError("no cgroup block-I/O controller (cgroup v2 io or v1 blkio) to slow the filesystem")

    def set(self, limits: dict[str, int]) -> None:
        if self.kind.startswith("v2"):
            values = " ".join(f"{k}={limits.get(k, 'max')}" for k in ("rbps", "riops"))
            (self.dir / "io.max").write_text(f"{self.device} {values}\n")
            return
        for key, name in (("rbps", "read_bps_device"), ("riops", "read_iops_device")):
            (self.dir / f"blkio.throttle.{name}").write_text(f"{self.device} {limits.get(key, 0)}\n")

    def command(self, *cmd: str) -> list[str]:
        """`cmd` run inside the cgroup (the shell joins it, then execs)."""
        return ["sh", "-c", f'echo $$ > {self.dir}/cgroup.procs && exec "$@"', "sh", *cmd]

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.dir.rmdir()


def run(n: int | None = None) -> dict[str, Any]:
    python = str(DEFAULT_COMFY_HOME / "venv/bin/python")
    root = str(DEFAULT_COMFY_HOME / "ComfyUI")
    samples: dict[str, dict[str, list[dict[str, float]]]] = {p: {m: [] for m in MODES} for p in PROFILES}
    with slow_fs() as (mnt, device):
        model = mnt / "vae_random_sd1.safetensors"
        _run(python, "-c", _MAKE_MODEL, str(model), root)
        size = model.stat().st_size
        throttle = Throttle(device)
        try:
            for _ in range(n or reps(3, 2)):
                for profile, limits in PROFILES.items():
                    throttle.set(limits)
                    for mode, flags in MODES.items():  # interleaved: load drift hits both alike
                        out = subprocess.run(
                            throttle.command(python, "-c", _PROBE, str(model), root, *flags),
                            check=True,
                            capture_output=True,
                            text=True,
                        ).stdout
                        samples[profile][mode].append(json.loads(out.strip().splitlines()[-1]))
            throttle.set({})
        finally:
            throttle.remove()
    figures = {
        profile: {
            mode: {key: stats((s[key] for s in runs), 3) for key in ("loader_s", "total_s", "load_torch_file_s")}
            for mode, runs in modes.items()
        }
        for profile, modes in samples.items()
    }
    for modes in figures.values():
        mm, nomm = modes["mmap (default)"]["total_s"]["median"], modes["--disable-mmap"]["total_s"]["median"]
        modes["mmap_over_disable_mmap"] = round(mm / nomm, 2) if nomm else None
    return {
        "target": "none: the figures decide whether the worker turns mmap off for models on the volume",
        "method": __doc__.split("\n\n", 1)[1].replace("\n", " "),
        "model": {"kind": "SD1.x VAE, random weights, fp32 safetensors", "size_bytes": size},
        "throttle": throttle.kind,
        "profiles": {p: limits or "none" for p, limits in PROFILES.items()},
        "figures": figures,
        "met": None,
        "samples": samples,
    }


def main() -> dict[str, Any]:
    result = run()
    write_result("mmap_slow_storage", result)
    for profile, modes in result["figures"].items():
        print(
            f"{profile}: mmap {modes['mmap (default)']['total_s']['median']} s, --disable-mmap "
            f"{modes['--disable-mmap']['total_s']['median']} s (mmap/no-mmap {modes['mmap_over_disable_mmap']})"
        )
    return result


if __name__ == "__main__":
    main()
