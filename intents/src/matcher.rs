//! The grammar matcher: every intent's templates compiled once into a word graph
//! ([`crate::grammar`]), matched against a transcript by a weighted edit-distance search (Viterbi
//! over graph states × word positions). Substitutions by similar-sounding words, dropped template
//! words and extra spoken words are allowed at a cost, which is what makes the match robust to
//! recognition errors.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::grammar::{EdgeKind, Grammar, Graph, Tag};
use crate::numbers::{may_start_number, parse_duration, parse_number, SpokenNumber};
use crate::schema::{Intent, SlotKind};
use crate::text::{is_filler, phonetic_key, substitution_cost, tokenize, VocabWord};

/// A spoken word that is not in the template.
const INSERT_COST: f32 = 1.0;
const INSERT_FILLER_COST: f32 = 0.35;
/// The first word of a longer utterance (see `insert_cost`).
const INSERT_EDGE_COST: f32 = 0.6;
/// How far back a repeated word may find its first occurrence.
const REPEAT_WINDOW: usize = 4;
/// A template word that was not spoken.
const DELETE_COST: f32 = 1.0;
const DELETE_FILLER_COST: f32 = 0.3;
/// Each word taken by a free-text slot: small, so text slots do not out-compete real words.
const TEXT_WORD_COST: f32 = 0.05;
/// Minimum confidence of a grammar match. On the shipped test set with all four domains loaded,
/// in-domain lines score at least 0.81 and out-of-domain lines at most 0.68.
pub const DEFAULT_THRESHOLD: f32 = 0.75;
/// How much dearer than a refused best match another intent's match may be and still be tried:
/// half a word, a near tie between domains that share words ("heating" of a seat or a house).
pub(crate) const RUNNER_UP_MARGIN: f32 = 0.5;
/// A substitution this cheap counts as clearly heard.
const STRONG_MATCH: f32 = 0.25;
/// Longest number or duration phrase considered.
const MAX_SPAN: usize = 8;
/// Longer transcripts are cut: no command is this long, and the search is linear in it.
pub const MAX_WORDS: usize = 48;

/// A slot value as found in the words, before type checks.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    Enum(String),
    Number(SpokenNumber),
    Duration(f64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedWord {
    pub heard: String,
    pub expected: String,
}

#[derive(Debug, Clone)]
pub struct GrammarMatch {
    /// Index into the matcher's flat intent list.
    pub intent: usize,
    pub slots: BTreeMap<String, Extracted>,
    pub confidence: f32,
    pub cost: f32,
    pub matched_words: Vec<MatchedWord>,
    /// Content (non-filler) template words heard exactly or nearly so.
    pub support: usize,
    /// Template words on the path that were not heard.
    pub deletions: usize,
    /// Words taken by free-text slots.
    pub text_words: usize,
}

impl GrammarMatch {
    /// A match must rest on at least one clearly heard content word; one with a free-text slot
    /// must also hear its whole template, or any sentence with "how" or "to" in it would match.
    pub fn well_supported(&self) -> bool {
        self.support >= 1 && (self.text_words == 0 || self.deletions == 0)
    }
}

/// A reading of a whole transcript as the beginning of one of an intent's template sentences
/// (see [`Matcher::prefixes`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prefix {
    pub intent: usize,
    /// The intent's graph state reached with every word read.
    pub state: u32,
    /// The edge that read the last word; `None` when that word was left unexplained.
    pub last: Option<EdgeKind>,
}

pub struct Matcher {
    grammar: Grammar,
    /// Slot names per intent, indexed by the u16 in edges.
    slot_names: Vec<Vec<String>>,
    enum_values: Vec<Vec<Vec<String>>>,
    /// Minimum confidence for a match to count.
    pub threshold: f32,
}

#[derive(Clone, Copy)]
struct Back {
    from_state: u32,
    from_pos: u16,
    /// Index of the edge in `from_state`'s list; `u32::MAX` for an extra spoken word.
    edge: u32,
}

/// Per-transcript data shared by all intents' searches.
struct Utterance<'a> {
    words: &'a [String],
    keys: Vec<String>,
    numbers: Vec<Vec<(usize, SpokenNumber)>>,
    durations: Vec<Vec<(usize, f64)>>,
    insert_cost: Vec<f32>,
    /// Whether each spoken word is itself a word of the loaded templates (see [`Utterance::substitution`]).
    in_vocabulary: Vec<bool>,
    /// Lazily filled substitution costs, `vocab × words`; NaN = not computed, INFINITY = impossible.
    sub: Vec<f32>,
}

