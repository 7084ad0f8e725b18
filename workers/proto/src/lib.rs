//! Sotto's engine workers, seen from both ends.
//!
//! whisper.cpp and llama.cpp each vendor ggml and cannot link into one binary, and a native abort
//! in either must not take the daemon down; so each runs in its own process
//! (`sotto-stt-worker`, `sotto-slm-worker`) and talks a small framed protocol over its
//! stdin/stdout ([`frame`], [`messages`]). This crate has the blocking, supervised clients the
//! daemon uses ([`SttClient`], [`SlmClient`]: spawn, ready handshake, per-request timeout, restart
//! with backoff, crash-loop stop, stderr into `tracing`) and the worker-side loop ([`server`]).

mod client;
mod error;
pub mod frame;
pub mod memory;
pub mod messages;
pub mod server;
mod supervisor;

pub use client::{SlmClient, SttClient, SLM_WORKER_BIN, STT_WORKER_BIN};
pub use error::WorkerError;
pub use frame::PROTOCOL_VERSION;
pub use messages::{
    Generation, Grammar, Hello, ModelInfo, Scores, SlmTimings, SttTimings, TranscribeOptions, Transcript,
};
pub use sotto_speech::{word_graph, Token, WordGraph, WordGraphError};
pub use supervisor::{locate_worker, AbortHandle, Supervisor, WorkerConfig};
