//! openWakeWord in Rust: melspectrogram → speech embedding → one classifier per wake word,
//! computed exactly like the Python reference (`openwakeword` 0.6) so that scores match it.

use std::collections::VecDeque;
use std::path::PathBuf;

use ort::session::Session;
use ort::value::TensorRef;
use sotto_problems::Problems;

use crate::onnx::{infer_err, input_name, session, session_from_memory};
use crate::AudioError;

/// Samples per frame: every 80 ms the detector emits one score per wake word.
pub const FRAME: usize = 1280;
/// Samples of context before a frame the melspectrogram model needs (3 hops of 160).
const MEL_CONTEXT: usize = 480;
const MEL_BINS: usize = 32;
const MEL_PER_FRAME: usize = FRAME / 160;
const EMB_WINDOW: usize = 76;
const EMB_DIM: usize = 96;
/// Like the reference, the first frames score 0: their embedding history is not from the stream.
const WARMUP_FRAMES: u64 = 5;
/// Seconds of silence whose embeddings seed the history (the reference uses random noise).
const SEED_SECONDS: usize = 4;

/// One wake word fired.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Detection {
    /// Wake word name (e.g. `hey_jarvis`).
    pub wake: String,
    /// Sample index (16 kHz, from the start of the stream) of the end of the frame that fired.
    pub sample: u64,
    /// Highest score of the frames that made it fire.
    pub score: f32,
}

/// A wake-word detector: feed 16 kHz mono chunks of any length, get detections.
pub trait WakeDetector: Send {
    fn feed(&mut self, samples: &[f32]) -> Result<Vec<Detection>, AudioError>;
    /// Forgets the stream (history, counters, refractory state) as if newly created.
    fn reset(&mut self) -> Result<(), AudioError>;
    fn wake_names(&self) -> Vec<String>;
}

/// Decision rule of one wake word.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TriggerConfig {
    /// Score at or above which a frame counts as a hit.
    pub threshold: f32,
    /// Consecutive hit frames (80 ms each) needed to fire.
    pub patience: u32,
    /// After firing, no new detection of this wake word for this long.
    pub refractory_ms: u32,
}

impl Default for TriggerConfig {
    fn default() -> Self {
        Self { threshold: 0.5, patience: 2, refractory_ms: 2000 }
    }
}

impl TriggerConfig {
    /// Every problem, each with its key path under `prefix`.
    pub fn problems(&self, prefix: &str) -> Problems {
        let mut p = Problems::new();
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            p.add(format!("{prefix}.threshold"), format!("{} is not in (0, 1)", self.threshold));
        }
        if self.patience == 0 || self.patience > 25 {
            p.add(format!("{prefix}.patience"), format!("{} is not in 1..=25 frames of 80 ms", self.patience));
        }
        if self.refractory_ms > 60_000 {
            p.add(format!("{prefix}.refractory_ms"), format!("{} is over 60000", self.refractory_ms));
        }
        p
    }
}

/// A wake word to load: its name, classifier file and decision rule.
#[derive(Clone, Debug)]
pub struct WakeSpec {
    pub name: String,
    pub model: PathBuf,
    pub trigger: TriggerConfig,
}

/// The ONNX files of the shared feature stages.
#[derive(Clone, Debug)]
pub struct OwwFiles {
    pub melspectrogram: PathBuf,
    pub embedding: PathBuf,
}

struct Classifier {
    name: String,
    session: Session,
    input: String,
    window: usize,
    trigger: Trigger,
}

/// The decision rule of one wake word over its frame scores: threshold, patience, refractory
/// period, and re-arming only after the score has dropped below the threshold.
#[derive(Clone, Debug)]
pub struct Trigger {
    cfg: TriggerConfig,
    run: u32,
    run_max: f32,
    armed: bool,
    last_fire: Option<u64>,
}

impl Trigger {
    pub fn new(cfg: TriggerConfig) -> Self {
        Self { cfg, run: 0, run_max: 0.0, armed: true, last_fire: None }
    }

    pub fn reset(&mut self) {
        *self = Self::new(self.cfg.clone());
    }

