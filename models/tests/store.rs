//! Store errors: each broken state of a model file has its own error naming the model, the file
//! and the repair command.

mod common;

use common::*;
use sotto_models::StoreError;

const CONTENT: &[u8] = b"a small model file, standing in for weights";

fn setup() -> (tempfile::TempDir, sotto_models::Store) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, CONTENT).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let s = store(&cache, one_model_manifest(CONTENT, &[file_url(&src)]));
    (dir, s)
}

#[test]
fn missing_file_names_the_fetch_command() {
    let (_d, s) = setup();
    let err = s.path("m").unwrap_err();
    assert!(matches!(err, StoreError::Missing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("\"m\"") && msg.contains("m.bin") && msg.contains("sotto models fetch m"), "{msg}");
}

#[test]
fn truncated_file_is_reported_as_truncated() {
    let (_d, s) = setup();
    std::fs::write(s.dir().join("m.bin"), &CONTENT[..10]).unwrap();
    let err = s.path("m").unwrap_err();
    assert!(
        matches!(err, StoreError::Truncated { expected, actual: 10, .. } if expected == CONTENT.len() as u64),
        "{err:?}"
    );
    assert!(err.to_string().contains("sotto models fetch m"));
}

#[test]
fn wrong_sha256_is_never_used() {
    let (_d, s) = setup();
    let mut bad = CONTENT.to_vec();
    bad[3] ^= 1;
    std::fs::write(s.dir().join("m.bin"), &bad).unwrap();
    let err = s.path("m").unwrap_err();
    match &err {
        StoreError::HashMismatch { expected, actual, .. } => {
            assert_eq!(expected, &sha256(CONTENT));
            assert_eq!(actual, &sha256(&bad));
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("sotto models fetch m"));
}

#[test]
fn good_file_verifies_and_a_later_change_is_caught() {
    let (_d, s) = setup();
    let file = s.dir().join("m.bin");
    std::fs::write(&file, CONTENT).unwrap();
    assert_eq!(s.path("m").unwrap(), file);
    // Same size, different bytes, newer mtime: the recorded check must not vouch for it.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut bad = CONTENT.to_vec();
    bad[0] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    assert!(matches!(s.path("m"), Err(StoreError::HashMismatch { .. })));
}

#[test]
fn unknown_ids_and_profiles_list_the_known_ones() {
    let (_d, s) = setup();
    let e = s.path("nope").unwrap_err().to_string();
    assert!(e.contains("\"nope\"") && e.contains("known: m"), "{e}");
    let e = s.profile("huge").unwrap_err().to_string();
    assert!(e.contains("\"huge\"") && e.contains("small"), "{e}");
}

#[test]
fn language_model_with_wrong_magic_fails_the_check_naming_the_model() {
    // The sha256 matches the manifest (a wrong file pinned by mistake, or a user entry), so only
    // the GGUF inspection can tell that it is not a language model.
    let dir = tempfile::tempdir().unwrap();
    let content = b"GGML this is not a GGUF file at all";
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("m.bin"), content).unwrap();
    let s = store(&cache, model_manifest("slm", content, &[file_url(&dir.path().join("x"))]));
    assert!(s.verify("m").is_ok(), "hash and size are right");
    let results = s.check_all(&["m".to_string()]);
    let err = results[0].1.as_ref().unwrap_err();
    assert!(
        matches!(err, StoreError::BadGguf { id, source: sotto_models::GgufError::BadMagic { .. } } if id == "m"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("not a GGUF file") && msg.contains("sotto models fetch m"), "{msg}");
}
