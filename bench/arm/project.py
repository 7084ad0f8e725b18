#!/usr/bin/env python3
"""ARM projection: instruction counts of Sotto's STT and SLM stages (valgrind callgrind, 1 thread),
scaled by whisper.cpp's published Raspberry Pi 5 encoder time. Run by bench/arm/project.sh.

    python3 project.py --sotto BIN --workers DIR --command WAV --fallback WAV --out DIR

1. Capture: `sotto run --input WAV` (the daemon, natively, embedded broker) with its workers behind a
   tee, so the exact requests it sends (endpointed audio, vocabulary prompt, SLM prompts) are recorded.
2. Replay each recorded request to the worker under `valgrind --tool=callgrind` with 1 thread (this
   driver speaks the worker protocol itself, so the 50x slow-down meets no request timeout), and read
   the inclusive instruction counts of the functions that do the work:
   (a) whisper.cpp's encoder (`whisper_encode_internal`) on a full 30 s window (the command's request
       with audio_ctx = 1500: what whisper.cpp's `bench` times);
   (b) the whole transcription (`whisper_full_with_state`) of the command as the daemon sends it
       (encoder context sized to the utterance, vocabulary prompt);
   (c) every request of one language-model fallback (the worker's `Engine::handle`).
3. Projected Raspberry Pi 5 time of a stage = published Pi 5 base encoder time x (stage / (a)).

With `--method time` step 2 replays the same requests natively instead (1 thread, one warm-up replay,
then the median of `--repeats` replays; a full-window transcription without the prompt stands in for
(a): its decoding of the few words is about 5% of the encoder's work). Minutes instead of an hour of
a free core, but wall time on a shared machine: run it idle.
"""
import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

MAGIC, VERSION, PREFIX = b"SOTW", 1, struct.Struct("<4sHII")
# whisper.cpp's own benchmark table, Raspberry Pi 5 (BCM2712, active cooler, Bookworm, NEON,
# 4 threads), model base, commit 54c978c, 2023-11-03.
PI5 = {"encode_ms": 2479.82, "decode_ms": 346.65, "threads": 4, "model": "base", "whisper_cpp_commit": "54c978c",
       "source": "https://github.com/ggml-org/whisper.cpp/issues/89 (comment by nickovs, 2023-11-03)"}
WORKERS = {"stt": "sotto-stt-worker", "slm": "sotto-slm-worker"}


def log(msg):
    print(f"arm: {msg}", file=sys.stderr, flush=True)


def read_frames(data):
    """Frames (header dict, body bytes) of a captured byte stream."""
    frames, pos = [], 0
    while pos + PREFIX.size <= len(data):
        magic, _, hlen, blen = PREFIX.unpack_from(data, pos)
        if magic != MAGIC:
            raise SystemExit(f"captured stream: bad magic at byte {pos}")
        pos += PREFIX.size
        header = json.loads(data[pos:pos + hlen])
        frames.append((header, data[pos + hlen:pos + hlen + blen]))
        pos += hlen + blen
    return frames


def write_frame(pipe, header, body=b""):
    h = json.dumps(header).encode()
    pipe.write(PREFIX.pack(MAGIC, VERSION, len(h), len(body)) + h + body)
    pipe.flush()


def read_frame(pipe):
    prefix = pipe.read(PREFIX.size)
    if len(prefix) < PREFIX.size:
        return None
    magic, _, hlen, blen = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise SystemExit(f"worker wrote {prefix!r} instead of a frame")
    return json.loads(pipe.read(hlen)), pipe.read(blen)


def capture(sotto, workers, wav, config, cap_dir):
    """Runs the daemon on one recording with tee'd workers; returns {worker: [request frames]}."""
    shim = tempfile.mkdtemp(prefix="sotto-arm-shim-")
    for name in WORKERS.values():
        path = os.path.join(shim, name)
        with open(path, "w") as f:
            f.write(f'#!/bin/sh\ntee -a "{cap_dir}/{name}.in" | "{workers}/{name}" "$@"\n')
        os.chmod(path, 0o755)
    env = dict(os.environ, SOTTO_WORKER_DIR=shim, RUST_LOG="warn")
    r = subprocess.run([sotto, "run", "--config", config, "--input", wav], env=env, capture_output=True, text=True)
    shutil.rmtree(shim)
    if r.returncode != 0:
        raise SystemExit(f"sotto run --input {wav} failed:\n{r.stderr[-3000:]}")
    out = {}
    for kind, name in WORKERS.items():
        path = os.path.join(cap_dir, f"{name}.in")
        if os.path.exists(path):
            with open(path, "rb") as f:
                reqs = [(h, b) for h, b in read_frames(f.read()) if h["request"]["type"] not in ("ping", "shutdown")]
            os.remove(path)
            out[kind] = reqs
    return out, r.stdout


