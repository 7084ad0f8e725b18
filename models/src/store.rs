//! The model cache directory: where each model lives and whether it is intact.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::manifest::{Manifest, ModelEntry, Role};
use crate::progress::sha256_file;

/// File name of the user's own manifest additions inside the cache directory.
pub const LOCAL_MANIFEST: &str = "models.local.toml";

/// The cache directory: `$SOTTO_MODELS`, else [`default_dir`]. The tools (`tools/env.sh`) and CI
/// use the same default, so models fetched by `tools/setup.sh` are the ones `sotto run` finds.
pub fn cache_dir() -> Result<PathBuf, StoreError> {
    match non_empty_env("SOTTO_MODELS") {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => default_dir(),
    }
}

/// The default cache directory, ignoring `$SOTTO_MODELS`: `$XDG_CACHE_HOME/sotto/models`, else
/// `~/.cache/sotto/models`. A cache, not data: every file can be fetched again and is verified.
pub fn default_dir() -> Result<PathBuf, StoreError> {
    if let Some(dir) = non_empty_env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("sotto/models"));
    }
    non_empty_env("HOME").map(|h| PathBuf::from(h).join(".cache/sotto/models")).ok_or(StoreError::NoCacheDir)
}

fn non_empty_env(key: &str) -> Option<std::ffi::OsString> {
    std::env::var_os(key).filter(|v| !v.is_empty())
}

pub struct Store {
    dir: PathBuf,
    manifest: Manifest,
    /// The CPU architecture whose entries this store uses: this machine's, unless a model directory
    /// is filled for another board ([`Store::for_arch`]).
    arch: String,
}

/// What `list` shows for one model.
#[derive(Debug)]
pub enum Status {
    Verified(PathBuf),
    Missing(PathBuf),
    Bad(StoreError),
}

/// Records a successful full hash so that opening a model later costs a `stat`, not a re-hash;
/// any change of size or modification time invalidates it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Stamp {
    sha256: String,
    size: u64,
    mtime_ns: u128,
}

impl Store {
    /// The store at [`cache_dir`] with the built-in manifest plus the user's `models.local.toml`.
    pub fn open() -> Result<Store, StoreError> {
        let dir = cache_dir()?;
        let manifest = Manifest::load_with_local(&dir.join(LOCAL_MANIFEST))?;
        Ok(Store::with_manifest(dir, manifest))
    }

    pub fn with_manifest(dir: impl Into<PathBuf>, manifest: Manifest) -> Store {
        Store { dir: dir.into(), manifest, arch: std::env::consts::ARCH.into() }
    }

    /// The same store using the entries of another architecture (`aarch64`, `x86_64`): fills a
    /// model directory on one machine for a board without network, to `sotto models import` there.
    pub fn for_arch(self, arch: &str) -> Result<Store, StoreError> {
        let known = self.manifest.arches();
        if !known.contains(&arch) {
            return Err(StoreError::UnknownArch { arch: arch.into(), known: known.join(", ") });
        }
        Ok(Store { arch: arch.into(), ..self })
    }

    pub fn arch(&self) -> &str {
        &self.arch
    }

