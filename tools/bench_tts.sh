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
    print(f"{run['threads']} thread(s): first audio {s['first_audio_ms']['median']:.1f} ms "
          f"(CPU {s['first_audio_cpu_ms']['median']:.1f} ms) for {s['text']!r} ({s['audio_s']:.2f} s of audio), "
          f"real-time factor {p['real_time_factor']['median']:.3f} (CPU {p['cpu_real_time_factor']['median']:.3f}), "
          f"voice load {run['voice_load_ms']:.0f} ms")
print(f"load average during the run: {r['load_average_1min']}")
print(f"peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB")
pi = r.get("pi5_projection")
if pi:
    print(f"Pi 5 (projected like bench/arm): first audio ~{pi['first_audio_ms']:.0f} ms, real-time factor "
          f"~{pi['real_time_factor']:.3f}; on one Pi core at most ~{pi['one_thread_first_audio_ms_at_most']:.0f} ms "
          f"and ~{pi['one_thread_real_time_factor_at_most']:.2f}")
PY
echo "wrote $out" >&2
