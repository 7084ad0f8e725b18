//! What the daemon reports about its work as data: one [`CommandReport`] per handled command
//! (published on `sotto/<site>/metrics/command`) and the [`Counters`] since start (retained on
//! `sotto/<site>/metrics`). The benchmarks read these instead of log text.

use std::time::Duration;

use serde::Serialize;
use sotto_intents::understand::{Decision, Understanding};

use super::Audio;

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    pub wakes: u64,
    pub utterances: u64,
    pub actions: u64,
    pub not_recognized: u64,
    /// Understood but refused (a value out of range, a missing slot): also in `not_recognized`.
    pub rejected: u64,
    pub worker_errors: u64,
    /// Speculative transcriptions whose audio was the final utterance / that were discarded.
    pub speculations_used: u64,
    pub speculations_discarded: u64,
    /// Texts Sotto began to speak, and those whose synthesis or playback failed.
    pub spoken: u64,
    pub speech_errors: u64,
    /// Utterances ended at a pause because their transcript was a complete command.
    pub early_decisions: u64,
}

/// One command, from the endpoint decision to its decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandReport {
    pub audio_s: f32,
    /// Stream position where the utterance ends (last speech + post-roll), in seconds: a benchmark
    /// compares it with the known end of speech to measure how late the VAD saw speech end.
    pub utterance_end_s: f64,
    /// Waited for the transcript after the endpoint (less than its compute time when it started
    /// speculatively at a pause).
    pub stt_ms: f64,
    pub stt_compute_ms: f64,
    pub speculative: bool,
    /// Ended at a pause as a complete command, before the full trailing silence.
    pub early: bool,
    /// The silence waited after the speech before the endpoint decision, when the utterance is
    /// the one a pause reported (else it is `endpoint.trailing_silence_ms` plus the VAD's lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_wait_ms: Option<f64>,
    /// The understanding cascade, second pass included.
    pub intents_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_pass_ms: Option<f64>,
    /// `grammar` or `slm`, when something resolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolver: Option<sotto_intents::Resolver>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// `execute`, `confirm`, `no_action` or `not_recognized`.
    pub decision: &'static str,
    /// From the endpoint decision to the decision handed to MQTT.
    pub end_of_speech_to_action_ms: f64,
}

impl CommandReport {
    pub fn new(audio: &Audio, u: &Understanding, stt_ms: f64, stt_compute_ms: f64, waited: Duration) -> Self {
        CommandReport {
            audio_s: audio.seconds(),
            utterance_end_s: audio.end_sample as f64 / super::SAMPLE_RATE,
            stt_ms,
            stt_compute_ms,
            speculative: false,
            early: false,
            endpoint_wait_ms: None,
            intents_ms: u.elapsed_ms,
            second_pass_ms: u.second_pass.as_ref().map(|p| p.ms),
            resolver: u.resolution.resolver,
            intent: u.resolution.intent.clone(),
            decision: match u.decision {
                Decision::Execute { .. } => "execute",
                Decision::Confirm { .. } => "confirm",
                Decision::NoAction => "no_action",
                Decision::NotRecognized { .. } => "not_recognized",
            },
            end_of_speech_to_action_ms: waited.as_secs_f64() * 1000.0,
        }
    }
}
