#!/usr/bin/env python3
"""Python side of the wake-word benchmark (tools/bench_wake.sh): the reference openWakeWord 0.6 with
the ONNX framework and Sotto's very model files, fed the same audio as a live stream (1280-sample
chunks through Model.predict), all shipped wake words at once. Prints one JSON line.

    $SOTTO_VENV/bin/python tools/oww_bench.py FILE_OR_DIR...
"""
import json
import os
import sys
import time
import wave

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oww_models import WAKE_NAMES, model_files  # noqa: E402


def wav_files(inputs):
    for i in inputs:
        if os.path.isdir(i):
            yield from sorted(os.path.join(i, f) for f in os.listdir(i) if f.endswith(".wav"))
        else:
            yield i


def main():
    import openwakeword
    from importlib.metadata import version

    files = list(wav_files(sys.argv[1:]))
    pcm = []
    for f in files:
        with wave.open(f, "rb") as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1 or w.getframerate() != 16000:
                sys.exit(f"{f}: the reference needs 16 kHz mono 16-bit WAV")
            pcm.append(np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16))
    audio = np.concatenate(pcm)
    m = model_files(None)
    model = openwakeword.Model(wakeword_models=[m[w] for w in WAKE_NAMES], inference_framework="onnx",
                               melspec_model_path=m["melspectrogram"], embedding_model_path=m["embedding"])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    frames = 0
    for i in range(0, len(audio) - 1280 + 1, 1280):
        model.predict(audio[i:i + 1280])
        frames += 1
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    audio_s = len(audio) / 16000
    print(json.dumps({"impl": f"python openwakeword {version('openwakeword')} (onnxruntime {version('onnxruntime')})",
                      "mode": "stream 80 ms", "wake_models": len(WAKE_NAMES), "files": len(files),
                      "audio_s": round(audio_s, 1), "frames": frames, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                      "rtf": round(cpu / audio_s, 5), "cpu_s_per_audio_hour": round(cpu / audio_s * 3600, 1)}))


if __name__ == "__main__":
    main()
