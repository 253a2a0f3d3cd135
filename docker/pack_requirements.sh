#!/usr/bin/env bash
# Install one custom node pack's Python requirements into a ComfyUI venv, as ComfyUI-Manager would
# (requirements.txt, then install.py): the one way, used by the image build (install_packs.sh) and by
# the local stack, the tests and `workflow add` (tools/packs.py).
#   pack_requirements.sh PACK_DIR PYTHON [CONSTRAINTS_FILE ...]
# Constraints: every package already in the venv stays at its version (torch is never replaced), plus
# the files given (the image: docker/comfy-constraints.txt and torch-constraints.txt). OpenCV: a pack's
# opencv-python / opencv-contrib-python, asked for directly or by one of its dependencies, is installed as
# the headless build (no GUI, no libGL): pip resolves first (--dry-run --report), the GUI builds are
# swapped, then exactly that set is installed with --no-deps.
# Exit 0; 4 when a requirement cannot be installed, with `pack_requirements: cannot install: ...` lines
# naming it (tools/packs.py turns them into PACK_REQUIREMENTS_FAILED).
set -euo pipefail

pack="${1:?pack dir}"
py="${2:?python of the ComfyUI venv}"
shift 2
name="$(basename "$pack")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [[ -s "$pack/requirements.txt" ]] && grep -qvE '^[[:space:]]*(#|$)' "$pack/requirements.txt"; then
  # The copy's relative `-r FILE` / `-c FILE` includes are made absolute: pip reads them from the pack's folder.
  sed -E -e 's/^[[:space:]]*opencv-(contrib-)?python([^-_a-zA-Z0-9]|$)/opencv-\1python-headless\2/' \
    -e "s#^([[:space:]]*-(r|c|-requirement|-constraint)[[:space:]=]+)([^/[:space:]])#\\1$pack/\\3#" \
    "$pack/requirements.txt" > "$work/requirements.txt"
  "$py" -m pip list --format=freeze --disable-pip-version-check 2>/dev/null | grep -E '^[A-Za-z0-9._-]+==' \
    > "$work/held.txt" || true
  constraints=(-c "$work/held.txt")
  for file in "$@"; do
    constraints+=(-c "$file")
  done
  echo "pack_requirements: $name: resolving $(grep -cvE '^[[:space:]]*(#|$)' "$work/requirements.txt") requirement(s)"
  if ! "$py" -m pip install --disable-pip-version-check --dry-run --report "$work/report.json" \
      "${constraints[@]}" -r "$work/requirements.txt" > "$work/resolve.log" 2>&1; then
    # pip's own words: the requirement, and what it conflicts with
    grep -E '^(ERROR: (Cannot|Could not|No matching)|    .* depends on |    The user requested )' "$work/resolve.log" \
      | sed "s/^ *//; s/^/pack_requirements: cannot install: $name: /" >&2 \
      || tail -5 "$work/resolve.log" | sed "s/^/pack_requirements: cannot install: $name: /" >&2
    exit 4
  fi
  # The set to install: what is not in the venv yet, GUI OpenCV builds swapped for the headless ones.
  "$py" - "$work/report.json" "$work/held.txt" > "$work/install.txt" <<'PY'
import json, re, sys
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
held = {norm(line.split("==")[0]) for line in open(sys.argv[2]) if "==" in line}
swap = {"opencv-python": "opencv-python-headless", "opencv-contrib-python": "opencv-contrib-python-headless"}
want = {}
for item in json.load(open(sys.argv[1]))["install"]:
    name, version = norm(item["metadata"]["name"]), item["metadata"]["version"]
    name = swap.get(name, name)
    if name == "opencv-python-headless" and "opencv-contrib-python-headless" in held | set(want):
        continue
    if name not in held:
        want[name] = version
for name, version in sorted(want.items()):
    print(f"{name}=={version}")
PY
  if [[ -s "$work/install.txt" ]]; then
    echo "pack_requirements: $name: installing $(tr '\n' ' ' < "$work/install.txt")"
    if ! "$py" -m pip install --disable-pip-version-check --quiet --no-deps -r "$work/install.txt" 2> "$work/install.err"; then
      grep -vE '^WARNING: Location' "$work/install.err" | sed "s/^/pack_requirements: cannot install: $name: /" >&2
      exit 4
    fi
  else
    echo "pack_requirements: $name: every requirement is already installed"
  fi
fi
if [[ -f "$pack/install.py" ]]; then
  echo "pack_requirements: $name: install.py"
  if ! (cd "$pack" && "$py" install.py); then
    echo "pack_requirements: cannot install: $name: its install.py failed" >&2
    exit 4
  fi
fi
