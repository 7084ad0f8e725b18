//! Grounding: the last check every resolution passes, whichever resolver produced it. An accepted
//! intent may only carry slot values that the words heard evidence:
//! - an enum value by one of its synonyms, or a plausible mishearing of one: a heard word that is
//!   itself a word of the loaded domains stands only for itself ("on" is never "off"), and a
//!   mishearing must be close on average (a real word like "entire" is not "entrance");
//! - a number by a number said (digits, words, fractions), or by "max"/"minimum" for a slot whose
//!   range gives those a value; a duration by a duration said;
//! - free text by a span of the transcript, word for word;
//! - anything else only when it is the default the schema declares.
//!
//! A required value nobody said is asked for ("which room?"); another value of the same slot said
//! too ("the kitchen and the bedroom"), or a part of the request no slot can hold (a delay, another
//! temperature unit, "all the lights in the house"), refuses rather than serving part of it.
//!
//! Words that are no command give no intent at all: questions about state ("is the door
//! locked?", "did I leave the light on") unless the intent is a declared query, statements ("the
//! front door is open") and negated requests ("don't turn off the lights"). Polite requests ("can
//! you turn the lights on?") are commands.
//!
//! Works on the transcript alone, so the language model's answers are checked exactly like the
//! grammar's, in [`crate::Intents`]' one exit.

use std::collections::BTreeMap;

use crate::numbers::{parse_duration, parse_number, SpokenNumber};
use crate::schema::{EnumValue, Intent, Slot, SlotKind, SlotValue};
use crate::template::Expr;
use crate::text::{is_filler, phonetic_key, substitution_cost, tokenize, VocabWord};
use crate::validate;

/// Longest number or duration phrase looked for (as in the matcher).
const MAX_SPAN: usize = 8;
/// Mean substitution cost over a synonym's content words above which the words heard are another
/// word rather than a mishearing of it. The matcher forgives up to 0.5 per word to find the
/// intent; a value needs better: "dark rose" for "dark roast" averages 0.2 and "ice" for "iced"
/// is 0.25, while "entire" for "entrance" (0.5) is another word.
const MAX_MEAN_MISHEARING: f32 = 0.3;
/// A near sound (0.4: "much" for "mocha", "a mercano" for "americano") is a mishearing only where
/// the rest of the sentence was heard as a template says it ([`IN_CONTEXT_FIT`]): "get me a single
/// shot, much with almond milk" is an order, "turn off the oven" (0.75) no room.
const MAX_MEAN_MISHEARING_IN_CONTEXT: f32 = 0.4;
/// Grammar match confidence from which the words around a value vouch for a near sound.
const IN_CONTEXT_FIT: f32 = 0.9;
/// Another value of the same slot counts as said only when heard this clearly (exactly, or a
/// word of the same sound): a doubtful rival should not block a clear answer.
const MAX_MEAN_RIVAL: f32 = 0.2;

/// The words heard, prepared once per transcript.
pub struct Heard {
    words: Vec<String>,
    keys: Vec<String>,
    /// Each clause (cut at a , ; . ! ? : that ends one) as a range of `words`, in order.
    clauses: Vec<(usize, usize)>,
    /// Clauses whose first word is "we're": tokenised as "were", which opens a question.
    we_are: Vec<bool>,
    /// How far a heard value may be from a synonym on average (see [`MAX_MEAN_MISHEARING`]).
    max_mishearing: f32,
}

impl Heard {
    pub fn new(transcript: &str) -> Self {
        let mut words = tokenize(transcript);
        words.truncate(crate::matcher::MAX_WORDS);
        let keys = words.iter().map(|w| phonetic_key(w)).collect();
        let (mut ranges, mut we_are, mut at) = (Vec::new(), Vec::new(), 0);
        for c in clauses(transcript) {
            let n = tokenize(c).len();
            let (a, b) = (at.min(words.len()), (at + n).min(words.len()));
            if a < b {
                ranges.push((a, b));
                let first = c.split_whitespace().next().unwrap_or("").to_lowercase().replace('\u{2019}', "'");
                we_are.push(first.trim_matches(|ch: char| !ch.is_alphanumeric() && ch != '\'') == "we're");
            }
            at += n;
        }
        Heard { words, keys, clauses: ranges, we_are, max_mishearing: MAX_MEAN_MISHEARING }
    }

