#!/usr/bin/env bash
# `make lock`: the hash-locked requirement sets, from pyproject.toml's pins (pip-tools' pip-compile).
#   requirements/worker.txt  the worker's venv (image): dependencies + the `worker` extra
#   requirements/client.txt the client: dependencies + the `client` extra
#   requirements/dev.txt     development and CI (.venv): everything, tools included
# Installs use `pip install --require-hashes --no-deps -r FILE`: the same files, byte for byte, every time.
# Run after changing a pin in pyproject.toml (tests/image/test_build_inputs.py checks the locks match it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
py="${PY:-.venv/bin/python}"
mkdir -p requirements
for extra in worker client dev; do
  CUSTOM_COMPILE_COMMAND="make lock" "$py" -m piptools compile --quiet --generate-hashes --strip-extras \
    --no-emit-index-url --no-emit-find-links --unsafe-package comfy-runpod --extra "$extra" \
    -o "requirements/$extra.txt" pyproject.toml 2>&1 | { grep -v '^WARNING: Location' || true; }
  echo "lock: requirements/$extra.txt: $(grep -c '^[a-zA-Z0-9]' "requirements/$extra.txt") packages"
done
