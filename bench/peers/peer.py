"""One peer of the benchmark, run inside the peer venv by run_peers.py (one process per peer, so each
peer's peak RSS and cold start are its own).

    python peer.py --peer python-stack|pywhispercpp --job JOB.json --out RESULT.json

python-stack: the Home Assistant / Wyoming-style pipeline. Each utterance file is streamed in 80 ms
frames through openWakeWord (ONNX, Sotto's model files, Sotto's trigger rule: threshold, patience,
refractory), then Silero VAD (onnxruntime, Sotto's silero-vad.onnx) with Sotto's endpoint rule
(a port of audio/src/endpoint.rs), faster-whisper on the command, hassil on the transcript, and a
paho-mqtt publish (QoS 1) that a second client subscribed on the same broker timestamps on arrival.

pywhispercpp: plain whisper.cpp (full 30 s window, no vocabulary prompt) on the same ggml file,
transcribing each command's segment (the cut the python stack's endpointer made, passed in the job).

Stage times per utterance (milliseconds, wall clock):
  wake      mean openWakeWord compute per 80 ms frame over the file;
  endpoint  from the arrival of the frame that ended the trailing silence to the endpoint decision;
  stt, intent  the two calls;
  publish   from publish() to the subscriber receiving the message;
  end_of_speech_to_action_ms  from that frame's arrival to the subscriber receiving the message
  (the trailing silence itself, `trailing_silence_ms`, comes on top and is reported separately).
"""
import argparse
import json
import os
import re
import resource
import sys
import threading
import time
import uuid
import wave
from importlib.metadata import version

T_START = time.perf_counter()

import numpy as np  # noqa: E402

RATE = 16000
FRAME = 1280  # openWakeWord's 80 ms frame
VAD_WINDOW = 512  # Silero v4's 32 ms window
MS = RATE // 1000


# ---------------------------------------------------------------- audio

def read_wav(path):
    """16 kHz mono float32 in [-1, 1]; other rates and channel counts are converted."""
    try:
        with wave.open(path, "rb") as w:
            ch, rate, width, n = w.getnchannels(), w.getframerate(), w.getsampwidth(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise SystemExit(f"{path}: not a PCM WAV file the peers can read ({e})")
    if width != 2:
        raise SystemExit(f"{path}: {8 * width}-bit samples; the peers read 16-bit PCM WAV only")
    x = np.frombuffer(raw, dtype=np.int16).astype(np.float32) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    if rate != RATE:
        from math import gcd
        from scipy.signal import resample_poly
        g = gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g).astype(np.float32)
    return x


