//! Loudspeaker output with `cpal`, the mirror of [`crate::Capture`]: the writer resamples mono
//! audio to the device's rate into a lock-free ring buffer (`rtrb`); the audio callback only copies
//! from the ring to every channel and plays silence when the ring is empty, so it never blocks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, StreamTrait};

use crate::capture::{find_device, Direction};
use crate::resample::StreamResampler;
use crate::AudioError;

/// How much audio the ring holds: the writer may run this far ahead of the loudspeaker.
const RING_MS: u64 = 500;

/// An open output stream playing mono audio at one source rate.
pub struct Playback {
    stream: cpal::Stream,
    producer: rtrb::Producer<f32>,
    resampler: StreamResampler,
    device: String,
    device_rate: u32,
    failed: Arc<AtomicBool>,
}

impl Playback {
    /// Opens the output device `device` (name as for capture; empty: the default output) for
    /// mono audio at `rate` Hz; the device keeps its own rate and channel count.
    pub fn open(device: &str, rate: u32) -> Result<Self, AudioError> {
        let host = cpal::default_host();
        let dev = find_device(&host, device, Direction::Output)?;
        let name = dev.to_string();
        let supported = dev
            .default_output_config()
            .map_err(|e| AudioError::Device(format!("{name}: no output configuration: {e}")))?;
        let config = supported.config();
        let device_rate = config.sample_rate;
        let channels = (config.channels as usize).max(1);
        let resampler = StreamResampler::between(rate, device_rate)?;
        let (producer, consumer) = rtrb::RingBuffer::new((device_rate as u64 * RING_MS / 1000) as usize);
        let failed = Arc::new(AtomicBool::new(false));
        let on_error = {
            let failed = failed.clone();
            // Runs on the audio thread: only flag it; the writer reports it.
            move |_e: cpal::Error| failed.store(true, Ordering::Relaxed)
        };
        let err = |e: cpal::Error| AudioError::Device(format!("{name}: building the output stream: {e}"));
        let mut reader = RingReader { consumer, channels };
        let stream = match supported.sample_format() {
            cpal::SampleFormat::F32 => dev
                .build_output_stream::<f32, _, _>(config, move |out, _| reader.fill(out, |x| x), on_error, None)
                .map_err(err)?,
            cpal::SampleFormat::I16 => dev
                .build_output_stream::<i16, _, _>(
                    config,
                    move |out, _| reader.fill(out, |x| (x.clamp(-1.0, 1.0) * 32767.0) as i16),
                    on_error,
                    None,
                )
                .map_err(err)?,
            cpal::SampleFormat::I32 => dev
                .build_output_stream::<i32, _, _>(
                    config,
                    move |out, _| reader.fill(out, |x| (x.clamp(-1.0, 1.0) as f64 * 2_147_483_647.0) as i32),
                    on_error,
                    None,
                )
                .map_err(err)?,
            other => return Err(AudioError::Device(format!("{name}: unsupported sample format {other:?}"))),
        };
        stream.play().map_err(|e| AudioError::Device(format!("{name}: starting the stream: {e}")))?;
        tracing::debug!(device = %name, rate, device_rate, channels, "playback open");
        Ok(Self { stream, producer, resampler, device: name, device_rate, failed })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// Queues samples (at the source rate), waiting while the ring is full.
    pub fn write(&mut self, samples: &[f32]) -> Result<(), AudioError> {
        let out = self.resampler.push(samples)?;
        self.queue(&out)
    }

    /// Queues what the resampler still holds and waits until the loudspeaker has played it all.
    pub fn finish(mut self) -> Result<(), AudioError> {
        let tail = self.resampler.finish()?;
        self.queue(&tail)?;
        while self.producer.slots() < self.producer.buffer().capacity() {
            self.check()?;
            std::thread::sleep(Duration::from_millis(10));
        }
        // The device's own buffer is still playing the last callback's worth of samples.
        std::thread::sleep(Duration::from_millis(50));
        drop(self.stream);
        Ok(())
    }

    fn queue(&mut self, mut samples: &[f32]) -> Result<(), AudioError> {
        // Playing runs in real time: a ring that does not move for this long means a stuck device.
        let stall = Duration::from_millis(RING_MS * 4).max(Duration::from_secs(2));
        let mut last_progress = Instant::now();
        while !samples.is_empty() {
            self.check()?;
            let n = samples.len().min(self.producer.slots());
            if n == 0 {
                if last_progress.elapsed() > stall {
                    return Err(AudioError::Device(format!(
                        "{}: output stalled (nothing played for {stall:?})",
                        self.device
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            let chunk = self.producer.write_chunk_uninit(n).expect("slots checked");
            chunk.fill_from_iter(samples[..n].iter().copied());
            samples = &samples[n..];
            last_progress = Instant::now();
        }
        Ok(())
    }

    fn check(&self) -> Result<(), AudioError> {
        if self.failed.load(Ordering::Relaxed) {
            return Err(AudioError::Device(format!("{}: output stream failed ({} Hz)", self.device, self.device_rate)));
        }
        Ok(())
    }
}

/// The audio-callback side: one mono sample to every channel of a frame, silence when empty.
struct RingReader {
    consumer: rtrb::Consumer<f32>,
    channels: usize,
}

impl RingReader {
    fn fill<T: Copy>(&mut self, out: &mut [T], from_f32: impl Fn(f32) -> T) {
        for frame in out.chunks_mut(self.channels) {
            let x = from_f32(self.consumer.pop().unwrap_or(0.0));
            frame.fill(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_reader_copies_to_every_channel_and_pads_with_silence() {
        let (mut producer, consumer) = rtrb::RingBuffer::new(8);
        for x in [0.5, -0.25] {
            producer.push(x).unwrap();
        }
        let mut r = RingReader { consumer, channels: 2 };
        let mut out = [9.0f32; 6];
        r.fill(&mut out, |x| x);
        assert_eq!(out, [0.5, 0.5, -0.25, -0.25, 0.0, 0.0]);
    }

    #[test]
    fn plays_through_alsas_null_device_resampled_to_its_rate() {
        // alsa-lib's `null` PCM (always configured by libasound2) takes a real stream: the device
        // opens at its own rate (48 kHz here), the voice rate is converted, and `finish` returns
        // once the ring has drained.
        let mut p = Playback::open("Discard all samples", 22_050).unwrap_or_else(|e| panic!("{e}"));
        let tone: Vec<f32> = (0..11_025).map(|i| (i as f32 * 0.1).sin() * 0.3).collect();
        for chunk in tone.chunks(3000) {
            p.write(chunk).unwrap();
        }
        assert!(p.device().contains("Discard"));
        p.finish().unwrap();
    }

    #[test]
    fn an_unknown_output_device_is_an_error_naming_it() {
        match Playback::open("no such loudspeaker 7c2e", 22_050) {
            Err(e) => assert!(e.to_string().contains("no such loudspeaker 7c2e"), "{e}"),
            Ok(_) => panic!("opened a device that does not exist"),
        }
    }
}
