"""`bench.py`: cold vs warm start, generation p50/p95/max (sequential and concurrent), cost per output."""

from __future__ import annotations

import base64
import math
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from client.commands.validate import Case, case_input, pattern_png
from client.config import Settings
from client.errors import ClientError, UsageError
from client.jobflow import Backend, JobResult, submit_and_wait
from client.media import thumbnail
from workflows.registry import Registry

PRICES_FILE = Path(__file__).resolve().parent.parent / "gpu_prices.yaml"
EventSink = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Price:
    gpu: str
    worker_type: str
    per_second: float
    source: str


def load_price(path: Path, gpu: str, worker_type: str = "flex") -> Price:
    """The per-second price of a GPU group from a prices file; a GPU matches a group by name or member."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        groups = data["gpus"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise UsageError(f"cannot read GPU prices from {path}: {exc}") from None
    wanted = gpu.strip().lower()
    match = next((g for g in groups if g.lower() == wanted), None) or next(
        (g for g in groups if wanted in [m.strip().lower() for m in g.split(",")]), None
    )
    if match is None:
        raise UsageError(f"GPU {gpu!r} is not in {path.name}; known: {'; '.join(groups)}")
    if worker_type not in groups[match]:
        raise UsageError(f"{path.name}: {match} has no {worker_type!r} price")
    source = f"{data.get('source', path.name)} (retrieved {data.get('retrieved', '?')})"
    return Price(match, worker_type, float(groups[match][worker_type]), source)


def summarize(values: list[float]) -> dict[str, Any] | None:
    """n, p50, p95 (nearest rank), max, mean."""
    if not values:
        return None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {
        "n": len(ordered),
        "p50": round(rank(0.5), 3),
        "p95": round(rank(0.95), 3),
        "max": round(ordered[-1], 3),
        "mean": round(statistics.fmean(ordered), 3),
    }


def _row(result: JobResult) -> dict[str, Any]:
    timings = (result.output or {}).get("timings") or {} if isinstance(result.output, dict) else {}
    total = timings.get("total_ms")
    return {
        "job_id": result.job_id,
        "wall_s": round(result.wall_s, 3),
        "generate_s": round(total / 1000, 3) if isinstance(total, int | float) else None,
        "delay_s": round(result.delay_ms / 1000, 3) if result.delay_ms is not None else None,
        "execution_s": round(result.execution_ms / 1000, 3) if result.execution_ms is not None else None,
        "queue_wait_ms": timings.get("queue_wait_ms"),
        "nodes_ms": timings.get("nodes_ms") or {},
        "thumbnail": _first_thumbnail(result.output),
    }


def _first_thumbnail(output: Any) -> str | None:
    """A preview of the job's first output with inline content (the HTML report shows it)."""
    items = output.get("outputs") if isinstance(output, dict) else None
    first = next((o for o in items or [] if isinstance(o, dict) and isinstance(o.get("base64"), str)), None)
    if first is None:
        return None
    try:
        data = base64.b64decode(first["base64"])
    except ValueError:
        return None
    return thumbnail(data, str(first.get("filename", "")))


def _worker_phases(api: Any, settings: Any) -> dict[str, Any] | None:
    """Where the worker's cold start went (its `test` answer's phases: seconds since its entrypoint)."""
    try:
        result = submit_and_wait(
            api, {"mode": "test"}, timeout_s=settings.timeout_s, poll_interval_s=settings.poll_interval_s
        )
    except ClientError:
        return None
    return (result.output or {}).get("phases") if isinstance(result.output, dict) else None


def run_bench(
    api: Backend,
    settings: Settings,
    registry: Registry,
    *,
    workflow: str,
    runs: int,
    concurrency: int = 1,
    concurrent_runs: int | None = None,
    params: dict[str, Any] | None = None,
    image: str | None = None,
    price: Price | None = None,
    on_event: EventSink | None = None,
) -> dict[str, Any]:
    """Sequential runs (the first measures the cold start), then a concurrent phase; stats and cost."""
    target = settings.require_target()
    if runs < 1 or concurrency < 1:
        raise UsageError("--runs and --concurrency must be at least 1")
    say = on_event or (lambda _msg: None)
    case = Case(workflow, dict(params or {}), image)
    image_b64 = _bench_image(registry.get(workflow), image)
    failures: list[dict[str, Any]] = []

    def one(i: int) -> dict[str, Any] | None:
        try:
            job_input = case_input(case, i, image_b64)
            result = submit_and_wait(
                api, job_input, timeout_s=settings.timeout_s, poll_interval_s=settings.poll_interval_s
            )
        except ClientError as exc:
            failures.append({"run": i + 1, **exc.to_dict()})
            return None
        return _row(result)

    started = time.time()
    sequential: list[dict[str, Any]] = []
    for i in range(runs):
        say(f"sequential run {i + 1}/{runs}")
        if (row := one(i)) is not None:
            sequential.append(row)
    concurrent_runs = runs if concurrent_runs is None else concurrent_runs
    concurrent: list[dict[str, Any]] = []
    elapsed: float | None = None
    if concurrency > 1 and concurrent_runs > 0:
        say(f"{concurrent_runs} runs at concurrency {concurrency}")
        concurrent, elapsed = _concurrently(one, range(runs, runs + concurrent_runs), concurrency)
    cold = _cold_start(sequential[0] if sequential else None, sequential[1:] + concurrent)
    if phases := _worker_phases(api, settings):
        cold["worker_phases_s"] = phases  # where the worker's own cold start went
    return {
        "workflow": workflow,
        "target": target.label,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "runs": runs,
        "params": dict(params or {}),
        "concurrency": concurrency,
        "concurrent_runs": concurrent_runs if concurrency > 1 else 0,
        **_results(sequential, concurrent, failures, cold, elapsed, price),
    }


