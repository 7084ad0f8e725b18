//! WAV files (any rate, bit depth and channel count) and raw PCM streams → 16 kHz mono f32.

use std::io::Read;
use std::path::Path;

use crate::resample::{downmix, StreamResampler};
use crate::AudioError;

/// Reads a WAV file as 16 kHz mono samples in [-1, 1]: channels are averaged, other rates go
/// through the band-limited resampler. Integer PCM of 8 to 32 bits and 32-bit float are accepted.
/// A data chunk cut short (a recording interrupted) is read up to the cut, with a warning; a file
/// that is empty, has a truncated header or is not a WAV file is an error naming the file.
pub fn read_wav(path: &Path) -> Result<Vec<f32>, AudioError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| AudioError::ReadFile { path: path.to_path_buf(), reason: e.to_string() })?;
    if meta.len() == 0 {
        return Err(AudioError::EmptyFile { path: path.to_path_buf() });
    }
    let file = std::fs::File::open(path)
        .map_err(|e| AudioError::ReadFile { path: path.to_path_buf(), reason: e.to_string() })?;
    decode_wav(std::io::BufReader::new(file), path)
}

/// [`read_wav`] on WAV bytes from any reader; `name` is the file named in errors.
pub fn decode_wav<R: Read>(input: R, name: &Path) -> Result<Vec<f32>, AudioError> {
    let bad = |reason: String| AudioError::BadWav { path: name.to_path_buf(), reason };
    let reader = hound::WavReader::new(input).map_err(|e| bad(describe_hound(e)))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(bad(format!("header says {} channels at {} Hz", spec.channels, spec.sample_rate)));
    }
    // Before reading any sample: an absurd rate is refused, with the file named.
    let mut resampler = StreamResampler::new(spec.sample_rate).map_err(|e| bad(e.to_string()))?;
    let interleaved = decode(reader, name)?;
    let mono = downmix(&interleaved, spec.channels as usize);
    let mut out = resampler.push(&mono)?;
    out.extend(resampler.finish()?);
    tracing::debug!(file = %name.display(), rate = spec.sample_rate, channels = spec.channels,
        bits = spec.bits_per_sample, samples = out.len(), "read WAV");
    Ok(out)
}

fn decode<R: Read>(reader: hound::WavReader<R>, path: &Path) -> Result<Vec<f32>, AudioError> {
    let spec = reader.spec();
    let bad = |reason: String| AudioError::BadWav { path: path.to_path_buf(), reason };
    // The header's sample count is a claim (up to 4 G samples): reserve at most 4 MB on its word
    // and let the rest grow with the samples that really arrive.
    let mut out = Vec::with_capacity((reader.len() as usize).min(1 << 20));
    let mut push = |r: Result<f32, hound::Error>| -> Result<bool, AudioError> {
        match r {
            Ok(x) => {
                out.push(x);
                Ok(true)
            }
            Err(hound::Error::IoError(e)) if is_eof(&e) => Ok(false),
            Err(e) => Err(bad(describe_hound(e))),
        }
    };
    let expected = reader.len() as usize;
    match spec.sample_format {
        hound::SampleFormat::Float => {
            if spec.bits_per_sample != 32 {
                return Err(bad(format!("{}-bit float samples are not supported", spec.bits_per_sample)));
            }
            for s in reader.into_samples::<f32>() {
                if !push(s)? {
                    break;
                }
            }
        }
        hound::SampleFormat::Int => {
            let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
            for s in reader.into_samples::<i32>() {
                if !push(s.map(|v| v as f32 * scale))? {
                    break;
                }
            }
        }
    }
    if out.len() < expected {
        tracing::warn!(file = %path.display(), read = out.len(), header = expected,
            "WAV data chunk is shorter than its header says; using what is there");
        out.truncate(out.len() - out.len() % spec.channels as usize);
    }
    Ok(out)
}

/// hound reports a short read as `Other` with this text rather than as `UnexpectedEof`.
fn is_eof(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof || e.to_string() == "Failed to read enough bytes."
}

fn describe_hound(e: hound::Error) -> String {
    match e {
        hound::Error::IoError(io) if is_eof(&io) => "truncated: the file ends inside the WAV header".into(),
        hound::Error::FormatError(what) => format!("not a WAV file ({what})"),
        hound::Error::Unsupported => "unsupported WAV encoding (only integer PCM and 32-bit float)".into(),
        other => other.to_string(),
    }
}

/// Sample encodings accepted on a raw PCM stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PcmEncoding {
    /// Signed 16-bit little-endian.
    S16le,
    /// 32-bit float little-endian.
    F32le,
}

impl std::str::FromStr for PcmEncoding {
    type Err = AudioError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "s16le" => Ok(Self::S16le),
            "f32le" => Ok(Self::F32le),
            other => Err(AudioError::PcmFormat(format!("unknown encoding {other:?} (expected s16le or f32le)"))),
        }
    }
}

/// The format of a raw PCM stream (there is no header to tell).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcmFormat {
    pub sample_rate: u32,
    pub channels: u16,
    pub encoding: PcmEncoding,
}

impl Default for PcmFormat {
    /// 16 kHz mono signed 16-bit, the front end's own format.
    fn default() -> Self {
        Self { sample_rate: crate::SAMPLE_RATE, channels: 1, encoding: PcmEncoding::S16le }
    }
}

impl PcmFormat {
    fn frame_bytes(&self) -> usize {
        self.channels as usize
            * match self.encoding {
                PcmEncoding::S16le => 2,
                PcmEncoding::F32le => 4,
            }
    }
}

/// Reads raw interleaved PCM (e.g. `arecord -t raw` on stdin) and yields 16 kHz mono blocks.
pub struct PcmReader<R> {
    input: R,
    format: PcmFormat,
    resampler: StreamResampler,
    buf: Vec<u8>,
    carry: Vec<u8>,
    done: bool,
}

impl<R: Read> PcmReader<R> {
    pub fn new(input: R, format: PcmFormat) -> Result<Self, AudioError> {
        if format.channels == 0 || format.sample_rate == 0 {
            return Err(AudioError::PcmFormat(format!("{} channels at {} Hz", format.channels, format.sample_rate)));
        }
        Ok(Self {
            input,
            format,
            resampler: StreamResampler::new(format.sample_rate)?,
            buf: vec![0; 8192 * format.frame_bytes()],
            carry: Vec::new(),
            done: false,
        })
    }

    /// The next block of 16 kHz mono samples, or `None` at the end of the stream.
    pub fn next_block(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let n = match self.input.read(&mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(AudioError::PcmRead(e)),
            };
            if n == 0 {
                self.done = true;
                if !self.carry.is_empty() {
                    tracing::warn!(bytes = self.carry.len(), "raw PCM stream ended inside a frame; dropped");
                }
                let tail = self.resampler.finish()?;
                return Ok(if tail.is_empty() { None } else { Some(tail) });
            }
            self.carry.extend_from_slice(&self.buf[..n]);
            let whole = self.carry.len() - self.carry.len() % self.format.frame_bytes();
            let samples: Vec<f32> = match self.format.encoding {
                PcmEncoding::S16le => self.carry[..whole]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                    .collect(),
                PcmEncoding::F32le => {
                    self.carry[..whole].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
                }
            };
            self.carry.drain(..whole);
            let mono = downmix(&samples, self.format.channels as usize);
            let out = self.resampler.push(&mono)?;
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }
}
