"""`make fuzz`: fuzzed job input (hypothesis) against the worker's handle(), outside the test suite.

    python -m benchmarks.fuzz_handle [--cases 10000] [--out benchmarks/results/fuzz.json]

Starts a private real stack (CPU ComfyUI, test packs), calls handler.worker.handle in-process with each
generated input (the strategy of tests/reliability/test_inputs.py, which runs 500 of them in the suite),
and records: cases run, uncaught exceptions (handle raising, a non-JSON answer or INTERNAL_ERROR), the
error codes seen, files left in ComfyUI's input directory, the slowest call. Exit 1 on any uncaught
exception or leftover file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def fuzz(cases: int) -> dict[str, Any]:
    from hypothesis import HealthCheck, given, settings

    from handler.runtime import Runtime
    from handler.worker import handle
    from tests.conftest import make_stack, stack_settings
    from tests.reliability.test_inputs import files_under, job_inputs
    from workflows.errors import CODES

    codes: collections.Counter[str] = collections.Counter()
    uncaught: list[dict[str, Any]] = []
    count, slowest = [0], [0.0]
    with tempfile.TemporaryDirectory(prefix="crp-fuzz-") as tmp:
        stack = make_stack(Path(tmp) / "stack")
        stack.start(wait=180)
        rt = Runtime(stack_settings(stack, GENERATE_TIMEOUT_S="60"))
        input_dir = stack.comfy_dir / "input"
        before = files_under(input_dir)
        started = time.monotonic()
        try:

            @settings(max_examples=cases, deadline=None, database=None, suppress_health_check=list(HealthCheck))
            @given(job_input=job_inputs)
            def run(job_input: Any) -> None:
                count[0] += 1
                t0 = time.monotonic()
                try:
                    result = handle({"id": "fuzz", "input": job_input}, rt)
                    json.dumps(result)
                    code = json.loads(result["error"])["error_code"] if "error" in result else "OK"
                except Exception as exc:  # exactly what we count
                    uncaught.append({"input": repr(job_input)[:300], "error": f"{type(exc).__name__}: {exc}"[:300]})
                    uncaught[-1]["traceback"] = traceback.format_exc().splitlines()[-4:]
                    return
                finally:
                    slowest[0] = max(slowest[0], time.monotonic() - t0)
                if code == "INTERNAL_ERROR" or (code != "OK" and code not in CODES):
                    uncaught.append({"input": repr(job_input)[:300], "error": result["error"][:300]})
                codes[code] += 1

            run()
        finally:
            elapsed = time.monotonic() - started
            rt.events.close()
            leftovers = sorted(str(p) for p in files_under(input_dir) - before)
            stack.stop()
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "cases": count[0],
        "cases_requested": cases,
        "uncaught_exceptions": len(uncaught),
        "uncaught_examples": uncaught[:10],
        "codes_seen": dict(sorted(codes.items())),
        "leftover_input_files": leftovers,
        "slowest_call_s": round(slowest[0], 3),
        "total_s": round(elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fuzz_handle", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/fuzz.json")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("handler").setLevel(logging.ERROR)  # one warning per rejected case otherwise
    result = fuzz(args.cases)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"fuzz: {result['cases']} cases, {result['uncaught_exceptions']} uncaught exception(s), "
        f"{len(result['leftover_input_files'])} leftover file(s), codes {result['codes_seen']}, "
        f"slowest {result['slowest_call_s']} s, {result['total_s']} s in all -> {args.out}"
    )
    return 1 if result["uncaught_exceptions"] or result["leftover_input_files"] else 0


if __name__ == "__main__":
    sys.exit(main())
