#!/usr/bin/env python3
"""Frame scores of the Python openWakeWord reference (PyPI `openwakeword` 0.6, ONNX framework) on the
16 kHz fixtures, written to tests/fixtures/audio/oww_reference.json for the Rust parity test.

The reference gets the very ONNX files Sotto uses (`--models DIR`, default $SOTTO_MODELS) and is fed
exactly like a stream: the 16-bit samples in 1280-sample chunks through `Model.predict`, one score per
chunk and model. The only change to the reference: openWakeWord seeds its embedding history with
embeddings of 4 s of *random* noise (np.random.randint), which makes its first 16 frames
non-reproducible; here, like in Sotto, that history is the embeddings of 4 s of silence.

    $SOTTO_VENV/bin/python tools/oww_reference.py [--models DIR] [--fixtures DIR]
"""
import argparse
import json
import os
import sys
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oww_models import WAKE_NAMES, model_files  # noqa: E402

CHUNK = 1280


def reference_model(files, wakes):
    import openwakeword

    model = openwakeword.Model(
        wakeword_models=[files[w] for w in wakes],
        inference_framework="onnx",
        melspec_model_path=files["melspectrogram"],
        embedding_model_path=files["embedding"],
    )
    pre = model.preprocessor
    pre.feature_buffer = pre._get_embeddings(np.zeros(16000 * 4, dtype=np.int16))
    # Model names come from the file names; map them back to Sotto's wake names.
    names = {os.path.splitext(os.path.basename(files[w]))[0]: w for w in wakes}
    return model, names


def read_pcm16(path):
    try:
        f = wave.open(path, "rb")
    except wave.Error:
        return None  # float WAVs (twins)
    with f:
        if f.getsampwidth() != 2 or f.getnchannels() != 1 or f.getframerate() != 16000:
            return None
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--models", default=os.environ.get("SOTTO_MODELS"))
    ap.add_argument("--fixtures", default=os.path.join(here, "..", "tests", "fixtures", "audio"))
    args = ap.parse_args()
    files = model_files(args.models)
    from importlib.metadata import version

    out = {"openwakeword": version("openwakeword"), "chunk": CHUNK, "models": {k: os.path.basename(v) for k, v in files.items()}, "files": {}}
    for name in sorted(os.listdir(args.fixtures)):
        if not name.endswith(".wav"):
            continue
        pcm = read_pcm16(os.path.join(args.fixtures, name))
        if pcm is None:
            continue  # twins in other formats are compared against their 16 kHz source by the Rust tests
        model, names = reference_model(files, WAKE_NAMES)
        scores = {w: [] for w in WAKE_NAMES}
        for i in range(0, len(pcm) - CHUNK + 1, CHUNK):
            for k, v in model.predict(pcm[i:i + CHUNK]).items():
                scores[names[k]].append(round(float(v), 6))
        out["files"][name] = scores
    path = os.path.join(args.fixtures, "oww_reference.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote reference scores of {len(out['files'])} files to {os.path.abspath(path)}")


if __name__ == "__main__":
    main()
