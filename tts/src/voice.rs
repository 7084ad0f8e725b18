//! A loaded Piper voice: text → sentences of phonemes → one model run per sentence, each
//! sentence's audio handed over as soon as it exists.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::TensorRef;
use sotto_models::{Role, Store};

use crate::config::VoiceConfig;
use crate::espeak::{self, Sentence};
use crate::TtsError;

/// The voice `sotto say` and the daemon use unless told otherwise.
pub const DEFAULT_VOICE: &str = "voice-joe-medium";

/// A voice is two store models: `<id>` (the `.onnx`) and `<id>-config` (its `.onnx.json`).
pub const CONFIG_SUFFIX: &str = "-config";

/// Longest text accepted in one call: about four minutes of speech. Longer texts are refused with
/// an error rather than streamed, because a spoken answer that long is a mistake (a file piped in,
/// a runaway template), and the loudspeaker would be busy and deaf to the wake word for minutes.
pub const MAX_TEXT_CHARS: usize = 4000;

/// A sentence with more phonemes than this (a run-on without punctuation) is cut at a word
/// boundary: the model's working memory grows with the sentence (about 20 MB per second of audio
/// for a medium voice, on top of the ~110 MB of the loaded voice), and the first audio would wait.
/// 250 phonemes are about 13 s of speech.
pub const MAX_SENTENCE_PHONEMES: usize = 250;

/// Peak level of each sentence after normalisation (Piper normalises every chunk to its peak);
/// the headroom keeps the output resampler's overshoot from clipping.
const PEAK: f32 = 0.9;

/// How a voice is run.
#[derive(Debug, Clone)]
pub struct VoiceOptions {
    /// espeak-ng's data directory (the one holding `phontab`).
    pub espeak_data: PathBuf,
    /// ONNX Runtime intra-op threads for the voice model.
    pub threads: usize,
    /// Silence before every sentence after the first.
    pub sentence_silence_s: f32,
}

impl Default for VoiceOptions {
    /// `$SOTTO_ESPEAK_DATA` or the system's espeak-ng data; one thread; 0.2 s between sentences.
    fn default() -> Self {
        let espeak_data = std::env::var_os("SOTTO_ESPEAK_DATA")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(espeak::default_data_dir);
        VoiceOptions { espeak_data, threads: 1, sentence_silence_s: 0.2 }
    }
}

/// What one [`Voice::speak`] call did.
#[derive(Debug, Clone, Default)]
pub struct SpeakReport {
    pub sentences: usize,
    /// Samples handed to the callback (silences included), at the voice's rate.
    pub samples: usize,
    /// From the call to the first sample handed over.
    pub first_audio: Duration,
    /// Time spent in the model, all sentences.
    pub synthesis: Duration,
    /// True when the callback asked to stop before the end.
    pub stopped: bool,
}

/// A Piper voice ready to speak. Holds an ONNX session: load once, keep it, and call it from a
/// blocking thread (it is `Send`; `speak` takes `&mut self`, so share it behind a `Mutex`).
pub struct Voice {
    id: String,
    config: VoiceConfig,
    session: Session,
    output: String,
    has_speaker_input: bool,
    espeak_data: PathBuf,
    silence: usize,
}

/// The voice ids of the store (role `tts` with a `-config` companion), in manifest order.
pub fn voice_ids(store: &Store) -> Vec<String> {
    let m = store.manifest();
    m.ids()
        .into_iter()
        .filter(|id| !id.ends_with(CONFIG_SUFFIX))
        .filter(|id| m.entry(id).is_some_and(|e| e.role == Role::Tts))
        .filter(|id| m.entry(&format!("{id}{CONFIG_SUFFIX}")).is_some())
        .map(str::to_string)
        .collect()
}

/// The checks every text passes before synthesis: not empty, at most [`MAX_TEXT_CHARS`].
pub fn check_text(text: &str) -> Result<(), TtsError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(TtsError::TextTooLong { chars, limit: MAX_TEXT_CHARS });
    }
    if text.trim().is_empty() {
        return Err(TtsError::EmptyText);
    }
    Ok(())
}

