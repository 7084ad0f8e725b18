//! The dialogue as a state machine without I/O: what one site's assistant does with each thing
//! that happens (a wake word, an utterance, a transcript, a decision, a control message, the
//! passing of time), as a list of [`Effect`]s for the async shell (`pipeline.rs`) to carry out.
//!
//! States: idle → (wake word, startSession) listening → transcribing → understanding → idle, or →
//! confirming (listening for a yes/no) → transcribing the answer → idle. Muting is orthogonal.
//!
//! Rules that keep the assistant from going deaf:
//! - A confirmation question runs out `confirm_timeout` after it was asked, whatever is said
//!   meanwhile; the front end is then told to stop listening for the answer.
//! - An answer that is neither yes nor no gets the question once more, then ends the session as
//!   not confirmed; it never keeps the question open.
//! - A wake word always starts a new session, ending the one in progress (`abortedByUser`). The
//!   front end reports wake words during a follow-up listen for this reason.
//!
//! Work that takes time (speech-to-text, the understanding cascade) is requested with a job number
//! and comes back as an input carrying it; a result for a job that is no longer wanted (its
//! session ended, speech resumed after a speculative start) is dropped here.
//!
//! What Sotto says (its responses, Hermes texts) is in `voice.rs`: half duplex, one text at a
//! time, and what waits for the end of speaking.

mod messages;
mod report;
#[cfg(test)]
mod tests;
mod voice;
#[cfg(test)]
mod voice_tests;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use sotto_intents::confirm::{Clock, ConfirmationGate, Outcome};
use sotto_intents::understand::{Decision, Heard, Understanding};
use sotto_intents::{Intents, PlannedAction};

use crate::mqtt::{self, ControlMessage, HermesEvent, TerminationReason};
use messages::SAMPLE_RATE;
pub use messages::{Audio, AudioCommand, Effect, Input, Settings};
pub use report::{CommandReport, Counters};
pub use voice::Speech;
use voice::{Speaking, Then};

/// Least grammar confidence (1 = every word explained by a template) for an early decision.
const EARLY_MIN_CONFIDENCE: f32 = 0.9;

/// One session: from a wake word (or startSession) to its end.
#[derive(Debug)]
struct Session {
    id: String,
    wake: Option<String>,
    turns: u32,
    /// Only these intents may be recognised in the next turn (`startSession`/`continueSession`).
    filter: Option<Vec<String>>,
    /// A turn not recognised is published and the session kept open for the caller.
    send_not_recognized: bool,
    /// The session waits for another system's `endSession`/`continueSession` until then.
    reply_by: Option<Instant>,
}

/// What the session is waiting for.
#[derive(Debug)]
enum Phase {
    /// The front end is collecting an utterance (or nothing is happening).
    Listening,
    /// A transcript of this utterance.
    Transcribing { job: u64, audio: Audio, started: Instant, from_pause: Option<FromPause> },
    /// A decision on this transcript.
    Understanding { job: u64, audio: Audio, timing: Timing },
}

/// How long the parts of one command took, for its [`CommandReport`].
#[derive(Debug, Clone, Copy)]
struct Timing {
    endpoint_at: Instant,
    stt_ms: f64,
    stt_compute_ms: f64,
    /// Set when the utterance is the one a pause reported (its transcription started there).
    from_pause: Option<FromPause>,
}

/// An utterance whose audio a pause had reported already.
#[derive(Debug, Clone, Copy)]
struct FromPause {
    /// Ended at the pause because its transcript was a complete command (see `decide_early`).
    early: bool,
    /// Silence waited after the speech: the pause's own length plus the time from the pause to
    /// the endpoint (wall time, which is stream time for live input).
    endpoint_wait_ms: f64,
}

/// A transcription started at a pause, before the endpoint.
#[derive(Debug)]
struct Speculation {
    job: u64,
    audio: Audio,
    started: Instant,
    result: Option<(Result<Heard, String>, f64)>,
    /// The front end was told to end the utterance here.
    early: bool,
}

