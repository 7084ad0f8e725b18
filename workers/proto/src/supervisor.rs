//! One supervised worker process: spawn, wait for ready, per-request timeout, kill on hang,
//! restart with exponential backoff, stop after a crash loop.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::WorkerError;
use crate::frame::{read_frame, write_frame, Frame};
use crate::messages::{FromWorker, Hello, Reply, Request, ToWorker};
use crate::PROTOCOL_VERSION;

const STDERR_TAIL: usize = 12;

/// How to run and police one worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Model file handed to the worker as `--model`.
    pub model: PathBuf,
    /// Worker executable; `None` = located by [`locate_worker`].
    pub program: Option<PathBuf>,
    /// Extra arguments after `--model FILE` (e.g. `--threads 2`).
    pub args: Vec<String>,
    /// Model load budget.
    pub ready_timeout: Duration,
    /// Budget for one request (transcription, generation, scoring).
    pub request_timeout: Duration,
    /// Consecutive failures (crash, hang, failed start) without a success before giving up.
    pub max_failures: u32,
    /// Delay before the first restart; doubles per consecutive failure up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl WorkerConfig {
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            program: None,
            args: Vec::new(),
            ready_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_failures: 5,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
        }
    }

    /// Delay before restart number `failures` (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32 << failures.saturating_sub(1).min(16);
        self.backoff_initial.saturating_mul(factor).min(self.backoff_max)
    }
}

/// Finds `name` in `$SOTTO_WORKER_DIR`, else next to the running executable (or one level up, so
/// test binaries in `target/*/deps/` find the workers in `target/*/`).
pub fn locate_worker(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("SOTTO_WORKER_DIR") {
        return Path::new(&dir).join(name);
    }
    let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
    if let Some(dir) = exe_dir {
        let beside = dir.join(name);
        if beside.exists() {
            return beside;
        }
        if let Some(parent) = dir.parent() {
            let up = parent.join(name);
            if up.exists() {
                return up;
            }
        }
        return beside;
    }
    PathBuf::from(name)
}

struct Running {
    child: Child,
    /// Encoded frames for the writer thread (see [`spawn_writer`]); dropping it closes stdin.
    stdin: mpsc::Sender<Vec<u8>>,
    frames: Receiver<std::io::Result<Frame<FromWorker>>>,
    stderr_done: Receiver<()>,
}

/// Ends the request in flight from another thread, by killing the worker serving it: the
/// supervisor is locked by the caller waiting for the reply, and a request abandoned at shutdown
/// must not hold the daemon for its whole timeout (nor leave a hung process behind). The waiting
/// call then returns the worker's crash, and the next request restarts it.
#[derive(Clone, Debug, Default)]
pub struct AbortHandle(Arc<AtomicU32>);

impl AbortHandle {
    /// Kills the worker if a request is in flight; returns whether one was.
    pub fn abort(&self) -> bool {
        let pid = self.0.swap(0, Ordering::SeqCst);
        let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
        if pid == 0 {
            return false;
        }
        tracing::warn!(pid, "killing the worker serving an abandoned request");
        // SAFETY: kill(2) has no memory effects; the pid is our own child, still unreaped because
        // its supervisor is blocked waiting on it.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            tracing::warn!(pid, error = %std::io::Error::last_os_error(), "cannot kill the busy worker");
        }
        true
    }
}

/// Clears the in-flight pid when a call returns, whichever way.
struct InFlight<'a>(&'a AbortHandle);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0 .0.store(0, Ordering::SeqCst);
    }
}

/// A worker process and its restart policy. Blocking; `Send`, not `Sync` (wrap in a `Mutex` to
/// share).
pub struct Supervisor {
    worker: &'static str,
    program: PathBuf,
    config: WorkerConfig,
    running: Option<Running>,
    hello: Option<Hello>,
    failures: u32,
    last_failure: Option<Instant>,
    gave_up: Option<WorkerError>,
    next_id: u64,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    restarts: u32,
    in_flight: AbortHandle,
}