def start_worker(cmd, worker_bin, under=""):
    """Starts a worker process and waits for its hello frame."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    hello = read_frame(p.stdout)
    if not hello or hello[0].get("type") != "hello":
        raise SystemExit(f"{worker_bin}: no hello{under} ({hello and hello[0]})")
    return p


def send_all(p, worker_bin, requests, first_id=1, under=""):
    """Sends `requests` one at a time, each after the previous reply; returns the replies."""
    replies = []
    for i, (header, body) in enumerate(requests, first_id):
        write_frame(p.stdin, dict(header, id=i), body)
        reply = read_frame(p.stdout)
        if reply is None:
            raise SystemExit(f"{worker_bin}: died{under} on request {i}")
        replies.append(reply[0]["reply"])
    return replies


def callgrind(worker_bin, model, requests, out_file):
    """Replays requests to one worker under callgrind (1 thread), or natively when `out_file` is None
    (to read the replies of a reused count); returns the replies and wall time."""
    cmd = [worker_bin, "--model", model, "--threads", "1"]
    if out_file:
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}"] + cmd
        log(f"callgrind: {os.path.basename(worker_bin)}, {len(requests)} request(s) (slow: ~100x)")
    t0 = time.time()
    p = start_worker(cmd, worker_bin, " under valgrind")
    replies = send_all(p, worker_bin, requests, under=" under valgrind")
    p.stdin.close()
    p.wait()
    return replies, time.time() - t0


def split_warm_up(requests):
    """The daemon's language-model warm-up (priors on the empty request, then one constrained token)
    and the fallback's own requests, in capture order."""
    for i, (header, _) in enumerate(requests):
        r = header["request"]
        if r["type"] == "generate" and r.get("max_tokens") == 1:
            return requests[:i + 1], requests[i + 1:]
    return [], requests


def native_times(worker_bin, model, requests, repeats, warm_up=()):
    """Replays `requests` natively to one worker (1 thread) after `warm_up` (sent once) and one
    untimed replay, then `repeats` timed ones. Returns the seconds of each timed replay and the
    replies of the last."""
    p = start_worker([worker_bin, "--model", model, "--threads", "1"], worker_bin)
    send_all(p, worker_bin, warm_up, first_id=10_001)
    times, replies = [], []
    for replay in range(repeats + 1):
        t0 = time.perf_counter()
        replies = send_all(p, worker_bin, requests)
        if replay:
            times.append(time.perf_counter() - t0)
    p.stdin.close()
    p.wait()
    return times, replies


def time_projection(args, stt_bin, stt_model, slm_model, stt_req, full, fb_reqs, audio_s):
    """Projection by native time ratios (see the module doc)."""
    full_plain = (dict(full[0], request=dict(full[0]["request"], options=dict(full[0]["request"]["options"], initial_prompt=None))), full[1])
    warm, own = split_warm_up(fb_reqs["slm"])
    stages = {"a": (stt_bin, stt_model, [full_plain], []), "b": (stt_bin, stt_model, [stt_req], []),
              "c": (os.path.join(args.workers, WORKERS["slm"]), slm_model, own, warm)}
    measured = {}
    for k, (worker, model, reqs, warm_up) in stages.items():
        log(f"timing stage {k} natively: {len(reqs)} request(s) x {args.repeats}")
        times, replies = native_times(worker, model, reqs, args.repeats, warm_up)
        measured[k] = {"median_ms": round(statistics.median(times) * 1e3, 1), "min_ms": round(min(times) * 1e3, 1),
                       "max_ms": round(max(times) * 1e3, 1), "n": len(times), "reply": replies[0]}
    a = measured["a"]["median_ms"]

    def projected(k):
        return round(measured[k]["median_ms"] * PI5["encode_ms"] / a)
    b_reply = measured["b"]["reply"]
    return {
        "measured": {
            "what": "wall time of the worker requests, replayed natively on this x86-64 machine with 1 thread "
                    f"(median of {args.repeats} after one warm-up; min and max beside it)",
            "host_cpu": platform.processor() or platform.machine(),
            "command_wav": os.path.abspath(args.command), "command_audio_s": round(audio_s, 3),
            "command_transcript": b_reply.get("text"), "b_audio_ctx": (b_reply.get("timings") or {}).get("audio_ctx"),
            "fallback_wav": os.path.abspath(args.fallback),
            "slm_requests": [h["request"]["type"] for h, _ in own],
            "slm_warm_up_requests": [h["request"]["type"] for h, _ in warm],
            "a_full_window_transcription_no_prompt_ms": {kk: v for kk, v in measured["a"].items() if kk != "reply"},
            "b_sized_stt_ms": {kk: v for kk, v in measured["b"].items() if kk != "reply"},
            "c_slm_fallback_ms": {kk: v for kk, v in measured["c"].items() if kk != "reply"},
        },
        "published": PI5,
        "projected_pi5_ms": {"stt_command": projected("b"), "stt_full_window_plain": round(PI5["encode_ms"]),
                             "slm_fallback": projected("c")},
        "method": "time: Pi 5 ms = published Pi 5 base encoder ms (4 threads) x stage time / full-window transcription "
                  "time (no prompt; its few decoded tokens are ~5% of the encoder's work), both timed here with 1 "
                  "thread. Assumes the Pi 5 runs each stage at the relative speed this machine does (same ggml "
                  "kernel classes, AVX vs NEON) and that 4 threads speed each stage up alike. Projected, not measured.",
    }


