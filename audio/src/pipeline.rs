//! Wake word → VAD → endpointing on one stream, and the whole-file convenience on top.

use std::path::Path;

use crate::endpoint::{EndpointConfig, EndpointEvent, Endpointer, Utterance};
use crate::vad::SileroVad;
use crate::wake::{Detection, OpenWakeWord, OwwFiles, TriggerConfig, WakeDetector, WakeSpec};
use crate::wav::read_wav;
use crate::AudioError;

/// What the front end reports, in stream order.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Wake(Detection),
    Utterance(Utterance),
    /// A pause inside speech (see [`EndpointEvent::Pause`]): speech-to-text may start early.
    Pause(Utterance),
    NoSpeech {
        wake_sample: u64,
        end_sample: u64,
    },
}

/// Files and settings of the whole front end.
#[derive(Clone, Debug)]
pub struct FrontEndModels {
    pub oww: OwwFiles,
    pub wakes: Vec<WakeSpec>,
    pub silero_vad: std::path::PathBuf,
}

/// Wake detector and endpointer on one 16 kHz stream. While the command after a wake word is
/// being collected, further detections are the wake word's own tail and are not acted upon (the
/// detector keeps running so its history stays continuous). While a follow-up is being collected
/// ([`FrontEnd::listen_now`]: a yes/no, a session opened over MQTT), a wake word is a new command:
/// the follow-up is abandoned and the wake word reported, so the assistant is never deaf to it.
pub struct FrontEnd {
    wake: Box<dyn WakeDetector>,
    endpointer: Endpointer,
    /// The collection in progress was started by `listen_now`, not by a wake word.
    follow_up: bool,
}

impl FrontEnd {
    pub fn new(wake: Box<dyn WakeDetector>, endpointer: Endpointer) -> Self {
        Self { wake, endpointer, follow_up: false }
    }

    /// openWakeWord + Silero VAD from model files (ONNX Runtime must be initialised).
    pub fn load(models: &FrontEndModels, endpoint: EndpointConfig) -> Result<Self, AudioError> {
        let wake = OpenWakeWord::new(&models.oww, &models.wakes)?;
        let vad = SileroVad::new(&models.silero_vad)?;
        Ok(Self::new(Box::new(wake), Endpointer::new(endpoint, Box::new(vad))?))
    }

    /// Feeds 16 kHz mono audio of any length; returns the events it completes, in order.
    pub fn feed(&mut self, samples: &[f32]) -> Result<Vec<Event>, AudioError> {
        // In pieces of at most 1 s, so that a wake word early in a long block still finds its
        // audio in the endpointer's idle history.
        let mut events = Vec::new();
        for piece in samples.chunks(16_000) {
            events.extend(self.feed_piece(piece)?);
        }
        Ok(events)
    }

    fn feed_piece(&mut self, samples: &[f32]) -> Result<Vec<Event>, AudioError> {
        let detections = self.wake.feed(samples)?;
        let mut events: Vec<Event> = self.endpointer.feed(samples)?.into_iter().map(Event::from).collect();
        for d in detections {
            if self.endpointer.is_active() {
                if !self.follow_up {
                    tracing::debug!(wake = %d.wake, sample = d.sample, "wake word while collecting an utterance; ignored");
                    continue;
                }
                tracing::debug!(wake = %d.wake, sample = d.sample, "wake word during a follow-up: a new command");
                self.endpointer.abandon();
            }
            self.follow_up = false;
            let sample = d.sample;
            events.push(Event::Wake(d));
            events.extend(self.endpointer.wake(sample)?.into_iter().map(Event::from));
        }
        Ok(events)
    }

    /// End of the stream: flushes an utterance or wait in progress.
    pub fn finish(&mut self) -> Vec<Event> {
        self.endpointer.finish().into_iter().map(Event::from).collect()
    }

    /// A wake word (or `listen_now`) has started a command search that has not ended yet.
    pub fn is_listening(&self) -> bool {
        self.endpointer.is_active()
    }

    pub fn wake_names(&self) -> Vec<String> {
        self.wake.wake_names()
    }

    /// Starts listening for a command now, as if a wake word had just been heard (a session
    /// opened over MQTT, or the yes/no follow-up of a risky command); there is no wake-word tail
    /// to skip. The events then come from `feed` as after a wake word.
    pub fn listen_now(&mut self) -> Result<Vec<Event>, AudioError> {
        if !self.endpointer.is_active() {
            self.follow_up = true;
        }
        Ok(self.endpointer.listen_now()?.into_iter().map(Event::from).collect())
    }

