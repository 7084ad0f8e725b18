//! The dialogue core with a fake clock and the real shipped domains: each test plays a script of
//! inputs and checks the effects, the way the shell would carry them out.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use sotto_intents::understand::{UnderstandConfig, Understander};

use super::*;

#[derive(Clone)]
pub(super) struct FakeClock(Rc<Cell<Instant>>);

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.0.get()
    }
}

pub(super) struct Harness {
    pub(super) dialogue: Dialogue<FakeClock>,
    time: Rc<Cell<Instant>>,
    /// Samples of the stream so far (utterances are laid out one after the other).
    at: u64,
    /// The last job asked for, and of what kind.
    pub(super) transcribe: Option<u64>,
    understand: Option<(u64, Heard)>,
    /// The last text asked to be spoken.
    pub(super) speech: Option<Speech>,
}

fn intents() -> Arc<Intents> {
    static SHIPPED: std::sync::OnceLock<Arc<Intents>> = std::sync::OnceLock::new();
    SHIPPED.get_or_init(|| Arc::new(Intents::shipped())).clone()
}

/// Settings of a silent assistant (no voice, no responses, no reply window).
pub(super) fn silent() -> Settings {
    Settings {
        site_id: "test".into(),
        lang: "en".into(),
        confirm_timeout: Duration::from_secs(10),
        confirm_reasks: 1,
        sensitivities: BTreeMap::new(),
        voice: false,
        responses: false,
        reply_timeout: Duration::ZERO,
        early_decisions: false,
        speculate_after: Duration::from_millis(200),
    }
}

impl Harness {
    fn new() -> Self {
        Self::with(silent())
    }

    pub(super) fn with(settings: Settings) -> Self {
        let time = Rc::new(Cell::new(Instant::now()));
        let dialogue = Dialogue::new(FakeClock(time.clone()), settings, intents(), "s".into());
        Harness { dialogue, time, at: 0, transcribe: None, understand: None, speech: None }
    }

    pub(super) fn advance(&self, seconds: f32) {
        self.time.set(self.time.get() + Duration::from_secs_f32(seconds));
    }

    pub(super) fn on(&mut self, input: Input) -> Vec<Effect> {
        let effects = self.dialogue.on(input);
        for e in &effects {
            match e {
                Effect::Transcribe { job, .. } => self.transcribe = Some(*job),
                Effect::Understand { job, heard, .. } => self.understand = Some((*job, heard.clone())),
                Effect::Say(speech) => self.speech = Some(speech.clone()),
                _ => {}
            }
        }
        effects
    }

    pub(super) fn audio(&mut self, seconds: f32) -> Audio {
        let n = (seconds * 16_000.0) as u64;
        let audio = Audio { samples: vec![0.0; n as usize].into(), start_sample: self.at, end_sample: self.at + n };
        self.at += n + 16_000;
        audio
    }

    pub(super) fn wake(&mut self) -> Vec<Effect> {
        self.on(Input::Wake { wake: "hey_jarvis".into(), score: 0.9, sample: self.at })
    }

    /// An utterance that Whisper hears as `text`, through the real cascade (no second pass).
    pub(super) fn say(&mut self, text: &str) -> Vec<Effect> {
        let audio = self.audio(1.5);
        let mut effects = self.on(Input::Utterance(audio));
        let job = self.transcribe.take().expect("a transcription was asked for");
        effects.extend(self.transcribed(job, Ok(Heard::text(text))));
        effects
    }

    pub(super) fn transcribed(&mut self, job: u64, result: Result<Heard, String>) -> Vec<Effect> {
        let mut effects = self.on(Input::Transcribed { job, result, compute_ms: 100.0 });
        effects.extend(self.understood());
        effects
    }

    /// Runs the cascade the last [`Effect::Understand`] asked for, if any, and feeds its result.
    pub(super) fn understood(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Some((job, heard)) = self.understand.take() {
            let config = UnderstandConfig::default();
            let understanding = Understander::new(&intents(), &config, "test").understand_text(&heard.text, None);
            effects.extend(self.on(Input::Understood { job, result: Ok(Box::new(understanding)) }));
        }
        effects
    }
}

