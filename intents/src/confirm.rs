//! Confirmation of risky intents: a pending action, a yes/no follow-up, a timeout that drops it.
//! A plain struct driven by the daemon, with the clock injected so tests need no sleeping.
//!
//! The timeout counts from the question, never from the last thing said: people talking near the
//! device must not keep a question open. An answer that is neither yes nor no gets the question
//! asked again at most `reasks` times; after that the action is dropped as not confirmed.

use std::time::{Duration, Instant};

use crate::text::tokenize;
use crate::PlannedAction;

pub trait Clock {
    fn now(&self) -> Instant;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Yes,
    No,
    /// Neither: the follow-up is not an answer.
    Unclear,
}

/// Reads a follow-up utterance as yes or no.
pub fn classify_answer(text: &str) -> Answer {
    let words = tokenize(text);
    let has = |set: &[&str]| words.iter().any(|w| set.contains(&w.as_str()));
    let yes = has(&[
        "yes",
        "yeah",
        "yep",
        "yup",
        "sure",
        "confirm",
        "confirmed",
        "affirmative",
        "correct",
        "ok",
        "okay",
        "absolutely",
        "proceed",
        "go",
    ]);
    let no = has(&["no", "nope", "cancel", "dont", "stop", "abort", "negative", "not", "never", "wait"]);
    match (yes, no) {
        (true, false) => Answer::Yes,
        (false, true) => Answer::No,
        _ => Answer::Unclear,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Execute this action now.
    Execute(PlannedAction),
    /// The action waits for a yes/no; ask the user.
    AwaitingConfirmation(PlannedAction),
    /// The pending action was cancelled by a "no".
    Cancelled(PlannedAction),
    /// The pending action expired without an answer.
    Expired(PlannedAction),
    /// The utterance was not a yes/no answer; the action is still pending: ask again.
    StillPending,
    /// Answers that were neither yes nor no used up the re-asks: the action is dropped.
    NotConfirmed(PlannedAction),
    /// Nothing was pending.
    Idle,
}

/// An action waiting for its yes/no.
struct Pending {
    action: PlannedAction,
    asked_at: Instant,
    reasks_left: u32,
}

pub struct ConfirmationGate<C: Clock> {
    clock: C,
    timeout: Duration,
    reasks: u32,
    pending: Option<Pending>,
}

impl<C: Clock> ConfirmationGate<C> {
    /// `timeout` counts from the question; `reasks` unclear answers are met with the question
    /// again, the next one drops the action.
    pub fn new(clock: C, timeout: Duration, reasks: u32) -> Self {
        ConfirmationGate { clock, timeout, reasks, pending: None }
    }

    pub fn pending(&self) -> Option<&PlannedAction> {
        self.pending.as_ref().map(|p| &p.action)
    }

    /// When the pending question runs out.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.asked_at + self.timeout)
    }

    /// A new validated action. One that needs confirmation replaces any older pending one.
    pub fn submit(&mut self, action: PlannedAction, needs_confirmation: bool) -> Outcome {
        if !needs_confirmation {
            return Outcome::Execute(action);
        }
        self.pending = Some(Pending { action: action.clone(), asked_at: self.clock.now(), reasks_left: self.reasks });
        Outcome::AwaitingConfirmation(action)
    }

    /// The follow-up utterance while an action is pending.
    pub fn answer(&mut self, text: &str) -> Outcome {
        if let Some(expired) = self.expire() {
            return expired;
        }
        let Some(mut pending) = self.pending.take() else { return Outcome::Idle };
        match classify_answer(text) {
            Answer::Yes => Outcome::Execute(pending.action),
            Answer::No => Outcome::Cancelled(pending.action),
            Answer::Unclear if pending.reasks_left > 0 => {
                // The clock keeps running from the first question.
                pending.reasks_left -= 1;
                self.pending = Some(pending);
                Outcome::StillPending
            }
            Answer::Unclear => Outcome::NotConfirmed(pending.action),
        }
    }

    /// Drops the pending action without an answer (no speech came, or a new session began).
    pub fn cancel(&mut self) -> Option<PlannedAction> {
        self.pending.take().map(|p| p.action)
    }

    /// Drops the pending action when its time is up; call it periodically.
    pub fn tick(&mut self) -> Outcome {
        self.expire().unwrap_or(if self.pending.is_some() { Outcome::StillPending } else { Outcome::Idle })
    }

    fn expire(&mut self) -> Option<Outcome> {
        let since = self.pending.as_ref()?.asked_at;
        if self.clock.now().duration_since(since) >= self.timeout {
            return Some(Outcome::Expired(self.pending.take()?.action));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[derive(Clone)]
    struct FakeClock(Rc<Cell<Instant>>);
    impl Clock for FakeClock {
        fn now(&self) -> Instant {
            self.0.get()
        }
    }

    fn action() -> PlannedAction {
        PlannedAction {
            intent: "machine.stop".into(),
            topic: "t".into(),
            payload: serde_json::json!({}),
            qos: 2,
            retain: false,
            expiry_s: None,
        }
    }

    fn gate() -> (ConfirmationGate<FakeClock>, Rc<Cell<Instant>>) {
        let t = Rc::new(Cell::new(Instant::now()));
        (ConfirmationGate::new(FakeClock(t.clone()), Duration::from_secs(8), 1), t)
    }

    #[test]
    fn unconfirmed_actions_execute_at_once() {
        let (mut g, _) = gate();
        assert_eq!(g.submit(action(), false), Outcome::Execute(action()));
        assert!(g.pending().is_none());
    }

    #[test]
    fn yes_executes_no_cancels() {
        let (mut g, _) = gate();
        assert_eq!(g.submit(action(), true), Outcome::AwaitingConfirmation(action()));
        assert_eq!(g.answer("what?"), Outcome::StillPending);
        assert_eq!(g.answer("yes please"), Outcome::Execute(action()));
        assert_eq!(g.answer("yes"), Outcome::Idle);
        g.submit(action(), true);
        assert_eq!(g.answer("no, don't"), Outcome::Cancelled(action()));
        assert!(g.pending().is_none());
    }

    #[test]
    fn timeout_drops_the_pending_action() {
        let (mut g, t) = gate();
        g.submit(action(), true);
        t.set(t.get() + Duration::from_secs(7));
        assert_eq!(g.tick(), Outcome::StillPending);
        t.set(t.get() + Duration::from_secs(1));
        assert_eq!(g.tick(), Outcome::Expired(action()));
        assert_eq!(g.answer("yes"), Outcome::Idle);
    }

    #[test]
    fn unclear_answers_neither_extend_the_time_nor_keep_the_question_open() {
        let (mut g, t) = gate();
        g.submit(action(), true);
        t.set(t.get() + Duration::from_secs(5));
        assert_eq!(g.answer("turn on the kitchen lights"), Outcome::StillPending);
        // Talking does not restart the clock: 8 s after the question, not after the answer.
        t.set(t.get() + Duration::from_secs(3));
        assert_eq!(g.tick(), Outcome::Expired(action()));
        g.submit(action(), true);
        assert_eq!(g.answer("what?"), Outcome::StillPending);
        assert_eq!(g.answer("the weather is nice"), Outcome::NotConfirmed(action()));
        assert!(g.pending().is_none());
    }

    #[test]
    fn late_yes_does_not_execute() {
        let (mut g, t) = gate();
        g.submit(action(), true);
        t.set(t.get() + Duration::from_secs(30));
        assert_eq!(g.answer("yes"), Outcome::Expired(action()));
    }
}
