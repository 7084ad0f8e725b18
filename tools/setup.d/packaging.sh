#!/usr/bin/env bash
# Debian packaging (tests/deb_package.rs): cargo-deb builds the .deb, dpkg-deb/dpkg-shlibdeps
# (dpkg-dev) inspect it and compute its library dependencies. Installs what is missing; idempotent.
# cargo-deb goes to ~/.cargo/bin, which persists between CI runs like the cargo registry.
set -euo pipefail

if ! command -v dpkg-shlibdeps >/dev/null; then
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq dpkg-dev >/dev/null
fi
if ! cargo deb --version >/dev/null 2>&1; then
    echo "packaging setup: installing cargo-deb (crates.io)" >&2
    cargo install cargo-deb --locked
fi
