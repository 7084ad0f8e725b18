//! The loaded domains' sentences as a word graph for a grammar-constrained second Whisper pass,
//! and the rule for when to run that pass and when to believe it.
//!
//! In noise Whisper mishears a word or two of a command ("a large dark roast lot day"); the fuzzy
//! matcher cannot repair every such slip. Decoding the same audio again while only allowing the
//! templates' sentences makes Whisper pick the in-domain reading that fits the sound best. That
//! reading is forced, though: out-of-domain speech comes out as some command too. So the second
//! pass is taken only when the free transcript does not resolve, and kept only when Whisper's own
//! probability of the forced reading (before the constraint) is close to that of the free one,
//! i.e. when the audio really sounds like the command. Its text then goes through the ordinary
//! matcher and validation like any transcript.
//!
//! The graph is a [`sotto_speech::WordGraph`]: the same type the STT worker parses from its text
//! form and enforces. It is rendered from the matcher's compiled templates ([`crate::grammar`]),
//! so it allows exactly the sentences the matcher's graph describes, with each slot written out
//! as the words Whisper may produce for it.

use std::sync::Arc;

use sotto_speech::{Label, Token, WordGraph, WordGraphError};

use crate::grammar::{EdgeKind, Grammar, Graph};
use crate::schema::{Intent, SlotKind};
use crate::Resolution;

