//! Messages exchanged with the workers (frame headers). Audio is never in here: it is the body.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Supervisor → worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToWorker {
    pub id: u64,
    pub request: Request,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Health check; answered with [`Reply::Pong`] between requests.
    Ping,
    /// Body: 16 kHz mono f32 LE samples.
    Transcribe {
        options: TranscribeOptions,
    },
    Generate {
        prompt: String,
        grammar: Option<Grammar>,
        max_tokens: u32,
    },
    Score {
        prompt: String,
        candidates: Vec<String>,
        /// When given, the candidates are a choice among these continuations (the candidates may
        /// be among them), and each candidate is scored only up to its first token that no other
        /// continuation shares: what follows only spells out a choice already made, and every
        /// token scored costs a pass of the output layer. Absent: each whole candidate.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        choice_among: Option<Vec<String>>,
    },
    /// Exit cleanly (also what EOF on stdin means).
    Shutdown,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// First frame after the model loaded: the worker is ready.
    Hello(Hello),
    /// The model could not be loaded; the worker exits after sending this. Deterministic, so the
    /// supervisor does not retry.
    LoadFailed {
        message: String,
    },
    Reply {
        id: u64,
        reply: Reply,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Pong,
    Transcript(Transcript),
    Generation(Generation),
    Scores(Scores),
    /// The request was refused or failed inside the worker (bad grammar, empty audio...); the worker
    /// stays up.
    Error {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub protocol: u16,
    /// `"stt"` or `"slm"`.
    pub worker: String,
    /// Engine and version, e.g. `whisper.cpp (whisper-rs 0.16)`.
    pub engine: String,
    pub model: ModelInfo,
    /// Milliseconds the model took to load.
    pub load_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub path: String,
    /// Human-readable summary (type, size, quantisation).
    pub description: String,
    /// The model's chat template (GGUF `tokenizer.chat_template`), so callers can build prompts.
    pub chat_template: Option<String>,
    /// Context size the worker runs with (tokens for the SLM, audio frames for Whisper).
    pub n_ctx: u32,
    pub n_vocab: u32,
    /// Whether the tokenizer prepends BOS to a prompt (the worker does it; callers must not).
    pub adds_bos: bool,
    /// Engine-specific metadata (GGUF keys such as `general.architecture`).
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeOptions {
    /// ISO 639-1 code, e.g. `en`; `None` lets Whisper detect it.
    pub language: Option<String>,
    /// Vocabulary bias: text Whisper sees as the preceding context.
    pub initial_prompt: Option<String>,
    /// Override the encoder context (1500 = 30 s). `None`: sized to the utterance with a floor.
    #[serde(default)]
    pub audio_ctx: Option<u32>,
    /// Beam search with this many beams instead of greedy decoding (`None` or 1: greedy).
    /// Slower; more robust in noise.
    #[serde(default)]
    pub beam_size: Option<u32>,
    /// Constrain the transcript to the sentences of this word graph ([`crate::word_graph`] text
    /// form), greedy and without temperature fallback. The transcript's token probabilities are
    /// then Whisper's own, before the constraint, so callers can tell a forced reading from a
    /// heard one.
    #[serde(default)]
    pub word_graph: Option<String>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self { language: Some("en".into()), initial_prompt: None, audio_ctx: None, beam_size: None, word_graph: None }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub text: String,
    /// Text tokens (special tokens dropped) with their probabilities (with a word graph: before the
    /// constraint, see [`TranscribeOptions::word_graph`]).
    pub tokens: Vec<sotto_speech::Token>,
    /// Why the result should not be trusted (repetition, hallucination phrase, ...); `None` = clean.
    pub flagged: Option<String>,
    pub timings: SttTimings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SttTimings {
    pub audio_ms: f64,
    pub total_ms: f64,
    /// Encoder context used (frames of 20 ms).
    pub audio_ctx: u32,
    /// Decoding passes: 1 unless the guard retried at a higher temperature.
    pub attempts: u32,
}

/// A constraint on generated text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "source", rename_all = "snake_case")]
pub enum Grammar {
    /// llama.cpp GBNF, enforced by llama.cpp's grammar sampler (root rule `root`).
    Gbnf(String),
    /// A JSON schema, enforced by llguidance.
    JsonSchema(String),
    /// llguidance's Lark dialect (which also accepts GBNF-style `::=` rules), enforced by llguidance.
    Lark(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV entries were reused from the previous request.
    pub cached_tokens: u32,
    pub generated_tokens: u32,
    /// `eog` (end of generation / grammar complete) or `max_tokens`.
    pub stop: String,
    /// Model evaluations (decodes) the answer took, the prompt's included: text the grammar
    /// forces is evaluated together with what precedes it, and an answer the grammar forces
    /// entirely takes none.
    #[serde(default)]
    pub model_steps: u32,
    pub timings: SlmTimings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlmTimings {
    /// Evaluating the uncached part of the prompt.
    pub prefill_ms: f64,
    /// Sampling and evaluating generated tokens (grammar included).
    pub generate_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scores {
    /// Summed natural-log probability of each candidate's tokens after the prompt.
    pub logprobs: Vec<f32>,
    /// Tokens scored of each candidate (all of them, or with `choice_among` those up to where it
    /// parts from the others).
    pub tokens: Vec<u32>,
    pub prompt_tokens: u32,
    pub cached_tokens: u32,
    pub timings: SlmTimings,
}
