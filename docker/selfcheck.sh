#!/usr/bin/env bash
# Build step of the final stage: `python -m handler.selfcheck --static` (every node class a registered
# workflow needs is defined by ComfyUI or an installed pack; the registry and extra_model_paths.yaml
# are valid). With INSTALL_PACKS=0 the packs are missing on purpose, so only the workflows that run
# on CPU (registry `runs_on_cpu: true`) are checked: --cpu-only. With INSTALL_PACKS=a list of names
# (e.g. the packs that have a snapshot) the workflows needing only those packs are checked: --only-packs.
set -euo pipefail

py="${HANDLER_PYTHON:-/opt/venv/bin/python}"
args=(--static)
if [[ "${INSTALL_PACKS:-1}" != "1" && "${INSTALL_PACKS:-1}" != "0" ]]; then
  echo "selfcheck: INSTALL_PACKS=${INSTALL_PACKS}: checking the workflows that need only these packs"
  args+=(--only-packs "${INSTALL_PACKS}")
elif [[ "${INSTALL_PACKS:-1}" != "1" ]]; then
  echo "selfcheck: INSTALL_PACKS=${INSTALL_PACKS}: packs skipped, checking the workflows that run on CPU only"
  args+=(--cpu-only)
fi
exec "$py" -m handler.selfcheck "${args[@]}"
