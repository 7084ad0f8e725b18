//! The language-model worker process ([`sotto_workers::SlmClient`]) as a [`LanguageModel`]: the one
//! bridge between the resolver and the process that runs the model, used by the daemon, the
//! evaluation example and the real-model tests.

use sotto_workers::{SlmClient, WorkerError};

use crate::slm::{Grammar, LanguageModel};
use crate::SlmError;

/// Borrows a worker client for the resolver's requests.
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
            prefill_ms = g.timings.prefill_ms,
            generate_ms = g.timings.generate_ms,
            "language-model generation"
        );
        Ok(g.text)
    }

    fn score(&mut self, prompt: &str, candidates: &[String]) -> Result<Vec<f32>, SlmError> {
        let s = self.0.score_detailed(prompt, candidates).map_err(model_error)?;
        tracing::debug!(
            candidates = candidates.len(),
            prompt_tokens = s.prompt_tokens,
            cached_tokens = s.cached_tokens,
            prefill_ms = s.timings.prefill_ms,
            candidates_ms = s.timings.generate_ms,
            "language-model scoring"
        );
        Ok(s.logprobs)
    }
}
