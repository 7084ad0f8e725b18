#!/usr/bin/env bash
# ARM projection: instruction counts (valgrind callgrind, 1 thread) of whisper.cpp's full-window
# encoder, Sotto's STT worker on a command and the SLM worker on one fallback, scaled by whisper.cpp's
# published Raspberry Pi 5 encoder time. Writes bench/arm/projection.json and projection.md.
# Callgrind runs ggml's AVX2 code about 100x slower than native: the full-window count alone takes
# about an hour of a free core (the three counts run side by side). Outputs are kept in
# $SOTTO_CACHE/bench/arm/callgrind and reused by the next run (delete them after changing the workers).
# Needs a release build and the models.
#
#   bench/arm/project.sh [COMMAND.wav] [FALLBACK.wav] [--stages a,b,c] [--method time [--repeats N]]
#
# --method time replays the same requests natively and scales by time ratios instead: minutes, but
# wall time, so run it on an idle machine ("" for the default recordings).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$here/tools/env.sh"
command -v valgrind >/dev/null || { echo "arm: valgrind missing (apt-get install valgrind)" >&2; exit 1; }
bin="$CARGO_TARGET_DIR/release"
for b in sotto sotto-stt-worker sotto-slm-worker; do
    [ -x "$bin/$b" ] || { echo "arm: $bin/$b missing: cargo build --release" >&2; exit 1; }
done
fixtures="$here/tests/fixtures"
command_wav="${1:-$fixtures/audio/pos_jarvis_home_lights.wav}"
fallback_wav="${2:-}"
if [ -z "$fallback_wav" ]; then
    # A paraphrase outside the grammar that the language model resolves (window.set; one of
    # bench/make_benchset.py's language-model set), spoken
    # by the fixtures' Piper voice after the wake word; made once into the cache.
    mkdir -p "$SOTTO_CACHE/bench/arm"
    fallback_wav="$SOTTO_CACHE/bench/arm/lm_fallback_open_window.wav"
    [ -f "$fallback_wav" ] || (cd "$here/bench" && "$SOTTO_VENV/bin/python" - "$SOTTO_CACHE/bench/arm" <<'PY'
import sys, tempfile
import numpy as np
import make_benchset as mb
with tempfile.TemporaryDirectory() as tmp:
    mb.make_entry(sys.argv[1], "lm_fallback_open_window", mb.Synth(tmp), np.random.default_rng(0),
                  "open my window a bit, I need some fresh air", wake=("hey_jarvis", "Hey Jarvis!"))
PY
    )
fi
# whisper-rs builds whisper.cpp with -march=native; on an AVX-512 machine valgrind (3.19) stops at
# the first AVX-512 instruction. A second STT worker with ggml's AVX2 kernels (the level the SLM
# worker's llama.cpp is built at) is counted instead, in its own target dir so the shared one keeps
# its native build.
arm_target="$SOTTO_CACHE/bench/arm-target"
if [[ " ${*:3} " != *" --method time "* ]]; then
    GGML_NATIVE=OFF GGML_AVX=ON GGML_AVX2=ON GGML_FMA=ON GGML_F16C=ON CARGO_TARGET_DIR="$arm_target" \
        cargo build --release -q -p sotto-stt-worker --manifest-path "$here/Cargo.toml"
fi
config="$(mktemp --suffix=.toml)"
trap 'rm -f "$config"' EXIT
# The demo's config (embedded broker, both wake words) with the language-model fallback on.
{ cat "$here/tools/demo.toml"; printf '\n[slm]\nenabled = true\n'; } >"$config"
python3 "$here/bench/arm/project.py" --sotto "$bin/sotto" --workers "$bin" --stt-worker "$arm_target/release/sotto-stt-worker" \
    --models "$SOTTO_MODELS" \
    --command "$command_wav" --fallback "$fallback_wav" --config "$config" --out "$here/bench/arm" \
    --keep "$SOTTO_CACHE/bench/arm/callgrind" "${@:3}"
