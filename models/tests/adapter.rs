//! The bundled LoRA adapter is the one its record describes, and was trained on the domain files
//! and generator that ship now: a changed domain file or generator without a re-trained adapter
//! (tools/distil/distil.sh) fails here, not silently in the field.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use sotto_models::{Manifest, Role, Source};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `GENERATOR_VERSION = N` as tools/distil/generate.py declares it.
fn generator_version() -> u64 {
    let path = repo().join("tools/distil/generate.py");
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text.lines().find(|l| l.starts_with("GENERATOR_VERSION = ")).expect("GENERATOR_VERSION in generate.py");
    line["GENERATOR_VERSION = ".len()..].trim().parse().unwrap()
}

#[test]
fn bundled_adapter_matches_its_record_and_the_shipped_domains() {
    let m = Manifest::parse(sotto_models::manifest::BUILTIN_MANIFEST, "models.toml").unwrap();
    let adapters: Vec<_> = m.models.iter().filter(|e| e.role == Role::Adapter).collect();
    assert!(!adapters.is_empty(), "the manifest has no adapter");
    for entry in adapters {
        let Some(Source::Bundled { path }) = entry.sources.iter().find(|s| matches!(s, Source::Bundled { .. })) else {
            panic!("{}: no bundled source", entry.id)
        };
        let bytes = sotto_models::bundled::file(path).unwrap();
        assert_eq!(
            (bytes.len() as u64, sha256(bytes)),
            (entry.size, entry.sha256.clone()),
            "{}: size/sha256",
            entry.id
        );
        let record_path = repo().join("models").join(Path::new(path).with_extension("json"));
        let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
        assert_eq!(
            record["adapter_sha256"],
            entry.sha256.as_str(),
            "{}: record of another file",
            record_path.display()
        );
        assert_eq!(
            record["generator_version"].as_u64(),
            Some(generator_version()),
            "{}: trained with another version of tools/distil/generate.py; re-train (docs/distil.md)",
            entry.id
        );
        let base_id = record["base_model"]["id"].as_str().unwrap();
        let base = m.entry(base_id).unwrap_or_else(|| panic!("{}: base model {base_id} not in the manifest", entry.id));
        assert_eq!(base.role, Role::Slm);
        assert_eq!(record["base_model"]["sha256"], base.sha256.as_str(), "{}: trained on another base file", entry.id);
        let domains = record["domains"].as_array().unwrap();
        assert!(!domains.is_empty());
        for d in domains {
            let file = d["file"].as_str().unwrap();
            let shipped = repo().join("intents/domains").join(file);
            let now = sha256(&std::fs::read(&shipped).unwrap_or_else(|e| panic!("{}: {e}", shipped.display())));
            assert_eq!(
                d["sha256"].as_str(),
                Some(now.as_str()),
                "{} changed since {} was trained on it; re-train (docs/distil.md)",
                shipped.display(),
                entry.id
            );
        }
    }
}

#[test]
fn a_bundled_source_must_name_a_bundled_file() {
    let text = r#"
[[model]]
id = "x"
role = "adapter"
file = "x.gguf"
size = 1
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
license = "MIT"
sources = [{ kind = "bundled", path = "adapters/nowhere.gguf" }]
"#;
    let err = Manifest::parse(text, "test.toml").unwrap_err().to_string();
    assert!(err.contains("model[0].sources[0].path") && err.contains("is not bundled"), "{err}");
}
