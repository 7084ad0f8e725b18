//! Fetching: sources in order, verification before the file gets its name, and an error naming
//! every failed source when none works. Uses file:// URLs (curl), so no network is needed.

mod common;

use common::*;
use sotto_models::{FetchOutcome, Fetcher, StoreError};

const CONTENT: &[u8] = b"weights weights weights weights weights";

fn no_partial_left(cache: &std::path::Path) {
    let mut stack = vec![cache.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                assert!(!name.contains("partial"), "left behind: {}", p.display());
            }
        }
    }
}

#[test]
fn fetch_falls_back_to_the_next_source_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    std::fs::write(&good, CONTENT).unwrap();
    let cache = dir.path().join("cache");
    let sources = [file_url(&dir.path().join("absent.bin")), file_url(&good)];
    let s = store(&cache, one_model_manifest(CONTENT, &sources));
    std::fs::create_dir_all(&cache).unwrap();
    let mut f = Fetcher::new(&s);
    assert_eq!(f.fetch("m").unwrap(), FetchOutcome::Fetched);
    assert_eq!(std::fs::read(cache.join("m.bin")).unwrap(), CONTENT);
    assert_eq!(f.fetch("m").unwrap(), FetchOutcome::AlreadyPresent);
    drop(f);
    no_partial_left(&cache);
}

#[test]
fn all_sources_failing_names_each_source_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.bin");
    std::fs::write(&wrong, b"not the weights you are looking for....").unwrap();
    let short = dir.path().join("short.bin");
    std::fs::write(&short, &CONTENT[..5]).unwrap();
    let absent = dir.path().join("absent.bin");
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let sources = [file_url(&absent), file_url(&wrong), file_url(&short)];
    let s = store(&cache, one_model_manifest(CONTENT, &sources));
    let err = Fetcher::new(&s).fetch("m").unwrap_err();
    let StoreError::AllSourcesFailed { id, failures } = &err else { panic!("{err:?}") };
    assert_eq!(id, "m");
    assert_eq!(failures.len(), 3);
    assert!(failures[0].source.contains("absent.bin") && failures[0].reason.contains("failed"), "{:?}", failures[0]);
    assert!(failures[1].source.contains("wrong.bin") && failures[1].reason.contains("sha256"), "{:?}", failures[1]);
    assert!(failures[2].source.contains("short.bin") && failures[2].reason.contains("5 bytes"), "{:?}", failures[2]);
    let msg = err.to_string();
    assert!(msg.contains("1. url file://") && msg.contains("3. url file://"), "{msg}");
    // Nothing that looks like the model was left behind.
    assert!(!cache.join("m.bin").exists());
    no_partial_left(&cache);
}

#[test]
fn a_corrupt_file_in_the_cache_is_replaced_by_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bin");
    std::fs::write(&good, CONTENT).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(cache.join("m.bin"), b"garbage").unwrap();
    let s = store(&cache, one_model_manifest(CONTENT, &[file_url(&good)]));
    assert!(s.path("m").is_err());
    assert_eq!(Fetcher::new(&s).fetch("m").unwrap(), FetchOutcome::Fetched);
    assert_eq!(s.path("m").unwrap(), cache.join("m.bin"));
}

#[test]
fn a_url_source_with_its_own_published_hash_is_accepted_as_an_alternative() {
    let dir = tempfile::tempdir().unwrap();
    let other = b"the host's own build of the same model";
    let host_file = dir.path().join("official.bin");
    std::fs::write(&host_file, other).unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let source = format!(
        "{{ kind = \"url\", url = \"file://{}\", size = {}, sha256 = \"{}\" }}",
        host_file.display(),
        other.len(),
        sha256(other)
    );
    let s = store(&cache, one_model_manifest(CONTENT, &[file_url(&dir.path().join("absent")), source]));
    assert_eq!(Fetcher::new(&s).fetch("m").unwrap(), FetchOutcome::Fetched);
    assert_eq!(std::fs::read(s.path("m").unwrap()).unwrap(), other);
    assert!(s.verify("m").is_ok());
    // A file of the same size as the alternative but other bytes matches neither hash.
    let mut bad = other.to_vec();
    bad[0] ^= 1;
    std::fs::write(cache.join("m.bin"), &bad).unwrap();
    match s.verify("m") {
        Err(StoreError::HashMismatch { expected, .. }) => assert_eq!(expected, sha256(other)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn http_source_is_downloaded_from_a_loopback_server() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // First request: 404 (the first source fails); second: the file.
        for status in ["404 Not Found", "200 OK"] {
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).unwrap();
            let body: &[u8] = if status.starts_with("200") { CONTENT } else { b"" };
            let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(body).unwrap();
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let url = |p: &str| format!("{{ kind = \"url\", url = \"http://127.0.0.1:{port}/{p}\" }}");
    let s = store(&cache, one_model_manifest(CONTENT, &[url("missing.bin"), url("m.bin")]));
    assert_eq!(Fetcher::new(&s).fetch("m").unwrap(), FetchOutcome::Fetched);
    assert_eq!(std::fs::read(cache.join("m.bin")).unwrap(), CONTENT);
    server.join().unwrap();
}
