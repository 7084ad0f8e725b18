//! Error types of the model store. Each names the model id, file or key it is about and, where
//! there is one, the command that repairs it.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read model manifest {origin}: {message}")]
    Parse { origin: String, message: String },
    /// Every problem of the file, each with its key path (`model[3].sha256`).
    #[error("invalid model manifest {origin}:\n  {}", problems.to_string().replace('\n', "\n  "))]
    Invalid { origin: String, problems: sotto_problems::Problems },
}

/// One source that failed during a fetch, and why.
#[derive(Debug, Clone)]
pub struct SourceFailure {
    pub source: String,
    pub reason: String,
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("unknown model id {id:?} (known: {known})")]
    UnknownModel { id: String, known: String },
    #[error("unknown profile {name:?} (known: {known})")]
    UnknownProfile { name: String, known: String },
    #[error("model {id:?} has no entry for this architecture ({arch})")]
    NoEntryForArch { id: String, arch: String },
    #[error("cannot import model {id:?}: {path} does not exist")]
    NotInSource { id: String, path: PathBuf },
    #[error("unknown architecture {arch:?} (the manifest has entries for: {known})")]
    UnknownArch { arch: String, known: String },
    #[error(
        "model {id:?} is missing: {path} does not exist (model directory {dir}); run `sotto models fetch {id}`{}",
        found_elsewhere(elsewhere)
    )]
    Missing { id: String, path: PathBuf, dir: PathBuf, elsewhere: Option<PathBuf> },
    #[error(
        "model {id:?} is truncated: {path} has {actual} bytes, expected {expected}; \
         run `sotto models fetch {id}` to download it again"
    )]
    Truncated { id: String, path: PathBuf, expected: u64, actual: u64 },
    #[error(
        "model {id:?} has the wrong size: {path} has {actual} bytes, expected {expected}; \
         run `sotto models fetch {id}` to replace it"
    )]
    WrongSize { id: String, path: PathBuf, expected: u64, actual: u64 },
    #[error(
        "model {id:?} is corrupt: sha256 of {path} is {actual}, expected {expected}; \
         run `sotto models fetch {id}` to replace it"
    )]
    HashMismatch { id: String, path: PathBuf, expected: String, actual: String },
    #[error("model {id:?} is not a usable language model: {source}; run `sotto models fetch {id}` to replace it")]
    BadGguf { id: String, source: GgufError },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot fetch model {id:?}: every source failed:\n  {}", format_failures(failures))]
    AllSourcesFailed { id: String, failures: Vec<SourceFailure> },
    #[error("no model cache directory: set SOTTO_MODELS (or XDG_CACHE_HOME or HOME)")]
    NoCacheDir,
    #[error(
        "cannot fetch model {id:?}: no space left on device: {dir} has {available} bytes free, \
         the model needs {needed}; free some space or set SOTTO_MODELS to a larger disk"
    )]
    NoSpace { id: String, dir: PathBuf, needed: u64, available: u64 },
}

fn found_elsewhere(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(
            ", or use the default model directory, which has it ({}): unset SOTTO_MODELS / models.dir",
            p.display()
        ),
        None => String::new(),
    }
}

fn format_failures(failures: &[SourceFailure]) -> String {
    failures.iter().enumerate().map(|(i, f)| format!("{}. {f}", i + 1)).collect::<Vec<_>>().join("\n  ")
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StoreError {
        StoreError::Io { path: path.into(), source }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("{path} is not a GGUF file: it starts with {found:02x?}, expected \"GGUF\"")]
    BadMagic { path: PathBuf, found: Vec<u8> },
    #[error("{path}: unsupported GGUF version {version} (supported: 2, 3)")]
    UnsupportedVersion { path: PathBuf, version: u32 },
    #[error("{path} is truncated: {what} needs {needed} bytes but the file has {actual}")]
    Truncated { path: PathBuf, what: String, needed: u64, actual: u64 },
    #[error("{path}: malformed GGUF header: {message}")]
    Malformed { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a CTranslate2 model: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: missing variable {name:?}")]
    MissingVariable { path: PathBuf, name: String },
    #[error("{path}: variable {name:?} has {message}")]
    BadVariable { path: PathBuf, name: String, message: String },
    #[error("{path}: {message}")]
    Vocabulary { path: PathBuf, message: String },
}
