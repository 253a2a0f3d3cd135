"""Add your own workflow to the registry: `comfy-runpod workflow add FILE`.

    comfy-runpod workflow add my_flow.json [--suites client/suites.yaml] [--registry DIR] [--comfy-url URL]

Needs nothing but the file: packs and models are resolved (client/workflow_add.py) and a private local
ComfyUI with those packs gives the node definitions (or --comfy-url). Writes <id>.json (API format; an
editor save is converted) and <id>.yaml (packs, models, parameters, outputs) into the checkout's
registry (or --registry), and a validation suite named after it; prints the TODOs a person must fill
in. Exit 0 when the entry is complete, 1 when TODOs remain or the draft is invalid, 2 on bad usage.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "add your own workflow file (API or editor format) to the registry, with a validation suite"
CHECKOUT = Path(__file__).resolve().parents[2]


def checkout_registry() -> Path | None:
    """The registry of the checkout this client runs from (the one the image is built from); None when
    the client is installed into site-packages, where an entry would be lost (and never built)."""
    if (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "Dockerfile").is_file():
        return CHECKOUT / "workflows" / "registry"
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    add = p
    add.add_argument("action", choices=["add"], help="add: draft a registry entry for a workflow file")
    add.add_argument("file", type=Path, help="the workflow: ComfyUI's editor save or an API export")
    add.add_argument("--id", dest="workflow_id", help="entry id (default: the file name)")
    add.add_argument("--title", default="", help="a title for the entry")
    add.add_argument("--registry", type=Path, help="registry directory to write into (default: the checkout's)")
    add.add_argument("--suites", type=Path, metavar="FILE", help="also write a validation suite into this file")
    add.add_argument("--force", action="store_true", help="replace an entry of the same id")
    add.add_argument(
        "--pack",
        action="append",
        default=[],
        metavar="NODE=REPO",
        help="the pack that provides NODE (owner/repo or URL), instead of the one chosen by evidence",
    )
    add.add_argument("--refresh-ecosystem", action="store_true", help="download ComfyUI-Manager's lists again")
    add.add_argument(
        "--download-sha256", action="store_true", help="download model files not on Hugging Face to hash them"
    )


def _overrides(values: list[str]) -> dict[str, str]:
    from client.errors import UsageError

    out = {}
    for value in values:
        node, sep, repo = value.partition("=")
        if not sep or not node.strip() or not repo.strip():
            raise UsageError(f"--pack {value!r}: expected NODE=owner/repo")
        out[node.strip()] = repo.strip()
    return out


def _comfy_url_info(url: str, timeout_s: float) -> tuple[dict, dict]:
    """--comfy-url: the node definitions and /system_stats (ComfyUI's version) of a ComfyUI the user runs."""
    from client.commands.workflow import object_info_from
    from comfyui_client import ComfyClient, ComfyUnavailable
    from comfyui_client.errors import ComfyHTTPError

    info = object_info_from(url, timeout_s)
    client = ComfyClient(url, timeout=timeout_s)
    try:
        return info, client.system_stats()
    except (ComfyUnavailable, ComfyHTTPError, ValueError):  # its version unknown: mismatches are refused
        return info, {}
    finally:
        client.close()


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.workflow import add_workflow, workflow_id_for
    from client.errors import UsageError
    from client.workflow_add import model_sources, resolve
    from client.workflow_files import load_workflow_file
    from workflows.registry import load_registry

    settings = shared.settings_from(args)
    target = settings.target
    if target is not None and target.kind != "comfy":
        raise UsageError("workflow add reads node definitions from ComfyUI: use --comfy-url, not a RunPod target")
    registry_dir = args.registry or checkout_registry()
    if registry_dir is None:
        raise UsageError(
            "no checkout to write the entry into (this client is installed, not run from a checkout)",
            fix="Pass --registry DIR: the workflows/registry of the checkout your image is built from.",
        )
    workflow = load_workflow_file(args.file)
    base = checkout_registry() or registry_dir
    registry = load_registry(registry_dir if registry_dir.is_dir() and any(registry_dir.glob("*.yaml")) else base)

    resolved = resolve(
        workflow,
        registry=registry,
        ecosystem_dir=settings.ecosystem_dir,
        refresh_ecosystem=args.refresh_ecosystem,
        overrides=_overrides(args.pack),
        snapshots=settings.packs_snapshots,
        comfy_home=settings.comfy_home,
        packs_cache=settings.packs_cache,
        comfy_url_info=(lambda: _comfy_url_info(target.url, settings.http_timeout_s)) if target is not None else None,
        progress=lambda line: r.note(f"workflow add: {line}"),
    )
    data = add_workflow(
        workflow,
        workflow_id=workflow_id_for(args.file, args.workflow_id),
        registry_dir=registry_dir,
        registry=registry,
        object_info=resolved.object_info,
        title=args.title,
        suites_file=args.suites,
        force=args.force,
        versions=resolved.versions,
        draft_options={"packs": resolved.pack_entries(), "unresolved": resolved.plan.unresolved},
        model_lookup=lambda names: model_sources(
            names,
            workflow,
            resolved.ecosystem,
            registry,
            hf_endpoint=settings.hf_endpoint,
            hf_token=settings.hf_token,
            download_sha256=args.download_sha256,
            progress=lambda line: r.note(f"workflow add: {line}"),
        ),
    )
    data["packs"] = resolved.choices()
    data["notes"] = resolved.notes
    data["findings"] = [f.to_dict() for f in resolved.findings]
    data["node_definitions_from"] = resolved.comfy
    failed = any(f.severity == "error" for f in resolved.findings)  # a pack that failed to import
    return data, 0 if data["valid"] and not data["todos"] and not failed else 1
