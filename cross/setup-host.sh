#!/usr/bin/env bash
# Idempotent host set-up for cross builds on Debian 12 (x86-64): cross compilers, the target's ALSA
# headers/libraries through Debian multiarch, qemu-user, and the Rust standard libraries.
# Not part of CI (tools/setup.sh does not run it).
set -euo pipefail
if [[ $EUID -ne 0 ]]; then echo "cross/setup-host.sh: run as root (apt-get, dpkg)" >&2; exit 1; fi

pkgs=(cmake clang libclang-dev pkg-config qemu-user
      gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross libasound2-dev:arm64
      gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross libasound2-dev:armhf)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
  for arch in arm64 armhf; do
    dpkg --print-foreign-architectures | grep -qx "$arch" || dpkg --add-architecture "$arch"
  done
  # A mirror mid-sync can fail one index (seen for armhf security); install from what did load.
  apt-get update -q || echo "cross/setup-host.sh: apt-get update reported errors; trying the install anyway" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
