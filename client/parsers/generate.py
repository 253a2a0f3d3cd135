"""Run a workflow on the endpoint and save every output under outputs/<time>_<workflow>_<job>/.

comfy-runpod generate --workflow smoke_i2v --image photo.png --frames 24
comfy-runpod generate --workflow my_workflow.json --set 6.text="a red fox" --images inputs/
comfy-runpod generate --workflow smoke_image --webhook https://example.com/hook --execution-timeout 900 --ttl 3600
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from client.parsers import shared
from client.render import Renderer
from workflows.parameters import PATCHABLE, RULES

HELP = "run a workflow (registered, or a file in API or editor format) and save every output"
# The parameter flags come from the one list of parameters: (name, argparse type); int-or-float takes float.
PARAMS = tuple((name, RULES[name][0][0] if len(RULES[name][0]) == 1 else float) for name in PATCHABLE)


def open_file(path: Path) -> None:
    """Show an output with the desktop's default application (best effort, detached)."""
    if sys.platform == "darwin":
        command = ["open", str(path)]
    elif sys.platform == "win32":  # (not os.name: the type checker knows startfile exists only here)
        os.startfile(str(path))
        return
    elif shutil.which("xdg-open"):
        command = ["xdg-open", str(path)]
    else:
        return
    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("workflow_arg", nargs="?", metavar="WORKFLOW", help="same as --workflow")
    p.add_argument("--workflow", help="registry name (default smoke_image) or a workflow JSON file (API or editor)")
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
    rp = p.add_argument_group("RunPod's own request fields (POST /run; not with --comfy-url)")
    rp.add_argument("--webhook", metavar="URL", help="RunPod POSTs the job's final status to URL when it is done")
    rp.add_argument(
        "--execution-timeout",
        type=float,
        metavar="SECONDS",
        help="policy.executionTimeout: RunPod stops this job after SECONDS of execution (over 5; default: the "
        "endpoint's setting)",
    )
    rp.add_argument(
        "--ttl", type=float, metavar="SECONDS", help="policy.ttl: the longest the job may wait in the queue (10 s-7 d)"
    )
    rp.add_argument(
        "--low-priority", action="store_true", help="policy.lowPriority: the job does not make the endpoint scale up"
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where to save (default: $COMFY_RUNPOD_OUTPUTS or outputs)")
    p.add_argument("--no-open", action="store_true", help="do not open the first output")
    p.add_argument("--registry", metavar="DIR", help="local workflow registry (default: ours)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.workflow and args.workflow_arg:
        p.error("give the workflow once (positional or --workflow)")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.generate import build_request, generate
    from client.errors import UsageError
    from client.ledger import Ledger
    from client.run_options import run_options

    settings = shared.settings_from(args)
    registry = shared.registry_from(args.registry)
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
    options = run_options(
        webhook=args.webhook,
        execution_timeout_s=args.execution_timeout,
        ttl_s=args.ttl,
        low_priority=args.low_priority,
    )
    if options and settings.require_target().kind == "comfy":
        raise UsageError("--webhook, --execution-timeout, --ttl and --low-priority are RunPod's: not with --comfy-url")
    api = shared.backend(settings, registry)
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
            run_options=options,
        )
    files = data.get("files") or []
    if files and not args.no_open and sys.stdout.isatty() and not args.json:
        open_file(Path(data["directory"]) / files[0])
    return data, 0
