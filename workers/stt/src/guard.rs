//! Repetition and hallucination guard: Whisper's failure modes on short commands are loops
//! ("turn on the turn on the turn on the") and stock phrases learned from subtitles.

/// Phrases Whisper emits on silence or noise, lower-cased and without punctuation.
const HALLUCINATIONS: &[&str] = &[
    "thank you for watching",
    "thanks for watching",
    "please subscribe",
    "subtitles by",
    "subtitled by",
    "captions by",
    "speaking in foreign language",
    "speaks foreign language",
    "foreign language",
    "blank audio",
    "music playing",
    "silence",
    "inaudible",
];

/// Why `text` (transcribed from `audio_secs` of audio) should not be trusted, if it should not.
pub fn check(text: &str, audio_secs: f32) -> Option<String> {
    let raw = text.trim();
    if raw.contains('♪') || raw.contains('[') || raw.contains('(') {
        let inner = raw.trim_matches(|c: char| !c.is_alphanumeric());
        if raw.starts_with(['[', '(', '♪']) || inner.is_empty() {
            return Some(format!("non-speech annotation {raw:?}"));
        }
    }
    let words = normalise(raw);
    if words.is_empty() {
        return None;
    }
    let joined = words.join(" ");
    if let Some(p) = HALLUCINATIONS.iter().find(|p| joined == **p || (words.len() <= 8 && joined.contains(**p))) {
        return Some(format!("known hallucination phrase {p:?}"));
    }
    if let Some((n, times)) = repeated_ngram(&words) {
        return Some(format!("a {n}-word phrase repeated {times} times in a row"));
    }
    // People say at most ~5 words a second; far more means the decoder ran away.
    let max_words = (audio_secs * 6.0).ceil() as usize + 4;
    if words.len() > max_words {
        return Some(format!("{} words for {audio_secs:.1} s of audio", words.len()));
    }
    None
}

/// Lower-case words with punctuation stripped.
pub fn normalise(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// A phrase of n words (1..=6) immediately repeated: 4+ times for single words (people do say
/// "no no no"), 3+ times for longer phrases.
fn repeated_ngram(words: &[String]) -> Option<(usize, usize)> {
    for n in 1..=6.min(words.len() / 2) {
        let needed = if n == 1 { 4 } else { 3 };
        for start in 0..words.len() {
            let mut times = 1;
            while start + (times + 1) * n <= words.len()
                && words[start..start + n] == words[start + times * n..start + (times + 1) * n]
            {
                times += 1;
            }
            if times >= needed {
                return Some((n, times));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_commands_pass() {
        assert_eq!(check("Set a timer for ten minutes.", 2.5), None);
        assert_eq!(check("Turn off the kitchen lights, please.", 2.0), None);
        assert_eq!(check("No, no, no, stop.", 1.5), None);
        assert_eq!(check("", 1.0), None);
    }

    #[test]
    fn loops_are_flagged() {
        let r = check("turn on the turn on the turn on the lights", 3.0).unwrap();
        assert!(r.contains("3-word phrase repeated 3 times"), "{r}");
        assert!(check("the the the the the", 3.0).unwrap().contains("1-word"));
    }

    #[test]
    fn stock_phrases_and_annotations_are_flagged() {
        assert!(check(" Thank you for watching!", 2.0).unwrap().contains("hallucination"));
        assert!(check("(speaking in foreign language)", 2.0).is_some());
        assert!(check("[BLANK_AUDIO]", 2.0).is_some());
        assert!(check("♪ ♪", 2.0).is_some());
    }

    #[test]
    fn too_many_words_for_the_audio_is_flagged() {
        let text = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
        assert!(check(text, 1.0).unwrap().contains("words for 1.0 s"));
        assert_eq!(check(text, 3.0), None);
    }
}
