#!/usr/bin/env bash
# ComfyUI's virtualenv: torch first (TORCH_PACKAGES from TORCH_INDEX_URL, or PyPI when empty), then
# ComfyUI's requirements.txt without torch/torchvision/torchaudio and COMFY_REQUIREMENTS_EXCLUDE, plus
# COMFY_REQUIREMENTS_EXTRA.
# The installed torch versions are written to VENV/torch-constraints.txt: every later install
# (custom node packs) must keep them. Everything after torch resolves under /opt/comfy-venv-constraints.txt
# (docker/comfy-constraints.txt), copied into the venv as VENV/constraints.txt for the packs' step.
#   install_comfy_venv.sh VENV REQUIREMENTS_TXT
# Wheels in the build context's docker/wheelhouse are offered too (--find-links).
set -euo pipefail

venv="${1:?venv}"
requirements="${2:?requirements.txt}"
py="python${PYTHON_VERSION:-3.11}"
read -r -a torch_packages <<< "${TORCH_PACKAGES:?TORCH_PACKAGES}"
read -r -a exclude <<< "torch torchvision torchaudio ${COMFY_REQUIREMENTS_EXCLUDE:-}"

"$py" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --find-links /opt/build/wheelhouse)

index=()
if [[ -n "${TORCH_INDEX_URL:-}" ]]; then
  index=(--index-url "$TORCH_INDEX_URL")
fi
echo "install_comfy_venv: ${torch_packages[*]} ${index[*]}"
"${pip[@]}" "${index[@]}" "${torch_packages[@]}"
"$venv/bin/python" -m pip freeze | grep -iE '^(torch|torchvision|torchaudio)==' > "$venv/torch-constraints.txt"
cat "$venv/torch-constraints.txt"

pattern="$(IFS='|'; echo "${exclude[*]}")"
filtered="$(mktemp)"
grep -viE "^[[:space:]]*(${pattern})[[:space:]]*([<>=!~;[]|$)" "$requirements" > "$filtered" || true
read -r -a extra <<< "${COMFY_REQUIREMENTS_EXTRA:-}"
printf '%s\n' "${extra[@]}" >> "$filtered"
echo "install_comfy_venv: ComfyUI requirements without ${exclude[*]}, with ${extra[*]}"
constraints=/opt/comfy-venv-constraints.txt
cp "$constraints" "$venv/constraints.txt"
"${pip[@]}" -c "$venv/torch-constraints.txt" -c "$venv/constraints.txt" -r "$filtered"
rm -f "$filtered"
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
