"""The benchmarks with every change in benchmarks/proposed/*.diff applied, side by side with the
code as it is: `python -m benchmarks.run_proposed [run_all arguments]`.

Copies the work tree (without .venv, .git and results) to a temporary directory, applies the diffs
there with `git apply`, runs `benchmarks.run_all` in the copy with its results going to
benchmarks/results/with_proposals/, then rebuilds SUMMARY.md, which shows them in extra columns.
The work tree itself is never modified.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

from benchmarks._common import REPO, RESULTS

PROPOSED = REPO / "benchmarks" / "proposed"


def main(argv: list[str]) -> int:
    work = tempfile.mkdtemp(prefix="bench-proposed-")
    tree = os.path.join(work, "repo")
    try:
        shutil.copytree(
            REPO,
            tree,
            ignore=shutil.ignore_patterns(
                ".venv", ".git", ".run", ".hypothesis", ".ruff_cache", "__pycache__", "results", "outputs"
            ),
        )
        for diff in sorted(PROPOSED.glob("*.diff")):
            subprocess.run(["git", "apply", "-p1", str(diff)], cwd=tree, check=True)
            print(f"[bench] applied {diff.name}", flush=True)
        env = dict(os.environ, BENCH_RESULTS=str(RESULTS / "with_proposals"))
        env.pop("PYTHONPATH", None)
        rc = subprocess.run([sys.executable, "-m", "benchmarks.run_all", *argv], cwd=tree, env=env).returncode
    finally:
        shutil.rmtree(work, ignore_errors=True)
    from benchmarks import summary

    print(f"[bench] {summary.write()}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
