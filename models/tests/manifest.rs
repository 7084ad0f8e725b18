//! The shipped manifest is valid and complete; bad manifests are rejected with every problem named.

use sotto_models::{Manifest, Role, Source};

#[test]
fn builtin_manifest_is_valid_and_has_the_contract_ids() {
    let m = Manifest::parse(sotto_models::manifest::BUILTIN_MANIFEST, "models.toml").unwrap();
    for id in [
        "oww-melspectrogram",
        "oww-embedding",
        "wake-hey_jarvis",
        "wake-alexa",
        "wake-hey_mycroft",
        "wake-hey_rhasspy",
        "silero-vad",
        "whisper-base",
        "gemma3-270m-q4_k_m",
        "smollm2-135m-instruct-q4_1",
    ] {
        assert!(m.entry(id).is_some(), "manifest lacks {id}");
    }
    for arch in ["x86_64", "aarch64"] {
        let ort = m.entry_for_arch("onnxruntime", arch).unwrap_or_else(|| panic!("no onnxruntime for {arch}"));
        assert_eq!(ort.role, Role::Runtime);
        assert_eq!(ort.arch.as_deref(), Some(arch));
    }
    let default = &m.profiles["default"];
    let tiny = &m.profiles["tiny"];
    // A profile's first model of a role is the one used.
    let used = |p: &[String], role: Role| p.iter().find(|id| m.entry(id).is_some_and(|e| e.role == role)).cloned();
    assert_eq!(used(default, Role::Slm).as_deref(), Some("gemma3-270m-q4_k_m-en"));
    // What it is made from comes with it: the tests compare the two.
    assert!(default.contains(&"gemma3-270m-q4_k_m-emb-q5_0".to_string()));
    assert_eq!(used(tiny, Role::Slm).as_deref(), Some("smollm2-135m-instruct-q4_1"));
    // The bases the tests and tools/distil work from come with the default profile.
    assert!(default.contains(&"gemma3-270m-q4_k_m".to_string()) && default.contains(&"whisper-base".to_string()));
    assert!(!default.contains(&"smollm2-135m-instruct-q4_1".to_string()));
    assert!(!tiny.contains(&"gemma3-270m-q4_k_m".to_string()));
    for p in [default, tiny] {
        assert_eq!(used(p, Role::Stt).as_deref(), Some("whisper-base-q8_0"));
        for id in ["silero-vad", "onnxruntime", "oww-melspectrogram", "oww-embedding", "wake-hey_jarvis"] {
            assert!(p.contains(&id.to_string()), "profile lacks {id}");
        }
    }
}

#[test]
fn sources_never_name_registry_hosts() {
    // Registry packages are fetched with the registries' own clients; the manifest only pins them.
    let m = Manifest::builtin();
    for e in &m.models {
        for s in &e.sources {
            if let Source::Url { url, .. } = s {
                assert!(!url.contains("pypi") && !url.contains("npmjs"), "{}: {url}", e.id);
            }
        }
    }
}

#[test]
fn invalid_manifest_reports_every_problem_with_its_key() {
    let text = r#"
[profiles]
default = ["a", "nope"]

[[model]]
id = "a"
role = "stt"
file = "../a.bin"
size = 0
sha256 = "XYZ"
license = "MIT"
sources = []

[[model]]
id = "a"
role = "stt"
file = "b.bin"
size = 3
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
license = "MIT"
sources = [{ kind = "url", url = "ftp://x" }, { kind = "pypi", parts = [{ package = "p", version = "1", path = "x", as = "y" }] },
           { kind = "derive", from = "elsewhere", convert = "gguf-token-embd-q5_0" }]
"#;
    let err = Manifest::parse(text, "bad.toml").unwrap_err().to_string();
    for needle in [
        "bad.toml",
        "model[0].file: model \"a\"",
        "model[0].size: model \"a\"",
        "model[0].sha256: model \"a\"",
        "model[0].sources: model \"a\": at least one",
        "model[1].id: model \"a\": duplicate",
        "model[1].sources[0].url: model \"a\"",
        "model[1].sources[1].parts[0].as: model \"a\"",
        "model[1].sources[2].from: model \"a\": \"elsewhere\" is not another model id",
        "profiles.default: unknown model id \"nope\"",
    ] {
        assert!(err.contains(needle), "error lacks {needle:?}:\n{err}");
    }
}

#[test]
fn unknown_keys_are_rejected_naming_the_key() {
    let text = "[[model]]\nid = \"a\"\nrole = \"stt\"\nfile = \"a\"\nsize = 1\nsha = \"x\"\nsha256 = \"x\"\nlicense = \"MIT\"\nsources = []\n";
    let err = Manifest::parse(text, "typo.toml").unwrap_err().to_string();
    assert!(err.contains("typo.toml") && err.contains("model[0].sha: unknown field `sha`"), "{err}");
    // The unknown key does not hide the bad values of the same file.
    assert!(err.contains("model[0].sha256") && err.contains("model[0].sources"), "{err}");
}