impl Supervisor {
    /// Starts the worker and waits until it reports ready.
    pub fn start(worker: &'static str, binary: &str, config: WorkerConfig) -> Result<Self, WorkerError> {
        let program = config.program.clone().unwrap_or_else(|| locate_worker(binary));
        let mut sup = Self {
            worker,
            program,
            config,
            running: None,
            hello: None,
            failures: 0,
            last_failure: None,
            gave_up: None,
            next_id: 1,
            stderr_tail: Arc::new(Mutex::new(VecDeque::new())),
            restarts: 0,
            in_flight: AbortHandle::default(),
        };
        sup.ensure_running()?;
        Ok(sup)
    }

    /// What the worker said when it became ready (model info, chat template).
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Process id of the live worker, if any.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.child.id())
    }

    /// How many times the worker was restarted after a failure.
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Health check: round trip of a ping (restarting the worker first if it is down).
    pub fn ping(&mut self, timeout: Duration) -> Result<Duration, WorkerError> {
        let t0 = Instant::now();
        match self.call(Request::Ping, &[], timeout)? {
            Reply::Pong => Ok(t0.elapsed()),
            other => Err(self.protocol(format!("ping answered with {other:?}"))),
        }
    }

    /// A handle that ends the request in flight (see [`AbortHandle`]).
    pub fn abort_handle(&self) -> AbortHandle {
        self.in_flight.clone()
    }

    /// Sends one request and waits for its reply within `timeout`.
    pub fn call(&mut self, request: Request, body: &[u8], timeout: Duration) -> Result<Reply, WorkerError> {
        self.ensure_running()?;
        let in_flight = self.in_flight.clone();
        in_flight.0.store(self.pid().unwrap_or(0), Ordering::SeqCst);
        let _clear = InFlight(&in_flight);
        let id = self.next_id;
        self.next_id += 1;
        let during = format!("during request {id} ({})", request_name(&request));
        let running = self.running.as_mut().expect("ensure_running succeeded");
        if let Err(e) = send_frame(&running.stdin, &ToWorker { id, request }, body) {
            tracing::debug!(worker = self.worker, error = %e, "write to worker failed");
            return Err(self.fail_dead(&during));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.running.as_mut().expect("still running");
            let left = deadline.saturating_duration_since(Instant::now());
            match running.frames.recv_timeout(left) {
                Ok(Ok(Frame { header: FromWorker::Reply { id: got, reply }, .. })) if got == id => {
                    self.failures = 0;
                    return match reply {
                        Reply::Error { message } => Err(WorkerError::Request { worker: self.worker, message }),
                        reply => Ok(reply),
                    };
                }
                Ok(Ok(Frame { header: FromWorker::Reply { id: stale, .. }, .. })) => {
                    tracing::debug!(worker = self.worker, stale, "dropping reply to an abandoned request");
                }
                Ok(Ok(Frame { header, .. })) => {
                    let err = self.protocol(format!("unexpected frame {during}: {header:?}"));
                    return Err(self.kill_and_record(err));
                }
                Ok(Err(e)) => {
                    let err = self.protocol(format!("unreadable frame {during}: {e}"));
                    return Err(self.kill_and_record(err));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.fail_dead(&during)),
                Err(RecvTimeoutError::Timeout) => {
                    let stderr = self.stderr_lines();
                    let err = WorkerError::Timeout { worker: self.worker, during, after: timeout, stderr };
                    return Err(self.kill_and_record(err));
                }
            }
        }
    }

    /// Request budget from the configuration.
    pub fn request_timeout(&self) -> Duration {
        self.config.request_timeout
    }

    fn protocol(&self, message: String) -> WorkerError {
        WorkerError::Protocol { worker: self.worker, message }
    }

    /// The stream closed: collect the exit status and stderr, record the failure.
    fn fail_dead(&mut self, during: &str) -> WorkerError {
        let status = match self.running.take() {
            Some(mut r) => {
                drop(r.stdin);
                // The stream ends a moment before the process is reaped.
                let status = wait_with_timeout(&mut r.child, Duration::from_secs(2));
                let _ = r.stderr_done.recv_timeout(Duration::from_millis(500));
                status
            }
            None => "not running".into(),
        };
        let err = WorkerError::Crashed {
            worker: self.worker,
            during: during.to_string(),
            status,
            stderr: self.stderr_lines(),
        };
        self.record_failure(err)
    }

    fn kill_and_record(&mut self, err: WorkerError) -> WorkerError {
        if let Some(mut r) = self.running.take() {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        self.record_failure(err)
    }

    /// Counts a failure; returns the error for the caller, which is a crash-loop error once the
    /// limit is reached.
    fn record_failure(&mut self, err: WorkerError) -> WorkerError {
        self.failures += 1;
        self.last_failure = Some(Instant::now());
        let cause = err.to_string();
        tracing::warn!(worker = self.worker, failures = self.failures, %cause, "worker failure");
        if self.failures < self.config.max_failures {
            return err;
        }
        tracing::error!(worker = self.worker, failures = self.failures, "crash loop: not restarting the worker again");
        let gave_up = WorkerError::CrashLoop { worker: self.worker, failures: self.failures, last: cause };
        self.gave_up = Some(clone_permanent(&gave_up));
        gave_up
    }

    fn stderr_lines(&self) -> Vec<String> {
        self.stderr_tail.lock().map(|t| t.iter().cloned().collect()).unwrap_or_default()
    }

    fn ensure_running(&mut self) -> Result<(), WorkerError> {
        if self.running.is_some() {
            return Ok(());
        }
        if let Some(err) = &self.gave_up {
            return Err(clone_permanent(err));
        }
        if !self.config.model.exists() {
            let err = WorkerError::ModelMissing { worker: self.worker, path: self.config.model.clone() };
            self.gave_up = Some(clone_permanent(&err));
            return Err(err);
        }
        if let Some(at) = self.last_failure {
            let wait = self.config.backoff(self.failures).saturating_sub(at.elapsed());
            if !wait.is_zero() {
                tracing::info!(worker = self.worker, ?wait, "backing off before restarting the worker");
                thread::sleep(wait);
            }
            self.restarts += 1;
        }
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), WorkerError> {
        let t0 = Instant::now();
        let mut command = Command::new(&self.program);
        // ggml's threads meet at an OpenMP barrier after every operation. By default libgomp's
        // waiting threads spin; with another busy process on the same cores a spinning thread holds
        // the core its sibling needs, and a 0.6 s transcription took 3-14 s here. Sleeping waiters
        // cost nothing measurable when the cores are free (README, "Speculative speech-to-text").
        if std::env::var_os(OMP_WAIT_POLICY).is_none() {
            command.env(OMP_WAIT_POLICY, "PASSIVE");
        }
        let mut child = command
            .arg("--model")
            .arg(&self.config.model)
            .args(&self.config.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| {
                let err = WorkerError::Spawn { worker: self.worker, program: self.program.clone(), source };
                self.gave_up = Some(clone_permanent(&err));
                err
            })?;
        let pid = child.id();
        tracing::info!(worker = self.worker, pid, program = %self.program.display(), "worker started");
        self.stderr_tail.lock().map(|mut t| t.clear()).ok();

        let stdout = child.stdout.take().expect("piped");
        let (frame_tx, frames) = mpsc::channel();
        thread::Builder::new()
            .name(format!("{}-worker-frames", self.worker))
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    match read_frame::<_, FromWorker>(&mut reader) {
                        Ok(Some(frame)) => {
                            if frame_tx.send(Ok(frame)).is_err() {
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(e) => {
                            let _ = frame_tx.send(Err(e));
                            return;
                        }
                    }
                }
            })
            .expect("spawn reader thread");

        let stderr = child.stderr.take().expect("piped");
        let tail = Arc::clone(&self.stderr_tail);
        let worker = self.worker;
        let (done_tx, stderr_done) = mpsc::channel();
        thread::Builder::new()
            .name(format!("{worker}-worker-stderr"))
            .spawn(move || {
                forward_stderr(worker, pid, stderr, &tail);
                let _ = done_tx.send(());
            })
            .expect("spawn stderr thread");

        let stdin = spawn_writer(self.worker, child.stdin.take().expect("piped"));
        self.running = Some(Running { child, stdin, frames, stderr_done });

        let during = "while loading the model".to_string();
        let timeout = self.config.ready_timeout;
        let frames = &self.running.as_ref().expect("just set").frames;
        match frames.recv_timeout(timeout) {
            Ok(Ok(Frame { header: FromWorker::Hello(hello), .. })) => {
                if hello.protocol != PROTOCOL_VERSION {
                    let err = self
                        .protocol(format!("worker speaks protocol {}, expected {PROTOCOL_VERSION}", hello.protocol));
                    self.kill_and_record(clone_permanent(&err));
                    self.gave_up = Some(clone_permanent(&err));
                    return Err(err);
                }
                tracing::info!(
                    worker = self.worker,
                    pid,
                    model = %hello.model.description,
                    load_ms = hello.load_ms,
                    ready_ms = t0.elapsed().as_millis() as u64,
                    "worker ready"
                );
                self.hello = Some(hello);
                Ok(())
            }
            Ok(Ok(Frame { header: FromWorker::LoadFailed { message }, .. })) => {
                // The engine's own explanation (e.g. llama.cpp's loader) is in its log lines.
                if let Some(r) = self.running.as_mut() {
                    wait_with_timeout(&mut r.child, Duration::from_secs(2));
                    let _ = r.stderr_done.recv_timeout(Duration::from_millis(500));
                }
                let engine_lines: Vec<String> =
                    self.stderr_lines().into_iter().filter(|l| !l.starts_with("ERROR model load failed")).collect();
                let message = if engine_lines.is_empty() {
                    message
                } else {
                    format!("{message}; engine log:\n  {}", engine_lines.join("\n  "))
                };
                let err = WorkerError::ModelLoad { worker: self.worker, path: self.config.model.clone(), message };
                self.kill_and_record(clone_permanent(&err));
                // A model that does not load will not load on the next try either.
                self.gave_up = Some(clone_permanent(&err));
                Err(err)
            }
            Ok(Ok(Frame { header, .. })) => {
                let err = self.protocol(format!("expected hello, got {header:?}"));
                Err(self.kill_and_record(err))
            }
            Ok(Err(e)) => {
                let err = self.protocol(format!("unreadable frame {during}: {e}"));
                Err(self.kill_and_record(err))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.fail_dead(&during)),
            Err(RecvTimeoutError::Timeout) => {
                let stderr = self.stderr_lines();
                let err = WorkerError::Timeout { worker: self.worker, during, after: timeout, stderr };
                Err(self.kill_and_record(err))
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(mut r) = self.running.take() {
            let _ = send_frame(&r.stdin, &ToWorker { id: 0, request: Request::Shutdown }, &[]);
            drop(r.stdin);
            if wait_with_timeout(&mut r.child, Duration::from_millis(500)).starts_with("still running") {
                let _ = r.child.kill();
                let _ = r.child.wait();
            }
        }
    }
}

/// libgomp's setting for how threads wait at a barrier; a value set by the operator is kept.
const OMP_WAIT_POLICY: &str = "OMP_WAIT_POLICY";

/// Requests reach the worker through a thread of their own: a worker that stops reading (frozen,
/// or stuck in native code) fills the pipe, and a write blocked on it would never reach the
/// request deadline. Killing the worker breaks the pipe, which ends the thread.
fn spawn_writer(worker: &'static str, mut stdin: ChildStdin) -> mpsc::Sender<Vec<u8>> {
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    thread::Builder::new()
        .name(format!("{worker}-worker-stdin"))
        .spawn(move || {
            for frame in rx {
                if let Err(e) = stdin.write_all(&frame).and_then(|()| stdin.flush()) {
                    tracing::debug!(worker, error = %e, "write to worker failed");
                    return;
                }
            }
        })
        .expect("spawn writer thread");
    tx
}

fn send_frame(stdin: &mpsc::Sender<Vec<u8>>, header: &ToWorker, body: &[u8]) -> std::io::Result<()> {
    let mut frame = Vec::with_capacity(body.len() + 256);
    write_frame(&mut frame, header, body)?;
    stdin.send(frame).map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the worker's input is closed"))
}

fn request_name(r: &Request) -> &'static str {
    match r {
        Request::Ping => "ping",
        Request::Transcribe { .. } => "transcribe",
        Request::Generate { .. } => "generate",
        Request::Score { .. } => "score",
        Request::Shutdown => "shutdown",
    }
}

