//! After a wake word: find the command's speech with the VAD and cut it out.
//!
//! States: idle → (wake) wake tail → waiting for speech → in speech → utterance, or → no speech.
//! The wake tail skips the end of the wake word itself when the detector fires while it is still
//! being spoken; speech that simply goes on (no pause after the wake word) becomes the command.

use std::collections::VecDeque;

use sotto_problems::Problems;

use crate::vad::{Vad, VAD_WINDOW};
use crate::AudioError;

const MS: u64 = 16; // samples per millisecond at 16 kHz

/// Timing of endpointing; all durations in milliseconds.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EndpointConfig {
    /// Speech probability at which speech starts.
    pub speech_threshold: f32,
    /// Below this probability, speech counts as paused (hysteresis under `speech_threshold`).
    pub silence_threshold: f32,
    /// Audio kept before the detected start of speech, so a soft first sound is not cut.
    pub pre_roll_ms: u32,
    /// Audio kept after the last speech window.
    pub post_roll_ms: u32,
    /// Silence that ends the utterance.
    pub trailing_silence_ms: u32,
    /// Speech shorter than this (a click, a cough) does not start an utterance.
    pub min_speech_ms: u32,
    /// Longest utterance; longer speech is cut here.
    pub max_utterance_ms: u32,
    /// Without speech this long after the wake word, go back to idle.
    pub no_speech_timeout_ms: u32,
    /// Speech still going on at the detection that stops within this time is the wake word's end.
    pub wake_tail_ms: u32,
    /// After this much silence inside an utterance, report a [`EndpointEvent::Pause`] with the
    /// utterance as it would be if it ended there, so speech-to-text can start while the rest of
    /// the trailing silence is still being waited for. 0 turns it off.
    pub speculate_after_ms: u32,
    /// Least silence after which the utterance may be ended early, when the dialogue finds the
    /// transcript of the audio so far a complete command ([`Endpointer::end_at_pause`]). 0 turns
    /// early decisions off, and so does `speculate_after_ms = 0` (the transcript is the speculative
    /// one); otherwise at least `speculate_after_ms` and less than `trailing_silence_ms`.
    pub early_after_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            speech_threshold: 0.5,
            silence_threshold: 0.35,
            pre_roll_ms: 64,
            post_roll_ms: 0,
            trailing_silence_ms: 700,
            min_speech_ms: 90,
            max_utterance_ms: 10_000,
            no_speech_timeout_ms: 4_000,
            wake_tail_ms: 400,
            speculate_after_ms: 200,
            early_after_ms: 250,
        }
    }
}

impl EndpointConfig {
    /// Every problem, each with its key path under `prefix`.
    pub fn problems(&self, prefix: &str) -> Problems {
        let mut p = Problems::new();
        let key = |field: &str| format!("{prefix}.{field}");
        if !(self.speech_threshold > 0.0 && self.speech_threshold < 1.0) {
            p.add(key("speech_threshold"), format!("{} is not in (0, 1)", self.speech_threshold));
        }
        if !(self.silence_threshold > 0.0 && self.silence_threshold <= self.speech_threshold) {
            p.add(
                key("silence_threshold"),
                format!("{} is not in (0, speech_threshold = {}]", self.silence_threshold, self.speech_threshold),
            );
        }
        if self.trailing_silence_ms < 100 {
            p.add(key("trailing_silence_ms"), format!("{} is under 100", self.trailing_silence_ms));
        }
        if self.max_utterance_ms < 1000 || self.max_utterance_ms > 60_000 {
            p.add(key("max_utterance_ms"), format!("{} is not in 1000..=60000", self.max_utterance_ms));
        }
        if self.no_speech_timeout_ms < 500 || self.no_speech_timeout_ms > 60_000 {
            p.add(key("no_speech_timeout_ms"), format!("{} is not in 500..=60000", self.no_speech_timeout_ms));
        }
        if self.speculate_after_ms != 0 && self.speculate_after_ms >= self.trailing_silence_ms {
            p.add(
                key("speculate_after_ms"),
                format!(
                    "{} must be 0 (off) or less than trailing_silence_ms = {}",
                    self.speculate_after_ms, self.trailing_silence_ms
                ),
            );
        }
        // Without speculation there is no transcript at a pause, so no early decision either.
        if self.early_after_ms != 0
            && self.speculate_after_ms != 0
            && (self.early_after_ms < self.speculate_after_ms || self.early_after_ms >= self.trailing_silence_ms)
        {
            p.add(
                key("early_after_ms"),
                format!(
                    "{} must be 0 (off) or in speculate_after_ms = {} ..< trailing_silence_ms = {}",
                    self.early_after_ms, self.speculate_after_ms, self.trailing_silence_ms
                ),
            );
        }
        for (field, ms) in [("pre_roll_ms", self.pre_roll_ms), ("post_roll_ms", self.post_roll_ms)] {
            if ms > 1000 {
                p.add(key(field), format!("{ms} is over 1000"));
            }
        }
        p
    }
}

