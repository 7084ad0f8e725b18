//! The shipped systemd unit: `systemd-analyze verify` accepts it and its sandbox keeps the
//! exposure score `systemd-analyze security` gives it at the level the README states.

use std::process::Command;

use sotto_tests::daemon::{repo_root, sotto_bin};

/// The unit with `ExecStart` pointing at the binary this build made (verify checks it exists).
fn unit_for_this_build(dir: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(repo_root().join("systemd/sotto.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/bin/sotto "), "the unit runs /usr/bin/sotto");
    let path = dir.join("sotto.service");
    std::fs::write(&path, text.replace("/usr/bin/sotto ", &format!("{} ", sotto_bin().display()))).unwrap();
    path
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "verify failed: {stderr}");
}

#[test]
fn unit_sandbox_exposure_is_at_most_2() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out =
        Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&unit).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let line =
        text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("no score in:\n{text}"));
    let score: f32 =
        line.split(':').nth(1).and_then(|s| s.split_whitespace().next()).and_then(|s| s.parse().ok()).unwrap();
    assert!(score <= 2.0, "exposure {score} (> 2.0): {line}");
}

#[test]
fn unit_is_a_notify_service_with_watchdog_and_restart() {
    let text = std::fs::read_to_string(repo_root().join("systemd/sotto.service")).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=audio",
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "missing {line}");
    }
}
