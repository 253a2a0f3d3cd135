"""What every subcommand's parser shares: the parser class, the common flags, and flags → settings,
backend and registry. Imported by client.cli and by each client/parsers/<command>.py (never the reverse)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from client.config import Settings, load_settings
from client.errors import EXIT_UNUSABLE, UsageError

if TYPE_CHECKING:  # both loaded only when a command needs them
    from client.jobflow import Backend
    from workflows.registry import Registry


class Parser(argparse.ArgumentParser):
    """argparse's parser with our wording of a usage error and argparse's own exit 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_UNUSABLE)


def common_flags() -> Parser:
    """The flags every subcommand takes (a parent parser): the target, the deadline, output format."""
    p = Parser(add_help=False)
    t = p.add_argument_group("target (flags override the environment)")
    t.add_argument("--url", help="a RunPod-style base URL, e.g. http://127.0.0.1:8000 (the local stack)")
    t.add_argument("--comfy-url", help="talk to this ComfyUI directly, without RunPod")
    t.add_argument("--endpoint-id", help="RunPod endpoint id (default: $RUNPOD_ENDPOINT_ID)")
    t.add_argument("--api-key", help="RunPod API key (default: $RUNPOD_API_KEY; prefer the variable)")
    t.add_argument(
        "--timeout", type=float, help="overall seconds per job, queue included (default: $TEST_TIMEOUT, 600)"
    )
    t.add_argument(
        "--poll-interval", type=float, help="slowest status poll in seconds (default: $TEST_POLL_INTERVAL, 5)"
    )
    t.add_argument("--retries", type=int, help="retries per HTTP call (default: $TEST_RETRIES, 3)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log HTTP activity to stderr")
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(
        url=args.url,
        comfy_url=args.comfy_url,
        endpoint_id=args.endpoint_id,
        api_key=args.api_key,
        timeout_s=args.timeout,
        poll_interval_s=args.poll_interval,
        retries=args.retries,
    )


def backend(settings: Settings, registry: Registry | None = None) -> Backend:
    """RunPodAPI for RunPod-style targets, DirectComfy for a ComfyUI URL (imported only then)."""
    target = settings.require_target()
    if target.kind == "comfy":
        from client.direct import DirectComfy

        return DirectComfy(target.url, registry=registry, http_timeout_s=settings.http_timeout_s)
    from client.runpod_api import RunPodAPI

    return RunPodAPI(
        target.url,
        target.api_key,
        retries=settings.retries,
        http_timeout_s=settings.http_timeout_s,
        connect_timeout_s=settings.connect_timeout_s,
    )


def registry_from(directory: str | None) -> Registry:
    from workflows.registry import RegistryError, default_registry, load_registry

    try:
        return (load_registry(Path(directory)) if directory else default_registry()).require_valid()
    except RegistryError as exc:
        raise UsageError(f"invalid workflow registry: {exc}", code="REGISTRY_INVALID") from None
