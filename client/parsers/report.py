"""Reports from the run history (every validate and bench run is recorded; see COMFY_RUNPOD_HISTORY).

    comfy-runpod report --workflow smoke_image --url http://127.0.0.1:8000 --last 20
    comfy-runpod report --compare 12 15          # two runs side by side (two endpoints, before/after)

Writes trend.json + trend.html (or compare.json + compare.html), default outputs/report_<time>/.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "trend over the last N recorded runs of a workflow, or two runs side by side (--compare A B)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workflow", default="smoke_image", help="workflow whose trend to show (default smoke_image)")
    p.add_argument("--last", type=int, default=20, metavar="N", help="how many recorded runs (default 20)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two run ids side by side")
    p.add_argument("--out", type=Path, metavar="DIR", help="report directory (default outputs/report_<time>)")


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.last < 1:
        p.error("--last must be at least 1")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.report import compare, trend
    from client.history import History
    from client.render.report_files import write_history_report

    settings = shared.settings_from(args)
    history = History(settings.history_path)
    directory = args.out or settings.outputs_dir / f"report_{time.strftime('%Y%m%d-%H%M%S')}"
    if args.compare:
        data = compare(history, *args.compare)
        return {"compare": data, "reports": write_history_report(data, directory, "compare")}, 0
    target = settings.target.label if settings.target else None  # no target given: every target
    data = trend(history, args.workflow, target, args.last)
    return {"trend": data, "reports": write_history_report(data, directory, "trend")}, 0
