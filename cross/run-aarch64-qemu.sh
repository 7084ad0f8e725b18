#!/usr/bin/env bash
# Runs one `sotto` command of the aarch64 cross build under qemu-user, with the aarch64 workers and
# the aarch64 ONNX Runtime, and reports the emulated wall time. Root (binfmt_misc); set up the host
# with cross/setup-host.sh and build with cross/build-aarch64.sh first.
#
# Usage: cross/run-aarch64-qemu.sh SOTTO-ARGS...
#   cross/run-aarch64-qemu.sh run --input tests/fixtures/audio/pos_jarvis_vehicle_temp.wav
#   cross/run-aarch64-qemu.sh parse "turn on the kitchen lights"
# `run` without --config gets cross/qemu.toml: the built-in config with request timeouts sized for
# emulation (the engines run 100x or more slower under qemu than natively).
#
# Env: SOTTO_MODELS          host model directory, for the architecture-independent models (default:
#                            the binary's default, ~/.cache/sotto/models)
#      SOTTO_MODELS_AARCH64  model directory of the aarch64 runs (default ~/.cache/sotto/models-aarch64):
#                            symlinks to the host's ONNX/ggml/GGUF files plus the aarch64
#                            libonnxruntime.so, which the aarch64 `sotto models fetch onnxruntime`
#                            takes from PyPI's aarch64 wheel (same file name as the x86-64 one, other
#                            sha256, hence a directory of its own).
#      SOTTO_AARCH64_BIN     directory of the aarch64 sotto + workers (default: the cross target dir)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../tools/env.sh"   # SOTTO_MODELS, SOTTO_VENV (the Python that `models fetch` runs pip with)
. "$here/env.sh" aarch64-unknown-linux-gnu
. "$here/qemu-env.sh"
(( $# )) || { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
bin="${SOTTO_AARCH64_BIN:-$CARGO_TARGET_DIR/$CROSS_TRIPLE/release}"
host_models="$SOTTO_MODELS"
models="${SOTTO_MODELS_AARCH64:-$HOME/.cache/sotto/models-aarch64}"

[[ -x "$SOTTO_QEMU_AARCH64" ]] || { echo "$SOTTO_QEMU_AARCH64 missing: run cross/setup-host.sh" >&2; exit 1; }
[[ -e /lib/ld-linux-aarch64.so.1 ]] || { echo "libc6:arm64 missing: run cross/setup-host.sh" >&2; exit 1; }
for b in sotto sotto-stt-worker; do
  [[ -x "$bin/$b" ]] || { echo "$bin/$b missing: run cross/build-aarch64.sh" >&2; exit 1; }
done
# Only the language-model fallback (slm.enabled, off by default) needs this one.
[[ -x "$bin/sotto-slm-worker" ]] || echo "cross/run-aarch64-qemu.sh: $bin/sotto-slm-worker missing (needed with slm.enabled)" >&2
[[ -d "$host_models" ]] || { echo "no host model directory $host_models: run \`sotto models fetch --profile default\`" >&2; exit 1; }

qemu_binfmt_up

# Architecture-independent models are shared with the host directory; their verification stamps
# record sha256 + size + mtime of the same (followed) file, so they stay valid and spare a re-hash
# under emulation. ONNX Runtime is the one per-architecture file.
mkdir -p "$models"
for f in "$host_models"/*; do
  name="$(basename "$f")"
  [[ -f "$f" && "$name" != libonnxruntime* && "$name" != models.local.toml ]] || continue
  ln -sfn "$f" "$models/$name"
  if [[ -f "$host_models/.$name.verified" ]]; then cp -p "$host_models/.$name.verified" "$models/.$name.verified"; fi
done
export SOTTO_MODELS="$models"
unset SOTTO_WORKER_DIR   # the aarch64 workers beside the aarch64 sotto, as on a board
if ! "$bin/sotto" models path onnxruntime >/dev/null 2>&1; then
  echo "cross/run-aarch64-qemu.sh: fetching the aarch64 ONNX Runtime with the aarch64 sotto" >&2
  "$bin/sotto" models fetch onnxruntime
fi

args=("$@")
if [[ "$1" == run ]] && ! printf '%s\n' "$@" | grep -qx -- '--config'; then
  args+=(--config "$here/qemu.toml")
fi
start=$(date +%s.%N)
set +e
"$bin/sotto" "${args[@]}"
rc=$?
set -e
end=$(date +%s.%N)
awk -v a="$start" -v b="$end" -v rc="$rc" -v cmd="${args[*]}" \
  'BEGIN { printf "cross/run-aarch64-qemu.sh: sotto %s: exit %d, emulated wall time %.1f s\n", cmd, rc, b - a }' >&2
exit "$rc"
