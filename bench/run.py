#!/usr/bin/env python3
"""The whole benchmark in one run: Sotto and its peers on the same utterances, then
bench/results/latest.json, bench/REPORT.md and bench/plots/*.png. Started by tools/bench.sh.

    python3 bench/run.py [--quick] [--repeat N] [--idle-s S] [--no-peers] [--broker HOST:PORT]

Sotto is measured as deployed: `sotto run` against a Mosquitto broker, a subscriber timestamping
each message on arrival. Per utterance: the endpoint decision (from the daemon's `latency` line),
the action's arrival on the broker, and the stages between (speech-to-text, intents, MQTT); the
trailing-silence wait and the wake-word delay in stream time against the synthesis's known speech
ends. CPU time and peak RSS come from /proc of the daemon's process tree. Output format:
bench/SCHEMA.md.
"""
import argparse
import datetime
import json
import re
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import sotto_run as sr  # noqa: E402

CACHE = os.environ.get("SOTTO_CACHE", os.path.expanduser("~/.cache/sotto"))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(CACHE, "target"))
RELEASE = os.path.join(TARGET, "release")
BARISTA = os.environ.get("SOTTO_BARISTA", "/work/shared/data/barista")
LM_WARM_UP_LEAD_S = 20.0
SR = 16000


def is_action(topic, site):
    """Actions go to the domains' topics (under sotto/<site>/ for the shipped ones); Hermes events,
    the status, the confirmation question and the metrics are not actions."""
    return (not topic.startswith(("hermes/", "sotto-bench/", f"sotto/{site}/metrics"))
            and topic not in (f"sotto/{site}/status", f"sotto/{site}/confirm"))


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values, p):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def spread_stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "n": len(values)}


def slots_match(expected, got):
    for k, want in expected.items():
        have = got.get(k)
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            try:
                if abs(float(have) - float(want)) > 1e-6:
                    return False
            except (TypeError, ValueError):
                return False
        elif str(have).lower() != str(want).lower():
            return False
    return True


def score(entry, intent, slots):
    if entry["kind"] == "negative":
        return intent is None
    if entry.get("expected_intent") is None:
        return None
    return intent == entry["expected_intent"] and slots_match(entry.get("expected_slots", {}), slots)


# ---------------------------------------------------------------- Sotto: commands through the daemon

def concatenate(entries, path, lead_s=0.0):
    """One stream of all utterances (file input waits for each session), after `lead_s` of silence:
    offsets in seconds."""
    at = int(lead_s * SR)
    pcm, offsets = [np.zeros(at, dtype=np.int16)], []
    for e in entries:
        x = sr.read_wav16(e["file"])
        offsets.append(at / SR)
        pcm.append(x)
        at += len(x)
    sr.write_wav16(path, np.concatenate(pcm))
    return offsets, at / SR


def which_entry(offsets, t):
    i = 0
    for j, off in enumerate(offsets):
        if off <= t:
            i = j
    return i


def hermes_slots(payload):
    try:
        msg = json.loads(payload)
    except ValueError:
        return {}
    return {s.get("slotName"): (s.get("value") or {}).get("value") for s in msg.get("slots", [])}