    /// The score of the frame ending at `end_sample`; returns the detection score if it fires.
    pub fn step(&mut self, score: f32, end_sample: u64) -> Option<f32> {
        if score < self.cfg.threshold {
            self.run = 0;
            self.run_max = 0.0;
            self.armed = true;
            return None;
        }
        self.run += 1;
        self.run_max = self.run_max.max(score);
        let refractory = self.cfg.refractory_ms as u64 * 16;
        let rested = self.last_fire.is_none_or(|t| end_sample - t >= refractory);
        if self.armed && self.run >= self.cfg.patience && rested {
            self.armed = false;
            self.last_fire = Some(end_sample);
            return Some(self.run_max);
        }
        None
    }
}

/// Scores of one 80 ms frame, in the order of `wake_names()`.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Sample index of the end of the frame.
    pub end_sample: u64,
    pub scores: Vec<f32>,
}

/// openWakeWord with any number of wake words sharing the mel and embedding stages.
pub struct OpenWakeWord {
    mel: Session,
    mel_input: String,
    emb: Session,
    emb_input: String,
    /// The embedding model over a whole run of mel frames (see `sequence_embedding_model`).
    emb_seq: Option<Session>,
    use_emb_seq: bool,
    classifiers: Vec<Classifier>,
    /// Last samples (int16 scale) for the mel context.
    context: Vec<f32>,
    /// Samples of an incomplete frame (int16 scale).
    pending: Vec<f32>,
    mel_buf: VecDeque<[f32; MEL_BINS]>,
    features: VecDeque<[f32; EMB_DIM]>,
    seed: Vec<[f32; EMB_DIM]>,
    history: usize,
    frames: u64,
}

impl OpenWakeWord {
    /// Loads the shared stages and the wake words (ONNX Runtime must be initialised).
    pub fn new(files: &OwwFiles, wakes: &[WakeSpec]) -> Result<Self, AudioError> {
        if wakes.is_empty() {
            return Err(AudioError::Config("no wake word selected".into()));
        }
        let problems: Problems = wakes.iter().flat_map(|w| w.trigger.problems(&format!("wake.{}", w.name))).collect();
        problems.into_result(()).map_err(AudioError::Settings)?;
        let mel = session(&files.melspectrogram)?;
        let mel_input = input_name(&mel, "melspectrogram", 0)?;
        let emb = session(&files.embedding)?;
        let emb_input = input_name(&emb, "embedding", 0)?;
        let emb_seq = match sequence_embedding_model(&files.embedding)? {
            Some(bytes) => Some(session_from_memory(&bytes, &files.embedding)?),
            None => {
                tracing::warn!(model = %files.embedding.display(),
                    "embedding model not recognised for whole-run evaluation; using one window at a time (slower)");
                None
            }
        };
        let mut classifiers = Vec::new();
        for w in wakes {
            classifiers.push(load_classifier(w)?);
        }
        let history = classifiers.iter().map(|c| c.window).max().unwrap_or(16);
        let mut me = Self {
            mel,
            mel_input,
            emb,
            emb_input,
            emb_seq,
            use_emb_seq: true,
            classifiers,
            context: Vec::new(),
            pending: Vec::new(),
            mel_buf: VecDeque::new(),
            features: VecDeque::new(),
            seed: Vec::new(),
            history,
            frames: 0,
        };
        me.seed = me.silence_embeddings()?;
        me.clear();
        Ok(me)
    }

    fn clear(&mut self) {
        self.context.clear();
        self.pending.clear();
        self.mel_buf = std::iter::repeat_n([1.0; MEL_BINS], EMB_WINDOW).collect();
        self.features = self.seed.iter().copied().collect();
        self.frames = 0;
        for c in &mut self.classifiers {
            c.trigger.reset();
        }
    }

    /// The embedding history the stream starts from: that of a few seconds of silence, computed
    /// like the reference computes its (random) seed, over the whole clip at once.
    fn silence_embeddings(&mut self) -> Result<Vec<[f32; EMB_DIM]>, AudioError> {
        let silence = vec![0.0f32; 16_000 * SEED_SECONDS];
        let mel = self.melspectrogram(&silence, 1)?;
        let windows: Vec<&[[f32; MEL_BINS]]> = (0..mel.len())
            .step_by(8)
            .filter(|i| i + EMB_WINDOW <= mel.len())
            .map(|i| &mel[i..i + EMB_WINDOW])
            .collect();
        let emb = self.embeddings(&windows)?;
        Ok(emb[emb.len().saturating_sub(self.history)..].to_vec())
    }

