use std::path::PathBuf;

/// Everything that can go wrong turning text into audio; each variant names the value, file or
/// directory concerned.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    #[error("nothing to say: the text is empty")]
    EmptyText,
    #[error("nothing to say: {text:?} has no pronounceable words")]
    NothingToSay { text: String },
    #[error("the text is {chars} characters long; at most {limit} are spoken in one go (split it)")]
    TextTooLong { chars: usize, limit: usize },
    #[error("unknown voice {id:?} (voices in the model store: {known}; add others in models.local.toml)")]
    UnknownVoice { id: String, known: String },
    #[error("espeak-ng data directory {path}: {reason} (set SOTTO_ESPEAK_DATA or --espeak-data)")]
    EspeakData { path: PathBuf, reason: String },
    #[error("espeak-ng was already initialised with {loaded}, not {requested}: one data directory per process")]
    EspeakDataMismatch { loaded: PathBuf, requested: PathBuf },
    #[error("espeak-ng has no voice {voice:?} in {data_dir}")]
    EspeakVoice { voice: String, data_dir: PathBuf },
    #[error("voice config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("voice model {path} is not usable: {reason}")]
    ModelShape { path: PathBuf, reason: String },
    #[error("voice {voice}: synthesis failed: {reason}")]
    Inference { voice: String, reason: String },
    #[error(transparent)]
    Store(#[from] sotto_models::StoreError),
    #[error(transparent)]
    Audio(#[from] sotto_audio::AudioError),
    #[error("writing audio to {path}: {reason}")]
    Output { path: String, reason: String },
}
