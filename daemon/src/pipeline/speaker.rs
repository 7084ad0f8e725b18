//! The loudspeaker: one thread owns the voice and speaks one text at a time, sentence by sentence
//! as they are synthesised (the first audio comes after the first sentence), to the output device
//! or to a WAV file per text (`tts.wav_dir`). Each text's end is reported over a bounded channel
//! of [`SPEAK_QUEUE`] slots.
//!
//! The dialogue never asks for a second text before the first has ended, so the queue of
//! [`SPEAK_QUEUE`] texts is never full in practice; if it were, the text is not spoken and its
//! end is reported at once as failed, so nothing waits for it.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::mpsc as std_mpsc;
use std::time::Instant;

use sotto::dialogue::Speech;
use sotto_tts::Voice;
use tokio::sync::mpsc;

/// Texts waiting for the loudspeaker, and ends waiting for the session loop.
pub const SPEAK_QUEUE: usize = 4;

/// Where speech goes.
#[derive(Debug, Clone)]
pub enum Output {
    /// An output device by name (empty: the system default).
    Device(String),
    /// One WAV file per text in this directory, named by sequence number and speech id. With
    /// `paced`, the text ends only after as long as it would take to play (live input: the
    /// microphone keeps running meanwhile, as with a loudspeaker); file input needs no pacing.
    WavDir { dir: PathBuf, paced: bool },
}

/// One text's end.
#[derive(Debug)]
pub struct Spoken {
    pub speech: Speech,
    /// Audio played (or written), at 16 kHz: how long the microphone heard Sotto.
    pub samples: u64,
    pub wav: Option<PathBuf>,
    pub first_audio_ms: f64,
    pub error: Option<String>,
}

pub struct Speaker {
    jobs: std_mpsc::SyncSender<Speech>,
}

impl Speaker {
    pub fn spawn(mut voice: Voice, output: Output, done: mpsc::Sender<Spoken>) -> std::io::Result<Speaker> {
        let (jobs, queue) = std_mpsc::sync_channel::<Speech>(SPEAK_QUEUE);
        std::thread::Builder::new().name("sotto-speaker".into()).spawn(move || {
            let mut sequence = 0u32;
            for speech in queue {
                sequence += 1;
                let spoken = speak(&mut voice, &output, speech, sequence);
                if done.blocking_send(spoken).is_err() {
                    return;
                }
            }
        })?;
        Ok(Speaker { jobs })
    }

    /// Queues `speech`; gives it back when the queue is full or the thread has ended.
    pub fn speak(&self, speech: Speech) -> Result<(), Speech> {
        self.jobs.try_send(speech).map_err(|e| match e {
            std_mpsc::TrySendError::Full(s) | std_mpsc::TrySendError::Disconnected(s) => s,
        })
    }
}

fn speak(voice: &mut Voice, output: &Output, speech: Speech, sequence: u32) -> Spoken {
    let started = Instant::now();
    let rate = voice.sample_rate();
    let mut spoken = Spoken { speech, samples: 0, wav: None, first_audio_ms: 0.0, error: None };
    let checked = sotto_tts::check_text(&spoken.speech.text).map_err(|e| e.to_string());
    let result = checked.and_then(|()| match output {
        Output::Device(device) => play(voice, device, &spoken.speech.text),
        Output::WavDir { dir, paced } => {
            let path = dir.join(format!("{sequence:03}-{}.wav", spoken.speech.id));
            let written = voice.synthesize(&spoken.speech.text).map_err(|e| e.to_string()).and_then(|samples| {
                sotto_tts::wav::write_wav(&path, &samples, rate).map_err(|e| e.to_string())?;
                Ok((samples.len(), 0.0))
            });
            if let Ok((samples, _)) = written {
                spoken.wav = Some(path);
                if *paced {
                    let playing = std::time::Duration::from_secs_f64(samples as f64 / rate as f64);
                    std::thread::sleep(playing.saturating_sub(started.elapsed()));
                }
            }
            written
        }
    });
    match result {
        Ok((samples, first_audio_ms)) => {
            spoken.samples = samples as u64 * 16_000 / rate as u64;
            spoken.first_audio_ms = first_audio_ms;
        }
        Err(error) => spoken.error = Some(error),
    }
    tracing::debug!(id = %spoken.speech.id, ms = started.elapsed().as_millis() as u64, seconds = spoken.samples as f64 / 16e3,
        error = ?spoken.error, "speaker done");
    spoken
}

/// Plays `text` as it is synthesised; returns the samples played (at the voice's rate) and the
/// time to the first audio.
fn play(voice: &mut Voice, device: &str, text: &str) -> Result<(usize, f64), String> {
    let mut playback = sotto_audio::Playback::open(device, voice.sample_rate())
        .map_err(|e| format!("tts.device: cannot play on {device:?}: {e}"))?;
    let mut failure = None;
    let report = voice
        .speak(text, |chunk| match playback.write(chunk) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e.to_string());
                ControlFlow::Break(())
            }
        })
        .map_err(|e| e.to_string())?;
    if let Some(e) = failure {
        return Err(format!("playing: {e}"));
    }
    playback.finish().map_err(|e| format!("playing: {e}"))?;
    Ok((report.samples, report.first_audio.as_secs_f64() * 1000.0))
}
