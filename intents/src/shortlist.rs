//! Which intents a transcript can plausibly mean, from the words it shares with each intent's own
//! vocabulary (template words, slot values, description, examples), weighted by how few intents
//! use each word.
//!
//! The language model then chooses among a handful of candidates instead of every declared
//! function: each candidate costs a model evaluation, and a small model confuses fewer options
//! less often. A transcript that shares no meaningful word with any intent is not sent to the
//! model at all: it is out of domain, and the model's guesses there are the fallback's worst
//! failure (an action nobody asked for).

use std::collections::{BTreeMap, BTreeSet};

use crate::grammar::Grammar;
use crate::schema::{Intent, SlotKind};
use crate::text::{is_filler, tokenize};

/// Word weights per intent, built once per loaded schema.
#[derive(Debug, Clone)]
pub struct Shortlist {
    vocabularies: Vec<BTreeSet<String>>,
    /// Each intent's words of its enum values ([`value_words`]), a part of its vocabulary.
    values: Vec<BTreeSet<String>>,
    idf: BTreeMap<String, f32>,
}

/// One candidate: the intent's index in load order and its overlap score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub intent: usize,
    pub score: f32,
}

/// Crude stemming so "lights"/"light", "heated"/"heat", "locking"/"lock" meet.
fn stem(word: &str) -> String {
    let w = word.to_ascii_lowercase();
    for suffix in ["ing", "ed", "es", "s"] {
        if let Some(base) = w.strip_suffix(suffix) {
            if base.len() >= 3 {
                return base.to_string();
            }
        }
    }
    w
}

/// Question and function words: every request has some, they say nothing about which intent.
fn is_function_word(word: &str) -> bool {
    matches!(
        word,
        "what"
            | "whats"
            | "how"
            | "where"
            | "who"
            | "why"
            | "when"
            | "which"
            | "this"
            | "that"
            | "these"
            | "those"
            | "there"
            | "here"
            | "with"
            | "do"
            | "does"
            | "did"
            | "are"
            | "was"
            | "were"
            | "your"
            | "our"
            | "have"
            | "has"
            | "get"
            | "go"
            | "going"
            | "want"
            | "need"
            | "should"
            | "we"
            | "us"
            | "on"
            | "off"
            | "from"
            | "into"
            | "by"
            | "no"
            | "not"
            | "any"
            | "all"
            | "out"
            | "about"
            | "tell"
            | "give"
            | "show"
            | "let"
            | "lets"
            | "make"
            | "set"
            | "put"
            | "turn"
            | "last"
            | "next"
    )
}

fn content_words(text: &str) -> impl Iterator<Item = String> {
    tokenize(text)
        .into_iter()
        .filter(|w| !is_filler(w) && !is_function_word(w) && !w.chars().all(|c| c.is_ascii_digit() || c == '.'))
        .map(|w| stem(&w))
}

/// The words of the intent's enum values (canonical names and synonyms), stemmed.
fn value_words(intent: &Intent) -> BTreeSet<String> {
    let mut words = BTreeSet::new();
    for slot in &intent.slots {
        if let SlotKind::Enum(values) = &slot.kind {
            for v in values {
                words.extend(content_words(&v.canonical.replace('_', " ")));
                v.synonyms.iter().for_each(|s| words.extend(content_words(s)));
            }
        }
    }
    words
}

/// `template_words`: the words of the intent's compiled templates (rules expanded).
fn vocabulary<'a>(
    intent: &Intent,
    values: &BTreeSet<String>,
    template_words: impl Iterator<Item = &'a str>,
) -> BTreeSet<String> {
    let mut words = values.clone();
    template_words.for_each(|w| words.extend(content_words(w)));
    for slot in &intent.slots {
        words.extend(content_words(&slot.name.replace('_', " ")));
    }
    words.extend(content_words(&intent.description));
    intent.examples.iter().for_each(|e| words.extend(content_words(e)));
    words.extend(content_words(&intent.name.replace(['.', '_'], " ")));
    words
}

impl Shortlist {
    /// `grammar` is the intents' compiled templates, in the same order.
    pub fn build(intents: &[Intent], grammar: &Grammar) -> Self {
        let values: Vec<BTreeSet<String>> = intents.iter().map(value_words).collect();
        let vocabularies: Vec<BTreeSet<String>> = intents
            .iter()
            .zip(&values)
            .zip(&grammar.graphs)
            .map(|((i, v), g)| vocabulary(i, v, g.words(&grammar.vocab)))
            .collect();
        let mut document_frequency: BTreeMap<String, usize> = BTreeMap::new();
        for v in &vocabularies {
            for w in v {
                *document_frequency.entry(w.clone()).or_default() += 1;
            }
        }
        let n = vocabularies.len().max(1) as f32;
        let idf = document_frequency.into_iter().map(|(w, df)| (w, (n / df as f32).ln() + 0.1)).collect();
        Shortlist { vocabularies, values, idf }
    }

