"""Design locally, run on RunPod: the ComfyUI editor, served by a local launcher whose Queue runs on the endpoint.

comfy-runpod ui                                  # the project's CPU ComfyUI as the editor, RUNPOD_ENDPOINT_ID
comfy-runpod ui --url http://127.0.0.1:8000      # the local stack's worker (or RUNPOD_ENDPOINT_URL=...)
comfy-runpod ui --local-comfy http://127.0.0.1:8188 --mode local

Open the printed address. Queue judges the workflow against the endpoint's own diagnose (nodes,
models, packs) and refuses in the editor, with the code and fix, what would fail there; otherwise it
sends the workflow and the input images as a generate job and shows progress, outputs (saved into
ComfyUI's output folder and the client's outputs folder) and timings on the nodes. Cancel cancels
the RunPod job. `--mode local` (or POST /comfy-runpod/mode) runs on the local ComfyUI instead. Jobs
are recorded in the job ledger and finish even if the browser is closed; the API key stays here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from client.parsers import shared
from client.render import Renderer

HELP = "serve the ComfyUI editor locally; its Queue button runs the workflow on the endpoint"
DEFAULT_PORT = 8189


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to serve the editor on (default 127.0.0.1)")
    p.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to serve the editor on (default {DEFAULT_PORT})"
    )
    p.add_argument(
        "--mode", choices=("endpoint", "local"), default="endpoint", help="where Queue runs (default endpoint)"
    )
    p.add_argument("--local-comfy", metavar="URL", help="a ComfyUI you run (with its editor) instead of starting one")
    p.add_argument(
        "--comfy-home",
        type=Path,
        help="the ComfyUI install to start (default ~/.cache/comfy-runpod/comfyui-0.3.75, `make comfyui`)",
    )
    p.add_argument(
        "--base-dir",
        type=Path,
        help="its input, output, user and custom_nodes folders (default ~/.cache/comfy-runpod/ui)",
    )
    p.add_argument("--registry", metavar="DIR", help="local workflow registry, for pack hints (default: ours)")


def answers_as_comfyui(url: str) -> bool:
    """RUNPOD_ENDPOINT_URL names a ComfyUI (direct mode) or a RunPod-style API (the local stack's worker):
    asked, not guessed from the URL — ComfyUI answers GET /system_stats, RunPod's API does not."""
    import requests

    try:
        answer = requests.get(f"{url}/system_stats", timeout=10)
        return answer.ok and isinstance(answer.json(), dict) and "system" in answer.json()
    except (requests.RequestException, ValueError):
        return False


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict[str, Any], int]:
    from client.ui.app import serve

    settings = shared.settings_from(args)
    target = settings.require_target()
    if target.kind == "comfy" and not args.comfy_url and not answers_as_comfyui(target.url):
        settings = shared.settings_from(argparse.Namespace(**{**vars(args), "url": target.url}))
    home = Path.home() / ".cache/comfy-runpod"
    comfy_home = args.comfy_home or home / "comfyui-0.3.75"
    return serve(
        settings,
        shared.backend(settings),
        registry=shared.registry_from(args.registry),
        host=args.host,
        port=args.port,
        mode=args.mode,
        local_comfy=args.local_comfy,
        comfy_home=comfy_home,
        base_dir=args.base_dir or home / "ui",
        note=r.note,
    ), 0
