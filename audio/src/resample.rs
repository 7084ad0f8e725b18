//! Band-limited conversion to 16 kHz mono (FFT resampler of `rubato`), usable on a stream; the same
//! resampler converts between any two rates (a voice's rate to an output device's).

use rubato::{FftFixedIn, Resampler as _};

use crate::AudioError;

/// The sample rate of everything after the sources.
pub const SAMPLE_RATE: u32 = 16_000;

/// Input rates accepted: every real recording rate (8 kHz telephony to 384 kHz studio) with
/// margin. The FFT resampler's buffers grow with the rate (and with 16000 / rate below it), so a
/// WAV header claiming 4 GHz would ask for gigabytes: such a rate is refused before allocating.
pub const MIN_SAMPLE_RATE: u32 = 1_000;
pub const MAX_SAMPLE_RATE: u32 = 384_000;

const CHUNK_IN: usize = 1024;

/// Converts mono f32 audio at any integer rate to 16 kHz (or another rate, [`Self::between`]),
/// chunk by chunk, without a time shift: the resampler's filter delay is dropped from the start,
/// and `finish` flushes the tail so that `n` input samples give `round(n * to / rate)` output
/// samples in total.
pub struct StreamResampler {
    rate: u32,
    to: u32,
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    skip: usize,
    consumed: u64,
    produced: u64,
}

impl StreamResampler {
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        Self::between(rate, SAMPLE_RATE)
    }

    /// From `rate` to `to`, both within [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`].
    pub fn between(rate: u32, to: u32) -> Result<Self, AudioError> {
        for r in [rate, to] {
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&r) {
                let reason = format!("sample rate {r} Hz is outside {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz");
                return Err(AudioError::Resample { from_hz: rate, to_hz: to, reason });
            }
        }
        let inner = if rate == to {
            None
        } else {
            let r = FftFixedIn::<f32>::new(rate as usize, to as usize, CHUNK_IN, 2, 1)
                .map_err(|e| AudioError::Resample { from_hz: rate, to_hz: to, reason: e.to_string() })?;
            Some(r)
        };
        let skip = inner.as_ref().map_or(0, |r| r.output_delay());
        Ok(Self { rate, to, inner, pending: Vec::new(), skip, consumed: 0, produced: 0 })
    }

    /// Feeds input samples; returns the 16 kHz samples that are ready.
    pub fn push(&mut self, input: &[f32]) -> Result<Vec<f32>, AudioError> {
        let input = &*full_scale(input);
        self.consumed += input.len() as u64;
        let Some(r) = self.inner.as_mut() else {
            self.produced += input.len() as u64;
            return Ok(input.to_vec());
        };
        self.pending.extend_from_slice(input);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= r.input_frames_next() {
            let n = r.input_frames_next();
            let chunk = &self.pending[start..start + n];
            let res = r.process(&[chunk], None).map_err(|e| resample_err(self.rate, self.to, e.to_string()))?;
            start += n;
            out.extend_from_slice(&res[0]);
        }
        self.pending.drain(..start);
        Ok(self.take(out))
    }

    /// Flushes the filter: returns the remaining samples up to the exact expected total.
    pub fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        let (rate, to) = (self.rate, self.to);
        let Some(r) = self.inner.as_mut() else { return Ok(Vec::new()) };
        let expected = (self.consumed * to as u64 + rate as u64 / 2) / rate as u64;
        let pending = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        if !pending.is_empty() {
            let res =
                r.process_partial(Some(&[&pending[..]]), None).map_err(|e| resample_err(rate, to, e.to_string()))?;
            out.extend(take(&mut self.skip, &mut self.produced, res[0].clone()));
        }
        // Silence through the filter until the delayed tail is out; bounded in case of a bug.
        for _ in 0..64 {
            if self.produced >= expected {
                break;
            }
            let res = r.process_partial::<&[f32]>(None, None).map_err(|e| resample_err(rate, to, e.to_string()))?;
            out.extend(take(&mut self.skip, &mut self.produced, res[0].clone()));
        }
        let excess = self.produced.saturating_sub(expected) as usize;
        out.truncate(out.len().saturating_sub(excess));
        self.produced = expected;
        Ok(out)
    }

    fn take(&mut self, out: Vec<f32>) -> Vec<f32> {
        take(&mut self.skip, &mut self.produced, out)
    }
}

