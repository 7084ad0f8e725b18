//! What goes into the dialogue core and what comes out: the [`Input`]s the shell reports, the
//! [`Effect`]s it carries out, the [`AudioCommand`]s for the front end, and the [`Settings`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sotto_intents::understand::{Heard, Understanding};
use sotto_intents::PlannedAction;

use super::{CommandReport, Speech};
use crate::mqtt::{ControlMessage, HermesEvent};

pub(super) const SAMPLE_RATE: f64 = 16_000.0;

/// Audio handed over by the front end: one utterance, or the speech so far at a pause.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub samples: Arc<[f32]>,
    pub start_sample: u64,
    pub end_sample: u64,
}

impl Audio {
    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / SAMPLE_RATE as f32
    }
}

/// What happens, as the shell reports it.
#[derive(Debug)]
pub enum Input {
    Wake {
        wake: String,
        score: f32,
        sample: u64,
    },
    /// Speech paused long enough to start transcribing what was said so far.
    Pause(Audio),
    /// The endpoint: the command's audio.
    Utterance(Audio),
    /// No speech came after the wake word (or after the question).
    NoSpeech,
    /// A transcription requested by [`Effect::Transcribe`] finished.
    Transcribed {
        job: u64,
        result: Result<Heard, String>,
        compute_ms: f64,
    },
    /// The cascade requested by [`Effect::Understand`] finished (or its task failed).
    Understood {
        job: u64,
        result: Result<Box<Understanding>, String>,
    },
    Control(ControlMessage),
    /// Time passed (the shell sends this periodically): deadlines are checked.
    Tick,
    /// The audio source ended (a file, stdin) or failed for good.
    SourceEnded {
        error: Option<String>,
    },
    /// The daemon is stopping.
    Shutdown,
    /// The text of [`Effect::Say`] `id` has been spoken (or failed to be); its audio lasted
    /// `samples` at 16 kHz (0 when nothing was played).
    Spoken {
        id: String,
        samples: u64,
        error: Option<String>,
    },
}

/// What the front end (audio thread) is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCommand {
    /// Collect a command now, without a wake word (a follow-up).
    ListenNow,
    /// Stop collecting (the question this was the answer to has ended).
    StopListening,
    /// End the utterance at the pause whose audio ended at `end_sample` (an early decision).
    EndAt { end_sample: u64 },
    /// File input only: the utterance it waits on is handled, go on.
    Resume,
    /// Sotto starts speaking: the microphone hears the loudspeaker, so wake word and endpointing
    /// get silence instead until [`AudioCommand::Spoke`] (half duplex, no echo cancellation).
    Speaking,
    /// Sotto's speech ended after `samples` (16 kHz) of audio: the front end hears again once that
    /// much audio since [`AudioCommand::Speaking`], plus the configured tail, has passed.
    Spoke { samples: u64 },
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Publish(HermesEvent),
    /// An intent's action for its device.
    Act(PlannedAction),
    /// Ask the user for a yes/no before `action` (published on `sotto/<site>/confirm`).
    AskConfirmation {
        action: PlannedAction,
        session_id: String,
        timeout_s: f32,
        again: bool,
    },
    Audio(AudioCommand),
    /// The front end drops wake words while muted.
    SetMuted(bool),
    /// Transcribe `audio` on the speech-to-text worker; answer with [`Input::Transcribed`].
    Transcribe {
        job: u64,
        audio: Audio,
    },
    /// Run the understanding cascade; answer with [`Input::Understood`].
    Understand {
        job: u64,
        heard: Heard,
        audio: Audio,
    },
    /// One handled command's figures (see [`CommandReport`]).
    Report(CommandReport),
    /// Speak this text; answer with [`Input::Spoken`].
    Say(Speech),
}

/// Settings of the dialogue (from the config; replaced on reload).
#[derive(Debug, Clone)]
pub struct Settings {
    pub site_id: String,
    pub lang: String,
    pub confirm_timeout: Duration,
    /// Unclear answers met with the question again before giving up.
    pub confirm_reasks: u32,
    /// Wake word name → configured threshold, reported as Hermes `currentSensitivity`.
    pub sensitivities: BTreeMap<String, f32>,
    /// Sotto has a voice of its own: it speaks `hermes/tts/say` requests (without one, its own
    /// texts go out as `hermes/tts/say` for another system, and requests there are not its own).
    pub voice: bool,
    /// Sotto speaks its own responses (confirmation questions, `say`, not understood). Off for
    /// deployments where another system speaks them.
    pub responses: bool,
    /// After a query intent (`query = true`), the session stays open this long for the system that
    /// answers it (`endSession` with the answer's text, or `continueSession`).
    pub reply_timeout: Duration,
    /// End an utterance at a pause when its speculative transcript is a complete command
    /// (`endpoint.early_after_ms` > 0).
    pub early_decisions: bool,
    /// The pause after which a speculative transcription starts (`endpoint.speculate_after_ms`).
    pub speculate_after: Duration,
}
