//! Where the daemon's audio comes from, as blocks of 16 kHz mono samples: a WAV file (as fast as it
//! can be read, or paced at its recorded speed), the microphone, or raw PCM on stdin.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::capture::{Capture, CaptureConfig};
use crate::wav::{read_wav, PcmFormat, PcmReader};
use crate::{AudioError, SAMPLE_RATE};

/// Audio handed on at a time when reading a file as fast as possible.
const FILE_BLOCK: usize = 1280 * 4;
/// The same, paced at the recorded speed: the 80 ms pieces a capture device delivers, so no
/// event is seen earlier than it would be live.
const REALTIME_BLOCK: usize = 1280;

/// Where the audio comes from.
#[derive(Debug, Clone)]
pub enum AudioInput {
    /// A WAV file; `realtime` paces it at its recorded speed (otherwise as fast as it is read).
    File {
        path: PathBuf,
        realtime: bool,
    },
    Microphone {
        device: String,
    },
    Stdin {
        sample_rate: u32,
    },
}

impl AudioInput {
    /// A file waits for its listener (back-pressure) instead of dropping what it is not ready for.
    pub fn is_file(&self) -> bool {
        matches!(self, AudioInput::File { .. })
    }
}

/// A source of sample blocks; `None` at the end of the input.
pub trait BlockSource {
    fn next_block(&mut self) -> Result<Option<Vec<f32>>, AudioError>;
}

/// Opens `input` (a file is read and resampled whole here).
pub fn open_source(input: &AudioInput) -> Result<Box<dyn BlockSource>, AudioError> {
    Ok(match input {
        AudioInput::File { path, realtime } => {
            let samples = read_wav(path)?;
            let block = if *realtime { REALTIME_BLOCK } else { FILE_BLOCK };
            Box::new(FileSource { samples, at: 0, block, pace: realtime.then(|| (Instant::now(), 0)) })
        }
        AudioInput::Microphone { device } => {
            let config = CaptureConfig { device: device.clone(), ..Default::default() };
            Box::new(MicSource(Capture::start(config)?))
        }
        AudioInput::Stdin { sample_rate } => {
            let format = PcmFormat { sample_rate: *sample_rate, ..Default::default() };
            Box::new(StdinSource(PcmReader::new(std::io::stdin(), format)?))
        }
    })
}

struct FileSource {
    samples: Vec<f32>,
    at: usize,
    block: usize,
    /// Real-time pacing: block `at` is due at `clock.0 + (at - clock.1) / 16 kHz`.
    pace: Option<(Instant, usize)>,
}

impl BlockSource for FileSource {
    fn next_block(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        if self.at >= self.samples.len() {
            return Ok(None);
        }
        let end = (self.at + self.block).min(self.samples.len());
        if let Some((since, from)) = &mut self.pace {
            // A block is available once all of it has been "recorded". After a wait for the
            // listener (file input holds the audio meanwhile), the clock restarts: the file goes
            // on as if the speaker had waited for the answer.
            let due = *since + Duration::from_secs_f64((end - *from) as f64 / SAMPLE_RATE as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            } else if now - due > Duration::from_millis(200) {
                (*since, *from) = (now, self.at);
            }
        }
        let block = self.samples[self.at..end].to_vec();
        self.at = end;
        Ok(Some(block))
    }
}

struct MicSource(Capture);

impl BlockSource for MicSource {
    fn next_block(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        Ok(Some(self.0.read(Duration::from_millis(200))?))
    }
}

struct StdinSource(PcmReader<std::io::Stdin>);

impl BlockSource for StdinSource {
    fn next_block(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        self.0.next_block()
    }
}
