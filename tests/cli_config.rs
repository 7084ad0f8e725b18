//! `sotto check-config` and `sotto run --config` on good and bad configs: every problem reported
//! at once, each with its key path, and a non-zero exit.

use sotto_tests::daemon::{sotto, write_config};

fn check(text: &str, online: bool) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), text);
    let mut cmd = sotto();
    cmd.arg("check-config").arg(&path);
    if online {
        cmd.arg("--online");
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn every_mistake_is_reported_with_its_key_path() {
    let (ok, text) = check(
        r#"
[models]
profile = "huge"
[[wake.models]]
name = "hey_siri"
threshold = 2.0
[endpoint]
trailing_silence_ms = 5
[intents]
domains = ["vehicle", "/nonexistent/pizza.toml"]
[mqtt]
site_id = "a/b"
[tts]
voice = "voice-nobody"
"#,
        false,
    );
    assert!(!ok, "{text}");
    for expected in [
        "tts.voice: unknown voice \"voice-nobody\"; the store has: voice-joe-medium",
        "models.profile: unknown profile \"huge\"",
        "wake.models[0].name: unknown wake word \"hey_siri\"",
        "wake.models[0].threshold",
        "endpoint.trailing_silence_ms",
        "intents.domains[1]: \"/nonexistent/pizza.toml\"",
        "mqtt.site_id",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// How many report lines mention `needle`.
fn lines_with(report: &str, needle: &str) -> usize {
    report.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_wrong_type_and_an_unknown_key_hide_no_other_problem() {
    let (ok, text) = check(
        r#"
[mqtt]
port = 99999
site_id = "a/b"
[stt]
languag = "en"
"#,
        false,
    );
    assert!(!ok, "{text}");
    for expected in ["mqtt.port: ", "stt.languag: unknown field `languag`", "mqtt.site_id: "] {
        assert_eq!(lines_with(&text, expected), 1, "{expected:?} not reported once in:\n{text}");
    }
    assert!(text.contains("99999"), "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
}

#[test]
fn an_unknown_wake_word_and_a_missing_domain_are_reported_once() {
    let (ok, text) = check(
        "[[wake.models]]\nname = \"hey_siri\"\n[intents]\ndomains = [\"home\", \"/nonexistent/pizza.toml\"]\n",
        false,
    );
    assert!(!ok, "{text}");
    assert_eq!(lines_with(&text, "hey_siri"), 1, "{text}");
    assert_eq!(lines_with(&text, "wake.models"), 1, "{text}");
    assert_eq!(lines_with(&text, "pizza.toml"), 1, "{text}");
    assert!(text.contains("wake.models[0].name: unknown wake word \"hey_siri\""), "{text}");
    assert!(text.contains("intents.domains[1]: \"/nonexistent/pizza.toml\" is neither"), "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
}

#[test]
fn an_unknown_key_is_named_with_its_table() {
    let (ok, text) = check("[stt]\nlanguag = \"en\"\n", false);
    assert!(!ok);
    assert!(text.contains("stt.languag: unknown field `languag`"), "{text}");
}

#[test]
fn a_good_config_with_fetched_models_passes_including_the_broker() {
    let (ok, text) =
        check("[mqtt]\nhost = \"127.0.0.1\"\nport = 1883\n[intents]\ndomains = [\"home\", \"vehicle\"]\n", true);
    assert!(ok, "{text}");
    assert!(text.contains(": OK"), "{text}");
}

#[test]
fn an_unreachable_broker_fails_only_with_online() {
    let port = sotto_tests::mqtt::free_port();
    let text = format!("[mqtt]\nport = {port}\n");
    let (ok, report) = check(&text, false);
    assert!(ok, "{report}");
    let (ok, report) = check(&text, true);
    assert!(!ok);
    assert!(report.contains(&format!("mqtt.host: 127.0.0.1:{port}")), "{report}");
}

#[test]
fn run_refuses_a_bad_config_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "[[wake.models]]\nname = \"hey_siri\"\n");
    let out = sotto().args(["run", "--config"]).arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wake.models[0].name"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing published: {}", String::from_utf8_lossy(&out.stdout));
}