def time_markdown(p):
    m, pub, pr = p["measured"], p["published"], p["projected_pi5_ms"]
    ms = lambda d: f"{d['median_ms']:.0f} ms (min {d['min_ms']:.0f}, max {d['max_ms']:.0f}, n {d['n']})"
    return f"""## ARM projection (Raspberry Pi 5)

**Measured** (`bench/arm/project.sh "" "" --method time`, the daemon's own requests replayed natively on this
x86-64 machine, 1 thread): a full 30 s window without prompt {ms(m["a_full_window_transcription_no_prompt_ms"])};
Sotto's STT worker on a {m["command_audio_s"]:.1f} s command as the daemon sends it (audio context
{m["b_audio_ctx"]}, vocabulary prompt) {ms(m["b_sized_stt_ms"])}; the language-model worker on one fallback
({", ".join(m["slm_requests"])}, after the daemon's warm-up requests: {", ".join(m["slm_warm_up_requests"])})
{ms(m["c_slm_fallback_ms"])}.

**Published**: whisper.cpp's base encoder on a Raspberry Pi 5 (4 threads, NEON, commit
{pub["whisper_cpp_commit"]}) takes {pub["encode_ms"]:.0f} ms ({pub["source"]}).

**Projected**, not measured: Pi 5 time of a stage = {pub["encode_ms"]:.0f} ms x stage time / full-window time:
speech-to-text of the command **~{pr["stt_command"]} ms** (plain whisper.cpp with the full window: ~{pr["stt_full_window_plain"]} ms),
language-model fallback **~{pr["slm_fallback"]} ms**. This assumes the Pi 5 runs each stage at the speed relative to the
encoder that this machine does, and that its 4 threads speed every stage up alike; the decoder's small
matrix products and the 4-bit language-model kernels may scale differently, and whisper.cpp has changed since
that published run. The instruction-count method (`--method callgrind`, the default) removes the timing
noise but needs about an hour of a free core. Treat these as estimates to be replaced by a measurement on
the board.
"""


def inclusive(out_file, names):
    """Inclusive instruction counts (Ir) of the named functions, and the program total."""
    text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", out_file],
                          capture_output=True, text=True, check=True).stdout
    total = None
    found = {}
    for line in text.splitlines():
        m = re.match(r"\s*([\d,]+)\s+(?:\([\d.]+%\)\s+)?(.*)$", line)
        if not m:
            continue
        ir, rest = int(m.group(1).replace(",", "")), m.group(2)
        if "PROGRAM TOTALS" in rest:
            total = ir
        for key, pattern in names.items():
            if key not in found and re.search(pattern, rest):
                found[key] = ir
    missing = [k for k in names if k not in found]
    if missing:
        raise SystemExit(f"{out_file}: no function matching {[names[k] for k in missing]} in callgrind_annotate")
    return found, total