    /// Model ids of the manifest usable on this store's architecture, in manifest order.
    pub fn ids(&self) -> Vec<&str> {
        self.manifest.ids_for_arch(&self.arch)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The manifest entry of `id` for this store's architecture.
    pub fn entry(&self, id: &str) -> Result<&ModelEntry, StoreError> {
        if let Some(e) = self.manifest.entry_for_arch(id, &self.arch) {
            return Ok(e);
        }
        if self.manifest.models.iter().any(|m| m.id == id) {
            return Err(StoreError::NoEntryForArch { id: id.into(), arch: self.arch.clone() });
        }
        Err(StoreError::UnknownModel { id: id.into(), known: self.ids().join(", ") })
    }

    /// Model ids of a profile.
    pub fn profile(&self, name: &str) -> Result<Vec<String>, StoreError> {
        self.manifest.profiles.get(name).cloned().ok_or_else(|| StoreError::UnknownProfile {
            name: name.into(),
            known: self.manifest.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The model of `role` a profile uses: its first of that role (a profile may list more, e.g.
    /// the base a derived language model is made from).
    pub fn profile_model(&self, ids: &[String], role: Role) -> Option<String> {
        ids.iter().find(|id| self.entry(id).is_ok_and(|e| e.role == role)).cloned()
    }

    /// Where the file of `id` belongs (whether or not it is there).
    pub fn file_path(&self, id: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(&self.entry(id)?.file))
    }

    /// Path of the present, intact file of `id`. Hashes the file the first time (and after any
    /// change); later calls only compare size and modification time with the recorded check.
    pub fn path(&self, id: &str) -> Result<PathBuf, StoreError> {
        let entry = self.entry(id)?;
        let path = self.dir.join(&entry.file);
        let meta = check_size(entry, &path)?;
        if let Some(stamp) = read_stamp(&self.dir, entry) {
            let accepted = entry.accepted().iter().any(|e| e.sha256 == stamp.sha256);
            if accepted && stamp == make_stamp(&stamp.sha256, &meta) {
                return Ok(path);
            }
        }
        self.verify(id)
    }

    /// Re-hashes the file of `id` regardless of earlier checks.
    pub fn verify(&self, id: &str) -> Result<PathBuf, StoreError> {
        let entry = self.entry(id)?;
        let path = self.dir.join(&entry.file);
        let sha = verify_file(entry, &path)?;
        self.record_verified(entry, &path, &sha);
        Ok(path)
    }

    /// [`Store::verify`] plus, for language models, GGUF inspection (a non-4-bit model is
    /// accepted with a warning naming its type).
    pub fn check(&self, id: &str) -> Result<PathBuf, StoreError> {
        let path = self.verify(id)?;
        if self.entry(id)?.role == Role::Slm {
            crate::gguf::inspect_and_warn(&path).map_err(|source| StoreError::BadGguf { id: id.into(), source })?;
        }
        Ok(path)
    }

    /// Checks each of `ids` ([`Store::check`]); one result per id, in order.
    pub fn check_all(&self, ids: &[String]) -> Vec<(String, Result<PathBuf, StoreError>)> {
        ids.iter().map(|id| (id.clone(), self.check(id))).collect()
    }

    pub fn status(&self, id: &str) -> Status {
        match self.path(id) {
            Ok(p) => Status::Verified(p),
            Err(StoreError::Missing { path, .. }) => Status::Missing(path),
            Err(e) => Status::Bad(e),
        }
    }

    pub(crate) fn tmp_dir(&self) -> Result<PathBuf, StoreError> {
        let tmp = self.dir.join(".tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        Ok(tmp)
    }

    pub(crate) fn record_verified(&self, entry: &ModelEntry, path: &Path, sha256: &str) {
        if let Ok(meta) = std::fs::metadata(path) {
            write_stamp(&self.dir, entry, &make_stamp(sha256, &meta));
        }
    }
}

pub(crate) fn check_size(entry: &ModelEntry, path: &Path) -> Result<std::fs::Metadata, StoreError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing(entry, path)),
        Err(e) => return Err(StoreError::io(path, e)),
    };
    let actual = meta.len();
    let accepted = entry.accepted();
    if accepted.iter().any(|e| e.size == actual) {
        return Ok(meta);
    }
    let (id, path) = (entry.id.clone(), path.to_path_buf());
    // Name the size the file was most likely meant to have: the smallest one it falls short of.
    match accepted.iter().map(|e| e.size).filter(|s| *s > actual).min() {
        Some(expected) => Err(StoreError::Truncated { id, path, expected, actual }),
        None => Err(StoreError::WrongSize { id, path, expected: entry.size, actual }),
    }
}

/// The error for an absent file. If the store is not at the default directory (`SOTTO_MODELS` or
/// `models.dir` point elsewhere) and the default one holds the file, the error says so: that is
/// where `tools/setup.sh` and a plain `sotto models fetch` put it.
fn missing(entry: &ModelEntry, path: &Path) -> StoreError {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let elsewhere = default_dir().ok().filter(|d| *d != dir).map(|d| d.join(&entry.file)).filter(|p| p.exists());
    StoreError::Missing { id: entry.id.clone(), path: path.into(), dir, elsewhere }
}

/// Full check of a file against its manifest entry: present, exact size, sha256. Returns the
/// sha256 it matched.
pub fn verify_file(entry: &ModelEntry, path: &Path) -> Result<String, StoreError> {
    let meta = check_size(entry, path)?;
    let (actual, _) = sha256_file(path, &entry.id).map_err(|e| StoreError::io(path, e))?;
    let candidates: Vec<&str> =
        entry.accepted().into_iter().filter(|e| e.size == meta.len()).map(|e| e.sha256).collect();
    if candidates.contains(&actual.as_str()) {
        return Ok(actual);
    }
    Err(StoreError::HashMismatch { id: entry.id.clone(), path: path.into(), expected: candidates.join(" or "), actual })
}

fn stamp_path(dir: &Path, entry: &ModelEntry) -> PathBuf {
    dir.join(format!(".{}.verified", entry.file))
}

fn make_stamp(sha256: &str, meta: &std::fs::Metadata) -> Stamp {
    let mtime_ns =
        meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos()).unwrap_or(0);
    Stamp { sha256: sha256.into(), size: meta.len(), mtime_ns }
}

fn read_stamp(dir: &Path, entry: &ModelEntry) -> Option<Stamp> {
    let text = std::fs::read_to_string(stamp_path(dir, entry)).ok()?;
    serde_json::from_str(&text).ok()
}

fn write_stamp(dir: &Path, entry: &ModelEntry, stamp: &Stamp) {
    let path = stamp_path(dir, entry);
    let json = serde_json::to_string(stamp).expect("a stamp serialises");
    // Written aside and renamed so that a concurrent reader never sees half a stamp. Losing the
    // stamp only costs a re-hash next time, so a failure is not an error.
    let tmp = path.with_extension(format!("verified.{}", std::process::id()));
    if let Err(e) = std::fs::write(&tmp, json).and_then(|()| std::fs::rename(&tmp, &path)) {
        let _ = std::fs::remove_file(&tmp);
        tracing::debug!(path = %path.display(), error = %e, "cannot record verification");
    }
}