/// Permanent errors are replayed to every later caller; `io::Error` is not `Clone`, hence this.
fn clone_permanent(err: &WorkerError) -> WorkerError {
    match err {
        WorkerError::Spawn { worker, program, source } => WorkerError::Spawn {
            worker,
            program: program.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        WorkerError::ModelMissing { worker, path } => WorkerError::ModelMissing { worker, path: path.clone() },
        WorkerError::ModelLoad { worker, path, message } => {
            WorkerError::ModelLoad { worker, path: path.clone(), message: message.clone() }
        }
        WorkerError::CrashLoop { worker, failures, last } => {
            WorkerError::CrashLoop { worker, failures: *failures, last: last.clone() }
        }
        WorkerError::Protocol { worker, message } => WorkerError::Protocol { worker, message: message.clone() },
        other => WorkerError::CrashLoop { worker: "worker", failures: 0, last: other.to_string() },
    }
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return describe_status(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => return "still running".into(),
            Err(e) => return format!("unknown status: {e}"),
        }
    }
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}{}", signal_name(sig)),
        _ => status.to_string(),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGKILL => " (SIGKILL)",
        libc::SIGABRT => " (SIGABRT: native abort)",
        libc::SIGSEGV => " (SIGSEGV)",
        libc::SIGTERM => " (SIGTERM)",
        _ => "",
    }
}