    /// Intents sharing at least one content word with `text`, best first, at most `limit`
    /// (`0` = no limit). Empty when nothing in the text belongs to any intent's vocabulary.
    pub fn candidates(&self, text: &str, limit: usize) -> Vec<Candidate> {
        let mut out = self.scored(&content_words(text).collect());
        if limit > 0 {
            out.truncate(limit);
        }
        out
    }

    /// The intents other than `chosen` that share a content word with `text` and whose
    /// vocabulary has every word of it that `chosen`'s has, best first: nothing in the request
    /// points at `chosen` rather than at them. A number word is a value, not evidence ("five" is
    /// in the fan's examples, and is said to the volume as often).
    pub fn undistinguished_from(&self, text: &str, chosen: usize) -> Vec<Candidate> {
        let words: BTreeSet<String> = content_words(text).collect();
        let evidence: Vec<&String> = words
            .iter()
            .filter(|w| !crate::numbers::is_number_word(w) && self.vocabularies[chosen].contains(*w))
            .collect();
        let mut out = self.scored(&words);
        out.retain(|c| c.intent != chosen && evidence.iter().all(|w| self.vocabularies[c.intent].contains(*w)));
        out
    }

    /// The words of `text` that point at intent `index` itself: in its vocabulary, but neither a
    /// number nor a word of its slots' values ("press one" names a machine, not what to do).
    pub fn own_words(&self, text: &str, index: usize) -> Vec<String> {
        content_words(text)
            .filter(|w| {
                !crate::numbers::is_number_word(w)
                    && !self.values[index].contains(w)
                    && self.vocabularies[index].contains(w)
            })
            .collect()
    }

    /// Every intent sharing a word with `words`, scored, best first.
    fn scored(&self, words: &BTreeSet<String>) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self
            .vocabularies
            .iter()
            .enumerate()
            .map(|(intent, vocab)| {
                let score =
                    words.iter().filter(|w| vocab.contains(*w)).map(|w| self.idf.get(w).copied().unwrap_or(0.0)).sum();
                Candidate { intent, score }
            })
            .filter(|c| c.score > 0.0)
            .collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.intent.cmp(&b.intent)));
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::Intents;

    fn names(intents: &Intents, text: &str, limit: usize) -> Vec<String> {
        intents.shortlist().candidates(text, limit).iter().map(|c| intents.intents()[c.intent].name.clone()).collect()
    }

    #[test]
    fn paraphrases_keep_their_intent_among_the_first_candidates() {
        let all = Intents::shipped();
        for (text, intent) in [
            ("it's freezing, bump the heat up to twenty four", "climate.set_temperature"),
            ("I need somewhere to charge the car", "nav.find_nearby"),
            ("kill the lights in the kitchen", "light.set"),
            ("crank the music louder, sixty percent", "media.volume"),
            ("the second press is making a grinding noise", "fault.report"),
            ("warm up my seat a bit", "seat.set_heating"),
        ] {
            let got = names(&all, text, 4);
            assert!(got.iter().any(|n| n == intent), "{text:?}: {intent} not in {got:?}");
        }
    }

    #[test]
    fn out_of_domain_text_has_no_candidate() {
        let all = Intents::shipped();
        for text in ["what is the meaning of life", "tell me a joke", "who won the game last night", "", "um"] {
            assert!(names(&all, text, 4).is_empty(), "{text:?}: {:?}", names(&all, text, 4));
        }
    }

    #[test]
    #[ignore = "diagnostic: prints the candidates of the out-of-domain test set"]
    fn print_out_of_domain_candidates() {
        let all = Intents::shipped();
        let set = include_str!("../testset/out_of_domain.jsonl");
        for line in set.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = v["text"].as_str().unwrap();
            println!("{text:?}: {:?}", names(&all, text, 4));
        }
    }

    #[test]
    fn the_limit_is_respected_and_order_is_by_score() {
        let all = Intents::shipped();
        let c = all.shortlist().candidates("turn on the light and lock the door and set the temperature", 3);
        assert_eq!(c.len(), 3);
        assert!(c.windows(2).all(|w| w[0].score >= w[1].score));
    }
}
