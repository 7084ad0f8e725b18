#!/usr/bin/env python3
"""Soak benchmark: an hour (by default) of mixed audio streamed through the full daemon faster than
real time, with the daemon's and its workers' memory and open file descriptors sampled every second.
Run by a person, not by the test suite.

    python3 tools/soak.py [--hours 1] [--speed 10] [--seed 7] [--out DIR] [--port 1883 | --embedded]

The audio is built from the committed fixtures and the barista set (read-only): a wake word and a
command every 20-40 s (`tests/fixtures/audio/pos_*`, and the confirmation dialogues with "yes"/"no"),
with barista speech that never says a wake word, kitchen noise, white noise, negative fixtures and
silence in between. It is piped as raw PCM into `sotto run` with `[audio] source = "stdin"`, `--speed`
times faster than real time, so the daemon runs its live path (ring buffer, front-end thread, session
loop, workers, MQTT) rather than the file path that loads a whole recording into memory. Like
`sotto run --input`, the feed waits after each command until its session has ended (`--no-wait` turns
that off), so a slow transcription on a busy machine delays the run instead of dropping commands.

Every MQTT message of the run's site is collected from the broker (Mosquitto on 127.0.0.1:1883 by
default, or the embedded one). A session counts as answered when it publishes an intent (and its
action), `intentNotRecognized`, or ends with `error` or `abortedByUser`. Sessions are matched to the
commands sent by where their wake word was heard in the stream (the daemon's `wake word … time_s=` log
line), so false wakes on the filler and missed wake words are counted separately. Crashes are a
non-zero daemon exit plus worker failures other than requests killed after `stt.timeout_s` (counted
apart).

Writes `soak.json` and `soak.md` into `--out` (default `~/.cache/sotto/soak/<UTC time>`) and prints the
Markdown. Needs `sox` and `mosquitto_sub`, and the release build (`cargo build --release --workspace`).
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
BARISTA = "/work/shared/data/barista"
RATE = 16000
BYTES_PER_S = RATE * 2
# Commands whose whole dialogue is in one recording. The confirm-only recordings (stop press one with
# no answer) are left out: they wait for a wall-clock timeout that a faster-than-real-time run skews.
COMMAND_EXCLUDE = {"pos_jarvis_factory_stop.wav", "jarvis_factory_stop_silence.wav"}
WARM_UP_FRACTION = 0.1


def sox_pcm(path, *effects):
    """16 kHz mono s16le PCM of any audio file, through sox with optional effects."""
    out = subprocess.run(["sox", path, "-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed", "-b", "16", "-",
                          *effects], capture_output=True, check=True)
    return out.stdout


def sox_synth(seconds, kind, volume):
    out = subprocess.run(["sox", "-n", "-t", "raw", "-r", str(RATE), "-c", "1", "-e", "signed", "-b", "16", "-",
                          "synth", f"{seconds:.2f}", kind, "vol", str(volume)], capture_output=True, check=True)
    return out.stdout


def silence(seconds):
    return bytes(int(seconds * RATE) * 2)


def load_commands():
    """(file name, expected command text, PCM) of every usable command recording."""
    commands = []
    audio = json.load(open(os.path.join(FIXTURES, "audio", "manifest.json")))["fixtures"]
    for f in audio:
        if f.get("kind") == "positive" and f["file"] not in COMMAND_EXCLUDE and f["file"].startswith("pos_"):
            commands.append((f["file"], f["command"], sox_pcm(os.path.join(FIXTURES, "audio", f["file"]))))
    for f in json.load(open(os.path.join(FIXTURES, "dialogue", "manifest.json"))):
        if f["file"] not in COMMAND_EXCLUDE:
            commands.append((f["file"], " ".join(f["turns"][1:]), sox_pcm(os.path.join(FIXTURES, "dialogue", f["file"]))))
    if not commands:
        sys.exit("no command fixtures found")
    return commands


def build_audio(path, hours, seed):
    """Writes the mixed PCM to `path`; returns the list of commands sent, in order."""
    rng = random.Random(seed)
    commands = load_commands()
    barista_dir = os.path.join(BARISTA, "clean")
    barista = sorted(os.listdir(barista_dir))
    kitchen = sox_pcm(os.path.join(BARISTA, "noise_kitchen.wav"), "vol", "0.4")
    negatives = [sox_pcm(os.path.join(FIXTURES, "audio", n)) for n in sorted(os.listdir(os.path.join(FIXTURES, "audio")))
                 if n.startswith("neg_") and n.endswith(".wav")]
    barista_cache = {}

    def filler(seconds):
        """Audio without a wake word: barista orders, noise, negatives, silence, in random order."""
        parts, total = [], 0.0
        while total < seconds:
            kind = rng.choice(["barista", "barista", "kitchen", "white", "negative", "silence"])
            if kind == "barista":
                name = rng.choice(barista)
                if name not in barista_cache:
                    barista_cache[name] = sox_pcm(os.path.join(barista_dir, name))
                pcm = barista_cache[name]
            elif kind == "kitchen":
                length = int(rng.uniform(4, 12) * BYTES_PER_S) & ~1
                start = rng.randrange(0, len(kitchen) - length) & ~1
                pcm = kitchen[start:start + length]
            elif kind == "white":
                pcm = sox_synth(rng.uniform(2, 5), "whitenoise", 0.05)
            elif kind == "negative":
                pcm = rng.choice(negatives)
            else:
                pcm = silence(rng.uniform(2, 8))
            parts.append(pcm + silence(0.5))
            total += len(parts[-1]) / BYTES_PER_S
        # Cut to length (mid-clip is fine: none of it holds a wake word) to keep the command rhythm.
        return b"".join(parts)[:int(seconds * RATE) * 2]

    sent, position = [], 0.0
    with open(path, "wb") as out:
        out.write(silence(3.0))
        position = 3.0
        while position < hours * 3600:
            name, text, pcm = rng.choice(commands)
            sent.append({"file": name, "text": text, "at_s": round(position, 2), "len_s": round(len(pcm) / BYTES_PER_S, 2)})
            # Silence after the command closes its endpoint before anything else is heard.
            block = pcm + silence(2.0)
            gap = rng.uniform(20, 40) - len(block) / BYTES_PER_S
            block += filler(max(gap, 1.0))
            out.write(block)
            position += len(block) / BYTES_PER_S
    return sent, position


def proc_sample(pid):
    """(RSS KiB, open fds) of a live process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return rss, len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None


