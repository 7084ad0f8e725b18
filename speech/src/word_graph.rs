//! Word graphs: the language a grammar-constrained transcription may produce, as a small
//! word-level automaton that the intents crate builds from its sentence templates
//! ([`WordGraph::from_edges`]), sends in its text form ([`fmt::Display`]) and the STT worker parses
//! back ([`WordGraph::parse`]) and enforces token by token.
//!
//! Why not whisper.cpp's own GBNF grammar: whisper-rs 0.16's `FullParams::set_grammar` hands
//! whisper.cpp a flat element array where it expects an array of per-rule pointers, so any grammar
//! crashes the worker. Enforcing a word graph in a logits filter also lets the constraint work on
//! words the way the matcher sees them (case, punctuation and apostrophes ignored, digits split
//! from letters), which a character grammar would have to spell out for every word.
//!
//! Text form, one item per line (`#` starts a comment, blank lines are ignored), state 0 is the
//! start:
//!
//! ```text
//! 0 1 can          an edge labelled with a word (lower case letters, digits, no spaces)
//! 1 2 -            an empty edge
//! 2 3 <number>     one number word or digit string ("twenty", "21", "half", "point")
//! 3 3 <any>        any one word
//! final 3          accepting states, one or more per line
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

/// Largest graph accepted (states and edges each): far above what the shipped domains need
/// (a few thousand), low enough that a hostile request cannot make the worker allocate without
/// bound.
pub const MAX_ITEMS: usize = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WordGraphError {
    #[error("word graph line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("word graph has no accepting state")]
    NoFinal,
    #[error("word graph label {0:?}: a word is lower-case letters and digits")]
    BadLabel(String),
    #[error("word graph has over {MAX_ITEMS} states or edges")]
    TooLarge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    Empty,
    Word(String),
    Number,
    Any,
}

impl Label {
    /// A word label: lower-case letters and digits only.
    pub fn is_word(w: &str) -> bool {
        !w.is_empty() && w.chars().all(|c| c.is_alphanumeric() && !c.is_uppercase())
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Empty => f.write_str("-"),
            Label::Word(w) => f.write_str(w),
            Label::Number => f.write_str("<number>"),
            Label::Any => f.write_str("<any>"),
        }
    }
}

/// A parsed word graph (see the module doc for its text form).
#[derive(Debug)]
pub struct WordGraph {
    out: Vec<Vec<(Label, u32)>>,
    finals: Vec<bool>,
    /// Frontiers by state set: a decoder checks every vocabulary token against the same few
    /// frontiers at each step, so they are computed once.
    frontiers: Mutex<HashMap<Vec<u32>, Arc<Frontier>>>,
}

/// The text form (see the module doc), which [`WordGraph::parse`] reads back.
impl fmt::Display for WordGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (from, edges) in self.out.iter().enumerate() {
            for (label, to) in edges {
                writeln!(f, "{from} {to} {label}")?;
            }
        }
        let finals: Vec<String> =
            self.finals.iter().enumerate().filter(|(_, &a)| a).map(|(s, _)| s.to_string()).collect();
        writeln!(f, "final {}", finals.join(" "))
    }
}

/// Frontiers kept at most (then the cache starts over): bounds memory on a long-lived worker.
const MAX_CACHED_FRONTIERS: usize = 4096;

/// A set of states (closed over empty edges) and what may follow it, sorted for prefix look-ups.
#[derive(Debug)]
struct Frontier {
    states: Vec<u32>,
    words: Vec<String>,
    number: bool,
    any: bool,
    accepting: bool,
    /// Where each word read here leads (`None`: nowhere). Weak, because loops in the graph
    /// (numbers, free text) would make strong references a cycle; the graph's cache owns them.
    next: Mutex<HashMap<String, Option<Weak<Frontier>>>>,
}

