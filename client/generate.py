#!/usr/bin/env python3
"""Run a workflow on the endpoint and save every output under outputs/<time>_<workflow>_<job>/.

python client/generate.py --workflow smoke_i2v --image photo.png --frames 24
python client/generate.py --workflow my_api_workflow.json --set 6.text="a red fox" --images inputs/
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python client/generate.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from client import cli
from client.render import Renderer

PARAMS = (
    ("seed", int),
    ("steps", int),
    ("cfg", float),
    ("denoise", float),
    ("frames", int),
    ("fps", float),
    ("width", int),
    ("height", int),
    ("prompt", str),
    ("negative_prompt", str),
    ("filename_prefix", str),
)


def open_file(path: Path) -> None:
    """Show an output with the desktop's default application (best effort, detached)."""
    if sys.platform == "darwin":
        command = ["open", str(path)]
    elif os.name == "nt":
        os.startfile(str(path))  # type: ignore[attr-defined]
        return
    elif shutil.which("xdg-open"):
        command = ["xdg-open", str(path)]
    else:
        return
    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def main(argv: list[str] | None = None) -> int:
    p = cli.parser("generate.py", __doc__.split("\n\n")[0])
    p.add_argument("workflow_arg", nargs="?", metavar="WORKFLOW", help="same as --workflow")
    p.add_argument("--workflow", help="registry name (default smoke_image) or an API-format workflow JSON file")
    p.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="input image (repeatable); the first plain PATH fills the workflow's image parameter, "
        "NAME=PATH uploads it for inputs that reference NAME",
    )
    p.add_argument("--images", type=Path, metavar="DIR", help="every image below DIR, names = paths relative to DIR")
    p.add_argument("--end-image", type=Path, metavar="PATH", help="end image (first-last-frame workflows)")
    g = p.add_argument_group("parameters (mapped to nodes by the registry entry)")
    for name, kind in PARAMS:
        g.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NODE.INPUT=VALUE",
        help="override any node input (repeatable); VALUE is JSON when it parses, else a string",
    )
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="submit at most once per KEY: a re-run returns the recorded job (ledger: "
        "$COMFY_RUNPOD_LEDGER, default ~/.cache/comfy-runpod/jobs.sqlite)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where to save (default: $COMFY_RUNPOD_OUTPUTS or outputs)")
    p.add_argument("--no-open", action="store_true", help="do not open the first output")
    p.add_argument("--registry", metavar="DIR", help="local workflow registry (default: ours)")
    args = p.parse_args(argv)
    if args.workflow and args.workflow_arg:
        p.error("give the workflow once (positional or --workflow)")

    def body(r: Renderer) -> tuple[dict, int]:
        from client.commands.generate import build_request, generate
        from client.ledger import Ledger

        settings = cli.settings_from(args)
        registry = cli.registry_from(args.registry)
        request = build_request(
            registry,
            workflow=args.workflow or args.workflow_arg,
            images=args.image,
            images_dir=args.images,
            end_image=args.end_image,
            params={name: getattr(args, name) for name, _ in PARAMS},
            sets=args.set,
            timeout_s=args.timeout,
        )
        api = cli.backend(settings, registry)
        with r.job_progress("job") as progress:
            data = generate(
                api,
                settings,
                request,
                ledger=Ledger(settings.ledger_path),
                idempotency_key=args.idempotency_key,
                out_root=args.out,
                on_update=progress,
                on_submitted=progress.submitted,
            )
        files = data.get("files") or []
        if files and not args.no_open and sys.stdout.isatty() and not args.json:
            open_file(Path(data["directory"]) / files[0])
        return data, 0

    return cli.main("generate", args, body)


if __name__ == "__main__":
    sys.exit(main())