def children(pid):
    """{pid: command name} of the direct children of `pid` (the workers)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read()
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        if int(rest.split()[1]) == pid:
            found[int(entry)] = head.partition("(")[2]
    return found


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WAKE_LINE = re.compile(r"wake word .*?time_s=([0-9.]+).*?session=(\S+)")
WORKER_FAILURE = re.compile(r"worker failure .*?cause=(.*)")


def collect_sessions(messages, site):
    """Sessions by id, in the order they started, with what they published."""
    sessions, order = {}, []
    for m in messages:
        p = m["payload"] if isinstance(m["payload"], dict) else {}
        sid = p.get("sessionId")
        if p.get("siteId") not in (None, site) or not sid:
            continue
        s = sessions.get(sid)
        if s is None:
            s = sessions[sid] = {"id": sid, "texts": [], "intent": None, "not_recognized": False, "ended": None}
            order.append(s)
        topic = m["topic"]
        if topic == "hermes/asr/textCaptured":
            s["texts"].append(p.get("text", ""))
        elif topic.startswith("hermes/intent/"):
            s["intent"] = topic[len("hermes/intent/"):]
        elif topic == "hermes/nlu/intentNotRecognized":
            s["not_recognized"] = True
        elif topic == "hermes/dialogueManager/sessionEnded":
            s["ended"] = (p.get("termination") or {}).get("reason")
    for s in order:
        # An answer is an action (intent), a "not understood", or an explicit error or
        # cancellation; a session that simply timed out without speech is not one.
        s["answered"] = bool(s["intent"] or s["not_recognized"] or s["ended"] in ("error", "abortedByUser"))
    return order


def match_commands(sent, sessions, log_lines):
    """Pairs each session with the command during which its wake word was heard, from the daemon's
    `wake word … time_s=… session=…` log lines (audio time of the stream). Returns the sessions
    that fall in no command (false wakes on the filler)."""
    wake_at = {m.group(2): float(m.group(1)) for m in map(WAKE_LINE.search, log_lines) if m}
    by_id = {s["id"]: s for s in sessions}
    extra = []
    for s in sessions:
        t = wake_at.get(s["id"])
        command = next((c for c in sent if t is not None and c["at_s"] <= t <= c["at_s"] + c["len_s"] + 1.0), None)
        if command is None or command.get("session"):
            extra.append(s)
            continue
        command.update(session=s["id"], answered=s["answered"], transcript=" ".join(s["texts"]),
                       intent=s["intent"], ended=s["ended"])
    return extra


def worker_failures(log_lines):
    """(timeouts, crashes) among the supervisor's `worker failure` lines."""
    causes = [m.group(1) for m in map(WORKER_FAILURE.search, log_lines) if m]
    timeouts = sum(1 for c in causes if "did not answer" in c)
    return timeouts, len(causes) - timeouts