/// Cost of leaving spoken word `i` unexplained. Fillers are cheap; so is a word the speaker (or,
/// in noise, the recogniser) just said: "triple shot, triple shot", "milk, milk, latte" repeat
/// what is already matched rather than add meaning. So is a first word that is cut off or
/// hallucinated at the noisy edge of an utterance ("pro twenty ounce house coffee"), but only
/// partly: a real command still has to explain everything after it.
fn insert_cost(words: &[&str], i: usize) -> f32 {
    let w = words[i];
    if is_filler(w) || words[i.saturating_sub(REPEAT_WINDOW)..i].contains(&w) {
        INSERT_FILLER_COST
    } else if i == 0 && words.len() >= 4 {
        INSERT_EDGE_COST
    } else {
        INSERT_COST
    }
}

impl<'a> Utterance<'a> {
    fn new(words: &'a [String], vocab_index: &HashMap<String, u32>) -> Self {
        let n = words.len();
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let mut numbers = vec![Vec::new(); n];
        let mut durations = vec![Vec::new(); n];
        for i in 0..n {
            if !may_start_number(refs[i]) {
                continue;
            }
            for j in i + 1..=(i + MAX_SPAN).min(n) {
                if let Some(v) = parse_number(&refs[i..j]) {
                    numbers[i].push((j, v));
                }
                if let Some(v) = parse_duration(&refs[i..j]) {
                    durations[i].push((j, v));
                }
            }
        }
        Utterance {
            words,
            keys: words.iter().map(|w| phonetic_key(w)).collect(),
            numbers,
            durations,
            insert_cost: (0..n).map(|i| insert_cost(&refs, i)).collect(),
            in_vocabulary: words.iter().map(|w| vocab_index.contains_key(w)).collect(),
            sub: vec![f32::NAN; vocab_index.len() * n],
        }
    }

    fn substitution(&mut self, vocab: &[VocabWord], word: u32, pos: usize) -> f32 {
        let k = word as usize * self.words.len() + pos;
        let c = self.sub[k];
        if !c.is_nan() {
            return c;
        }
        let expected = &vocab[word as usize];
        // A word the recogniser wrote that the templates themselves use was most likely said as
        // such: reading it as another template word by spelling alone turns "a large pizza"
        // into "a latte". Only a word of the same sound may stand in for it.
        let c = if self.in_vocabulary[pos] && expected.text != self.words[pos] && expected.key != self.keys[pos] {
            f32::INFINITY
        } else {
            substitution_cost(expected, &self.words[pos], &self.keys[pos]).unwrap_or(f32::INFINITY)
        };
        self.sub[k] = c;
        c
    }
}

impl Matcher {
    /// The matcher of compiled templates; `intents` are the grammar's, in the same order.
    pub(crate) fn new(grammar: Grammar, intents: &[Intent]) -> Matcher {
        let slot_names = intents.iter().map(|i| i.slots.iter().map(|s| s.name.clone()).collect()).collect();
        let enum_values = intents
            .iter()
            .map(|i| {
                i.slots
                    .iter()
                    .map(|s| match &s.kind {
                        SlotKind::Enum(v) => v.iter().map(|x| x.canonical.clone()).collect(),
                        _ => Vec::new(),
                    })
                    .collect()
            })
            .collect();
        Matcher { grammar, slot_names, enum_values, threshold: DEFAULT_THRESHOLD }
    }

    /// The compiled templates this matcher searches.
    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// Whether a word is one of the loaded templates' or synonyms' words.
    pub fn knows(&self, word: &str) -> bool {
        self.grammar.vocab.index.contains_key(word)
    }

    /// Number of graph states over all intents (a size figure for logs).
    pub fn states(&self) -> usize {
        self.grammar.graphs.iter().map(|g| g.nodes.len()).sum()
    }

    /// Best match over all intents, if its confidence reaches the threshold.
    pub fn best(&self, text: &str) -> Option<GrammarMatch> {
        let mut words = tokenize(text);
        words.truncate(MAX_WORDS);
        if words.is_empty() {
            return None;
        }
        let mut utt = Utterance::new(&words, &self.grammar.vocab.index);
        let (mut cost, mut back) = (Vec::new(), Vec::new());
        let mut limit = (1.0 - self.threshold) * words.len() as f32 + TEXT_WORD_COST * words.len() as f32 + 1e-3;
        let mut best: Option<GrammarMatch> = None;
        for g in &self.grammar.graphs {
            // Costs only grow along a path: a cell already dearer than the best full match is dead.
            if let Some(m) = self.search(g, &mut utt, &mut cost, &mut back, limit) {
                if m.confidence >= self.threshold && m.well_supported() && best.as_ref().is_none_or(|b| m.cost < b.cost)
                {
                    limit = limit.min(m.cost);
                    best = Some(m);
                }
            }
        }
        best
    }