impl Voice {
    /// Loads voice `id` from the model store, initialising the process's ONNX Runtime from the
    /// store's `onnxruntime` model if nothing did before (same library: a no-op).
    pub fn from_store(store: &Store, id: &str, opts: &VoiceOptions) -> Result<Voice, TtsError> {
        let known = voice_ids(store);
        if !known.iter().any(|k| k == id) {
            return Err(TtsError::UnknownVoice { id: id.into(), known: known.join(", ") });
        }
        let model = store.path(id)?;
        let config = store.path(&format!("{id}{CONFIG_SUFFIX}"))?;
        sotto_audio::init_onnx_runtime(&store.path(sotto_audio::ONNXRUNTIME_ID)?)?;
        Self::load(id, &model, &config, opts)
    }

    /// Loads a voice from its files. Precondition: ONNX Runtime is initialised in this process
    /// ([`sotto_audio::init_onnx_runtime`]); the espeak-ng data directory and voice are checked here.
    pub fn load(id: &str, model: &Path, config: &Path, opts: &VoiceOptions) -> Result<Voice, TtsError> {
        let config = VoiceConfig::load(config)?;
        // Fails now, naming the directory or espeak voice, rather than on the first sentence.
        espeak::phonemize(&opts.espeak_data, &config.espeak_voice, "")?;
        let started = Instant::now();
        let session = sotto_audio::onnx_session(model, opts.threads)?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for want in ["input", "input_lengths", "scales"] {
            if !inputs.contains(&want) {
                return Err(TtsError::ModelShape {
                    path: model.into(),
                    reason: format!("no input {want:?} (inputs: {inputs:?}); not a Piper voice"),
                });
            }
        }
        let has_speaker_input = inputs.contains(&"sid");
        let output = session
            .outputs()
            .first()
            .map(|o| o.name().to_string())
            .ok_or_else(|| TtsError::ModelShape { path: model.into(), reason: "no output".into() })?;
        tracing::debug!(voice = id, ms = started.elapsed().as_millis() as u64, "voice loaded");
        let silence = (opts.sentence_silence_s.max(0.0) * config.sample_rate as f32) as usize;
        Ok(Voice {
            id: id.into(),
            config,
            session,
            output,
            has_speaker_input,
            espeak_data: opts.espeak_data.clone(),
            silence,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Output sample rate (22050 Hz for Piper's medium voices).
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The text checked and cut into sentences of phonemes (what [`Self::speak`] renders).
    pub fn sentences(&self, text: &str) -> Result<Vec<Sentence>, TtsError> {
        check_text(text)?;
        let sentences = espeak::phonemize(&self.espeak_data, &self.config.espeak_voice, text)?;
        let sentences: Vec<Sentence> = sentences.into_iter().flat_map(split_long).collect();
        if sentences.is_empty() {
            return Err(TtsError::NothingToSay { text: text.chars().take(80).collect() });
        }
        Ok(sentences)
    }

    /// Speaks `text`: each sentence's samples (mono, [`Self::sample_rate`]) go to `on_chunk` as
    /// soon as they are computed, so the first audio comes after the first sentence. The callback
    /// returns `ControlFlow::Break(())` to stop (e.g. playback interrupted).
    pub fn speak(
        &mut self,
        text: &str,
        mut on_chunk: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<SpeakReport, TtsError> {
        let started = Instant::now();
        let sentences = self.sentences(text)?;
        let mut report = SpeakReport::default();
        for (i, sentence) in sentences.iter().enumerate() {
            let t = Instant::now();
            let mut audio = self.render(sentence)?;
            report.synthesis += t.elapsed();
            if i > 0 && self.silence > 0 {
                audio.splice(0..0, std::iter::repeat_n(0.0, self.silence));
            }
            if i == 0 {
                report.first_audio = started.elapsed();
            }
            report.sentences += 1;
            report.samples += audio.len();
            if on_chunk(&audio).is_break() {
                report.stopped = true;
                break;
            }
        }
        tracing::debug!(voice = %self.id, sentences = report.sentences, samples = report.samples,
            first_audio_ms = report.first_audio.as_secs_f64() * 1e3, "spoken");
        Ok(report)
    }

    /// All of `text`'s audio at once.
    pub fn synthesize(&mut self, text: &str) -> Result<Vec<f32>, TtsError> {
        let mut out = Vec::new();
        self.speak(text, |chunk| {
            out.extend_from_slice(chunk);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// One model run: a sentence's phonemes to peak-normalised samples.
    pub fn render(&mut self, phonemes: &[char]) -> Result<Vec<f32>, TtsError> {
        let ids = self.config.phoneme_ids(phonemes);
        let id = self.id.clone();
        let err = |e: ort::Error| TtsError::Inference { voice: id.clone(), reason: e.to_string() };
        let n = ids.len();
        let lengths = [n as i64];
        let scales = [self.config.noise_scale, self.config.length_scale, self.config.noise_w];
        let speaker = [0i64];
        let input = TensorRef::from_array_view(([1usize, n], &ids[..])).map_err(err)?;
        let lengths = TensorRef::from_array_view(([1usize], &lengths[..])).map_err(err)?;
        let scales = TensorRef::from_array_view(([3usize], &scales[..])).map_err(err)?;
        let outputs = if self.has_speaker_input {
            let sid = TensorRef::from_array_view(([1usize], &speaker[..])).map_err(err)?;
            self.session
                .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales, "sid" => sid])
        } else {
            self.session.run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
        }
        .map_err(err)?;
        let (_, samples) = outputs[self.output.as_str()].try_extract_tensor::<f32>().map_err(err)?;
        Ok(normalise(samples))
    }
}

/// Scales to [`PEAK`]; silence stays silence, non-finite samples become silence.
fn normalise(samples: &[f32]) -> Vec<f32> {
    let peak = samples.iter().filter(|x| x.is_finite()).fold(0.0f32, |m, x| m.max(x.abs()));
    let gain = if peak < 1e-6 { 0.0 } else { PEAK / peak };
    samples.iter().map(|&x| if x.is_finite() { x * gain } else { 0.0 }).collect()
}

/// Cuts a sentence longer than [`MAX_SENTENCE_PHONEMES`] at the last word boundary within it.
fn split_long(mut sentence: Sentence) -> Vec<Sentence> {
    let mut out = Vec::new();
    while sentence.len() > MAX_SENTENCE_PHONEMES {
        let cut = sentence[..MAX_SENTENCE_PHONEMES].iter().rposition(|&c| c == ' ').filter(|&i| i > 0);
        let at = cut.unwrap_or(MAX_SENTENCE_PHONEMES);
        let rest = sentence.split_off(at);
        out.push(sentence);
        sentence = rest.into_iter().skip_while(|&c| c == ' ').collect();
    }
    if !sentence.is_empty() {
        out.push(sentence);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_sentences_are_cut_at_word_boundaries() {
        let word: Vec<char> = "abcdefghi ".chars().collect();
        let long: Sentence = word.iter().cycle().take(1000).copied().collect();
        let parts = split_long(long);
        assert!(parts.len() >= 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_SENTENCE_PHONEMES && p[0] != ' '));
        let joined: usize = parts.iter().map(|p| p.iter().filter(|c| **c != ' ').count()).sum();
        assert_eq!(joined, 900, "no phoneme lost");
        assert_eq!(split_long(vec!['a'; 5]), vec![vec!['a'; 5]]);
    }

    #[test]
    fn normalise_scales_to_the_peak_and_silences_garbage() {
        let got = normalise(&[0.1, -0.2, f32::NAN]);
        assert!(got.iter().zip([0.45, -0.9, 0.0]).all(|(a, b)| (a - b).abs() < 1e-6), "{got:?}");
        assert_eq!(normalise(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