def summarise(samples, sent, sessions, extra, actions, exit_code, stats_line, args, audio_s, wall_s, failures):
    answered = sum(1 for c in sent if c.get("answered"))
    heard = sum(1 for c in sent if c.get("session"))
    warm_end = None
    if sent:
        # Warm-up (caches, pools, allocator arenas filling) ends after the first tenth of the
        # commands, at least three, have been handled.
        first = sent[min(max(int(len(sent) * WARM_UP_FRACTION), 3), len(sent)) - 1]
        cutoff = first["at_s"] + first["len_s"] + 2.0
        warm_end = next((s for s in samples if s["audio_s"] >= cutoff), None)
    after = [s for s in samples if warm_end and s["t"] >= warm_end["t"]]
    last = samples[-1] if samples else None

    def mib(kib):
        return round(kib / 1024, 1) if kib is not None else None

    def slope(key):
        """Least-squares growth of `key` (KiB) per audio hour over the samples after warm-up."""
        pts = [(s["audio_s"] / 3600, s[key]) for s in after if s.get(key) is not None]
        if len(pts) < 2:
            return None
        mx = sum(x for x, _ in pts) / len(pts)
        my = sum(y for _, y in pts) / len(pts)
        den = sum((x - mx) ** 2 for x, _ in pts)
        return round(sum((x - mx) * (y - my) for x, y in pts) / den / 1024, 1) if den else None

    keys = sorted({k[:-4] for s in samples for k in s if k.endswith("_rss")})
    processes = {}
    for k in keys:
        processes[k] = {
            "rss_after_warm_up_mib": mib(warm_end.get(f"{k}_rss")) if warm_end else None,
            "rss_last_mib": mib(next((s[f"{k}_rss"] for s in reversed(samples) if s.get(f"{k}_rss") is not None), None)),
            "rss_max_after_warm_up_mib": mib(max((s[f"{k}_rss"] for s in after if s.get(f"{k}_rss") is not None), default=None)),
            "rss_growth_mib_per_audio_hour": slope(f"{k}_rss"),
            "fds_max": max((s[f"{k}_fds"] for s in samples if s.get(f"{k}_fds") is not None), default=None),
        }
    return {
        "command": " ".join(sys.argv),
        "audio_hours": round(audio_s / 3600, 3),
        "wall_s": round(wall_s, 1),
        "speed": args.speed,
        "seed": args.seed,
        "commands_sent": len(sent),
        "commands_heard": heard,
        "commands_answered": answered,
        "sessions": len(sessions),
        "sessions_not_matching_a_command": len(extra),
        "extra_sessions_answered": sum(1 for s in extra if s["answered"]),
        "actions_published": actions,
        "session_end_reasons": {r: sum(1 for s in sessions if s["ended"] == r) for r in sorted({str(s["ended"]) for s in sessions})},
        "daemon_exit_code": exit_code,
        "worker_timeouts": failures[0],
        "worker_crashes": failures[1],
        "crashes": int(exit_code != 0) + failures[1],
        "paced": not args.no_wait,
        "stt_timeout_s": args.stt_timeout,
        "warm_up_ends_at_audio_s": warm_end["audio_s"] if warm_end else None,
        "samples": len(samples),
        "processes": processes,
        "events_dropped_busy": int(m.group(1)) if stats_line and (m := re.search(r"events_dropped_busy: (\d+)", stats_line)) else None,
        "daemon_stats": stats_line,
        "missed": [c for c in sent if not c.get("answered")][:50],
    }


