//! `sotto-audio`: everything up to "here is one utterance to transcribe".
//!
//! Sources produce 16 kHz mono `f32` samples: [`read_wav`] (any rate, bit depth and channel count,
//! band-limited resampling with `rubato`), [`PcmReader`] (raw PCM, e.g. stdin) and [`Capture`]
//! (`cpal` microphone into a lock-free ring buffer, device by name, reopened with backoff).
//! [`Playback`] is the way out: mono audio at any rate to a loudspeaker by name.
//!
//! Stages, one small trait each:
//! - [`WakeDetector`] — feed chunks of any length, get [`Detection`]s `{ wake, sample, score }`.
//!   [`OpenWakeWord`] is openWakeWord's three ONNX stages (mel → embedding → per-word classifier)
//!   computed exactly as the Python reference does, several wake words sharing the first two.
//! - [`Vad`] — speech probability per 512-sample window; [`SileroVad`] carries the LSTM state.
//! - [`Endpointer`] — after a wake: pre-roll, speech start, trailing silence, maximum length,
//!   no-speech timeout → [`Utterance`] `{ samples, start_sample, end_sample }` or `NoSpeech`.
//!
//! [`FrontEnd`] wires a detector and an endpointer on one stream; [`process_file`] runs a WAV file
//! through it and returns detections and utterances. ONNX Runtime is loaded at run time from the
//! model store: call [`init_onnx_runtime`] with the `onnxruntime` model path once per process.

mod capture;
mod endpoint;
mod error;
mod onnx;
mod pipeline;
mod playback;
mod resample;
mod source;
mod vad;
mod wake;
mod wav;

pub use capture::{list_devices, list_output_devices, Capture, CaptureConfig, CaptureStatus, DeviceInfo};
pub use endpoint::{EndpointConfig, EndpointEvent, Endpointer, Utterance};
pub use error::AudioError;
pub use onnx::{init_onnx_runtime, onnx_session};
pub use pipeline::{process_file, run_samples, wake_specs, Event, FrontEnd, FrontEndModels, Report, ONNXRUNTIME_ID};
pub use playback::Playback;
pub use resample::{downmix, resample_to_16k, StreamResampler, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, SAMPLE_RATE};
pub use source::{open_source, AudioInput, BlockSource};
pub use vad::{SileroVad, Vad, VAD_WINDOW};
pub use wake::{Detection, Frame, OpenWakeWord, OwwFiles, Trigger, TriggerConfig, WakeDetector, WakeSpec, FRAME};
pub use wav::{decode_wav, read_wav, PcmEncoding, PcmFormat, PcmReader};

/// Names of the wake words shipped in the model store (`wake-<name>` ids).
pub const SHIPPED_WAKE_WORDS: [&str; 4] = ["hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy"];