def sotto_commands(args, broker, entries, slm, tmp, tag, extra_config=""):
    """Runs `sotto run --input` on all `entries` in one stream; per-utterance results + process figures.
    `extra_config`: TOML appended to the benchmark's config (another model set, say)."""
    wav = os.path.join(tmp, f"{tag}.wav")
    # With the language model on, the daemon warms it up in the background after start (priors,
    # grammar engine: seconds); a deployed daemon has long finished that when a command comes, so
    # the stream starts with silence that covers it (its duration is reported).
    lead_s = LM_WARM_UP_LEAD_S if slm else 0.0
    offsets, audio_s = concatenate(entries, wav, lead_s)
    audio_s -= lead_s
    site = f"bench-{tag}-{os.getpid()}"
    config = os.path.join(tmp, f"{tag}.toml")
    with open(config, "w") as f:
        adapter = f'adapter = "{args.lm_adapter}"\n' if slm and args.lm_adapter != "none" else ""
        f.write(sr.config_text(broker, site, slm, adapter) + extra_config)
    # At the recorded speed, as from a microphone: what happens during the trailing silence
    # (speculative speech-to-text) counts as it would live. Each command is still handled before
    # the audio after it.
    d = sr.Daemon(args.sotto, config, ["--input", wav, "--realtime"])
    online = broker.wait_for(f"sotto/{site}/status", "online", d.spawned, timeout=120)
    d.wait(timeout=120 + 30 * len(entries))
    cpu_serving = d.monitor.cpu_total() - (d.cpu_at_ready or 0.0)
    results = [{"file": e["file"], "kind": e["kind"], "set": e["set"], "audio_s": round(len(sr.read_wav16(e["file"])) / SR, 3),
                "wake_detected": False, "transcript": "", "intent": None, "slots": {}, "stage_ms": {},
                "end_of_speech_to_action_ms": None, "responded": None} for e in entries]
    for t, f in d.named("wake word"):
        if "time_s" not in f:
            # Another line about a wake word ("wake word during a confirmation: …"), not a detection.
            continue
        i = which_entry(offsets, float(f["time_s"]))
        r, e = results[i], entries[i]
        r["wake_detected"] = True
        if e.get("wake_end_s") is not None:
            r["stage_ms"]["wake"] = round((float(f["time_s"]) - offsets[i] - e["wake_end_s"]) * 1000, 1)
    # One `sotto/<site>/metrics/command` message per handled command (the daemon's CommandReport,
    # see daemon/src/dialogue/report.rs), timestamped on arrival like the actions.
    latencies = [(t, json.loads(p)) for t, top, p in broker.messages if top == f"sotto/{site}/metrics/command"]
    t0s = [t - float(f["end_of_speech_to_action_ms"]) / 1000 for t, f in latencies]
    for k, (t, f) in enumerate(latencies):
        i = which_entry(offsets, float(f["utterance_end_s"]) - 1e-3)
        r, e = results[i], entries[i]
        t0, t_next = t0s[k], t0s[k + 1] if k + 1 < len(t0s) else float("inf")
        window = [(tm, top, p) for tm, top, p in broker.messages if t0 - 0.005 <= tm < t_next]
        action = next(((tm, top) for tm, top, _ in window if is_action(top, site)), None)
        captured = next((p for tm, top, p in window if top == "hermes/asr/textCaptured"), None)
        not_understood = next((tm for tm, top, _ in window if top == "hermes/nlu/intentNotRecognized"), None)
        intent_msg = next((p for tm, top, p in window if top.startswith("hermes/intent/")), None)
        r["transcript"] = json.loads(captured).get("text", "") if captured else ""
        r["intent"] = f.get("intent")
        r["resolver"] = {"grammar": "grammar", "slm": "lm"}.get(f.get("resolver"), None)
        r["slots"] = hermes_slots(intent_msg) if intent_msg else {}
        # stt: waited for after the endpoint; stt_compute: the transcription's own time (longer
        # when it started speculatively at a pause).
        r["stage_ms"].update({"stt": float(f["stt_ms"]), "stt_compute": float(f.get("stt_compute_ms", f["stt_ms"])),
                              "intent": float(f["intents_ms"])})
        r["speculative_stt"] = bool(f.get("speculative"))
        r["early"] = bool(f.get("early"))
        if e.get("speech_end_s") is not None:
            # The decision falls after the silence waited past the last speech the VAD saw: what the
            # daemon reports for an utterance a pause had reported (an early decision at the pause, or
            # the full silence), else trailing_silence_ms (within one 32 ms window). How late the VAD
            # saw speech end is measured in stream time.
            lag = (float(f["utterance_end_s"]) - offsets[i] - e["speech_end_s"]) * 1000
            waited = f.get("endpoint_wait_ms")
            r["stage_ms"]["vad_end_lag"] = round(lag, 1)
            r["stage_ms"]["endpoint"] = round(lag + (float(waited) if waited is not None else sr.TRAILING_SILENCE_MS), 1)
        r["action_handed_to_mqtt_ms"] = float(f["end_of_speech_to_action_ms"])
        if action:
            r["end_of_speech_to_action_ms"] = round((action[0] - t0) * 1000, 1)
            r["stage_ms"]["publish"] = round((action[0] - t) * 1000, 2)
            r["action_topic"] = action[1]
            r["responded"] = "action"
        elif not_understood:
            r["response_ms"] = round((not_understood - t0) * 1000, 1)
            r["responded"] = "not_recognized"
    for r, e in zip(results, entries):
        r["correct"] = score(e, r["intent"], r["slots"])
    return {"utterances": results, "audio_s": audio_s, "serving_cpu_s": cpu_serving,
            "serving_cpu_s_per_audio_s": cpu_serving / audio_s, "peak_rss_mib": dict(d.monitor.peak_mib),
            "peak_rss_at_once_mib": d.monitor.peak_at_once_mib,
            # Ready = engines loaded and listening; `online` is published when MQTT connects, before that.
            "cold_start_s": next((t - d.spawned for t, _ in d.named("sotto ready")), None),
            "online_s": (online - d.spawned) if online else None,
            "lm_warm_up_ms": next((float(f["took_ms"]) for _, f in d.named("language model warmed up")), None)}


