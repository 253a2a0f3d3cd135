# Benchmarks against the real local stack (included by the Makefile: `-include mk/*.mk`).
#   make bench                      every benchmark, ~4-5 min on 2 cores; results in benchmarks/results/
#   make bench BENCH_ARGS="--only generate,analysis"   a subset (names: python -m benchmarks.run_all -h)
#   make bench BENCH_SCALE=0.3      fewer repetitions, for a quick look
#   make bench-summary              rebuild benchmarks/results/SUMMARY.md from the JSON files
# BENCH_STRICT=1 makes a missed target fail the command (default: only a crashed benchmark does).
.PHONY: bench bench-summary

bench: venv comfyui
	@BENCH_SCALE=$(or $(BENCH_SCALE),1) $(PY) -m benchmarks.run_all $(BENCH_ARGS)

bench-summary: venv
	@$(PY) -m benchmarks.summary

# The same benchmarks on a temporary copy of the tree with benchmarks/proposed/*.diff applied;
# SUMMARY.md then shows both side by side. The work tree is not modified.
.PHONY: bench-proposed
bench-proposed: venv comfyui
	@BENCH_SCALE=$(or $(BENCH_SCALE),1) $(PY) -m benchmarks.run_proposed $(BENCH_ARGS)
