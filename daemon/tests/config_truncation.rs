//! Property check for the config loader (the `config` fuzz target in `fuzz/` explores further):
//! a full config file cut at any character is accepted or refused with issues that each name a
//! key, never a panic, and the uncut file is accepted.

use sotto::config::Config;

/// Every section, every key set to a valid value.
const FULL: &str = r#"
[models]
profile = "default"
[audio]
source = "stdin"
device = ""
stdin_sample_rate = 48000
[[wake.models]]
name = "hey_jarvis"
threshold = 0.5
patience = 2
refractory_ms = 2000
[[wake.models]]
name = "alexa"
threshold = 0.6
[endpoint]
speech_threshold = 0.5
silence_threshold = 0.35
pre_roll_ms = 64
trailing_silence_ms = 700
min_speech_ms = 90
max_utterance_ms = 10000
no_speech_timeout_ms = 4000
wake_tail_ms = 400
[stt]
language = "en"
timeout_s = 15.0
vocabulary_prompt = true
threads = 2
[intents]
domains = ["vehicle", "factory", "home", "barista"]
confirm_timeout_s = 10.0
[slm]
enabled = true
timeout_s = 10.0
max_tokens = 48
threads = 1
[mqtt]
broker = "external"
host = "127.0.0.1"
port = 1883
site_id = "kitchen"
client_id = "sotto-kitchen"
keep_alive_secs = 30
queue_capacity = 64
default_expiry_secs = 30
reconnect_max_secs = 10
"#;

#[test]
fn every_truncation_of_a_full_config_is_accepted_or_refused_by_key() {
    Config::from_toml(FULL, "full.toml").unwrap_or_else(|e| panic!("{e}"));
    let mut refused = 0;
    for (cut, _) in FULL.char_indices() {
        if let Err(errors) = Config::from_toml(&FULL[..cut], "cut.toml") {
            assert!(!errors.issues.is_empty(), "cut at {cut}");
            assert!(errors.issues.iter().all(|i| !i.key.is_empty()), "cut at {cut}: {errors}");
            refused += 1;
        }
    }
    // Cuts inside a key, a string or a table header must be refused.
    assert!(refused > FULL.len() / 4, "only {refused} of {} cuts refused", FULL.len());
}
