//! Typed blocking clients, one per worker kind.

use std::time::Duration;

use crate::error::WorkerError;
use crate::frame::samples_to_bytes;
use crate::messages::{Generation, Grammar, Hello, Reply, Request, Scores, TranscribeOptions, Transcript};
use crate::supervisor::{Supervisor, WorkerConfig};

/// Executable names, found as described in [`crate::locate_worker`].
pub const STT_WORKER_BIN: &str = "sotto-stt-worker";
pub const SLM_WORKER_BIN: &str = "sotto-slm-worker";

/// Speech-to-text through a supervised `sotto-stt-worker`.
pub struct SttClient {
    sup: Supervisor,
}

impl SttClient {
    /// Starts the worker on `config.model` (a ggml Whisper file) and waits until it is ready.
    pub fn start(config: WorkerConfig) -> Result<Self, WorkerError> {
        Ok(Self { sup: Supervisor::start("stt", STT_WORKER_BIN, config)? })
    }

    /// `samples`: 16 kHz mono.
    pub fn transcribe(&mut self, samples: &[f32], options: &TranscribeOptions) -> Result<Transcript, WorkerError> {
        let timeout = self.sup.request_timeout();
        let request = Request::Transcribe { options: options.clone() };
        match self.sup.call(request, &samples_to_bytes(samples), timeout)? {
            Reply::Transcript(t) => Ok(t),
            other => Err(unexpected("stt", other)),
        }
    }

    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.sup
    }

    pub fn supervisor_ref(&self) -> &Supervisor {
        &self.sup
    }

    pub fn hello(&self) -> Option<&Hello> {
        self.sup.hello()
    }

    pub fn ping(&mut self) -> Result<Duration, WorkerError> {
        self.sup.ping(Duration::from_secs(5))
    }
}

/// Language model through a supervised `sotto-slm-worker`.
pub struct SlmClient {
    sup: Supervisor,
}

impl SlmClient {
    /// Starts the worker on `config.model` (a GGUF file) and waits until it is ready.
    pub fn start(config: WorkerConfig) -> Result<Self, WorkerError> {
        Ok(Self { sup: Supervisor::start("slm", SLM_WORKER_BIN, config)? })
    }

    /// Generates after `prompt` (full text, chat template already applied; the worker adds BOS if
    /// the model wants one). Greedy decoding, so the same input gives the same output.
    pub fn generate(
        &mut self,
        prompt: &str,
        grammar: Option<Grammar>,
        max_tokens: u32,
    ) -> Result<Generation, WorkerError> {
        let timeout = self.sup.request_timeout();
        let request = Request::Generate { prompt: prompt.to_string(), grammar, max_tokens };
        match self.sup.call(request, &[], timeout)? {
            Reply::Generation(g) => Ok(g),
            other => Err(unexpected("slm", other)),
        }
    }

    /// Summed log-probability of each candidate continuation of `prompt`.
    pub fn score(&mut self, prompt: &str, candidates: &[String]) -> Result<Vec<f32>, WorkerError> {
        Ok(self.score_detailed(prompt, candidates)?.logprobs)
    }

    /// [`Self::score`] with token counts and timings.
    pub fn score_detailed(&mut self, prompt: &str, candidates: &[String]) -> Result<Scores, WorkerError> {
        self.score_request(prompt, candidates, None)
    }

    /// Log-probabilities of `candidates` as a choice among `among`: each scored only as far as
    /// it takes to tell it from every other continuation of `among` and `candidates`.
    pub fn score_choice(
        &mut self,
        prompt: &str,
        candidates: &[String],
        among: &[String],
    ) -> Result<Scores, WorkerError> {
        self.score_request(prompt, candidates, Some(among))
    }

    fn score_request(
        &mut self,
        prompt: &str,
        candidates: &[String],
        among: Option<&[String]>,
    ) -> Result<Scores, WorkerError> {
        let timeout = self.sup.request_timeout();
        let request = Request::Score {
            prompt: prompt.to_string(),
            candidates: candidates.to_vec(),
            choice_among: among.map(<[String]>::to_vec),
        };
        match self.sup.call(request, &[], timeout)? {
            Reply::Scores(s) => Ok(s),
            other => Err(unexpected("slm", other)),
        }
    }

    pub fn supervisor(&mut self) -> &mut Supervisor {
        &mut self.sup
    }

    pub fn supervisor_ref(&self) -> &Supervisor {
        &self.sup
    }

    pub fn hello(&self) -> Option<&Hello> {
        self.sup.hello()
    }

    /// The model's chat template, if its GGUF carries one.
    pub fn chat_template(&self) -> Option<&str> {
        self.sup.hello().and_then(|h| h.model.chat_template.as_deref())
    }

    pub fn ping(&mut self) -> Result<Duration, WorkerError> {
        self.sup.ping(Duration::from_secs(5))
    }
}

fn unexpected(worker: &'static str, reply: Reply) -> WorkerError {
    WorkerError::Protocol { worker, message: format!("unexpected reply {reply:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_send() {
        fn assert_send<T: Send>() {}
        assert_send::<SttClient>();
        assert_send::<SlmClient>();
    }
}