def sotto_idle(args, broker, tmp):
    """Idle listening: speech without a wake word streamed in real time through stdin (160 ms writes, as
    a capture callback delivers), CPU of the whole tree from ready to the end of the stream."""
    files = sorted(os.path.join(BARISTA, "clean", f) for f in os.listdir(os.path.join(BARISTA, "clean")) if f.endswith(".wav"))
    pcm, total, pcm_files = [], 0, []
    for f in files:
        pcm_files.append(f)
        x = sr.read_wav16(f)
        pcm.append(x)
        total += len(x)
        if total >= args.idle_s * SR:
            break
    pcm = np.concatenate(pcm)[: int(args.idle_s * SR)]
    site = f"bench-idle-{os.getpid()}"
    config = os.path.join(tmp, "idle.toml")
    with open(config, "w") as f:
        f.write(sr.config_text(broker, site, False, '\n[audio]\nsource = "stdin"\n'))
    d = sr.Daemon(args.sotto, config, [], stdin=subprocess.PIPE)
    if not d.ready.wait(180):
        raise RuntimeError("sotto (stdin) not ready after 180 s")
    block = SR * 160 // 1000
    start = time.monotonic()
    cpu0 = d.monitor.cpu_total()
    for k in range(0, len(pcm), block):
        d.proc.stdin.buffer.write(pcm[k:k + block].astype("<i2").tobytes())  # text-mode pipe: raw PCM via .buffer
        d.proc.stdin.flush()
        delay = start + (k + block) / SR - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.5)
    d.monitor.sample()
    cpu = d.monitor.cpu_total() - cpu0
    d.proc.stdin.close()
    d.wait(timeout=60)
    wakes = sum(1 for _, f in d.named("wake word") if "time_s" in f)
    return {"audio_s": len(pcm) / SR, "cpu_s": cpu, "idle_cpu_s_per_audio_s": cpu / (len(pcm) / SR),
            "false_wakes": wakes, "peak_rss_mib": dict(d.monitor.peak_mib), "files": len(pcm_files)}


# ---------------------------------------------------------------- accuracy and wake word

