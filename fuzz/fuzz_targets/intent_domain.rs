//! Domain files: arbitrary TOML through the schema checks and the grammar compiler; an accepted
//! domain must then parse its own examples and render actions without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_intents::Intents;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Intents::from_sources(&[("fuzz.toml".to_string(), text.to_string())]) {
        Ok(intents) => {
            let examples: Vec<String> = intents.intents().iter().flat_map(|i| i.examples.clone()).collect();
            for example in examples.iter().take(8) {
                let resolution = intents.parse(example);
                let _ = intents.plan_action(&resolution, "fuzz");
            }
            let _ = intents.stt_prompt(200);
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});
