//! Microphone capture with `cpal`. The audio callback only downmixes into a lock-free ring
//! buffer (`rtrb`) and never blocks; samples that do not fit are dropped and counted, and the
//! reading side logs every overrun. A device that fails or disappears is reopened with backoff by a
//! supervisor thread; each (re)opened stream gets its own ring, handed to the reader.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::resample::StreamResampler;
use crate::AudioError;

/// Which device and how much buffering.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Device name as listed by `sotto audio devices` (exact, else a unique case-insensitive
    /// substring); empty for the default input device.
    pub device: String,
    /// Ring buffer length: how long the reader may stall before samples are dropped.
    pub buffer_ms: u32,
    /// `read` returns once this much audio is there: the wake-word models cost much less per
    /// frame on runs of frames (2 frames: about 40% less CPU than one by one) at this much
    /// added detection latency.
    pub block_ms: u32,
    pub retry_initial_ms: u32,
    pub retry_max_ms: u32,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self { device: String::new(), buffer_ms: 2000, block_ms: 160, retry_initial_ms: 500, retry_max_ms: 30_000 }
    }
}

/// An input device.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceInfo {
    pub name: String,
    pub default: bool,
    /// Default sample rate, channels and format, when the device reports one.
    pub config: Option<String>,
}

/// Input devices of the default host.
pub fn list_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    list(Direction::Input)
}

/// Output devices of the default host (for `sotto say --device`).
pub fn list_output_devices() -> Result<Vec<DeviceInfo>, AudioError> {
    list(Direction::Output)
}

fn list(dir: Direction) -> Result<Vec<DeviceInfo>, AudioError> {
    let host = cpal::default_host();
    let (default, devices, side) = match dir {
        Direction::Input => (host.default_input_device(), host.input_devices(), "input"),
        Direction::Output => (host.default_output_device(), host.output_devices(), "output"),
    };
    let default_name = default.map(|d| d.to_string());
    let devices = devices.map_err(|e| AudioError::Device(format!("listing {side} devices: {e}")))?;
    Ok(devices
        .map(|d| {
            let name = d.to_string();
            let config = match dir {
                Direction::Input => d.default_input_config(),
                Direction::Output => d.default_output_config(),
            };
            let config =
                config.ok().map(|c| format!("{} Hz, {} ch, {:?}", c.sample_rate(), c.channels(), c.sample_format()));
            DeviceInfo { default: default_name.as_deref() == Some(name.as_str()), name, config }
        })
        .collect())
}

/// Health of the capture, for the daemon's status.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct CaptureStatus {
    /// `starting`, `running`, `retrying` or `stopped`.
    pub state: String,
    pub device: Option<String>,
    pub sample_rate: Option<u32>,
    pub last_error: Option<String>,
    /// Times the stream was (re)opened after the first.
    pub reopens: u64,
    /// Samples dropped because the reader was behind.
    pub dropped_samples: u64,
}