def to_int16(x):
    return np.clip(x * 32768.0, -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------- wake word

class Trigger:
    """Sotto's decision rule over one wake word's frame scores (audio/src/wake.rs `Trigger`)."""

    def __init__(self, threshold, patience, refractory_ms):
        self.threshold, self.patience, self.refractory = threshold, patience, refractory_ms * MS
        self.reset()

    def reset(self):
        self.run, self.armed, self.last_fire = 0, True, None

    def step(self, score, end_sample):
        if score < self.threshold:
            self.run, self.armed = 0, True
            return False
        self.run += 1
        rested = self.last_fire is None or end_sample - self.last_fire >= self.refractory
        if self.armed and self.run >= self.patience and rested:
            self.armed, self.last_fire = False, end_sample
            return True
        return False


class SileroVad:
    """Silero VAD v4 through onnxruntime: 512-sample windows, LSTM state carried between calls."""

    def __init__(self, path, threads):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        self.session = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.sr = np.array(RATE, dtype=np.int64)
        self.reset()

    def reset(self):
        self.h = np.zeros((2, 1, 64), dtype=np.float32)
        self.c = np.zeros((2, 1, 64), dtype=np.float32)

    def probability(self, window):
        out, self.h, self.c = self.session.run(
            ["output", "hn", "cn"], {"input": window.reshape(1, -1), "sr": self.sr, "h": self.h, "c": self.c})
        return float(out.reshape(-1)[0])


class Endpointer:
    """Port of Sotto's endpoint state machine (audio/src/endpoint.rs) with its default config:
    wake tail → waiting for speech → speech → utterance after the trailing silence."""

    def __init__(self, vad, cfg):
        self.vad, self.c = vad, cfg
        self.reset()

    def reset(self):
        self.state, self.audio, self.cursor = None, np.zeros(0, dtype=np.float32), 0
        self.vad.reset()

    def ms(self, v):
        return v * MS

    def wake(self, sample):
        if self.state is None:
            self.vad.reset()
            self.state, self.cursor = ("tail", sample, None, None), min(sample, len(self.audio))
            return self.advance()
        return None

    def feed(self, samples):
        self.audio = np.concatenate([self.audio, samples])
        return self.advance()

    def finish(self):
        if self.state and self.state[0] == "speech":
            _, wake, start, last = self.state
            if last - start >= self.ms(self.c["min_speech_ms"]):
                return self.cut(wake, start, last, len(self.audio))
        self.state = None
        return None

    def advance(self):
        while self.state is not None and self.cursor + VAD_WINDOW <= len(self.audio):
            w0, w1 = self.cursor, self.cursor + VAD_WINDOW
            p = self.vad.probability(self.audio[w0:w1])
            self.cursor = w1
            cut = self.step(p, w0, w1)
            if cut is not None:
                return cut
        return None

    def step(self, p, w0, w1):
        c, (kind, wake, start, last) = self.c, self.state
        if kind == "tail":
            if p < c["silence_threshold"]:
                self.state = ("waiting", wake, None, None)
            elif w1 - wake >= self.ms(c["wake_tail_ms"]):
                self.state = ("speech", wake, wake, w1)
        elif kind == "waiting":
            if p >= c["speech_threshold"]:
                self.state = ("speech", wake, w0, w1)
            elif w1 - wake >= self.ms(c["no_speech_timeout_ms"]):
                self.state = None
        else:
            last = w1 if p >= c["silence_threshold"] else last
            self.state = ("speech", wake, start, last)
            if w1 - start >= self.ms(c["max_utterance_ms"]):
                return self.cut(wake, start, w1, w1)
            if w1 - last >= self.ms(c["trailing_silence_ms"]):
                if last - start < self.ms(c["min_speech_ms"]):
                    self.state = None if w1 - wake >= self.ms(c["no_speech_timeout_ms"]) else ("waiting", wake, None, None)
                    return None
                return self.cut(wake, start, last, w1)
        return None

    def cut(self, wake, start, last, limit):
        """(first sample, end sample, stream sample at which the decision was made)."""
        start = max(start - self.ms(self.c["pre_roll_ms"]), wake)
        end = min(last, limit, len(self.audio))
        self.state = None
        return start, end, limit


ENDPOINT = dict(speech_threshold=0.5, silence_threshold=0.35, pre_roll_ms=64, trailing_silence_ms=700,
                min_speech_ms=90, max_utterance_ms=10000, no_speech_timeout_ms=4000, wake_tail_ms=400)


# ---------------------------------------------------------------- intents

def normalize(text):
    """Lower case, apostrophes dropped ("driver's" → "drivers"), other punctuation to spaces, as
    Sotto's matcher sees text; hassil then matches words exactly."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^\w%.]+|(?<!\d)\.|\.(?!\d)", " ", text).split())


class IntentRecognizer:
    def __init__(self, yaml_dir):
        import yaml
        from hassil import Intents
        merged = {"language": "en", "intents": {}, "lists": {}, "expansion_rules": {}}
        for name in sorted(os.listdir(yaml_dir)):
            if name.endswith(".yaml"):
                with open(os.path.join(yaml_dir, name)) as f:
                    d = yaml.safe_load(f)
                for key in ("intents", "lists", "expansion_rules"):
                    clash = set(merged[key]) & set(d.get(key, {}))
                    if clash:
                        raise SystemExit(f"{name}: {key} {sorted(clash)} already defined by another domain")
                    merged[key].update(d.get(key, {}))
        if not merged["intents"]:
            raise SystemExit(f"{yaml_dir}: no hassil YAML intents (run port_domains.py)")
        self.intents = Intents.from_dict(merged)

    def recognize(self, text):
        from hassil import recognize_best
        r = recognize_best(normalize(text), self.intents)
        if r is None:
            return None, {}
        slots = {k: v.value for k, v in r.entities.items()}
        meta = r.intent_metadata or {}
        for k, v in (meta.get("defaults") or {}).items():
            slots.setdefault(k, v)
        slots = {k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in slots.items()}
        return r.intent.name, slots


# ---------------------------------------------------------------- MQTT

class Broker:
    """A publisher and a subscriber on the same broker; `publish` returns the ms until arrival."""

    def __init__(self, host, port):
        import paho.mqtt.client as mqtt
        self.prefix = f"sotto-bench/peer-{uuid.uuid4().hex[:8]}"
        self.arrived, self.cond = {}, threading.Condition()
        self.pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.prefix.replace("/", "-") + "-pub")
        self.sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.prefix.replace("/", "-") + "-sub")
        subscribed = threading.Event()
        self.sub.on_message = self.on_message
        self.sub.on_subscribe = lambda *a: subscribed.set()
        for c in (self.pub, self.sub):
            try:
                c.connect(host, port, keepalive=30)
            except OSError as e:
                raise SystemExit(f"MQTT broker {host}:{port}: {e}")
            c.loop_start()
        self.sub.subscribe(self.prefix + "/#", qos=1)
        if not subscribed.wait(10):
            raise SystemExit(f"MQTT broker {host}:{port}: no SUBACK within 10 s")

    def on_message(self, client, userdata, msg):
        t = time.perf_counter()
        key = json.loads(msg.payload)["id"]
        with self.cond:
            self.arrived[key] = t
            self.cond.notify_all()

    def publish(self, topic, payload):
        key = uuid.uuid4().hex
        t0 = time.perf_counter()
        self.pub.publish(f"{self.prefix}/{topic}", json.dumps(dict(payload, id=key)), qos=1)
        with self.cond:
            if not self.cond.wait_for(lambda: key in self.arrived, timeout=10):
                raise SystemExit(f"MQTT: message on {self.prefix}/{topic} not received within 10 s")
            return self.arrived.pop(key), t0

    def close(self):
        for c in (self.pub, self.sub):
            c.loop_stop()
            c.disconnect()


# ---------------------------------------------------------------- peers

def peak_rss_mib():
    hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ms(t0, t1):
    return round((t1 - t0) * 1e3, 3)


def judge(u, intent, slots):
    """Correct when the expected intent and slots match (a negative: when nothing was understood);
    None when the utterance list gives no expectation."""
    if u.get("kind") == "negative":
        return intent is None
    if u.get("expected_intent") is None:
        return None
    if intent != u["expected_intent"]:
        return False
    want = u.get("expected_slots") or {}
    return all(k in slots and same_value(slots[k], v) for k, v in want.items())


def same_value(a, b):
    if all(isinstance(v, (int, float)) for v in (a, b)):
        return abs(float(a) - float(b)) < 1e-6
    return str(a).lower() == str(b).lower()


class PythonStack:
    def __init__(self, job):
        import faster_whisper
        import openwakeword
        m, threads = job["models"], job["threads"]
        self.wake_names = job["wake"]
        self.oww = openwakeword.Model(
            wakeword_models=[m[f"wake-{w}"] for w in self.wake_names], inference_framework="onnx",
            melspec_model_path=m["oww-melspectrogram"], embedding_model_path=m["oww-embedding"])
        self.keys = {w: os.path.splitext(os.path.basename(m[f"wake-{w}"]))[0] for w in self.wake_names}
        self.triggers = {w: Trigger(0.5, 2, 2000) for w in self.wake_names}
        self.endpointer = Endpointer(SileroVad(m["silero-vad"], 1), ENDPOINT)
        self.fw_opts = dict(language="en", beam_size=job["beam_size"], without_timestamps=True, vad_filter=False,
                            condition_on_previous_text=False)
        self.whisper = faster_whisper.WhisperModel(job["ct2_dir"], device="cpu", compute_type=job["compute_type"],
                                                   cpu_threads=threads)
        self.intents = IntentRecognizer(job["hassil_dir"])
        self.broker = Broker(job["mqtt_host"], job["mqtt_port"])

    def warm_up(self):
        """One pass of each engine, as a running service would have had: hassil builds its number
        lists lazily on first use (seconds for large ranges), faster-whisper allocates on first call."""
        self.transcribe(np.zeros(RATE, dtype=np.float32))
        for text in ("set a timer for ten minutes", "set the temperature to twenty one degrees",
                     "turn on the kitchen lights", "set the volume to forty percent"):
            self.intents.recognize(text)

    def transcribe(self, samples):
        segments, _ = self.whisper.transcribe(samples, **self.fw_opts)
        return " ".join(s.text.strip() for s in segments).strip()

    def reset(self):
        self.oww.reset()
        for t in self.triggers.values():
            t.reset()
        self.endpointer.reset()

    def wake_frame(self, frame_i16, end_sample):
        scores = self.oww.predict(frame_i16)
        fired = [w for w in self.wake_names if self.triggers[w].step(float(scores[self.keys[w]]), end_sample)]
        return fired

    def idle(self, audio):
        """CPU per audio second of wake-word listening alone (no endpointing runs without a wake)."""
        self.reset()
        pcm = to_int16(audio)
        fires, cpu0 = 0, time.process_time()
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            fires += len(self.wake_frame(pcm[i:i + FRAME], i + FRAME))
        return (time.process_time() - cpu0) / (len(pcm) / RATE), fires

    def run(self, u, audio):
        self.reset()
        pcm = to_int16(audio)
        wake_s, frames, woke, cut, t_frame, wake_at = 0.0, 0, False, None, None, None
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            t_frame = time.perf_counter()
            fired = self.wake_frame(pcm[i:i + FRAME], i + FRAME)
            wake_s += time.perf_counter() - t_frame
            frames += 1
            # As in Sotto's front end: the frame goes to the endpointer, then a detection starts
            # the command search from the end of the frame that fired.
            cut = self.endpointer.feed(audio[i:i + FRAME])
            if fired and not woke:
                woke, wake_at = True, i + FRAME
                cut = self.endpointer.wake(wake_at)
            if cut is not None:
                break
        if woke and cut is None:
            t_frame = time.perf_counter()
            cut = self.endpointer.finish()
        rec = {"wake_detected": woke, "transcript": "", "intent": None, "slots": {}, "segment": None,
               "stage_ms": {}, "end_of_speech_to_action_ms": None, "responded": None,
               "wake_compute_ms_per_frame": round(wake_s / max(frames, 1) * 1e3, 3)}
        # Audio-time delays, as the harness measures Sotto's (bench/SCHEMA.md): detection after the
        # end of the wake word, endpoint decision after the end of the command's speech.
        if woke and u.get("wake_end_s") is not None:
            rec["stage_ms"]["wake"] = round((wake_at / RATE - u["wake_end_s"]) * 1e3, 1)
        if cut is None:
            return rec
        if u.get("speech_end_s") is not None:
            rec["stage_ms"]["endpoint"] = round((cut[2] / RATE - u["speech_end_s"]) * 1e3, 1)
        t_cut = time.perf_counter()
        samples = audio[cut[0]:cut[1]]
        text = self.transcribe(samples)
        t_stt = time.perf_counter()
        intent, slots = self.intents.recognize(text)
        t_int = time.perf_counter()
        if intent is None:
            topic, payload = "nlu/intentNotRecognized", {"input": text}
        else:
            topic, payload = f"intent/{intent}", {"input": text, "intent": intent, "slots": slots}
        t_arr, t_pub = self.broker.publish(topic, payload)
        rec.update(transcript=text, intent=intent, slots=slots, segment=[int(cut[0]), int(cut[1])],
                   endpoint_compute_ms=ms(t_frame, t_cut))
        rec["stage_ms"].update(stt=ms(t_cut, t_stt), intent=ms(t_stt, t_int), publish=ms(t_pub, t_arr))
        # As for Sotto: end of speech → action only when an action is published; a "not understood"
        # answer is a response time.
        if intent is None:
            rec.update(responded="not_recognized", response_ms=ms(t_frame, t_arr))
        else:
            rec.update(responded="action", resolver="grammar", end_of_speech_to_action_ms=ms(t_frame, t_arr))
        return rec

    def close(self):
        self.broker.close()


class PyWhisperCpp:
    def __init__(self, job):
        from pywhispercpp.model import Model
        # whisper.cpp's defaults (full 30 s window, no prompt, greedy) apart from threads and language.
        self.model = Model(job["models"]["whisper-base"], n_threads=job["threads"], language="en",
                           print_progress=False, print_realtime=False, redirect_whispercpp_logs_to=None)

    def warm_up(self):
        self.transcribe(np.zeros(RATE, dtype=np.float32))

    def transcribe(self, samples):
        return " ".join(s.text.strip() for s in self.model.transcribe(samples)).strip()

    def run(self, u, audio):
        seg = u.get("segment")
        if not seg:
            raise ValueError("no command segment: the python stack's wake word or endpointer found none "
                             "(run pywhispercpp together with python-stack)")
        samples = audio[seg[0]:seg[1]]
        t0 = time.perf_counter()
        text = self.transcribe(samples)
        stt = ms(t0, time.perf_counter())
        # STT only: no wake word, endpointing, intents or MQTT stage (0 in the schema); its "end of
        # speech to result" is the transcription.
        return {"wake_detected": None, "transcript": text, "intent": None, "slots": {}, "segment": seg,
                "stage_ms": {"wake": 0.0, "endpoint": 0.0, "stt": stt, "intent": 0.0, "publish": 0.0},
                "end_of_speech_to_action_ms": stt, "stt_only": True, "stt_audio_s": round(len(samples) / RATE, 3)}

    def close(self):
        pass


def versions(peer):
    pkgs = {"python-stack": ["openwakeword", "onnxruntime", "faster-whisper", "ctranslate2", "hassil", "paho-mqtt",
                             "numpy"],
            "pywhispercpp": ["pywhispercpp", "numpy"]}[peer]
    v = {p: version(p) for p in pkgs}
    v["python"] = sys.version.split()[0]
    if peer == "pywhispercpp":
        import pywhispercpp
        libdir = os.path.dirname(os.path.dirname(pywhispercpp.__file__))
        libs = [f for f in os.listdir(libdir) if re.fullmatch(r"libwhisper\.so\.\d+\.\d+\.\d+", f)]
        v["whisper.cpp"] = libs[0].split(".so.")[1] if libs else "unknown"
    return v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer", required=True, choices=["python-stack", "pywhispercpp"])
    ap.add_argument("--job", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    spawned = float(os.environ.get("PEER_SPAWN_WALL", time.time()))
    impl = (PythonStack if args.peer == "python-stack" else PyWhisperCpp)(job)
    cold_start = time.time() - spawned
    t = time.perf_counter()
    impl.warm_up()
    warm_up = time.perf_counter() - t

    idle_cpu, idle_fires, idle_s = None, None, 0.0
    if args.peer == "python-stack" and job.get("idle_audio"):
        idle_audio = np.concatenate([read_wav(p) for p in job["idle_audio"]])[: int(job["idle_seconds"] * RATE)]
        idle_s = len(idle_audio) / RATE
        idle_cpu, idle_fires = impl.idle(idle_audio)

    audio = {u["file"]: read_wav(u["file"]) for u in job["utterances"]}
    results, cpu_serving, audio_serving = [], 0.0, 0.0
    for rep in range(job["repeat"]):
        for u in job["utterances"]:
            a = audio[u["file"]]
            c0 = time.process_time()
            try:
                rec = impl.run(u, a)
            except Exception as e:  # the schema keeps a failed utterance with its error
                rec = {"wake_detected": None, "transcript": "", "intent": None, "slots": {}, "stage_ms": {},
                       "end_of_speech_to_action_ms": None, "error": f"{type(e).__name__}: {e}"}
            cpu_serving += time.process_time() - c0
            audio_serving += 0.0 if "error" in rec else rec.get("stt_audio_s", len(a) / RATE)
            rec.update(file=u["file"], kind=u.get("kind", "command"), set=u.get("set"),
                       audio_s=round(len(a) / RATE, 3), repeat=rep,
                       correct=judge(u, rec["intent"], rec["slots"]) if args.peer == "python-stack" else None)
            results.append(rec)
            print(f"[{args.peer}] {os.path.basename(u['file'])}: {rec['transcript']!r} → {rec['intent']} "
                  f"{rec['end_of_speech_to_action_ms'] or rec.get('response_ms')} ms {rec.get('error', '')}",
                  file=sys.stderr, flush=True)
    impl.close()
    rss = round(peak_rss_mib(), 1)
    out = {"peer": args.peer, "versions": versions(args.peer), "settings": job["settings"][args.peer],
           "utterances": results,
           "idle_cpu_s_per_audio_s": round(idle_cpu, 5) if idle_cpu is not None else None,
           "idle_audio_s": round(idle_s, 1), "idle_false_wakes": idle_fires,
           "serving_cpu_s_per_audio_s": round(cpu_serving / audio_serving, 5) if audio_serving else None,
           "peak_rss_mib": {"total": rss, args.peer: rss},
           "cold_start_s": round(cold_start, 3), "warm_up_s": round(warm_up, 3),
           "trailing_silence_ms": ENDPOINT["trailing_silence_ms"] if args.peer == "python-stack" else None}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
