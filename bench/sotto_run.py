"""Runs the Sotto daemon under measurement: a private Mosquitto broker with a subscriber that
timestamps every message on arrival, /proc sampling of the daemon's process tree (CPU time, peak
RSS), and the daemon's own log lines. Used by bench/run.py.
"""
import atexit
import datetime
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import wave

import numpy as np

# Processes this benchmark started; ended at exit (also on SIGTERM, see `end_on_exit`).
LIVE = []


def end_on_exit():
    """An interrupted benchmark leaves no daemon, broker or subscriber behind."""
    def end(*_):
        sys.exit(143)

    signal.signal(signal.SIGTERM, end)
    atexit.register(lambda: [p.kill() for p in LIVE if p.poll() is None])


FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
# `2026-11-28T14:30:00.123456Z  INFO sotto::pipeline: message key=value ...`
LINE = re.compile(r"^\S+\s+[A-Z]+\s+[\w:]+: (.*)$")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A private Mosquitto on a free port (or an existing broker) plus a `mosquitto_sub` on `#` whose
    output lines carry the arrival time (%U, the subscriber's clock = the daemon's clock)."""

    def __init__(self, existing=None):
        self.proc = None
        self.tmp = tempfile.TemporaryDirectory(prefix="sotto-bench-broker-")
        if existing:
            self.host, port = existing.rsplit(":", 1)
            self.port = int(port)
        else:
            self.host, self.port = "127.0.0.1", free_port()
            conf = os.path.join(self.tmp.name, "mosquitto.conf")
            with open(conf, "w") as f:
                f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            LIVE.append(self.proc)
            wait_for_port(self.host, self.port, f"mosquitto on port {self.port}")
        self.messages = []
        self.sub = subprocess.Popen(
            ["mosquitto_sub", "-h", self.host, "-p", str(self.port), "-t", "#", "-v", "-F", r"%U\t%t\t%p\n"],
            stdout=subprocess.PIPE, text=True)
        LIVE.append(self.sub)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        # The subscription is live once our own probe comes back.
        probe = f"sotto-bench/probe/{os.getpid()}"
        deadline = time.time() + 10
        while not any(m[1] == probe for m in self.messages):
            if time.time() > deadline:
                raise RuntimeError(f"mosquitto_sub on {self.host}:{self.port} never received its probe")
            subprocess.run(["mosquitto_pub", "-h", self.host, "-p", str(self.port), "-t", probe, "-m", "x"], check=True)
            time.sleep(0.2)

    def _read(self):
        for line in self.sub.stdout:
            parts = line.rstrip("\n").split("\t", 2)
            if len(parts) == 3:
                try:
                    self.messages.append((float(parts[0]), parts[1], parts[2]))
                except ValueError:
                    pass

    def wait_for(self, topic, payload, after, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for t, top, p in list(self.messages):
                if top == topic and p == payload and t >= after:
                    return t
            time.sleep(0.02)
        return None

    def close(self):
        for p in (self.sub, self.proc):
            if p:
                p.terminate()
                p.wait()
        self.tmp.cleanup()


def wait_for_port(host, port, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} is not listening after {timeout} s")


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def proc_tree(pid):
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children(p)
    return seen


def proc_sample(pid):
    """(name, cpu seconds, VmHWM MiB, VmRSS MiB) of one process, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            name = os.path.basename(f.read().split(b"\0")[0].decode() or "?")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    kib = lambda k: int(status.get(k, "0 kB").split()[0]) if k in status else 0
    return name, cpu, kib("VmHWM") / 1024, kib("VmRSS") / 1024


