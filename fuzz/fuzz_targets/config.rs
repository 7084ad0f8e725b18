//! The daemon's config file: TOML parse, unknown keys, then every value check. Any text must give
//! a config or errors that each name a key, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::from_toml(text, "fuzz.toml") {
        Ok(config) => {
            // Accepted values must be usable as they are: these convert without further checks.
            let _ = (config.stt_timeout(), config.slm_timeout());
            for model in &config.wake.models {
                let _ = model.trigger();
            }
        }
        Err(errors) => {
            assert!(!errors.issues.is_empty(), "a refused config names at least one problem");
            assert!(errors.issues.iter().all(|i| !i.key.is_empty()), "every issue has a key: {errors}");
            let _ = errors.to_string();
        }
    }
});
