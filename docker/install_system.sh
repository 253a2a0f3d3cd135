#!/usr/bin/env bash
# System packages of the image, for Debian and Ubuntu bases alike (the CUDA images are Ubuntu).
#   install_system.sh runtime   Python $PYTHON_VERSION with venv, ffmpeg, libGL/GLib for opencv
#   install_system.sh build     + git and curl (clone ComfyUI and packs, download models)
# Python comes from the distribution when it ships that version (Debian bookworm: 3.11), otherwise,
# on Ubuntu, from the deadsnakes PPA (Ubuntu 24.04 ships 3.12 only).
set -euo pipefail

what="${1:?usage: install_system.sh runtime|build}"
py="python${PYTHON_VERSION:-3.11}"
export DEBIAN_FRONTEND=noninteractive
DEADSNAKES_KEY="F23C5A6CF475977595C89F51BA6932366A755776"

apt_opts=(-y --no-install-recommends)
if [[ -n "${APT_CA_BUNDLE:-}" ]]; then
  apt_opts+=(-o "Acquire::https::CaInfo=$APT_CA_BUNDLE")
fi
apt_get() { apt-get "${apt_opts[@]}" "$@"; }

has_candidate() {  # a package the configured sources can install
  local candidate
  candidate="$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  [[ -n "$candidate" && "$candidate" != "(none)" ]]
}

first_available() {  # the first of several names the sources have (Ubuntu 24.04 renamed libs *t64)
  local name
  for name in "$@"; do
    if has_candidate "$name"; then
      echo "$name"
      return
    fi
  done
  echo "$1"
}

add_deadsnakes() {
  # shellcheck source=/dev/null
  . /etc/os-release
  apt_get install ca-certificates curl gnupg
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL "https://keyserver.ubuntu.com/pks/lookup?op=get&search=0x${DEADSNAKES_KEY}" \
    | gpg --batch --yes --dearmor -o /etc/apt/keyrings/deadsnakes.gpg
  if ! gpg --batch --show-keys --with-colons /etc/apt/keyrings/deadsnakes.gpg | grep -q "^fpr:.*${DEADSNAKES_KEY}:"; then
    echo "install_system: the deadsnakes key does not have fingerprint ${DEADSNAKES_KEY}" >&2
    exit 1
  fi
  echo "deb [signed-by=/etc/apt/keyrings/deadsnakes.gpg] https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu ${VERSION_CODENAME} main" \
    > /etc/apt/sources.list.d/deadsnakes.list
  apt-get update
  apt-get purge -y --auto-remove gnupg
}

apt-get update
case "$what" in
  runtime)
    apt_get install ca-certificates
    if ! has_candidate "${py}-venv"; then
      add_deadsnakes
    fi
    apt_get install "$py" "${py}-venv" ffmpeg libgl1 "$(first_available libglib2.0-0t64 libglib2.0-0)" procps
    "$py" --version
    ;;
  build)
    apt_get install git curl
    ;;
  *)
    echo "install_system: unknown target $what" >&2
    exit 2
    ;;
esac
apt-get clean
rm -rf /var/lib/apt/lists/*