class TreeMonitor:
    """Polls the process tree: last CPU time per pid (a pid's last sample stands for its total) and
    the highest VmHWM per process name, and the highest sum of VmRSS over the tree in one sample
    (what is resident at once: lower than the sum of the processes' peaks when they peak at
    different times, and a sample every `period` can miss a shorter spike)."""

    def __init__(self, pid, period=0.05):
        self.pid, self.period = pid, period
        self.cpu = {}
        self.peak_mib = {}
        self.peak_at_once_mib = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(self.period)

    def sample(self):
        at_once = 0.0
        for p in proc_tree(self.pid):
            s = proc_sample(p)
            if s and s[0] != "?":  # "?": an exited child not yet reaped
                name, cpu, hwm, rss = s
                self.cpu[p] = cpu
                self.peak_mib[name] = max(self.peak_mib.get(name, 0.0), hwm, rss)
                at_once += rss
        self.peak_at_once_mib = max(self.peak_at_once_mib, at_once)

    def cpu_total(self):
        return sum(self.cpu.values())

    def close(self):
        self.stop.set()
        self.thread.join()


def log_time(line):
    """Timestamp of a tracing fmt line (RFC 3339, UTC) as Unix seconds."""
    stamp = line.split(" ", 1)[0]
    try:
        return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def log_fields(line):
    return {k: v[1:-1] if v.startswith('"') else v for k, v in FIELD.findall(line)}


def some(value):
    """`Some("x")` / `None` as the daemon's Debug formatting prints them."""
    m = re.fullmatch(r'Some\("?(.*?)"?\)', value or "")
    return m.group(1) if m else None


# The default `endpoint.trailing_silence_ms`, written into the benchmark's config so that the
# reported trailing-silence wait and the daemon agree.
TRAILING_SILENCE_MS = 700
WORKER_TIMEOUT_S = 120.0


def config_text(broker, site, slm, extra=""):
    """The demo config (both wake words of the utterances, every shipped domain) on `broker`."""
    return (f'[mqtt]\nbroker = "external"\nhost = "{broker.host}"\nport = {broker.port}\nsite_id = "{site}"\n\n'
            f'[[wake.models]]\nname = "hey_jarvis"\n\n[[wake.models]]\nname = "alexa"\n\n'
            f'[endpoint]\ntrailing_silence_ms = {TRAILING_SILENCE_MS}\n\n'
            # A loaded shared machine makes requests slow, not hung: no worker restarts mid-benchmark.
            f'[stt]\ntimeout_s = {WORKER_TIMEOUT_S}\n\n'
            # Commands follow each other closely in the stream: a spoken answer would mute the
            # microphone over the next one (half duplex). The benchmark measures understanding.
            f'[tts]\nresponses = false\n\n'
            f'[slm]\nenabled = {"true" if slm else "false"}\ntimeout_s = {WORKER_TIMEOUT_S}\n{extra}')


def read_wav16(path):
    with wave.open(path, "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            raise ValueError(f"{path}: the benchmark needs 16 kHz mono 16-bit WAV")
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)


def write_wav16(path, pcm):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.astype(np.int16).tobytes())


class Daemon:
    """One `sotto run` under measurement: spawn time, log lines with their arrival, tree monitor."""

    def __init__(self, sotto, config_path, args, stdin=None):
        env = dict(os.environ, RUST_LOG="info,sotto=info,rumqttc=warn", NO_COLOR="1")
        self.spawned = time.time()
        self.proc = subprocess.Popen([sotto, "run", "--config", config_path, *args], env=env, stdin=stdin,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        LIVE.append(self.proc)
        self.monitor = TreeMonitor(self.proc.pid)
        self.lines = []
        self.ready = threading.Event()
        self.cpu_at_ready = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if not self.ready.is_set() and "sotto ready" in line:
                self.monitor.sample()
                self.cpu_at_ready = self.monitor.cpu_total()
                self.ready.set()

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = "timeout"
        self.reader.join(timeout=5)
        self.monitor.close()
        if rc != 0:
            tail = "\n".join(self.lines[-20:])
            raise RuntimeError(f"sotto run exited with {rc}:\n{tail}")

    def named(self, message):
        """(arrival-independent log timestamp, fields) of every line whose message is `message`."""
        out = []
        for line in self.lines:
            m = LINE.match(line)
            if m and (m.group(1) == message or m.group(1).startswith(message + " ")):
                out.append((log_time(line), log_fields(m.group(1)[len(message):])))
        return out
