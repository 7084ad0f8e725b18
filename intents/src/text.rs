//! Normalisation shared by templates and transcripts, and the word-level similarity the matcher
//! uses to forgive speech-recognition errors.

/// Lower-cases, turns symbols that ASR emits into words, drops punctuation and apostrophes, splits
/// digits from letters ("12oz" → "12 oz") and hyphenated words, keeps decimal points inside numbers,
/// writes the fractions people say as words ("1/2 an hour" → "half an hour").
pub fn tokenize(text: &str) -> Vec<String> {
    let mut cleaned = String::with_capacity(text.len() + 8);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        match c {
            '%' => cleaned.push_str(" percent "),
            '°' => {
                cleaned.push_str(" degrees ");
                // "21°C": the unit letter after the degree sign is part of the symbol.
            }
            '.' | ',' if prev.is_ascii_digit() && next.is_ascii_digit() => {
                if c == '.' {
                    cleaned.push('.')
                }
            }
            '/' if prev.is_ascii_digit() && next.is_ascii_digit() => cleaned.push('/'),
            '\'' | '’' => {}
            c if c.is_alphanumeric() => {
                let boundary =
                    (c.is_ascii_digit() && prev.is_alphabetic()) || (c.is_alphabetic() && prev.is_ascii_digit());
                if boundary {
                    cleaned.push(' ');
                }
                cleaned.extend(c.to_lowercase());
            }
            _ => cleaned.push(' '),
        }
    }
    let mut words: Vec<String> = Vec::new();
    let mut after_degrees = false;
    for w in cleaned.split_whitespace() {
        if after_degrees && (w == "c" || w == "f") {
            after_degrees = false;
            continue;
        }
        after_degrees = w == "degrees";
        match spoken_fraction(w) {
            Some(spoken) => words.extend(spoken.split(' ').map(str::to_string)),
            // Any other "a/b" (a date, a ratio) stays two numbers, as before fractions were read.
            None => words.extend(w.split('/').map(str::to_string)),
        }
    }
    words
}

/// The written fractions people say as words.
fn spoken_fraction(w: &str) -> Option<&'static str> {
    Some(match w {
        "1/2" => "half",
        "1/4" => "quarter",
        "3/4" => "three quarters",
        "1/3" => "third",
        "2/3" => "two thirds",
        _ => return None,
    })
}

/// A coarse consonant skeleton: words that sound alike ("mocker"/"mocha", "for"/"four") share it.
pub fn phonetic_key(word: &str) -> String {
    let w: Vec<char> = word.chars().filter(|c| c.is_ascii_alphabetic()).collect();
    if w.is_empty() {
        return word.to_string();
    }
    let mut out = String::new();
    let is_vowel = |c: char| matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y');
    let mut i = 0;
    // Non-rhotic endings: "mocker" is heard as "mocka".
    let mut end = w.len();
    if end > 3 && w[end - 1] == 'r' && is_vowel(w[end - 2]) {
        end -= 1;
    }
    // Only the first vowel is kept: it separates "back" from "book" while later, unstressed
    // vowels are what recognisers get wrong.
    let mut vowel_seen = false;
    while i < end {
        let c = w[i];
        let next = if i + 1 < end { w[i + 1] } else { ' ' };
        let mapped: Option<char> = match c {
            'a' | 'e' | 'i' | 'o' | 'u' | 'y' => {
                if vowel_seen {
                    None
                } else {
                    vowel_seen = true;
                    Some(if c == 'y' { 'i' } else { c })
                }
            }
            'c' if next == 'h' => {
                i += 1;
                Some('k')
            }
            'c' if matches!(next, 'e' | 'i' | 'y') => Some('s'),
            'k' | 'g' | 'w' if i == 0 && next == 'n' => None,
            'c' | 'q' | 'k' => Some('k'),
            'p' if next == 'h' => {
                i += 1;
                Some('f')
            }
            'g' if next == 'h' => {
                i += 1;
                None
            }
            'w' if i == 0 && next == 'r' => None,
            'h' | 'w' => {
                if i == 0 && is_vowel(next) {
                    Some(c)
                } else {
                    None
                }
            }
            'z' => Some('s'),
            'x' => Some('s'),
            'v' => Some('f'),
            'd' => Some('t'),
            'b' => Some('p'),
            other => Some(other),
        };
        if let Some(m) = mapped {
            if !out.ends_with(m) {
                out.push(m);
            }
        }
        i += 1;
    }
    out
}

pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    if a.is_empty() {
        return b.len();
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// A template word prepared once at compile time.
#[derive(Debug, Clone)]
pub struct VocabWord {
    pub text: String,
    pub key: String,
}

impl VocabWord {
    pub fn new(text: &str) -> Self {
        VocabWord { text: text.to_string(), key: phonetic_key(text) }
    }
}

/// Substitutions costlier than this are not substitutions but an insertion plus a deletion.
pub const MAX_SUBSTITUTION: f32 = 0.5;

/// Cost in 0..=1 of hearing `heard` where the template says `expected`; `None` when the words are
/// too different to be a recognition error.
pub fn substitution_cost(expected: &VocabWord, heard: &str, heard_key: &str) -> Option<f32> {
    if expected.text == heard {
        return Some(0.0);
    }
    let a = expected.text.as_bytes();
    let b = heard.as_bytes();
    let longest = a.len().max(b.len());
    // Cheap reject before any edit distance: lengths too far apart.
    if a.len().abs_diff(b.len()) * 2 > longest + 1 {
        return None;
    }
    // A lone vowel sound ("you"/"a") is no evidence of anything.
    let same_sound = expected.key.len() >= 2 && expected.key == heard_key;
    if longest <= 2 {
        return same_sound.then_some(0.3);
    }
    let chars = levenshtein(a, b) as f32 / longest as f32;
    // Sound decides only when the skeletons agree or nearly so on a long enough word; the first
    // sound must agree too ("rose"/"roast" yes, "whats"/"take" no).
    let key_d = levenshtein(expected.key.as_bytes(), heard_key.as_bytes());
    let sound = if same_sound {
        0.2
    } else if key_d == 1 && common_prefix(&expected.key, heard_key) >= 2 {
        0.4
    } else {
        f32::INFINITY
    };
    let cost = chars.min(sound);
    // Short words differ by one letter far too often ("on"/"in", "fan"/"van"): only sound saves them.
    let cost = if longest <= 3 && !same_sound { cost + 0.2 } else { cost };
    // A different first letter and a different sound: not a mishearing but another word.
    let cost = if a[0] != b[0] && !same_sound { cost + 0.15 } else { cost };
    (cost <= MAX_SUBSTITUTION).then_some(cost)
}

/// Words whose presence or absence says little about the intent: cheap to insert or drop.
pub fn is_filler(word: &str) -> bool {
    matches!(
        word,
        "please"
            | "um"
            | "uh"
            | "uhm"
            | "er"
            | "erm"
            | "oh"
            | "okay"
            | "ok"
            | "hey"
            | "so"
            | "just"
            | "now"
            | "thanks"
            | "thank"
            | "the"
            | "a"
            | "an"
            | "to"
            | "of"
            | "my"
            | "for"
            | "me"
            | "could"
            | "would"
            | "you"
            | "can"
            | "kindly"
            | "like"
            | "well"
            | "right"
            | "and"
            | "some"
            | "up"
            | "in"
            | "at"
            | "its"
            | "it"
            | "is"
            | "be"
            | "will"
            | "i"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_handles_asr_symbols() {
        assert_eq!(tokenize("Set it to 21.5°C, please!"), ["set", "it", "to", "21.5", "degrees", "please"]);
        assert_eq!(tokenize("A 12oz latte"), ["a", "12", "oz", "latte"]);
        assert_eq!(tokenize("Volume 70%"), ["volume", "70", "percent"]);
        assert_eq!(tokenize("I'd like a twelve-ounce"), ["id", "like", "a", "twelve", "ounce"]);
        assert_eq!(tokenize("1,000 things."), ["1000", "things"]);
        assert_eq!(tokenize("1 and a 1/2 hours"), ["1", "and", "a", "half", "hours"]);
        assert_eq!(tokenize("3/4 full, 12/25"), ["three", "quarters", "full", "12", "25"]);
    }

    #[test]
    fn similar_sounding_words_are_cheap_substitutions() {
        let roast = VocabWord::new("roast");
        assert!(substitution_cost(&roast, "rose", &phonetic_key("rose")).is_some());
        let mocha = VocabWord::new("mocha");
        assert_eq!(phonetic_key("mocker"), phonetic_key("mocha"));
        assert!(substitution_cost(&mocha, "mocker", &phonetic_key("mocker")).unwrap() <= 0.2);
        let iced = VocabWord::new("iced");
        assert!(substitution_cost(&iced, "ice", &phonetic_key("ice")).is_some());
    }

    #[test]
    fn different_words_are_not_substitutions() {
        let on = VocabWord::new("on");
        assert_eq!(substitution_cost(&on, "off", &phonetic_key("off")), None);
        let kitchen = VocabWord::new("kitchen");
        assert_eq!(substitution_cost(&kitchen, "bedroom", &phonetic_key("bedroom")), None);
        let driver = VocabWord::new("driver");
        assert_eq!(substitution_cost(&driver, "passenger", &phonetic_key("passenger")), None);
    }
}
