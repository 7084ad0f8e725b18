//! The grammar matcher with the four shipped domains on arbitrary transcripts: whatever Whisper
//! (or an attacker's text) produces, the result is a validated intent or none, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sotto_intents::Intents;

fn shipped() -> &'static Intents {
    static INTENTS: OnceLock<Intents> = OnceLock::new();
    INTENTS.get_or_init(Intents::shipped)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let intents = shipped();
    let resolution = intents.parse(&text);
    if let Some(action) = intents.plan_action(&resolution, "fuzz") {
        assert!(resolution.accepted(), "an action only for an accepted intent");
        assert!(intents.intent(&action.intent).is_some(), "actions only for schema intents");
    }
    let _ = intents.matcher().ranked(&text);
});
