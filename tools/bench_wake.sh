#!/usr/bin/env bash
# Wake-word benchmark: throughput of Sotto's openWakeWord and of the Python reference on the same
# audio in one run, each pinned to one core; then false accepts per hour on real speech without a
# wake word (the barista set plus the negative fixtures) over a sweep of thresholds, with whether
# every positive fixture is still detected.
#
#   tools/bench_wake.sh [AUDIO_DIR]     (default: /work/shared/data/barista/clean)
# Needs the models (`sotto models fetch`) and the venv with openwakeword (tools/setup.d/audio.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"
audio="${1:-/work/shared/data/barista/clean}"
core="${BENCH_CORE:-1}"
cargo build --quiet --release -p sotto-audio --example wake_bench --manifest-path "$here/Cargo.toml"
bench="$CARGO_TARGET_DIR/release/examples/wake_bench"

echo "== throughput on one core (cpu $core): $audio" >&2
taskset -c "$core" "$SOTTO_VENV/bin/python" "$here/tools/oww_bench.py" "$audio"
taskset -c "$core" "$bench" throughput "$audio"

echo "== false accepts: $audio + negative fixtures; positives must each be detected once" >&2
taskset -c "$core" "$bench" false-accepts --positives "$here/tests/fixtures/audio/manifest.json" --negatives "$audio"
