//! Shared by the integration tests: real models from the store, fixtures and their manifest.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sotto_audio::{FrontEndModels, TriggerConfig, SHIPPED_WAKE_WORDS};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/audio")
}

/// The store's models for all shipped wake words, with ONNX Runtime loaded. Panics with the
/// missing ids and the command that fetches them.
pub fn models(trigger: &TriggerConfig) -> FrontEndModels {
    let store = sotto_models::Store::open().unwrap_or_else(|e| panic!("cannot open the model store: {e}"));
    let fetch = "run `sotto models fetch --profile default` (or tools/setup.sh)";
    let runtime =
        store.path(sotto_audio::ONNXRUNTIME_ID).unwrap_or_else(|e| panic!("model `onnxruntime` missing: {e}; {fetch}"));
    sotto_audio::init_onnx_runtime(&runtime).expect("loading ONNX Runtime");
    let wakes: Vec<String> = SHIPPED_WAKE_WORDS.iter().map(|s| s.to_string()).collect();
    FrontEndModels::resolve(&wakes, trigger, |id| store.path(id)).unwrap_or_else(|e| panic!("{e}; {fetch}"))
}

#[derive(serde::Deserialize, Debug, Clone)]
pub struct Fixture {
    pub file: String,
    pub kind: String,
    pub wake: Option<String>,
    #[serde(default)]
    pub wake_start_s: Option<f64>,
    #[serde(default)]
    pub wake_end_s: Option<f64>,
    #[serde(default)]
    pub speech_start_s: Option<f64>,
    #[serde(default)]
    pub speech_end_s: Option<f64>,
    #[serde(default)]
    pub twin_of: Option<String>,
}

pub fn manifest() -> Vec<Fixture> {
    #[derive(serde::Deserialize)]
    struct M {
        fixtures: Vec<Fixture>,
    }
    let path = fixtures().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let m: M = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    m.fixtures
}
