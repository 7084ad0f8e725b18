//! The speech-recognition vocabulary prompt: Whisper's initial prompt biases decoding toward the
//! words it contains, so it lists the entity names and synonyms the loaded domains expect.

use std::collections::HashSet;

use crate::schema::{Intent, SlotKind};

/// Enum synonyms first (the words ASR gets wrong most), then examples, deduplicated, cut at
/// `max_chars` on a phrase boundary (Whisper's prompt is limited to about 224 tokens).
pub fn prompt(intents: &[Intent], max_chars: usize) -> String {
    let mut seen = HashSet::new();
    let mut phrases: Vec<String> = Vec::new();
    let mut push = |p: &str, phrases: &mut Vec<String>| {
        let p = p.trim().to_string();
        if !p.is_empty() && seen.insert(p.to_lowercase()) {
            phrases.push(p);
        }
    };
    for intent in intents {
        for slot in &intent.slots {
            if let SlotKind::Enum(values) = &slot.kind {
                for v in values {
                    // Only the first (canonical) phrasing: the rest mostly share its words.
                    push(&v.synonyms[0], &mut phrases);
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