pub struct Dialogue<C: Clock + Clone> {
    clock: C,
    settings: Settings,
    intents: Arc<Intents>,
    gate: ConfirmationGate<C>,
    session: Option<Session>,
    phase: Phase,
    speculation: Option<Speculation>,
    muted: bool,
    /// File input waits after each utterance until told to go on.
    owes_resume: bool,
    next_job: u64,
    id_prefix: String,
    next_session: u64,
    counters: Counters,
    /// The text being spoken, and what waits for its end.
    speaking: Option<Speaking>,
    /// Texts to speak after the current one, or once the open session has ended.
    speech_queue: VecDeque<voice::Queued>,
    /// `settle` was asked for while speaking: carried out when speaking ends.
    deferred_settle: Option<bool>,
    next_speech: u64,
    /// What to say once the pending question is answered yes (the intent's `say`).
    confirmed_reply: Option<String>,
    /// Ids of the last sessions that ended: a reply (`endSession` with a text) may come after.
    recent_sessions: VecDeque<String>,
}

impl<C: Clock + Clone> Dialogue<C> {
    /// `id_prefix` makes session ids unique across restarts (the shell passes the boot time).
    pub fn new(clock: C, settings: Settings, intents: Arc<Intents>, id_prefix: String) -> Self {
        let gate = ConfirmationGate::new(clock.clone(), settings.confirm_timeout, settings.confirm_reasks);
        Dialogue {
            clock,
            settings,
            intents,
            gate,
            session: None,
            phase: Phase::Listening,
            speculation: None,
            muted: false,
            owes_resume: false,
            next_job: 0,
            id_prefix,
            next_session: 0,
            counters: Counters::default(),
            speaking: None,
            speech_queue: VecDeque::new(),
            deferred_settle: None,
            next_speech: 0,
            confirmed_reply: None,
            recent_sessions: VecDeque::new(),
        }
    }

