#!/usr/bin/env bash
# The worker's virtualenv from REQUIREMENTS (requirements/worker.txt: hash-locked, installed with
# --require-hashes --no-deps, so exactly the locked wheels and nothing resolved here). The code itself
# is not installed: a .pth file puts APP_DIR on the path, and the final stage copies handler/,
# workflows/ and comfyui_client/ there, so a code change rebuilds only a few small layers.
#   install_worker_venv.sh VENV REQUIREMENTS APP_DIR
set -euo pipefail

venv="${1:?venv}"
requirements="${2:?requirements.txt}"
app="${3:?app dir}"
py="python${PYTHON_VERSION:-3.11}"

"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --require-hashes --no-deps -r "$requirements"
"$venv/bin/python" -m pip check
mkdir -p "$app"
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
echo "$app" > "$site/comfy_runpod_app.pth"
