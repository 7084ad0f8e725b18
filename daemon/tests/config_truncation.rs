//! Property check for the config loader (the `config` fuzz target in `fuzz/` explores further):
//! a full config file cut at any character is accepted or refused with issues that each name a
//! key, never a panic, and the uncut file is accepted.

use sotto::config::Config;

/// Every section, every key set to a valid value; also a seed of the `config` fuzz target.
const FULL: &str = include_str!("../../fuzz/seeds/config/valid.toml");

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