    /// Other intents' matches that reach the threshold within [`RUNNER_UP_MARGIN`] of the best
    /// one's `cost`, best first: readings to try when the best one is refused.
    pub fn runners_up(&self, text: &str, best: usize, cost: f32) -> Vec<GrammarMatch> {
        self.ranked(text)
            .into_iter()
            .filter(|m| m.intent != best && m.confidence >= self.threshold && m.well_supported())
            .filter(|m| m.cost <= cost + RUNNER_UP_MARGIN)
            .collect()
    }

    /// Every intent's best match, best first.
    pub fn ranked(&self, text: &str) -> Vec<GrammarMatch> {
        let mut words = tokenize(text);
        words.truncate(MAX_WORDS);
        if words.is_empty() {
            return Vec::new();
        }
        let mut utt = Utterance::new(&words, &self.grammar.vocab.index);
        let mut cost = Vec::new();
        let mut back = Vec::new();
        // No path costlier than this can reach the threshold, so the search drops it early.
        let limit = (1.0 - self.threshold) * words.len() as f32 + TEXT_WORD_COST * words.len() as f32 + 1e-3;
        let mut out: Vec<GrammarMatch> =
            self.grammar.graphs.iter().filter_map(|g| self.search(g, &mut utt, &mut cost, &mut back, limit)).collect();
        out.sort_by(|a, b| a.cost.total_cmp(&b.cost));
        out
    }

    /// Readings of all of `text` as the beginning of a template sentence, in every intent, that
    /// cost at most `limit`: where each one stands in its intent's graph, and how it read the
    /// last word. (What may follow is in the graph from there on.)
    pub(crate) fn prefixes(&self, text: &str, limit: f32) -> Vec<Prefix> {
        let mut words = tokenize(text);
        words.truncate(MAX_WORDS);
        let n = words.len();
        let mut utt = Utterance::new(&words, &self.grammar.vocab.index);
        let (mut cost, mut back) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        for g in &self.grammar.graphs {
            self.fill(g, &mut utt, &mut cost, &mut back, limit);
            let states = g.nodes.len();
            for state in (0..states).filter(|&s| cost[n * states + s] <= limit) {
                // Back through ε edges and dropped template words to the edge that read word n-1.
                let (mut pos, mut s) = (n, state);
                let last = loop {
                    let b = back[pos * states + s];
                    if b.from_state == u32::MAX {
                        break None; // nothing read: an empty transcript
                    }
                    if (b.from_pos as usize) < pos {
                        break (b.edge != u32::MAX).then(|| g.nodes[b.from_state as usize][b.edge as usize].kind);
                    }
                    (pos, s) = (b.from_pos as usize, b.from_state as usize);
                };
                out.push(Prefix { intent: g.intent, state: state as u32, last });
            }
        }
        out
    }

