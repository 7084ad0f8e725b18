//! Driving the built `sotto` binary: where it is, the audio fixtures, configs written for a test,
//! and runs whose printed MQTT messages come back parsed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The workspace's `target/<profile>` directory of the running test binary (`…/deps/..`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    deps.parent().expect("target profile directory").to_path_buf()
}

/// The built `sotto` binary; `cargo test --workspace` builds it beside the workers.
pub fn sotto_bin() -> PathBuf {
    let bin = target_dir().join("sotto");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first (`cargo build --release --workspace`)",
        bin.display()
    );
    bin
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo root").to_path_buf()
}

/// A committed audio fixture in `tests/fixtures/audio/`.
pub fn fixture(name: &str) -> PathBuf {
    let path = repo_root().join("tests/fixtures/audio").join(name);
    assert!(path.exists(), "fixture {} is missing", path.display());
    path
}

/// A site id no other test (or earlier run) uses, so tests sharing one broker stay apart.
pub fn unique_site(label: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t-{label}-{}-{nanos:x}", std::process::id())
}

/// A `sotto` command with logs quiet enough to read in a failure and the workers found beside it.
pub fn sotto() -> Command {
    let mut cmd = Command::new(sotto_bin());
    cmd.env("RUST_LOG", "info,rumqttd=warn,rumqttd::server::broker=off");
    if std::env::var_os("SOTTO_WORKER_DIR").is_none() {
        cmd.env("SOTTO_WORKER_DIR", target_dir());
    }
    cmd
}

/// Daemon runs load Whisper and a language model each; on a 2-core machine several at once only
/// make each slower (and timeouts flaky), so tests that start one hold this.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Writes `text` as `sotto.toml` in `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("sotto.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One JSON line printed by `sotto run --input`.
#[derive(Debug, Clone, PartialEq)]
pub struct Printed {
    pub topic: String,
    pub payload: serde_json::Value,
}

pub fn printed_messages(output: &Output) -> Vec<Printed> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|v| Printed { topic: v["topic"].as_str().unwrap_or_default().to_string(), payload: v["payload"].clone() })
        .collect()
}

/// Runs `sotto run --config CONFIG --input WAV` to its end; panics with its stderr if it fails.
pub fn run_on_file(config: &Path, wav: &Path) -> (Output, Vec<Printed>) {
    run_on_file_with(config, wav, &[])
}

/// [`run_on_file`] with more arguments for `sotto run` (e.g. `--realtime`).
pub fn run_on_file_with(config: &Path, wav: &Path, extra: &[&str]) -> (Output, Vec<Printed>) {
    let output = sotto()
        .args(["run", "--config"])
        .arg(config)
        .arg("--input")
        .arg(wav)
        .args(extra)
        .output()
        .expect("cannot start sotto");
    assert!(
        output.status.success(),
        "sotto run failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = printed_messages(&output);
    (output, printed)
}

/// Writes a 16 kHz mono 16-bit WAV of `parts` (fixture files, any format) with `gap_s` of silence
/// between them, for tests that need several commands in one stream.
pub fn concat_wavs(out: &Path, parts: &[PathBuf], gap_s: f32) {
    let mut args: Vec<String> = Vec::new();
    let silence = out.with_extension("silence.wav");
    let status = Command::new("sox")
        .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
        .arg(&silence)
        .args(["trim", "0", &gap_s.to_string()])
        .status()
        .expect("sox is missing (Debian package sox)");
    assert!(status.success());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            args.push(silence.display().to_string());
        }
        // sox concatenates only files of one rate and channel count: each part is converted first.
        let converted = out.with_extension(format!("part{i}.wav"));
        let status = Command::new("sox")
            .arg(part)
            .args(["-r", "16000", "-c", "1", "-b", "16"])
            .arg(&converted)
            .status()
            .unwrap();
        assert!(status.success(), "sox could not convert {}", part.display());
        args.push(converted.display().to_string());
    }
    let status =
        Command::new("sox").args(&args).args(["-r", "16000", "-c", "1", "-b", "16"]).arg(out).status().unwrap();
    assert!(status.success(), "sox could not concatenate {parts:?}");
}

/// Writes the first `seconds` of `input` to `out` (e.g. a dialogue without its long silence).
pub fn trim_wav(input: &Path, out: &Path, seconds: f32) {
    let status = Command::new("sox")
        .arg(input)
        .arg(out)
        .args(["trim", "0", &seconds.to_string()])
        .status()
        .expect("sox is missing (Debian package sox)");
    assert!(status.success(), "sox could not trim {}", input.display());
}

/// Child processes of `pid` whose command name is `name` (from /proc).
pub fn children_named(pid: u32, name: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // Format: pid (comm) state ppid …; comm may hold spaces, so split at the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else { continue };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let ppid = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && name.starts_with(comm) {
            found.push(child);
        }
    }
    found
}

/// Sends `signal` (e.g. "-STOP", "-KILL") to `pid` with kill(1).
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(signal).arg(pid.to_string()).status().unwrap();
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Starts `sotto run` in the background with stdout piped.
pub fn spawn_run(config: &Path, wav: &Path) -> Child {
    sotto()
        .args(["run", "--config"])
        .arg(config)
        .arg("--input")
        .arg(wav)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sotto")
}