def run_json_lines(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")], out.stdout


def barista_accuracy(args):
    levels = args.barista_levels or ("clean,12" if args.quick else "clean,6,9,12,15,18,21,24")
    env = dict(os.environ, SOTTO_WORKER_DIR=RELEASE)
    out = subprocess.run([os.path.join(RELEASE, "examples", "barista_speech"), "--snr", levels],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"barista_speech failed:\n{out.stderr[-2000:]}")
    rows = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and (parts[0] == "clean" or parts[0].lstrip("-").isdigit()):
            rows[parts[0]] = {"files": int(parts[1]), "accept_pct": float(parts[2]),
                              # last column: also counting second-pass readings the daemon confirms by a yes
                              "accept_with_confirm_pct": float(parts[-1]) if len(parts) >= 7 else None}
    return {"levels": rows, "command": f"barista_speech --snr {levels}"}


def textset_accuracy():
    out = subprocess.run([os.path.join(RELEASE, "examples", "evaluate")], capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"evaluate failed:\n{out.stderr[-2000:]}")
    # Rows of the evaluate example's table: set, cases, exact %, wrong, missed, null→int, latency.
    row = re.compile(r"^(\S.*?)\s+(\d+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\d+)/(\d+)\s")
    rows = {}
    for line in out.stdout.splitlines():
        m = row.match(line)
        if m:
            rows[m.group(1)] = {"cases": int(m.group(2)), "exact_pct": float(m.group(3)), "wrong": int(m.group(4)),
                                "missed": int(m.group(5)), "null_given_intent": int(m.group(6)),
                                "null_cases": int(m.group(7))}
    if not rows:
        raise RuntimeError(f"evaluate printed no table rows:\n{out.stdout[-2000:]}")
    return rows


def wake_figures(args, idle_audio_dir):
    bench = os.path.join(RELEASE, "examples", "wake_bench")
    manifest = os.path.join(ROOT, "tests", "fixtures", "audio", "manifest.json")
    fa, _ = run_json_lines([bench, "false-accepts", "--positives", manifest, "--negatives", os.path.join(BARISTA, "clean")])
    at_default = next((r for r in fa if abs(r["threshold"] - 0.5) < 1e-6), None)
    rust, _ = run_json_lines([bench, "throughput", idle_audio_dir])
    py = None
    venv_py = os.path.join(os.environ.get("SOTTO_VENV", os.path.join(CACHE, "venv")), "bin", "python")
    if os.path.exists(venv_py):
        py, _ = run_json_lines([venv_py, os.path.join(ROOT, "tools", "oww_bench.py"), idle_audio_dir])
    return {"false_accepts_at_0_5": at_default, "throughput_sotto": rust, "throughput_python_oww": py}


# ---------------------------------------------------------------- peers

def run_peers(args, broker, utterances_path, tmp):
    """bench/peers/run_peers.py once with --repeat N (each utterance N times, field `repeat`), on our
    broker and the same idle audio length; returns (peer results, reason they were skipped)."""
    script = os.path.join(HERE, "peers", "run_peers.py")
    if args.no_peers or not os.path.exists(script):
        return [], ("skipped (--no-peers)" if args.no_peers else f"{script} not present")
    out = os.path.join(tmp, "peers.json")
    cmd = [sys.executable, script, "--utterances", utterances_path, "--out", out, "--repeat", str(args.repeat),
           "--idle-audio", os.path.join(BARISTA, "clean"), "--idle-seconds", str(args.idle_s),
           "--mqtt", f"{broker.host}:{broker.port}"]
    log(" ".join(cmd))
    res = subprocess.run(cmd, text=True, stderr=subprocess.PIPE)
    if res.returncode != 0 or not os.path.exists(out):
        return [], f"run_peers.py exited with {res.returncode}: {res.stderr[-1500:]}"
    sys.stderr.write(res.stderr[-3000:])
    try:
        with open(out) as f:
            data = json.load(f)
    except ValueError as err:
        return [], f"{out}: not JSON: {err}"
    return (data if isinstance(data, list) else data.get("peers", [data])), None


def by_repeat(peers, repeats):
    """The peers' results split per repeat (their `repeat` field), as if run once per repeat."""
    return [{"peers": [dict(p, utterances=[u for u in p.get("utterances", []) if u.get("repeat", 0) == k]) for p in peers]}
            for k in range(repeats)]


# ---------------------------------------------------------------- summary

def latency_summary(utts, resolver=None):
    rows = [u for u in utts if u.get("end_of_speech_to_action_ms") is not None and (resolver is None or u.get("resolver", resolver) == resolver)]
    if not rows:
        return None
    col = lambda k: [u["stage_ms"].get(k) for u in rows]
    e2e = [u["end_of_speech_to_action_ms"] for u in rows]
    # From the speech's real end, per utterance: the silence waited (endpoint stage) plus the rest.
    real = [u["stage_ms"]["endpoint"] + u["end_of_speech_to_action_ms"] for u in rows if u["stage_ms"].get("endpoint") is not None]
    return {"n": len(rows), "e2e_p50_ms": percentile(e2e, 50), "e2e_p95_ms": percentile(e2e, 95),
            "from_speech_end_p50_ms": percentile(real, 50) if real else None,
            "from_speech_end_p95_ms": percentile(real, 95) if real else None,
            "early_decisions": sum(1 for u in rows if u.get("early")),
            "stage_p50_ms": {k: percentile(col(k), 50) for k in ("wake", "vad_end_lag", "endpoint", "stt", "stt_compute", "intent", "publish")},
            "stage_p95_ms": {k: percentile(col(k), 95) for k in ("wake", "vad_end_lag", "endpoint", "stt", "stt_compute", "intent", "publish")}}


def accuracy_of(utts):
    scored = [u["correct"] for u in utts if u.get("correct") is not None and u.get("kind") == "command"]
    negs = [u for u in utts if u.get("kind") == "negative"]
    cmds = [u for u in utts if u.get("kind") == "command"]
    return {"commands_correct_pct": 100 * sum(scored) / len(scored) if scored else None, "scored": len(scored),
            "wake_misses": sum(not u.get("wake_detected") for u in cmds), "commands": len(cmds),
            "negatives_woken": sum(bool(u.get("wake_detected")) for u in negs), "negatives": len(negs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer utterances, 60 s idle, barista clean + 12 dB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--idle-s", type=float, default=None, help="seconds of idle audio (default 600, --quick 60)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--lm-adapter", default="gemma3-270m-sotto-lora",
                    help="[slm] adapter of the language-model run: a store id or .gguf file; none = the base model, few-shot")
    ap.add_argument("--barista-levels", help="comma-separated SNRs and/or clean (default: all eight; --quick: clean,12)")
    ap.add_argument("--broker", help="HOST:PORT of an existing broker (default: a private mosquitto)")
    ap.add_argument("--sotto", default=os.path.join(RELEASE, "sotto"))
    ap.add_argument("--utterances", default=os.path.join(CACHE, "bench", "utterances.json"))
    ap.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    args = ap.parse_args()
    sr.end_on_exit()
    if args.idle_s is None:
        args.idle_s = 60.0 if args.quick else 600.0
    started = time.time()
    with open(args.utterances) as f:
        entries = json.load(f)
    grammar = [e for e in entries if e["set"] in ("grammar", "fixture")]
    lm = [e for e in entries if e["set"] == "lm"]
    tmp = tempfile.mkdtemp(prefix="sotto-bench-")
    broker = sr.Broker(args.broker)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_avg_start": os.getloadavg()},
              "args": {"quick": args.quick, "repeat": args.repeat, "lm_adapter": args.lm_adapter, "idle_s": args.idle_s, "barista_levels": args.barista_levels,
                       "broker": args.broker or "private mosquitto"},
              "utterance_sets": {"grammar+fixture": len(grammar), "lm": len(lm)}}
    try:
        runs = []
        # The set every peer runs on: the same files as Sotto's grammar and LM runs.
        peer_list = os.path.join(tmp, "utterances.json")
        with open(peer_list, "w") as f:
            json.dump(grammar + lm, f)
        for k in range(args.repeat):
            log(f"repeat {k + 1}/{args.repeat}: Sotto, {len(grammar)} utterances, grammar path (default profile)")
            g = sotto_commands(args, broker, grammar, False, tmp, f"grammar{k}")
            log(f"repeat {k + 1}: grammar p50 {percentile([u['end_of_speech_to_action_ms'] for u in g['utterances']], 50)} ms; "
                f"Sotto with [slm] enabled, {len(lm)} utterances")
            l = phase("language-model run", lambda: sotto_commands(args, broker, lm, True, tmp, f"lm{k}")) if lm else None
            if l and "error" in l:
                result.setdefault("errors", []).append(l["error"])
                l = None
            runs.append({"grammar": g, "lm": l})
        log("peers (bench/peers/run_peers.py), same utterances and repeats")
        peers, peers_skipped = run_peers(args, broker, peer_list, tmp)
        if peers_skipped:
            log(f"peers not run: {peers_skipped}")
        peer_runs = by_repeat(peers, args.repeat)
        log(f"idle listening: {args.idle_s:.0f} s of barista speech in real time through stdin")
        idle = phase("idle", lambda: sotto_idle(args, broker, tmp))
        idle_dir = os.path.join(tmp, "idle-audio")
        os.makedirs(idle_dir)
        files = sorted(f for f in os.listdir(os.path.join(BARISTA, "clean")) if f.endswith(".wav"))[: idle.get("files", 20)]
        for f in files:
            os.symlink(os.path.join(BARISTA, "clean", f), os.path.join(idle_dir, f))
        log("wake word: false accepts, throughput against Python openWakeWord")
        wake = phase("wake", lambda: wake_figures(args, idle_dir))
        log("accuracy: text set, barista speech")
        text = phase("text set", textset_accuracy)
        barista = phase("barista", lambda: barista_accuracy(args))
    finally:
        broker.close()

    sotto_utts = [u for r in runs for u in r["grammar"]["utterances"] + (r["lm"]["utterances"] if r["lm"] else [])]
    last = runs[-1]
    sotto = {"peer": "sotto", "versions": {"sotto": git_describe()},
             "utterances": last["grammar"]["utterances"] + (last["lm"]["utterances"] if last["lm"] else []),
             "idle_cpu_s_per_audio_s": idle.get("idle_cpu_s_per_audio_s"),
             "serving_cpu_s_per_audio_s": last["grammar"]["serving_cpu_s_per_audio_s"],
             "peak_rss_mib": with_total(last["grammar"]["peak_rss_mib"]),
             "peak_rss_mib_lm_enabled": with_total(last["lm"]["peak_rss_mib"]) if last["lm"] else None,
             "cold_start_s": last["grammar"]["cold_start_s"]}
    per_repeat = [{"grammar": latency_summary(r["grammar"]["utterances"], "grammar"),
                   "lm": latency_summary(r["lm"]["utterances"], "lm") if r["lm"] else None,
                   "serving_cpu_s_per_audio_s": r["grammar"]["serving_cpu_s_per_audio_s"],
                   "cold_start_s": r["grammar"]["cold_start_s"], "online_s": r["grammar"]["online_s"],
                   "lm_warm_up_ms": r["lm"]["lm_warm_up_ms"] if r["lm"] else None,
                   "peak_rss_total_mib": sum(r["grammar"]["peak_rss_mib"].values())} for r in runs]
    result.update({
        "sotto": sotto,
        "sotto_repeats": per_repeat,
        "sotto_summary": {
            "grammar": latency_summary([u for r in runs for u in r["grammar"]["utterances"]], "grammar"),
            "lm": latency_summary([u for r in runs if r["lm"] for u in r["lm"]["utterances"]], "lm"),
            "lm_run_any_resolver": latency_summary([u for r in runs if r["lm"] for u in r["lm"]["utterances"]]),
            "grammar_e2e_p50_over_repeats": spread_stats([p["grammar"]["e2e_p50_ms"] for p in per_repeat if p["grammar"]]),
            "lm_e2e_p50_over_repeats": spread_stats([p["lm"]["e2e_p50_ms"] for p in per_repeat if p["lm"]]),
            "accuracy": accuracy_of(sotto_utts),
            "lm_run_resolvers": count_by([u.get("resolver") for r in runs if r["lm"] for u in r["lm"]["utterances"]]),
        },
        "idle": idle,
        "wake": wake,
        "textset": text,
        "barista": barista,
        "peers": peers,
        "peers_skipped": peers_skipped,
        "peer_summary": peer_summary(peers, grammar, lm),
        "ratios": ratios(per_repeat, peer_runs, idle, wake, runs),
        "wall_s": round(time.time() - started, 1),
    })
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=float)
        f.write("\n")
    shutil.rmtree(tmp, ignore_errors=True)
    log(f"wrote {args.out} in {result['wall_s']:.0f} s")