/// Samples as a DAC would play them: beyond full scale clipped to [-1, 1], non-finite ones
/// (a corrupt float WAV or raw f32 stream) silent. A NaN or an overflowing value made the FFT fail
/// inside rubato, a panic (found by the `wav` fuzz target); passed through at 16 kHz it would
/// poison the wake-word and VAD models' recurrent state for good.
fn full_scale(input: &[f32]) -> std::borrow::Cow<'_, [f32]> {
    if input.iter().all(|x| (-1.0..=1.0).contains(x)) {
        return std::borrow::Cow::Borrowed(input);
    }
    let bad = input.iter().filter(|x| !x.is_finite()).count();
    if bad > 0 {
        tracing::warn!(samples = bad, "non-finite audio samples replaced by silence");
    }
    input.iter().map(|&x| if x.is_finite() { x.clamp(-1.0, 1.0) } else { 0.0 }).collect()
}

/// Drops what is left of the filter delay from `out` and counts the rest as produced.
fn take(skip: &mut usize, produced: &mut u64, mut out: Vec<f32>) -> Vec<f32> {
    let drop = (*skip).min(out.len());
    *skip -= drop;
    out.drain(..drop);
    *produced += out.len() as u64;
    out
}

fn resample_err(rate: u32, to: u32, reason: String) -> AudioError {
    AudioError::Resample { from_hz: rate, to_hz: to, reason }
}

/// Whole-signal conversion of mono audio at `rate` to 16 kHz.
pub fn resample_to_16k(samples: &[f32], rate: u32) -> Result<Vec<f32>, AudioError> {
    let mut r = StreamResampler::new(rate)?;
    let mut out = r.push(samples)?;
    out.extend(r.finish()?);
    Ok(out)
}

/// Averages interleaved channels to mono.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels <= 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / channels as f32;
    interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() * scale).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n).map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / rate as f32).sin() * 0.5).collect()
    }

    #[test]
    fn keeps_length_and_phase_of_a_tone() {
        for rate in [8_000, 22_050, 44_100, 48_000] {
            let out = resample_to_16k(&tone(rate, 440.0, 1.0), rate).unwrap();
            assert_eq!(out.len(), 16_000, "rate {rate}");
            let want = tone(16_000, 440.0, 1.0);
            // Away from the edges the resampled tone lines up with a tone made at 16 kHz: 0.05 is
            // what a shift of half an output sample would give (2π·440 Hz·0.5·31 µs ≈ 0.043).
            let err = out[2000..14000].iter().zip(&want[2000..14000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(err < 0.05, "rate {rate}: max deviation {err}");
        }
    }

    #[test]
    fn converts_a_voice_rate_to_a_device_rate() {
        // Playback: a Piper voice's 22050 Hz to a 48 kHz sound card, streamed in sentence chunks.
        let x = tone(22_050, 440.0, 1.0);
        let mut r = StreamResampler::between(22_050, 48_000).unwrap();
        let mut out = Vec::new();
        for chunk in x.chunks(5000) {
            out.extend(r.push(chunk).unwrap());
        }
        out.extend(r.finish().unwrap());
        assert_eq!(out.len(), 48_000);
        let want = tone(48_000, 440.0, 1.0);
        let err = out[4000..44000].iter().zip(&want[4000..44000]).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(err < 0.05, "max deviation {err}");
        assert!(StreamResampler::between(22_050, 0).is_err());
    }

    #[test]
    fn removes_content_above_nyquist() {
        // 10 kHz cannot exist at 16 kHz; a band-limited resampler removes it instead of aliasing
        // it to 6 kHz as linear interpolation would.
        let out = resample_to_16k(&tone(48_000, 10_000.0, 1.0), 48_000).unwrap();
        let rms = (out[2000..14000].iter().map(|x| x * x).sum::<f32>() / 12000.0).sqrt();
        assert!(rms < 0.01, "rms {rms}");
    }

    #[test]
    fn streaming_in_odd_pieces_equals_whole() {
        let x = tone(44_100, 300.0, 0.7);
        let whole = resample_to_16k(&x, 44_100).unwrap();
        let mut r = StreamResampler::new(44_100).unwrap();
        let mut pieces = Vec::new();
        for chunk in x.chunks(777) {
            pieces.extend(r.push(chunk).unwrap());
        }
        pieces.extend(r.finish().unwrap());
        assert_eq!(pieces.len(), whole.len());
        assert!(pieces.iter().zip(&whole).all(|(a, b)| (a - b).abs() < 1e-6));
    }
}
