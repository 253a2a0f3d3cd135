"""Run every benchmark against the real local stack: `python -m benchmarks.run_all [--only a,b] [--keep]`.

Starts its own stacks on free ports (fresh ones for the cold-start benchmark, then one with 5,000
model files for the rest), writes benchmarks/results/<name>.json and SUMMARY.md, stops everything.
Exit status 0 when every benchmark ran (targets missed or not: see SUMMARY.md); 1 when one crashed;
with BENCH_STRICT=1 also 1 when a target was missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from typing import Any

from benchmarks._common import REPO, loadavg, machine_facts, now_iso, write_result
from tools.localstack import free_port

ALL = (
    "worker_start",
    "start_path",
    "first_job",
    "test_mode",
    "diagnose",
    "analysis",
    "generate",
    "rss",
    "client",
    "volume",
    "mmap",
    "held",
)
RESULT_FILES = {
    "worker_start": "worker_start",
    "start_path": "start_path",
    "first_job": "first_job_self_check",
    "test_mode": "test_mode",
    "diagnose": "diagnose",
    "analysis": "analysis",
    "generate": "generate_overhead",
    "rss": "rss_50mb_output",
    "client": "client_diagnose_test",
    "volume": "volume_push",
    "mmap": "mmap_slow_storage",
    "held": "held_files_scan",
}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(ALL)}")
    parser.add_argument("--keep", action="store_true", help="keep the bench stack's run directory")
    args = parser.parse_args(argv)
    only = tuple(args.only.split(",")) if args.only else ALL
    unknown = set(only) - set(ALL)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")

    started, t0 = now_iso(), time.monotonic()
    load_start = loadavg()
    # The SDK's progress updates POST to RUNPOD_WEBHOOK_POST_OUTPUT (read when runpod is imported):
    # give them a real local endpoint, as in production, instead of a failing unset URL.
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, "-m", "benchmarks._sink", str(sink_port)], cwd=REPO)
    os.environ["RUNPOD_WEBHOOK_POST_OUTPUT"] = f"http://127.0.0.1:{sink_port}/job-done"

    outcomes: dict[str, Any] = {}
    comfy_system: dict[str, Any] = {}

    def attempt(name: str, fn: Any) -> None:
        _log(f"{name} ...")
        t = time.monotonic()
        try:
            result = fn()
            outcomes[name] = result.get("met")
            _log(f"{name}: met={result.get('met')} ({time.monotonic() - t:.0f} s)")
        except Exception as exc:  # one benchmark failing must not lose the others
            outcomes[name] = "crashed"
            write_result(RESULT_FILES[name], {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})
            _log(f"{name}: CRASHED: {type(exc).__name__}: {exc}")

    try:
        if "worker_start" in only:
            from benchmarks import bench_worker_start

            attempt("worker_start", bench_worker_start.main)

        if "start_path" in only:  # fresh stacks of its own, with models from the image, the cache, the volume
            from benchmarks import bench_start_path

            attempt("start_path", bench_start_path.main)

        if "first_job" in only:
            from benchmarks import bench_first_job

            attempt("first_job", bench_first_job.main)

        if "volume" in only:  # no stack: a local S3 server of its own
            from benchmarks import bench_volume

            attempt("volume", bench_volume.main)

        if "mmap" in only:  # no stack: a loop device under a block-I/O cap (root)
            from benchmarks import bench_mmap

            attempt("mmap", bench_mmap.main)

        if "held" in only:  # no stack: a torch-importing process holding memfds and unlinked files
            from benchmarks import bench_held

            attempt("held", bench_held.main)

        stack_needed = [
            n for n in only if n not in ("worker_start", "start_path", "first_job", "volume", "mmap", "held")
        ]
        if stack_needed:
            from benchmarks.stack import BenchStack, comfy_stats, use_runtime

            _log("starting the bench stack (5,000 model files) ...")
            bs = BenchStack()
            try:
                t = time.monotonic()
                bs.start()
                _log(
                    f"stack up in {time.monotonic() - t:.1f} s: ComfyUI {bs.stack.comfy_url}, worker {bs.stack.api_url}"
                )
                comfy_system = comfy_stats(bs.stack.comfy_url)
                from handler.runtime import Runtime

                runtime = Runtime(bs.settings(MAX_PAYLOAD_MB="200"))
                runtime.events.start(wait=2)
                use_runtime(runtime)
                if "test_mode" in only:
                    from benchmarks import bench_test_mode

                    attempt("test_mode", lambda: bench_test_mode.main(bs, runtime))
                if "diagnose" in only:
                    from benchmarks import bench_diagnose

                    attempt("diagnose", lambda: bench_diagnose.main(bs, runtime))
                if "analysis" in only:
                    from benchmarks import bench_analysis

                    attempt("analysis", lambda: bench_analysis.main(bs, runtime))
                if "generate" in only:
                    from benchmarks import bench_generate

                    attempt("generate", lambda: bench_generate.main(bs, runtime))
                if "rss" in only:
                    from benchmarks import bench_rss

                    attempt("rss", lambda: bench_rss.main(bs))
                if "client" in only:
                    from benchmarks import bench_client

                    attempt("client", lambda: bench_client.main(bs))
                runtime.events.close()
            finally:
                bs.stop(keep=args.keep)
                if args.keep:
                    _log(f"kept {bs.run_dir}")
    finally:
        sink.terminate()
        sink.wait(5)

    total = round(time.monotonic() - t0, 1)
    facts = machine_facts(comfy_system)
    facts["loadavg"] = load_start
    write_result("machine", {"when": started, "total_s": total, "machine": facts, "outcomes": outcomes})
    from benchmarks import summary

    path = summary.write()
    _log(f"done in {total} s; {path}")
    print(path.read_text().split("## Details")[0])
    if any(v == "crashed" for v in outcomes.values()):
        return 1
    if os.environ.get("BENCH_STRICT") == "1" and any(v is False for v in outcomes.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