/// Worker stderr → `tracing`. Lines our workers write start with a level; native engine chatter
/// does not and goes to debug.
fn forward_stderr(worker: &'static str, pid: u32, stderr: std::process::ChildStderr, tail: &Mutex<VecDeque<String>>) {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf).trim_end().to_string();
        if line.is_empty() {
            continue;
        }
        let (level, msg) = line.split_once(' ').unwrap_or(("", &line));
        match level {
            "ERROR" => tracing::error!(target: "sotto_workers::worker", worker, pid, "{msg}"),
            "WARN" => tracing::warn!(target: "sotto_workers::worker", worker, pid, "{msg}"),
            "INFO" => tracing::info!(target: "sotto_workers::worker", worker, pid, "{msg}"),
            "DEBUG" => tracing::debug!(target: "sotto_workers::worker", worker, pid, "{msg}"),
            _ => tracing::debug!(target: "sotto_workers::worker", worker, pid, "{line}"),
        }
        if let Ok(mut t) = tail.lock() {
            if t.len() == STDERR_TAIL {
                t.pop_front();
            }
            t.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_saturates() {
        let c = WorkerConfig::new("m");
        assert_eq!(c.backoff(1), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(200));
        assert_eq!(c.backoff(4), Duration::from_millis(800));
        assert_eq!(c.backoff(40), Duration::from_secs(10));
    }

    #[test]
    fn workers_wait_at_barriers_without_spinning_unless_the_operator_says_otherwise() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sotto-omp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // A stand-in worker that records its OMP_WAIT_POLICY in the "model" file and exits.
        let script = dir.join("worker.sh");
        std::fs::write(&script, "#!/bin/sh\nprintf '%s' \"$OMP_WAIT_POLICY\" > \"$2\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let seen = dir.join("policy");
        std::fs::write(&seen, "").unwrap();
        let mut config = WorkerConfig::new(&seen);
        config.program = Some(script);
        config.max_failures = 1;
        config.ready_timeout = Duration::from_secs(10);
        assert!(Supervisor::start("test", "unused", config).is_err(), "the stand-in never says hello");
        let expected = std::env::var(OMP_WAIT_POLICY).unwrap_or_else(|_| "PASSIVE".into());
        assert_eq!(std::fs::read_to_string(&seen).unwrap(), expected);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn supervisor_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Supervisor>();
    }
}
