#!/usr/bin/env bash
# Fetch one commit of a git repository (no history) into DEST and drop .git.
#   fetch_git.sh REPO REF DEST      REF: a 40-hex commit (checked after the fetch) or a tag/branch
set -euo pipefail

repo="${1:?repo}"
ref="${2:?ref}"
dest="${3:?dest}"

git init -q "$dest"
export GIT_TERMINAL_PROMPT=0
git -C "$dest" remote add origin "$repo"
attempts="${FETCH_GIT_ATTEMPTS:-3}"
for ((attempt = 1; attempt <= attempts; attempt++)); do
  if git -C "$dest" fetch -q --depth 1 origin "$ref"; then
    break
  fi
  if [[ "$attempt" == "$attempts" ]]; then
    echo "fetch_git: cannot fetch $ref from $repo" >&2
    exit 1
  fi
  sleep $((attempt * 5))
done
git -C "$dest" -c advice.detachedHead=false checkout -q FETCH_HEAD
head="$(git -C "$dest" rev-parse HEAD)"
if [[ "$ref" =~ ^[0-9a-f]{40}$ && "$head" != "$ref" ]]; then
  echo "fetch_git: $repo: fetched $head, expected $ref" >&2
  exit 1
fi
if [[ -f "$dest/.gitmodules" ]]; then
  git -C "$dest" submodule update -q --init --recursive --depth 1
fi
rm -rf "$dest/.git"
echo "fetch_git: $repo @ $head -> $dest"
