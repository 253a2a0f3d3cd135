"""Add your own workflow to the registry: `comfy-runpod workflow add FILE`.

    comfy-runpod workflow add my_flow.json --comfy-url http://127.0.0.1:8188 \\
        --registry workflows/registry --suites client/suites.yaml

Writes <id>.json (API format; an editor save is converted) and <id>.yaml (packs, models, parameters,
outputs) and a validation suite named after it; prints the TODOs a person must fill in. Exit 0 when
the entry is complete, 1 when TODOs remain, 2 on bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "add your own workflow file (API or editor format) to the registry, with a validation suite"
REGISTRY_DIR = Path(__file__).resolve().parents[2] / "workflows" / "registry"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add = p
    add.add_argument("action", choices=["add"], help="add: draft a registry entry for a workflow file")
    add.add_argument("file", type=Path, help="the workflow: ComfyUI's editor save or an API export")
    add.add_argument("--id", dest="workflow_id", help="entry id (default: the file name)")
    add.add_argument("--title", default="", help="a title for the entry")
    add.add_argument("--registry", type=Path, default=REGISTRY_DIR, help="registry directory to write into")
    add.add_argument("--suites", type=Path, metavar="FILE", help="also write a validation suite into this file")
    add.add_argument("--force", action="store_true", help="replace an entry of the same id")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.workflow import add_workflow, object_info_from, workflow_id_for
    from client.errors import UsageError
    from client.workflow_files import load_workflow_file
    from workflows.registry import load_registry

    settings = shared.settings_from(args)
    target = settings.target
    if target is None or target.kind != "comfy":
        raise UsageError(
            "workflow add needs a ComfyUI with the deployment's packs for its node definitions",
            fix="Pass --comfy-url (the local stack's ComfyUI: make up, then http://127.0.0.1:8188).",
        )
    workflow = load_workflow_file(args.file)
    data = add_workflow(
        workflow,
        workflow_id=workflow_id_for(args.file, args.workflow_id),
        registry_dir=args.registry,
        registry=load_registry(args.registry) if args.registry.is_dir() else load_registry(REGISTRY_DIR),
        object_info=object_info_from(target.url, settings.http_timeout_s),
        title=args.title,
        suites_file=args.suites,
        force=args.force,
    )
    return data, 0 if data["valid"] and not data["todos"] else 1