def markdown(summary):
    s = summary
    lines = [
        f"# Soak run: {s['audio_hours']} h of audio in {s['wall_s']:.0f} s "
        f"({s['audio_hours'] * 3600 / s['wall_s']:.1f}x real time overall; {s['speed']}x between commands)",
        "",
        f"`{s['command']}`",
        "",
        f"- commands answered / sent: **{s['commands_answered']} / {s['commands_sent']}** "
        f"(wake word heard for {s['commands_heard']})",
        f"- sessions: {s['sessions']}, of which {s['sessions_not_matching_a_command']} not matching a sent command "
        f"(false wakes or misheard commands); actions published: {s['actions_published']}",
        f"- session end reasons: {s['session_end_reasons']}; audio events dropped while the pipeline was busy: "
        f"{s['events_dropped_busy']}",
        f"- crashes: **{s['crashes']}** (daemon exit code {s['daemon_exit_code']}, worker crashes {s['worker_crashes']}; "
        f"worker requests over the {s['stt_timeout_s']} s timeout, killed and restarted: {s['worker_timeouts']})",
        f"- pacing: {'the feed waits for each command' + chr(39) + 's session to end, else' if s['paced'] else 'free-running at'} "
        f"{s['speed']}x real time",
        f"- warm-up: until {s['warm_up_ends_at_audio_s']} s of audio; {s['samples']} samples, one per second",
        "",
        "| process | RSS after warm-up | RSS last | RSS max after warm-up | growth per audio hour | max open fds |",
        "|---|---|---|---|---|---|",
    ]
    for name, p in s["processes"].items():
        lines.append(f"| {name} | {p['rss_after_warm_up_mib']} MiB | {p['rss_last_mib']} MiB | "
                     f"{p['rss_max_after_warm_up_mib']} MiB | {p['rss_growth_mib_per_audio_hour']} MiB | {p['fds_max']} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sotto/target"))
    ap.add_argument("--sotto", default=os.path.join(target, "release", "sotto"))
    ap.add_argument("--hours", type=float, default=1.0, help="length of the audio (default 1)")
    ap.add_argument("--speed", type=float, default=10.0, help="times faster than real time (default 10)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=1883, help="Mosquitto on 127.0.0.1 (default 1883)")
    ap.add_argument("--embedded", action="store_true", help="use the daemon's embedded broker instead")
    ap.add_argument("--slm", action="store_true", help="turn the language-model fallback on (a second worker)")
    ap.add_argument("--no-wait", action="store_true",
                    help="do not wait for each command's session to end before streaming on (on a loaded machine "
                         "commands then arrive while the previous one is still transcribed, and are dropped)")
    ap.add_argument("--stt-timeout", type=float, default=60.0,
                    help="stt.timeout_s of the run (default 60: a loaded machine must not turn into timeouts)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    for tool in ("sox", "mosquitto_sub"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing (Debian packages sox, mosquitto-clients)")
    if not os.path.exists(args.sotto):
        sys.exit(f"{args.sotto} is missing: cargo build --release --workspace")

    out_dir = args.out or os.path.join(os.environ.get("SOTTO_CACHE", os.path.expanduser("~/.cache/sotto")), "soak",
                                       time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    os.makedirs(out_dir, exist_ok=True)
    pcm_path = os.path.join(out_dir, "soak.s16le")
    print(f"building {args.hours} h of audio in {pcm_path} ...", file=sys.stderr)
    sent, audio_s = build_audio(pcm_path, args.hours, args.seed)
    print(f"{len(sent)} commands in {audio_s:.0f} s of audio", file=sys.stderr)

    site = f"soak-{os.getpid()}"
    port = free_port() if args.embedded else args.port
    config = os.path.join(out_dir, "soak.toml")
    with open(config, "w") as f:
        f.write(f'[audio]\nsource = "stdin"\n[slm]\nenabled = {str(args.slm).lower()}\n[stt]\ntimeout_s = {args.stt_timeout}\n'
                f'[[wake.models]]\nname = "hey_jarvis"\n[[wake.models]]\nname = "alexa"\n'
                f'[mqtt]\nbroker = "{"embedded" if args.embedded else "external"}"\nport = {port}\nsite_id = "{site}"\n'
                f'queue_capacity = 1000\n')

    env = dict(os.environ, NO_COLOR="1", RUST_LOG=os.environ.get("RUST_LOG", "info,rumqttd=warn,rumqttd::server::broker=off"))
    env.setdefault("SOTTO_WORKER_DIR", os.path.dirname(args.sotto))
    log = open(os.path.join(out_dir, "sotto.log"), "w")
    daemon = subprocess.Popen([args.sotto, "run", "--config", config], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, text=False)
    ready = threading.Event()
    stats_line, log_lines = [], []

    def read_log():
        for raw in daemon.stderr:
            line = raw.decode("utf-8", "replace")
            log.write(line)
            if "wake word" in line or "worker failure" in line:
                log_lines.append(line)
            if "sotto ready" in line:
                ready.set()
            if "sotto stopped" in line:
                stats_line.append(line.strip())
        log.flush()

    threading.Thread(target=read_log, daemon=True).start()
    if not ready.wait(180):
        daemon.kill()
        sys.exit(f"the daemon was not ready within 180 s; see {out_dir}/sotto.log")
    time.sleep(1.0)  # the embedded broker and the MQTT connection come up with "ready"

    messages = []
    sub = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-V", "mqttv5", "-h", "127.0.0.1", "-p", str(port),
                            "-q", "1", "-F", "%j", "-t", "hermes/#", "-t", f"sotto/{site}/#"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def read_mqtt():
        for line in sub.stdout:
            try:
                raw = json.loads(line)
            except ValueError:
                continue
            payload = raw.get("payload", "")
            try:
                payload = json.loads(payload)
            except (TypeError, ValueError):
                pass
            messages.append({"topic": raw.get("topic", ""), "payload": payload, "t": time.monotonic()})

    threading.Thread(target=read_mqtt, daemon=True).start()
    time.sleep(1.0)

    samples, fed = [], [0]
    start = time.monotonic()
    done = threading.Event()
    seen_workers = {}

    def sample():
        while not done.is_set():
            row = {"t": round(time.monotonic() - start, 2), "audio_s": round(fed[0] / BYTES_PER_S, 1)}
            d = proc_sample(daemon.pid)
            if d:
                row["daemon_rss"], row["daemon_fds"] = d
            for pid, name in children(daemon.pid).items():
                seen_workers.setdefault(name, set()).add(pid)
                w = proc_sample(pid)
                if w:
                    key = name.replace("sotto-", "").replace("-worke", "").replace("-worker", "")
                    row[f"{key}_rss"], row[f"{key}_fds"] = w
            samples.append(row)
            done.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    chunk = int(BYTES_PER_S * 0.1)
    # Where each command's block (recording + 2 s of silence) ends in the stream.
    waits = [int((c["at_s"] + c["len_s"] + 2.0) * BYTES_PER_S) for c in sent]
    paused = [0.0]

    def wait_for_session(command):
        """Like `--input FILE`: waits until the session of the wake word heard during `command`
        has ended. The wake word may sit in the daemon's event queue behind a slow transcription,
        so it counts as missed only once no session is open and none has ended for 3 s."""
        began = time.monotonic()
        window = (command["at_s"], command["at_s"] + command["len_s"] + 1.0)
        deadline = began + args.stt_timeout * 4 + 30
        while time.monotonic() < deadline:
            wakes = [m for m in map(WAKE_LINE.search, list(log_lines)) if m]
            mine = next((m.group(2) for m in wakes if window[0] <= float(m.group(1)) <= window[1]), None)
            started, ended = {}, {}
            for m in list(messages):
                p = m["payload"] if isinstance(m["payload"], dict) else {}
                if p.get("siteId") == site and p.get("sessionId"):
                    if m["topic"] == "hermes/dialogueManager/sessionStarted":
                        started[p["sessionId"]] = m["t"]
                    elif m["topic"] == "hermes/dialogueManager/sessionEnded":
                        ended[p["sessionId"]] = m["t"]
            if mine is not None and mine in ended:
                break
            last_end = max(ended.values(), default=began)
            idle = set(started) <= set(ended)
            if mine is None and idle and time.monotonic() - max(last_end, began) > 3.0:
                break
            time.sleep(0.05)
        paused[0] += time.monotonic() - began

    try:
        with open(pcm_path, "rb") as pcm:
            while True:
                block = pcm.read(chunk)
                if not block:
                    break
                daemon.stdin.write(block)
                daemon.stdin.flush()
                fed[0] += len(block)
                if waits and fed[0] >= waits[0]:
                    command = sent[len(sent) - len(waits)]
                    waits.pop(0)
                    if not args.no_wait:
                        wait_for_session(command)
                lag = fed[0] / BYTES_PER_S / args.speed - (time.monotonic() - start - paused[0])
                if lag > 0:
                    time.sleep(lag)
        # Trailing silence lets the last command's session end before the input does.
        daemon.stdin.write(silence(10.0))
        daemon.stdin.close()
    except BrokenPipeError:
        print("the daemon closed its input early", file=sys.stderr)
    exit_code = daemon.wait()
    wall_s = time.monotonic() - start
    done.set()
    sampler.join()
    time.sleep(2.0)
    sub.send_signal(signal.SIGTERM)
    sub.wait()

    sessions = collect_sessions(messages, site)
    extra = match_commands(sent, sessions, log_lines)
    actions = sum(1 for m in messages if m["topic"].startswith(f"sotto/{site}/")
                  and m["topic"].rsplit("/", 1)[-1] not in ("status", "confirm"))
    summary = summarise(samples, sent, sessions, extra, actions, exit_code, stats_line[0] if stats_line else None,
                        args, audio_s, wall_s, worker_failures(log_lines))
    summary["worker_pids"] = {name: sorted(pids) for name, pids in seen_workers.items()}
    with open(os.path.join(out_dir, "soak.json"), "w") as f:
        json.dump({"summary": summary, "sent": sent, "samples": samples}, f, indent=1)
    text = markdown(summary)
    with open(os.path.join(out_dir, "soak.md"), "w") as f:
        f.write(text)
    os.remove(pcm_path)
    print(text)
    print(f"details: {out_dir}/soak.json, log: {out_dir}/sotto.log")
    return 0 if exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
