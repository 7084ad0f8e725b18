#!/usr/bin/env bash
# The demo, from a fresh machine: set-up (packages, build, models), then bundled spoken commands of each
# domain through the whole chain (wake word, VAD, Whisper, intents, MQTT on an embedded broker),
# printing every message published.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$here/tools/env.sh"
bash "$here/tools/setup.sh"
sotto="$CARGO_TARGET_DIR/release/sotto"
for wav in "$here"/tests/fixtures/demo/*.wav; do
    printf '\n== %s\n' "$(basename "$wav")" >&2
    "$sotto" run --input "$wav"
done
