#!/usr/bin/env python3
"""End-to-end latency of the daemon on the bundled recordings: for each spoken command, the time
from the endpoint decision (end of the trailing silence) to the action handed to MQTT, split into
speech-to-text and intents, from the daemon's own `latency` log lines.

    python3 tools/bench_e2e.py [--repeat 3] [--sotto PATH] [--config FILE] [--realtime]

Runs `sotto run --config tools/demo.toml --input WAV` (embedded broker) per recording and prints a
Markdown table (p50/p95/max per stage, grammar-resolved and language-model-resolved separately).
The trailing silence itself (`endpoint.trailing_silence_ms`, default 700 ms) comes on top.
With --realtime the recordings are fed at their recorded speed, so speech-to-text can start at the
pause after the command (`endpoint.speculate_after_ms`) as it would live: "STT waited" is what is left
of it after the endpoint, "STT work" the transcription's own time.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
RECORDINGS = [
    "audio/pos_jarvis_vehicle_temp.wav",
    "audio/pos_alexa_vehicle_window.wav",
    "audio/pos_jarvis_home_lights.wav",
    "audio/pos_alexa_home_thermostat.wav",
    "audio/pos_jarvis_espeak_timer.wav",
    "audio/pos_alexa_factory_status.wav",
    "audio/pos_jarvis_factory_stop.wav",
    "dialogue/jarvis_vehicle_out_of_range.wav",
]
FIELD = re.compile(r'(\w+)=("[^"]*"|\S+)')


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sotto/target"))
    ap.add_argument("--sotto", default=os.path.join(target, "release", "sotto"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--config", default=os.path.join(HERE, "demo.toml"),
                    help="daemon config (default tools/demo.toml; e.g. one with [slm] enabled = true)")
    ap.add_argument("--realtime", action="store_true", help="feed the recordings at their recorded speed")
    args = ap.parse_args()
    env = dict(os.environ, RUST_LOG="sotto::pipeline=info", NO_COLOR="1")
    rows = []
    for _ in range(args.repeat):
        for rec in RECORDINGS:
            out = subprocess.run([args.sotto, "run", "--config", args.config, "--input",
                                  os.path.join(ROOT, "tests", "fixtures", rec)] + (["--realtime"] if args.realtime else []),
                                 env=env, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"sotto failed on {rec}:\n{out.stderr}")
            for line in out.stderr.splitlines():
                if "latency" not in line:
                    continue
                fields = dict((k, v.strip('"')) for k, v in FIELD.findall(line))
                if "end_of_speech_to_action_ms" in fields:
                    fields["recording"] = rec
                    rows.append(fields)
    if not rows:
        sys.exit("no latency lines found")
    print(f"{len(rows)} utterances ({args.repeat} × {len(RECORDINGS)} recordings), milliseconds\n")
    print("| resolved by | n | audio s (median) | STT waited p50 / p95 | STT work p50 / p95 | intents p50 / p95 | end of speech → action p50 / p95 / max |")
    print("|---|---|---|---|---|---|---|")
    groups = {}
    for r in rows:
        groups.setdefault(r.get("resolver", "None"), []).append(r)
    for name, rs in sorted(groups.items()):
        f = lambda k: [float(r[k]) for r in rs]
        label = {"Some(Grammar)": "grammar", "Some(Slm)": "language model", "None": "nothing (not understood)"}.get(name, name)
        print(f"| {label} | {len(rs)} | {statistics.median(f('audio_s')):.2f} "
              f"| {percentile(f('stt_ms'), 50):.0f} / {percentile(f('stt_ms'), 95):.0f} "
              f"| {percentile(f('stt_compute_ms'), 50):.0f} / {percentile(f('stt_compute_ms'), 95):.0f} "
              f"| {percentile(f('intents_ms'), 50):.1f} / {percentile(f('intents_ms'), 95):.1f} "
              f"| {percentile(f('end_of_speech_to_action_ms'), 50):.0f} / {percentile(f('end_of_speech_to_action_ms'), 95):.0f} "
              f"/ {max(f('end_of_speech_to_action_ms')):.0f} |")


if __name__ == "__main__":
    main()
