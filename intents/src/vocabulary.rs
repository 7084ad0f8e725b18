//! The speech-recognition vocabulary prompt: Whisper's initial prompt biases decoding toward the
//! words it contains, so it lists the entity names and synonyms the loaded domains expect.

use std::collections::HashSet;

use crate::schema::{Intent, SlotKind};

/// Enum synonyms first (the words ASR gets wrong most), then examples, deduplicated, cut at
/// `max_chars` on a phrase boundary (Whisper's prompt is limited to about 224 tokens).
/// The prompt length the daemon sends by default (`stt.vocabulary_prompt_chars`), and so the tools
/// and benchmarks that decide as it does. A longer prompt costs decoder time on every utterance; on
/// the barista set a 400-character one transcribed better (README, "Barista benchmark").
pub const DEFAULT_PROMPT_CHARS: usize = 250;

pub fn prompt(intents: &[Intent], max_chars: usize) -> String {
    // A phrase earns its place only with a word not yet in the prompt: "a bit of soy milk"
    // adds nothing once "a bit of milk" and "soy milk" are there.
    let mut seen: HashSet<String> = HashSet::new();
    let mut phrases: Vec<String> = Vec::new();
    let mut push = |p: &str, phrases: &mut Vec<String>| {
        let p = p.trim().to_string();
        let words: Vec<String> = p.split_whitespace().map(str::to_lowercase).collect();
        if words.iter().any(|w| !seen.contains(w)) {
            seen.extend(words);
            phrases.push(p);
        }
    };
    for intent in intents {
        for slot in &intent.slots {
            if let SlotKind::Enum(values) = &slot.kind {
                // Only the first (canonical) phrasing, shortest first so that the entity words
                // come before the phrases built from them.
                let mut canon: Vec<&str> = values.iter().map(|v| v.synonyms[0].as_str()).collect();
                canon.sort_by_key(|p| p.split_whitespace().count());
                for p in canon {
                    push(p, &mut phrases);
                }
            }
        }
    }
    for intent in intents {
        for e in &intent.examples {
            push(e, &mut phrases);
        }
    }
    let mut out = String::new();
    for p in phrases {
        if out.len() + p.len() + 2 > max_chars {
            break;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(&p);
    }
    out
}
