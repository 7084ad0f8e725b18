//! Helpers shared by the model-store tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sotto_models::{Manifest, Store};

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A manifest with one model `m` (file `m.bin`) whose content is `content`, fetched from `sources`
/// (TOML inline tables).
pub fn one_model_manifest(content: &[u8], sources: &[String]) -> Manifest {
    model_manifest("vad", content, sources)
}

/// Like [`one_model_manifest`] with the given role.
pub fn model_manifest(role: &str, content: &[u8], sources: &[String]) -> Manifest {
    let text = format!(
        "[profiles]\nsmall = [\"m\"]\n\n[[model]]\nid = \"m\"\nrole = \"{role}\"\nfile = \"m.bin\"\nsize = {}\nsha256 = \"{}\"\nlicense = \"MIT\"\nsources = [{}]\n",
        content.len(),
        sha256(content),
        sources.join(", ")
    );
    Manifest::parse(&text, "test manifest").expect("test manifest is valid")
}

pub fn file_url(path: &Path) -> String {
    format!("{{ kind = \"url\", url = \"file://{}\" }}", path.display())
}

pub fn store(dir: &Path, manifest: Manifest) -> Store {
    Store::with_manifest(dir, manifest)
}

/// The real model store (`$SOTTO_MODELS`); tests needing real models fail with a clear message
/// naming the missing model when it has not been fetched.
pub fn real_model(id: &str) -> PathBuf {
    let store = Store::open().expect("opening the model store");
    match store.path(id) {
        Ok(p) => p,
        Err(e) => panic!("this test needs the real model {id:?}: {e}\n(run `sotto models fetch --profile default` and `--profile tiny`)"),
    }
}
