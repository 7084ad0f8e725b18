#!/usr/bin/env python3
"""Generates the benchmark's utterance set with Piper into ~/.cache/sotto/bench/ (not committed) and
writes the utterance list every stack runs on (format: bench/SCHEMA.md).

    $SOTTO_VENV/bin/python bench/make_benchset.py [--per-domain 12] [--negatives 6] [--lm 6] [--out DIR]

- `grammar` set: wake word + a command drawn evenly from intents/testset/{vehicle,factory,home}.jsonl
  (commands that ask for a spoken confirmation are left out: a benchmark cannot answer them);
- `lm` set: wake word + paraphrases written for this benchmark that the grammar does not cover, so the
  language-model fallback has to resolve them (expected intent only);
- negatives: out-of-domain lines (intents/testset/out_of_domain.jsonl) spoken without a wake word;
- `fixture` set: the committed recordings of tests/fixtures/audio (positives and negatives).

Synthesis reuses tools/make_fixtures.py (same voice, gaps and noise floor). Files are only made when
missing, so a rerun costs nothing; the list is rewritten every time.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import make_fixtures as mf  # noqa: E402  (one synthesis path for fixtures and benchmark)

DOMAINS = ["vehicle", "factory", "home"]
WAKES = [("hey_jarvis", "Hey Jarvis!"), ("alexa", "Alexa!")]
# Intents whose action waits for a spoken yes/no (intents/domains/*.toml `confirm`/`confirm_when`).
NEEDS_CONFIRMATION = {"machine.stop", "machine.start"}
# Paraphrases outside the grammar's templates, for the language-model path. Expected intent only: the
# slot values of free paraphrases are not canonical enough to score.
LM_COMMANDS = [
    ("I'm freezing in here, could you warm the car up a bit", "climate.set_temperature"),
    ("it's way too dark in the kitchen", "light.set"),
    ("how's that press number two getting on", "machine.status"),
    ("can you let some fresh air in through my window", "window.set"),
    ("make the living room a little cosier, say twenty degrees", "thermostat.set"),
    ("give me a shout in five minutes", "timer.start"),
    ("the bedroom is too bright, kill the lights", "light.set"),
    ("tell me how the CNC mill is doing right now", "machine.status"),
    # Added so that the model path is measured on at least 20 utterances (issue 13).
    ("the hallway is pitch dark, I can't see a thing", "light.set"),
    ("my side of the car is boiling, bring it down to nineteen", "climate.set_temperature"),
    ("ping me in a quarter of an hour", "timer.start"),
    ("any news on how conveyor one is running", "machine.status"),
    ("we're heading out, make sure the front door is bolted", "lock.set"),
    ("I need some air, drop the passenger window", "window.set"),
    ("the rear glass is all misted up, sort it out", "climate.defrost"),
    ("the battery is nearly flat, where can I plug the car in around here", "nav.find_nearby"),
    ("take us over to 14 harbour street", "nav.navigate_to"),
    ("dim the bedroom down to about a quarter", "light.brightness"),
    ("this song is too quiet, crank it up to eighty", "media.volume"),
    ("hold the music for a moment", "media.control"),
    ("more air from the vents please, level four", "climate.set_fan"),
    ("my back is cold, warm my seat up a notch to two", "seat.set_heating"),
    ("the robot cell's gripper keeps dropping parts, log a fault", "fault.report"),
    ("walk me through the lockout procedure", "procedure.lookup"),
]


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def needs_confirmation(case):
    return case["intent"] in NEEDS_CONFIRMATION or (case["intent"] == "lock.set" and case.get("slots", {}).get("state") == "unlocked")


def spread(items, n):
    """n items spread evenly over the list (deterministic: the same set on every machine)."""
    if n >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)] if n > 1 else items[:1]


class Synth:
    """Piper/espeak synthesis with the wake words made once."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.wake_audio = {}

    def wake(self, name, text):
        if name not in self.wake_audio:
            self.wake_audio[name] = mf.synth("piper", text, self.tmp)
        return self.wake_audio[name]

    def speech(self, text):
        return mf.synth("piper", text, self.tmp)


