#!/usr/bin/env python3
"""Renders out-of-domain speech for the barista benchmark's false-action count.

The lines of intents/testset/out_of_domain.jsonl (with text) and intents/testset/barista_remarks.txt
are spoken by espeak-ng; the coffee-counter remarks, the dangerous ones, also by the Piper voice.
Each rendering is trimmed, padded with 0.3 s of quiet floor on both sides like a cut utterance, and
written as 16 kHz mono WAV into OUT together with OUT/list.tsv (`file<TAB>text`), the `--negatives`
list of `cargo run --release -p sotto-intents --example barista_speech`.

    $SOTTO_VENV/bin/python tools/make_negatives.py [--out $SOTTO_CACHE/barista-negatives]
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import SR, floor, synth, write_wav  # noqa: E402

TESTSET = os.path.join(HERE, "..", "intents", "testset")


def lines():
    out_of_domain = []
    with open(os.path.join(TESTSET, "out_of_domain.jsonl")) as f:
        for line in f:
            text = json.loads(line)["text"].strip()
            if text:
                out_of_domain.append(text)
    with open(os.path.join(TESTSET, "barista_remarks.txt")) as f:
        remarks = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    return out_of_domain, remarks


def main():
    cache = os.environ.get("SOTTO_CACHE", os.path.expanduser("~/.cache/sotto"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(cache, "barista-negatives"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    out_of_domain, remarks = lines()
    jobs = [(f"ood_{i:02d}_espeak", "espeak", t) for i, t in enumerate(out_of_domain)]
    jobs += [(f"remark_{i:02d}_espeak", "espeak", t) for i, t in enumerate(remarks)]
    jobs += [(f"remark_{i:02d}_piper", "piper", t) for i, t in enumerate(remarks)]
    rng = np.random.default_rng(7)
    pad = int(0.3 * SR)
    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(args.out, "list.tsv"), "w") as listing:
        for n, (name, engine, text) in enumerate(jobs, 1):
            speech = synth(engine, text, tmp)
            audio = np.concatenate([floor(pad, rng), speech, floor(pad, rng)])
            write_wav(os.path.join(args.out, f"{name}.wav"), audio)
            listing.write(f"{name}.wav\t{text}\n")
            print(f"\r{n}/{len(jobs)} {name}", end="", file=sys.stderr, flush=True)
    print(f"\n{len(jobs)} utterances in {args.out} (list: {os.path.join(args.out, 'list.tsv')})", file=sys.stderr)


if __name__ == "__main__":
    main()
