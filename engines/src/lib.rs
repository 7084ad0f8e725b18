//! `sotto-engines`: the worker processes ([`sotto_workers`]) as the engines the understanding
//! cascade ([`sotto_intents::understand`]) asks for: the language-model worker as a
//! [`LanguageModel`], the speech-to-text worker as a [`Transcriber`]. The one bridge between the
//! two crates, so that neither depends on the other; used by the daemon, the benchmarks and the
//! real-model tests.

use sotto_intents::slm::{Grammar, LanguageModel};
use sotto_intents::understand::{Heard, Transcriber};
use sotto_intents::SlmError;
use sotto_workers::{SlmClient, SttClient, TranscribeOptions, Transcript, WorkerError};

/// A transcript as the cascade reads it.
pub fn heard(transcript: Transcript) -> Heard {
    Heard { text: transcript.text, tokens: transcript.tokens, flagged: transcript.flagged }
}

/// Borrows a speech-to-text worker client for the cascade's constrained pass, with the options
/// (language, vocabulary prompt) the free pass used.
pub struct WorkerTranscriber<'a> {
    pub client: &'a mut SttClient,
    pub options: TranscribeOptions,
}

impl Transcriber for WorkerTranscriber<'_> {
    fn transcribe_constrained(&mut self, samples: &[f32], word_graph: &str) -> Result<Heard, String> {
        let options = TranscribeOptions { word_graph: Some(word_graph.to_string()), ..self.options.clone() };
        self.client.transcribe(samples, &options).map(heard).map_err(|e| e.to_string())
    }
}

/// Borrows a language-model worker client for the resolver's requests.
pub struct WorkerLanguageModel<'a>(pub &'a mut SlmClient);

fn model_error(err: WorkerError) -> SlmError {
    SlmError::Model(err.to_string())
}

fn worker_grammar(grammar: &Grammar) -> sotto_workers::Grammar {
    match grammar {
        Grammar::Gbnf(source) => sotto_workers::Grammar::Gbnf(source.clone()),
        Grammar::JsonSchema(source) => sotto_workers::Grammar::JsonSchema(source.clone()),
        Grammar::Lark(source) => sotto_workers::Grammar::Lark(source.clone()),
    }
}

impl LanguageModel for WorkerLanguageModel<'_> {
    fn generate(&mut self, prompt: &str, grammar: Option<&Grammar>, max_tokens: u32) -> Result<String, SlmError> {
        let g = self.0.generate(prompt, grammar.map(worker_grammar), max_tokens).map_err(model_error)?;
        tracing::debug!(
            prompt_tokens = g.prompt_tokens,
            cached_tokens = g.cached_tokens,
            generated_tokens = g.generated_tokens,
            model_steps = g.model_steps,
            prefill_ms = g.timings.prefill_ms,
            generate_ms = g.timings.generate_ms,
            "language-model generation"
        );
        Ok(g.text)
    }

    fn score(&mut self, prompt: &str, candidates: &[String]) -> Result<Vec<f32>, SlmError> {
        let s = self.0.score_detailed(prompt, candidates).map_err(model_error)?;
        Ok(log_scores(s))
    }

    fn score_choice(&mut self, prompt: &str, candidates: &[String], among: &[String]) -> Result<Vec<f32>, SlmError> {
        let s = self.0.score_choice(prompt, candidates, among).map_err(model_error)?;
        Ok(log_scores(s))
    }
}

/// The scores, after logging what they cost.
fn log_scores(s: sotto_workers::Scores) -> Vec<f32> {
    tracing::debug!(
        candidate_tokens = ?s.tokens,
        prompt_tokens = s.prompt_tokens,
        cached_tokens = s.cached_tokens,
        prefill_ms = s.timings.prefill_ms,
        candidates_ms = s.timings.generate_ms,
        "language-model scoring"
    );
    s.logprobs
}
