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

/// Wake detector and endpointer on one 16 kHz stream. While an utterance is being collected,
/// further wake detections are not acted upon (the detector keeps running so its history stays
/// continuous).
pub struct FrontEnd {
    wake: Box<dyn WakeDetector>,
    endpointer: Endpointer,
}

impl FrontEnd {
    pub fn new(wake: Box<dyn WakeDetector>, endpointer: Endpointer) -> Self {
        Self { wake, endpointer }
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
                tracing::debug!(wake = %d.wake, sample = d.sample, "wake word while collecting an utterance; ignored");
                continue;
            }
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
        Ok(self.endpointer.listen_now()?.into_iter().map(Event::from).collect())
    }

    /// Starts a new stream (e.g. the next file) without reloading the models.
    pub fn reset(&mut self) -> Result<(), AudioError> {
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
        let mut problems = Vec::new();
        let mut get = |id: &str| match path(id) {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{id}: {e}"));
                std::path::PathBuf::new()
            }
        };
        let melspectrogram = get("oww-melspectrogram");
        let embedding = get("oww-embedding");
        let silero_vad = get("silero-vad");
        let found: Vec<(String, std::path::PathBuf)> =
            wakes.iter().map(|w| (w.clone(), get(&format!("wake-{w}")))).collect();
        if !problems.is_empty() {
            return Err(AudioError::Config(format!("missing models: {}", problems.join("; "))));
        }
        Ok(Self { oww: OwwFiles { melspectrogram, embedding }, wakes: wake_specs(&found, trigger), silero_vad })
    }
}
