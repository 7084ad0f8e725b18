#!/usr/bin/env bash
# The demo, from a fresh machine: set-up (packages, build, models), then bundled spoken commands of each
# domain through the whole chain (wake word, VAD, Whisper, intents, MQTT on an embedded broker),
# printing every message published.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"
bash "$here/tools/setup.sh"
sotto="$CARGO_TARGET_DIR/release/sotto"
recordings=(
    audio/pos_jarvis_vehicle_temp.wav        # vehicle: climate
    audio/pos_alexa_vehicle_window.wav       # vehicle: windows
    audio/pos_jarvis_home_lights.wav         # home: lights
    audio/pos_alexa_home_thermostat.wav      # home: thermostat
    audio/pos_jarvis_espeak_timer.wav        # home: timer (espeak voice)
    audio/pos_alexa_factory_status.wav       # factory: status
    dialogue/jarvis_factory_stop_yes.wav     # factory: risky, confirmed by a spoken "yes"
    dialogue/jarvis_vehicle_out_of_range.wav # rejected: 90 °C is out of range
)
# Sotto's spoken answers are written as WAVs (one directory per recording) instead of played.
answers="${SOTTO_DEMO_ANSWERS:-$CARGO_TARGET_DIR/demo-answers}"
rm -rf "$answers"
for wav in "${recordings[@]}"; do
    name="$(basename "$wav" .wav)"
    mkdir -p "$answers/$name"
    config="$answers/$name/sotto.toml"
    { cat "$here/tools/demo.toml"; printf '\n[tts]\nwav_dir = "%s"\n' "$answers/$name"; } >"$config"
    printf '\n== %s\n' "$wav"
    RUST_LOG="${RUST_LOG:-warn,rumqttd::server::broker=off}" "$sotto" run --config "$config" --input "$here/tests/fixtures/$wav" |
        tee "$answers/$name/published.jsonl"
    # What Sotto said, from its `sotto/<site>/said` messages.
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m["topic"].endswith("/said"):
        p = m["payload"]
        print("   Sotto said: %r  (%s)" % (p["text"], p.get("wav") or p.get("error")))
' "$answers/$name/published.jsonl"
done
printf '\nSotto'"'"'s spoken answers: %s\n' "$answers"