pub(super) fn topics(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .map(|e| match e {
            Effect::Publish(event) => event.topic(),
            Effect::Act(action) => format!("act {}", action.intent),
            Effect::AskConfirmation { action, again, .. } => {
                format!("ask {}{}", action.intent, if *again { " again" } else { "" })
            }
            Effect::Audio(command) => format!("{command:?}"),
            Effect::SetMuted(m) => format!("muted {m}"),
            Effect::Transcribe { .. } => "transcribe".into(),
            Effect::Understand { .. } => "understand".into(),
            Effect::Report(r) => format!("report {}", r.decision),
            Effect::Say(s) => format!("say {}", s.text),
        })
        .collect()
}

pub(super) fn ended(effects: &[Effect]) -> Vec<TerminationReason> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(HermesEvent::SessionEnded(s)) => Some(s.termination.reason),
            _ => None,
        })
        .collect()
}

pub(super) fn acted(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Act(a) => Some(a.intent.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_command_is_transcribed_understood_and_acted_on() {
    let mut h = Harness::new();
    let started = h.wake();
    assert_eq!(topics(&started), ["hermes/hotword/hey_jarvis/detected", "hermes/dialogueManager/sessionStarted"]);
    let effects = h.say("turn on the kitchen lights");
    assert_eq!(
        topics(&effects),
        [
            "transcribe",
            "hermes/asr/textCaptured",
            "understand",
            "hermes/intent/light.set",
            "act light.set",
            "hermes/dialogueManager/sessionEnded",
            "report execute",
            "Resume"
        ]
    );
    assert!(!h.dialogue.in_session());
    assert_eq!(h.dialogue.counters().actions, 1);
}

#[test]
fn a_wake_word_during_a_session_starts_a_new_one() {
    let mut h = Harness::new();
    h.wake();
    let effects = h.wake();
    assert_eq!(ended(&effects), [TerminationReason::AbortedByUser]);
    assert!(h.dialogue.in_session());
    assert_eq!(acted(&h.say("turn on the kitchen lights")), ["light.set"]);
}

#[test]
fn a_wake_word_during_a_confirmation_drops_the_question_and_serves_the_new_command() {
    let mut h = Harness::new();
    h.wake();
    let asked = h.say("stop press one");
    assert!(topics(&asked).contains(&"ask machine.stop".to_string()), "{:?}", topics(&asked));
    assert_eq!(asked.last(), Some(&Effect::Audio(AudioCommand::ListenNow)));
    let woke = h.wake();
    assert_eq!(ended(&woke), [TerminationReason::AbortedByUser]);
    let effects = h.say("turn on the kitchen lights");
    assert_eq!(acted(&effects), ["light.set"]);
    // The old question is gone: a later "yes" is a new session's (unrecognised) utterance.
    h.wake();
    assert!(acted(&h.say("yes")).is_empty());
}

#[test]
fn the_question_times_out_from_when_it_was_asked_even_while_people_keep_talking() {
    let mut h = Harness::new();
    h.wake();
    h.say("stop press one");
    h.advance(4.0);
    // Someone is talking, and the front end keeps collecting: no utterance ends.
    assert!(h.on(Input::Tick).is_empty());
    h.advance(6.0);
    let effects = h.on(Input::Tick);
    assert_eq!(topics(&effects), ["StopListening", "hermes/dialogueManager/sessionEnded"]);
    assert_eq!(ended(&effects), [TerminationReason::Timeout]);
    assert!(!h.dialogue.in_session());
    assert_eq!(h.dialogue.counters().actions, 0);
}

#[test]
fn a_long_answer_that_ends_after_the_deadline_is_dropped() {
    let mut h = Harness::new();
    h.wake();
    h.say("stop press one");
    let audio = h.audio(9.0);
    h.on(Input::Utterance(audio));
    let job = h.transcribe.take().unwrap();
    h.advance(11.0);
    let effects = h.transcribed(job, Ok(Heard::text("yes")));
    assert_eq!(ended(&effects), [TerminationReason::Timeout]);
    assert!(acted(&effects).is_empty());
    assert_eq!(effects.last(), Some(&Effect::Audio(AudioCommand::Resume)));
}

#[test]
fn an_answer_that_is_not_yes_or_no_asks_once_more_then_ends() {
    let mut h = Harness::new();
    h.wake();
    h.say("stop press one");
    let first = h.say("turn on the kitchen lights");
    assert_eq!(
        topics(&first),
        ["transcribe", "hermes/asr/textCaptured", "ask machine.stop again", "ListenNow"],
        "the question is asked again and the answer listened for"
    );
    let second = h.say("what a lovely day");
    assert_eq!(ended(&second), [TerminationReason::Timeout]);
    assert_eq!(second.last(), Some(&Effect::Audio(AudioCommand::Resume)));
    assert!(!h.dialogue.in_session());
    assert_eq!(h.dialogue.counters().actions, 0);
}

#[test]
fn yes_acts_and_no_cancels() {
    let mut h = Harness::new();
    h.wake();
    h.say("stop press one");
    assert_eq!(acted(&h.say("yes please")), ["machine.stop"]);
    h.wake();
    h.say("stop press one");
    let no = h.say("no");
    assert!(acted(&no).is_empty());
    assert_eq!(ended(&no), [TerminationReason::AbortedByUser]);
}

#[test]
fn speech_resumed_after_a_speculative_start_is_transcribed_again() {
    let mut h = Harness::new();
    h.wake();
    let early = h.audio(1.0);
    let effects = h.on(Input::Pause(early.clone()));
    assert_eq!(topics(&effects), ["transcribe"]);
    let speculative = h.transcribe.take().unwrap();
    // Speech went on: the endpoint cuts a longer utterance than the pause's.
    let full = Audio {
        samples: vec![0.0; 32_000].into(),
        start_sample: early.start_sample,
        end_sample: early.end_sample + 16_000,
    };
    let effects = h.on(Input::Utterance(full));
    assert_eq!(topics(&effects), ["transcribe"]);
    let fresh = h.transcribe.take().unwrap();
    assert_ne!(fresh, speculative);
    // The stale result is ignored; the fresh one is used.
    assert!(h.transcribed(speculative, Ok(Heard::text("turn on the"))).is_empty());
    assert_eq!(acted(&h.transcribed(fresh, Ok(Heard::text("turn on the kitchen lights")))), ["light.set"]);
    assert_eq!(h.dialogue.counters().speculations_discarded, 1);
}

#[test]
fn a_speculative_transcript_of_the_final_audio_is_used_without_transcribing_again() {
    let mut h = Harness::new();
    h.wake();
    let audio = h.audio(1.0);
    h.on(Input::Pause(audio.clone()));
    let job = h.transcribe.take().unwrap();
    assert!(h.transcribed(job, Ok(Heard::text("turn on the kitchen lights"))).is_empty());
    let effects = h.on(Input::Utterance(audio));
    assert!(topics(&effects).contains(&"understand".to_string()), "{:?}", topics(&effects));
    assert!(h.transcribe.is_none());
    assert_eq!(h.dialogue.counters().speculations_used, 1);
}

#[test]
fn mute_drops_later_wake_words_but_lets_the_session_in_progress_finish() {
    let mut h = Harness::new();
    h.wake();
    let muted = h.on(Input::Control(ControlMessage::Mute));
    assert_eq!(muted, [Effect::SetMuted(true)]);
    assert_eq!(acted(&h.say("turn on the kitchen lights")), ["light.set"]);
    assert_eq!(h.on(Input::Control(ControlMessage::Unmute)), [Effect::SetMuted(false)]);
}

#[test]
fn a_worker_error_mid_command_ends_the_session_and_the_next_command_is_served() {
    let mut h = Harness::new();
    h.wake();
    let audio = h.audio(1.5);
    h.on(Input::Utterance(audio));
    assert!(!h.dialogue.accepts_audio(), "audio waits while the command is transcribed");
    let job = h.transcribe.take().unwrap();
    let effects = h.transcribed(job, Err("worker crashed".into()));
    assert_eq!(ended(&effects), [TerminationReason::Error]);
    assert_eq!(effects.last(), Some(&Effect::Audio(AudioCommand::Resume)));
    assert!(h.dialogue.accepts_audio());
    assert_eq!(h.dialogue.counters().worker_errors, 1);
    h.wake();
    assert_eq!(acted(&h.say("turn on the kitchen lights")), ["light.set"]);
}

#[test]
fn no_speech_after_the_question_drops_the_action() {
    let mut h = Harness::new();
    h.wake();
    h.say("stop press one");
    let effects = h.on(Input::NoSpeech);
    assert_eq!(ended(&effects), [TerminationReason::Timeout]);
    h.wake();
    assert!(acted(&h.say("yes")).is_empty());
}

#[test]
fn a_refused_value_is_not_recognised_with_its_reason() {
    let mut h = Harness::new();
    h.wake();
    let effects = h.say("set the driver side to ninety degrees");
    assert!(acted(&effects).is_empty());
    assert_eq!(ended(&effects), [TerminationReason::IntentNotRecognized]);
    assert_eq!(h.dialogue.counters().rejected, 1);
}

#[test]
fn start_session_listens_without_a_wake_word() {
    let mut h = Harness::new();
    let start = crate::mqtt::StartSession::default();
    let effects = h.on(Input::Control(ControlMessage::StartSession(start.clone())));
    assert_eq!(topics(&effects), ["hermes/dialogueManager/sessionStarted", "ListenNow"]);
    // A second one while the first is open is ignored.
    assert!(h.on(Input::Control(ControlMessage::StartSession(start))).is_empty());
    assert_eq!(acted(&h.say("turn on the kitchen lights")), ["light.set"]);
}

#[test]
fn shutdown_ends_the_open_session() {
    let mut h = Harness::new();
    h.wake();
    assert_eq!(ended(&h.on(Input::Shutdown)), [TerminationReason::AbortedByUser]);
    assert!(!h.dialogue.in_session());
}

/// A pause after `text`: the speculative transcription is asked for and comes back as `text`.
fn pause_heard(h: &mut Harness, text: &str) -> (Audio, Vec<Effect>) {
    let audio = h.audio(1.0);
    h.on(Input::Pause(audio.clone()));
    let job = h.transcribe.take().unwrap();
    let effects = h.on(Input::Transcribed { job, result: Ok(Heard::text(text)), compute_ms: 300.0 });
    (audio, effects)
}

fn early() -> Harness {
    Harness::with(Settings { early_decisions: true, ..silent() })
}

#[test]
fn a_complete_command_at_a_pause_ends_the_utterance_there() {
    let mut h = early();
    h.wake();
    let (audio, effects) = pause_heard(&mut h, "turn on the kitchen lights");
    assert_eq!(effects, [Effect::Audio(AudioCommand::EndAt { end_sample: audio.end_sample })]);
    h.advance(0.1);
    let mut done = h.on(Input::Utterance(audio));
    done.extend(h.understood());
    assert_eq!(acted(&done), ["light.set"]);
    let Some(Effect::Report(report)) = done.iter().find(|e| matches!(e, Effect::Report(_))) else { panic!() };
    assert!(report.early && report.speculative, "{report:?}");
    let waited = report.endpoint_wait_ms.unwrap();
    assert!((299.0..301.0).contains(&waited), "200 ms pause + 100 ms to the endpoint: {waited}");
    assert_eq!(h.dialogue.counters().early_decisions, 1);
}

#[test]
fn a_command_that_may_go_on_waits_for_the_endpoint() {
    for text in ["set the temperature to twenty", "turn on the", "navigate to the station", "set a timer for five"] {
        let mut h = early();
        h.wake();
        let (_, effects) = pause_heard(&mut h, text);
        assert!(effects.is_empty(), "{text}: {effects:?}");
    }
}

#[test]
fn no_early_decision_for_a_yes_or_no_or_when_switched_off() {
    let mut h = early();
    h.wake();
    h.say("stop press one");
    let (_, effects) = pause_heard(&mut h, "yes");
    assert!(effects.is_empty(), "{effects:?}");
    let mut off = Harness::new();
    off.wake();
    let (_, effects) = pause_heard(&mut off, "turn on the kitchen lights");
    assert!(effects.is_empty(), "{effects:?}");
}
