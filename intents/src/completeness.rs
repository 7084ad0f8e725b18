//! Whether a transcript is a finished command: the grammar's answer to "could more words change
//! this?", so that a caller may act at a short pause instead of waiting out the full trailing
//! silence (an early decision, issue 16). The matcher's compiled templates ([`crate::grammar`])
//! are the authority: they say what may follow the words heard so far.
//!
//! The rule ([`Intents::complete`]). A transcript is complete when it resolves through the grammar
//! to an accepted intent, and no continuation the templates allow could change the intent or any
//! slot value. Every reading of the words so far as the beginning of a template sentence that is
//! about as good as the best one (within half a word of its cost) is a way the sentence may go on:
//! - Not resolved, refused, or resolved only by the language model: not complete. That covers an
//!   intent whose required slots are not all said ("set a timer for" with no duration), and a
//!   value the grounding check does not find in the words.
//! - A number or duration read by the last word can go on: "twenty" → "twenty one", "five" →
//!   "five hundred", "five minutes" → "five minutes and thirty seconds", and a bare number may
//!   still get its unit ("set a timer for five" → "… minutes"). Not complete.
//! - A free-text slot takes whatever follows, and the matcher re-aligns it with later words
//!   ("navigate to the station" → "… station road please"), wherever it stands in the template:
//!   never complete.
//! - A slot the templates allow after the words so far (the zone after "set the temperature to
//!   twenty one degrees", "… for the driver") could still be filled: not complete. So could an
//!   enum value change when what was said is the prefix of another value's longer synonym
//!   ("living" → "living room"); a longer synonym of the same value changes nothing.
//! - Template words that may follow and carry no value ("please", "now", "degrees") change
//!   nothing: still complete. Words the templates do not allow change nothing either: the
//!   matcher leaves them unexplained, at a cost, and keeps the intent and the values.
//! - Another intent that reads the words so far about as well and may go on could take over with
//!   the next words: not complete.

use serde::Serialize;

use crate::grammar::{EdgeKind, Tag};
use crate::matcher::{Extracted, RUNNER_UP_MARGIN};
use crate::schema::SlotKind;
use crate::{Intents, Resolver};

/// What the grammar says about a transcript's end (see the module doc); the variants other than
/// `Complete` say why it may go on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "completeness")]
pub enum Completeness {
    /// No continuation the templates allow changes the intent or a slot value.
    Complete,
    /// Not an accepted grammar resolution.
    Unresolved,
    /// The last words are a number or duration of this slot, which may go on.
    NumberAtEnd { slot: String },
    /// This free-text slot takes whatever follows.
    FreeText { slot: String },
    /// The templates allow a value of this slot after the words so far.
    SlotMayFollow { slot: String },
    /// This enum slot's value may still change: what was said begins another value's synonym.
    ValueMayChange { slot: String },
    /// This intent reads the words so far about as well, and may go on.
    OtherIntent { intent: String },
}

impl Completeness {
    pub fn is_complete(&self) -> bool {
        *self == Completeness::Complete
    }
}