/// One command to transcribe.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// 16 kHz mono samples from `start_sample` to `end_sample`.
    pub samples: Vec<f32>,
    pub start_sample: u64,
    pub end_sample: u64,
    /// The utterance hit `max_utterance_ms` and was cut.
    pub truncated: bool,
}

/// What endpointing produced for one wake word.
#[derive(Clone, Debug, PartialEq)]
pub enum EndpointEvent {
    Utterance(Utterance),
    /// Speech has paused for `speculate_after_ms`: the utterance as it would be if it ended now.
    /// At most one per pause; the `Utterance` that follows is identical (same start and end
    /// samples) unless speech resumed in between.
    Pause(Utterance),
    /// No speech within the timeout after the wake word at `wake_sample`.
    NoSpeech {
        wake_sample: u64,
        end_sample: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    Idle,
    WakeTail { wake: u64 },
    Waiting { wake: u64 },
    Speech { wake: u64, start: u64, last_speech: u64 },
}

/// The endpointing state machine; owns the VAD and the recent audio.
pub struct Endpointer {
    cfg: EndpointConfig,
    vad: Box<dyn Vad>,
    state: State,
    /// Recent audio; `base` is the stream index of its first sample.
    audio: VecDeque<f32>,
    base: u64,
    /// Next VAD window starts here (stream index) while active.
    cursor: u64,
    /// `last_speech` of the pause already reported (so a pause is reported once) and the stream
    /// position it was reported at (so an early end cuts the same utterance).
    pause_reported: Option<(u64, u64)>,
    /// The dialogue asked to end the utterance at the pause with this `last_speech` once the
    /// silence reaches `early_after_ms`.
    end_early: Option<u64>,
}

/// Idle audio kept so that a wake detection that lags the stream can still start from its sample.
const IDLE_KEEP: u64 = 4 * 16_000;

impl Endpointer {
    pub fn new(cfg: EndpointConfig, vad: Box<dyn Vad>) -> Result<Self, AudioError> {
        cfg.problems("endpoint").into_result(()).map_err(AudioError::Settings)?;
        Ok(Self {
            cfg,
            vad,
            state: State::Idle,
            audio: VecDeque::new(),
            base: 0,
            cursor: 0,
            pause_reported: None,
            end_early: None,
        })
    }

    /// Stream index just past the last sample fed.
    pub fn position(&self) -> u64 {
        self.base + self.audio.len() as u64
    }

    pub fn is_active(&self) -> bool {
        self.state != State::Idle
    }

    /// Appends stream audio; while active, advances the state machine over it.
    pub fn feed(&mut self, samples: &[f32]) -> Result<Vec<EndpointEvent>, AudioError> {
        self.audio.extend(samples);
        let events = self.advance()?;
        self.trim();
        Ok(events)
    }

