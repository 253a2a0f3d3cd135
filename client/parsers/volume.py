"""A RunPod network volume without a GPU, over RunPod's S3-compatible API.

comfy-runpod volume check --volume-id ID --datacenter EU-RO-1 [--workflow NAME ...]  # exit 0 ok, 1 findings
comfy-runpod volume ls    --volume-id ID --datacenter EU-RO-1 [--prefix models/]
comfy-runpod volume push  --volume-id ID --datacenter EU-RO-1 PATH ... [--dry-run]
(`python client/volume.py ...` from a clone is the same.)

Keys from the environment only: RUNPOD_S3_ACCESS_KEY / RUNPOD_S3_SECRET_KEY (else AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY), an "S3 API key" from RunPod console > Settings (not the RunPod API key).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from client.parsers import shared
from client.render import Renderer

EPILOG = """environment:
  RUNPOD_S3_ACCESS_KEY, RUNPOD_S3_SECRET_KEY      the volume's S3 API key (never printed)
                                                  (fallback: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
  RUNPOD_NETWORK_VOLUME_ID, RUNPOD_DATACENTER_ID  defaults for --volume-id / --datacenter
exit codes: 0 ok · 1 findings / refused files · 2 unusable (no keys, unreachable, no such volume,
            bad usage) · 130 interrupted
"""


HELP = "check, list or fill a network volume over RunPod's S3 API (no GPU)"


def _target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--volume-id", help="network volume id = the S3 bucket (default: $RUNPOD_NETWORK_VOLUME_ID)")
    p.add_argument("--datacenter", help="the volume's datacenter id, e.g. EU-RO-1 (default: $RUNPOD_DATACENTER_ID)")
    p.add_argument("--endpoint-url", help="S3 endpoint override (default: https://s3api-<datacenter>.runpod.io/)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log S3 activity to stderr")


def add_arguments(volume: argparse.ArgumentParser) -> None:
    """`volume check|ls|push`, each with its own flags; the chosen one is run by `run`."""
    volume.epilog = EPILOG
    sub = volume.add_subparsers(dest="volume_command", required=True, parser_class=shared.Parser)
    c = sub.add_parser("check", help="judge the volume against the workflow registry", epilog=EPILOG)
    _target_flags(c)
    c.add_argument("--workflow", action="append", default=[], help="a registered workflow (repeat; default: all)")
    c.add_argument("--registry", metavar="DIR", help="workflow registry directory (default: ours)")
    ls = sub.add_parser("ls", help="the volume's files with sizes", epilog=EPILOG)
    _target_flags(ls)
    ls.add_argument("--prefix", default="", help="only keys under this prefix, e.g. models/")
    p = sub.add_parser("push", help="upload missing models from local files or directories", epilog=EPILOG)
    _target_flags(p)
    p.add_argument("paths", nargs="+", metavar="PATH", help="local model files or directories")
    p.add_argument("--workflow", action="append", default=[], help="only models of this workflow (repeat)")
    p.add_argument("--registry", metavar="DIR", help="workflow registry directory (default: ours)")
    p.add_argument("--layout", help="models or ComfyUI/models (default: the one the volume uses, else models)")
    p.add_argument("--folder", help="model folder for files the registry doesn't know (uploaded unchecked)")
    p.add_argument("--dry-run", action="store_true", help="check and show what would move, upload nothing")
    p.add_argument("--replace", action="store_true", help="overwrite an object of the wrong size at the target key")
    p.add_argument("--part-size-mb", type=float, default=16, help="multipart part size in MiB (5..476; default 16)")
    p.add_argument("--workers", type=int, default=10, help="parallel part uploads (default 10)")
    p.add_argument("--hash-cache", metavar="FILE", help="sha256 cache (default ~/.cache/comfy-runpod/sha256.json)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def label(args: argparse.Namespace) -> str:
    return f"volume {args.volume_command}"


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    return {"check": _check, "ls": _ls, "push": _push}[args.volume_command](args, r)


def _client(args: argparse.Namespace, workers: int = 10, transfer: bool = False) -> tuple[Any, Any]:
    from client.config import volume_target
    from client.s3.adapter import LIST_ATTEMPTS, MAX_ATTEMPTS, s3_client

    target = volume_target(args.volume_id, args.datacenter, args.endpoint_url)
    return target, s3_client(target, workers, MAX_ATTEMPTS if transfer else LIST_ATTEMPTS)


def _check(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.volume import check

    target, client = _client(args)
    return check(client, target, shared.registry_from(args.registry), args.workflow)


def _ls(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.volume import ls

    target, client = _client(args)
    return ls(client, target, args.prefix), 0


def _push(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.volume import push
    from client.s3.adapter import MiB

    workers = max(1, min(args.workers, 64))
    target, client = _client(args, workers, transfer=True)
    cache = Path(args.hash_cache) if args.hash_cache else Path.home() / ".cache/comfy-runpod/sha256.json"
    bar = r.transfer_progress("push", enabled=not args.no_progress)
    try:
        return push(
            client,
            target,
            shared.registry_from(args.registry),
            args.paths,
            workflows=args.workflow,
            layout=args.layout,
            folder=args.folder,
            dry_run=args.dry_run,
            replace=args.replace,
            part_size=int(args.part_size_mb * MiB),
            workers=workers,
            hash_cache=cache,
            progress=bar.start,
        )
    finally:
        bar.stop()