    /// Ends the utterance at the pause whose [`Event::Pause`] audio ended at `end_sample` (the
    /// dialogue found its transcript a complete command); see [`Endpointer::end_at_pause`].
    pub fn end_at_pause(&mut self, end_sample: u64) -> Vec<Event> {
        self.endpointer.end_at_pause(end_sample).into_iter().map(Event::from).collect()
    }

    /// Stops collecting a command without an event (the dialogue gave up on it); wake words
    /// count again from here.
    pub fn stop_listening(&mut self) {
        self.endpointer.abandon();
        self.follow_up = false;
    }

    /// Starts a new stream (e.g. the next file) without reloading the models.
    pub fn reset(&mut self) -> Result<(), AudioError> {
        self.follow_up = false;
        self.endpointer.reset();
        self.wake.reset()
    }
}

impl From<EndpointEvent> for Event {
    fn from(e: EndpointEvent) -> Self {
        match e {
            EndpointEvent::Utterance(u) => Event::Utterance(u),
            EndpointEvent::Pause(u) => Event::Pause(u),
            EndpointEvent::NoSpeech { wake_sample, end_sample } => Event::NoSpeech { wake_sample, end_sample },
        }
    }
}

/// Everything found in one recording.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub samples: u64,
    pub detections: Vec<Detection>,
    pub utterances: Vec<Utterance>,
    /// Wake samples after which no speech came.
    pub no_speech: Vec<u64>,
}

/// Runs 16 kHz samples through the front end as a stream (in 1 s blocks) and collects the events.
pub fn run_samples(front: &mut FrontEnd, samples: &[f32]) -> Result<Report, AudioError> {
    let mut report = Report { samples: samples.len() as u64, ..Default::default() };
    let mut events = Vec::new();
    for block in samples.chunks(16_000) {
        events.extend(front.feed(block)?);
    }
    events.extend(front.finish());
    for e in events {
        match e {
            Event::Wake(d) => report.detections.push(d),
            Event::Utterance(u) => report.utterances.push(u),
            Event::NoSpeech { wake_sample, .. } => report.no_speech.push(wake_sample),
            Event::Pause(_) => {}
        }
    }
    Ok(report)
}

/// Reads a WAV file (any format) and runs it through a fresh front end.
pub fn process_file(path: &Path, models: &FrontEndModels, endpoint: EndpointConfig) -> Result<Report, AudioError> {
    let samples = read_wav(path)?;
    let mut front = FrontEnd::load(models, endpoint)?;
    run_samples(&mut front, &samples)
}

/// Wake specs for shipped wake words by name, with one trigger rule for all.
pub fn wake_specs(models: &[(String, std::path::PathBuf)], trigger: &TriggerConfig) -> Vec<WakeSpec> {
    models
        .iter()
        .map(|(name, path)| WakeSpec { name: name.clone(), model: path.clone(), trigger: trigger.clone() })
        .collect()
}

/// Model id of ONNX Runtime in the store.
pub const ONNXRUNTIME_ID: &str = "onnxruntime";

impl FrontEndModels {
    /// Model ids needed for these wake words (besides `onnxruntime`).
    pub fn ids(wakes: &[String]) -> Vec<String> {
        let mut ids = vec!["oww-melspectrogram".to_string(), "oww-embedding".to_string(), "silero-vad".to_string()];
        ids.extend(wakes.iter().map(|w| format!("wake-{w}")));
        ids
    }

