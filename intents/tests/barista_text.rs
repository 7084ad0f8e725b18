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
