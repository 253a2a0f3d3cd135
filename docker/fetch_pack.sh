#!/usr/bin/env bash
# Put one custom node pack, at its pinned commit, into DEST: the one way packs are installed (the image
# build's install_packs.sh, the local stack and the tests all call this script).
#   fetch_pack.sh NAME REPO COMMIT DEST
# Sources, in order:
#   1. COMFY_PACKS_SNAPSHOTS (a directory): NAME-COMMIT.tar.gz there (one top-level folder, the pack's
#      tree at COMMIT; e.g. ../shared/packs on the development machines and CI), or a NAME-COMMIT/ folder.
#   2. git: REPO at COMMIT (fetch_git.sh), where GitHub is reachable.
# Exit 3 when neither source has the pack, with a message that says how to provide one.
set -euo pipefail

name="${1:?name}"
repo="${2:?repo}"
commit="${3:?commit}"
dest="${4:?dest}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
snapshots="${COMFY_PACKS_SNAPSHOTS:-}"

if [[ -e "$dest" ]]; then
  echo "fetch_pack: $dest exists" >&2
  exit 1
fi
if [[ -n "$snapshots" && -f "$snapshots/$name-$commit.tar.gz" ]]; then
  mkdir -p "$dest"
  tar -xzf "$snapshots/$name-$commit.tar.gz" -C "$dest" --strip-components=1 --no-same-owner
  echo "snapshot $name-$commit.tar.gz" > "$dest/.pack-snapshot"
  echo "fetch_pack: $name @ $commit from $snapshots/$name-$commit.tar.gz"
  exit 0
fi
if [[ -n "$snapshots" && -d "$snapshots/$name-$commit" ]]; then
  cp -a "$snapshots/$name-$commit" "$dest"
  echo "snapshot $name-$commit/" > "$dest/.pack-snapshot"
  echo "fetch_pack: $name @ $commit from $snapshots/$name-$commit/"
  exit 0
fi
if FETCH_GIT_ATTEMPTS="${FETCH_GIT_ATTEMPTS:-3}" "$here/fetch_git.sh" "$repo" "$commit" "$dest"; then
  exit 0
fi
rm -rf "$dest"
where="${snapshots:-(COMFY_PACKS_SNAPSHOTS is not set)}"
echo "fetch_pack: pack $name @ $commit is not available: $repo cannot be fetched and there is no" \
  "$name-$commit.tar.gz in $where. Provide it: set COMFY_PACKS_SNAPSHOTS to a directory holding" \
  "$name-$commit.tar.gz (the pack's tree at that commit under one top-level folder; on the development" \
  "machines: ../shared/packs), or make $repo reachable." >&2
exit 3
