//! What Sotto says back for each kind of decision, from the shipped domain files.

use sotto_intents::understand::{UnderstandConfig, Understander};
use sotto_intents::Intents;

fn reply(intents: &Intents, text: &str) -> Option<String> {
    let config = UnderstandConfig::default();
    Understander::new(intents, &config, "test").understand_text(text, None).reply(intents)
}

#[test]
fn each_decision_has_its_words() {
    let all = Intents::shipped();
    assert_eq!(reply(&all, "stop press one").as_deref(), Some("Stop press one? Say yes or no."));
    assert_eq!(reply(&all, "turn off the bedroom lights").as_deref(), Some("Turning the bedroom lights off."));
    assert_eq!(reply(&all, "what is the status of press two").as_deref(), Some("Checking the status of press two."));
    let refused = reply(&all, "set the driver side to ninety degrees").unwrap();
    assert!(refused.contains("between sixteen and thirty"), "{refused}");
    // Several domains loaded: whose "not understood" it is cannot be told, so the default.
    assert_eq!(reply(&all, "bake me a cake").as_deref(), Some(sotto_intents::responses::DEFAULT_NOT_UNDERSTOOD));
}

#[test]
fn a_device_with_one_domain_uses_its_not_understood() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    assert_eq!(reply(&vehicle, "bake me a cake").as_deref(), Some("Sorry, I did not catch that."));
}
