#!/usr/bin/env bash
# Installs everything Sotto's build, demo and tests need on a fresh Debian machine, then builds the
# workspace in release mode and fetches the models. Idempotent: a second run only checks.
#
# Environment (all optional):
#   SOTTO_CACHE       where downloads, the Python venv and the cargo target dir live (~/.cache/sotto)
#   SOTTO_MODELS      model cache (default $SOTTO_CACHE/models)
#   CARGO_TARGET_DIR  cargo's target dir (default $SOTTO_CACHE/target, so rebuilds are incremental)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"

step() { printf '\n== %s\n' "$*" >&2; }

# systemd: `systemd-analyze` checks the shipped unit in the tests. libespeak-ng-dev: the voice's phonemes
# (sotto-tts links libespeak-ng).
apt_packages=(cmake clang libclang-dev libasound2-dev pkg-config espeak-ng libespeak-ng-dev sox mosquitto systemd)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    step "installing Debian packages: ${missing[*]}"
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$SOTTO_VENV/bin/python" ]; then
    step "creating the Python venv for tools and reference peers: $SOTTO_VENV"
    python3 -m venv "$SOTTO_VENV"
    "$SOTTO_VENV/bin/pip" install -q --upgrade pip
fi

# Per-component steps (each component owns its file).
for part in "$here"/tools/setup.d/*.sh; do
    [ -e "$part" ] || continue
    step "setup: $(basename "$part")"
    bash "$part"
done

step "building the workspace (release)"
cargo build --release --workspace --manifest-path "$here/Cargo.toml"

step "fetching models (profiles default and tiny) into $SOTTO_MODELS"
"$CARGO_TARGET_DIR/release/sotto" models fetch --profile default
"$CARGO_TARGET_DIR/release/sotto" models fetch --profile tiny
