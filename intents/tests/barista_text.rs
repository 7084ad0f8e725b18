//! Barista at text level: reference phrasings derived from every label of the data set resolve to
//! exactly the labelled intent and slots (the speech-level benchmark runs the same scoring on
//! transcripts).

use sotto_intents::barista::{accepted, data_dir, read_labels, reference_phrase};
use sotto_intents::Intents;

#[test]
fn reference_phrasings_of_all_labels_are_understood() {
    let labels = read_labels(&data_dir()).unwrap_or_else(|e| panic!("{e}"));
    assert!(labels.len() >= 200, "only {} labels", labels.len());
    let intents = Intents::shipped_domains(&["barista"]).unwrap();
    let mut misses = Vec::new();
    for (k, label) in labels.values().enumerate() {
        let text = reference_phrase(label, k);
        let r = intents.parse(&text);
        if !accepted(label, &r) {
            misses.push((text, r));
        }
    }
    assert!(misses.is_empty(), "{} of {} missed: {misses:#?}", misses.len(), labels.len());
}

/// Coffee-counter remarks that are not orders the domain serves (`testset/barista_remarks.txt`),
/// many one word from an order: none may become an order, with the barista domain alone or with
/// every shipped domain loaded.
#[test]
fn coffee_counter_remarks_give_no_intent() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testset/barista_remarks.txt");
    let text = std::fs::read_to_string(&path).unwrap();
    let remarks: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(remarks.len() >= 30, "only {} remarks", remarks.len());
    for intents in [Intents::shipped_domains(&["barista"]).unwrap(), Intents::shipped()] {
        let orders: Vec<_> = remarks.iter().map(|r| (r, intents.parse(r))).filter(|(_, res)| res.accepted()).collect();
        assert!(orders.is_empty(), "remarks taken as intents: {orders:#?}");
    }
}

/// A word the recogniser wrote that the templates use is not re-read as another template word by
/// spelling ("large" is a size, not a mangled "latte"), but a mishearing of a non-word still is.
#[test]
fn a_template_word_is_not_read_as_another() {
    let intents = Intents::shipped_domains(&["barista"]).unwrap();
    assert!(!intents.parse("can I get a large pizza").accepted());
    let r = intents.parse("can I get a large lattay");
    assert_eq!(r.intent.as_deref(), Some("orderDrink"));
    assert_eq!(r.slots.get("coffeeDrink").map(|v| v.as_text()), Some("latte".to_string()));
}