/// A daemon listening to raw PCM on stdin at about real time, as from a microphone, with its log
/// lines collected for [`LiveDaemon::wait_for_log`].
pub struct LiveDaemon {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    pub log: Vec<String>,
    /// Lines before this one were consumed by an earlier `wait_for_log` match.
    cursor: usize,
}

impl LiveDaemon {
    /// Starts `sotto run --config CONFIG` (the config must say `[audio] source = "stdin"`) and
    /// waits until it is ready.
    pub fn start(config: &Path) -> LiveDaemon {
        LiveDaemon::start_with_env(config, &[])
    }

    /// [`LiveDaemon::start`] with extra environment variables (e.g. a password, `SOTTO_WORKER_DIR`).
    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> LiveDaemon {
        let mut child = sotto()
            .envs(env.iter().copied())
            .args(["run", "--config"])
            .arg(config)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start sotto");
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take();
        let mut daemon = LiveDaemon { child, stdin, lines, log: Vec::new(), cursor: 0 };
        daemon.wait_for_log("sotto ready", std::time::Duration::from_secs(90));
        // Start-up lines (e.g. "MQTT connected") stay visible to the test's own waits.
        daemon.cursor = 0;
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next log line containing `needle` after the line the previous wait matched
    /// and returns it; panics with the log so far after `timeout`.
    pub fn wait_for_log(&mut self, needle: &str, timeout: std::time::Duration) -> String {
        if let Some(i) = self.log[self.cursor..].iter().position(|l| l.contains(needle)) {
            self.cursor += i + 1;
            return self.log[self.cursor - 1].clone();
        }
        let deadline = std::time::Instant::now() + timeout;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            self.log.push(line.clone());
            if line.contains(needle) {
                self.cursor = self.log.len();
                return line;
            }
        }
        panic!("no log line with {needle:?} within {timeout:?}; log:\n{}", self.log.join("\n"));
    }

    /// Every log line that arrives within `window` from now (also kept in `log`).
    pub fn log_during(&mut self, window: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + window;
        let mut got = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            self.log.push(line.clone());
            got.push(line);
        }
        got
    }

    /// The whole log so far, for a failure message.
    pub fn log_text(&mut self) -> String {
        self.log_during(std::time::Duration::from_millis(200));
        self.log.join("\n")
    }

    /// Writes raw PCM as fast as the daemon reads it (recordings, not a live microphone).
    pub fn stream_pcm(&mut self, pcm: &[u8]) {
        use std::io::Write;
        self.stdin
            .as_mut()
            .expect("stdin already closed")
            .write_all(pcm)
            .expect("the daemon stopped reading its input");
    }

    /// Sends `signal` (e.g. "-TERM") and waits up to `timeout` for the exit. Returns the exit
    /// status (None if still running, then killed), how long the exit took, and the whole log.
    pub fn stop_with(
        mut self,
        signal_name: &str,
        timeout: std::time::Duration,
    ) -> (Option<std::process::ExitStatus>, std::time::Duration, Vec<String>) {
        let sent = std::time::Instant::now();
        signal(self.child.id(), signal_name);
        let mut status = None;
        while sent.elapsed() < timeout {
            if let Some(s) = self.child.try_wait().unwrap() {
                status = Some(s);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let took = sent.elapsed();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_millis(300)) {
            self.log.push(line);
        }
        (status, took, std::mem::take(&mut self.log))
    }

    /// Resident memory of the daemon process now, in KiB (`VmRSS` in /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the daemon is gone");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }

    /// Writes 16 kHz mono s16le PCM at about real time (a microphone does not deliver faster).
    pub fn speak_pcm(&mut self, pcm: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin already closed");
        for chunk in pcm.chunks(3200) {
            stdin.write_all(chunk).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(90));
        }
    }

    /// A fixture (any WAV format) followed by a second of silence that ends the utterance.
    pub fn speak(&mut self, fixture_name: &str) {
        self.speak_pcm(&pcm_of(&fixture(fixture_name)));
        self.speak_pcm(&silence(1.0));
    }

    /// Closes stdin (end of input), waits for the exit and returns whether it succeeded.
    pub fn finish(mut self) -> (bool, Vec<String>) {
        self.stdin.take();
        let status = self.child.wait().unwrap();
        while let Ok(line) = self.lines.recv_timeout(std::time::Duration::from_millis(200)) {
            self.log.push(line);
        }
        (status.success(), std::mem::take(&mut self.log))
    }
}

impl Drop for LiveDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 16 kHz mono s16le PCM of a WAV file (any format), via sox.
pub fn pcm_of(wav: &Path) -> Vec<u8> {
    let out = Command::new("sox")
        .arg(wav)
        .args(["-t", "raw", "-r", "16000", "-c", "1", "-e", "signed", "-b", "16", "-"])
        .output()
        .expect("sox is missing (Debian package sox)");
    assert!(out.status.success(), "sox could not read {}", wav.display());
    out.stdout
}

/// Bytes of `seconds` of the 16 kHz s16le PCM that [`pcm_of`] gives: an offset that stays on a sample.
pub fn pcm_bytes(seconds: f32) -> usize {
    (seconds * 16_000.0) as usize * 2
}

pub fn silence(seconds: f32) -> Vec<u8> {
    vec![0u8; pcm_bytes(seconds)]
}
