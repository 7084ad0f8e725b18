use std::path::PathBuf;

/// One problem found in a domain file; all of them are collected before loading fails.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaIssue {
    pub file: String,
    pub intent: Option<String>,
    pub template: Option<String>,
    /// Dotted key path inside the file, when the problem is tied to one key.
    pub key: Option<String>,
    pub message: String,
}

impl std::fmt::Display for SchemaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(intent) = &self.intent {
            write!(f, ": intent `{intent}`")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        if let Some(template) = &self.template {
            write!(f, ": template \"{template}\"")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read intents file {path}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no domain files (*.toml) found in {0}")]
    NoDomains(PathBuf),
    #[error("{} schema error(s):\n  {}", .0.len(), .0.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n  "))]
    Schema(Vec<SchemaIssue>),
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