def peer_summary(peers, grammar, lm):
    """Each peer's figures over all repeats, on the same sets as Sotto's runs."""
    out = {}
    sets = {"grammar": {e["file"] for e in grammar}, "lm": {e["file"] for e in lm}}
    for pr in [{"peers": peers}]:
        for peer in pr["peers"]:
            utts = [dict(u, stage_ms=u.get("stage_ms") or {}) for u in peer.get("utterances", [])]
            of = lambda name: [u for u in utts if u["file"] in sets[name]]
            out[peer.get("peer", "?")] = {
                "versions": peer.get("versions", {}),
                "grammar_set": latency_summary(of("grammar")), "lm_set": latency_summary(of("lm")),
                "accuracy": accuracy_of(utts),
                "idle_cpu_s_per_audio_s": peer.get("idle_cpu_s_per_audio_s"),
                "serving_cpu_s_per_audio_s": peer.get("serving_cpu_s_per_audio_s"),
                "peak_rss_mib": peer.get("peak_rss_mib") or {}, "cold_start_s": peer.get("cold_start_s")}
    return out


def phase(name, run):
    """One measurement whose failure is recorded in the results instead of losing the others."""
    try:
        return run()
    except Exception as err:  # noqa: BLE001 — any failure of one phase
        log(f"{name} failed: {err}")
        return {"error": f"{name}: {err}"}


