//! Locating the real models for the workers' tests (included with `#[path]` by each test crate).
//!
//! Models live in the cache of CONTRACTS.md: `$SOTTO_MODELS`, else `$XDG_DATA_HOME/sotto/models`,
//! else `~/.local/share/sotto/models`. A missing model fails the test with the fix, never skips.

#![allow(dead_code)]

use std::path::PathBuf;

pub const WHISPER_BASE: (&str, &str) = ("whisper-base", "ggml-base.bin");
pub const GEMMA: (&str, &str) = ("gemma3-270m-q4_k_m", "gemma-3-270m-q4_k_m.gguf");
pub const SMOLLM2: (&str, &str) = ("smollm2-135m-instruct-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf");

pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("SOTTO_MODELS") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("sotto/models");
    }
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".local/share/sotto/models")
}

/// Path of a cached model, or a panic that says how to get it.
pub fn model((id, file): (&str, &str)) -> PathBuf {
    let path = cache_dir().join(file);
    assert!(
        path.is_file(),
        "model `{id}` is missing: {} does not exist. Run `sotto models fetch --profile default` and \
         `sotto models fetch --profile tiny` (or set SOTTO_MODELS to the model cache).",
        path.display()
    );
    path
}
