//! Early decisions through the built daemon, fed at recorded speed (`--realtime`) as from a
//! microphone: a command the grammar says is complete is acted on at a pause, and a command with a
//! hesitation inside it (`tests/fixtures/hesitation/`, Piper with inserted silences) is never cut
//! there. `endpoint.trailing_silence_ms` is set to 3 s so that only the early decision can end an
//! utterance before it (the transcript of the pause is always ready by then, even on a busy machine).

use std::path::{Path, PathBuf};

use serde_json::json;
use sotto_tests::daemon::{
    concat_wavs, fixture, one_at_a_time, repo_root, run_on_file_with, unique_site, write_config,
};

const CONFIG: &str = "[endpoint]\ntrailing_silence_ms = 3000\n\n[tts]\nresponses = false\n";

/// `input` followed by `seconds` of silence (sox).
fn padded(input: &Path, out: &Path, seconds: f32) -> PathBuf {
    let status = std::process::Command::new("sox")
        .arg(input)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(out)
        .args(["pad", "0", &seconds.to_string()])
        .status()
        .expect("sox is missing (Debian package sox)");
    assert!(status.success());
    out.to_path_buf()
}

/// Runs `wav` at recorded speed; returns the printed messages and the `latency` log lines.
fn run(wav: &Path, dir: &Path) -> (Vec<sotto_tests::daemon::Printed>, Vec<String>) {
    let site = unique_site("early");
    let config =
        write_config(dir, &format!("[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{site}\"\n\n{CONFIG}"));
    let (output, printed) = run_on_file_with(&config, wav, &["--realtime"]);
    let log = String::from_utf8_lossy(&output.stderr);
    (printed, log.lines().filter(|l| l.contains(" latency ") || l.ends_with("latency")).map(str::to_string).collect())
}

#[test]
fn a_complete_command_is_acted_on_at_a_pause() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let wav = padded(&fixture("pos_jarvis_home_lights.wav"), &dir.path().join("lights.wav"), 3.5);
    let (printed, latency) = run(&wav, dir.path());
    let action = printed.iter().find(|p| p.topic.ends_with("/home/light/kitchen")).expect("the light is switched");
    assert_eq!(action.payload, json!({"state": "on"}));
    assert_eq!(latency.len(), 1, "{latency:?}");
    assert!(latency[0].contains("early=true"), "decided at the pause, not after 3 s: {}", latency[0]);
}

#[test]
fn a_hesitation_inside_a_command_is_not_taken_for_its_end() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let folder = repo_root().join("tests/fixtures/hesitation");
    let manifest: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap()).unwrap();
    let parts: Vec<PathBuf> = manifest.iter().map(|m| folder.join(m["file"].as_str().unwrap())).collect();
    let stream = dir.path().join("stream.wav");
    concat_wavs(&stream, &parts, 3.5);
    let wav = padded(&stream, &dir.path().join("padded.wav"), 3.5);
    let (printed, latency) = run(&wav, dir.path());
    let intents: Vec<&serde_json::Value> =
        printed.iter().filter(|p| p.topic.starts_with("hermes/intent/")).map(|p| &p.payload).collect();
    assert_eq!(intents.len(), manifest.len(), "one command per recording: {printed:#?}\n{latency:#?}");
    for (heard, expected) in intents.iter().zip(&manifest) {
        assert_eq!(heard["intent"]["intentName"], expected["intent"], "{heard}\nexpected {expected}");
        for (slot, value) in expected["slots"].as_object().unwrap() {
            let got = heard["slots"].as_array().unwrap().iter().find(|s| s["slotName"] == json!(slot));
            let got = got.map(|s| s["value"]["value"].clone());
            assert_eq!(
                got.and_then(|v| v.as_f64().map(|x| json!(x)).or(Some(v))),
                Some(value.as_f64().map_or(value.clone(), |x| json!(x))),
                "{slot} in {heard}"
            );
        }
    }
    // Complete commands ended at their final pause, not after the 3 s of silence (nor at the
    // hesitation); a timer's duration may always go on, so it waits for the full silence.
    assert_eq!(latency.len(), manifest.len(), "{latency:#?}");
    for (line, expected) in latency.iter().zip(&manifest) {
        let early = expected["complete"].as_bool().unwrap();
        assert!(line.contains(&format!("early={early}")), "{expected}\n{line}");
    }
}
