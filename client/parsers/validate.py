"""Validate a deployment with a suite: health, dependencies, N verified generate runs, timing targets.

    comfy-runpod validate --suite smoke --runs 2
    comfy-runpod validate --suite denrisi          # 10 runs, cold start < 60 s, generation < 30 s
    comfy-runpod validate --workflow my_flow       # an entry's own suite: its model-free parts judged alone

Writes report.json, report.md and junit.xml; exit 0 when the suite passed, 1 when it failed, 2 when
the endpoint was unusable.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "a suite of checks: health, dependencies, N verified generate runs, timing targets → a verdict"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", help="suite name (default smoke; see client/suites.yaml)")
    p.add_argument(
        "--workflow",
        metavar="ID",
        help="a registry entry's own suite (the suite named after it, else one case): packs at their pins, "
        "nodes, parameters/outputs and the graph checked apart; generation skipped while its models are missing",
    )
    p.add_argument("--runs", type=int, help="generate runs per workflow (default: the suite's)")
    p.add_argument("--suites", type=Path, metavar="FILE", help="suites file (default client/suites.yaml)")
    p.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="where to write the reports (default outputs/validate_<time>_<suite>)",
    )
    p.add_argument("--registry", metavar="DIR", help="local workflow registry (default: ours)")
    p.add_argument(
        "--baseline",
        metavar="last|RUN_ID",
        help="compare with a recorded run (last: this suite's latest on this target); a regression fails the suite",
    )
    p.add_argument(
        "--max-regression",
        default="20%",
        metavar="PCT",
        help="how much worse p50 generation time or cold start may be than the baseline (default 20%%)",
    )


def check_arguments(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.runs is not None and args.runs < 1:
        p.error("--runs must be at least 1")
    if args.suite and args.workflow:
        p.error("--suite and --workflow are alternatives: --workflow runs the entry's own suite")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.report import apply_checks, find_baseline, parse_threshold, regression_checks, validate_record
    from client.commands.validate import SUITES_FILE, load_suites, run_suite
    from client.commands.validate_entry import entry_suite, run_entry
    from client.errors import UsageError
    from client.history import History
    from client.render.report_files import without_thumbnails, write_validate_reports

    settings = shared.settings_from(args)
    parse_threshold(args.max_regression)  # a bad threshold is refused before any job runs
    registry = shared.registry_from(args.registry)
    if args.workflow:
        suite = entry_suite(registry, args.workflow, args.suites or SUITES_FILE)
    else:
        suites, name = load_suites(args.suites or SUITES_FILE), args.suite or "smoke"
        if name not in suites:
            raise UsageError(f"no suite {name!r}; suites: {', '.join(sorted(suites))}")
        suite = suites[name]
    history = History(settings.history_path)  # the baseline is found before any job runs
    label = settings.require_target().label
    baseline = find_baseline(history, args.baseline, target=label, suite=suite.name) if args.baseline else None
    report = (run_entry if args.workflow else run_suite)(
        shared.backend(settings, registry),
        settings,
        registry,
        suite,
        runs=args.runs,
        on_event=lambda msg: r.note(f"validate {suite.name}: {msg}"),
    )
    if args.baseline:
        report = apply_checks(report, regression_checks(report, baseline, parse_threshold(args.max_regression)))
    directory = args.report_dir or settings.outputs_dir / f"validate_{time.strftime('%Y%m%d-%H%M%S')}_{suite.name}"
    paths = write_validate_reports(report, directory)
    run_id = history.record(*validate_record(report, str(directory)))
    return {"report": without_thumbnails(report), "reports": paths, "run_id": run_id}, report["exit_code"]
