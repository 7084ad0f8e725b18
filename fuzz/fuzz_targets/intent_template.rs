//! Sentence templates: the template parser on arbitrary text, and every template it accepts
//! compiled into a matcher (inside a small domain with one slot of each kind and a rule) and
//! matched against its own words.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_intents::{template, Intents};

/// Slots and a rule the fuzzed template may reference.
const DOMAIN_TAIL: &str = r#"
[rules]
please = "[please | can you]"
[intent.slots.room]
type = "enum"
values = { kitchen = ["kitchen"], living_room = ["living room", "lounge"] }
[intent.slots.level]
type = "integer"
min = 0
max = 100
[intent.slots.seconds]
type = "duration"
[intent.slots.note]
type = "text"
max_words = 4
[intent.action]
topic = "fuzz/{site_id}/{room}"
payload = { level = "{level}", note = "{note}", whole = "{seconds}" }
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if template::parse(text).is_err() {
        return;
    }
    // toml::Value's Display escapes the template into a valid TOML string.
    let quoted = toml::Value::String(text.to_string()).to_string();
    let source =
        format!("domain = \"fuzz\"\n[[intent]]\nname = \"fuzz.intent\"\ntemplates = [{quoted}]\n{DOMAIN_TAIL}");
    let Ok(intents) = Intents::from_sources(&[("fuzz.toml".to_string(), source)]) else { return };
    let spoken: String = text.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    let resolution = intents.parse(&spoken);
    let _ = intents.plan_action(&resolution, "fuzz");
});