/// Where a prefix of a transcript leaves the graph: the states reached after its complete words
/// and the word being spelled.
#[derive(Debug, Clone)]
pub struct Cursor {
    frontier: Arc<Frontier>,
    partial: String,
    /// An apostrophe was read in the current word ("I'd"): a second one is refused, or a decoder
    /// could emit apostrophes for ever without leaving the graph.
    apostrophe: bool,
    /// The current word is in capitals so far.
    all_caps: bool,
    /// Spaces and punctuation marks since the last letter or digit: bounded for the same reason.
    spaces: u8,
    marks: u8,
    /// A letter or digit was read (no punctuation before the first word).
    started: bool,
}

/// Punctuation allowed between words.
const SEPARATORS: &[char] = &[',', '.', '?', '!', '-', ';', ':'];

/// Words the `<number>` label accepts besides digit strings: what `sotto-intents`' number and
/// duration parsers read.
const NUMBER_WORDS: &[&str] = &[
    "zero",
    "oh",
    "nought",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "thousand",
    "a",
    "an",
    "and",
    "half",
    "quarter",
    "quarters",
    "third",
    "thirds",
    "point",
    "minus",
    "negative",
];

fn is_number(w: &str) -> bool {
    number_prefix(w) && (w.bytes().next().is_some_and(|b| b.is_ascii_digit()) || NUMBER_WORDS.contains(&w))
}

fn number_prefix(p: &str) -> bool {
    let digits =
        p.bytes().next().is_some_and(|b| b.is_ascii_digit()) && p.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    digits || NUMBER_WORDS.iter().any(|w| w.starts_with(p))
}

