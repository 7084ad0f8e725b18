#!/usr/bin/env python3
"""Makes tests/fixtures/model_path/: spoken requests that the grammar's templates do not cover, so
that only the language model (with the distilled adapter) can serve them. Used by the daemon test
of the model path (tests/daemon_e2e.rs).

Same voice and assembly as tools/make_fixtures.py (whose helpers it uses); its own seed, so adding
a file here never changes the other fixtures:
    $SOTTO_VENV/bin/python tools/make_model_path_fixtures.py
"""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402

# name, wake text, command, expected intent and slots (written for this test, not taken from the
# evaluation sets or the distillation patterns).
FIXTURES = [
    ("alexa_vehicle_fan_paraphrase", "Alexa!", "More air from the vents please, level four.",
     "climate.set_fan", {"level": 4}),
]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model_path")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261204)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, wake, command, intent, slots in FIXTURES:
            x, spans = fx.assemble([("wake", fx.synth("piper", wake, tmp)), ("command", fx.synth("piper", command, tmp))], rng)
            fx.write_wav(os.path.join(out, f"{name}.wav"), x)
            manifest.append({"file": f"{name}.wav", "wake": wake, "command": command, "intent": intent, "slots": slots,
                             "speech_end_s": round(spans["command"][1] / fx.SR, 4)})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"wrote {len(manifest)} fixtures to {out}")


if __name__ == "__main__":
    main()
