#!/usr/bin/env python3
"""Is the worker up? The sub-second health ping (the worker's test mode), with the round trip from here.

comfy-runpod health            # exit 0 healthy, 1 unhealthy, 2 unreachable
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python client/health.py`: import from the repo root
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from client import cli
from client.render import Renderer

HELP = "sub-second health ping: ComfyUI up, disk, volume, round trip"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No flags beyond the common ones."""


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.health import ping

    settings = cli.settings_from(args)
    with r.job_progress("test") as progress:
        data = ping(cli.backend(settings), settings, on_update=progress)
    return data, 0 if data["healthy"] else 1


def main(argv: list[str] | None = None) -> int:
    return cli.run_as_script("health", argv)


if __name__ == "__main__":
    sys.exit(main())
