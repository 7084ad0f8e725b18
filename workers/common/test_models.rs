//! Locating the real models for the workers' tests and benchmark (included with `#[path]`).
//!
//! Through `sotto_models::Store`: the cache of CONTRACTS.md (`$SOTTO_MODELS`, ...), present and
//! verified. A missing or damaged model fails with the store's message (which names
//! `sotto models fetch`), never a silent skip.

#![allow(dead_code)]

use std::path::PathBuf;

pub const WHISPER_BASE: &str = "whisper-base";
pub const GEMMA: &str = "gemma3-270m-q4_k_m";
/// The default profile's language model: the same with a q5_0 embedding and an English vocabulary.
pub const GEMMA_EN: &str = "gemma3-270m-q4_k_m-en";
/// The one it is cut from (the q5_0 embedding, the whole vocabulary).
pub const GEMMA_Q5_0: &str = "gemma3-270m-q4_k_m-emb-q5_0";
pub const SMOLLM2: &str = "smollm2-135m-instruct-q4_1";
/// The LoRA adapter distilled for the shipped domains (tools/distil), bundled with Sotto.
pub const GEMMA_ADAPTER: &str = "gemma3-270m-sotto-lora";

/// Path of a present, verified model, or a panic that says how to get it.
pub fn model(id: &str) -> PathBuf {
    let found = sotto_models::Store::open().and_then(|store| store.path(id));
    found.unwrap_or_else(|e| {
        panic!("model `{id}` is not usable: {e} (profiles: `sotto models fetch --profile default`, `--profile tiny`)")
    })
}
