//! `Store::open` reads `$SOTTO_MODELS` and merges the user's `models.local.toml` (own models and
//! profiles); a broken user file is an error naming the file and key. One test in its own binary
//! because it sets process environment.

mod common;

#[test]
fn user_manifest_adds_models_and_profiles_and_is_validated() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("SOTTO_MODELS", dir.path());
    let content = b"my own wake word model";
    let local = format!(
        "[profiles]\nmine = [\"silero-vad\", \"my-wake\"]\n\n[[model]]\nid = \"my-wake\"\nrole = \"wake\"\nfile = \"my-wake.onnx\"\nsize = {}\nsha256 = \"{}\"\nlicense = \"MIT\"\nsources = [{{ kind = \"url\", url = \"file:///nowhere\" }}]\n",
        content.len(),
        common::sha256(content)
    );
    std::fs::write(dir.path().join("models.local.toml"), &local).unwrap();
    let store = sotto_models::Store::open().unwrap();
    assert_eq!(store.dir(), dir.path());
    assert_eq!(store.profile("mine").unwrap(), vec!["silero-vad", "my-wake"]);
    assert!(store.profile("default").unwrap().contains(&"whisper-base".to_string()), "built-in profiles stay");
    std::fs::write(dir.path().join("my-wake.onnx"), content).unwrap();
    assert_eq!(store.path("my-wake").unwrap(), dir.path().join("my-wake.onnx"));

    // A user entry clashing with a built-in id, and a typo'd key, are reported with the file name.
    let clash = local.replace("id = \"my-wake\"", "id = \"silero-vad\"").replace("\"my-wake\"]", "\"silero-vad\"]");
    std::fs::write(dir.path().join("models.local.toml"), clash).unwrap();
    let err = sotto_models::Store::open().err().expect("duplicate id must be refused").to_string();
    assert!(err.contains("models.local.toml") && err.contains("duplicate id"), "{err}");
    std::fs::write(dir.path().join("models.local.toml"), local.replace("license", "licence")).unwrap();
    let err = sotto_models::Store::open().err().expect("unknown key must be refused").to_string();
    assert!(err.contains("models.local.toml") && err.contains("licence"), "{err}");
}
