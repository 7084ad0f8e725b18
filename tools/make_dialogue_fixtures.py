#!/usr/bin/env python3
"""Makes the multi-turn fixtures in tests/fixtures/dialogue/: a wake word, a command, a pause, a
follow-up (the yes/no of a risky command), plus a command whose value is out of range.

Same voices and assembly as tools/make_fixtures.py (whose helpers it uses):
    $SOTTO_VENV/bin/python tools/make_dialogue_fixtures.py
"""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402

# name -> pieces: (role, text); the pause before a follow-up is long enough to end the command.
# The answer waits for Sotto's spoken question ("Stop press one? Say yes or no.", 2.5 s, during
# which the microphone is muted) and comes within the endpointer's 4 s wait when nothing is said.
DIALOGUES = {
    "jarvis_factory_stop_yes": [("wake", "Hey Jarvis!"), ("command", "Stop press one."), ("pause", 3.4), ("answer", "Yes.")],
    "jarvis_factory_stop_no": [("wake", "Hey Jarvis!"), ("command", "Stop press one."), ("pause", 3.4), ("answer", "No.")],
    "jarvis_factory_stop_silence": [("wake", "Hey Jarvis!"), ("command", "Stop press one."), ("pause", 6.0)],
    "jarvis_vehicle_out_of_range": [("wake", "Hey Jarvis!"), ("command", "Set the temperature to ninety degrees.")],
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "dialogue")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261128)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, pieces in DIALOGUES.items():
            parts = []
            for role, value in pieces:
                if role == "pause":
                    parts.append(fx.floor(int(value * fx.SR), rng))
                else:
                    parts.append(fx.synth("piper", value, tmp))
                    parts.append(fx.floor(int(fx.GAP_S * fx.SR), rng))
            x = np.concatenate([fx.floor(int(fx.LEAD_S * fx.SR), rng)] + parts + [fx.floor(int(fx.TAIL_S * fx.SR), rng)])
            fx.write_wav(os.path.join(out, f"{name}.wav"), x)
            manifest.append({"file": f"{name}.wav", "turns": [v for r, v in pieces if r != "pause"]})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
