//! `sotto-intents`: turns a transcript into a validated action.
//!
//! Domain files (TOML) declare intents, typed slots, sentence templates and MQTT actions. A compiled
//! grammar matcher resolves what the templates cover, tolerating recognition errors; a small
//! language model (behind the [`slm::LanguageModel`] trait, run in a worker process by the caller)
//! handles the rest. Both go through the same validation, so nothing out of schema, out of range or
//! incomplete ever becomes an action. Risky intents pass a [`confirm::ConfirmationGate`] first.

pub mod barista;
pub mod completeness;
pub mod confirm;
pub mod error;
pub mod evaluate;
pub mod grammar;
pub mod grounding;
pub mod matcher;
pub mod numbers;
pub mod responses;
pub mod schema;
pub mod shortlist;
pub mod slm;
pub mod speech_grammar;
pub mod template;
pub mod text;
pub mod understand;
pub mod validate;
pub mod vocabulary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

pub use completeness::Completeness;
pub use error::{LoadError, SlmError};
pub use matcher::{MatchedWord, Matcher};
pub use schema::{Action, Domain, Intent, Slot, SlotKind, SlotValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolver {
    Grammar,
    Slm,
}

/// The outcome for one transcript: what `sotto parse` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Resolution {
    /// The understood intent; set even when rejected, so the reason can name it.
    pub intent: Option<String>,
    pub slots: BTreeMap<String, SlotValue>,
    pub resolver: Option<Resolver>,
    pub confidence: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_reason: Option<String>,
    /// True when the intent must be confirmed by a yes/no before it runs.
    pub confirm: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matched_words: Vec<MatchedWord>,
    pub elapsed_ms: f64,
}

impl Resolution {
    pub fn none(elapsed_ms: f64) -> Self {
        Resolution {
            intent: None,
            slots: BTreeMap::new(),
            resolver: None,
            confidence: 0.0,
            rejected_reason: None,
            confirm: false,
            matched_words: Vec::new(),
            elapsed_ms,
        }
    }

    /// An action may be taken only for an accepted intent.
    pub fn accepted(&self) -> bool {
        self.intent.is_some() && self.rejected_reason.is_none()
    }
}

/// An action ready to publish.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedAction {
    pub intent: String,
    pub topic: String,
    pub payload: serde_json::Value,
    pub qos: u8,
    pub retain: bool,
    pub expiry_s: Option<u32>,
}

/// The loaded domains and their compiled matcher.
pub struct Intents {
    pub domains: Vec<Domain>,
    intents: Vec<Intent>,
    matcher: Matcher,
    shortlist: shortlist::Shortlist,
    speech_grammar: Result<speech_grammar::SpeechGrammar, speech_grammar::SpeechGrammarError>,
    slm_state: std::sync::Mutex<Option<slm::SlmState>>,
}

impl Intents {
    /// Loads `(file name, TOML)` sources.
    pub fn from_sources(sources: &[(String, String)]) -> Result<Self, LoadError> {
        let (domains, grammar) = schema::load(sources)?;
        let intents: Vec<Intent> = domains.iter().flat_map(|d| d.intents.iter().cloned()).collect();
        let shortlist = shortlist::Shortlist::build(&intents, &grammar);
        // Built once here: the daemon sends it with every second-pass transcription.
        let speech_grammar = speech_grammar::SpeechGrammar::build(&grammar, &intents);
        let matcher = Matcher::new(grammar, &intents);
        tracing::debug!(states = matcher.states(), "intent grammar compiled");
        Ok(Intents { domains, intents, matcher, shortlist, speech_grammar, slm_state: std::sync::Mutex::new(None) })
    }

    /// Loads domain files and directories of `*.toml`.
    pub fn load(paths: &[PathBuf]) -> Result<Self, LoadError> {
        Self::from_sources(&schema::read_sources(paths)?)
    }

    /// The four shipped domains, embedded in the binary.
    pub fn shipped() -> Self {
        Self::from_sources(&schema::shipped_sources()).expect("shipped domain files are valid (tested)")
    }

    /// Only some of the shipped domains, by name (`vehicle`, `factory`, `home`, `barista`).
    pub fn shipped_domains(names: &[&str]) -> Result<Self, LoadError> {
        let sources: Vec<(String, String)> = schema::shipped_sources()
            .into_iter()
            .filter(|(f, _)| names.iter().any(|n| f.ends_with(&format!("/{n}.toml"))))
            .collect();
        Self::from_sources(&sources)
    }

    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    pub fn intent(&self, name: &str) -> Option<&Intent> {
        self.intents.iter().find(|i| i.name == name)
    }

    /// The lexical candidate filter in front of the language model.
    pub fn shortlist(&self) -> &shortlist::Shortlist {
        &self.shortlist
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn matcher_mut(&mut self) -> &mut Matcher {
        &mut self.matcher
    }

    /// The grammar resolver alone.
    pub fn parse(&self, text: &str) -> Resolution {
        let start = Instant::now();
        let clause = || grounding::last_clause(text).and_then(|c| Some((c, self.matcher.best(c)?)));
        let Some((matched, m)) = self.matcher.best(text).map(|m| (text, m)).or_else(clause) else {
            return Resolution::none(elapsed_ms(start));
        };
        let (best, cost) = (m.intent, m.cost);
        let mut r = self.serve(text, m);
        if r.intent.is_some() && !r.accepted() {
            // A refused best match may have a close runner-up that is served: "turn the heating up
            // to 21" is no seat-heating level but a thermostat setting.
            let alternatives = self.matcher.runners_up(matched, best, cost).into_iter();
            r = alternatives.map(|m| self.serve(text, m)).find(Resolution::accepted).unwrap_or(r);
        }
        r.elapsed_ms = elapsed_ms(start);
        r
    }

    fn serve(&self, text: &str, m: matcher::GrammarMatch) -> Resolution {
        let intent = &self.intents[m.intent];
        let mut r = self.finish(text, intent, validate::validate(intent, &m.slots), Resolver::Grammar, m.confidence);
        r.matched_words = m.matched_words;
        r
    }

    /// The cascade: grammar first, then the language model for what the grammar did not match.
    /// A model failure is logged and gives no intent: it must never produce an action. The prompt
    /// and the model's prior are computed on first use and kept, so use one `Intents` with one
    /// model (or call [`Self::reset_slm_state`] when switching).
    pub fn resolve(
        &self,
        text: &str,
        lm: Option<&mut dyn slm::LanguageModel>,
        slm_config: &slm::SlmConfig,
    ) -> Resolution {
        let start = Instant::now();
        let grammar = self.parse(text);
        let Some(lm) = lm else { return grammar };
        if grammar.intent.is_some() || text.trim().is_empty() {
            return grammar;
        }
        let mut guard = self.slm_state.lock().unwrap_or_else(|p| p.into_inner());
        let state = guard.get_or_insert_with(|| slm::SlmState::new(self, slm_config.prompt));
        let mut r = match slm::resolve_with(state, self, text, lm, slm_config) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "language-model fallback failed");
                Resolution::none(0.0)
            }
        };
        r.elapsed_ms = elapsed_ms(start);
        r
    }

    /// Whether `word` is a word of the loaded domains (which a heard word then stands for, and
    /// nothing else).
    pub fn knows(&self, word: &str) -> bool {
        self.matcher.knows(word)
    }

    /// Prepares the language-model fallback (prompt prefix in the model's cache, calibration
    /// priors) so the first request that needs it is not the slow one.
    pub fn warm_up_slm(&self, lm: &mut dyn slm::LanguageModel, slm_config: &slm::SlmConfig) -> Result<(), SlmError> {
        let mut guard = self.slm_state.lock().unwrap_or_else(|p| p.into_inner());
        let state = guard.get_or_insert_with(|| slm::SlmState::new(self, slm_config.prompt));
        if state.mode() != slm_config.prompt {
            *state = slm::SlmState::new(self, slm_config.prompt);
        }
        state.warm_up(self, lm)
    }

    /// Forgets the cached language-model prompt and prior (after switching models).
    pub fn reset_slm_state(&self) {
        *self.slm_state.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The one exit of both resolvers: the validated answer for `text` is grounded in its words
    /// ([`grounding`]) before it can become an action.
    pub(crate) fn finish(
        &self,
        text: &str,
        intent: &Intent,
        checked: Result<BTreeMap<String, SlotValue>, String>,
        resolver: Resolver,
        confidence: f32,
    ) -> Resolution {
        let mut r = Resolution::none(0.0);
        let fit = (resolver == Resolver::Grammar).then_some(confidence);
        let checked = match grounding::check(intent, text, checked, &|w| self.knows(w), fit) {
            grounding::Verdict::Checked(c) => c,
            grounding::Verdict::NotACommand(why) => {
                r.rejected_reason = Some(why.to_string());
                return r;
            }
        };
        r.intent = Some(intent.name.clone());
        r.resolver = Some(resolver);
        r.confidence = confidence;
        match checked {
            Ok(slots) => {
                r.confirm = validate::needs_confirmation(intent, &slots);
                r.slots = slots;
            }
            Err(reason) => r.rejected_reason = Some(reason),
        }
        r
    }

    /// The MQTT action of an accepted resolution (None when rejected, unresolved or action-less).
    pub fn plan_action(&self, r: &Resolution, site_id: &str) -> Option<PlannedAction> {
        if !r.accepted() {
            return None;
        }
        let intent = self.intent(r.intent.as_deref()?)?;
        let action = intent.action.as_ref()?;
        let (topic, payload) = schema::render_action(action, &intent.name, &r.slots, site_id);
        Some(PlannedAction {
            intent: intent.name.clone(),
            topic,
            payload,
            qos: action.qos,
            retain: action.retain,
            expiry_s: action.expiry_s,
        })
    }

    /// The loaded templates as a word graph for the grammar-constrained second Whisper pass (see
    /// [`speech_grammar`]); an error when the templates expand too far, and then there is no
    /// second pass.
    pub fn speech_grammar(&self) -> Result<&speech_grammar::SpeechGrammar, &speech_grammar::SpeechGrammarError> {
        self.speech_grammar.as_ref()
    }

    /// Words to bias speech recognition toward the loaded domains (see [`vocabulary`]).
    pub fn stt_prompt(&self, max_chars: usize) -> String {
        vocabulary::prompt(&self.intents, max_chars)
    }
}

fn elapsed_ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}
