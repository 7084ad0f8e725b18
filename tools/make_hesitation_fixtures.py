#!/usr/bin/env python3
"""Makes tests/fixtures/hesitation/: a wake word, then a command with a hesitation inside it
("Set the temperature to ... twenty one degrees."), each part synthesised on its own with Piper and
joined by a pause of known length, for the early-decision tests (the utterance must not be cut at
the hesitation). Same voice and assembly as tools/make_fixtures.py (whose helpers it uses):
    $SOTTO_VENV/bin/python tools/make_hesitation_fixtures.py
"""
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_fixtures as fx  # noqa: E402

# name -> (first part, pause in seconds, second part, the intent and slots the whole command means,
# whether the whole command is complete by the grammar's rule: a duration may always go on, "five
# minutes" → "… and thirty seconds", so the timer waits for the full trailing silence)
HESITATIONS = {
    "temperature_to_pause_twenty_one": ("Set the temperature to", 0.45, "twenty one degrees.",
                                        "climate.set_temperature", {"temperature": 21}, True),
    "turn_on_the_pause_kitchen_lights": ("Turn on the", 0.6, "kitchen lights.", "light.set",
                                         {"room": "kitchen", "state": "on"}, True),
    "turn_off_the_living_pause_room_lights": ("Turn off the living", 0.35, "room lights.", "light.set",
                                              {"room": "living_room", "state": "off"}, True),
    "timer_for_five_pause_minutes": ("Set a timer for five", 0.5, "minutes.", "timer.start", {"duration_s": 300}, False),
}


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "hesitation")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261204)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (first, pause, second, intent, slots, complete) in HESITATIONS.items():
            wake = fx.synth("piper", "Hey Jarvis!", tmp)
            a, b = fx.synth("piper", first, tmp), fx.synth("piper", second, tmp)
            command = np.concatenate([a, fx.floor(int(pause * fx.SR), rng), b])
            x, spans = fx.assemble([("wake", wake), ("command", command)], rng)
            fx.write_wav(os.path.join(out, f"{name}.wav"), x)
            start = spans["command"][0]
            manifest.append({"file": f"{name}.wav", "text": f"{first} ... {second}", "pause_s": pause,
                             "pause_at_s": round((start + len(a)) / fx.SR, 3),
                             "speech_end_s": round(spans["command"][1] / fx.SR, 3),
                             "intent": intent, "slots": slots, "complete": complete})
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
