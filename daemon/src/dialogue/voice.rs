//! What Sotto says, and the Hermes dialogue-manager requests that make it speak.
//!
//! Rules:
//! - **One text at a time.** A text asked for while another is spoken waits in a queue; so does
//!   an announcement from outside (`hermes/tts/say`, a notification) while a session is open, so
//!   it never cuts into a command being spoken or a question being answered.
//! - **Half duplex.** Speaking starts with [`AudioCommand::Speaking`] and ends with
//!   [`AudioCommand::Spoke`]: the front end hears silence meanwhile (and for a short tail), so
//!   Sotto's own voice is neither a wake word nor an answer. Barge-in needs echo cancellation and
//!   is not done.
//! - **What waits for the end of speaking:** listening for the answer to a spoken question (and
//!   the question's time, which starts once it has been asked), file input going on, the
//!   `hermes/tts/sayFinished` of a request, and the end of a session that `endSession` closed
//!   with a text.

use sotto_intents::PlannedAction;

use super::{AudioCommand, Dialogue, Effect};
use crate::mqtt::{self, ContinueSession, HermesEvent, SayRequest, StartSession, TerminationReason};
use sotto_intents::confirm::Clock;

/// A text for the shell to speak (with Sotto's voice, or as `hermes/tts/say` without one).
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub id: String,
    pub text: String,
    pub session_id: Option<String>,
}

/// What happens once a text has been spoken.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Then {
    Nothing,
    /// Answer a `hermes/tts/say` request.
    SayFinished {
        id: Option<String>,
        session_id: Option<String>,
    },
    /// The spoken question is out: wait for its yes/no.
    Ask(PlannedAction),
    /// End the session (`endSession` with a text, a notification).
    End(TerminationReason),
}

#[derive(Debug)]
pub(super) struct Speaking {
    id: String,
    then: Then,
}

/// A text waiting for its turn.
#[derive(Debug)]
pub(super) struct Queued {
    text: String,
    session_id: Option<String>,
    then: Then,
    /// Waits for the open session to end, not only for the current text.
    announcement: bool,
}

impl<C: Clock + Clone> Dialogue<C> {
    /// Says one of Sotto's own responses in the open session, if responses are on.
    pub(super) fn respond(&mut self, text: String, then: Then, out: &mut Vec<Effect>) {
        if !self.settings.responses {
            self.after_speaking(then, out);
            return;
        }
        self.say_in_session(text, then, out);
    }

    /// Says a text in the open session (a response, or a text a Hermes request brings for it).
    fn say_in_session(&mut self, text: String, then: Then, out: &mut Vec<Effect>) {
        let session_id = self.session_id();
        self.say(Queued { text, session_id, then, announcement: false }, out);
    }

    /// Ends the open session nominally, after saying `text` when there is one.
    fn end_after(&mut self, text: Option<String>, out: &mut Vec<Effect>) {
        match text {
            Some(text) => self.say_in_session(text, Then::End(TerminationReason::Nominal), out),
            None => self.end_session(TerminationReason::Nominal, None, out),
        }
    }

    /// Says a text from outside the dialogue (a request, a notification): after the open session.
    fn announce(&mut self, text: String, session_id: Option<String>, then: Then, out: &mut Vec<Effect>) {
        self.say(Queued { text, session_id, then, announcement: true }, out);
    }

    fn say(&mut self, item: Queued, out: &mut Vec<Effect>) {
        if self.speaking.is_some() || (item.announcement && self.session.is_some()) {
            tracing::debug!(text = %item.text, "speech queued");
            self.speech_queue.push_back(item);
            return;
        }
        self.next_speech += 1;
        let id = format!("{}-say-{}", self.id_prefix, self.next_speech);
        tracing::info!(id = %id, text = %item.text, "speaking");
        self.counters.spoken += 1;
        out.push(Effect::Audio(AudioCommand::Speaking));
        out.push(Effect::Say(Speech { id: id.clone(), text: item.text, session_id: item.session_id }));
        self.speaking = Some(Speaking { id, then: item.then });
    }

    /// Starts the next queued text, if it may go now.
    pub(super) fn speak_next(&mut self, out: &mut Vec<Effect>) {
        if self.speaking.is_some() {
            return;
        }
        let ready = self.speech_queue.iter().position(|q| !q.announcement || self.session.is_none());
        if let Some(item) = ready.and_then(|i| self.speech_queue.remove(i)) {
            self.say(item, out);
        }
    }

