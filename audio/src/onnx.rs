//! One ONNX Runtime environment per process, loaded from the store's `libonnxruntime.so`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::builder::SessionBuilder;
use ort::session::Session;

use crate::AudioError;

static RUNTIME: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime from `lib` (the `onnxruntime` model of the store) once per process.
/// Later calls with the same path are no-ops; a different path is an error, because `ort` can
/// hold only one runtime.
pub fn init_onnx_runtime(lib: &Path) -> Result<(), AudioError> {
    let _guard = INIT.lock().unwrap_or_else(|poison| poison.into_inner());
    if let Some((loaded, _)) = RUNTIME.get() {
        return if loaded == lib {
            Ok(())
        } else {
            Err(AudioError::RuntimeMismatch { loaded: loaded.clone(), requested: lib.to_path_buf() })
        };
    }
    let load_err = |reason: String| AudioError::RuntimeLoad { path: lib.to_path_buf(), reason };
    if !lib.is_file() {
        return Err(load_err("no such file (run `sotto models fetch`)".into()));
    }
    let builder = ort::init_from(lib).map_err(|e| load_err(e.to_string()))?;
    let env = builder.with_name("sotto-audio").build().map_err(|e| load_err(e.to_string()))?;
    let _ = RUNTIME.set((lib.to_path_buf(), env));
    tracing::debug!(lib = %lib.display(), "ONNX Runtime loaded");
    Ok(())
}

/// A session builder on one thread: the boards we target have few cores and we account CPU per core.
fn builder(path: &Path) -> Result<SessionBuilder, AudioError> {
    builder_with_threads(path, 1)
}

fn builder_with_threads(path: &Path, threads: usize) -> Result<SessionBuilder, AudioError> {
    let (_, env) = RUNTIME.get().ok_or(AudioError::RuntimeMissing)?;
    let err = |e: ort::Error<SessionBuilder>| load_error(path, e.to_string());
    Session::builder(env)
        .map_err(|e| load_error(path, e.to_string()))?
        .with_intra_threads(threads.max(1))
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        .with_intra_op_spinning(false)
        .map_err(err)
}

fn load_error(path: &Path, reason: String) -> AudioError {
    AudioError::ModelLoad { path: path.to_path_buf(), reason }
}

/// A one-thread session from a model file.
pub(crate) fn session(path: &Path) -> Result<Session, AudioError> {
    onnx_session(path, 1)
}

/// A session for another crate's model (the text-to-speech voice) in this process's runtime, with
/// `threads` intra-op threads: a voice renders a whole sentence in one run, where a second core
/// shortens the time to the first audio.
pub fn onnx_session(path: &Path, threads: usize) -> Result<Session, AudioError> {
    if !path.is_file() {
        return Err(load_error(path, "no such file (run `sotto models fetch`)".into()));
    }
    builder_with_threads(path, threads)?.commit_from_file(path).map_err(|e| load_error(path, e.to_string()))
}

/// Like [`session`], from model bytes (e.g. a model adapted at load time); `path` names it in errors.
pub(crate) fn session_from_memory(bytes: &[u8], path: &Path) -> Result<Session, AudioError> {
    builder(path)?.commit_from_memory(bytes).map_err(|e| load_error(path, e.to_string()))
}

/// Checks that a model's first input has the expected rank, naming the model otherwise.
pub(crate) fn input_name(session: &Session, model: &str, index: usize) -> Result<String, AudioError> {
    session.inputs().get(index).map(|i| i.name().to_string()).ok_or_else(|| AudioError::ModelShape {
        model: model.to_string(),
        reason: format!("expected at least {} inputs, found {}", index + 1, session.inputs().len()),
    })
}

pub(crate) fn infer_err(model: &str) -> impl Fn(ort::Error) -> AudioError + '_ {
    move |e| AudioError::Inference { model: model.to_string(), reason: e.to_string() }
}