struct Shared {
    status: Mutex<CaptureStatus>,
    dropped: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    fn set(&self, f: impl FnOnce(&mut CaptureStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

struct Ring {
    consumer: rtrb::Consumer<f32>,
    rate: u32,
}

/// A running capture: read 16 kHz mono blocks with `read`.
pub struct Capture {
    shared: Arc<Shared>,
    rings: mpsc::Receiver<Ring>,
    current: Option<(Ring, StreamResampler)>,
    reported_drops: u64,
    block_ms: u32,
    supervisor: Option<JoinHandle<()>>,
}

impl Capture {
    /// Starts capturing; a missing device is not an error here: it is retried and reported in
    /// `status()`.
    pub fn start(cfg: CaptureConfig) -> Result<Self, AudioError> {
        if cfg.buffer_ms < 100
            || cfg.block_ms > cfg.buffer_ms / 2
            || cfg.retry_initial_ms == 0
            || cfg.retry_max_ms < cfg.retry_initial_ms
        {
            return Err(AudioError::Config(format!(
                "capture: buffer_ms = {} (min 100), block_ms = {} (at most buffer_ms / 2), retry_initial_ms = {} (min 1), \
                 retry_max_ms = {} (>= retry_initial_ms)",
                cfg.buffer_ms, cfg.block_ms, cfg.retry_initial_ms, cfg.retry_max_ms
            )));
        }
        let shared = Arc::new(Shared {
            status: Mutex::new(CaptureStatus { state: "starting".into(), ..Default::default() }),
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let (tx, rx) = mpsc::channel();
        let sup_shared = shared.clone();
        let block_ms = cfg.block_ms;
        let supervisor = std::thread::Builder::new()
            .name("sotto-capture".into())
            .spawn(move || supervise(cfg, sup_shared, tx))
            .map_err(|e| AudioError::Device(format!("spawning the capture thread: {e}")))?;
        Ok(Self { shared, rings: rx, current: None, reported_drops: 0, block_ms, supervisor: Some(supervisor) })
    }

    pub fn status(&self) -> CaptureStatus {
        let mut s = self.shared.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.dropped_samples = self.shared.dropped.load(Ordering::Relaxed);
        s
    }

    /// Waits up to `timeout` for `block_ms` of audio; returns the 16 kHz mono samples there are
    /// by then (possibly none).
    pub fn read(&mut self, timeout: Duration) -> Result<Vec<f32>, AudioError> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            self.report_drops();
            if self.current.as_ref().is_none_or(|(ring, _)| ring.consumer.is_abandoned() && ring.consumer.is_empty()) {
                let wait = deadline.saturating_duration_since(std::time::Instant::now());
                match self.rings.recv_timeout(wait) {
                    Ok(ring) => {
                        let resampler = StreamResampler::new(ring.rate)?;
                        self.current = Some((ring, resampler));
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => return Ok(Vec::new()),
                    Err(mpsc::RecvTimeoutError::Disconnected) => {
                        return Err(AudioError::Device("capture stopped".into()));
                    }
                }
            }
            let (ring, resampler) = self.current.as_mut().expect("set above");
            let n = ring.consumer.slots();
            let block = (ring.rate as u64 * self.block_ms as u64 / 1000) as usize;
            let timed_out = std::time::Instant::now() >= deadline;
            // A stream that ended (device gone) hands over what it has without waiting.
            if n > 0 && (n >= block || timed_out || ring.consumer.is_abandoned()) {
                let chunk = ring.consumer.read_chunk(n).expect("slots available");
                let (a, b) = chunk.as_slices();
                let mut raw = Vec::with_capacity(n);
                raw.extend_from_slice(a);
                raw.extend_from_slice(b);
                chunk.commit_all();
                return resampler.push(&raw);
            }
            if std::time::Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn report_drops(&mut self) {
        let dropped = self.shared.dropped.load(Ordering::Relaxed);
        if dropped > self.reported_drops {
            tracing::warn!(
                dropped = dropped - self.reported_drops,
                total = dropped,
                "capture overrun: the reader fell behind, samples dropped"
            );
            self.reported_drops = dropped;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.supervisor.take() {
            let _ = h.join();
        }
    }
}

/// Opens the device, watches it, reopens it with exponential backoff when it fails.
fn supervise(cfg: CaptureConfig, shared: Arc<Shared>, rings: mpsc::Sender<Ring>) {
    let mut backoff = cfg.retry_initial_ms as u64;
    let mut opened = 0u64;
    while !shared.stop.load(Ordering::Relaxed) {
        let failed = Arc::new(AtomicBool::new(false));
        match open(&cfg, &shared, failed.clone()) {
            Ok((stream, ring, name)) => {
                let rate = ring.rate;
                if rings.send(ring).is_err() {
                    break;
                }
                tracing::info!(device = %name, rate, "capture running");
                shared.set(|s| {
                    s.state = "running".into();
                    s.device = Some(name.clone());
                    s.sample_rate = Some(rate);
                    s.reopens = opened;
                });
                opened += 1;
                backoff = cfg.retry_initial_ms as u64;
                while !shared.stop.load(Ordering::Relaxed) && !failed.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                }
                drop(stream);
                if shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                tracing::warn!(device = %name, "capture device failed; reopening");
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_ms = backoff, "cannot open capture device; retrying");
                shared.set(|s| {
                    s.state = "retrying".into();
                    s.last_error = Some(e.to_string());
                });
                let until = std::time::Instant::now() + Duration::from_millis(backoff);
                while !shared.stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(50));
                }
                backoff = (backoff * 2).min(cfg.retry_max_ms as u64);
            }
        }
    }
    shared.set(|s| s.state = "stopped".into());
}

/// Which side of the sound card a device name refers to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Direction {
    Input,
    Output,
}

/// The device named `wanted` (exact, else a unique case-insensitive substring; empty: the default).
pub(crate) fn find_device(host: &cpal::Host, wanted: &str, dir: Direction) -> Result<cpal::Device, AudioError> {
    let side = match dir {
        Direction::Input => "input",
        Direction::Output => "output",
    };
    if wanted.is_empty() {
        let default = match dir {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        };
        return default.ok_or_else(|| AudioError::Device(format!("no default {side} device")));
    }
    let listed = match dir {
        Direction::Input => host.input_devices(),
        Direction::Output => host.output_devices(),
    };
    let devices: Vec<cpal::Device> =
        listed.map_err(|e| AudioError::Device(format!("listing {side} devices to find {wanted:?}: {e}")))?.collect();
    if let Some(d) = devices.iter().find(|d| d.to_string() == wanted) {
        return Ok(d.clone());
    }
    let lower = wanted.to_lowercase();
    let matches: Vec<&cpal::Device> =
        devices.iter().filter(|d| d.to_string().to_lowercase().contains(&lower)).collect();
    match matches[..] {
        [d] => Ok(d.clone()),
        [] => {
            let list = match dir {
                Direction::Input => "sotto audio devices",
                Direction::Output => "sotto audio devices --output",
            };
            Err(AudioError::Device(format!("no {side} device named {wanted:?} (see `{list}`)")))
        }
        _ => Err(AudioError::Device(format!(
            "device name {wanted:?} is ambiguous: {}",
            matches.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

fn open(
    cfg: &CaptureConfig,
    shared: &Arc<Shared>,
    failed: Arc<AtomicBool>,
) -> Result<(cpal::Stream, Ring, String), AudioError> {
    let host = cpal::default_host();
    let device = find_device(&host, &cfg.device, Direction::Input)?;
    let name = device.to_string();
    let supported = device
        .default_input_config()
        .map_err(|e| AudioError::Device(format!("{name}: no input configuration: {e}")))?;
    let config = supported.config();
    let rate = config.sample_rate;
    let channels = config.channels as usize;
    let capacity = (rate as usize * cfg.buffer_ms as usize / 1000).max(4096);
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    let on_error = {
        let failed = failed.clone();
        let name = name.clone();
        move |e: cpal::Error| {
            // Runs on the audio thread: only flag it; the supervisor logs and reopens.
            let _ = &name;
            let _ = e;
            failed.store(true, Ordering::Relaxed);
        }
    };
    let dropped = shared.clone();
    let err = |e: cpal::Error| AudioError::Device(format!("{name}: building the input stream: {e}"));
    let stream = match supported.sample_format() {
        cpal::SampleFormat::F32 => {
            let mut w = RingWriter { producer, channels, shared: dropped };
            device
                .build_input_stream::<f32, _, _>(config, move |data, _| w.write(data, |x| x), on_error, None)
                .map_err(err)?
        }
        cpal::SampleFormat::I16 => {
            let mut w = RingWriter { producer, channels, shared: dropped };
            device
                .build_input_stream::<i16, _, _>(
                    config,
                    move |data, _| w.write(data, |x| x as f32 / 32768.0),
                    on_error,
                    None,
                )
                .map_err(err)?
        }
        cpal::SampleFormat::I32 => {
            let mut w = RingWriter { producer, channels, shared: dropped };
            device
                .build_input_stream::<i32, _, _>(
                    config,
                    move |data, _| w.write(data, |x| x as f32 / 2_147_483_648.0),
                    on_error,
                    None,
                )
                .map_err(err)?
        }
        other => return Err(AudioError::Device(format!("{name}: unsupported sample format {other:?}"))),
    };
    stream.play().map_err(|e| AudioError::Device(format!("{name}: starting the stream: {e}")))?;
    Ok((stream, Ring { consumer, rate }, name))
}

/// The audio-callback side: downmix and push without blocking or allocating.
struct RingWriter {
    producer: rtrb::Producer<f32>,
    channels: usize,
    shared: Arc<Shared>,
}

impl RingWriter {
    fn write<T: Copy>(&mut self, data: &[T], to_f32: impl Fn(T) -> f32) {
        let frames = data.len() / self.channels.max(1);
        let fit = frames.min(self.producer.slots());
        if fit < frames {
            self.shared.dropped.fetch_add((frames - fit) as u64, Ordering::Relaxed);
        }
        if fit == 0 {
            return;
        }
        let scale = 1.0 / self.channels as f32;
        let chunk = self.producer.write_chunk_uninit(fit).expect("slots checked");
        let written = chunk.fill_from_iter(
            data.chunks_exact(self.channels).take(fit).map(|f| f.iter().map(|&x| to_f32(x)).sum::<f32>() * scale),
        );
        debug_assert_eq!(written, fit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            status: Mutex::new(CaptureStatus::default()),
            dropped: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        })
    }

    #[test]
    fn ring_writer_downmixes_and_counts_overruns_without_blocking() {
        let (producer, mut consumer) = rtrb::RingBuffer::new(5);
        let s = shared();
        let mut w = RingWriter { producer, channels: 2, shared: s.clone() };
        // 4 stereo frames fit, the 5th fits, the last 3 are dropped.
        let data: Vec<i16> = (0..16).map(|i| (i * 1000) as i16).collect();
        w.write(&data, |x| x as f32);
        assert_eq!(s.dropped.load(Ordering::Relaxed), 3);
        let got: Vec<f32> = std::iter::from_fn(|| consumer.pop().ok()).collect();
        assert_eq!(got, vec![500.0, 2500.0, 4500.0, 6500.0, 8500.0]);
        w.write(&data[..4], |x| x as f32);
        assert_eq!(s.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_missing_device_is_retried_and_reported_not_fatal() {
        let cfg = CaptureConfig {
            device: "no such microphone 1f3a".into(),
            retry_initial_ms: 20,
            retry_max_ms: 40,
            ..Default::default()
        };
        let mut cap = Capture::start(cfg).unwrap();
        let got = cap.read(Duration::from_millis(300)).unwrap();
        assert!(got.is_empty());
        let st = cap.status();
        assert_eq!(st.state, "retrying", "{st:?}");
        assert!(st.last_error.is_some(), "{st:?}");
    }
}
