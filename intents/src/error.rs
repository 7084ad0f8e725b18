use std::path::PathBuf;

use sotto_problems::Problems;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read intents file {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no domain files (*.toml) found in {0}")]
    NoDomains(PathBuf),
    /// Every problem of every domain file, each keyed `file:key.path` (or just the file).
    #[error("{} schema error(s):\n  {}", .0.len(), .0.to_string().replace('\n', "\n  "))]
    Schema(Problems),
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("unbalanced `{0}` at character {1}")]
    Unbalanced(char, usize),
    #[error("unexpected `{0}` at character {1}")]
    Unexpected(char, usize),
    #[error("empty slot or rule reference at character {0}")]
    EmptyReference(usize),
    #[error("permutation `(a; b)` with {0} items: at most 5 are allowed")]
    PermutationTooLarge(usize),
    #[error("empty alternative at character {0}")]
    EmptyAlternative(usize),
}

/// Errors of the language-model fallback.
#[derive(Debug, thiserror::Error)]
pub enum SlmError {
    #[error("language model failed: {0}")]
    Model(String),
    #[error("language model output is not a function call: {0:?}")]
    Unparsable(String),
}