impl Intents {
    /// Whether `text` is a finished command: it resolves through the grammar, and no continuation
    /// the templates allow could change the intent or a slot value (the rule is in the module
    /// doc of [`crate::completeness`]).
    pub fn complete(&self, text: &str) -> Completeness {
        let resolution = self.parse(text);
        if !resolution.accepted() || resolution.resolver != Some(Resolver::Grammar) {
            return Completeness::Unresolved;
        }
        let matcher = self.matcher();
        // The served reading of the whole text (not of a last clause, not another intent's).
        let served = resolution.intent.as_deref();
        let Some(best) =
            matcher.ranked(text).into_iter().find(|m| Some(self.intents()[m.intent].name.as_str()) == served)
        else {
            return Completeness::Unresolved;
        };
        let intent = &self.intents()[best.intent];
        let slot = |i: u16| intent.slots[i as usize].name.clone();
        if let Some((name, _)) = best.slots.iter().find(|(_, v)| matches!(v, Extracted::Text(_))) {
            return Completeness::FreeText { slot: name.clone() };
        }
        let graphs = &matcher.grammar().graphs;
        for reading in matcher.prefixes(text, best.cost + RUNNER_UP_MARGIN) {
            let graph = &graphs[reading.intent];
            if reading.intent != best.intent {
                // A reading with no word left to read can only lose to the served one.
                if graph.ahead(reading.state).any(|e| e.kind != EdgeKind::Eps) {
                    return Completeness::OtherIntent { intent: self.intents()[reading.intent].name.clone() };
                }
                continue;
            }
            match reading.last {
                Some(EdgeKind::Number(i) | EdgeKind::Duration(i)) => {
                    return Completeness::NumberAtEnd { slot: slot(i) }
                }
                Some(EdgeKind::Any(i)) => return Completeness::FreeText { slot: slot(i) },
                _ => {}
            }
            for edge in graph.ahead(reading.state) {
                match (edge.kind, edge.tag) {
                    (EdgeKind::Number(i) | EdgeKind::Duration(i) | EdgeKind::Any(i), _) => {
                        return Completeness::SlotMayFollow { slot: slot(i) }
                    }
                    (_, Tag::EnumValue(i, value)) => {
                        let SlotKind::Enum(values) = &intent.slots[i as usize].kind else { continue };
                        match best.slots.get(&slot(i)) {
                            Some(Extracted::Enum(said)) if *said == values[value as usize].canonical => {}
                            Some(_) => return Completeness::ValueMayChange { slot: slot(i) },
                            None => return Completeness::SlotMayFollow { slot: slot(i) },
                        }
                    }
                    _ => {}
                }
            }
        }
        Completeness::Complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(s: &str) -> String {
        s.to_string()
    }

    #[test]
    fn the_issue_examples_with_the_shipped_domains() {
        let all = Intents::shipped();
        assert_eq!(all.complete("turn on the kitchen lights"), Completeness::Complete);
        for text in ["set the temperature to twenty", "set a timer for five", "navigate to the station"] {
            let c = all.complete(text);
            assert!(!c.is_complete(), "{text:?}: {c:?}");
        }
        // The car's window intent serves it, but "… instructions" would make it a look-up of the
        // factory's procedures ("open [the] {topic} instructions").
        assert_eq!(all.parse("open the driver window").intent.as_deref(), Some("window.set"));
        assert_eq!(
            all.complete("open the driver window"),
            Completeness::OtherIntent { intent: "procedure.lookup".into() }
        );
        // The house thermostat reads this as well as the car's climate intent, but at its end:
        // nothing more it may take makes it win.
        assert_eq!(all.complete("set the temperature to twenty one degrees"), Completeness::Complete);
    }

    #[test]
    fn numbers_free_text_and_slots_that_may_follow() {
        let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
        let home = Intents::shipped_domains(&["home"]).unwrap();
        assert_eq!(
            vehicle.complete("set the temperature to twenty"),
            Completeness::NumberAtEnd { slot: slot("temperature") }
        );
        // "… for the driver" may follow this phrasing, and would change the zone; not the other
        // one, where the zone comes before the temperature or not at all.
        assert_eq!(
            vehicle.complete("set the cabin to twenty one degrees"),
            Completeness::SlotMayFollow { slot: slot("zone") }
        );
        assert_eq!(vehicle.complete("set the temperature to twenty one degrees"), Completeness::Complete);
        assert_eq!(vehicle.complete("navigate to the station"), Completeness::FreeText { slot: slot("destination") });
        // No duration in "five": the required slot is missing.
        assert_eq!(home.complete("set a timer for five"), Completeness::Unresolved);
        assert_eq!(
            home.complete("set a timer for five minutes"),
            Completeness::NumberAtEnd { slot: slot("duration_s") }
        );
        assert_eq!(home.complete("tell me a joke"), Completeness::Unresolved);
    }

    #[test]
    fn trailing_words_without_a_value_change_nothing() {
        let home = Intents::shipped_domains(&["home"]).unwrap();
        for text in
            ["turn on the kitchen lights", "turn on the kitchen lights please", "please turn off the bedroom lamp"]
        {
            assert_eq!(home.complete(text), Completeness::Complete, "{text:?}");
        }
    }

    #[test]
    fn a_value_that_begins_another_values_synonym_may_change() {
        let toml = r#"
domain = "d"
[[intent]]
name = "room.open"
templates = ["open [the] {room} [please]"]
[intent.slots.room]
type = "enum"
values = { living = ["living"], living_room = ["living room"], hall = ["hall", "hall way"] }
"#;
        let d = Intents::from_sources(&[("d.toml".into(), toml.into())]).unwrap();
        assert_eq!(d.complete("open the living"), Completeness::ValueMayChange { slot: slot("room") });
        assert_eq!(d.complete("open the living room"), Completeness::Complete);
        // "hall way" is the same value: nothing to change.
        assert_eq!(d.complete("open the hall"), Completeness::Complete);
        assert_eq!(d.complete("open the hall please"), Completeness::Complete);
    }
}
