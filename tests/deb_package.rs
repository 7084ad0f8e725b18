//! The Debian package: `cargo deb --no-build` packs the release binaries this build made (the
//! metadata is in daemon/Cargo.toml), and the package, unpacked into a scratch root with `dpkg -x`,
//! holds what a Raspberry Pi install needs: the daemon and both workers side by side, the unit, the
//! conffile, maintainer scripts that make the `sotto` user and /var/lib/sotto/models. From that root,
//! `sotto models import` fills the model directory from this machine's store, and the packaged
//! binary accepts the packaged /etc/sotto/sotto.toml and resolves a command.
//! Needs cargo-deb and dpkg-dev: tools/setup.d/packaging.sh.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sotto_tests::daemon::{repo_root, sotto, target_dir};

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    text(&out)
}

/// `cargo deb` on the binaries of this build; returns the .deb.
fn build_deb(out_dir: &Path) -> PathBuf {
    let probe = Command::new("cargo").args(["deb", "--version"]).output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "cargo-deb is missing: run tools/setup.d/packaging.sh (cargo install cargo-deb --locked)"
    );
    // The target dir that holds this test binary's `release/` (cargo deb takes it from cargo metadata).
    let target_root = target_dir().parent().expect("target root").to_path_buf();
    run(Command::new("cargo")
        .args(["deb", "-p", "sotto", "--no-build", "--strip", "--fast", "--output"])
        .arg(out_dir)
        .env("CARGO_TARGET_DIR", &target_root)
        .current_dir(repo_root()));
    let debs: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb expected in {}: {debs:?}", out_dir.display());
    debs.into_iter().next().unwrap()
}

/// The model directory of this machine's store (the test suite's models), from the built binary.
fn host_model_dir() -> PathBuf {
    let out = sotto().args(["models", "path", "silero-vad"]).output().unwrap();
    assert!(out.status.success(), "the host model store must hold the default profile:\n{}", text(&out));
    let vad = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    vad.parent().unwrap().to_path_buf()
}

#[test]
fn amd64_package_installs_into_a_scratch_root_and_runs_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path());
    let name = deb.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("sotto_") && name.ends_with("_amd64.deb"), "{name}");

    // Contents and control data.
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/sotto",
        "./usr/bin/sotto-stt-worker",
        "./usr/bin/sotto-slm-worker",
        "./etc/sotto/sotto.toml",
        "/systemd/system/sotto.service",
        "./usr/share/doc/sotto/examples/mosquitto-acl.example",
        "./usr/share/doc/sotto/copyright",
    ] {
        assert!(listing.lines().any(|l| l.trim_end().ends_with(path)), "{path} not in the package:\n{listing}");
    }
    assert!(!listing.contains(".onnx") && !listing.contains(".gguf"), "models must not be packaged:\n{listing}");
    let control = tmp.path().join("control");
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let read = |f: &str| std::fs::read_to_string(control.join(f)).unwrap_or_else(|e| panic!("control file {f}: {e}"));
    assert_eq!(read("conffiles").trim(), "/etc/sotto/sotto.toml");
    let fields = read("control");
    let depends = fields.lines().find(|l| l.starts_with("Depends:")).unwrap_or_else(|| panic!("{fields}"));
    for dep in ["libc6", "libasound2", "adduser"] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    let postinst = read("postinst");
    assert!(postinst.contains("adduser --system") && postinst.contains("/var/lib/sotto/models"), "{postinst}");
    assert!(read("postrm").contains("purge"), "postrm removes the model directory on purge");

    // Unpack, and make the model directory as postinst does (dpkg -x runs no scripts).
    let root = tmp.path().join("root");
    run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root));
    let models = root.join("var/lib/sotto/models");
    std::fs::create_dir_all(&models).unwrap();
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/sotto.service"))
        .or_else(|_| std::fs::read_to_string(root.join("usr/lib/systemd/system/sotto.service")))
        .expect("the unit in the package");
    assert!(unit.contains("SOTTO_MODELS=/var/lib/sotto/models") && unit.contains("--config /etc/sotto/sotto.toml"));
    let sotto_in_root = || {
        let mut cmd = Command::new(root.join("usr/bin/sotto"));
        // As the unit runs it, with the scratch root's model directory; the workers are found beside
        // the binary, as on a board.
        cmd.env("SOTTO_MODELS", &models).env_remove("SOTTO_WORKER_DIR").env("RUST_LOG", "warn");
        cmd
    };
    let config = root.join("etc/sotto/sotto.toml");

    // No models yet: the check says so and names the directory it looked in.
    let out = sotto_in_root().arg("check-config").arg(&config).output().unwrap();
    assert!(!out.status.success(), "check-config must fail without models:\n{}", text(&out));
    assert!(text(&out).contains(&format!("model directory {}", models.display())), "{}", text(&out));

    // Import a model directory made elsewhere (here: this machine's store), verified by sha256.
    let imported = run(sotto_in_root().args(["models", "import", "--profile", "default"]).arg(host_model_dir()));
    assert!(imported.contains("onnxruntime: imported") && imported.contains("whisper-base: imported"), "{imported}");

    let checked = run(sotto_in_root().arg("check-config").arg(&config));
    assert!(checked.contains(": OK"), "{checked}");
    let parsed = run(sotto_in_root().args(["parse", "turn on the kitchen lights"]));
    let json: serde_json::Value = serde_json::from_str(parsed.lines().next().unwrap_or_default())
        .unwrap_or_else(|e| panic!("parse output is not JSON ({e}): {parsed}"));
    assert_eq!(json["intent"], "light.set", "{parsed}");
    assert_eq!(json["slots"], serde_json::json!({"room": "kitchen", "state": "on"}), "{parsed}");
}
