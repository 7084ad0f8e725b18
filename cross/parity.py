#!/usr/bin/env python3
"""Parity of the aarch64 build (under qemu-user) with the x86-64 build on the same inputs.

Runs, through both builds:
  - `sotto audio detect` on every spoken fixture (wake detections: same wake word, time within one
    80 ms frame, score difference shown);
  - `sotto run --input WAV` on the demo's recordings and every spoken fixture of the end-to-end
    tests (tests/fixtures/audio, tests/fixtures/dialogue), comparing what is published: wake words,
    intents with their slot values, action topics and payloads, rejections (must be equal), and
    transcripts (equal, or within one word);
  - `sotto parse` on one sentence.
Prints a Markdown table (command, x86-64 result, aarch64 result, same or not, wall time of each) and
lists every difference. The aarch64 wall time is emulated: it shows that the run is real, not how
fast a board is. Not part of CI (tens of minutes). Root: cross/run-aarch64-qemu.sh registers qemu
with binfmt_misc.

Usage: cross/parity.py [--x86-bin DIR] [--out DIR] [--only SUBSTRING]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FRAME_S = 0.08
def recordings():
    """The demo's recordings (read from tools/demo.sh, in its order), then every other fixture."""
    demo = re.findall(r"^\s*((?:audio|dialogue)/\S+\.wav)", (REPO / "tools/demo.sh").read_text(), re.M)
    if not demo:
        sys.exit("no recordings found in tools/demo.sh")
    fixtures = REPO / "tests/fixtures"
    rest = sorted(str(p.relative_to(fixtures)) for d in ("audio", "dialogue") for p in (fixtures / d).glob("*.wav"))
    return demo + [r for r in rest if r not in demo]


def run(cmd, env=None):
    """(exit code, stdout, stderr, wall seconds)"""
    start = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - start


def words(text):
    return re.findall(r"[a-z0-9']+", text.lower())


def word_distance(a, b):
    """Levenshtein distance over words."""
    a, b = words(a), words(b)
    prev = list(range(len(b) + 1))
    for i, wa in enumerate(a, 1):
        cur = [i]
        for j, wb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wa != wb)))
        prev = cur
    return prev[-1]


def published(stdout):
    """What a `sotto run --input` published, reduced to what must match across builds."""
    out = {"wake": [], "transcripts": [], "intents": [], "rejected": [], "actions": [], "ended": [], "said": []}
    for line in stdout.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        topic, payload = msg.get("topic", ""), msg.get("payload")
        if topic.startswith("hermes/hotword/"):
            out["wake"].append(topic.split("/")[2])
        elif topic == "hermes/asr/textCaptured":
            out["transcripts"].append(payload.get("text", ""))
        elif topic.startswith("hermes/intent/"):
            slots = {s["slotName"]: s["value"]["value"] for s in payload.get("slots", [])}
            out["intents"].append([payload["intent"]["intentName"], slots])
        elif topic == "hermes/nlu/intentNotRecognized":
            out["rejected"].append(payload.get("customData") or "not recognized")
        elif topic == "hermes/dialogueManager/sessionEnded":
            out["ended"].append(payload["termination"]["reason"])
        elif topic.startswith("sotto/") and topic.endswith("/said"):
            # What was said and how it went, without the ids, which are new in every run.
            out["said"].append([payload.get("text"), payload.get("error")])
        elif topic.startswith("sotto/") and not topic.endswith(("/status", "/confirm")):
            out["actions"].append([topic.split("/", 2)[2], payload])
    return out


def summary(p):
    if p is None:
        return "(failed)"
    parts = []
    if p["wake"]:
        parts.append("wake " + ",".join(p["wake"]))
    if p["transcripts"]:
        parts.append(" / ".join(f'"{t.strip()}"' for t in p["transcripts"]))
    for name, slots in p["intents"]:
        parts.append(name + (" {" + ", ".join(f"{k}: {v}" for k, v in slots.items()) + "}" if slots else ""))
    for r in p["rejected"]:
        parts.append(f"rejected ({r})")
    if not parts:
        parts.append("nothing")
    return "; ".join(parts)


def compare_run(a, b):
    """Differences between two `published` results, as sentences; [] = same."""
    if a is None or b is None:
        return ["a run failed"]
    diffs = []
    for key in ("wake", "intents", "rejected", "actions", "ended", "said"):
        if a[key] != b[key]:
            diffs.append(f"{key}: x86-64 {json.dumps(a[key])} vs aarch64 {json.dumps(b[key])}")
    if len(a["transcripts"]) != len(b["transcripts"]):
        diffs.append(f"transcripts: x86-64 {a['transcripts']} vs aarch64 {b['transcripts']}")
    else:
        for ta, tb in zip(a["transcripts"], b["transcripts"]):
            d = word_distance(ta, tb)
            if d > 1:
                diffs.append(f"transcript differs by {d} words: {ta!r} vs {tb!r}")
    return diffs


def compare_detect(a_lines, b_lines):
    """Per file: wake words equal, times within one frame. Returns (rows, diffs)."""
    def by_file(text):
        res = {}
        for line in text.splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            res[os.path.basename(d["file"])] = d["detections"]
        return res

    a, b = by_file(a_lines), by_file(b_lines)
    rows, diffs, max_dt, max_ds = [], [], 0.0, 0.0
    for f in sorted(set(a) | set(b)):
        da, db = a.get(f), b.get(f)
        if da is None or db is None:
            diffs.append(f"audio detect {f}: missing on {'x86-64' if da is None else 'aarch64'}")
            continue
        same = [x["wake"] for x in da] == [y["wake"] for y in db]
        if same:
            for x, y in zip(da, db):
                max_dt = max(max_dt, abs(x["time_s"] - y["time_s"]))
                max_ds = max(max_ds, abs(x["score"] - y["score"]))
                if abs(x["time_s"] - y["time_s"]) > FRAME_S + 1e-9:
                    same = False
        if not same:
            diffs.append(f"audio detect {f}: x86-64 {json.dumps(da)} vs aarch64 {json.dumps(db)}")
        rows.append((f, da, db, same))
    return rows, diffs, max_dt, max_ds


