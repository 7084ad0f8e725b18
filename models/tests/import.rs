//! `import`: models copied from another machine's model directory are verified against this
//! store's manifest on the way in; a bad copy is refused, names the file it came from, and leaves
//! nothing under the model's name.

mod common;

use common::*;
use sotto_models::{import, FetchOutcome, StoreError};

const CONTENT: &[u8] = b"model weights made on another machine";

#[test]
fn import_copies_verified_files_and_refuses_bad_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, dest) = (tmp.path().join("usb"), tmp.path().join("models"));
    std::fs::create_dir_all(&src).unwrap();
    let store = store(&dest, one_model_manifest(CONTENT, &[file_url(&tmp.path().join("nowhere"))]));

    // Absent in the source directory.
    let err = import(&store, "m", &src).unwrap_err();
    assert!(matches!(err, StoreError::NotInSource { .. }), "{err:?}");
    assert!(err.to_string().contains(&src.join("m.bin").display().to_string()), "{err}");

    // Same size, one bit flipped: refused, named, not installed.
    let mut bad = CONTENT.to_vec();
    bad[0] ^= 1;
    std::fs::write(src.join("m.bin"), &bad).unwrap();
    let err = import(&store, "m", &src).unwrap_err();
    assert!(matches!(err, StoreError::HashMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&src.join("m.bin").display().to_string()), "{err}");
    assert!(!dest.join("m.bin").exists(), "a refused copy must not appear under the model's name");

    std::fs::write(src.join("m.bin"), CONTENT).unwrap();
    assert_eq!(import(&store, "m", &src).unwrap(), FetchOutcome::Fetched);
    assert_eq!(std::fs::read(dest.join("m.bin")).unwrap(), CONTENT);
    assert_eq!(store.path("m").unwrap(), dest.join("m.bin"));
    assert_eq!(import(&store, "m", &src).unwrap(), FetchOutcome::AlreadyPresent);
}

/// A directory filled on one machine for a board of another architecture: `for_arch` takes that
/// architecture's entry (ONNX Runtime has one per architecture under the same file name), and the
/// board's own store accepts the files while this machine's refuses the foreign one.
#[test]
fn a_directory_fetched_for_another_architecture_imports_there() {
    let tmp = tempfile::tempdir().unwrap();
    let (x86, arm) = (b"x86-64 runtime".as_slice(), b"aarch64 runtime".as_slice());
    let here = std::env::consts::ARCH;
    let other = if here == "aarch64" { "x86_64" } else { "aarch64" };
    let (mine, theirs) = if here == "aarch64" { (arm, x86) } else { (x86, arm) };
    let src = tmp.path().join("theirs.so");
    std::fs::write(&src, theirs).unwrap();
    let entry = |arch: &str, content: &[u8]| {
        format!(
            "[[model]]\nid = \"rt\"\nrole = \"runtime\"\narch = \"{arch}\"\nfile = \"rt.so\"\nsize = {}\nsha256 = \"{}\"\nlicense = \"MIT\"\nsources = [{}]\n",
            content.len(),
            sha256(content),
            file_url(&src)
        )
    };
    let text = format!("{}\n{}", entry(here, mine), entry(other, theirs));
    let manifest = sotto_models::Manifest::parse(&text, "test manifest").unwrap();

    let usb = tmp.path().join("usb");
    std::fs::create_dir_all(&usb).unwrap();
    let for_board = store(&usb, manifest.clone()).for_arch(other).unwrap();
    assert_eq!(for_board.entry("rt").unwrap().sha256, sha256(theirs));
    assert_eq!(sotto_models::Fetcher::new(&for_board).fetch("rt").unwrap(), FetchOutcome::Fetched);

    // On the board (its own architecture, like `for_arch(other)` here) the import verifies ...
    let board = store(&tmp.path().join("board"), manifest.clone()).for_arch(other).unwrap();
    assert_eq!(import(&board, "rt", &usb).unwrap(), FetchOutcome::Fetched);
    // ... while this machine's store refuses the other architecture's file.
    let err = import(&store(&tmp.path().join("here"), manifest.clone()), "rt", &usb).unwrap_err();
    assert!(matches!(err, StoreError::WrongSize { .. } | StoreError::HashMismatch { .. }), "{err:?}");

    let err = store(&usb, manifest).for_arch("sparc").err().expect("unknown arch refused");
    assert!(err.to_string().contains("sparc") && err.to_string().contains(other), "{err}");
}
