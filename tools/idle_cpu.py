#!/usr/bin/env python3
"""CPU of the idle daemon: speech without a wake word streamed through stdin in real time (160 ms
writes, as a capture callback delivers), user+system time of the daemon and its workers from ready
to the end of the stream.

    python3 tools/idle_cpu.py --config FILE [--wav SPEECH.wav] [--seconds 45] [--sotto PATH]

The config must read `audio.source = "stdin"` (16 kHz). Compare settings by running it once per
config, e.g. `wake.batch_ms = 0` against the default. Default audio: the barista recordings
(`SOTTO_BARISTA`), concatenated. `tools/bench.sh` measures the same as part of the whole benchmark.
"""
import argparse
import os
import subprocess
import sys
import threading
import time
import wave

HERE = os.path.dirname(os.path.abspath(__file__))
RATE = 16000


def speech(path, seconds):
    if path:
        with wave.open(path) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                sys.exit(f"{path}: expected 16 kHz mono 16-bit")
            return w.readframes(w.getnframes())[: int(seconds * RATE) * 2]
    folder = os.path.join(os.environ.get("SOTTO_BARISTA", "/work/shared/data/barista"), "clean")
    out = b""
    for name in sorted(os.listdir(folder)):
        with wave.open(os.path.join(folder, name)) as w:
            out += w.readframes(w.getnframes())
        if len(out) >= seconds * RATE * 2:
            break
    return out[: int(seconds * RATE) * 2]


def tree_cpu_s(pid):
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()]
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sotto/target"))
    ap.add_argument("--sotto", default=os.path.join(target, "release", "sotto"))
    ap.add_argument("--config", required=True)
    ap.add_argument("--wav")
    ap.add_argument("--seconds", type=float, default=45.0)
    args = ap.parse_args()
    pcm = speech(args.wav, args.seconds)
    p = subprocess.Popen([args.sotto, "run", "--config", args.config], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    for line in p.stderr:
        if b"sotto ready" in line:
            break
    else:
        sys.exit("sotto exited before it was ready")
    threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
    time.sleep(1.0)
    cpu0, start, block = tree_cpu_s(p.pid), time.monotonic(), RATE * 160 // 1000 * 2
    for k in range(0, len(pcm), block):
        p.stdin.write(pcm[k:k + block])
        p.stdin.flush()
        delay = start + (k + block) / (RATE * 2) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.5)
    cpu = tree_cpu_s(p.pid) - cpu0
    p.stdin.close()
    p.wait()
    audio_s = len(pcm) / (RATE * 2)
    print(f"{os.path.basename(args.config)}: {cpu:.2f} CPU s over {audio_s:.0f} s of audio = {100 * cpu / audio_s:.2f}% of one core")


if __name__ == "__main__":
    main()