    /// `template_fit`: the grammar's match confidence, when a template matched the words.
    pub fn in_context(mut self, template_fit: Option<f32>) -> Self {
        if template_fit.is_some_and(|fit| fit >= IN_CONTEXT_FIT) {
            self.max_mishearing = MAX_MEAN_MISHEARING_IN_CONTEXT;
        }
        self
    }

    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Cost of hearing word `pos` where `expected` was meant, as the matcher counts it; a heard
    /// word of the loaded vocabulary stands only for itself or a word of the same sound.
    fn heard_as(&self, expected: &VocabWord, pos: usize, in_vocabulary: &dyn Fn(&str) -> bool) -> Option<f32> {
        let w = &self.words[pos];
        // A number word ("half", "four") means its number: "half" is not a mishearing of "hall".
        let own_meaning = in_vocabulary(w) || parse_number(&[w.as_str()]).is_some();
        if *w != expected.text && expected.key != self.keys[pos] && own_meaning {
            return None;
        }
        substitution_cost(expected, w, &self.keys[pos])
    }

    /// Where a synonym (a word sequence) was said, as a range of heard words: its content words
    /// heard in order, with only filler words dropped or slipped in, and close enough on average.
    fn said(&self, synonym: &str, max_mean: f32, in_vocabulary: &dyn Fn(&str) -> bool) -> Option<(usize, usize)> {
        let expected: Vec<VocabWord> = tokenize(synonym).iter().map(|w| VocabWord::new(w)).collect();
        if expected.is_empty() {
            return None;
        }
        // A synonym of filler words only ("up") must be heard as such.
        let all_filler = expected.iter().all(|e| is_filler(&e.text));
        // A particle is what tells "roll up" from "roll down" and "wind up" from "window": it may
        // not be dropped from a value's words, as other fillers may.
        let content = |e: &VocabWord| all_filler || !is_filler(&e.text) || matches!(e.text.as_str(), "up" | "in");
        let n = self.words.len();
        let m = expected.len();
        // cost[k][p]: synonym words ..k aligned, ending before heard word p (content cost only),
        // and the heard word where that alignment starts.
        let mut cost = vec![vec![(f32::INFINITY, 0usize); n + 1]; m + 1];
        for (p, c) in cost[0].iter_mut().enumerate() {
            *c = (0.0, p);
        }
        for k in 1..=m {
            let e = &expected[k - 1];
            for p in 0..=n {
                let mut best = (f32::INFINITY, 0);
                let mut consider = |c: (f32, usize)| {
                    if c.0 < best.0 {
                        best = c;
                    }
                };
                // Hearing a word is tried first, so a tie keeps the longer span ("my side", not "side").
                if p > 0 {
                    if let Some(c) = self.heard_as(e, p - 1, in_vocabulary) {
                        let (before, start) = cost[k - 1][p - 1];
                        consider((before + if content(e) { c } else { 0.0 }, start));
                    }
                }
                if !content(e) {
                    consider(cost[k - 1][p]);
                }
                if p > 0 && k < m && is_filler(&self.words[p - 1]) {
                    consider(cost[k][p - 1]);
                }
                cost[k][p] = best;
            }
        }
        let contents = expected.iter().filter(|e| content(e)).count().max(1) as f32;
        let (end, &(best, start)) = cost[m].iter().enumerate().min_by(|a, b| a.1 .0.total_cmp(&b.1 .0))?;
        (best.is_finite() && best / contents <= max_mean).then_some((start, end))
    }

    /// Where a value of an enum slot was said (its best-placed synonym), if it was.
    fn value_said(
        &self,
        value: &EnumValue,
        max_mean: f32,
        in_vocabulary: &dyn Fn(&str) -> bool,
    ) -> Vec<(usize, usize)> {
        value.synonyms.iter().filter_map(|s| self.said(s, max_mean, in_vocabulary)).collect()
    }

