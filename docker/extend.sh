#!/usr/bin/env bash
# Add workflows to a BUILT image, the way people extend the official worker (`FROM` it, add nodes and
# models): copy the registry entries in, then one RUN of this script (docs/image.md, "Your own workflows
# in the image"):
#
#   FROM ghcr.io/you/comfy-runpod-worker:0.1.0
#   COPY my_flow.yaml my_flow.json /opt/worker/app/workflows/registry/
#   RUN /opt/worker/build/extend.sh my_flow
#
# 1. every pack the registry pins that is not installed yet is installed at its commit, with its
#    requirements (install_packs.sh, torch kept at the image's versions); an installed pack pinned to
#    another commit is refused (exit 2: rebuild from a checkout to move a pin),
# 2. the models of the workflows named as arguments are downloaded into ComfyUI's models/ and checked
#    (fetch_models.sh; none named: models stay on the network volume); files already there are kept,
# 3. the static self-check runs: the build fails when a registered workflow's node is still undefined.
# The final image has no git or curl: they are installed with apt when a pack or model needs them.
# Paths (defaults are the image's): COMFY_DIR, COMFY_VENV, HANDLER_PYTHON, WORKFLOW_REGISTRY_DIR.
#   extend.sh [WORKFLOW_ID...]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
comfy="${COMFY_DIR:-/comfyui}"
venv="${COMFY_VENV:-/opt/comfy-venv}"
py="${HANDLER_PYTHON:-/opt/venv/bin/python}"
registry=()
if [[ -n "${WORKFLOW_REGISTRY_DIR:-}" ]]; then
  registry=(--registry "$WORKFLOW_REGISTRY_DIR")
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

need_tools() {  # the final image leaves git and curl out; a derived image adds them only when used
  local missing=()
  for tool in "$@"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    echo "extend: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates "${missing[@]}"
    rm -rf /var/lib/apt/lists/*
  fi
}

"$py" "$here/plan.py" "${registry[@]}" --packs "$work/packs.txt"
: > "$work/new.txt"
while read -r name repo commit; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  dest="$comfy/custom_nodes/$name"
  if [[ -d "$dest" ]]; then
    installed="$(cat "$dest/.pack-source" 2>/dev/null || echo "no .pack-source")"
    if [[ "$installed" != "$repo $commit" ]]; then
      echo "extend: pack $name is installed as '$installed' but the registry pins $repo $commit;" \
        "a derived image only adds packs: build from a checkout to change a pin (docs/image.md)" >&2
      exit 2
    fi
    echo "extend: $name @ $commit already installed"
    continue
  fi
  echo "$name $repo $commit" >> "$work/new.txt"
done < "$work/packs.txt"
if [[ -s "$work/new.txt" ]]; then
  need_tools git
  INSTALL_PACKS=1 "$here/install_packs.sh" "$work/new.txt" "$comfy/custom_nodes" "$venv"
fi

if (($#)); then
  "$py" "$here/plan.py" "${registry[@]}" --models "$work/models.txt" --bake "$*"
  : > "$work/fetch.txt"
  while IFS=$'\t' read -r folder name url sha256 size; do
    [[ -z "$folder" || "$folder" == \#* ]] && continue
    file="$comfy/models/$folder/$name"
    if [[ -f "$file" && ( "$size" == "-" || "$(stat -c %s "$file")" == "$size" ) ]]; then
      echo "extend: $folder/$name already in the image"
      continue
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$folder" "$name" "$url" "$sha256" "$size" >> "$work/fetch.txt"
  done < "$work/models.txt"
  if [[ -s "$work/fetch.txt" ]]; then
    need_tools curl
    "$here/fetch_models.sh" "$work/fetch.txt" "$comfy/models"
  fi
fi

HANDLER_PYTHON="$py" INSTALL_PACKS=1 "$here/selfcheck.sh"
