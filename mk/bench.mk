# Benchmarks against the real local stack (included by the Makefile: `-include mk/*.mk`).
#   make bench                      every benchmark, ~4-5 min on 2 cores; results in benchmarks/results/
#   make bench BENCH_ARGS="--only generate,analysis"   a subset (names: python -m benchmarks.run_all -h)
#   make bench BENCH_SCALE=0.3      fewer repetitions, for a quick look
#   make bench-summary              rebuild benchmarks/results/SUMMARY.md from the JSON files
# BENCH_STRICT=1 makes a missed target fail the command (default: only a crashed benchmark does).
# `make bench` is the only command that writes the tracked figures: it also runs the reliability suite
# into benchmarks/results/reliability.json and copies the last image test's figures
# (.results/image_last_run.json, from `make image-test`) to benchmarks/results/image.json.
.PHONY: bench bench-summary fuzz

bench: venv comfyui
	@BENCH_SCALE=$(or $(BENCH_SCALE),1) $(PY) -m benchmarks.run_all $(BENCH_ARGS)
	@RELIABILITY_RESULTS=$(CURDIR)/benchmarks/results/reliability.json \
	  $(PY) -m pytest -q -p no:cacheprovider tests/reliability
	@if [ -f .results/image_last_run.json ]; then cp .results/image_last_run.json benchmarks/results/image.json; fi

# 10,000 fuzzed job inputs against handle() (hypothesis), outside the suite; figures (cases, uncaught
# exceptions, codes seen) in benchmarks/results/fuzz.json. FUZZ_CASES changes the count.
fuzz: venv comfyui
	@$(PY) -m benchmarks.fuzz_handle --cases $(or $(FUZZ_CASES),10000) --out benchmarks/results/fuzz.json

bench-summary: venv
	@$(PY) -m benchmarks.summary

# The same benchmarks on a temporary copy of the tree with benchmarks/proposed/*.diff applied;
# SUMMARY.md then shows both side by side. The work tree is not modified.
.PHONY: bench-proposed
bench-proposed: venv comfyui
	@BENCH_SCALE=$(or $(BENCH_SCALE),1) $(PY) -m benchmarks.run_proposed $(BENCH_ARGS)