/// Edges a grammar may have: the four shipped domains need about 9,400 (see the tests); a domain
/// file whose permutations explode is refused instead of sending megabytes to the worker.
pub const MAX_EDGES: usize = 200_000;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpeechGrammarError {
    #[error("the templates of intent {intent} expand to over {MAX_EDGES} word-graph edges: fewer nested permutations or optional parts")]
    TooLarge { intent: String },
    #[error("the templates' word graph is invalid: {0}")]
    Graph(#[from] WordGraphError),
}

/// The word graph of every template of the loaded domains.
#[derive(Debug, Clone)]
pub struct SpeechGrammar {
    graph: Arc<WordGraph>,
    /// The graph's text form, made once: it is sent with every second-pass request.
    text: String,
    states: usize,
    edges: usize,
}

impl SpeechGrammar {
    /// The word graph of `grammar`'s compiled templates; `intents` are its intents, in order.
    pub fn build(grammar: &Grammar, intents: &[Intent]) -> Result<Self, SpeechGrammarError> {
        let mut b = GraphBuilder { edges: Vec::new(), states: 1 };
        let mut finals = Vec::new();
        for (g, intent) in grammar.graphs.iter().zip(intents) {
            finals.push(b.intent(g, grammar, intent));
            if b.edges.len() > MAX_EDGES {
                return Err(SpeechGrammarError::TooLarge { intent: intent.name.clone() });
            }
        }
        let edges = b.edges.len();
        let graph = WordGraph::from_edges(b.edges, &finals)?;
        Ok(SpeechGrammar { text: graph.to_string(), graph: Arc::new(graph), states: b.states as usize, edges })
    }

    pub fn graph(&self) -> &WordGraph {
        &self.graph
    }

    /// The graph's text form, as the STT worker takes it (`TranscribeOptions::word_graph`).
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn states(&self) -> usize {
        self.states
    }

    pub fn edges(&self) -> usize {
        self.edges
    }
}

struct GraphBuilder {
    edges: Vec<(u32, u32, Label)>,
    states: u32,
}

impl GraphBuilder {
    fn state(&mut self) -> u32 {
        self.states += 1;
        self.states - 1
    }

    fn edge(&mut self, from: u32, to: u32, label: &str) {
        let label = match label {
            "-" => Label::Empty,
            "<number>" => Label::Number,
            "<any>" => Label::Any,
            word => Label::Word(word.to_string()),
        };
        self.edges.push((from, to, label));
    }

    /// One or more of `labels` (a number: "twenty one", "one hundred and five", "21"), at most
    /// `max`; returns the end state.
    fn repeated(&mut self, from: u32, labels: &[&str], max: usize) -> u32 {
        let end = self.state();
        let mut at = from;
        for _ in 0..max {
            let next = self.state();
            for l in labels {
                self.edge(at, next, l);
            }
            self.edge(next, end, "-");
            at = next;
        }
        end
    }

    /// Copies one intent's compiled graph, its start merged into the common start state 0; returns
    /// the state of its end. Template words and ε edges stay as they are; a slot value becomes
    /// the words Whisper may write for it.
    fn intent(&mut self, g: &Graph, grammar: &Grammar, intent: &Intent) -> u32 {
        let base = self.states - 1;
        self.states += g.nodes.len() as u32 - 1;
        let state = |node: u32| if node == 0 { 0 } else { base + node };
        for (from, edges) in g.nodes.iter().enumerate() {
            let from = from as u32;
            for e in edges {
                let (s, t) = (state(from), state(e.to));
                let end = match e.kind {
                    EdgeKind::Eps => {
                        self.edge(s, t, "-");
                        continue;
                    }
                    EdgeKind::Word(w) => {
                        self.edge(s, t, &grammar.vocab.words[w as usize].text);
                        continue;
                    }
                    EdgeKind::Number(_) => self.repeated(s, &["<number>"], 6),
                    EdgeKind::Duration(_) => self.repeated(s, DURATION_LABELS, 8),
                    // The free-text slot's loop: the edge into it stands for the whole bounded run.
                    EdgeKind::Any(_) if e.to == from => continue,
                    EdgeKind::Any(slot) => {
                        let max_words = match intent.slots[slot as usize].kind {
                            SlotKind::Text { max_words } => max_words,
                            _ => unreachable!("`Any` edges are compiled from text slots only"),
                        };
                        self.repeated(s, &["<any>"], max_words.max(1))
                    }
                };
                self.edge(end, t, "-");
            }
        }
        state(g.nodes.len() as u32 - 1)
    }
}

/// What a spoken duration is made of.
const DURATION_LABELS: &[&str] =
    &["<number>", "second", "seconds", "sec", "secs", "minute", "minutes", "min", "mins", "hour", "hours"];

/// Matcher confidence under which a grammar resolution is checked by the second pass.
pub const RECHECK_BELOW: f32 = 0.95;

/// Whether the free transcript's resolution warrants a grammar-constrained second pass: nothing
/// understood, a value refused, or a weak match. Never for an empty transcript: when Whisper
/// heard no words, any forced sentence would be invented; nor for words understood as no command
/// (a question, a negated request: no intent, with a reason), which a forced reading would turn
/// into one ("is the front door locked" → "the front door locked").
pub fn wants_second_pass(free_text: &str, free: &Resolution) -> bool {
    let not_a_command = free.intent.is_none() && free.rejected_reason.is_some();
    !free_text.trim().is_empty() && !not_a_command && (!free.accepted() || free.confidence < RECHECK_BELOW)
}

/// Mean natural-log probability per token, from a transcript's `(piece, probability)` tokens.
pub fn mean_logprob(tokens: &[Token]) -> Option<f32> {
    let lp: Vec<f32> = tokens.iter().map(|t| t.p.max(1e-10).ln()).collect();
    (!lp.is_empty()).then(|| lp.iter().sum::<f32>() / lp.len() as f32)
}

/// When a constrained reading counts as heard rather than forced. Whisper's own probabilities of
/// the constrained tokens (before the constraint) tell: a misheard command differs from the free
/// transcript in a word or two, which Whisper found less likely but not absurd; out-of-domain
/// speech forced into a command makes most tokens improbable.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Largest fall of the mean natural-log probability per token from the free transcript to
    /// the constrained one.
    pub max_mean_drop: f32,
    /// Largest share of constrained tokens Whisper gave a probability under [`IMPROBABLE`].
    pub max_improbable_share: f32,
    /// Smallest probability Whisper may have given any word of the constrained transcript (the
    /// product of its tokens'). The limit that keeps coffee-shop remarks out ("I'd like a
    /// croissant" read as "I'd like a coffee": one word, and Whisper found " coffee" unlikely).
    pub min_word_probability: f32,
}

/// A token probability under which Whisper did not hear that token (e^-3).
pub const IMPROBABLE: f32 = 0.049_787;

impl Default for Guard {
    /// Calibrated on the barista benchmark (real speech, kitchen noise 6..24 dB) against
    /// out-of-domain speech (`tools/make_negatives.py`: `intents/testset/out_of_domain.jsonl` and
    /// the coffee-counter remarks of `intents/testset/barista_remarks.txt`, same noise levels):
    /// see the README's figures. The word limit was 0.05 until the remarks spoken by Piper and
    /// espeak-ng showed "I'd like a croissant" kept as "I'd like a coffee" at 12, 15 and 18 dB
    /// (" coffee" at 0.08–0.09); at 0.1 none is, for 0.35 points of the noise average.
    fn default() -> Self {
        Guard { max_mean_drop: 2.0, max_improbable_share: 0.35, min_word_probability: 0.1 }
    }
}

impl Guard {
    /// Whether to take the constrained pass's resolution over the free one. `free_tokens` and
    /// `forced_tokens` are the two transcripts' tokens (the constrained pass's probabilities are
    /// Whisper's before the constraint, as the STT worker reports them).
    pub fn accepts(&self, free_tokens: &[Token], forced: &Resolution, forced_tokens: &[Token]) -> bool {
        if !forced.accepted() {
            return false;
        }
        let (Some(free), Some(constrained)) = (mean_logprob(free_tokens), mean_logprob(forced_tokens)) else {
            return false;
        };
        constrained >= free - self.max_mean_drop
            && improbable_share(forced_tokens) <= self.max_improbable_share
            && word_probabilities(forced_tokens).iter().all(|&p| p >= self.min_word_probability)
    }
}

/// Each word's probability: the product of its tokens' (a token starting with a space starts a
/// word; punctuation-only tokens belong to no word).
pub fn word_probabilities(tokens: &[Token]) -> Vec<f32> {
    let mut words: Vec<f32> = Vec::new();
    for t in tokens.iter().filter(|t| t.is_wordlike()) {
        match words.last_mut() {
            Some(w) if !t.starts_word() => *w *= t.p,
            _ => words.push(t.p),
        }
    }
    words
}

/// Share of tokens with a probability under [`IMPROBABLE`].
pub fn improbable_share(tokens: &[Token]) -> f32 {
    tokens.iter().filter(|t| t.p < IMPROBABLE).count() as f32 / tokens.len().max(1) as f32
}

impl Guard {
    /// The default without the word limit: keeps about three times as many corrections, and on
    /// out-of-domain speech lets through only remarks one word away from an order ("I'd like a
    /// croissant" as "I'd like a coffee"). Fit for a result the user confirms first.
    pub fn lenient() -> Self {
        Guard::default().without_word_limit()
    }

    /// This guard with no limit on the weakest word.
    pub fn without_word_limit(self) -> Self {
        Guard { min_word_probability: 0.0, ..self }
    }

    /// Keep what this guard accepts; ask first for what it accepts without its word limit;
    /// reject the rest.
    pub fn verdict(&self, free_tokens: &[Token], forced: &Resolution, forced_tokens: &[Token]) -> Verdict {
        if self.accepts(free_tokens, forced, forced_tokens) {
            Verdict::Keep
        } else if self.without_word_limit().accepts(free_tokens, forced, forced_tokens) {
            Verdict::Confirm
        } else {
            Verdict::Reject
        }
    }
}

/// What to do with a constrained reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Use it like any transcript.
    Keep,
    /// Plausible but not certain: use it only after a spoken yes (the confirmation gate).
    Confirm,
    /// Keep the free transcript's resolution.
    Reject,
}

