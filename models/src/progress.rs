//! Progress on stderr for long copies and hashes, so that a 250 MB step never looks hung.
//!
//! Not `indicatif`: its bars draw nothing when stderr is not a terminal, and most long fetches run
//! where it is not (CI, `tools/setup.sh` under a log, systemd), which is exactly where a line a
//! second is wanted to show the step is alive. One `\r` line on a terminal and a log line
//! elsewhere is all the store needs; a bar library would add a dependency tree to a crate the
//! daemon links, for the terminal case only.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub struct Progress {
    label: String,
    total: Option<u64>,
    done: u64,
    last: Instant,
    tty: bool,
    printed: bool,
}

const INTERVAL: Duration = Duration::from_millis(1000);

impl Progress {
    pub fn new(label: impl Into<String>, total: Option<u64>) -> Progress {
        Progress {
            label: label.into(),
            total,
            done: 0,
            last: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            printed: false,
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed() >= INTERVAL {
            self.last = Instant::now();
            self.print(false);
        }
    }

    pub fn finish(&mut self) {
        if self.printed {
            self.print(true);
        }
    }

    fn print(&mut self, last: bool) {
        self.printed = true;
        let mb = |b: u64| b as f64 / 1e6;
        let text = match self.total {
            Some(t) if t > 0 => format!(
                "{}: {:.1}/{:.1} MB ({:.0}%)",
                self.label,
                mb(self.done),
                mb(t),
                100.0 * self.done as f64 / t as f64
            ),
            _ => format!("{}: {:.1} MB", self.label, mb(self.done)),
        };
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r{text}\x1b[K");
            if last {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{text}");
        }
    }
}

/// A writer that hashes and counts what passes through it and reports progress.
pub struct HashingWriter<W: Write> {
    inner: W,
    hasher: Sha256,
    written: u64,
    progress: Progress,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W, progress: Progress) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), written: 0, progress }
    }

    /// (sha256 hex, bytes written, inner writer)
    pub fn finish(mut self) -> (String, u64, W) {
        self.progress.finish();
        (hex::encode(self.hasher.finalize()), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        self.progress.add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// sha256 (hex) and length of a file, with progress for large files.
pub fn sha256_file(path: &std::path::Path, label: &str) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let total = file.metadata()?.len();
    let progress = Progress::new(format!("{label}: checking sha256"), Some(total));
    let mut w = HashingWriter::new(std::io::sink(), progress);
    std::io::copy(&mut file, &mut w)?;
    let (hash, n, _) = w.finish();
    Ok((hash, n))
}