    /// Runs the mel model on `rows` equally long windows laid end to end in `audio`.
    fn melspectrogram(&mut self, audio: &[f32], rows: usize) -> Result<Vec<[f32; MEL_BINS]>, AudioError> {
        let cols = audio.len() / rows;
        let input = TensorRef::from_array_view(([rows, cols], audio)).map_err(infer_err("melspectrogram"))?;
        let out = self.mel.run(ort::inputs![self.mel_input.as_str() => input]).map_err(infer_err("melspectrogram"))?;
        let (_, data) = out[0].try_extract_tensor::<f32>().map_err(infer_err("melspectrogram"))?;
        if data.len() % MEL_BINS != 0 {
            return Err(AudioError::ModelShape {
                model: "melspectrogram".into(),
                reason: format!("{} outputs", data.len()),
            });
        }
        // The reference's fixed rescaling of the ONNX mel to match the TF original.
        Ok(data.chunks_exact(MEL_BINS).map(|c| std::array::from_fn(|i| c[i] / 10.0 + 2.0)).collect())
    }

    fn embeddings(&mut self, windows: &[&[[f32; MEL_BINS]]]) -> Result<Vec<[f32; EMB_DIM]>, AudioError> {
        let flat: Vec<f32> = windows.iter().flat_map(|w| w.iter().flatten().copied()).collect();
        let input = TensorRef::from_array_view(([windows.len(), EMB_WINDOW, MEL_BINS, 1], &flat[..]))
            .map_err(infer_err("embedding"))?;
        let out = self.emb.run(ort::inputs![self.emb_input.as_str() => input]).map_err(infer_err("embedding"))?;
        let (_, data) = out[0].try_extract_tensor::<f32>().map_err(infer_err("embedding"))?;
        if data.len() != windows.len() * EMB_DIM {
            return Err(AudioError::ModelShape {
                model: "embedding".into(),
                reason: format!("{} outputs for {} windows", data.len(), windows.len()),
            });
        }
        Ok(data.chunks_exact(EMB_DIM).map(|c| std::array::from_fn(|i| c[i])).collect())
    }