def with_total(peaks):
    return dict(peaks, total=sum(peaks.values()))


def count_by(values):
    out = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def git_describe():
    out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


# A latency ratio compares stacks only when each served most of the same commands: a stack that
# went deaf after its third command would otherwise "win" on the few it answered.
MIN_SERVED_SHARE = 0.8


def served_share(utts):
    """Share of the spoken commands that got a response (an action or intentNotRecognized)."""
    cmds = [u for u in utts if u.get("kind") == "command"]
    return sum(u.get("end_of_speech_to_action_ms") is not None or u.get("responded") is not None for u in cmds) / len(cmds) if cmds else 0.0


def ratios(per_repeat, peer_runs, idle, wake, runs=None):
    """Peer ÷ Sotto from the same repeat (>1 = Sotto faster/leaner), min/median/max over repeats.
    No latency ratio for a repeat in which either stack served under MIN_SERVED_SHARE of the commands."""
    out = {}
    for k, pr in enumerate(peer_runs):
        mine = per_repeat[k]["grammar"]
        mine_served = served_share(runs[k]["grammar"]["utterances"]) if runs else 1.0
        for peer in pr["peers"]:
            name = peer.get("peer", "?")
            utts = [u for u in peer.get("utterances", []) if u.get("end_of_speech_to_action_ms") is not None and u.get("kind") == "command"]
            p50 = percentile([u["end_of_speech_to_action_ms"] for u in utts], 50)
            peer_served = served_share(peer.get("utterances", []))
            if min(mine_served, peer_served) < MIN_SERVED_SHARE:
                log(f"repeat {k + 1}: no latency ratio against {name}: served {mine_served:.0%} (sotto) / {peer_served:.0%} ({name}), "
                    f"under {MIN_SERVED_SHARE:.0%}")
            elif p50 and mine:
                out.setdefault(f"e2e_p50:{name}", []).append(p50 / mine["e2e_p50_ms"])
            if k > 0:
                continue  # idle CPU and RSS are measured once per run, not per repeat
            if peer.get("idle_cpu_s_per_audio_s"):
                if idle.get("idle_cpu_s_per_audio_s"):
                    out.setdefault(f"idle_cpu:{name}", []).append(peer["idle_cpu_s_per_audio_s"] / idle["idle_cpu_s_per_audio_s"])
            if peer.get("peak_rss_mib", {}).get("total"):
                out.setdefault(f"peak_rss:{name}", []).append(peer["peak_rss_mib"]["total"] / per_repeat[k]["peak_rss_total_mib"])
    py = (wake.get("throughput_python_oww") or [None])[0]
    for rust in wake.get("throughput_sotto") or []:
        if py and rust.get("rtf"):
            out[f"wake_cpu [{rust['mode']}]:python-openwakeword"] = [py["rtf"] / rust["rtf"]]
    return {k: spread_stats(v) for k, v in out.items()}


if __name__ == "__main__":
    main()
