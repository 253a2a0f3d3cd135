"""Jobs and the endpoint: the local job ledger and RunPod's status / stream / cancel / retry / health.

comfy-runpod jobs list [--all] [--limit N]
comfy-runpod jobs status|stream|cancel|retry JOB_ID   # stream: GET /stream (generator handlers' outputs)
comfy-runpod jobs health          # RunPod GET /health: workers idle/running, jobs in queue
"""

from __future__ import annotations

import argparse

from client.parsers import shared
from client.render import Renderer

ACTIONS = ("list", "status", "stream", "cancel", "retry", "health")
HELP = "the local job ledger, and RunPod's status / stream / cancel / retry / health"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("job_id", nargs="?", help="the job (status, stream, cancel, retry)")
    p.add_argument("--all", action="store_true", help="list: jobs of every endpoint, not just the configured one")
    p.add_argument("--limit", type=int, default=20, help="list: how many (default 20)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.action in ("status", "stream", "cancel", "retry") and not args.job_id:
        p.error(f"{args.action} needs a JOB_ID")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands import jobs
    from client.errors import NotSupported
    from client.ledger import Ledger

    settings = shared.settings_from(args)
    ledger = Ledger(settings.ledger_path)
    if args.action == "list":
        return jobs.list_jobs(ledger, settings, limit=args.limit, all_endpoints=args.all), 0
    api = shared.backend(settings)
    if args.action == "health":
        return jobs.endpoint_health(api, settings), 0
    if args.action == "status":
        data = jobs.job_status(api, args.job_id, ledger, wait_s=settings.timeout_s)
        return data, 1 if data["status"] in ("FAILED", "CANCELLED", "TIMED_OUT") else 0
    if args.action == "stream":
        if not hasattr(api, "stream"):
            raise NotSupported("direct-to-ComfyUI mode has no RunPod /stream")
        data = jobs.stream_job(api, args.job_id, settings)
        return data, 1 if data["status"] in ("FAILED", "CANCELLED", "TIMED_OUT") else 0
    if args.action == "cancel":
        return jobs.cancel_job(api, args.job_id), 0
    return jobs.retry_job(api, args.job_id, wait_s=settings.timeout_s), 0