    /// New settings and intents (a reload); a pending question keeps its old timeout.
    pub fn reconfigure(&mut self, settings: Settings, intents: Arc<Intents>) {
        if self.gate.pending().is_none() {
            self.gate = ConfirmationGate::new(self.clock.clone(), settings.confirm_timeout, settings.confirm_reasks);
        }
        self.settings = settings;
        self.intents = intents;
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn intents(&self) -> &Arc<Intents> {
        &self.intents
    }

    /// Whether the shell should hand over the next audio event now. While a command is being
    /// transcribed or understood, audio events wait in the shell's bounded channel, so they are
    /// handled in order and file input keeps its pace.
    pub fn accepts_audio(&self) -> bool {
        matches!(self.phase, Phase::Listening)
    }

    /// A session is open.
    pub fn in_session(&self) -> bool {
        self.session.is_some()
    }

    pub fn on(&mut self, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        self.expire(&mut out);
        match input {
            Input::Wake { wake, score, sample } => self.on_wake(wake, score, sample, &mut out),
            Input::Pause(audio) => self.on_pause(audio, &mut out),
            Input::Utterance(audio) => self.on_utterance(audio, &mut out),
            Input::NoSpeech => self.on_no_speech(&mut out),
            Input::Transcribed { job, result, compute_ms } => self.on_transcribed(job, result, compute_ms, &mut out),
            Input::Understood { job, result } => self.on_understood(job, result, &mut out),
            Input::Control(message) => self.on_control(message, &mut out),
            Input::Tick => {}
            Input::SourceEnded { error } => {
                self.speculation = None;
                self.gate.cancel();
                match error {
                    Some(e) => self.end_session(TerminationReason::Error, Some(e), &mut out),
                    None => self.end_session(TerminationReason::Nominal, None, &mut out),
                }
            }
            Input::Shutdown => {
                self.speculation = None;
                self.gate.cancel();
                self.end_session(TerminationReason::AbortedByUser, Some("daemon shutting down".into()), &mut out);
            }
            Input::Spoken { id, samples, error } => self.on_spoken(&id, samples, error, &mut out),
        }
        out
    }

    /// A pending question whose time is up ends its session, whatever else is going on; so does
    /// a reply window that passed without a reply.
    fn expire(&mut self, out: &mut Vec<Effect>) {
        let now = self.clock.now();
        if self.session.as_ref().and_then(|s| s.reply_by).is_some_and(|by| now >= by) {
            tracing::debug!("no reply to the query: session ended");
            self.end_session(TerminationReason::Nominal, None, out);
        }
        if let Outcome::Expired(action) = self.gate.tick() {
            tracing::info!(intent = %action.intent, "confirmation timed out; action dropped");
            if matches!(self.phase, Phase::Listening) {
                out.push(Effect::Audio(AudioCommand::StopListening));
            }
            self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed in time", action.intent)), out);
        }
    }

    fn on_wake(&mut self, wake: String, score: f32, sample: u64, out: &mut Vec<Effect>) {
        self.counters.wakes += 1;
        self.speculation = None;
        if let Some(action) = self.gate.cancel() {
            tracing::info!(intent = %action.intent, "wake word during a confirmation: question dropped");
        }
        if self.session.as_ref().is_some_and(|s| s.reply_by.is_some()) {
            // Only a courtesy window for another system's answer was open: nothing is aborted.
            self.end_session(TerminationReason::Nominal, None, out);
        } else if self.session.is_some() {
            self.end_session(
                TerminationReason::AbortedByUser,
                Some("a new wake word started another session".into()),
                out,
            );
        }
        let id = self.open_session(Some(wake.clone()));
        tracing::info!(wake = %wake, time_s = sample as f64 / SAMPLE_RATE, score, session = %id, "wake word");
        out.push(Effect::Publish(HermesEvent::HotwordDetected(mqtt::HotwordDetected {
            wakeword_id: wake.clone(),
            current_sensitivity: self.settings.sensitivities.get(&wake).copied().unwrap_or(0.5),
            model_id: wake,
            model_version: String::new(),
            model_type: "universal".into(),
            site_id: self.settings.site_id.clone(),
            session_id: Some(id.clone()),
            lang: Some(self.settings.lang.clone()),
        })));
        self.session_started(&id, out);
    }

    fn on_pause(&mut self, audio: Audio, out: &mut Vec<Effect>) {
        let job = self.job();
        tracing::debug!(start = audio.start_sample, end = audio.end_sample, "pause: transcribing speculatively");
        if self.speculation.take().is_some() {
            self.counters.speculations_discarded += 1;
        }
        self.speculation =
            Some(Speculation { job, audio: audio.clone(), started: self.clock.now(), result: None, early: false });
        out.push(Effect::Transcribe { job, audio });
    }

    fn on_utterance(&mut self, audio: Audio, out: &mut Vec<Effect>) {
        self.counters.utterances += 1;
        self.owes_resume = true;
        if self.session.is_none() {
            // Its wake event was dropped while busy: the session still opens visibly, so the
            // sessionEnded that follows has a start.
            let id = self.open_session(None);
            self.session_started(&id, out);
        }
        if let Some(session) = &mut self.session {
            session.reply_by = None;
        }
        let now = self.clock.now();
        let same =
            |s: &Speculation| (s.audio.start_sample, s.audio.end_sample) == (audio.start_sample, audio.end_sample);
        match self.speculation.take() {
            Some(s) if same(&s) => {
                self.counters.speculations_used += 1;
                let waited = now.saturating_duration_since(s.started) + self.settings.speculate_after;
                let from_pause = Some(FromPause { early: s.early, endpoint_wait_ms: waited.as_secs_f64() * 1000.0 });
                if s.early {
                    self.counters.early_decisions += 1;
                }
                match s.result {
                    Some((result, compute_ms)) => {
                        let timing = Timing { endpoint_at: now, stt_ms: 0.0, stt_compute_ms: compute_ms, from_pause };
                        self.on_transcript(audio, result, timing, out);
                    }
                    None => {
                        self.phase = Phase::Transcribing { job: s.job, audio, started: now, from_pause };
                    }
                }
            }
            other => {
                if other.is_some() {
                    self.counters.speculations_discarded += 1;
                }
                let job = self.job();
                self.phase = Phase::Transcribing { job, audio: audio.clone(), started: now, from_pause: None };
                out.push(Effect::Transcribe { job, audio });
            }
        }
    }

    fn on_no_speech(&mut self, out: &mut Vec<Effect>) {
        if self.speculation.take().is_some() {
            self.counters.speculations_discarded += 1;
        }
        if let Some(action) = self.gate.cancel() {
            tracing::info!(intent = %action.intent, "no answer to the confirmation question; action dropped");
            self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed", action.intent)), out);
        } else {
            tracing::info!("no speech after the wake word");
            self.end_session(TerminationReason::Timeout, None, out);
        }
    }

    fn on_transcribed(&mut self, job: u64, result: Result<Heard, String>, compute_ms: f64, out: &mut Vec<Effect>) {
        if let Some(s) = self.speculation.as_mut().filter(|s| s.job == job) {
            tracing::debug!(ms = s.started.elapsed().as_millis() as u64, "speculative transcript ready");
            s.result = Some((result, compute_ms));
            self.decide_early(out);
            return;
        }
        let Phase::Transcribing { job: want, .. } = &self.phase else { return };
        if *want != job {
            return;
        }
        let Phase::Transcribing { audio, started, from_pause, .. } =
            std::mem::replace(&mut self.phase, Phase::Listening)
        else {
            unreachable!("checked above")
        };
        let stt_ms = self.clock.now().saturating_duration_since(started).as_secs_f64() * 1000.0;
        let timing = Timing { endpoint_at: started, stt_ms, stt_compute_ms: compute_ms, from_pause };
        self.on_transcript(audio, result, timing, out);
    }

    /// The free transcript of the utterance the session waits on.
    fn on_transcript(&mut self, audio: Audio, result: Result<Heard, String>, timing: Timing, out: &mut Vec<Effect>) {
        self.phase = Phase::Listening;
        let heard = match result {
            Ok(heard) => heard,
            Err(err) => {
                self.counters.worker_errors += 1;
                tracing::error!(error = %err, "speech-to-text failed");
                self.gate.cancel();
                self.end_session(TerminationReason::Error, Some(format!("speech-to-text: {err}")), out);
                self.settle(false, out);
                return;
            }
        };
        if self.session.is_none() {
            // Its session ended meanwhile (the question timed out, the daemon is stopping): this
            // is nobody's command any more.
            tracing::info!(text = %heard.text.trim(), "transcript of an ended session: dropped");
            self.settle(false, out);
            return;
        }
        let text = heard.text.trim().to_string();
        tracing::info!(text = %text, audio_s = audio.seconds(), stt_ms = timing.stt_ms, stt_compute_ms = timing.stt_compute_ms,
            speculative = timing.from_pause.is_some(), early = timing.from_pause.is_some_and(|p| p.early),
            flagged = ?heard.flagged, "transcribed");
        out.push(Effect::Publish(HermesEvent::TextCaptured(mqtt::TextCaptured {
            text: text.clone(),
            likelihood: sotto_speech::mean_probability(&heard.tokens),
            seconds: audio.seconds(),
            site_id: self.settings.site_id.clone(),
            session_id: self.session_id(),
            wakeword_id: self.session.as_ref().and_then(|s| s.wake.clone()),
            lang: Some(self.settings.lang.clone()),
        })));
        if let Some(session) = &mut self.session {
            session.turns += 1;
        }
        if self.gate.pending().is_some() {
            // A transcript the recogniser distrusts is no answer, however it reads.
            let answer = if heard.flagged.is_some() { "" } else { text.as_str() };
            let listen_again = self.on_answer(answer, out);
            self.settle(listen_again, out);
            return;
        }
        let job = self.job();
        self.phase = Phase::Understanding { job, audio: audio.clone(), timing };
        out.push(Effect::Understand { job, heard, audio });
    }

    /// The user's answer to a confirmation question. Returns true to listen again.
    fn on_answer(&mut self, text: &str, out: &mut Vec<Effect>) -> bool {
        match self.gate.answer(text) {
            Outcome::Execute(action) => {
                tracing::info!(intent = %action.intent, "confirmed");
                let reply = self.confirmed_reply.take();
                self.act(action, out);
                if let Some(text) = reply {
                    self.respond(text, Then::Nothing, out);
                }
                self.end_session(TerminationReason::Nominal, None, out);
                false
            }
            Outcome::Cancelled(action) => {
                tracing::info!(intent = %action.intent, "cancelled by the user");
                self.end_session(TerminationReason::AbortedByUser, Some(format!("{} cancelled", action.intent)), out);
                false
            }
            Outcome::Expired(action) => {
                tracing::info!(intent = %action.intent, "answer came after the confirmation timed out");
                self.end_session(
                    TerminationReason::Timeout,
                    Some(format!("{} not confirmed in time", action.intent)),
                    out,
                );
                false
            }
            Outcome::NotConfirmed(action) => {
                tracing::info!(intent = %action.intent, answer = %text, "no yes or no after asking again; action dropped");
                self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed", action.intent)), out);
                false
            }
            Outcome::StillPending => {
                tracing::info!(answer = %text, "not a yes or no; asking again");
                if let (Some(action), Some(session_id)) = (self.gate.pending().cloned(), self.session_id()) {
                    let timeout_s = self.remaining_s();
                    out.push(Effect::AskConfirmation { action, session_id, timeout_s, again: true });
                }
                true
            }
            Outcome::AwaitingConfirmation(_) | Outcome::Idle => false,
        }
    }

    fn on_understood(&mut self, job: u64, result: Result<Box<Understanding>, String>, out: &mut Vec<Effect>) {
        let Phase::Understanding { job: want, .. } = &self.phase else { return };
        if *want != job {
            return;
        }
        let Phase::Understanding { audio, timing, .. } = std::mem::replace(&mut self.phase, Phase::Listening) else {
            unreachable!("checked above")
        };
        let u = match result {
            Ok(u) => u,
            Err(err) => {
                self.counters.worker_errors += 1;
                tracing::error!(error = %err, "understanding failed");
                self.end_session(TerminationReason::Error, Some(err), out);
                self.settle(false, out);
                return;
            }
        };
        if self.session.is_none() {
            tracing::info!(text = %u.text, "decision of an ended session: dropped");
            self.settle(false, out);
            return;
        }
        let u = self.filtered(u);
        let r = &u.resolution;
        tracing::info!(intent = ?r.intent, resolver = ?r.resolver, confidence = r.confidence, rejected = ?r.rejected_reason,
            decision = ?u.decision, "resolved");
        let reply = u.reply(&self.intents);
        let is_query = r.intent.as_deref().and_then(|name| self.intents.intent(name)).is_some_and(|i| i.query);
        let mut listen_again = false;
        match &u.decision {
            Decision::NotRecognized { reason } => {
                if r.intent.is_some() {
                    self.counters.rejected += 1;
                }
                let keep_open = self.session.as_ref().is_some_and(|s| s.send_not_recognized);
                // Nothing heard at all (a false wake word in a quiet room): no "sorry" either.
                if !keep_open && !u.text.trim().is_empty() {
                    if let Some(text) = reply {
                        self.respond(text, Then::Nothing, out);
                    }
                }
                self.not_recognized(&u.text, reason.clone(), keep_open, out);
            }
            Decision::NoAction | Decision::Execute { .. } => {
                self.publish_intent(&u, out);
                if let Decision::Execute { action } = &u.decision {
                    self.act(action.clone(), out);
                }
                if let Some(text) = reply {
                    self.respond(text, Then::Nothing, out);
                }
                if is_query && !self.settings.reply_timeout.is_zero() {
                    self.await_reply();
                } else {
                    self.end_session(TerminationReason::Nominal, None, out);
                }
            }
            Decision::Confirm { action } => {
                self.publish_intent(&u, out);
                self.confirmed_reply =
                    self.intents.intent(&action.intent).and_then(|i| sotto_intents::responses::done(i, &r.slots));
                match reply {
                    // The question is asked (and its time starts) once it has been spoken; with
                    // responses off, `respond` asks at once.
                    Some(question) => self.respond(question, Then::Ask(action.clone()), out),
                    None => self.ask(action.clone(), out),
                }
                listen_again = true;
            }
        }
        let waited = self.clock.now().saturating_duration_since(timing.endpoint_at);
        let mut report = CommandReport::new(&audio, &u, timing.stt_ms, timing.stt_compute_ms, waited);
        if let Some(p) = timing.from_pause {
            (report.speculative, report.early, report.endpoint_wait_ms) = (true, p.early, Some(p.endpoint_wait_ms));
        }
        out.push(Effect::Report(report));
        self.settle(listen_again, out);
    }

    fn on_control(&mut self, message: ControlMessage, out: &mut Vec<Effect>) {
        match message {
            ControlMessage::Mute | ControlMessage::Unmute => {
                self.muted = message == ControlMessage::Mute;
                tracing::info!(muted = self.muted, "wake word {}", if self.muted { "muted" } else { "unmuted" });
                out.push(Effect::SetMuted(self.muted));
            }
            // Reading the config is I/O: the shell does it and calls `reconfigure`.
            ControlMessage::Reload => {}
            ControlMessage::StartSession(start) => self.on_start_session(start, out),
            ControlMessage::ContinueSession(next) => self.on_continue_session(next, out),
            ControlMessage::EndSession { session_id, text } => self.on_end_session(&session_id, text, out),
            ControlMessage::Say(request) => self.on_say(request, out),
        }
    }

    /// File input waits for word after each utterance; a follow-up listen is that word too. While
    /// Sotto speaks, both wait for the end of speaking (the microphone would hear it).
    fn settle(&mut self, listen_again: bool, out: &mut Vec<Effect>) {
        if self.speaking.is_some() {
            self.deferred_settle = Some(listen_again || self.deferred_settle.unwrap_or(false));
            return;
        }
        if listen_again {
            out.push(Effect::Audio(AudioCommand::ListenNow));
        } else if self.owes_resume {
            out.push(Effect::Audio(AudioCommand::Resume));
        }
        self.owes_resume = false;
    }

    fn act(&mut self, action: PlannedAction, out: &mut Vec<Effect>) {
        self.counters.actions += 1;
        tracing::info!(intent = %action.intent, topic = %action.topic, "action");
        out.push(Effect::Act(action));
    }

    fn publish_intent(&self, u: &Understanding, out: &mut Vec<Effect>) {
        let event = mqtt::IntentRecognized::from_resolution(
            &u.text,
            &u.resolution,
            &self.intents,
            &self.settings.site_id,
            self.session_id(),
        );
        out.push(Effect::Publish(HermesEvent::Intent(event)));
    }

    /// Waits on the confirmation of `action`, announced on `sotto/<site>/confirm`.
    fn ask(&mut self, action: PlannedAction, out: &mut Vec<Effect>) {
        let Outcome::AwaitingConfirmation(action) = self.gate.submit(action, true) else {
            unreachable!("a submitted action that needs confirmation waits for it")
        };
        tracing::info!(intent = %action.intent, topic = %action.topic, "waiting for a spoken yes/no");
        if let Some(session_id) = self.session_id() {
            let timeout_s = self.settings.confirm_timeout.as_secs_f32();
            out.push(Effect::AskConfirmation { action, session_id, timeout_s, again: false });
        }
    }

    /// The early decision: the speculative transcript of the speech so far is a command the
    /// grammar says is complete (no continuation the templates allow changes its intent or a slot
    /// value: [`Intents::complete`]), resolved with high confidence, in a session waiting for a
    /// command (not for a yes/no: that keeps the full trailing silence, as do the language model
    /// and the second pass, which only run on the final utterance). The front end is then told to
    /// end the utterance at that pause once it has lasted `endpoint.early_after_ms`; if speech
    /// resumed meanwhile, it does not, and the full trailing silence decides. Speech after an
    /// early end is not a continuation: the session has moved on.
    fn decide_early(&mut self, out: &mut Vec<Effect>) {
        if !self.settings.early_decisions
            || self.session.is_none()
            || self.gate.pending().is_some()
            || !matches!(self.phase, Phase::Listening)
        {
            return;
        }
        let Some(s) = self.speculation.as_mut() else { return };
        let Some((Ok(heard), _)) = &s.result else { return };
        if heard.flagged.is_some() || s.early {
            return;
        }
        let text = heard.text.trim();
        // The cheap check first: a weak match needs no look at what may follow.
        let confidence = self.intents.parse(text).confidence;
        let completeness = (confidence >= EARLY_MIN_CONFIDENCE).then(|| self.intents.complete(text));
        if !completeness.as_ref().is_some_and(|c| c.is_complete()) {
            tracing::debug!(text, ?completeness, confidence, "not complete at the pause: waiting for the endpoint");
            return;
        }
        tracing::info!(text, confidence, "a complete command at a pause: ending the utterance early");
        s.early = true;
        out.push(Effect::Audio(AudioCommand::EndAt { end_sample: s.audio.end_sample }));
    }

    /// A session opened with an intent filter only accepts those intents in its next turn (Hermes
    /// intent names are Sotto's); anything else is not recognised. A filter outside the
    /// cascade: the grammar's best match is judged, not the best match among the filter's.
    fn filtered(&mut self, mut u: Box<Understanding>) -> Box<Understanding> {
        let Some(filter) = self.session.as_mut().and_then(|s| s.filter.take()) else { return u };
        let Some(intent) = u.resolution.intent.clone() else { return u };
        if !filter.contains(&intent) {
            tracing::info!(intent = %intent, ?filter, "intent outside the session's filter");
            u.decision =
                Decision::NotRecognized { reason: Some(format!("{intent} is not in the session's intent filter")) };
        }
        u
    }

    fn not_recognized(&mut self, text: &str, reason: Option<String>, keep_open: bool, out: &mut Vec<Effect>) {
        self.counters.not_recognized += 1;
        tracing::info!(text = %text, reason = ?reason, "not recognised");
        out.push(Effect::Publish(HermesEvent::IntentNotRecognized(mqtt::IntentNotRecognized {
            input: text.to_string(),
            site_id: self.settings.site_id.clone(),
            session_id: self.session_id(),
            custom_data: reason.clone(),
        })));
        if keep_open {
            // The caller asked to handle it (`sendIntentNotRecognized`): its next move decides.
            self.await_reply();
        } else {
            self.end_session(TerminationReason::IntentNotRecognized, reason, out);
        }
    }

    fn open_session(&mut self, wake: Option<String>) -> String {
        self.next_session += 1;
        let id = format!("{}-{}", self.id_prefix, self.next_session);
        self.session =
            Some(Session { id: id.clone(), wake, turns: 0, filter: None, send_not_recognized: false, reply_by: None });
        id
    }

    fn session_started(&self, id: &str, out: &mut Vec<Effect>) {
        out.push(Effect::Publish(HermesEvent::SessionStarted(mqtt::SessionStarted {
            session_id: id.to_string(),
            site_id: self.settings.site_id.clone(),
            custom_data: None,
            lang: Some(self.settings.lang.clone()),
        })));
    }

    fn end_session(&mut self, reason: TerminationReason, error: Option<String>, out: &mut Vec<Effect>) {
        let Some(session) = self.session.take() else { return };
        tracing::debug!(session = %session.id, turns = session.turns, ?reason, "session ended");
        self.confirmed_reply = None;
        self.recent_sessions.push_back(session.id.clone());
        if self.recent_sessions.len() > 8 {
            self.recent_sessions.pop_front();
        }
        out.push(Effect::Publish(HermesEvent::SessionEnded(mqtt::SessionEnded {
            session_id: session.id,
            site_id: self.settings.site_id.clone(),
            termination: mqtt::Termination { reason, error },
            custom_data: None,
        })));
        self.speak_next(out);
    }

    fn session_id(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.id.clone())
    }

    fn remaining_s(&self) -> f32 {
        self.gate.deadline().map_or(0.0, |d| d.saturating_duration_since(self.clock.now()).as_secs_f32())
    }

    fn job(&mut self) -> u64 {
        self.next_job += 1;
        self.next_job
    }
}