def markdown(p):
    m, pub, pr = p["measured"], p["published"], p["projected_pi5_ms"]

    def g(ir):
        return f"{ir / 1e9:.2f} G instructions" if ir else "(not counted in this run)"

    def proj(v):
        return f"~{v} ms" if v is not None else "(not projected: the full-window count is missing)"
    return f"""## ARM projection (Raspberry Pi 5)

**Measured** (`bench/arm/project.sh`, valgrind callgrind on this x86-64 machine, 1 thread; instruction
counts are repeatable under load): whisper.cpp base encoding a full 30 s window
{g(m["a_full_window_encoder_ir"])}; Sotto's STT worker on a {m["command_audio_s"]:.1f} s command as
the daemon sends it (audio context {m["b_audio_ctx"]}, vocabulary prompt; encoder and decoder)
{g(m["b_sized_stt_ir"])}; the language-model worker on one fallback ({", ".join(m["slm_requests"])})
{g(m["c_slm_fallback_ir"])}.

**Published**: whisper.cpp's base encoder on a Raspberry Pi 5 (4 threads, NEON, commit
{pub["whisper_cpp_commit"]}) takes {pub["encode_ms"]:.0f} ms ({pub["source"]}).

**Projected**, not measured: Pi 5 time of a stage = {pub["encode_ms"]:.0f} ms x stage instructions / full-window
encoder instructions: speech-to-text of the command **{proj(pr["stt_command"])}** (plain whisper.cpp with the full
window: {proj(pr["stt_full_window_plain"])}), language-model fallback **{proj(pr["slm_fallback"])}**. This assumes the
Pi 5 runs each stage's instructions at the rate it runs whisper.cpp's encoder and that the ratios carry over
from AVX2 to NEON code; the decoder's small matrix products and the 4-bit language-model kernels may run at
other rates, and whisper.cpp has changed since that published run. Treat these as estimates to be replaced
by a measurement on the board.
"""


