"""`make demo`: start the local stack, run the client's test / diagnose / generate, print the results.

Runs the client exactly as a person would (its CLIs, over HTTP, against the worker's RunPod local
API), generates an MP4 from a real input image on CPU, and stops the stack again unless it was
already running before the demo.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tools.localstack import LocalStack  # noqa: E402


def demo_image(path: Path) -> Path:
    """A 320×240 gradient with a disc: a real PNG to feed the image→video workflow."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (320, 240))
    px = img.load()
    for y in range(240):
        for x in range(320):
            px[x, y] = (x * 255 // 319, y * 255 // 239, 160)
    ImageDraw.Draw(img).ellipse((110, 70, 210, 170), fill=(250, 250, 250))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def step(title: str, args: list[str], ok_codes: tuple[int, ...] = (0,)) -> None:
    print(f"\n=== {title}\n$ python {' '.join(args)}", flush=True)
    started = time.monotonic()
    rc = subprocess.run([sys.executable, *args], cwd=REPO).returncode
    print(f"(exit {rc}, {time.monotonic() - started:.2f} s)", flush=True)
    if rc not in ok_codes:
        raise SystemExit(f"demo step failed: {title}")


def main() -> int:
    t0 = time.monotonic()
    stack = LocalStack(
        Path(os.environ.get("STACK_DIR", REPO / ".run")),
        int(os.environ.get("COMFY_PORT", 8188)),
        int(os.environ.get("WORKER_PORT", 8000)),
    )
    started_here = stack.pid() is None
    if started_here:
        print("Starting the local stack (CPU ComfyUI + RunPod local API) …", flush=True)
        stack.install_packs()
        stack.start(wait=180)
    has_vhs = (stack.comfy_dir / "custom_nodes/ComfyUI-VideoHelperSuite").is_dir()
    print(f"Stack ready in {time.monotonic() - t0:.1f} s: ComfyUI {stack.comfy_url}, worker {stack.api_url}")
    try:
        url = ["--url", stack.api_url]
        image = demo_image(REPO / "outputs/demo_input.png")
        step("health ping", ["client/diagnose.py", "--test", *url])
        step("full diagnose (smoke_i2v)", ["client/diagnose.py", "--workflow", "smoke_i2v", *url])
        step(
            "generate: image -> MP4 on CPU",
            [
                "client/generate.py",
                "--workflow",
                "smoke_i2v",
                "--image",
                str(image),
                "--frames",
                "24",
                "--fps",
                "12",
                "--no-open",
                *url,
            ],
        )
        if has_vhs:
            step(
                "generate: image -> MP4 through a real custom node pack (VideoHelperSuite's VHS_VideoCombine)",
                [
                    "client/generate.py",
                    "--workflow",
                    "smoke_vhs",
                    "--image",
                    str(image),
                    "--frames",
                    "16",
                    "--fps",
                    "8",
                    "--no-open",
                    *url,
                ],
            )
        else:
            print("\n(VideoHelperSuite is not installed: set COMFY_PACKS_SNAPSHOTS, see docker/fetch_pack.sh)")
    finally:
        if started_here:
            stack.stop()
    print(f"\nDemo finished in {time.monotonic() - t0:.1f} s. Outputs are under {REPO / 'outputs'}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
