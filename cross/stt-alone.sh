#!/usr/bin/env bash
# Times one Whisper request, exactly as the daemon sends it, in the x86-64 STT worker and in the
# aarch64 one under qemu-user, each worker alone (no daemon, no timeout): how slow speech-to-text
# is under emulation, and whether the thread count helps there (cross/README.md, "Why Whisper is
# slow under qemu").
#
# Usage: cross/stt-alone.sh WAV [THREADS...]      (default threads: 1)
#   cross/stt-alone.sh tests/fixtures/audio/pos_jarvis_vehicle_temp.wav 1 2
# The x86-64 daemon runs WAV once with a `tee` in front of its STT worker, which records the frames
# it sends (audio of the utterance, vocabulary prompt, options); those frames are then fed to each
# worker's stdin. Prints one line per worker and thread count: the worker's own `total_ms`, wall and
# CPU seconds, the text.
#
# Env: SOTTO_X86_BIN      directory of the x86-64 sotto + workers (default $CARGO_TARGET_DIR/release)
#      SOTTO_AARCH64_BIN  directory of the aarch64 workers (default: the cross target dir)
#      STT_ALONE_ENV      extra environment for the aarch64 worker, e.g. "OMP_WAIT_POLICY=PASSIVE"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/../tools/env.sh"
. "$here/qemu-env.sh"
(( $# )) || { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
wav="$(realpath "$1")"; shift
threads=("$@"); (( ${#threads[@]} )) || threads=(1)
x86="${SOTTO_X86_BIN:-$CARGO_TARGET_DIR/release}"
arm="${SOTTO_AARCH64_BIN:-${CARGO_TARGET_DIR_CROSS:-$HOME/.cache/sotto/target-cross}/aarch64-unknown-linux-gnu/release}"
for b in "$x86/sotto" "$x86/sotto-stt-worker" "$arm/sotto-stt-worker" "$SOTTO_QEMU_AARCH64"; do
  [[ -x "$b" ]] || { echo "cross/stt-alone.sh: $b missing (cross/README.md)" >&2; exit 1; }
done
model="$("$x86/sotto" models path whisper-base)"

tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/worker"
printf '#!/bin/sh\ntee "%s" | exec "%s" "$@"\n' "$tmp/requests.bin" "$x86/sotto-stt-worker" > "$tmp/worker/sotto-stt-worker"
chmod +x "$tmp/worker/sotto-stt-worker"
SOTTO_WORKER_DIR="$tmp/worker" RUST_LOG=warn "$x86/sotto" run --input "$wav" > "$tmp/run.out" 2> "$tmp/run.err" \
  || { echo "cross/stt-alone.sh: sotto run --input $wav failed:" >&2; tail -5 "$tmp/run.err" >&2; exit 1; }
[[ -s "$tmp/requests.bin" ]] || { echo "cross/stt-alone.sh: the daemon sent no speech-to-text request for $wav" >&2; exit 1; }

for t in "${threads[@]}"; do
  for arch in x86_64 aarch64; do
    if [[ $arch == x86_64 ]]; then cmd=("$x86/sotto-stt-worker")
    else cmd=(env ${STT_ALONE_ENV:-} "$SOTTO_QEMU_AARCH64" "$arm/sotto-stt-worker"); fi
    /usr/bin/time -f '%e %U' -o "$tmp/time" "${cmd[@]}" --model "$model" --threads "$t" \
      < "$tmp/requests.bin" > "$tmp/replies.bin" 2> "$tmp/stderr" \
      || { echo "cross/stt-alone.sh: $arch worker failed:" >&2; tail -5 "$tmp/stderr" >&2; exit 1; }
    read -r wall cpu < "$tmp/time"
    # The reply headers are JSON between binary frame prefixes; one transcript per request.
    grep -ao '"text":"[^"]*"\|"total_ms":[0-9.]*\|"audio_ctx":[0-9]*' "$tmp/replies.bin" | tr '\n' ' ' \
      | sed "s/^/$arch threads=$t wall ${wall} s CPU ${cpu} s: /"
    echo
  done
done
