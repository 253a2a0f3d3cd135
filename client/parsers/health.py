"""Is the worker up? The sub-second health ping (the worker's test mode), with the round trip from here.

comfy-runpod health            # exit 0 healthy, 1 unhealthy, 2 unreachable
"""

from __future__ import annotations

import argparse

from client.parsers import shared
from client.render import Renderer

HELP = "sub-second health ping: ComfyUI up, disk, volume, round trip"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No flags beyond the common ones."""


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.health import ping

    settings = shared.settings_from(args)
    with r.job_progress("test") as progress:
        data = ping(shared.backend(settings), settings, on_update=progress)
    return data, 0 if data["healthy"] else 1
