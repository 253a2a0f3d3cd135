"""Benchmark an endpoint: cold vs warm start, generation p50/p95/max, concurrency, cost per output.

    comfy-runpod bench --workflow smoke_image --runs 10 --concurrency 3 --gpu "4090 PRO"

Writes bench.json and bench.md (default outputs/bench_<time>_<workflow>/).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from client.parsers import shared
from client.render import Renderer

HELP = "cold vs warm start, generation p50/p95/max, concurrency, cost per output"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workflow", default="smoke_image", help="registry workflow (default smoke_image)")
    p.add_argument("--runs", type=int, default=5, help="sequential runs; the first measures the cold start (5)")
    p.add_argument("--concurrency", type=int, default=1, help="parallel jobs for the concurrent phase (1 = skip)")
    p.add_argument("--concurrent-runs", type=int, help="jobs in the concurrent phase (default: --runs)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="generate parameter, e.g. --param steps=8 (repeatable; VALUE parsed as JSON)",
    )
    p.add_argument("--image", help="input image path, or test-pattern (default for image workflows)")
    p.add_argument("--gpu", help='GPU for the cost estimate, e.g. "4090 PRO", L40S, A100 (see --prices)')
    p.add_argument("--worker-type", choices=("flex", "active"), default="flex")
    p.add_argument("--prices", type=Path, metavar="FILE", help="GPU price table (default client/gpu_prices.yaml)")
    p.add_argument("--price-per-second", type=float, metavar="USD", help="override the price table")
    p.add_argument("--out", type=Path, metavar="DIR", help="report directory (default outputs/bench_<time>_<wf>)")


def run(args: argparse.Namespace, r: Renderer) -> tuple[dict, int]:
    from client.commands.bench import PRICES_FILE, Price, load_price, run_bench
    from client.commands.report import bench_record
    from client.errors import UsageError
    from client.history import History
    from client.render.report_files import without_thumbnails, write_bench_reports

    settings = shared.settings_from(args)
    params = {}
    for item in args.param:
        key, eq, raw = item.partition("=")
        if not eq:
            raise UsageError(f"--param {item!r}: expected NAME=VALUE")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    price = None
    if args.price_per_second is not None:
        price = Price(args.gpu or "custom", args.worker_type, args.price_per_second, "--price-per-second")
    elif args.gpu:
        price = load_price(args.prices or PRICES_FILE, args.gpu, args.worker_type)
    registry = shared.registry_from(None)
    result = run_bench(
        shared.backend(settings, registry),
        settings,
        registry,
        workflow=args.workflow,
        runs=args.runs,
        concurrency=args.concurrency,
        concurrent_runs=args.concurrent_runs,
        params=params,
        image=args.image,
        price=price,
        on_event=lambda msg: r.note(f"bench {args.workflow}: {msg}"),
    )
    directory = args.out or settings.outputs_dir / f"bench_{time.strftime('%Y%m%d-%H%M%S')}_{args.workflow}"
    paths = write_bench_reports(result, directory)
    run_id = History(settings.history_path).record(*bench_record(result, str(directory)))
    return {"result": without_thumbnails(result), "reports": paths, "run_id": run_id}, 1 if result["failures"] else 0