    /// A wake word ended at stream sample `sample`: look for the command from there.
    /// Ignored while an utterance is already being collected.
    pub fn wake(&mut self, sample: u64) -> Result<Vec<EndpointEvent>, AudioError> {
        if self.is_active() {
            return Ok(Vec::new());
        }
        let sample = sample.clamp(self.base, self.position());
        self.vad.reset();
        self.state = State::WakeTail { wake: sample };
        self.cursor = sample;
        self.advance()
    }

    /// Listens for a command from the current position without a wake word (a follow-up
    /// question): no wake-word tail to skip. Ignored while already active.
    pub fn listen_now(&mut self) -> Result<Vec<EndpointEvent>, AudioError> {
        if self.is_active() {
            return Ok(Vec::new());
        }
        self.vad.reset();
        let at = self.position();
        self.state = State::Waiting { wake: at };
        self.cursor = at;
        self.advance()
    }

    /// Ends the utterance early at the pause whose [`EndpointEvent::Pause`] ended at `end_sample`:
    /// the dialogue found the words so far a complete command. The utterance is the pause's (same
    /// samples), now if the silence has lasted `early_after_ms`, else as soon as it has; nothing
    /// if speech resumed since that pause (the full trailing silence then decides), or early
    /// decisions are off.
    pub fn end_at_pause(&mut self, end_sample: u64) -> Vec<EndpointEvent> {
        let (State::Speech { wake, start, last_speech }, Some((reported, limit))) = (self.state, self.pause_reported)
        else {
            return Vec::new();
        };
        if self.cfg.early_after_ms == 0 || reported != last_speech {
            return Vec::new();
        }
        if self.cut(wake, start, last_speech, limit, false).end_sample != end_sample {
            return Vec::new();
        }
        if self.cursor - last_speech >= self.cfg.early_after_ms as u64 * MS {
            tracing::debug!(start, last_speech, "utterance ended early at a pause");
            return vec![self.utterance(wake, start, last_speech, limit, false)];
        }
        self.end_early = Some(last_speech);
        Vec::new()
    }

    /// Stops collecting without an event (the dialogue moved on: its question timed out, or a
    /// wake word started a new command); the recent audio stays, so a wake detection that lags
    /// the stream can still start from its sample.
    pub fn abandon(&mut self) {
        self.state = State::Idle;
        self.pause_reported = None;
        self.end_early = None;
    }

    /// Starts a new stream at sample 0, dropping any session in progress.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.pause_reported = None;
        self.end_early = None;
        self.audio.clear();
        self.base = 0;
        self.cursor = 0;
        self.vad.reset();
    }

    /// End of the stream: an utterance in progress ends here; a wait ends without speech.
    pub fn finish(&mut self) -> Vec<EndpointEvent> {
        let end = self.position();
        let event = match self.state {
            State::Idle => None,
            State::WakeTail { wake } | State::Waiting { wake } => {
                Some(EndpointEvent::NoSpeech { wake_sample: wake, end_sample: end })
            }
            State::Speech { wake, start, last_speech } => {
                if last_speech - start >= self.cfg.min_speech_ms as u64 * MS {
                    Some(self.utterance(wake, start, last_speech, end, false))
                } else {
                    Some(EndpointEvent::NoSpeech { wake_sample: wake, end_sample: end })
                }
            }
        };
        self.state = State::Idle;
        self.pause_reported = None;
        self.end_early = None;
        event.into_iter().collect()
    }

    fn advance(&mut self) -> Result<Vec<EndpointEvent>, AudioError> {
        let mut events = Vec::new();
        let win = VAD_WINDOW as u64;
        while self.state != State::Idle && self.cursor + win <= self.position() {
            let from = (self.cursor - self.base) as usize;
            let window: Vec<f32> = self.audio.range(from..from + VAD_WINDOW).copied().collect();
            let p = self.vad.probability(&window)?;
            let (w_start, w_end) = (self.cursor, self.cursor + win);
            self.cursor = w_end;
            if let Some(e) = self.step(p, w_start, w_end) {
                events.push(e);
            }
        }
        Ok(events)
    }