def write_projection(out, proj, text, work):
    """projection.json and projection.md into `out`; removes the capture directory."""
    with open(os.path.join(out, "projection.json"), "w") as f:
        json.dump(proj, f, indent=1)
    with open(os.path.join(out, "projection.md"), "w") as f:
        f.write(text)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(proj["projected_pi5_ms"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sotto", required=True)
    ap.add_argument("--workers", required=True, help="directory of sotto-stt-worker and sotto-slm-worker")
    ap.add_argument("--stt-worker", required=True, help="STT worker built for valgrind (AVX2, no AVX-512)")
    ap.add_argument("--models", required=True)
    ap.add_argument("--command", required=True, help="recording with a command the grammar resolves")
    ap.add_argument("--fallback", required=True, help="recording the grammar misses (language-model fallback)")
    ap.add_argument("--config", required=True, help="daemon config with [slm] enabled = true, embedded broker")
    ap.add_argument("--slm-model", default="gemma-3-270m-q4_k_m.gguf")
    ap.add_argument("--out", required=True)
    ap.add_argument("--stages", default="a,b,c", help="which counts to take (a: full window, b: command, c: SLM)")
    ap.add_argument("--keep", required=True, help="directory for the callgrind outputs; existing ones are reused")
    ap.add_argument("--method", choices=["callgrind", "time"], default="callgrind",
                    help="instruction counts (about an hour of a free core) or native time ratios (minutes; run idle)")
    ap.add_argument("--repeats", type=int, default=5, help="--method time: timed replays per stage")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sotto-arm-")
    stt_model = os.path.join(args.models, "ggml-whisper-base.bin")
    slm_model = os.path.join(args.models, args.slm_model)

    cmd_reqs, cmd_out = capture(args.sotto, args.workers, args.command, args.config, work)
    fb_reqs, fb_out = capture(args.sotto, args.workers, args.fallback, args.config, work)
    if not cmd_reqs.get("stt"):
        raise SystemExit(f"{args.command}: the daemon sent no transcription (wake word missed?)\n{cmd_out}")
    if not fb_reqs.get("slm"):
        raise SystemExit(f"{args.fallback}: the daemon sent no language-model request (grammar resolved it?)\n{fb_out}")
    stt_req = cmd_reqs["stt"][0]
    audio_s = len(stt_req[1]) / 4 / 16000
    full = (dict(stt_req[0], request=dict(stt_req[0]["request"],
                                          options=dict(stt_req[0]["request"]["options"], audio_ctx=1500))), stt_req[1])

    if args.method == "time":
        proj = time_projection(args, os.path.join(args.workers, WORKERS["stt"]), stt_model, slm_model, stt_req, full, fb_reqs, audio_s)
        write_projection(args.out, proj, time_markdown(proj), work)
        return

    # Function names as callgrind_annotate prints them ("file:name(args) [object]"); the lambdas inside
    # whisper_full_with_state ("whisper_full_with_state::{lambda") do not match.
    stt_fns = {"encode": r"[:\s]whisper_encode_internal\(", "transcribe": r"[:\s]whisper_full_with_state(\s|\[|$)"}
    stages = {
        "a": (args.stt_worker, stt_model, [full], stt_fns),
        "b": (args.stt_worker, stt_model, [stt_req], stt_fns),
        "c": (os.path.join(args.workers, WORKERS["slm"]), slm_model, fb_reqs["slm"],
              {"requests": r"sotto_slm_worker::engine::Engine::handle(\s|\[|$)"}),
    }
    wanted = [k for k in args.stages.split(",") if k]
    os.makedirs(args.keep, exist_ok=True)
    # The replays are independent and single-threaded: run them side by side. A stage whose
    # callgrind output is already in --keep (a previous run) is read, not rerun.
    ir, meta = {}, {}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        jobs = {}
        for k in wanted:
            worker, model, reqs, _ = stages[k]
            out = os.path.join(args.keep, f"{k}.callgrind")
            reuse = os.path.exists(out) and os.path.getsize(out) > 0
            if reuse:
                log(f"stage {k}: reusing {out}")
            jobs[k] = (reuse, pool.submit(callgrind, worker, model, reqs, None if reuse else out))
        for k, (reuse, job) in jobs.items():
            try:
                replies, wall = job.result()
                meta[k] = {"reply": replies[0]} if reuse else {"callgrind_wall_s": round(wall, 1), "reply": replies[0]}
            except (SystemExit, OSError) as e:
                meta[k] = {"error": str(e)}
    for k in wanted:
        out = os.path.join(args.keep, f"{k}.callgrind")
        if os.path.exists(out) and os.path.getsize(out) > 0 and "error" not in meta.get(k, {}):
            found, total = inclusive(out, stages[k][3])
            ir[k] = dict(found, process_total=total)
    a_enc = ir.get("a", {}).get("encode")
    b_reply = meta.get("b", {}).get("reply") or {}

    def projected(count):
        return round(count * PI5["encode_ms"] / a_enc) if a_enc and count else None

    proj = {
        "measured": {
            "what": "instructions (valgrind callgrind, x86-64 build with ggml's AVX2 kernels, 1 thread), "
                    "inclusive of the named functions; null = not counted in this run",
            "command_wav": os.path.abspath(args.command), "command_audio_s": round(audio_s, 3),
            "command_transcript": b_reply.get("text"), "b_audio_ctx": (b_reply.get("timings") or {}).get("audio_ctx"),
            "fallback_wav": os.path.abspath(args.fallback),
            "slm_requests": [h["request"]["type"] for h, _ in fb_reqs["slm"]],
            "a_full_window_encoder_ir": a_enc, "a_full_window_transcription_ir": ir.get("a", {}).get("transcribe"),
            "b_sized_stt_ir": ir.get("b", {}).get("transcribe"), "b_sized_encoder_ir": ir.get("b", {}).get("encode"),
            "c_slm_fallback_ir": ir.get("c", {}).get("requests"),
            "process_totals_ir": {k: v["process_total"] for k, v in ir.items()},
            "stages": {k: {kk: vv for kk, vv in m.items() if kk != "reply"} for k, m in meta.items()},
        },
        "published": PI5,
        "projected_pi5_ms": {
            "stt_command": projected(ir.get("b", {}).get("transcribe")),
            "stt_full_window_plain": projected(ir.get("a", {}).get("transcribe")),
            "slm_fallback": projected(ir.get("c", {}).get("requests")),
        },
        "method": "Pi 5 ms = published Pi 5 base encoder ms (4 threads) x stage instructions / full-window encoder "
                  "instructions, both counted here on x86-64 with 1 thread. Assumes the Pi 5 retires the stage's "
                  "work at the same rate as whisper.cpp's encoder (same ggml kernels class; the SLM's 4-bit "
                  "kernels and the decoder's small matrices may run at other rates) and that instruction ratios "
                  "carry over from AVX2 to NEON. Projected, not measured.",
    }
    write_projection(args.out, proj, markdown(proj), work)


if __name__ == "__main__":
    main()