    /// Scores every complete 80 ms frame in `samples` (plus what was pending), without the
    /// trigger logic. Frames available together are batched through the models: the result is
    /// the same as feeding them one by one.
    pub fn score_frames(&mut self, samples: &[f32]) -> Result<Vec<Frame>, AudioError> {
        // The reference works on 16-bit integers; quantise float input the same way.
        self.pending.extend(samples.iter().map(|&x| (x * 32768.0).round().clamp(-32768.0, 32767.0)));
        let n = self.pending.len() / FRAME;
        if n == 0 {
            return Ok(Vec::new());
        }
        let chunk: Vec<f32> = self.pending.drain(..n * FRAME).collect();
        let mut frames = Vec::with_capacity(n);
        let mut first = 0;
        if self.context.is_empty() {
            // The very first frame has no context: the reference computes 5 mel rows from it alone.
            let mel = self.melspectrogram(&chunk[..FRAME], 1)?;
            self.mel_buf.extend(mel);
            self.context = chunk[FRAME - MEL_CONTEXT..FRAME].to_vec();
            let window = self.last_mel_window();
            let emb = self.embeddings(&[&window])?;
            frames.push(self.classify(emb[0])?);
            first = 1;
        }
        if first < n {
            let rows = n - first;
            let mut windows = Vec::with_capacity(rows * (FRAME + MEL_CONTEXT));
            for i in first..n {
                let start = i * FRAME;
                if i == first {
                    windows.extend_from_slice(&self.context);
                    windows.extend_from_slice(&chunk[start..start + FRAME]);
                } else {
                    windows.extend_from_slice(&chunk[start - MEL_CONTEXT..start + FRAME]);
                }
            }
            let mut mel = Vec::with_capacity(rows * MEL_PER_FRAME);
            for w in windows.chunks_exact(FRAME + MEL_CONTEXT) {
                mel.extend(self.melspectrogram(w, 1)?);
            }
            if mel.len() != rows * MEL_PER_FRAME {
                return Err(AudioError::ModelShape {
                    model: "melspectrogram".into(),
                    reason: format!("{} rows for {rows} frames, expected {}", mel.len(), rows * MEL_PER_FRAME),
                });
            }
            let before = self.mel_buf.len();
            self.mel_buf.extend(mel.iter().copied());
            let embs = if self.emb_seq.is_some() && self.use_emb_seq {
                // The windows of consecutive frames are 8 mel rows apart: one run covers them all.
                let run: Vec<[f32; MEL_BINS]> =
                    self.mel_buf.range(before + MEL_PER_FRAME - EMB_WINDOW..).copied().collect();
                self.sequence_embeddings(&run, rows)?
            } else {
                let windows: Vec<Vec<[f32; MEL_BINS]>> = (1..=rows)
                    .map(|j| {
                        self.mel_buf
                            .range(before + j * MEL_PER_FRAME - EMB_WINDOW..before + j * MEL_PER_FRAME)
                            .copied()
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[[f32; MEL_BINS]]> = windows.iter().map(|w| &w[..]).collect();
                self.embeddings(&refs)?
            };
            for e in embs {
                frames.push(self.classify(e)?);
            }
            self.context = chunk[n * FRAME - MEL_CONTEXT..].to_vec();
        }
        while self.mel_buf.len() > EMB_WINDOW {
            self.mel_buf.pop_front();
        }
        Ok(frames)
    }

    /// Whether runs of frames share one whole-run embedding call (default) or compute each
    /// window separately (as the reference does; for comparison and benchmarks).
    pub fn set_whole_run_embedding(&mut self, on: bool) {
        self.use_emb_seq = on;
    }

    /// Embeddings of the `n` windows (76 rows, 8 apart) of one run of mel rows, in one call.
    fn sequence_embeddings(&mut self, run: &[[f32; MEL_BINS]], n: usize) -> Result<Vec<[f32; EMB_DIM]>, AudioError> {
        let session = self.emb_seq.as_mut().expect("checked by the caller");
        let flat: Vec<f32> = run.iter().flatten().copied().collect();
        let err = infer_err("embedding");
        let input = TensorRef::from_array_view(([1, run.len(), MEL_BINS, 1], &flat[..])).map_err(&err)?;
        let out = session.run(ort::inputs![self.emb_input.as_str() => input]).map_err(&err)?;
        let (_, data) = out[0].try_extract_tensor::<f32>().map_err(&err)?;
        if data.len() != n * EMB_DIM {
            return Err(AudioError::ModelShape {
                model: "embedding".into(),
                reason: format!("{} outputs for a run of {n} windows", data.len()),
            });
        }
        // The last layer's output is channels × time; the model's final reshape keeps that order.
        Ok((0..n).map(|j| std::array::from_fn(|c| data[c * n + j])).collect())
    }

    fn last_mel_window(&self) -> Vec<[f32; MEL_BINS]> {
        self.mel_buf.range(self.mel_buf.len() - EMB_WINDOW..).copied().collect()
    }

    fn classify(&mut self, embedding: [f32; EMB_DIM]) -> Result<Frame, AudioError> {
        self.features.push_back(embedding);
        while self.features.len() > self.history {
            self.features.pop_front();
        }
        self.frames += 1;
        let end_sample = self.frames * FRAME as u64;
        let mut scores = Vec::with_capacity(self.classifiers.len());
        for c in &mut self.classifiers {
            let skip = self.features.len() - c.window;
            let flat: Vec<f32> = self.features.range(skip..).flatten().copied().collect();
            let input = TensorRef::from_array_view(([1, c.window, EMB_DIM], &flat[..])).map_err(infer_err(&c.name))?;
            let out = c.session.run(ort::inputs![c.input.as_str() => input]).map_err(infer_err(&c.name))?;
            let (_, data) = out[0].try_extract_tensor::<f32>().map_err(infer_err(&c.name))?;
            let score = if self.frames <= WARMUP_FRAMES { 0.0 } else { data[0] };
            scores.push(score);
        }
        Ok(Frame { end_sample, scores })
    }

    /// Applies each wake word's threshold, patience and refractory period to a frame.
    fn trigger(&mut self, frame: &Frame) -> Vec<Detection> {
        let mut out = Vec::new();
        for (c, &score) in self.classifiers.iter_mut().zip(&frame.scores) {
            if let Some(score) = c.trigger.step(score, frame.end_sample) {
                tracing::debug!(wake = %c.name, sample = frame.end_sample, score, "wake word");
                out.push(Detection { wake: c.name.clone(), sample: frame.end_sample, score });
            }
        }
        out
    }
}

impl WakeDetector for OpenWakeWord {
    fn feed(&mut self, samples: &[f32]) -> Result<Vec<Detection>, AudioError> {
        let frames = self.score_frames(samples)?;
        Ok(frames.iter().flat_map(|f| self.trigger(f)).collect())
    }

    fn reset(&mut self) -> Result<(), AudioError> {
        self.clear();
        Ok(())
    }

    fn wake_names(&self) -> Vec<String> {
        self.classifiers.iter().map(|c| c.name.clone()).collect()
    }
}

/// The speech-embedding model is convolutional along time with valid padding, a total time stride
/// of 8 and a receptive field of 76 mel rows: evaluated on a longer run of rows it yields the
/// embeddings of all its 76-row windows 8 apart, sharing the work of their overlap (about 7x less
/// CPU than one window at a time, same results). Two constants pin the input to 76 rows: the
/// declared input dimension and the first Reshape's target shape. Both are rewritten in place,
/// with byte sequences of the same length; anything unexpected returns `None`.
fn sequence_embedding_model(path: &std::path::Path) -> Result<Option<Vec<u8>>, AudioError> {
    let mut bytes =
        std::fs::read(path).map_err(|e| AudioError::ModelLoad { path: path.to_path_buf(), reason: e.to_string() })?;
    // Input shape dims 76, 32, 1 (TensorShapeProto.dim entries with dim_value).
    let dims: [u8; 12] = [0x0A, 0x02, 0x08, 76, 0x0A, 0x02, 0x08, 32, 0x0A, 0x02, 0x08, 0x01];
    // Reshape target [-1, 1, 76, 32] as raw int64 data.
    let shape: Vec<u8> = [-1i64, 1, 76, 32].iter().flat_map(|v| v.to_le_bytes()).collect();
    let (Some(d), Some(r)) = (find_once(&bytes, &dims), find_once(&bytes, &shape)) else { return Ok(None) };
    // dim_value: 76 → dim_param: "" (a free dimension), both two bytes.
    bytes[d + 2] = 0x12;
    bytes[d + 3] = 0x00;
    // [-1, 1, 76, 32] → [1, 1, -1, 32]: one run, its length inferred.
    let patched: Vec<u8> = [1i64, 1, -1, 32].iter().flat_map(|v| v.to_le_bytes()).collect();
    bytes[r..r + patched.len()].copy_from_slice(&patched);
    Ok(Some(bytes))
}

fn find_once(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let mut hits = haystack.windows(needle.len()).enumerate().filter(|(_, w)| *w == needle).map(|(i, _)| i);
    let first = hits.next()?;
    hits.next().is_none().then_some(first)
}

fn load_classifier(w: &WakeSpec) -> Result<Classifier, AudioError> {
    let session = session(&w.model)?;
    let input = input_name(&session, &w.name, 0)?;
    let shape_err =
        |reason: String| AudioError::ModelShape { model: format!("{} ({})", w.name, w.model.display()), reason };
    let dims: Vec<i64> = match session.inputs()[0].dtype() {
        ort::value::ValueType::Tensor { shape, .. } => shape.iter().copied().collect(),
        other => return Err(shape_err(format!("input is {other:?}, expected a tensor"))),
    };
    if dims.len() != 3 || dims[2] != EMB_DIM as i64 || dims[1] <= 0 {
        return Err(shape_err(format!("input shape {dims:?}, expected [1, frames, {EMB_DIM}]")));
    }
    if let ort::value::ValueType::Tensor { shape, .. } = session.outputs()[0].dtype() {
        if shape.iter().copied().product::<i64>().abs() != 1 {
            return Err(shape_err(format!(
                "output shape {:?}: only single-score wake models are supported",
                &shape[..]
            )));
        }
    }
    Ok(Classifier {
        name: w.name.clone(),
        session,
        input,
        window: dims[1] as usize,
        trigger: Trigger::new(w.trigger.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_needs_patience_rests_and_rearms() {
        let cfg = TriggerConfig { threshold: 0.5, patience: 2, refractory_ms: 1000 };
        let mut t = Trigger::new(cfg);
        let f = |i: u64| i * FRAME as u64;
        assert_eq!(t.step(0.9, f(1)), None, "one frame is not enough");
        assert_eq!(t.step(0.6, f(2)), Some(0.9));
        assert_eq!(t.step(0.9, f(3)), None, "same run does not fire twice");
        assert_eq!(t.step(0.1, f(4)), None);
        assert_eq!(t.step(0.9, f(5)), None);
        assert_eq!(t.step(0.9, f(6)), None, "within the refractory period");
        assert_eq!(t.step(0.1, f(20)), None);
        assert_eq!(t.step(0.7, f(21)), None);
        assert_eq!(t.step(0.8, f(22)), Some(0.8), "rested and re-armed");
    }
}