    /// Locates every file through `path` (e.g. `|id| store.path(id)`), reporting all missing
    /// models at once.
    pub fn resolve<E: std::fmt::Display>(
        wakes: &[String],
        trigger: &TriggerConfig,
        mut path: impl FnMut(&str) -> Result<std::path::PathBuf, E>,
    ) -> Result<Self, AudioError> {
        if wakes.is_empty() {
            return Err(AudioError::Config("no wake word selected".into()));
        }
        let mut problems = sotto_problems::Problems::new();
        let mut get = |id: &str| match path(id) {
            Ok(p) => p,
            Err(e) => {
                problems.add(id, e.to_string());
                std::path::PathBuf::new()
            }
        };
        let melspectrogram = get("oww-melspectrogram");
        let embedding = get("oww-embedding");
        let silero_vad = get("silero-vad");
        let found: Vec<(String, std::path::PathBuf)> =
            wakes.iter().map(|w| (w.clone(), get(&format!("wake-{w}")))).collect();
        problems.into_result(()).map_err(AudioError::MissingModels)?;
        Ok(Self { oww: OwwFiles { melspectrogram, embedding }, wakes: wake_specs(&found, trigger), silero_vad })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vad::Vad;

    const MS: u64 = 16;

    /// Speech where the first sample of a VAD window is 1.0.
    struct MarkerVad;
    impl Vad for MarkerVad {
        fn probability(&mut self, w: &[f32]) -> Result<f32, AudioError> {
            Ok(if w[0] >= 1.0 { 0.9 } else { 0.05 })
        }
        fn reset(&mut self) {}
    }

    /// Fires once at each scripted stream millisecond, as soon as the stream has passed it.
    struct ScriptedWake {
        at_ms: Vec<u64>,
        position: u64,
    }
    impl WakeDetector for ScriptedWake {
        fn feed(&mut self, samples: &[f32]) -> Result<Vec<Detection>, AudioError> {
            let from = self.position;
            self.position += samples.len() as u64;
            let hits = self.at_ms.iter().filter(|&&ms| ms * MS >= from && ms * MS < self.position);
            Ok(hits.map(|&ms| Detection { wake: "hey_jarvis".into(), sample: ms * MS, score: 0.9 }).collect())
        }
        fn reset(&mut self) -> Result<(), AudioError> {
            self.position = 0;
            Ok(())
        }
        fn wake_names(&self) -> Vec<String> {
            vec!["hey_jarvis".into()]
        }
    }

    fn front(wakes_ms: &[u64]) -> FrontEnd {
        let endpointer = Endpointer::new(EndpointConfig::default(), Box::new(MarkerVad)).unwrap();
        FrontEnd::new(Box::new(ScriptedWake { at_ms: wakes_ms.to_vec(), position: 0 }), endpointer)
    }

    fn speech(spans_ms: &[(u64, u64)], len_ms: u64) -> Vec<f32> {
        (0..len_ms * MS)
            .map(|i| if spans_ms.iter().any(|&(a, b)| i >= a * MS && i < b * MS) { 1.0 } else { 0.0 })
            .collect()
    }

    fn feed(front: &mut FrontEnd, audio: &[f32]) -> Vec<Event> {
        let mut events = Vec::new();
        for piece in audio.chunks(1280) {
            events.extend(front.feed(piece).unwrap());
        }
        events.retain(|e| !matches!(e, Event::Pause(_)));
        events
    }

    #[test]
    fn a_wake_word_during_a_follow_up_starts_a_new_command() {
        // Listening for a yes/no from 0; someone says a wake word at 1.0 s and a command after it.
        let mut f = front(&[1000]);
        f.listen_now().unwrap();
        let events = feed(&mut f, &speech(&[(600, 1000), (1300, 2500)], 4000));
        let kinds: Vec<&str> = events
            .iter()
            .map(|e| match e {
                Event::Wake(_) => "wake",
                Event::Utterance(_) => "utterance",
                Event::NoSpeech { .. } => "no speech",
                Event::Pause(_) => "pause",
            })
            .collect();
        assert_eq!(kinds, ["wake", "utterance"]);
        let Event::Utterance(u) = &events[1] else { unreachable!() };
        assert!(u.start_sample >= 1000 * MS, "the command starts after the wake word, not at the abandoned answer");
    }

    #[test]
    fn a_wake_word_tail_during_its_own_command_is_ignored() {
        let mut f = front(&[500, 700]);
        let events = feed(&mut f, &speech(&[(800, 1800)], 3500));
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Wake(_))).count(), 1);
        assert_eq!(events.iter().filter(|e| matches!(e, Event::Utterance(_))).count(), 1);
    }

    #[test]
    fn stop_listening_gives_the_wake_word_back() {
        let mut f = front(&[2000]);
        f.listen_now().unwrap();
        // Endless talk: the dialogue gives up on the answer at 1.5 s.
        let talk = speech(&[(0, 4000)], 4000);
        let split = (1500 * MS) as usize;
        let early = feed(&mut f, &talk[..split]);
        assert!(early.is_empty());
        f.stop_listening();
        assert!(!f.is_listening());
        let later = feed(&mut f, &talk[split..]);
        assert!(matches!(later.first(), Some(Event::Wake(_))), "{later:?}");
    }
}
