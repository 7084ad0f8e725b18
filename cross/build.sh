#!/usr/bin/env bash
# Cross-builds the daemon and both worker binaries (release) for one target triple.
# Usage: cross/build.sh <triple> [extra cargo args...]
# Output: $CARGO_TARGET_DIR/<triple>/release/{sotto,sotto-stt-worker,sotto-slm-worker}
#
# SOTTO_ARM_ARCH (optional) is handed to ggml as GGML_CPU_ARM_ARCH, e.g.
# "armv8.2-a+dotprod+fp16" for Raspberry Pi 5 / Cortex-A76; the default is the baseline ISA of the
# triple, which runs on every board (and under qemu) but leaves dot-product kernels unused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
triple="${1:?usage: cross/build.sh <triple> [cargo args...]}"; shift
. "$here/env.sh" "$triple"
if [[ -n "${SOTTO_ARM_ARCH:-}" ]]; then export GGML_CPU_ARM_ARCH="$SOTTO_ARM_ARCH"; fi

missing=()
for tool in "${CROSS_GNU}-gcc" "${CROSS_GNU}-g++" cmake clang; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ -e "/usr/lib/${CROSS_GNU}/pkgconfig/alsa.pc" ]] || missing+=("alsa.pc for ${CROSS_GNU}")
[[ -e "/usr/lib/${CROSS_GNU}/libespeak-ng.so" ]] || missing+=("libespeak-ng.so for ${CROSS_GNU}")
rustup target list --installed 2>/dev/null | grep -qx "$triple" || missing+=("rust target $triple")
if (( ${#missing[@]} )); then
  echo "cross/build.sh: missing: ${missing[*]} — run cross/setup-host.sh" >&2
  exit 1
fi

cd "$here/.."
echo "cross/build.sh: $triple into $CARGO_TARGET_DIR (jobs ${CROSS_JOBS:-2})" >&2
nice -n 10 cargo build --release --locked -j "${CROSS_JOBS:-2}" --target "$triple" \
  -p sotto -p sotto-stt-worker -p sotto-slm-worker "$@"
ls -l "$CARGO_TARGET_DIR/$triple/release/"{sotto,sotto-stt-worker,sotto-slm-worker}
