# Two commands do everything on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
COMFY_HOME ?= $(HOME)/.cache/comfy-runpod/comfyui-0.3.75
export COMFY_HOME
# Snapshots of the custom node packs at the registry's pinned commits (docker/fetch_pack.sh, tools/packs.py):
# ../shared/packs on the development machines and CI; elsewhere packs come from GitHub.
COMFY_PACKS_SNAPSHOTS ?= $(wildcard $(abspath ../shared/packs))
export COMFY_PACKS_SNAPSHOTS
# ComfyUI-Manager's lists (workflow add) on machines without GitHub: read from there instead of fetched.
COMFY_RUNPOD_ECOSYSTEM ?= $(wildcard $(abspath ../shared/ecosystem))
export COMFY_RUNPOD_ECOSYSTEM

.PHONY: help venv lock comfyui chromium up down status demo test test-fast lint clean

help:
	@echo "make demo   - install what is missing, start the stack, run test/diagnose/generate, stop"
	@echo "make test   - install dev deps and run the whole suite against the real stack"
	@echo "make up / make down / make status - the local stack (ComfyUI :8188, worker API :8000)"
	@echo "make lint   - ruff (lint and format), mypy (handler, workflows, comfyui_client, client), shellcheck, hadolint"
	@echo "make chromium - install headless Chromium for the HTML report tests (Debian package)"
	@echo "make lock   - regenerate the hash-locked requirements/*.txt from pyproject.toml's pins"
	@echo "make fuzz   - 10,000 fuzzed job inputs against the worker, figures in benchmarks/results/fuzz.json"

# The dev environment from the hash-locked requirements/dev.txt (`make lock` regenerates the locks from
# pyproject.toml's pins): exactly those files, checked against their sha256, nothing resolved here.
$(VENV)/.installed: pyproject.toml requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.txt \
	  2>&1 | { grep -v '^WARNING: Location' || true; }; test "$${PIPESTATUS[0]}" -eq 0
	@out="$$($(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1)" || { echo "$$out"; exit 1; }
	@$(PY) -m pip check >/dev/null || { $(PY) -m pip check; exit 1; }
	@touch $@

venv: $(VENV)/.installed

# Regenerate requirements/{worker,client,dev}.txt (hashes included) after changing a pin in pyproject.toml.
lock:
	@test -x $(VENV)/bin/pip-compile || $(MAKE) venv
	@PY=$(PY) bash scripts/lock.sh

comfyui:
	@bash scripts/install_comfyui.sh

up: venv comfyui
	@$(PY) -m tools.localstack up

down:
	@$(PY) -m tools.localstack down

status:
	@$(PY) -m tools.localstack status

demo: venv comfyui
	@$(PY) tools/demo.py

# Headless Chromium (Debian's package) opens the HTML reports in tests/client/test_report_browser.py.
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing (apt-get install chromium): the report browser tests will skip" >&2; fi; }

# pytest exits 5 when it collected no tests: that is a failure, never a pass.
test: venv comfyui chromium
	@$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

# mypy's settings (the packages, the strictness, the few modules without types) are in pyproject.toml's
# [tool.mypy]; its cache is .mypy_cache/.
lint: venv lint-docker
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/mypy

clean: down
	rm -rf .run outputs

-include mk/*.mk
