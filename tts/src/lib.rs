//! `sotto-tts`: Sotto's voice.
//!
//! A [`Voice`] is a Piper voice (VITS exported to ONNX, with its `.onnx.json`) from the model store,
//! run through the process's one ONNX Runtime (`sotto_audio::init_onnx_runtime`, done by
//! [`Voice::from_store`]). Text is phonemised by espeak-ng clause by clause as Piper does
//! ([`espeak`]), mapped to the voice's phoneme ids with Piper's begin/pad/end layout ([`config`]),
//! and rendered one sentence per model run: [`Voice::speak`] hands each sentence's samples to a
//! callback as soon as they exist. [`wav`] writes the result; `sotto_audio::Playback` plays it.
//!
//! ```no_run
//! use std::ops::ControlFlow;
//! let store = sotto_models::Store::open()?;
//! let mut voice = sotto_tts::Voice::from_store(&store, sotto_tts::DEFAULT_VOICE, &Default::default())?;
//! voice.speak("Stop press one? Say yes or no.", |chunk| {
//!     // play or write `chunk` (mono f32 at voice.sample_rate())
//!     ControlFlow::Continue(())
//! })?;
//! # Ok::<(), sotto_tts::TtsError>(())
//! ```

pub mod config;
mod error;
pub mod espeak;
mod voice;
pub mod wav;

pub use config::VoiceConfig;
pub use error::TtsError;
pub use voice::{
    check_text, voice_ids, SpeakReport, Voice, VoiceOptions, CONFIG_SUFFIX, DEFAULT_VOICE, MAX_SENTENCE_PHONEMES,
    MAX_TEXT_CHARS,
};
