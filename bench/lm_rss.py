#!/usr/bin/env python3
"""Peak RSS of the daemon with the language model on, in ~3 minutes instead of bench/run.py's ~10
(and the model path's latency, for A/B runs of model sets one after another):
bench/run.py's language-model run alone (same config, the `lm` utterances of
bench/make_benchset.py, the same /proc VmHWM sampling), plus where each process's memory sits
(/proc/PID/smaps at its highest, by mapping).

    $SOTTO_VENV/bin/python bench/lm_rss.py [--n N] [--extra 'TOML appended to the config'] [--sotto BIN]

`--extra` tries another model set, e.g. `--extra '[models]\\nprofile = "tiny"'`.
"""
import argparse
import json
import os
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as br  # noqa: E402
import sotto_run as sr  # noqa: E402


def by_mapping(pid):
    """Resident KiB of each mapping's file name ([anon], [heap], a library, a model file)."""
    out, cur = {}, None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                parts = line.split()
                if "-" in parts[0] and not parts[0].endswith(":"):
                    cur = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
                elif parts[0] == "Rss:":
                    out[cur] = out.get(cur, 0) + int(parts[1])
    except OSError:
        return None
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=0, help="first N utterances of the lm set (default all)")
    ap.add_argument("--extra", default="", help="TOML appended to the benchmark's config (\\n for newlines)")
    ap.add_argument("--lm-adapter", default="gemma3-270m-sotto-lora")
    ap.add_argument("--sotto", default=os.path.join(br.RELEASE, "sotto"))
    ap.add_argument("--utterances", default=os.path.join(br.CACHE, "bench", "utterances.json"))
    args = ap.parse_args()
    sr.end_on_exit()
    with open(args.utterances) as f:
        lm = [e for e in json.load(f) if e["set"] == "lm"]
    lm = lm[: args.n] if args.n else lm
    extra = "\n" + args.extra.replace("\\n", "\n") + "\n"

    highest, stop, pid = {}, threading.Event(), {}

    class Daemon(sr.Daemon):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            pid["root"] = self.proc.pid

    def sample():
        while not stop.is_set():
            for p in sr.proc_tree(pid["root"]) if "root" in pid else []:
                s = sr.proc_sample(p)
                maps = by_mapping(p) if s and s[0] != "?" else None
                if maps and sum(maps.values()) > sum(highest.get(s[0], {}).values()):
                    highest[s[0]] = maps
            stop.wait(0.5)

    sr.Daemon = Daemon
    threading.Thread(target=sample, daemon=True).start()
    broker = sr.Broker(None)
    try:
        res = br.sotto_commands(args, broker, lm, True, tempfile.mkdtemp(prefix="sotto-lm-rss-"), "lmrss", extra)
    finally:
        stop.set()
        broker.close()
    peak = res["peak_rss_mib"]
    correct = sum(1 for u in res["utterances"] if u.get("correct"))
    # A wrong action (something published that is not what was asked) is a different failure from
    # a miss ("sorry, I didn't catch that"): counted apart.
    wrong = sum(1 for u in res["utterances"] if u.get("responded") == "action" and not u.get("correct"))
    print(f"{len(lm)} utterances, {correct} correct, {wrong} wrong actions, {len(lm) - correct - wrong} missed")
    print("peak RSS MiB: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(peak.items())) + f"; total {sum(peak.values()):.1f}")
    print(f"highest resident at once (sum of VmRSS in one sample): {res['peak_rss_at_once_mib']:.1f} MiB")
    s = br.latency_summary(res["utterances"], "lm")
    if s:
        print(f"model path: {s['n']} acted on by the model; p50 from the endpoint {s['e2e_p50_ms']:.0f} ms, from the "
              f"speech's real end {s['from_speech_end_p50_ms']:.0f} ms; speech-to-text compute p50 "
              f"{s['stage_p50_ms']['stt_compute']:.0f} ms, intents p50 {s['stage_p50_ms']['intent']:.0f} ms")
    for name, maps in sorted(highest.items()):
        top = sorted(maps.items(), key=lambda kv: -kv[1])[:6]
        print(f"  {name} at its highest: " + ", ".join(f"{k} {v / 1024:.1f}" for k, v in top))


if __name__ == "__main__":
    main()