def fmt_det(ds):
    return ", ".join(f"{d['wake']} @{d['time_s']:.2f}s" for d in ds) or "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sotto"
    ap.add_argument("--x86-bin", default=os.environ.get("CARGO_TARGET_DIR", str(cache / "target")) + "/release")
    ap.add_argument("--out", default=None, help="where raw outputs go (default: a new temp dir)")
    ap.add_argument("--only", default=None, help="only recordings whose path contains this")
    ap.add_argument("--no-detect", action="store_true", help="skip the `audio detect` comparison")
    args = ap.parse_args()
    x86 = Path(args.x86_bin) / "sotto"
    if not x86.exists():
        sys.exit(f"{x86} missing: cargo build --release -p sotto -p sotto-stt-worker -p sotto-slm-worker")
    arm = [str(HERE / "run-aarch64-qemu.sh")]
    out = Path(args.out or tempfile.mkdtemp(prefix="sotto-parity-"))
    out.mkdir(parents=True, exist_ok=True)
    config = HERE / "parity.toml"
    env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn,rumqttd::server::broker=off"))
    env.pop("SOTTO_WORKER_DIR", None)  # each build's workers are found beside its sotto

    table, diffs = [], []
    fixtures = REPO / "tests/fixtures"
    rec = [r for r in recordings() if not args.only or args.only in r]

    def both(label, sotto_args, key):
        print(f"== {label}", file=sys.stderr, flush=True)
        r86 = run([str(x86)] + sotto_args, env)
        rarm = run(arm + sotto_args, env)
        for name, r in (("x86_64", r86), ("aarch64", rarm)):
            (out / f"{key}.{name}.stdout").write_text(r[1])
            (out / f"{key}.{name}.stderr").write_text(r[2])
            if r[0] != 0:
                print(f"   {name} exit {r[0]}: {r[2].strip().splitlines()[-1:] if r[2].strip() else ''}", file=sys.stderr)
        print(f"   x86-64 {r86[3]:.1f} s, aarch64 (emulated) {rarm[3]:.1f} s", file=sys.stderr, flush=True)
        return r86, rarm

    # Wake detection on every fixture, one command per build.
    def detect():
        nonlocal diffs
        detect_on = [str(fixtures / r) for r in rec] if args.only else [str(fixtures / "audio"), str(fixtures / "dialogue")]
        r86, rarm = both(f"audio detect ({len(rec)} recordings)", ["audio", "detect"] + detect_on, "detect")
        rows, ddiffs, max_dt, max_ds = compare_detect(r86[1], rarm[1])
        diffs += ddiffs
        n_same = sum(1 for r in rows if r[3])
        table.append((
            f"`audio detect` ({len(rows)} recordings)",
            f"{sum(len(r[1]) for r in rows)} detections in {len(rows)} files",
            f"{sum(len(r[2]) for r in rows)} detections; max Δt {max_dt:.3f} s, max Δscore {max_ds:.3f}",
            "yes" if not ddiffs and r86[0] == 0 and rarm[0] == 0 else f"no ({len(rows) - n_same} files)",
            r86[3], rarm[3],
        ))

    if not args.no_detect:
        detect()

    sentence = "turn on the kitchen lights"
    r86, rarm = both(f"parse {sentence!r}", ["parse", sentence], "parse")
    def parsed(r):
        """The parse result without its timing, which differs between any two runs."""
        try:
            p = json.loads(r[1].splitlines()[0]) if r[0] == 0 else None
        except (json.JSONDecodeError, IndexError):
            return None
        if p is not None:
            p.pop("elapsed_ms", None)
        return p
    p86, parm = parsed(r86), parsed(rarm)
    same = p86 is not None and p86 == parm
    if not same:
        diffs.append(f"parse: x86-64 {r86[1].strip()!r} vs aarch64 {rarm[1].strip()!r}")
    brief = lambda p: "(failed)" if p is None else p.get("intent") or json.dumps(p)[:60]
    table.append((f'`parse "{sentence}"`', brief(p86), brief(parm), "yes" if same else "no", r86[3], rarm[3]))

    for r in rec:
        wav = fixtures / r
        key = r.replace("/", "_").removesuffix(".wav")
        r86, rarm = both(f"run --input {r}", ["run", "--config", str(config), "--input", str(wav)], key)
        a = published(r86[1]) if r86[0] == 0 else None
        b = published(rarm[1]) if rarm[0] == 0 else None
        d = compare_run(a, b)
        diffs += [f"{r}: {x}" for x in d]
        table.append((f"`run` {r}", summary(a), summary(b), "yes" if not d else "no", r86[3], rarm[3]))

    print("| command | x86-64 | aarch64 (qemu) | same | x86-64 s | aarch64 s (emulated) |")
    print("|---|---|---|---|---|---|")
    for cmd, x, y, same, t86, tarm in table:
        print(f"| {cmd} | {x} | {y} | {same} | {t86:.1f} | {tarm:.1f} |")
    print()
    print(f"{sum(1 for t in table if t[3] == 'yes')} of {len(table)} commands give the same result; raw outputs in {out}")
    if diffs:
        print("\nDifferences:")
        for d in diffs:
            print(f"- {d}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
