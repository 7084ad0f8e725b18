//! Silero VAD (v4 ONNX: 512-sample windows at 16 kHz, LSTM state carried between calls).

use std::path::Path;

use ort::session::Session;
use ort::value::{Tensor, TensorRef};

use crate::onnx::{infer_err, session};
use crate::AudioError;

/// Samples per VAD window (32 ms at 16 kHz).
pub const VAD_WINDOW: usize = 512;
const STATE: usize = 2 * 64;

/// Voice activity: probability of speech for consecutive windows of one stream.
pub trait Vad: Send {
    /// Speech probability of the next `VAD_WINDOW` samples of the stream.
    fn probability(&mut self, window: &[f32]) -> Result<f32, AudioError>;
    /// Starts a new stream (clears the recurrent state).
    fn reset(&mut self);
}

/// Silero VAD v4 through ONNX Runtime.
pub struct SileroVad {
    session: Session,
    h: Vec<f32>,
    c: Vec<f32>,
}

impl SileroVad {
    pub fn new(model: &Path) -> Result<Self, AudioError> {
        let session = session(model)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for want in ["input", "sr", "h", "c"] {
            if !names.contains(&want) {
                return Err(AudioError::ModelShape {
                    model: format!("silero-vad ({})", model.display()),
                    reason: format!("no input {want:?} (inputs: {names:?}); only Silero VAD v4 is supported"),
                });
            }
        }
        Ok(Self { session, h: vec![0.0; STATE], c: vec![0.0; STATE] })
    }
}

impl Vad for SileroVad {
    fn probability(&mut self, window: &[f32]) -> Result<f32, AudioError> {
        if window.len() != VAD_WINDOW {
            return Err(AudioError::Config(format!("VAD window of {} samples, expected {VAD_WINDOW}", window.len())));
        }
        let err = infer_err("silero-vad");
        let input = TensorRef::from_array_view(([1usize, VAD_WINDOW], window)).map_err(&err)?;
        let sr = Tensor::from_array(((), vec![16_000i64])).map_err(&err)?;
        let h = TensorRef::from_array_view(([2usize, 1, 64], &self.h[..])).map_err(&err)?;
        let c = TensorRef::from_array_view(([2usize, 1, 64], &self.c[..])).map_err(&err)?;
        let out = self.session.run(ort::inputs!["input" => input, "sr" => sr, "h" => h, "c" => c]).map_err(&err)?;
        let (_, p) = out["output"].try_extract_tensor::<f32>().map_err(&err)?;
        let p = p[0];
        let (_, hn) = out["hn"].try_extract_tensor::<f32>().map_err(&err)?;
        let (_, cn) = out["cn"].try_extract_tensor::<f32>().map_err(&err)?;
        self.h.copy_from_slice(hn);
        self.c.copy_from_slice(cn);
        Ok(p)
    }

    fn reset(&mut self) {
        self.h.fill(0.0);
        self.c.fill(0.0);
    }
}