def _results(
    sequential: list[dict[str, Any]],
    concurrent: list[dict[str, Any]],
    failures: list[dict[str, Any]],
    cold: dict[str, Any],
    elapsed: float | None,
    price: Price | None,
) -> dict[str, Any]:
    """The measured part of the bench result: failures, cold start, stats, throughput, the rows, the cost."""
    return {
        "failures": len(failures),
        "failed_runs": failures,
        "cold_start": cold,
        "stats": _stats(sequential, concurrent),
        "throughput_per_min": round(len(concurrent) / elapsed * 60, 2) if elapsed else None,
        "sequential": sequential,
        "concurrent": concurrent,
        "cost": _cost(price, sequential + concurrent, sequential[0] if sequential else None),
    }


def _concurrently(
    one: Callable[[int], dict[str, Any] | None], indexes: range, concurrency: int
) -> tuple[list[dict[str, Any]], float]:
    """The successful rows of runs done `concurrency` at a time, and the phase's wall time."""
    t = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        rows = [r for r in pool.map(one, indexes) if r is not None]
    return rows, time.perf_counter() - t


def _bench_image(entry: Any, image: str | None) -> str | None:
    if image is None and entry is not None and "image" in entry.parameters:
        image = "test-pattern"
    if not image:
        return None
    raw = pattern_png() if image == "test-pattern" else Path(image).read_bytes()
    return base64.b64encode(raw).decode("ascii")


def _values(rows: list[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in rows if r.get(key) is not None]


def _cold_start(first: dict[str, Any] | None, warm: list[dict[str, Any]]) -> dict[str, Any]:
    warm_delays = _values(warm, "delay_s")
    cold: dict[str, Any] = {
        "first_delay_s": first.get("delay_s") if first else None,
        "first_execution_s": first.get("execution_s") if first else None,
        "warm_delay_p50_s": round(statistics.median(warm_delays), 3) if warm_delays else None,
    }
    if first is not None and first.get("delay_s") is None:
        cold["note"] = "the endpoint reports no delayTime (RunPod cloud does; the local dev API does not)"
    return cold


def _stats(sequential: list[dict[str, Any]], concurrent: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sequential_wall_s": summarize(_values(sequential, "wall_s")),
        "sequential_generate_s": summarize(_values(sequential, "generate_s")),
        "sequential_execution_s": summarize(_values(sequential, "execution_s")),
        "concurrent_wall_s": summarize(_values(concurrent, "wall_s")),
        "concurrent_generate_s": summarize(_values(concurrent, "generate_s")),
    }


def _cost(price: Price | None, rows: list[dict[str, Any]], first: dict[str, Any] | None) -> dict[str, Any]:
    if price is None:
        return {"note": "no GPU price: pass --gpu NAME (see client/gpu_prices.yaml) or --price-per-second"}
    execution = [r["execution_s"] for r in rows if r.get("execution_s") is not None]
    basis = "RunPod executionTime per job"
    if not execution:
        execution = [r["generate_s"] for r in rows if r.get("generate_s") is not None]
        basis = "the worker's total time per job (the endpoint reports no executionTime)"
    if not execution:
        return {"note": "no successful run to price"}
    billed = statistics.median(execution)
    per_output = price.per_second * billed
    cold = first.get("delay_s") if first else None
    return {
        "gpu": price.gpu,
        "worker_type": price.worker_type,
        "price_per_s": price.per_second,
        "price_source": price.source,
        "billed_s_p50": round(billed, 3),
        "per_output_usd": round(per_output, 6),
        "per_1000_usd": round(per_output * 1000, 3),
        "cold_start_usd": round(price.per_second * cold, 6) if cold is not None else None,
        "basis": basis + "; RunPod bills whole seconds of worker time per worker session, plus idle time "
        "before scale-down, so treat these as lower bounds",
    }
