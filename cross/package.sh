#!/usr/bin/env bash
# Builds the Debian packages from binaries that already exist (`cargo deb --no-build`; metadata in
# daemon/Cargo.toml) and runs lintian on each: sotto_<version>_amd64.deb from the host's release build
# into <target>/debian/, sotto_<version>_arm64.deb from the aarch64 cross build into
# <cross target>/aarch64-unknown-linux-gnu/debian/. Findings that remain are explained in docs/arm.md.
# Usage: cross/package.sh [amd64|arm64]...   (default both; needs tools/setup.d/packaging.sh, lintian)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
source "$repo/tools/env.sh"
host_target="$CARGO_TARGET_DIR"
(( $# )) || set -- amd64 arm64
cd "$repo"
for arch in "$@"; do
  case "$arch" in
    # cargo deb prints the path of the package it wrote on stdout.
    amd64) deb="$(CARGO_TARGET_DIR="$host_target" cargo deb -p sotto --no-build --strip)" ;;
    arm64) deb="$(. "$here/env.sh" aarch64-unknown-linux-gnu && cargo deb -p sotto --no-build --strip --target "$CROSS_TRIPLE")" ;;
    *) echo "cross/package.sh: unknown architecture '$arch' (amd64, arm64)" >&2; exit 2 ;;
  esac
  echo "== $deb" >&2
  if command -v lintian >/dev/null; then lintian --info "$deb" || true; else echo "(lintian not installed)" >&2; fi
done
