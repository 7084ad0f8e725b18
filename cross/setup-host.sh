#!/usr/bin/env bash
# Idempotent host set-up (Debian 12, x86-64, root) for the aarch64 cross build and for running that
# build under emulation (cross/run-aarch64-qemu.sh). Not part of CI. A second run only checks.
#
# - Cross gcc/g++ and libc headers, and the target's ALSA through Debian multiarch (libasound2-dev:arm64).
# - espeak-ng for aarch64 (libespeak-ng-dev:arm64): sotto-tts links libespeak-ng (the voice's phonemes).
#   Multi-Arch: same pulls the host's amd64 copies of shared dependencies (libsystemd0, liblzma5 ...)
#   to the same bookworm point release as their arm64 twins.
# - The aarch64 runtime libraries as multiarch packages (libc6:arm64, libstdc++6:arm64, libgomp1:arm64,
#   libasound2:arm64, libespeak-ng1:arm64): the emulated programs take loader *and* libc from this one package set (`-L /`).
#   Mixing the cross toolchain's ld.so (/usr/aarch64-linux-gnu) with the multiarch libc.so.6 is what made
#   every guest thread spin in pthread_create; see cross/README.md, "Why threads hung".
# - qemu-user >= 8 (ONNX Runtime reads /proc/cpuinfo; 7.2 passes the host's x86 one through and ORT
#   crashes): bookworm-backports' qemu-user is fetched with `apt-get download` and unpacked with
#   `dpkg -x` into $SOTTO_QEMU_DIR (default ~/.cache/sotto/qemu), so no installed package is replaced.
# - The Rust standard library for aarch64-unknown-linux-gnu.
set -euo pipefail
if [[ $EUID -ne 0 ]]; then echo "cross/setup-host.sh: run as root (apt-get, dpkg)" >&2; exit 1; fi
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/qemu-env.sh"

pkgs=(cmake clang libclang-dev pkg-config file
      gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross libasound2-dev:arm64 libespeak-ng-dev:arm64
      libc6:arm64 libstdc++6:arm64 libgomp1:arm64 libasound2:arm64 libespeak-ng1:arm64)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

# bookworm-backports from the same Debian mirror as the main archive (only qemu-user is taken from it,
# and only by `apt-get download`; backports are never installed automatically).
backports_list=/etc/apt/sources.list.d/sotto-bookworm-backports.list
added_source=0
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  mirror="$(awk '$1 == "URIs:" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)"
  [[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
  [[ -n "$mirror" ]] || { echo "cross/setup-host.sh: no Debian mirror found in the apt sources" >&2; exit 1; }
  echo "deb $mirror bookworm-backports main" > "$backports_list"
  added_source=1
fi

if (( ${#missing[@]} )) || (( added_source )) || [[ ! -x "$SOTTO_QEMU_AARCH64" ]]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  # A mirror mid-sync can fail one index; go on with what did load and let the install say what is missing.
  apt-get update -q || echo "cross/setup-host.sh: apt-get update reported errors; trying anyway" >&2
fi
if (( ${#missing[@]} )); then
  echo "cross/setup-host.sh: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -x "$SOTTO_QEMU_AARCH64" ]]; then
  tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -q -t bookworm-backports qemu-user)
  deb=("$tmp"/qemu-user_*.deb)
  echo "cross/setup-host.sh: unpacking $(basename "${deb[0]}") into $SOTTO_QEMU_DIR" >&2
  rm -rf "$SOTTO_QEMU_DIR" && mkdir -p "$SOTTO_QEMU_DIR"
  dpkg -x "${deb[0]}" "$SOTTO_QEMU_DIR"
fi
"$SOTTO_QEMU_AARCH64" --version | head -1
if ! "$SOTTO_QEMU_AARCH64" --version | grep -qE 'version ([89]|[1-9][0-9])\.'; then
  echo "cross/setup-host.sh: $SOTTO_QEMU_AARCH64 is older than qemu 8; ONNX Runtime will not start under it" >&2
  exit 1
fi

rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
echo "cross/setup-host.sh: ready" >&2
