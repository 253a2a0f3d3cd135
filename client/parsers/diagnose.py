"""Is the deployment healthy? `--test`: the sub-second health ping; otherwise the full diagnose.

comfy-runpod diagnose --test                  # exit 0 healthy, 1 unhealthy, 2 unreachable
comfy-runpod diagnose [--workflow NAME|FILE]  # exit 1 on any error finding
"""

from __future__ import annotations

import argparse
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "the deployment's full diagnose (models, nodes, packs, disks), re-checked against the local registry"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test", action="store_true", help="health ping only (the same as `comfy-runpod health`)")
    p.add_argument("--workflow", help="check one workflow: a registry name, or a workflow file (API or editor format)")
    p.add_argument("--checksums", action="store_true", help="also sha256 the model files (slow on large files)")
    p.add_argument("--registry", metavar="DIR", help="local workflow registry to re-check against (default: ours)")
    p.add_argument("--volume-report", metavar="FILE", help="a `volume check --json` output to compare with the worker")


def label(args: argparse.Namespace) -> str:
    return "health" if args.test else "diagnose"


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    if args.test:
        from client.parsers import health

        return health.run(args, r)
    from client.commands.diagnose import diagnose
    from client.commands.volume import load_volume_report
    from client.workflow_files import load_workflow_file, looks_like_file

    settings = shared.settings_from(args)
    registry = shared.registry_from(args.registry)
    name, file = args.workflow, None
    if name and looks_like_file(name):
        file, name = (Path(name), load_workflow_file(Path(name))), None
    with r.job_progress("diagnose") as progress:
        data = diagnose(
            shared.backend(settings, registry),
            settings,
            registry,
            workflow=name,
            workflow_file=file,
            checksums=args.checksums,
            on_update=progress,
            volume_report=load_volume_report(args.volume_report) if args.volume_report else None,
        )
    return data, 0 if data["ok"] else 1
