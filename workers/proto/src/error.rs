use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to a worker. Every variant names the worker (`stt`/`slm`).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{worker} worker: cannot start {program}: {source} (set SOTTO_WORKER_DIR to the directory holding the worker binaries)")]
    Spawn { worker: &'static str, program: PathBuf, source: std::io::Error },

    #[error("{worker} worker: model file {path} does not exist (run `sotto models fetch`)")]
    ModelMissing { worker: &'static str, path: PathBuf },

    #[error("{worker} worker: cannot load model {path}: {message}")]
    ModelLoad { worker: &'static str, path: PathBuf, message: String },

    #[error("{worker} worker died {during} ({status}){}", stderr_suffix(.stderr))]
    Crashed { worker: &'static str, during: String, status: String, stderr: Vec<String> },

    #[error("{worker} worker did not answer {during} within {after:?}; killed it{}", stderr_suffix(.stderr))]
    Timeout { worker: &'static str, during: String, after: Duration, stderr: Vec<String> },

    #[error("{worker} worker: gave up after {failures} consecutive failures without a success; last: {last}")]
    CrashLoop { worker: &'static str, failures: u32, last: String },

    #[error("{worker} worker refused the request: {message}")]
    Request { worker: &'static str, message: String },

    #[error("{worker} worker: protocol error: {message}")]
    Protocol { worker: &'static str, message: String },
}

fn stderr_suffix(lines: &[String]) -> String {
    if lines.is_empty() {
        String::new()
    } else {
        format!("; last stderr lines:\n  {}", lines.join("\n  "))
    }
}

impl WorkerError {
    /// True when retrying cannot help until the model or installation is fixed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Spawn { .. } | Self::ModelMissing { .. } | Self::ModelLoad { .. } | Self::CrashLoop { .. })
    }
}
