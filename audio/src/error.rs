use std::path::PathBuf;

/// Everything that can go wrong in the audio front end; each variant names the file, device or
/// model concerned.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read audio file {path}: {reason}")]
    ReadFile { path: PathBuf, reason: String },
    #[error("{path} is empty (0 bytes): not a WAV file")]
    EmptyFile { path: PathBuf },
    #[error("{path} is not a usable WAV file: {reason}")]
    BadWav { path: PathBuf, reason: String },
    #[error("resampling {from_hz} Hz to {to_hz} Hz failed: {reason}")]
    Resample { from_hz: u32, to_hz: u32, reason: String },
    #[error("invalid raw PCM stream format: {0}")]
    PcmFormat(String),
    #[error("reading raw PCM input failed: {0}")]
    PcmRead(#[source] std::io::Error),
    #[error("cannot load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("ONNX Runtime was already initialised from {loaded}, not {requested}")]
    RuntimeMismatch { loaded: PathBuf, requested: PathBuf },
    #[error(
        "ONNX Runtime is not initialised: call sotto_audio::init_onnx_runtime with the `onnxruntime` model path first"
    )]
    RuntimeMissing,
    #[error("cannot load ONNX model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("ONNX model {model} does not have the expected interface: {reason}")]
    ModelShape { model: String, reason: String },
    #[error("running ONNX model {model} failed: {reason}")]
    Inference { model: String, reason: String },
    #[error("invalid audio configuration: {0}")]
    Config(String),
    #[error("invalid audio settings:\n{0}")]
    Settings(sotto_problems::Problems),
    /// Every model of the front end that could not be found, keyed by model id.
    #[error("missing models:\n{0}")]
    MissingModels(sotto_problems::Problems),
    #[error("audio device error: {0}")]
    Device(String),
}
