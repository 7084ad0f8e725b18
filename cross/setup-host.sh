#!/usr/bin/env bash
# Idempotent host set-up for cross builds on Debian 12 (x86-64): cross compilers, the target's ALSA
# headers/libraries through Debian multiarch, qemu-user, and the Rust standard libraries.
# Not part of CI (tools/setup.sh does not run it).
set -euo pipefail
if [[ $EUID -ne 0 ]]; then echo "cross/setup-host.sh: run as root (apt-get, dpkg)" >&2; exit 1; fi

pkgs=(cmake clang libclang-dev pkg-config
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
# ONNX Runtime initialises pytorch/cpuinfo, which parses /proc/cpuinfo; bookworm's qemu 7.2 passes
# the host's x86 /proc/cpuinfo through and ORT segfaults on the first session. qemu >= 8.2 emulates an
# ARM /proc/cpuinfo: take qemu-user from bookworm-backports (10.0 when this was written).
if ! qemu-aarch64 --version 2>/dev/null | grep -qE 'version ([89]|[1-9][0-9])\.'; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # The same Debian mirror as the main archive, whichever this machine uses.
    mirror="$(awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)"
    [[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
    [[ -n "$mirror" ]] || { echo "cross/setup-host.sh: no Debian mirror found in the apt sources" >&2; exit 1; }
    echo "deb $mirror bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
  fi
  apt-get update -q || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q -t bookworm-backports qemu-user
fi
rustup target add aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf
