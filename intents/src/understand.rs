//! The understanding cascade, in one place: from what was heard to a decision.
//!
//! grammar → language model (when the grammar finds no intent) → grammar-constrained second
//! speech-to-text pass (when nothing resolved well) → the guard's verdict on that pass → validation
//! → the decision: act, ask first, or not recognised. The daemon, `sotto parse`, `sotto understand`
//! and the benchmarks all call [`Understander`]; none of them orders these steps itself, so they
//! cannot drift apart.
//!
//! Engines come in through small traits: [`LanguageModel`] for the model and [`Transcriber`] for
//! the constrained pass. Both are blocking; the caller decides on which thread they run.

use std::time::Instant;

use serde::Serialize;

use sotto_speech::Token;

use crate::slm::{LanguageModel, SlmConfig};
use crate::speech_grammar::{self, Guard, Verdict};
use crate::{responses, Intents, PlannedAction, Resolution};

/// A transcript with Whisper's per-token probabilities, as the speech-to-text stage reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Heard {
    pub text: String,
    pub tokens: Vec<Token>,
    /// Set when the recogniser itself distrusts the transcript (a hallucination guard fired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
}

impl Heard {
    /// A typed text: no audio behind it, so no probabilities and no second pass.
    pub fn text(text: &str) -> Self {
        Heard { text: text.to_string(), ..Default::default() }
    }
}

/// What the cascade needs from speech-to-text: the same audio transcribed again with the output
/// held to the loaded templates' word graph ([`speech_grammar::SpeechGrammar::text`]).
pub trait Transcriber {
    fn transcribe_constrained(&mut self, samples: &[f32], word_graph: &str) -> Result<Heard, String>;
}

/// Switches of the cascade; the daemon's config sets them, the tools default to the daemon's.
#[derive(Debug, Clone)]
pub struct UnderstandConfig {
    /// Run the grammar-constrained second pass when the free transcript does not resolve well.
    pub second_pass: bool,
    /// Limits for believing a second-pass reading.
    pub guard: Guard,
    pub slm: SlmConfig,
}

impl Default for UnderstandConfig {
    fn default() -> Self {
        UnderstandConfig { second_pass: true, guard: Guard::default(), slm: SlmConfig::default() }
    }
}

/// What was done with the second pass, when it ran.
#[derive(Debug, Clone, Serialize)]
pub struct SecondPass {
    /// The constrained reading (empty when the pass failed).
    pub forced: String,
    pub verdict: Verdict,
    pub ms: f64,
    /// The recogniser's flag on the forced reading, or the engine's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The decision for one utterance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Publish this action now.
    Execute { action: PlannedAction },
    /// Ask the user first; publish on a spoken yes.
    Confirm { action: PlannedAction },
    /// Understood, but the intent declares no action (an external system handles it).
    NoAction,
    /// Nothing to act on; `reason` says why when something was understood but refused.
    NotRecognized {
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// Everything the cascade found out about one utterance, for acting on it and for reporting how.
#[derive(Debug, Clone, Serialize)]
pub struct Understanding {
    /// The text the resolution is of: the free transcript, or a kept second-pass reading.
    pub text: String,
    pub resolution: Resolution,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_pass: Option<SecondPass>,
    /// Whether the language model was asked.
    pub asked_model: bool,
    pub decision: Decision,
    pub elapsed_ms: f64,
}

impl Understanding {
    /// What Sotto says back for this decision, from the domain files ([`crate::responses`]): the
    /// confirmation question, the intent's `say` after acting (or for a query, while the answer
    /// is fetched elsewhere), the refusal of an out-of-range value, or the domain's not-understood
    /// response. `None` when there is nothing to say: an action whose intent has no `say` is its
    /// own feedback (the light goes on).
    pub fn reply(&self, intents: &Intents) -> Option<String> {
        let intent = self.resolution.intent.as_deref().and_then(|name| intents.intent(name));
        let domain = |intent: &crate::schema::Intent| intents.domains.iter().find(|d| d.name == intent.domain);
        match (&self.decision, intent) {
            (Decision::Confirm { .. }, Some(i)) => {
                domain(i).map(|d| responses::confirm_question(d, i, &self.resolution.slots))
            }
            (Decision::Execute { .. } | Decision::NoAction, Some(i)) => responses::done(i, &self.resolution.slots),
            (Decision::NotRecognized { .. }, Some(i)) => {
                let why = self.resolution.rejected_reason.as_deref();
                let refused = domain(i).zip(why).and_then(|(d, r)| responses::refused_for_reason(d, i, r));
                Some(refused.unwrap_or_else(|| responses::not_understood(domain(i))))
            }
            // Nothing understood: a domain's own words only when it is the only one loaded (the
            // device serves it); otherwise the default.
            _ => Some(responses::not_understood(match intents.domains.as_slice() {
                [only] => Some(only),
                _ => None,
            })),
        }
    }
}

/// The cascade over one set of loaded intents.
pub struct Understander<'a> {
    intents: &'a Intents,
    config: &'a UnderstandConfig,
    site_id: &'a str,
}

impl<'a> Understander<'a> {
    pub fn new(intents: &'a Intents, config: &'a UnderstandConfig, site_id: &'a str) -> Self {
        Understander { intents, config, site_id }
    }

    /// A typed text: the cascade without audio (so without a second pass).
    pub fn understand_text(&self, text: &str, lm: Option<&mut dyn LanguageModel>) -> Understanding {
        self.understand(&Heard::text(text), &[], None, lm)
    }

    /// One utterance: `heard` is its free transcript, `samples` its audio (for the second pass;
    /// may be empty), `stt` the recogniser for that pass, `lm` the language model if enabled.
    pub fn understand(
        &self,
        heard: &Heard,
        samples: &[f32],
        stt: Option<&mut dyn Transcriber>,
        lm: Option<&mut dyn LanguageModel>,
    ) -> Understanding {
        let started = Instant::now();
        let text = heard.text.trim().to_string();
        if let Some(flag) = &heard.flagged {
            let reason = Some(format!("unreliable transcript: {flag}"));
            return self.finish(text, Resolution::none(0.0), None, false, started, reason);
        }
        let grammar = self.intents.parse(&text);
        // Requests phrased outside the templates are what the model is for: it is asked before the
        // second pass when the grammar found no intent at all. A weak or refused grammar match
        // goes to the second pass directly (the words were close to a template).
        let mut model_answer = None;
        let mut asked_model = false;
        if grammar.intent.is_none() && !text.is_empty() {
            if let Some(lm) = lm {
                asked_model = true;
                let answer = self.intents.resolve(&text, Some(lm), &self.config.slm);
                if answer.intent.is_some() {
                    return self.finish(text, answer, None, true, started, None);
                }
                model_answer = Some(answer);
            }
        }
        let graph = self.intents.speech_grammar().ok();
        let wanted = self.config.second_pass && speech_grammar::wants_second_pass(&text, &grammar);
        let mut second_pass = None;
        if let (true, Some(graph), Some(stt), false) = (wanted, graph, stt, samples.is_empty()) {
            let pass_started = Instant::now();
            let forced = stt.transcribe_constrained(samples, graph.text());
            let ms = pass_started.elapsed().as_secs_f64() * 1000.0;
            match forced {
                Ok(forced) => {
                    let forced_text = forced.text.trim().to_string();
                    let mut resolution = self.intents.parse(&forced_text);
                    let verdict = if forced.flagged.is_some() {
                        Verdict::Reject
                    } else {
                        self.config.guard.verdict(&heard.tokens, &resolution, &forced.tokens)
                    };
                    tracing::info!(free = %text, forced = %forced_text, ?verdict, ms, intent = ?resolution.intent,
                        "grammar-constrained second pass");
                    let pass = SecondPass { forced: forced_text.clone(), verdict, ms, problem: forced.flagged };
                    match verdict {
                        Verdict::Keep => {
                            return self.finish(forced_text, resolution, Some(pass), asked_model, started, None)
                        }
                        // Plausible, but one word of it Whisper barely heard: act only after a
                        // spoken yes, like a risky intent.
                        Verdict::Confirm => {
                            resolution.confirm = true;
                            return self.finish(forced_text, resolution, Some(pass), asked_model, started, None);
                        }
                        Verdict::Reject => second_pass = Some(pass),
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "grammar-constrained second pass failed; using the free transcript");
                    second_pass =
                        Some(SecondPass { forced: String::new(), verdict: Verdict::Reject, ms, problem: Some(err) });
                }
            }
        }
        let resolution = model_answer.unwrap_or(grammar);
        self.finish(text, resolution, second_pass, asked_model, started, None)
    }

    fn finish(
        &self,
        text: String,
        resolution: Resolution,
        second_pass: Option<SecondPass>,
        asked_model: bool,
        started: Instant,
        reason: Option<String>,
    ) -> Understanding {
        let decision = match (&resolution.intent, &resolution.rejected_reason) {
            // Grounding refuses some transcripts without naming an intent (a question, a
            // statement): its reason is the answer's.
            (None, why) => Decision::NotRecognized { reason: reason.or_else(|| why.clone()) },
            (Some(intent), Some(why)) => Decision::NotRecognized { reason: Some(format!("{intent} rejected: {why}")) },
            (Some(_), None) => match self.intents.plan_action(&resolution, self.site_id) {
                None => Decision::NoAction,
                Some(action) if resolution.confirm => Decision::Confirm { action },
                Some(action) => Decision::Execute { action },
            },
        };
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        Understanding { text, resolution, second_pass, asked_model, decision, elapsed_ms }
    }
}