    fn step(&mut self, p: f32, w_start: u64, w_end: u64) -> Option<EndpointEvent> {
        let c = &self.cfg;
        let ms = |v: u32| v as u64 * MS;
        match self.state {
            State::Idle => None,
            State::WakeTail { wake } => {
                if p < c.silence_threshold {
                    self.state = State::Waiting { wake };
                } else if w_end - wake >= ms(c.wake_tail_ms) {
                    // No pause after the wake word: the speech going on is the command.
                    tracing::debug!(wake, "speech continues after the wake word");
                    self.state = State::Speech { wake, start: wake, last_speech: w_end };
                }
                None
            }
            State::Waiting { wake } => {
                if p >= c.speech_threshold {
                    self.state = State::Speech { wake, start: w_start, last_speech: w_end };
                    None
                } else if w_end - wake >= ms(c.no_speech_timeout_ms) {
                    self.state = State::Idle;
                    tracing::debug!(wake, end = w_end, "no speech after the wake word");
                    Some(EndpointEvent::NoSpeech { wake_sample: wake, end_sample: w_end })
                } else {
                    None
                }
            }
            State::Speech { wake, start, last_speech } => {
                let last_speech = if p >= c.silence_threshold { w_end } else { last_speech };
                self.state = State::Speech { wake, start, last_speech };
                if w_end - start >= ms(c.max_utterance_ms) {
                    return Some(self.utterance(wake, start, w_end, w_end, true));
                }
                if w_end - last_speech >= ms(c.trailing_silence_ms) {
                    if last_speech - start < ms(c.min_speech_ms) {
                        // A blip, not a command: keep waiting (the timeout still counts from the wake).
                        self.state = State::Waiting { wake };
                        return if w_end - wake >= ms(c.no_speech_timeout_ms) {
                            self.state = State::Idle;
                            Some(EndpointEvent::NoSpeech { wake_sample: wake, end_sample: w_end })
                        } else {
                            None
                        };
                    }
                    return Some(self.utterance(wake, start, last_speech, w_end, false));
                }
                let paused = w_end - last_speech;
                if let Some(at) = self.end_early {
                    if at != last_speech {
                        // Speech resumed: the full trailing silence decides after all.
                        self.end_early = None;
                    } else if paused >= ms(c.early_after_ms) {
                        let limit = self.pause_reported.map_or(w_end, |(_, limit)| limit);
                        tracing::debug!(start, last_speech, "utterance ended early at a pause");
                        return Some(self.utterance(wake, start, last_speech, limit, false));
                    }
                }
                if c.speculate_after_ms > 0
                    && paused >= ms(c.speculate_after_ms)
                    && last_speech - start >= ms(c.min_speech_ms)
                    && self.pause_reported.map(|(at, _)| at) != Some(last_speech)
                {
                    self.pause_reported = Some((last_speech, w_end));
                    tracing::trace!(start, last_speech, "pause: speculative utterance");
                    return Some(EndpointEvent::Pause(self.cut(wake, start, last_speech, w_end, false)));
                }
                None
            }
        }
    }

    fn utterance(&mut self, wake: u64, start: u64, last_speech: u64, limit: u64, truncated: bool) -> EndpointEvent {
        let utterance = self.cut(wake, start, last_speech, limit, truncated);
        self.state = State::Idle;
        self.pause_reported = None;
        self.end_early = None;
        tracing::debug!(start = utterance.start_sample, end = utterance.end_sample, truncated, "utterance");
        EndpointEvent::Utterance(utterance)
    }

    /// The utterance from `start` (less the pre-roll) to `last_speech` (plus the post-roll).
    fn cut(&self, wake: u64, start: u64, last_speech: u64, limit: u64, truncated: bool) -> Utterance {
        let start = start.saturating_sub(self.cfg.pre_roll_ms as u64 * MS).max(wake).max(self.base);
        let end = (last_speech + self.cfg.post_roll_ms as u64 * MS).min(limit).min(self.position());
        let samples = self.audio.range((start - self.base) as usize..(end - self.base) as usize).copied().collect();
        Utterance { samples, start_sample: start, end_sample: end, truncated }
    }