    fn search(
        &self,
        g: &Graph,
        utt: &mut Utterance,
        cost: &mut Vec<f32>,
        back: &mut Vec<Back>,
        limit: f32,
    ) -> Option<GrammarMatch> {
        self.fill(g, utt, cost, back, limit);
        let n = utt.words.len();
        let states = g.nodes.len();
        let at = |pos: usize, s: usize| pos * states + s;
        let fin = states - 1;
        let total = cost[at(n, fin)];
        if total > limit {
            return None;
        }
        // Walk the best path back, then read the slots off it in spoken order.
        let mut path = Vec::new();
        let (mut pos, mut s) = (n, fin);
        while !(pos == 0 && s == 0) {
            let b = back[at(pos, s)];
            path.push((b, pos));
            pos = b.from_pos as usize;
            s = b.from_state as usize;
        }
        path.reverse();
        let names = &self.slot_names[g.intent];
        let mut slots = BTreeMap::new();
        let mut text: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        let mut matched_words = Vec::new();
        let (mut support, mut deletions) = (0, 0);
        // Whether a word was heard since the last ε edge: an enum value's synonym is the run of
        // word edges between the ε into its trie and the tagged ε out of it. A synonym whose
        // words were all dropped was not said, and fills nothing ("set the brightness to 50%"
        // names no room).
        let mut run_heard = false;
        for (b, to_pos) in path {
            if b.edge == u32::MAX {
                continue;
            }
            let e = g.nodes[b.from_state as usize][b.edge as usize];
            let from_pos = b.from_pos as usize;
            if let Tag::EnumValue(slot, value) = e.tag {
                if run_heard {
                    slots.insert(
                        names[slot as usize].clone(),
                        Extracted::Enum(self.enum_values[g.intent][slot as usize][value as usize].clone()),
                    );
                }
            }
            match e.kind {
                EdgeKind::Word(_) => run_heard |= to_pos > from_pos,
                _ => run_heard = false,
            }
            match e.kind {
                EdgeKind::Word(w) if to_pos > from_pos => {
                    let expected = &self.grammar.vocab.words[w as usize].text;
                    if !is_filler(expected) && utt.substitution(&self.grammar.vocab.words, w, from_pos) <= STRONG_MATCH
                    {
                        support += 1;
                    }
                    matched_words.push(MatchedWord { heard: utt.words[from_pos].clone(), expected: expected.clone() })
                }
                EdgeKind::Word(_) => deletions += 1,
                EdgeKind::Number(slot) => {
                    let v = utt.numbers[from_pos].iter().find(|(end, _)| *end == to_pos).unwrap().1;
                    slots.insert(names[slot as usize].clone(), Extracted::Number(v));
                }
                EdgeKind::Duration(slot) => {
                    let v = utt.durations[from_pos].iter().find(|(end, _)| *end == to_pos).unwrap().1;
                    slots.insert(names[slot as usize].clone(), Extracted::Duration(v));
                }
                EdgeKind::Any(slot) => text.entry(slot).or_default().push(&utt.words[from_pos]),
                _ => {}
            }
        }
        for (slot, words) in text {
            slots.insert(names[slot as usize].clone(), Extracted::Text(words.join(" ")));
        }
        // Words taken by free-text slots say nothing about the intent: the template words
        // around them must carry the confidence on their own.
        let text_words = slots
            .values()
            .filter_map(|v| if let Extracted::Text(t) = v { Some(t.split(' ').count()) } else { None })
            .sum::<usize>();
        let anchored = n.saturating_sub(text_words).max(1) as f32;
        let confidence = (1.0 - (total - TEXT_WORD_COST * text_words as f32) / anchored).clamp(0.0, 1.0);
        Some(GrammarMatch {
            intent: g.intent,
            slots,
            confidence,
            cost: total,
            matched_words,
            support,
            deletions,
            text_words,
        })
    }

    /// The search's table: the cheapest way to each (word position, graph state), and where it
    /// came from; cells dearer than `limit` are not expanded.
    fn fill(&self, g: &Graph, utt: &mut Utterance, cost: &mut Vec<f32>, back: &mut Vec<Back>, limit: f32) {
        let n = utt.words.len();
        let states = g.nodes.len();
        let cells = (n + 1) * states;
        cost.clear();
        cost.resize(cells, f32::INFINITY);
        back.clear();
        back.resize(cells, Back { from_state: u32::MAX, from_pos: 0, edge: 0 });
        let at = |pos: usize, s: usize| pos * states + s;
        cost[0] = 0.0;
        for pos in 0..=n {
            for s in 0..states {
                let c = cost[at(pos, s)];
                if c > limit {
                    continue;
                }
                let relax = |cost: &mut Vec<f32>, back: &mut Vec<Back>, p: usize, t: usize, v: f32, edge: u32| {
                    let k = at(p, t);
                    if v < cost[k] {
                        cost[k] = v;
                        back[k] = Back { from_state: s as u32, from_pos: pos as u16, edge };
                    }
                };
                if pos < n {
                    relax(cost, back, pos + 1, s, c + utt.insert_cost[pos], u32::MAX);
                }
                for (ei, e) in g.nodes[s].iter().enumerate() {
                    let t = e.to as usize;
                    let ei = ei as u32;
                    match e.kind {
                        EdgeKind::Eps => relax(cost, back, pos, t, c, ei),
                        EdgeKind::Word(w) => {
                            if pos < n {
                                let sc = utt.substitution(&self.grammar.vocab.words, w, pos);
                                if sc.is_finite() {
                                    relax(cost, back, pos + 1, t, c + sc, ei);
                                }
                            }
                            let del = if is_filler(&self.grammar.vocab.words[w as usize].text) {
                                DELETE_FILLER_COST
                            } else {
                                DELETE_COST
                            };
                            relax(cost, back, pos, t, c + del, ei);
                        }
                        EdgeKind::Number(_) => {
                            if pos < n {
                                for &(end, _) in &utt.numbers[pos] {
                                    relax(cost, back, end, t, c, ei);
                                }
                            }
                        }
                        EdgeKind::Duration(_) => {
                            if pos < n {
                                for &(end, _) in &utt.durations[pos] {
                                    relax(cost, back, end, t, c, ei);
                                }
                            }
                        }
                        EdgeKind::Any(_) => {
                            if pos < n {
                                relax(cost, back, pos + 1, t, c + TEXT_WORD_COST, ei);
                            }
                        }
                    }
                }
            }
        }
    }
}