    /// Another value of the same enum slot said in other words than `value`'s ("the kitchen and
    /// the living room", "off, no, on"): one action cannot serve both.
    /// A word the intent's own templates use outside slots ("play" in "play the next song") says
    /// nothing about a slot on its own, even when it is another value's synonym.
    /// `taken`: where the answer's values were heard ("medium roast" is a roast, not a size).
    fn rival(
        &self,
        intent: &Intent,
        slot: &Slot,
        value: &str,
        taken: &[(usize, usize)],
        in_vocabulary: &dyn Fn(&str) -> bool,
    ) -> Option<String> {
        let SlotKind::Enum(values) = &slot.kind else { return None };
        let mut frame = Vec::new();
        intent.templates.iter().for_each(|t| t.words(&mut frame));
        let counts = |(a, b): (usize, usize)| {
            !taken.iter().any(|&(c, d)| a < d && c < b) && (b - a > 1 || !frame.contains(&self.words[a]))
        };
        values
            .iter()
            .filter(|x| x.canonical != value)
            .find(|x| self.value_said(x, MAX_MEAN_RIVAL, in_vocabulary).into_iter().any(counts))
            .map(|x| x.canonical.clone())
    }

    /// Every span's number value, and durations in seconds, with the span's range of words.
    fn spans<T>(&self, parse: impl Fn(&[&str]) -> Option<T>) -> Vec<((usize, usize), T)> {
        let refs: Vec<&str> = self.words.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        for i in 0..refs.len() {
            for j in i + 1..=(i + MAX_SPAN).min(refs.len()) {
                if let Some(v) = parse(&refs[i..j]) {
                    out.push(((i, j), v));
                }
            }
        }
        out
    }

    /// The numbers said, each from its longest reading: "twenty one" is 21, and neither 20 nor 1.
    fn numbers(&self) -> Vec<((usize, usize), SpokenNumber)> {
        outermost(self.spans(parse_number), &[])
    }

    /// The durations said, in seconds, each from its longest reading (a bare number counts as
    /// seconds): "a quarter of an hour" is 900, not the hour inside it, and "five minutes" is not
    /// five seconds.
    fn durations(&self) -> Vec<((usize, usize), f64)> {
        let durations = self.spans(parse_duration);
        let numbers: Vec<((usize, usize), f64)> =
            self.spans(parse_number).into_iter().map(|(at, n)| (at, n.value)).collect();
        let all: Vec<(usize, usize)> = durations.iter().chain(&numbers).map(|(at, _)| *at).collect();
        outermost(durations.into_iter().chain(numbers).collect(), &all)
    }

    fn number_said(&self, slot: &Slot, v: f64) -> bool {
        !self.number_spans(slot, v).is_empty()
    }

    /// Where number `v` of `slot` was said.
    fn number_spans(&self, slot: &Slot, v: f64) -> Vec<(usize, usize)> {
        self.readings(slot).into_iter().filter(|(_, x)| (x - v).abs() < 1e-6).map(|(at, _)| at).collect()
    }

