#!/usr/bin/env bash
# Text-to-speech speed and memory: time from text to the first audio sample of a short sentence,
# real-time factor, voice load time and peak RSS, for 1 and 2 ONNX Runtime threads, and a Raspberry
# Pi 5 projection scaled like bench/arm/ (see docs/tts.md). Not a timed test: run it on an idle machine.
#
#   tools/bench_tts.sh [--voice ID] [--threads 1,2] [--repeat N]
#
# Writes bench/results/tts.json. Needs the voice and ONNX Runtime in the model store
# (`sotto models fetch`) and espeak-ng's data (tools/setup.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"

echo "== building the TTS benchmark (release)" >&2
cargo build --release --manifest-path "$here/Cargo.toml" -p sotto-tts --example bench_tts

echo "== measuring (sotto-tts, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg))" >&2
out="$here/bench/results/tts.json"
"$CARGO_TARGET_DIR/release/examples/bench_tts" "$@" >"$out.tmp"
mv "$out.tmp" "$out"
"$SOTTO_VENV/bin/python" - "$out" <<'PY' >&2 || cat "$out" >&2
import json, sys
r = json.load(open(sys.argv[1]))
for run in r["runs"]:
    s, p = run["short"], run["paragraph"]
    print(f"{run['threads']} thread(s): first audio {s['first_audio_ms']['median']:.1f} ms for {s['text']!r} "
          f"({s['audio_s']:.2f} s of audio), real-time factor {p['real_time_factor']['median']:.3f}, "
          f"voice load {run['voice_load_ms']:.0f} ms")
print(f"peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB")
pi = r.get("pi5_projection")
if pi:
    print(f"Pi 5 (projected, 1 thread): first audio ~{pi['first_audio_ms']:.0f} ms, real-time factor ~{pi['real_time_factor']:.2f}")
PY
echo "wrote $out" >&2
