//! One model directory: the binary's default (`default_dir`) is the one `tools/env.sh` gives the
//! tools and CI, `SOTTO_MODELS` overrides both, and a missing model names the directory looked in
//! and the default one when that holds the file. One test in its own binary because it sets process
//! environment.

mod common;

use std::path::Path;
use std::process::Command;

use sotto_models::{cache_dir, default_dir, StoreError};

/// `SOTTO_MODELS` as `tools/env.sh` exports it for the given environment.
fn tools_models_dir(home: &Path, xdg_cache: Option<&Path>) -> String {
    let env_sh = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/env.sh");
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!("source '{}' && printf %s \"$SOTTO_MODELS\"", env_sh.display()));
    cmd.env_remove("SOTTO_MODELS").env_remove("SOTTO_CACHE").env_remove("XDG_CACHE_HOME").env("HOME", home);
    if let Some(x) = xdg_cache {
        cmd.env("XDG_CACHE_HOME", x);
    }
    let out = cmd.output().expect("running bash");
    assert!(out.status.success(), "tools/env.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn binary_and_tools_share_one_default_and_the_missing_error_names_both_dirs() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let xdg = tmp.path().join("xdg");
    std::env::remove_var("SOTTO_MODELS");
    std::env::set_var("HOME", &home);

    std::env::remove_var("XDG_CACHE_HOME");
    assert_eq!(default_dir().unwrap(), home.join(".cache/sotto/models"));
    assert_eq!(cache_dir().unwrap(), home.join(".cache/sotto/models"));
    assert_eq!(tools_models_dir(&home, None), home.join(".cache/sotto/models").to_str().unwrap());

    std::env::set_var("XDG_CACHE_HOME", &xdg);
    assert_eq!(cache_dir().unwrap(), xdg.join("sotto/models"));
    assert_eq!(tools_models_dir(&home, Some(&xdg)), xdg.join("sotto/models").to_str().unwrap());

    let other = tmp.path().join("other");
    std::env::set_var("SOTTO_MODELS", &other);
    assert_eq!(cache_dir().unwrap(), other, "SOTTO_MODELS overrides the default");
    std::env::remove_var("SOTTO_MODELS");

    // A store somewhere else, while the default directory has the file.
    let content = b"model bytes";
    let store =
        common::store(&other, common::one_model_manifest(content, &[common::file_url(&tmp.path().join("nowhere"))]));
    let err = store.path("m").unwrap_err();
    assert!(matches!(err, StoreError::Missing { elsewhere: None, .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("model directory {}", other.display())), "{err}");

    std::fs::create_dir_all(xdg.join("sotto/models")).unwrap();
    std::fs::write(xdg.join("sotto/models/m.bin"), content).unwrap();
    let msg = store.path("m").unwrap_err().to_string();
    assert!(msg.contains(&other.display().to_string()), "names the dir looked in: {msg}");
    assert!(msg.contains(&xdg.join("sotto/models/m.bin").display().to_string()), "names the default's copy: {msg}");
}