    /// What the words said can mean for a number or duration slot, with where each was said: a
    /// number, a fraction as a percentage for a percent slot ("a quarter" is 25), "max"/"minimum"
    /// as the slot's bounds, a duration in seconds.
    fn readings(&self, slot: &Slot) -> Vec<((usize, usize), f64)> {
        let (min, max, percent) = match &slot.kind {
            SlotKind::Duration { .. } => return self.durations(),
            SlotKind::Integer { min, max, percent, .. } | SlotKind::Number { min, max, percent, .. } => {
                (*min, *max, *percent)
            }
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for (at, n) in self.numbers() {
            out.push((at, n.value));
            if percent && n.fraction_only {
                out.push((at, n.value * 100.0));
            }
            let bound = if n.value == f64::INFINITY {
                max
            } else if n.value == f64::NEG_INFINITY {
                min
            } else {
                None
            };
            out.extend(bound.map(|b| (at, b)));
        }
        out
    }

    fn duration_said(&self, seconds: f64) -> bool {
        !self.duration_spans(seconds).is_empty()
    }

    /// Where a duration of `seconds` was said (as a duration, or as a bare number of seconds).
    fn duration_spans(&self, seconds: f64) -> Vec<(usize, usize)> {
        let same = |a: f64| (a.round() - seconds).abs() < 0.5;
        self.durations().into_iter().filter(|(_, d)| same(*d)).map(|(at, _)| at).collect()
    }

    /// The values a number or duration slot could take from the words heard, as JSON numbers
    /// (in range, whole for a whole-number slot); None for other kinds of slot.
    pub fn said_values(&self, slot: &Slot) -> Option<Vec<String>> {
        let (min, max, integer) = match &slot.kind {
            SlotKind::Integer { min, max, .. } => (*min, *max, true),
            SlotKind::Number { min, max, .. } => (*min, *max, false),
            SlotKind::Duration { min, max } => (*min, *max, true),
            _ => return None,
        };
        let duration = matches!(slot.kind, SlotKind::Duration { .. });
        let values = self.readings(slot).into_iter().map(|(_, x)| if duration { x.round() } else { x });
        let fits = |v: &f64| {
            v.is_finite()
                && min.is_none_or(|m| *v >= m)
                && max.is_none_or(|m| *v <= m)
                && (!integer || v.fract() == 0.0)
        };
        let mut out: Vec<String> = Vec::new();
        for v in values.filter(fits) {
            let text = if v.fract() == 0.0 { format!("{}", v as i64) } else { format!("{v}") };
            if !out.contains(&text) {
                out.push(text);
            }
        }
        Some(out)
    }

    /// Where the answer's value of slot `name` was heard, whatever its kind (none for a default
    /// nobody said).
    fn value_spans(
        &self,
        intent: &Intent,
        name: &str,
        value: &SlotValue,
        in_vocabulary: &dyn Fn(&str) -> bool,
    ) -> Vec<(usize, usize)> {
        let Some(slot) = intent.slot(name) else { return Vec::new() };
        match (&slot.kind, value) {
            (SlotKind::Integer { .. } | SlotKind::Number { .. }, SlotValue::Int(i)) => {
                self.number_spans(slot, *i as f64)
            }
            (SlotKind::Integer { .. } | SlotKind::Number { .. }, SlotValue::Num(x)) => self.number_spans(slot, *x),
            (SlotKind::Duration { .. }, SlotValue::Int(x)) => self.duration_spans(*x as f64),
            (SlotKind::Duration { .. }, SlotValue::Num(x)) => self.duration_spans(*x),
            _ => self.spans_of(slot, value, in_vocabulary),
        }
    }

    fn text_at(&self, text: &str) -> Option<(usize, usize)> {
        let t = tokenize(text);
        let start = self.words.windows(t.len().max(1)).position(|w| w == t.as_slice())?;
        Some((start, start + t.len()))
    }

    /// Where an enum or text value was heard.
    fn spans_of(&self, slot: &Slot, value: &SlotValue, in_vocabulary: &dyn Fn(&str) -> bool) -> Vec<(usize, usize)> {
        match (&slot.kind, value) {
            (SlotKind::Enum(values), SlotValue::Str(v)) => values
                .iter()
                .filter(|x| x.canonical == *v)
                .flat_map(|x| self.value_said(x, self.max_mishearing, in_vocabulary))
                .collect(),
            (SlotKind::Text { .. }, SlotValue::Str(t)) => self.text_at(t).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether an enum value was heard clearly: a synonym's words exactly, or words of the same
    /// sound ("bay" is not clearly "back", though grounding forgives it as a mishearing).
    pub fn clearly_said(&self, slot: &Slot, value: &str, in_vocabulary: &dyn Fn(&str) -> bool) -> bool {
        let SlotKind::Enum(values) = &slot.kind else { return false };
        values
            .iter()
            .filter(|x| x.canonical == value)
            .any(|x| !self.value_said(x, MAX_MEAN_RIVAL, in_vocabulary).is_empty())
    }

    /// Whether a value of this slot is evidenced by the words heard.
    pub fn evidences(&self, slot: &Slot, value: &SlotValue, in_vocabulary: &dyn Fn(&str) -> bool) -> bool {
        match (&slot.kind, value) {
            (SlotKind::Enum(_), SlotValue::Str(_)) => !self.spans_of(slot, value, in_vocabulary).is_empty(),
            (SlotKind::Integer { .. } | SlotKind::Number { .. }, SlotValue::Int(i)) => {
                self.number_said(slot, *i as f64)
            }
            (SlotKind::Integer { .. } | SlotKind::Number { .. }, SlotValue::Num(x)) => self.number_said(slot, *x),
            (SlotKind::Duration { .. }, SlotValue::Int(s)) => self.duration_said(*s as f64),
            (SlotKind::Duration { .. }, SlotValue::Num(s)) => self.duration_said(*s),
            (SlotKind::Text { .. }, SlotValue::Str(t)) => self.text_at(t).is_some(),
            _ => false,
        }
    }

    /// The clause that carries the request: the last one where a value of the answer was heard
    /// ("heater in the car to sixteen, my feet are cold": the reason after the request is not
    /// what is asked; "is the front door locked, I can't remember" stays a question), else the
    /// last clause, as the speaker ends with what they ask ("I'm off to bed, lights out").
    fn request_clause(&self, heard_at: &[(usize, usize)]) -> Option<usize> {
        let last = self.clauses.len().checked_sub(1)?;
        Some(
            (0..self.clauses.len())
                .rev()
                .find(|&k| {
                    let (a, b) = self.clauses[k];
                    heard_at.iter().any(|&(s, _)| a <= s && s < b)
                })
                .unwrap_or(last),
        )
    }

    /// Why these words are not a command, if they are not: a question (for an intent that is no
    /// declared query), a statement or a negated request. `heard_at`: where the answer's values
    /// were heard, which says which clause is the request.
    pub fn not_a_command(&self, intent: &Intent, heard_at: &[(usize, usize)]) -> Option<&'static str> {
        let k = self.request_clause(heard_at)?;
        let (a, b) = self.clauses[k];
        let w: Vec<&str> = self.words[a..b].iter().map(String::as_str).skip_while(|w| is_opening(w)).collect();
        let polite = w.iter().position(|w| !matches!(*w, "please" | "just" | "no")).unwrap_or(w.len());
        if matches!(&w[polite..], ["dont" | "never", ..] | ["do", "not", ..]) {
            return Some("a negated request is not a command");
        }
        if intent.query {
            return None;
        }
        if is_question(&w) && !(self.we_are[k] && w.first() == Some(&"were")) {
            return Some("a question, not a command");
        }
        if is_statement(&w) && !intent.templates.iter().any(copula_then_word) {
            return Some("a statement, not a command");
        }
        None
    }
}

/// The readings not strictly inside a longer one (of `spans`, or of `also`): a number or a
/// duration is what its whole phrase says.
fn outermost<T>(spans: Vec<((usize, usize), T)>, also: &[(usize, usize)]) -> Vec<((usize, usize), T)> {
    let ranges: Vec<(usize, usize)> = spans.iter().map(|(at, _)| *at).chain(also.iter().copied()).collect();
    spans
        .into_iter()
        .filter(|((a, b), _)| !ranges.iter().any(|&(c, d)| c <= *a && *b <= d && (c, d) != (*a, *b)))
        .collect()
}

/// The last clause of a transcript of several ("I'm off to bed, lights out in the lounge" →
/// "lights out in the lounge"): people preface a request with why they make it, and the grammar
/// may match the request alone when the whole does not fit a template.
pub fn last_clause(transcript: &str) -> Option<&str> {
    let parts: Vec<&str> = clauses(transcript).into_iter().filter(|c| !tokenize(c).is_empty()).collect();
    (parts.len() > 1).then(|| parts[parts.len() - 1])
}

/// The transcript cut where punctuation ends a clause (not inside "21.5" or "1,000").
fn clauses(transcript: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = transcript.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let ends =
            matches!(c, ',' | ';' | '.' | '!' | '?' | ':') && chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if ends {
            out.push(&transcript[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&transcript[start..]);
    out
}

const COPULAS: [&str; 8] = ["is", "are", "was", "were", "isnt", "arent", "wasnt", "werent"];

/// A description of how things are: "the front door is open", "my window is stuck". A clause
/// that opens with a determiner and has a copula; an imperative opens with its verb.
fn is_statement(w: &[&str]) -> bool {
    matches!(
        w.first(),
        Some(&("the" | "my" | "our" | "your" | "this" | "that" | "these" | "those" | "his" | "her" | "their"))
    ) && w.iter().any(|x| COPULAS.contains(x))
}

/// Whether a template reports a state in words, as "{machine} is having a problem" does: then a
/// statement is how the domain is meant to be used.
fn copula_then_word(e: &Expr) -> bool {
    match e {
        Expr::Seq(items) => {
            items.windows(2).any(|p| matches!(p, [Expr::Word(c), Expr::Word(_)] if COPULAS.contains(&c.as_str())))
                || items.iter().any(copula_then_word)
        }
        Expr::Alt(v) | Expr::Perm(v) => v.iter().any(copula_then_word),
        Expr::Opt(inner) => copula_then_word(inner),
        Expr::Word(_) | Expr::Slot(_) | Expr::Rule(_) => false,
    }
}

/// Words that open an utterance without changing what it is ("hey", "okay so", "um").
fn is_opening(w: &str) -> bool {
    matches!(w, "hey" | "hi" | "ok" | "okay" | "so" | "um" | "uh" | "er" | "erm" | "well" | "oh" | "and" | "but")
}

/// A yes/no or wh- question about the world, as opposed to a request however polite: "is the
/// door locked", "did I leave it on", "what is the temperature", "can you tell me whether…"
/// are questions; "can you turn the lights on", "could I get a latte", "would you lock the door"
/// are requests.
pub fn is_question(w: &[&str]) -> bool {
    let Some(&first) = w.first() else { return false };
    let second = w.get(1).copied().unwrap_or("");
    let third = w.get(2).copied().unwrap_or("");
    // "is it possible to…", "would it be possible to…", "do you mind…": requests in question form.
    let polite = w.contains(&"possible") || matches!((first, second), ("do", "you") if third == "mind");
    if polite {
        return false;
    }
    // Asking to be told whether something is so: "tell me whether", "do you know if",
    // "check if", "I wonder if".
    let asks_whether = w.windows(2).any(|p| {
        p[1] == "whether" || (p[1] == "if" && matches!(p[0], "me" | "know" | "check" | "see" | "wonder" | "ask"))
    });
    if asks_whether {
        return true;
    }
    match first {
        "is" | "isnt" | "are" | "arent" | "was" | "wasnt" | "were" | "werent" | "am" | "did" | "didnt" | "does"
        | "doesnt" | "havent" | "hasnt" | "should" | "shouldnt" => true,
        // "do one", "have a look" are imperatives; "do you…", "have the lights…" ask.
        "do" | "have" | "has" | "had" => matches!(
            second,
            "you"
                | "u"
                | "i"
                | "we"
                | "they"
                | "he"
                | "she"
                | "it"
                | "the"
                | "my"
                | "our"
                | "your"
                | "any"
                | "all"
                | "this"
                | "that"
                | "these"
                | "those"
        ),
        "what" | "whats" | "which" | "who" | "whos" | "whose" | "why" | "when" | "whens" | "where" | "wheres"
        | "how" | "hows" => true,
        // A modal asks about the world unless it asks someone to do something: "can you…",
        // "could I get…", "will you…", "can we…".
        "can" | "could" | "would" | "will" | "cant" | "couldnt" | "wont" | "wouldnt" => {
            !matches!(second, "you" | "u" | "ya" | "i" | "we" | "someone" | "somebody" | "please")
        }
        _ => false,
    }
}

/// Which word would have meant "every value" of a slot that has no such value.
fn says_every(words: &[String]) -> Option<&str> {
    words
        .iter()
        .map(String::as_str)
        .find(|w| matches!(*w, "all" | "every" | "everything" | "everywhere" | "entire" | "whole" | "each"))
}

/// The question to ask back for a required slot nobody filled, and why, when the words asked for
/// a value the schema cannot express ("all the lights in the house").
fn missing_reason(slot: &Slot, heard: &Heard) -> String {
    let mut reason = validate::missing(&slot.name);
    if let (SlotKind::Enum(values), Some(word)) = (&slot.kind, says_every(heard.words())) {
        let names: Vec<&str> = values.iter().map(|v| v.canonical.as_str()).collect();
        reason.push_str(&format!(": `{word}` is no {} value (one of {})", slot.name, names.join(", ")));
    }
    reason
}

/// Temperature units in words, for slots whose unit is one of them.
const TEMPERATURE_UNITS: [(&str, &str); 4] =
    [("fahrenheit", "°F"), ("celsius", "°C"), ("centigrade", "°C"), ("kelvin", "K")];

/// A part of the request the intent has no slot for, which acting would silently drop: a unit the
/// slot is not in ("20 fahrenheit" for a °C slot), or a time for an intent that cannot be
/// scheduled ("turn off the kitchen lights in 10 minutes").
fn unexpressible(intent: &Intent, heard: &Heard, taken: &[(usize, usize)]) -> Option<String> {
    let words = heard.words();
    for slot in &intent.slots {
        let (SlotKind::Number { unit: Some(unit), .. } | SlotKind::Integer { unit: Some(unit), .. }) = &slot.kind
        else {
            continue;
        };
        if !TEMPERATURE_UNITS.iter().any(|(_, u)| u == unit) {
            continue;
        }
        if let Some((word, _)) = TEMPERATURE_UNITS.iter().find(|(w, u)| u != unit && words.iter().any(|x| x == w)) {
            return Some(format!("{} is in {unit}: `{word}` cannot be expressed", slot.name));
        }
    }
    if intent.slots.iter().any(|s| matches!(s.kind, SlotKind::Duration { .. })) {
        return None;
    }
    let free = |a: usize, b: usize| !taken.iter().any(|&(c, d)| a < d && c < b);
    let refs: Vec<&str> = words.iter().map(String::as_str).collect();
    for i in 0..refs.len() {
        let timed = match refs[i] {
            "in" | "for" | "after" | "within" => (i + 2..=(i + 1 + MAX_SPAN).min(refs.len()))
                .find(|&j| parse_duration(&refs[i + 1..j]).is_some())
                .map(|j| (i, j)),
            "tomorrow" | "oclock" => Some((i, i + 1)),
            "am" | "pm" if i > 0 && parse_number(&refs[i - 1..i]).is_some() => Some((i - 1, i + 1)),
            _ => None,
        };
        if let Some((i, j)) = timed.filter(|&(i, j)| free(i, j)) {
            return Some(format!("{} cannot be scheduled: `{}` was said", intent.name, refs[i..j].join(" ")));
        }
    }
    None
}

/// A free-text value made only of the words that name another slot's value ("report a fault on
/// the first conveyor, the feeder jammed" with the description `the first conveyor`): the same
/// words cannot say both, and a description that only repeats the machine says nothing.
fn echoed_text(
    intent: &Intent,
    heard: &Heard,
    slots: &BTreeMap<String, SlotValue>,
    in_vocabulary: &dyn Fn(&str) -> bool,
) -> Option<String> {
    slots.iter().find_map(|(name, value)| {
        let slot = intent.slot(name)?;
        let (SlotKind::Text { .. }, SlotValue::Str(text)) = (&slot.kind, value) else { return None };
        let (start, end) = heard.text_at(text)?;
        let (other, _) = slots.iter().filter(|(other, _)| *other != name).find(|(other, v)| {
            let Some(other_slot) = intent.slot(other) else { return false };
            let spans = heard.spans_of(other_slot, v, in_vocabulary);
            !spans.is_empty()
                && (start..end)
                    .all(|i| crate::text::is_filler(&heard.words[i]) || spans.iter().any(|&(a, b)| a <= i && i < b))
        })?;
        Some(format!("{} `{text}` only repeats the {}", name.replace('_', " "), other.replace('_', " ")))
    })
}

/// Keeps a validated resolution only if every value was heard (or is the declared default, which
/// needs no words); otherwise names the first slot that was not.
pub fn ground(
    intent: &Intent,
    heard: &Heard,
    slots: BTreeMap<String, SlotValue>,
    in_vocabulary: &dyn Fn(&str) -> bool,
) -> Result<BTreeMap<String, SlotValue>, String> {
    let taken: Vec<(usize, usize)> = slots
        .iter()
        .filter_map(|(name, value)| Some(heard.spans_of(intent.slot(name)?, value, in_vocabulary)))
        .flatten()
        .collect();
    if let Some(reason) = unexpressible(intent, heard, &taken) {
        return Err(reason);
    }
    if let Some(reason) = echoed_text(intent, heard, &slots, in_vocabulary) {
        return Err(reason);
    }
    for (name, value) in &slots {
        let Some(slot) = intent.slot(name) else { continue };
        let heard_value = heard.evidences(slot, value, in_vocabulary);
        if heard_value || slot.default.as_ref() == Some(value) {
            if let Some(other) = heard.rival(intent, slot, &value.as_text(), &taken, in_vocabulary) {
                let v = value.as_text();
                return Err(match heard_value {
                    true => format!("which {}? both `{v}` and `{other}` were said", name.replace('_', " ")),
                    false => format!("{name} `{other}` was said, not the default `{v}`"),
                });
            }
            continue;
        }
        let said = format!("{name} `{}` was not said", value.as_text());
        // A value invented for a slot that needs one: ask for it.
        return Err(if slot.required && slot.default.is_none() {
            format!("{}; {said}", missing_reason(slot, heard))
        } else {
            said
        });
    }
    Ok(slots)
}

/// What grounding makes of a resolver's validated answer.
#[derive(Debug)]
pub enum Verdict {
    /// The words are no command for this intent (a question, a negated request): no intent at all.
    NotACommand(&'static str),
    /// The answer, checked: grounded slots, or the reason it cannot be acted on.
    Checked(Result<BTreeMap<String, SlotValue>, String>),
}

/// Grounds a validated answer (`checked`) for `intent` in `transcript`. `in_vocabulary` says
/// whether a word is one of the loaded domains' words; `template_fit` is the grammar's match
/// confidence (None for the language model, whose words are not matched to a template).
pub fn check(
    intent: &Intent,
    transcript: &str,
    checked: Result<BTreeMap<String, SlotValue>, String>,
    in_vocabulary: &dyn Fn(&str) -> bool,
    template_fit: Option<f32>,
) -> Verdict {
    let heard = Heard::new(transcript).in_context(template_fit);
    let heard_at: Vec<(usize, usize)> = match &checked {
        Ok(slots) => {
            slots.iter().flat_map(|(name, value)| heard.value_spans(intent, name, value, in_vocabulary)).collect()
        }
        Err(_) => Vec::new(),
    };
    if let Some(why) = heard.not_a_command(intent, &heard_at) {
        return Verdict::NotACommand(why);
    }
    Verdict::Checked(match checked {
        Ok(slots) => ground(intent, &heard, slots, in_vocabulary),
        // Say why a missing slot could not be filled, when the words tried to.
        Err(reason) => Err(intent
            .slots
            .iter()
            .filter(|s| s.required && s.default.is_none())
            .fold(reason, |r, slot| r.replace(&validate::missing(&slot.name), &missing_reason(slot, &heard)))),
    })
}
