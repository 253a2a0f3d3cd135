# The security probe suite (tests/security, also part of `make test`), with its figures written to
# benchmarks/results/security_probes.json: probes tried, blocked, by code. Included by the Makefile.
.PHONY: bench-security

bench-security: venv comfyui
	@SECURITY_RESULTS=$(CURDIR)/benchmarks/results/security_probes.json $(PY) -m pytest -q -p no:cacheprovider tests/security
	@echo "figures: benchmarks/results/security_probes.json"
