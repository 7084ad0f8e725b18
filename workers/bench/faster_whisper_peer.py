"""Peer for the STT benchmark: the same clips through faster-whisper (CTranslate2, int8) on the
same Whisper base model, decoded the way the STT worker decodes (greedy, English, no timestamps,
no VAD, one pass per clip). Prints one JSON line per transcription: {"file", "ms", "text"}.

Usage: python faster_whisper_peer.py CT2_MODEL_DIR THREADS REPS WAV...
"""
import json
import sys
import time
import wave

import numpy as np
from faster_whisper import WhisperModel


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getframerate() == 16000 and w.getsampwidth() == 2, path
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def main():
    model_dir, threads, reps, files = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
    audio = [(f, read_wav(f)) for f in files]
    # Warm-up, as for the worker.
    list(model.transcribe(audio[0][1], language="en", beam_size=1)[0])
    for _ in range(reps):
        for f, a in audio:
            t0 = time.perf_counter()
            segments, _ = model.transcribe(
                a, language="en", beam_size=1, without_timestamps=True, vad_filter=False,
                condition_on_previous_text=False,
            )
            text = " ".join(s.text.strip() for s in segments)
            ms = (time.perf_counter() - t0) * 1e3
            print(json.dumps({"file": f, "ms": ms, "text": text}), flush=True)


if __name__ == "__main__":
    main()
