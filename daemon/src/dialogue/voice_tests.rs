//! The spoken dialogue with a fake clock and the shipped domains: what Sotto says, what waits for
//! the end of its speech, and the Hermes dialogue-manager requests.

use std::time::Duration;

use super::tests::{acted, ended, silent, topics, Harness};
use super::*;
use crate::mqtt::{ContinueSession, SayRequest, SessionKind, StartSession};

/// An assistant with a voice that speaks its responses and keeps a query's session open 4 s.
fn speaking() -> Harness {
    Harness::with(Settings { voice: true, responses: true, reply_timeout: Duration::from_secs(4), ..silent() })
}

impl Harness {
    /// The text being spoken ends after `seconds` of audio.
    fn spoken(&mut self, seconds: f32) -> Vec<Effect> {
        let speech = self.speech.take().expect("something is being spoken");
        self.on(Input::Spoken { id: speech.id, samples: (seconds * 16_000.0) as u64, error: None })
    }

    fn control(&mut self, message: ControlMessage) -> Vec<Effect> {
        self.on(Input::Control(message))
    }

    fn session_id(&self) -> String {
        self.dialogue.session_id().expect("a session is open")
    }
}

fn said(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Say(s) => Some(s.text.clone()),
            _ => None,
        })
        .collect()
}