/// The daemon's rule: [`Guard::default`] keeps, [`Guard::lenient`] asks first, else rejected.
pub fn judge_second_pass(free_tokens: &[Token], forced: &Resolution, forced_tokens: &[Token]) -> Verdict {
    Guard::default().verdict(free_tokens, forced, forced_tokens)
}

/// [`Guard::accepts`] with the calibrated guard.
pub fn accept_second_pass(free_tokens: &[Token], forced: &Resolution, forced_tokens: &[Token]) -> bool {
    Guard::default().accepts(free_tokens, forced, forced_tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Intents;

    /// The graph as the STT worker gets it: through its text form.
    fn barista() -> (Intents, WordGraph) {
        let intents = Intents::shipped_domains(&["barista"]).unwrap();
        let g = intents.speech_grammar().unwrap();
        let graph = WordGraph::parse(g.text()).unwrap_or_else(|e| panic!("{e}"));
        (intents, graph)
    }

    #[test]
    fn the_text_form_reads_back_as_the_same_graph() {
        let intents = Intents::shipped();
        let g = intents.speech_grammar().unwrap();
        let back = WordGraph::parse(g.text()).unwrap();
        assert_eq!(back.to_string(), g.text());
        assert_eq!(back.states(), g.graph().states());
        for s in ["turn on the kitchen lights", "set the driver's side to twenty one degrees", "tell me a joke"] {
            assert_eq!(back.accepts(s), g.graph().accepts(s), "{s}");
        }
    }

    #[test]
    fn every_barista_reference_sentence_is_in_the_graph() {
        let (_, graph) = barista();
        let labels = crate::barista::read_labels(&crate::barista::data_dir());
        let Ok(labels) = labels else {
            eprintln!("barista data set not found; checking the domain's examples only");
            return;
        };
        for (file, label) in &labels {
            for variant in 0..6 {
                let s = crate::barista::reference_phrase(label, variant);
                assert!(graph.accepts(&s), "{file}: {s:?} not in the graph");
            }
        }
    }

    #[test]
    fn every_shipped_example_is_in_the_graph_and_outsiders_are_not() {
        let intents = Intents::shipped();
        let g = intents.speech_grammar().unwrap();
        eprintln!("shipped domains: {} states, {} edges", g.states(), g.edges());
        let graph = g.graph();
        let mut missing = Vec::new();
        for intent in intents.intents() {
            for ex in &intent.examples {
                // The examples are for the language model too; only those the matcher resolves
                // exactly are template sentences.
                let r = intents.parse(ex);
                if r.intent.as_deref() == Some(intent.name.as_str()) && r.confidence >= 0.999 && !graph.accepts(ex) {
                    missing.push(ex.clone());
                }
            }
        }
        assert!(missing.is_empty(), "template sentences the graph refuses: {missing:?}");
        for outsider in ["what is the capital of france", "tell me a joke", "can i get a large pizza"] {
            assert!(!graph.accepts(outsider), "{outsider:?}");
        }
    }

    #[test]
    fn optional_alternatives_and_slots() {
        let (_, graph) = barista();
        assert!(graph.accepts("Can I get a large latte?"));
        assert!(graph.accepts(
            "I'd like a 12 oz dark roast double shot americano with a bit of soy milk and brown sugar please"
        ));
        assert!(graph.accepts("brew espresso"));
        assert!(!graph.accepts("brew a large"), "the drink is required");
        assert!(!graph.accepts("brew a large large latte"), "a slot once");
        assert!(!graph.accepts("can i get a latte with milk and cream"), "one milk");
    }

    #[test]
    fn a_grammar_too_large_for_the_worker_is_refused_with_the_intent_named() {
        // A duration is one matcher edge but 96 word-graph edges (numbers and units, up to eight
        // words): twenty templates of 120 orders each stay far inside the matcher's state limit
        // and still exceed the word graph's edge limit.
        let templates: Vec<String> =
            (0..20u8).map(|i| format!("\"({{d}}; {}; b; c; e)\"", (b'f' + i) as char)).collect();
        let toml = format!(
            "domain = \"x\"\n[[intent]]\nname = \"huge\"\ntemplates = [{}]\n[intent.slots.d]\ntype = \"duration\"\n",
            templates.join(", ")
        );
        let intents = Intents::from_sources(&[("x.toml".into(), toml)]).unwrap();
        assert!(intents.matcher().states() < crate::grammar::MAX_INTENT_STATES);
        let e = intents.speech_grammar().unwrap_err();
        assert_eq!(e, &SpeechGrammarError::TooLarge { intent: "huge".into() });
        assert!(e.to_string().contains("intent huge"));
    }

    fn resolution(accepted: bool, confidence: f32) -> Resolution {
        let mut r = Resolution::none(0.0);
        if accepted {
            r.intent = Some("orderDrink".into());
        }
        r.confidence = confidence;
        r
    }

    fn tokens(ps: &[f32]) -> Vec<Token> {
        ps.iter().map(|&p| Token::new(" x", p)).collect()
    }

    #[test]
    fn word_probabilities_multiply_tokens_and_skip_punctuation() {
        let t: Vec<Token> = [(" I", 0.5), ("'d", 0.5), (" like", 0.9), (",", 0.01), (" cap", 0.5), ("puccino", 0.2)]
            .iter()
            .map(|&(s, p)| Token::new(s, p))
            .collect();
        let w = word_probabilities(&t);
        assert_eq!(w.len(), 3);
        assert!((w[0] - 0.25).abs() < 1e-6 && (w[1] - 0.9).abs() < 1e-6 && (w[2] - 0.1).abs() < 1e-6, "{w:?}");
    }

    #[test]
    fn second_pass_only_when_the_free_one_is_weak() {
        assert!(wants_second_pass("brew a lot day", &resolution(false, 0.0)));
        assert!(wants_second_pass("brew a latte", &resolution(true, 0.8)));
        assert!(!wants_second_pass("brew a latte", &resolution(true, 0.96)));
        let mut refused = resolution(true, 1.0);
        refused.rejected_reason = Some("out of range".into());
        assert!(wants_second_pass("brew a latte", &refused));
        assert!(!wants_second_pass(" ", &resolution(false, 0.0)), "nothing heard");
    }

    #[test]
    fn a_forced_reading_is_kept_only_when_whisper_found_it_nearly_as_likely() {
        let heard = tokens(&[0.9, 0.5, 0.8, 0.7]);
        assert!(accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.4, 0.8, 0.6])));
        // One word Whisper doubted (as when noise masked it) is what the pass is for.
        assert!(accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.15, 0.8, 0.6, 0.9, 0.7])));
        // " coffee" at 0.08 where a remark said "croissant": asked, not kept.
        assert!(!accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.08, 0.8, 0.6, 0.9, 0.7])));
        assert!(
            !accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.01, 0.8, 0.6, 0.9, 0.7])),
            "one word never heard"
        );
        assert_eq!(
            judge_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.01, 0.8, 0.6, 0.9, 0.7])),
            Verdict::Confirm
        );
        assert_eq!(
            judge_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.15, 0.8, 0.6, 0.9, 0.7])),
            Verdict::Keep
        );
        assert_eq!(
            judge_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.01, 0.04, 0.6])),
            Verdict::Reject
        );
        assert!(
            !accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[0.9, 0.01, 0.04, 0.6])),
            "half of it forced"
        );
        assert!(
            !accept_second_pass(&heard, &resolution(true, 1.0), &tokens(&[1e-6, 0.9, 0.9, 0.9, 0.9, 0.9])),
            "far less likely"
        );
        assert!(!accept_second_pass(&heard, &resolution(false, 0.0), &heard), "nothing understood");
        assert!(!accept_second_pass(&[], &resolution(true, 1.0), &heard), "no free tokens to compare");
    }
}