def make_entry(out, name, synth, rng, text, wake=None, **fields):
    path = os.path.join(out, f"{name}.wav")
    meta_path = path + ".json"
    meta = None
    if os.path.exists(path) and os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("text") != text or meta.get("wake") != (wake and wake[0]):
            meta = None
    if meta is None:
        pieces = []
        if wake:
            pieces.append(("wake", synth.wake(*wake)))
        pieces.append(("speech", synth.speech(text)))
        x, spans = mf.assemble(pieces, rng)
        mf.write_wav(path, x)
        meta = {"text": text, "wake": wake and wake[0], "speech_end_s": round(spans["speech"][1] / mf.SR, 4),
                "wake_end_s": round(spans["wake"][1] / mf.SR, 4) if wake else None}
        with open(meta_path, "w") as f:
            json.dump(meta, f)
    return dict({"file": path, "wake": meta["wake"], "text": text, "speech_end_s": meta["speech_end_s"],
                 "wake_end_s": meta["wake_end_s"]}, **fields)


def fixture_entries(testset):
    fixtures = os.path.join(ROOT, "tests", "fixtures", "audio")
    with open(os.path.join(fixtures, "manifest.json")) as f:
        manifest = json.load(f)["fixtures"]
    by_text = {mf_norm(c["text"]): c for c in testset}
    entries = []
    for m in manifest:
        if m["kind"] not in ("positive", "negative"):
            continue
        label = by_text.get(mf_norm(m.get("command", ""))) if m["kind"] == "positive" else None
        if label and needs_confirmation(label):
            continue
        if m["kind"] == "positive" and label is None and "stop" in m.get("command", "").lower():
            continue  # "stop conveyor three" asks for confirmation
        entries.append({"file": os.path.join(fixtures, m["file"]),
                        "kind": "command" if m["kind"] == "positive" else "negative",
                        "wake": m.get("wake"), "text": m.get("command") or m.get("text", ""),
                        "expected_intent": label["intent"] if label else None,
                        "expected_slots": label.get("slots", {}) if label else {},
                        "set": "fixture", "speech_end_s": m.get("speech_end_s"), "wake_end_s": m.get("wake_end_s")})
    return entries


def mf_norm(text):
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == " ").strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cache = os.environ.get("SOTTO_CACHE", os.path.expanduser("~/.cache/sotto"))
    ap.add_argument("--out", default=os.path.join(cache, "bench"))
    ap.add_argument("--per-domain", type=int, default=12)
    ap.add_argument("--negatives", type=int, default=6)
    ap.add_argument("--lm", type=int, default=len(LM_COMMANDS))
    args = ap.parse_args()
    audio_dir = os.path.join(args.out, "audio")
    os.makedirs(audio_dir, exist_ok=True)
    rng = np.random.default_rng(20261128)
    testsets = {d: read_jsonl(os.path.join(ROOT, "intents", "testset", f"{d}.jsonl")) for d in DOMAINS}
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        synth = Synth(tmp)
        i = 0
        for domain in DOMAINS:
            for case in spread([c for c in testsets[domain] if not needs_confirmation(c)], args.per_domain):
                entries.append(make_entry(audio_dir, f"cmd_{domain}_{i:03d}", synth, rng, case["text"],
                                          wake=WAKES[i % len(WAKES)], kind="command", set="grammar", domain=domain,
                                          expected_intent=case["intent"], expected_slots=case.get("slots", {})))
                i += 1
        for j, (text, intent) in enumerate(LM_COMMANDS[: args.lm]):
            entries.append(make_entry(audio_dir, f"lm_{j:03d}", synth, rng, text, wake=WAKES[j % len(WAKES)],
                                      kind="command", set="lm", expected_intent=intent, expected_slots={}))
        ood = read_jsonl(os.path.join(ROOT, "intents", "testset", "out_of_domain.jsonl"))
        for j, case in enumerate(spread(ood, args.negatives)):
            entries.append(make_entry(audio_dir, f"neg_{j:03d}", synth, rng, case["text"], kind="negative",
                                      set="grammar", expected_intent=None, expected_slots={}))
    entries += fixture_entries([c for d in DOMAINS for c in testsets[d]])
    path = os.path.join(args.out, "utterances.json")
    with open(path, "w") as f:
        json.dump(entries, f, indent=1)
    print(f"{len(entries)} utterances -> {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