    fn trim(&mut self) {
        let keep_from = match self.state {
            State::Idle => self.position().saturating_sub(IDLE_KEEP),
            State::WakeTail { wake } | State::Waiting { wake } | State::Speech { wake, .. } => wake,
        };
        while self.base < keep_from && !self.audio.is_empty() {
            let n = ((keep_from - self.base) as usize).min(self.audio.len());
            self.audio.drain(..n);
            self.base += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A VAD that reads "speech" from the sample values: windows whose first sample is 1.0.
    struct MarkerVad;
    impl Vad for MarkerVad {
        fn probability(&mut self, w: &[f32]) -> Result<f32, AudioError> {
            Ok(if w[0] >= 1.0 { 0.9 } else { 0.05 })
        }
        fn reset(&mut self) {}
    }

    fn signal(spans: &[(u64, u64)], len_ms: u64) -> Vec<f32> {
        (0..len_ms * MS)
            .map(|i| if spans.iter().any(|&(a, b)| i >= a * MS && i < b * MS) { 1.0 } else { 0.0 })
            .collect()
    }

    /// The events pauses aside.
    fn run(cfg: EndpointConfig, audio: &[f32], wake_ms: u64) -> Vec<EndpointEvent> {
        let mut events = run_all(cfg, audio, wake_ms);
        events.retain(|e| !matches!(e, EndpointEvent::Pause(_)));
        events
    }

    /// Every event, pauses included.
    fn run_all(cfg: EndpointConfig, audio: &[f32], wake_ms: u64) -> Vec<EndpointEvent> {
        let mut ep = Endpointer::new(cfg, Box::new(MarkerVad)).unwrap();
        let split = (wake_ms * MS) as usize;
        let mut events = ep.feed(&audio[..split]).unwrap();
        events.extend(ep.wake(wake_ms * MS).unwrap());
        for chunk in audio[split..].chunks(700) {
            events.extend(ep.feed(chunk).unwrap());
        }
        events.extend(ep.finish());
        events
    }

    #[test]
    fn reports_a_pause_once_with_the_utterance_that_follows() {
        let cfg = EndpointConfig::default();
        let audio = signal(&[(1500, 3000)], 5000);
        match &run_all(cfg, &audio, 1000)[..] {
            [EndpointEvent::Pause(p), EndpointEvent::Utterance(u)] => assert_eq!(p, u),
            other => panic!("expected a pause then the same utterance, got {other:?}"),
        }
    }

    #[test]
    fn a_pause_inside_the_command_is_superseded_by_the_longer_utterance() {
        // 300 ms of silence inside the command: longer than speculate_after_ms, shorter than
        // trailing_silence_ms.
        let audio = signal(&[(1500, 2500), (2800, 3500)], 6000);
        let events = run_all(EndpointConfig::default(), &audio, 1000);
        let pauses: Vec<&Utterance> =
            events.iter().filter_map(|e| if let EndpointEvent::Pause(p) = e { Some(p) } else { None }).collect();
        let EndpointEvent::Utterance(u) = events.last().unwrap() else { panic!("{events:?}") };
        assert_eq!(pauses.len(), 2, "{events:?}");
        assert!(pauses[0].end_sample < 2600 * MS && pauses[0].start_sample == u.start_sample);
        assert_eq!(pauses[1], u);
    }

    /// Feeds `audio` after a wake at `wake_ms`; at the first pause, asks to end early there.
    /// Returns the events and the stream position (ms) at which the utterance came.
    fn run_ending_early(cfg: EndpointConfig, audio: &[f32], wake_ms: u64) -> (Vec<EndpointEvent>, Option<u64>) {
        let mut ep = Endpointer::new(cfg, Box::new(MarkerVad)).unwrap();
        let split = (wake_ms * MS) as usize;
        let mut events = ep.feed(&audio[..split]).unwrap();
        events.extend(ep.wake(wake_ms * MS).unwrap());
        let (mut asked, mut came) = (false, None);
        for chunk in audio[split..].chunks(160) {
            events.extend(ep.feed(chunk).unwrap());
            if let (false, Some(EndpointEvent::Pause(p))) = (asked, events.last()) {
                asked = true;
                let end = p.end_sample;
                events.extend(ep.end_at_pause(end));
            }
            if came.is_none() && events.iter().any(|e| matches!(e, EndpointEvent::Utterance(_))) {
                came = Some(ep.position() / MS);
            }
        }
        events.extend(ep.finish());
        (events, came)
    }

    #[test]
    fn an_early_end_cuts_the_pauses_utterance_once_the_pause_is_long_enough() {
        let audio = signal(&[(1500, 3000)], 5000);
        let (events, came) = run_ending_early(EndpointConfig::default(), &audio, 1000);
        match &events[..] {
            [EndpointEvent::Pause(p), EndpointEvent::Utterance(u)] => assert_eq!(p, u),
            other => panic!("expected the pause's utterance, got {other:?}"),
        }
        let came = came.unwrap();
        assert!((3250..3300).contains(&came), "ended after 250 ms of silence, at {came} ms");
        let off = EndpointConfig { early_after_ms: 0, ..Default::default() };
        let (waited, waited_until) = run_ending_early(off, &audio, 1000);
        assert_eq!(events, waited, "the same utterance either way; only when it comes differs");
        assert!(waited_until.unwrap() >= 3700, "{waited_until:?}");
    }

    #[test]
    fn speech_that_resumes_before_the_early_end_is_not_cut() {
        // A 220 ms hesitation: the pause is reported at 200 ms, the early end would come at 250.
        let audio = signal(&[(1500, 2500), (2720, 3500)], 6000);
        let (events, _) = run_ending_early(EndpointConfig::default(), &audio, 1000);
        let utterances: Vec<&Utterance> =
            events.iter().filter_map(|e| if let EndpointEvent::Utterance(u) = e { Some(u) } else { None }).collect();
        assert_eq!(utterances.len(), 1, "{events:?}");
        assert!(utterances[0].end_sample >= 3500 * MS, "the whole command: {:?}", utterances[0].end_sample / MS);
    }

    #[test]
    fn no_pause_when_speculation_is_off() {
        let cfg = EndpointConfig { speculate_after_ms: 0, early_after_ms: 0, ..Default::default() };
        let audio = signal(&[(1500, 3000)], 5000);
        let events = run_all(cfg, &audio, 1000);
        assert!(matches!(&events[..], [EndpointEvent::Utterance(_)]), "{events:?}");
    }

    #[test]
    fn an_early_end_must_fall_between_the_speculation_and_the_endpoint() {
        for early in [100, 700] {
            let cfg = EndpointConfig { early_after_ms: early, ..Default::default() };
            let problems = cfg.problems("endpoint");
            assert!(problems.iter().any(|p| p.key == "endpoint.early_after_ms"), "{early}: {problems}");
        }
        let off = EndpointConfig { speculate_after_ms: 0, ..Default::default() };
        assert!(off.problems("endpoint").is_empty(), "no speculation: early decisions are off, not an error");
    }

    #[test]
    fn speculation_must_come_before_the_endpoint() {
        let cfg = EndpointConfig { speculate_after_ms: 700, ..Default::default() };
        let problems = cfg.problems("endpoint");
        assert!(
            problems.iter().any(|p| p.key == "endpoint.speculate_after_ms" && p.message.starts_with("700")),
            "{problems}"
        );
    }

    /// The one utterance among `events` (pauses aside).
    fn only_utterance(events: &[EndpointEvent]) -> &Utterance {
        let rest: Vec<&EndpointEvent> = events.iter().filter(|e| !matches!(e, EndpointEvent::Pause(_))).collect();
        match rest[..] {
            [EndpointEvent::Utterance(u)] => u,
            _ => panic!("expected one utterance, got {} events", rest.len()),
        }
    }

    #[test]
    fn cuts_the_command_after_a_pause() {
        let cfg = EndpointConfig::default();
        let audio = signal(&[(500, 1000), (1500, 3000)], 5000);
        let ev = run(cfg.clone(), &audio, 1000);
        let u = only_utterance(&ev);
        // Start: first speech window at/after 1500 ms (windows are 32 ms) minus the pre-roll.
        let first_window = (1000 * MS..).step_by(VAD_WINDOW).find(|&s| s >= 1500 * MS).unwrap();
        assert_eq!(u.start_sample, first_window - cfg.pre_roll_ms as u64 * MS);
        assert!((u.end_sample as i64 - (3000 * MS) as i64).abs() <= (VAD_WINDOW as i64 + 32 * MS as i64));
        assert_eq!(u.samples.len() as u64, u.end_sample - u.start_sample);
        assert!(!u.truncated);
    }

    #[test]
    fn skips_the_tail_of_the_wake_word() {
        // Wake fires at 900 ms while the wake word lasts until 1000 ms.
        let audio = signal(&[(400, 1000), (1400, 2500)], 5000);
        let u = only_utterance(&run(EndpointConfig::default(), &audio, 900)).clone();
        assert!(u.start_sample >= 1300 * MS, "start {}", u.start_sample / MS);
    }

    #[test]
    fn speech_without_pause_is_the_command() {
        let audio = signal(&[(400, 3000)], 5000);
        let u = only_utterance(&run(EndpointConfig::default(), &audio, 900)).clone();
        assert_eq!(u.start_sample, 900 * MS);
    }

    #[test]
    fn times_out_without_speech() {
        let cfg = EndpointConfig { no_speech_timeout_ms: 1000, ..Default::default() };
        let audio = signal(&[(100, 600)], 4000);
        match &run(cfg, &audio, 700)[..] {
            [EndpointEvent::NoSpeech { wake_sample, end_sample }] => {
                assert_eq!(*wake_sample, 700 * MS);
                assert!(*end_sample >= 1700 * MS && *end_sample < 1700 * MS + VAD_WINDOW as u64);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cuts_at_max_length_and_ignores_blips() {
        let cfg = EndpointConfig { max_utterance_ms: 2000, ..Default::default() };
        // A 40 ms blip first (shorter than min_speech), then endless speech.
        let audio = signal(&[(1200, 1240), (2000, 9000)], 9000);
        let u = only_utterance(&run(cfg, &audio, 1000)).clone();
        assert!(u.truncated);
        assert!(u.start_sample >= 1900 * MS);
        assert!(u.end_sample - (u.start_sample + 64 * MS) <= 2000 * MS + VAD_WINDOW as u64);
    }

    #[test]
    fn listen_now_takes_speech_right_away() {
        let mut ep = Endpointer::new(EndpointConfig::default(), Box::new(MarkerVad)).unwrap();
        let audio = signal(&[(1000, 2000)], 4000);
        let split = (900 * MS) as usize;
        let mut events = ep.feed(&audio[..split]).unwrap();
        events.extend(ep.listen_now().unwrap());
        events.extend(ep.feed(&audio[split..]).unwrap());
        let u = only_utterance(&events);
        assert!(u.start_sample >= 900 * MS && u.start_sample <= 1000 * MS, "{}", u.start_sample / MS);
    }

    #[test]
    fn rejects_bad_config_naming_every_key() {
        let cfg = EndpointConfig { speech_threshold: 1.5, trailing_silence_ms: 10, ..Default::default() };
        let err = Endpointer::new(cfg, Box::new(MarkerVad)).err().unwrap().to_string();
        assert!(err.contains("endpoint.speech_threshold") && err.contains("endpoint.trailing_silence_ms"), "{err}");
    }
}