fn say_finished(effects: &[Effect]) -> Vec<Option<String>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(HermesEvent::SayFinished(f)) => Some(f.id.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_question_is_spoken_first_then_listened_for_and_its_time_starts_when_it_is_out() {
    let mut h = speaking();
    h.wake();
    let asked = h.say("stop press one");
    assert_eq!(said(&asked), ["Stop press one? Say yes or no."]);
    let names = topics(&asked);
    assert!(names.contains(&"Speaking".to_string()), "{names:?}");
    assert!(
        !names.iter().any(|t| t.starts_with("ask") || t == "ListenNow"),
        "nothing is asked before it is said: {names:?}"
    );
    h.advance(3.0);
    let out = h.spoken(3.0);
    assert_eq!(topics(&out), ["Spoke { samples: 48000 }", "ask machine.stop", "ListenNow"]);
    // 9.5 s after the question ended (12.5 s after the decision), a yes still counts.
    h.advance(9.5);
    let yes = h.say("yes");
    assert_eq!(acted(&yes), ["machine.stop"]);
    assert_eq!(said(&yes), ["Stopping press one."]);
    assert_eq!(ended(&yes), [TerminationReason::Nominal]);
    let resume = h.spoken(1.0);
    assert_eq!(topics(&resume), ["Spoke { samples: 16000 }", "Resume"], "file input goes on once Sotto is quiet");
}

#[test]
fn not_understood_is_said_and_file_input_waits_for_the_end_of_it() {
    let mut h = speaking();
    h.wake();
    let out = h.say("bake me a chocolate cake");
    assert_eq!(said(&out), [responses_default_not_understood()]);
    assert_eq!(ended(&out), [TerminationReason::IntentNotRecognized]);
    assert!(!topics(&out).contains(&"Resume".to_string()), "{:?}", topics(&out));
    assert_eq!(topics(&h.spoken(1.5)), ["Spoke { samples: 24000 }", "Resume"]);
}

#[test]
fn an_empty_transcript_gets_no_sorry() {
    let mut h = speaking();
    h.wake();
    let out = h.say("");
    assert!(said(&out).is_empty(), "{:?}", topics(&out));
    assert_eq!(ended(&out), [TerminationReason::IntentNotRecognized]);
}

fn responses_default_not_understood() -> String {
    sotto_intents::responses::DEFAULT_NOT_UNDERSTOOD.to_string()
}

#[test]
fn a_refused_value_says_what_the_range_is() {
    let mut h = speaking();
    h.wake();
    let out = h.say("set the driver side to ninety degrees");
    let text = said(&out).join(" ");
    assert!(text.contains("sixteen") && text.contains("thirty"), "{text}");
}

#[test]
fn an_action_speaks_its_say_and_ends_at_once() {
    let mut h = speaking();
    h.wake();
    let out = h.say("turn on the kitchen lights");
    assert_eq!(acted(&out), ["light.set"]);
    assert_eq!(said(&out), ["Turning the kitchen lights on."]);
    assert_eq!(ended(&out), [TerminationReason::Nominal]);
}

#[test]
fn responses_off_asks_at_once_and_says_nothing() {
    let mut h = Harness::with(Settings { voice: true, ..silent() });
    h.wake();
    let asked = h.say("stop press one");
    assert!(said(&asked).is_empty());
    assert_eq!(asked.last(), Some(&Effect::Audio(AudioCommand::ListenNow)));
    assert!(topics(&asked).contains(&"ask machine.stop".to_string()));
    // Hermes texts are still spoken.
    h.say("no");
    let out =
        h.control(ControlMessage::Say(SayRequest { text: "Shift ends in ten minutes.".into(), ..Default::default() }));
    assert_eq!(said(&out), ["Shift ends in ten minutes."]);
}

#[test]
fn a_tts_say_request_is_spoken_then_finished() {
    let mut h = speaking();
    let request = SayRequest { text: "Coffee is ready.".into(), id: Some("r1".into()), session_id: None };
    let out = h.control(ControlMessage::Say(request));
    assert_eq!(topics(&out), ["Speaking", "say Coffee is ready."]);
    let done = h.spoken(1.2);
    assert_eq!(topics(&done), ["Spoke { samples: 19200 }", "hermes/tts/sayFinished"]);
    assert_eq!(say_finished(&done), [Some("r1".to_string())]);
}

#[test]
fn a_bad_tts_say_request_is_finished_without_speaking() {
    let mut h = speaking();
    for text in [String::new(), "x".repeat(10_000)] {
        let out = h.control(ControlMessage::Say(SayRequest { text, id: Some("bad".into()), session_id: None }));
        assert!(said(&out).is_empty());
        assert_eq!(say_finished(&out), [Some("bad".to_string())]);
    }
    assert_eq!(h.dialogue.counters().spoken, 0);
}

#[test]
fn without_a_voice_tts_say_is_someone_elses() {
    let mut h = Harness::with(Settings { responses: true, ..silent() });
    let out = h.control(ControlMessage::Say(SayRequest { text: "hello".into(), ..Default::default() }));
    assert!(out.is_empty(), "{out:?}");
    // Its own responses still go out, to be spoken elsewhere.
    h.wake();
    assert_eq!(said(&h.say("bake me a chocolate cake")), [responses_default_not_understood()]);
}

#[test]
fn an_announcement_waits_for_the_open_session() {
    let mut h = speaking();
    h.wake();
    let out = h.control(ControlMessage::Say(SayRequest { text: "Coffee is ready.".into(), ..Default::default() }));
    assert!(said(&out).is_empty(), "not while the user may be speaking");
    let out = h.say("turn on the kitchen lights");
    assert_eq!(said(&out), ["Turning the kitchen lights on."]);
    let next = h.spoken(1.0);
    assert_eq!(said(&next), ["Coffee is ready."], "after the session's own words");
    assert!(!topics(&next).contains(&"Resume".to_string()), "file input still waits");
    assert_eq!(topics(&h.spoken(1.0)), ["Spoke { samples: 16000 }", "hermes/tts/sayFinished", "Resume"]);
}

#[test]
fn a_query_waits_for_the_answer_and_speaks_it_before_ending() {
    let mut h = speaking();
    h.wake();
    let out = h.say("what is the status of press two");
    assert_eq!(acted(&out), ["machine.status"]);
    assert_eq!(said(&out), ["Checking the status of press two."]);
    assert!(ended(&out).is_empty(), "the session waits for the plant system's answer");
    let session = h.session_id();
    h.spoken(1.5);
    let answer = h.control(ControlMessage::EndSession {
        session_id: session.clone(),
        text: Some("Press 2 is running at 40 strokes a minute.".into()),
    });
    assert_eq!(said(&answer), ["Press 2 is running at 40 strokes a minute."]);
    assert!(ended(&answer).is_empty(), "ended once it has been said");
    assert_eq!(ended(&h.spoken(2.5)), [TerminationReason::Nominal]);
}

#[test]
fn a_query_without_an_answer_ends_when_the_reply_window_passes() {
    let mut h = speaking();
    h.wake();
    h.say("what is the status of press two");
    h.spoken(1.5);
    h.advance(3.0);
    assert!(ended(&h.on(Input::Tick)).is_empty());
    h.advance(1.5);
    assert_eq!(ended(&h.on(Input::Tick)), [TerminationReason::Nominal]);
}

#[test]
fn an_answer_after_the_session_ended_is_still_spoken() {
    let mut h = speaking();
    h.wake();
    h.say("turn on the kitchen lights");
    let session = h.dialogue.recent_sessions.back().cloned().unwrap();
    h.spoken(1.0);
    let out = h.control(ControlMessage::EndSession { session_id: session, text: Some("The bulb is broken.".into()) });
    assert_eq!(said(&out), ["The bulb is broken."]);
    let stranger = h.control(ControlMessage::EndSession { session_id: "other-site-1".into(), text: Some("x".into()) });
    assert!(stranger.is_empty());
}

#[test]
fn continue_session_speaks_then_listens_without_a_wake_word_for_the_filtered_intents_only() {
    let mut h = speaking();
    h.wake();
    h.say("what is the status of press two");
    h.spoken(1.0);
    let session = h.session_id();
    let out = h.control(ControlMessage::ContinueSession(ContinueSession {
        session_id: session.clone(),
        text: Some("Press 2 is jammed. Should I stop it?".into()),
        intent_filter: Some(vec!["machine.stop".into()]),
        send_intent_not_recognized: false,
    }));
    assert_eq!(said(&out), ["Press 2 is jammed. Should I stop it?"]);
    assert!(!topics(&out).contains(&"ListenNow".to_string()));
    assert_eq!(topics(&h.spoken(2.0)), ["Spoke { samples: 32000 }", "ListenNow"]);
    // The follow-up is outside the filter: not recognised, and the session ends.
    let out = h.say("turn on the kitchen lights");
    assert!(acted(&out).is_empty());
    assert_eq!(ended(&out), [TerminationReason::IntentNotRecognized]);
    assert_eq!(h.dialogue.session_id(), None);
}

#[test]
fn continue_session_with_send_intent_not_recognized_leaves_the_next_move_to_the_caller() {
    let mut h = speaking();
    h.wake();
    h.say("what is the status of press two");
    h.spoken(1.0);
    let session = h.session_id();
    h.control(ControlMessage::ContinueSession(ContinueSession {
        session_id: session.clone(),
        text: None,
        intent_filter: Some(vec!["machine.stop".into()]),
        send_intent_not_recognized: true,
    }));
    let out = h.say("bake me a chocolate cake");
    assert!(topics(&out).contains(&"hermes/nlu/intentNotRecognized".to_string()));
    assert!(said(&out).is_empty() && ended(&out).is_empty(), "{:?}", topics(&out));
    assert_eq!(h.session_id(), session);
    // A session that is not waiting for a turn is not continued.
    let busy =
        h.control(ControlMessage::ContinueSession(ContinueSession { session_id: "nope".into(), ..Default::default() }));
    assert!(busy.is_empty());
}

#[test]
fn a_notification_session_speaks_and_ends() {
    let mut h = speaking();
    let start =
        StartSession { kind: SessionKind::Notification, text: Some("Break time.".into()), ..Default::default() };
    let out = h.control(ControlMessage::StartSession(start));
    assert_eq!(topics(&out), ["hermes/dialogueManager/sessionStarted", "Speaking", "say Break time."]);
    assert_eq!(ended(&h.spoken(1.0)), [TerminationReason::Nominal]);
    assert!(!h.dialogue.in_session());
}

#[test]
fn an_action_session_with_a_text_asks_and_then_listens() {
    let mut h = speaking();
    let start = StartSession { text: Some("Which machine?".into()), ..Default::default() };
    let out = h.control(ControlMessage::StartSession(start));
    assert_eq!(said(&out), ["Which machine?"]);
    assert!(!topics(&out).contains(&"ListenNow".to_string()));
    assert_eq!(topics(&h.spoken(1.0)), ["Spoke { samples: 16000 }", "ListenNow"]);
}

#[test]
fn a_failed_speech_is_counted_and_the_dialogue_goes_on() {
    let mut h = speaking();
    h.wake();
    h.say("stop press one");
    let speech = h.speech.take().unwrap();
    let out = h.on(Input::Spoken { id: speech.id, samples: 0, error: Some("no output device".into()) });
    assert_eq!(topics(&out), ["Spoke { samples: 0 }", "ask machine.stop", "ListenNow"]);
    assert_eq!(h.dialogue.counters().speech_errors, 1);
}