    pub(super) fn on_spoken(&mut self, id: &str, samples: u64, error: Option<String>, out: &mut Vec<Effect>) {
        let Some(speaking) = self.speaking.take_if(|s| s.id == id) else {
            tracing::debug!(id, "end of speaking that was not awaited");
            return;
        };
        if let Some(error) = &error {
            self.counters.speech_errors += 1;
            tracing::error!(id, error = %error, "speaking failed");
        }
        out.push(Effect::Audio(AudioCommand::Spoke { samples }));
        self.after_speaking(speaking.then, out);
        self.speak_next(out);
        if self.speaking.is_none() {
            if let Some(listen_again) = self.deferred_settle.take() {
                self.settle(listen_again, out);
            }
        }
    }

    fn after_speaking(&mut self, then: Then, out: &mut Vec<Effect>) {
        match then {
            Then::Nothing => {}
            Then::SayFinished { id, session_id } => {
                out.push(Effect::Publish(HermesEvent::SayFinished(mqtt::SayFinished {
                    id,
                    site_id: self.settings.site_id.clone(),
                    session_id,
                })));
            }
            Then::Ask(action) if self.session.is_some() => self.ask(action, out),
            Then::Ask(action) => {
                tracing::info!(intent = %action.intent, "session ended while its question was spoken: not asked");
                self.deferred_settle = self.deferred_settle.map(|_| false);
            }
            Then::End(reason) => self.end_session(reason, None, out),
        }
    }

    /// After a query (or a turn the caller handles itself), the session waits for the answer of
    /// another system for `reply_timeout`.
    pub(super) fn await_reply(&mut self) {
        let by = self.clock.now() + self.settings.reply_timeout;
        if let Some(session) = &mut self.session {
            session.reply_by = Some(by);
        }
    }

    pub(super) fn on_start_session(&mut self, start: StartSession, out: &mut Vec<Effect>) {
        if self.session.is_some() {
            tracing::warn!(kind = ?start.kind, "startSession while a session is open: ignored");
            return;
        }
        let text = start.text.filter(|t| !t.trim().is_empty());
        let id = self.open_session(None);
        self.session_started(&id, out);
        if start.kind == mqtt::SessionKind::Notification {
            self.end_after(text, out);
            return;
        }
        if let Some(session) = &mut self.session {
            session.filter = start.intent_filter;
            session.send_not_recognized = start.send_intent_not_recognized;
        }
        if let Some(text) = text {
            self.say_in_session(text, Then::Nothing, out);
        }
        self.settle(true, out);
    }

    pub(super) fn on_continue_session(&mut self, next: ContinueSession, out: &mut Vec<Effect>) {
        let waiting = matches!(self.phase, super::Phase::Listening) && self.gate.pending().is_none();
        let Some(session) = self.session.as_mut().filter(|s| s.id == next.session_id && waiting) else {
            tracing::warn!(session = %next.session_id, "continueSession for a session that is not waiting for one: ignored");
            return;
        };
        session.filter = next.intent_filter;
        session.send_not_recognized = next.send_intent_not_recognized;
        session.reply_by = None;
        if let Some(text) = next.text.filter(|t| !t.trim().is_empty()) {
            self.say_in_session(text, Then::Nothing, out);
        }
        self.settle(true, out);
    }

    pub(super) fn on_end_session(&mut self, session_id: &str, text: Option<String>, out: &mut Vec<Effect>) {
        let text = text.filter(|t| !t.trim().is_empty());
        if let Some(session) = self.session.as_mut().filter(|s| s.id == session_id) {
            session.reply_by = None;
            // The caller ends the session whatever it waited for: a question is dropped.
            if let Some(action) = self.gate.cancel() {
                tracing::info!(intent = %action.intent, "endSession during a confirmation: question dropped");
                out.push(Effect::Audio(AudioCommand::StopListening));
            }
            self.end_after(text, out);
        } else if self.recent_sessions.iter().any(|s| s == session_id) {
            // Sotto ends a session as soon as it has acted; the answer of the system that handles
            // the intent often comes after that, and is still the user's answer.
            if let Some(text) = text {
                self.announce(text, Some(session_id.into()), Then::Nothing, out);
            }
        } else {
            tracing::debug!(session = %session_id, "endSession for a session that is not ours: ignored");
        }
    }

    pub(super) fn on_say(&mut self, request: SayRequest, out: &mut Vec<Effect>) {
        let finished = Then::SayFinished { id: request.id.clone(), session_id: request.session_id.clone() };
        if !self.settings.voice {
            // Without a voice Sotto publishes its own texts here for another system: not ours.
            return;
        }
        if let Err(e) = sotto_tts::check_text(&request.text) {
            tracing::warn!(id = ?request.id, error = %e, "hermes/tts/say refused");
            self.after_speaking(finished, out);
            return;
        }
        self.announce(request.text, request.session_id, finished, out);
    }
}
