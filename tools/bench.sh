#!/usr/bin/env bash
# The benchmark in one command: Sotto and its peers on the same utterances, in the same run.
#
#   tools/bench.sh [--quick] [--repeat N] [--idle-s S] [--barista-levels clean,12] [--no-peers] [--broker HOST:PORT]
#
# Writes bench/results/latest.json, bench/REPORT.md and bench/plots/*.png (see bench/SCHEMA.md).
# Needs what tools/setup.sh installs (it checks and says what is missing); the utterances are made
# with Piper into ~/.cache/sotto/bench/ on the first run; the peers install their own throwaway venv
# under ~/.cache/sotto/bench/peer-venv. Duration: `--quick --repeat 2 --barista-levels clean` took
# 12 min on the idle 2-core VM (2026-12-01; Sotto is fed at its recorded speed, so its runs take as long
# as the audio; barista transcripts are cached in ~/.cache/sotto/barista-transcripts.jsonl). The full
# run (3 repeats, 10 min idle audio for Sotto and again for the Python stack, 8 noise levels) has not
# been timed; expect well over an hour on this VM.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"

quick=()
for a in "$@"; do [[ "$a" == "--quick" ]] && quick=(--per-domain 6 --negatives 4); done

missing=()
for tool in mosquitto mosquitto_sub mosquitto_pub sox espeak-ng; do
    command -v "$tool" >/dev/null || missing+=("$tool (Debian package: see tools/setup.d)")
done
[[ -x "$SOTTO_VENV/bin/python" ]] || missing+=("the project venv $SOTTO_VENV (tools/setup.sh)")
[[ -d "$SOTTO_MODELS" ]] || missing+=("the models in $SOTTO_MODELS (tools/setup.sh or sotto models fetch)")
[[ -d "${SOTTO_BARISTA:-/work/shared/data/barista}/clean" ]] || missing+=("the barista benchmark data (SOTTO_BARISTA)")
[[ -f "${SOTTO_BENCH_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf}" ]] || missing+=("a TrueType font for the plots (fonts-dejavu-core, or SOTTO_BENCH_FONT)")
if ((${#missing[@]})); then
    printf 'bench: missing %s\n' "${missing[@]}" >&2
    echo "bench: run tools/setup.sh first" >&2
    exit 1
fi

echo "== building (release): daemon, workers, benchmark examples, report" >&2
# Separate invocations: a target flag (--example) limits a build to those targets.
cargo build --release --manifest-path "$here/Cargo.toml" -p sotto -p sotto-stt-worker -p sotto-slm-worker -p sotto-bench
cargo build --release --manifest-path "$here/Cargo.toml" -p sotto-intents --example evaluate --example barista_speech
cargo build --release --manifest-path "$here/Cargo.toml" -p sotto-audio --example wake_bench

echo "== utterances (Piper, cached in $SOTTO_CACHE/bench)" >&2
"$SOTTO_VENV/bin/python" "$here/bench/make_benchset.py" "${quick[@]}" 2> >(grep -v '^sox WARN' >&2)

echo "== measuring" >&2
"$SOTTO_VENV/bin/python" "$here/bench/run.py" "$@"

echo "== report and plots" >&2
"$CARGO_TARGET_DIR/release/sotto-bench-report" --results "$here/bench/results/latest.json" --out "$here/bench"

echo "== text to speech (tools/bench_tts.sh → bench/results/tts.json)" >&2
"$here/tools/bench_tts.sh"
