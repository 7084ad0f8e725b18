//! Worker side of the protocol: stdout hygiene, the request loop, panic containment.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Stdin};
use std::os::fd::FromRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::frame::{read_frame, write_frame, Frame};
use crate::messages::{FromWorker, Hello, Reply, Request, ToWorker};

/// The worker's end of the pipes.
pub struct WorkerIo {
    input: BufReader<Stdin>,
    output: BufWriter<File>,
}

impl WorkerIo {
    /// Takes over the protocol stream. Native engines (whisper.cpp, llama.cpp, OpenMP) may print to
    /// stdout; a single stray byte would corrupt the frame stream. So the real stdout is moved to
    /// a private descriptor for frames, and fd 1 is pointed at stderr, where the supervisor
    /// collects logs. Call this first thing in `main`, before any engine is initialised.
    pub fn take() -> io::Result<Self> {
        // SAFETY: plain descriptor juggling on fds this process owns; no Rust object wraps fd 1.
        let frames_fd = unsafe {
            let fd = libc::dup(libc::STDOUT_FILENO);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0 {
                return Err(io::Error::last_os_error());
            }
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            fd
        };
        // SAFETY: `frames_fd` is a fresh descriptor owned by nothing else.
        let output = unsafe { File::from_raw_fd(frames_fd) };
        Ok(Self { input: BufReader::new(io::stdin()), output: BufWriter::new(output) })
    }

    pub fn send(&mut self, msg: &FromWorker, body: &[u8]) -> io::Result<()> {
        write_frame(&mut self.output, msg, body)
    }

    /// Next request; `None` when the supervisor closed stdin.
    pub fn recv(&mut self) -> io::Result<Option<Frame<ToWorker>>> {
        read_frame(&mut self.input)
    }

    /// Reports a model that failed to load. The worker should then exit with status 2.
    pub fn load_failed(&mut self, message: String) {
        log("ERROR", &format!("model load failed: {message}"));
        let _ = self.send(&FromWorker::LoadFailed { message }, &[]);
    }

    /// Sends `hello`, then answers requests until stdin closes or `Shutdown` arrives. Pings are
    /// answered here; everything else goes to `handle`. A panic in `handle` becomes an error reply
    /// so one bad request does not cost the loaded model.
    pub fn serve<F>(mut self, hello: Hello, mut handle: F) -> io::Result<()>
    where
        F: FnMut(&Request, Vec<u8>) -> Reply,
    {
        self.send(&FromWorker::Hello(hello), &[])?;
        while let Some(frame) = self.recv()? {
            let ToWorker { id, request } = frame.header;
            let reply = match &request {
                Request::Shutdown => break,
                Request::Ping => Reply::Pong,
                _ => match catch_unwind(AssertUnwindSafe(|| handle(&request, frame.body))) {
                    Ok(reply) => reply,
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<String>()
                            .map(String::as_str)
                            .or_else(|| panic.downcast_ref::<&str>().copied())
                            .unwrap_or("unknown panic");
                        log("ERROR", &format!("request {id} panicked: {what}"));
                        Reply::Error { message: format!("worker panicked: {what}") }
                    }
                },
            };
            self.send(&FromWorker::Reply { id, reply }, &[])?;
        }
        Ok(())
    }
}

/// The whole life of a worker process: take the protocol stream, parse the arguments, load the
/// engine, announce it and serve until stdin closes. A bad argument or a failed load is reported
/// to the supervisor as `load_failed` (exit 2: permanent, not worth a restart); no protocol
/// stream exits 3, a broken stream 4.
pub fn run_worker<A, E>(
    parse: impl FnOnce(std::env::Args) -> Result<A, String>,
    load: impl FnOnce(&A) -> Result<E, String>,
    hello: impl FnOnce(&E) -> Hello,
    mut handle: impl FnMut(&mut E, &Request, Vec<u8>) -> Reply,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    crate::memory::fix_mmap_threshold();
    let mut io = match WorkerIo::take() {
        Ok(io) => io,
        Err(e) => {
            eprintln!("ERROR cannot set up the protocol stream: {e}");
            return ExitCode::from(3);
        }
    };
    let mut args = std::env::args();
    args.next();
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            io.load_failed(format!("bad arguments: {e}"));
            return ExitCode::from(2);
        }
    };
    let mut engine = match load(&args) {
        Ok(e) => e,
        Err(e) => {
            io.load_failed(e);
            return ExitCode::from(2);
        }
    };
    let hello = hello(&engine);
    log("INFO", &format!("ready: {} ({:.0} ms)", hello.model.description, hello.load_ms));
    match io.serve(hello, |request, body| handle(&mut engine, request, body)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log("ERROR", &format!("protocol stream failed: {e}"));
            ExitCode::from(4)
        }
    }
}

/// One log line on stderr in the form the supervisor parses (`LEVEL message`).
pub fn log(level: &str, message: &str) {
    for line in message.lines() {
        eprintln!("{level} {line}");
    }
}

/// Compute threads for an engine when not given: one core fewer than the machine has (at least
/// one). The daemon's audio front end (wake word, VAD) keeps running during inference, and ggml's
/// thread barriers spin: with more busy threads than free cores a descheduled worker thread stalls
/// all the others. Measured here (2 cores, loaded): Gemma 3 270M decoding went from 2 tokens/s
/// with 2 threads to 24 tokens/s with 1.
pub fn default_threads() -> i32 {
    std::thread::available_parallelism().map(|n| n.get() as i32 - 1).unwrap_or(1).max(1)
}