impl WordGraph {
    pub fn parse(text: &str) -> Result<Self, WordGraphError> {
        let mut edges: Vec<(u32, u32, Label)> = Vec::new();
        let mut finals: Vec<u32> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| WordGraphError::Syntax { line, message };
            let content = raw.split('#').next().unwrap_or("").trim();
            if content.is_empty() {
                continue;
            }
            let fields: Vec<&str> = content.split_whitespace().collect();
            let state = |s: &str| -> Result<u32, WordGraphError> {
                let n: u32 = s.parse().map_err(|_| err(format!("{s:?} is not a state number")))?;
                if n as usize >= MAX_ITEMS {
                    return Err(WordGraphError::TooLarge);
                }
                Ok(n)
            };
            if fields[0] == "final" {
                if fields.len() < 2 {
                    return Err(err("`final` needs at least one state".into()));
                }
                for f in &fields[1..] {
                    finals.push(state(f)?);
                }
                continue;
            }
            let [from, to, label] = fields[..] else {
                return Err(err(format!("expected `FROM TO LABEL` or `final STATE…`, got {content:?}")));
            };
            let (from, to) = (state(from)?, state(to)?);
            let label = match label {
                "-" => Label::Empty,
                "<number>" => Label::Number,
                "<any>" => Label::Any,
                w if Label::is_word(w) => Label::Word(w.to_string()),
                w => {
                    return Err(err(format!(
                        "label {w:?}: a word is lower-case letters and digits, or one of -, <number>, <any>"
                    )))
                }
            };
            edges.push((from, to, label));
            if edges.len() > MAX_ITEMS {
                return Err(WordGraphError::TooLarge);
            }
        }
        Self::from_edges(edges, &finals)
    }

    /// A graph from its edges `(from, to, label)` and accepting states; state 0 is the start.
    pub fn from_edges(edges: Vec<(u32, u32, Label)>, finals: &[u32]) -> Result<Self, WordGraphError> {
        if finals.is_empty() {
            return Err(WordGraphError::NoFinal);
        }
        if edges.len() > MAX_ITEMS || finals.len() > MAX_ITEMS {
            return Err(WordGraphError::TooLarge);
        }
        let top = edges.iter().map(|(f, t, _)| f.max(t)).chain(finals).copied().max().unwrap_or(0) as usize;
        if top >= MAX_ITEMS {
            return Err(WordGraphError::TooLarge);
        }
        if let Some((_, _, Label::Word(w))) =
            edges.iter().find(|(_, _, l)| matches!(l, Label::Word(w) if !Label::is_word(w)))
        {
            return Err(WordGraphError::BadLabel(w.clone()));
        }
        let mut out: Vec<Vec<(Label, u32)>> = vec![Vec::new(); top + 1];
        for (from, to, label) in edges {
            out[from as usize].push((label, to));
        }
        let mut accepting = vec![false; top + 1];
        for &f in finals {
            accepting[f as usize] = true;
        }
        Ok(WordGraph { out, finals: accepting, frontiers: Mutex::new(HashMap::new()) })
    }

    pub fn states(&self) -> usize {
        self.out.len()
    }

    /// Before the first word.
    pub fn start(&self) -> Cursor {
        Cursor {
            frontier: self.frontier(self.closure(vec![0])),
            partial: String::new(),
            apostrophe: false,
            all_caps: false,
            spaces: 0,
            marks: 0,
            started: false,
        }
    }

    fn frontier(&self, states: Vec<u32>) -> Arc<Frontier> {
        let mut cache = self.frontiers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(&states) {
            return f.clone();
        }
        let mut f = Frontier {
            states: states.clone(),
            words: Vec::new(),
            number: false,
            any: false,
            accepting: false,
            next: Mutex::new(HashMap::new()),
        };
        for &s in &states {
            f.accepting |= self.finals[s as usize];
            for (label, _) in &self.out[s as usize] {
                match label {
                    Label::Empty => {}
                    Label::Word(w) => f.words.push(w.clone()),
                    Label::Number => f.number = true,
                    Label::Any => f.any = true,
                }
            }
        }
        f.words.sort_unstable();
        f.words.dedup();
        if cache.len() >= MAX_CACHED_FRONTIERS {
            cache.clear();
        }
        let f = Arc::new(f);
        cache.insert(states, f.clone());
        f
    }

    fn closure(&self, mut states: Vec<u32>) -> Vec<u32> {
        let mut i = 0;
        while i < states.len() {
            for (label, to) in &self.out[states[i] as usize] {
                if *label == Label::Empty && !states.contains(to) {
                    states.push(*to);
                }
            }
            i += 1;
        }
        states.sort_unstable();
        states
    }

    /// Whether some word going on from `f` starts with `prefix`.
    fn prefix_ok(f: &Frontier, prefix: &str) -> bool {
        if f.any || (f.number && number_prefix(prefix)) {
            return true;
        }
        let i = f.words.partition_point(|w| w.as_str() < prefix);
        f.words.get(i).is_some_and(|w| w.starts_with(prefix))
    }

    /// The states after the whole word `word`; empty when no edge takes it.
    fn advance(&self, states: &[u32], word: &str) -> Vec<u32> {
        let mut next = Vec::new();
        for (label, to) in states.iter().flat_map(|&s| &self.out[s as usize]) {
            let takes = match label {
                Label::Empty => false,
                Label::Word(w) => w == word,
                Label::Number => is_number(word),
                Label::Any => true,
            };
            if takes && !next.contains(to) {
                next.push(*to);
            }
        }
        self.closure(next)
    }

    fn complete(&self, cursor: &mut Cursor) -> bool {
        if cursor.partial.is_empty() {
            return true;
        }
        // "21." at the end of a sentence: the point was punctuation after all.
        let word = cursor.partial.trim_end_matches('.');
        let known = cursor.frontier.next.lock().unwrap_or_else(|p| p.into_inner()).get(word).cloned();
        let next = match known.map(|k| k.map(|weak| weak.upgrade())) {
            Some(None) => return false,
            Some(Some(Some(next))) => Some(next),
            // Not read here yet, or its frontier was dropped from the graph's cache.
            _ => {
                let states = self.advance(&cursor.frontier.states, word);
                let next = (!states.is_empty()).then(|| self.frontier(states));
                let mut cache = cursor.frontier.next.lock().unwrap_or_else(|p| p.into_inner());
                cache.insert(word.to_string(), next.as_ref().map(Arc::downgrade));
                next
            }
        };
        let Some(next) = next else { return false };
        cursor.frontier = next;
        cursor.partial.clear();
        cursor.apostrophe = false;
        true
    }

    /// Appends transcript text (a decoder token's text, say); `None` when no sentence of the
    /// graph starts with the text so far. Words are read as `sotto-intents` tokenizes them
    /// (case and apostrophes do not count, digits and letters are separate words), but only
    /// ordinary writing is let through: a capital starts a word (or the word is all capitals),
    /// an apostrophe only before a contraction's ending ("I'd", "don't", "driver's"), at most one
    /// punctuation mark and two spaces between words, none before the first. A decoder pushed
    /// off its own reading otherwise escapes into odd spellings ("br'ew", "a'merIcAnO") that
    /// spell the right words with improbable tokens.
    pub fn feed(&self, cursor: &Cursor, text: &str) -> Option<Cursor> {
        let mut c = cursor.clone();
        for ch in text.chars() {
            if ch.is_alphanumeric() {
                let digit = ch.is_ascii_digit();
                let partial_digits = c.partial.bytes().next().is_some_and(|b| b.is_ascii_digit());
                if !c.partial.is_empty() && partial_digits != digit && !self.complete(&mut c) {
                    return None;
                }
                if ch.is_uppercase() && !c.partial.is_empty() && !c.all_caps {
                    return None;
                }
                c.all_caps = if c.partial.is_empty() { ch.is_uppercase() } else { c.all_caps && ch.is_uppercase() };
                c.partial.extend(ch.to_lowercase());
                if !Self::prefix_ok(&c.frontier, &c.partial) {
                    return None;
                }
                c.spaces = 0;
                c.marks = 0;
                c.started = true;
            } else if ch == '\'' || ch == '’' {
                if c.apostrophe || !Self::contraction_ok(&c.frontier, &c.partial) {
                    return None;
                }
                c.apostrophe = true;
            } else if ch == '.'
                && c.partial.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && !c.partial.contains('.')
            {
                // Maybe a decimal point ("21.5"), maybe a full stop: decided by what follows.
                c.partial.push('.');
                if !Self::prefix_ok(&c.frontier, &c.partial) {
                    // Not a number slot here: a full stop.
                    c.partial.pop();
                    if !self.complete(&mut c) {
                        return None;
                    }
                    c.marks += 1;
                }
            } else {
                if ch.is_whitespace() {
                    c.spaces += 1;
                } else if c.started && (SEPARATORS.contains(&ch) || ch == '%' || ch == '°') {
                    c.marks += 1;
                } else {
                    return None;
                }
                if c.spaces > 2 || c.marks > 1 || (c.apostrophe && c.partial.is_empty()) || !self.complete(&mut c) {
                    return None;
                }
            }
        }
        Some(c)
    }

    /// Whether an apostrophe may follow `partial`: a word here continues it with the ending of
    /// an English contraction or possessive ("I'd", "don't", "driver's"), not just any letters
    /// ("an'd").
    fn contraction_ok(f: &Frontier, partial: &str) -> bool {
        const PRONOUNS: &[&str] = &["i", "you", "we", "he", "she", "they", "it", "that", "there", "who", "what", "let"];
        let endings: &[&str] = if PRONOUNS.contains(&partial) {
            &["d", "s", "m", "ll", "re", "ve"]
        } else if partial.ends_with('n') {
            &["t", "s"]
        } else {
            &["s"]
        };
        partial.chars().next().is_some_and(char::is_alphabetic)
            && (f.any
                || endings.iter().any(|end| {
                    let mut w = String::with_capacity(partial.len() + 2);
                    w.push_str(partial);
                    w.push_str(end);
                    f.words.binary_search(&w).is_ok()
                }))
    }

    /// Whether the text fed so far is a whole sentence of the graph.
    pub fn can_end(&self, cursor: &Cursor) -> bool {
        let mut c = cursor.clone();
        self.complete(&mut c) && c.frontier.accepting
    }

    /// Whether `text` as a whole is a sentence of the graph.
    pub fn accepts(&self, text: &str) -> bool {
        self.feed(&self.start(), text).is_some_and(|c| self.can_end(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COFFEE: &str = "# can i get [a] (latte | 12 ounce coffee) [please]\n\
        0 1 can\n1 2 i\n2 3 get\n3 4 a\n3 4 -\n4 5 latte\n4 6 12\n6 7 ounce\n7 5 coffee\n5 8 please\n5 8 -\nfinal 8\n";

    #[test]
    fn accepts_sentences_the_way_the_matcher_reads_them() {
        let g = WordGraph::parse(COFFEE).unwrap();
        assert!(g.accepts("can i get a latte"));
        assert!(g.accepts("Can I get a latte, please?"));
        assert!(g.accepts(" can I get 12ounce coffee."), "digits and letters are separate words");
        assert!(g.accepts("can i get 12 ounce coffee"));
        assert!(!g.accepts("can i get a"), "incomplete");
        assert!(!g.accepts("can i get a mocha"));
        assert!(!g.accepts("can i get a latte now"));
    }

    #[test]
    fn feeds_token_pieces_and_rejects_a_dead_prefix_at_once() {
        let g = WordGraph::parse(COFFEE).unwrap();
        let mut c = g.start();
        for piece in [" Can", " I", " g", "et", " a", " lat"] {
            c = g.feed(&c, piece).unwrap_or_else(|| panic!("{piece:?} refused"));
        }
        assert!(!g.can_end(&c), "\"lat\" is not a word of the graph");
        assert!(g.feed(&c, "k").is_none());
        let c = g.feed(&c, "te").unwrap();
        assert!(g.can_end(&c));
        assert!(g.feed(&c, " please").is_some());
        assert!(g.feed(&c, " pleased").is_none());
        assert!(g.feed(&g.start(), " Could").is_none());
    }

    #[test]
    fn text_that_makes_no_progress_is_bounded() {
        let g = WordGraph::parse(COFFEE).unwrap();
        let c = g.feed(&g.start(), " can I").unwrap();
        assert!(g.feed(&c, ", ").is_some());
        assert!(g.feed(&c, ", -").is_none(), "one mark between words");
        assert!(g.feed(&c, "   ").is_none());
        assert!(g.feed(&g.start(), ", can").is_none(), "nothing before the first word");
        assert!(g.feed(&g.start(), "$can").is_none(), "symbols");
    }

    #[test]
    fn only_ordinary_spellings() {
        let g = WordGraph::parse("0 1 id\n1 2 like\n2 3 drivers\n3 4 brew\n4 5 ok\n5 6 and\nfinal 5 6\n").unwrap();
        assert!(!g.accepts("I'd like driver's brew OK an'd"), "not a contraction");
        assert!(g.accepts("I'd like driver's brew OK."));
        assert!(!g.accepts("I'd like driver's br'ew OK."), "not a contraction");
        assert!(!g.accepts("I''d like driver's brew OK."));
        assert!(!g.accepts("I'd like driver's bREw OK."), "capitals inside a word");
        assert!(g.accepts("I'D LIKE DRIVER'S BREW OK"));
    }

    #[test]
    fn number_and_any_labels() {
        let g = WordGraph::parse("0 1 set\n1 2 <number>\n2 1 -\n2 3 degrees\n0 4 say\n4 4 <any>\nfinal 3 4\n").unwrap();
        assert!(g.accepts("set twenty one degrees"));
        assert!(g.accepts("set 21.5 degrees."));
        assert!(g.accepts("Set 21 - degrees"));
        assert!(!g.accepts("set warm degrees"));
        assert!(g.accepts("say whatever you like"));
        assert!(g.accepts("say"));
    }

    #[test]
    fn syntax_errors_name_the_line() {
        assert_eq!(WordGraph::parse("0 1 a\n").unwrap_err(), WordGraphError::NoFinal);
        let e = WordGraph::parse("0 1 a\n0 x b\nfinal 1").unwrap_err();
        assert!(matches!(&e, WordGraphError::Syntax { line: 2, message } if message.contains("\"x\"")), "{e}");
        let e = WordGraph::parse("0 1 Latte\nfinal 1").unwrap_err();
        assert!(e.to_string().starts_with("word graph line 1: label \"Latte\""), "{e}");
        assert!(matches!(WordGraph::parse("0 1 a b\nfinal 1"), Err(WordGraphError::Syntax { line: 1, .. })));
        assert_eq!(WordGraph::parse("0 99999999 a\nfinal 1").unwrap_err(), WordGraphError::TooLarge);
    }
}
