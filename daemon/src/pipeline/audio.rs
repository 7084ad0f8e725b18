//! The audio thread: owns the source and the front end (wake word, VAD, endpointing: synchronous
//! ONNX inference) and sends [`AudioEvent`]s to the session loop over a bounded channel of
//! [`EVENT_CHANNEL`] slots.
//!
//! When the channel is full (the session loop is still transcribing or understanding earlier
//! commands), live input does not wait: the event is dropped and counted in `events_dropped_busy`
//! with a warning, and the microphone ring buffer itself is never blocked. File input waits instead
//! (back-pressure), and after each utterance it waits for the session loop's word, so a file runs
//! exactly as if spoken with pauses.
//!
//! Half duplex: while Sotto speaks, and for `tail` after, the front end is fed silence in place
//! of what the microphone hears (its own voice), so neither the wake word nor the endpointer can
//! take it for the user. Live input keeps running meanwhile. File input stands for a microphone
//! too: when speaking ends, the audio the microphone would have heard meanwhile (as long as the
//! speech, plus the tail) is read from the file and replaced by silence, before anything else the
//! session loop asked for (listening for an answer) is carried out.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};

use sotto_audio::{AudioInput, BlockSource, Event, FrontEnd};
use tokio::sync::mpsc;

/// Slots between the audio thread and the session loop (see the module doc for when full).
pub const EVENT_CHANNEL: usize = 8;
const SAMPLE_RATE: f32 = 16_000.0;

/// What the audio thread reports.
#[derive(Debug)]
pub enum AudioEvent {
    Front(Event),
    /// The source failed for good (a file that cannot be read).
    SourceError(String),
    End,
}

/// What the session loop asks of the audio thread.
#[derive(Debug)]
pub enum AudioCommand {
    /// Start listening for a command now, without a wake word.
    ListenNow,
    /// Stop collecting a command (its question ended); wake words count again.
    StopListening,
    /// End the utterance at the pause that ended at this sample (an early decision).
    EndAt {
        end_sample: u64,
    },
    /// File input only: the last utterance is handled, go on.
    Continue,
    /// Sotto starts speaking (see the module doc).
    Speaking,
    /// Sotto's speech ended after this many samples (16 kHz).
    Spoke {
        samples: u64,
    },
    Stop,
}

/// What the audio thread counts.
#[derive(Debug, Default)]
pub struct AudioStats {
    pub wakes_muted: AtomicU64,
    pub events_dropped_busy: AtomicU64,
    /// Samples replaced by silence while Sotto spoke.
    pub samples_while_speaking: AtomicU64,
}

/// Everything the audio thread runs with.
pub struct AudioThread {
    pub front: FrontEnd,
    pub input: AudioInput,
    /// Idle audio gathered before the wake-word models run (`wake.batch_ms`, in samples).
    pub idle_batch: usize,
    pub events: mpsc::Sender<AudioEvent>,
    pub commands: std_mpsc::Receiver<AudioCommand>,
    pub muted: Arc<AtomicBool>,
    pub stats: Arc<AudioStats>,
    /// Samples after the end of Sotto's speech that are still its echo (`tts.tail_ms`).
    pub tail: u64,
}

/// What the front end may hear (half duplex).
#[derive(Debug, Clone, Copy)]
enum Hearing {
    Normal,
    /// Sotto speaks since this input sample.
    Speaking {
        since: u64,
    },
    /// Silence up to this input sample.
    DeafUntil(u64),
}

impl AudioThread {
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("sotto-audio".into()).spawn(move || self.run())
    }

    fn run(mut self) {
        let file_mode = self.input.is_file();
        let events = self.events.clone();
        let stats = self.stats.clone();
        let send = move |event: AudioEvent| -> bool {
            if file_mode {
                return events.blocking_send(event).is_ok();
            }
            match events.try_send(event) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(event)) => {
                    stats.events_dropped_busy.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(event = %describe(&event), "pipeline busy: audio event dropped");
                    true
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        let source = match sotto_audio::open_source(&self.input) {
            Ok(source) => source,
            Err(err) => {
                send(AudioEvent::SourceError(err.to_string()));
                return;
            }
        };
        let outlet = Outlet {
            send: &send,
            commands: &self.commands,
            muted: &self.muted,
            stats: &self.stats,
            file_mode,
            source: RefCell::new(source),
            read: Cell::new(0),
            hearing: Cell::new(Hearing::Normal),
            tail: self.tail,
            resumed: Cell::new(false),
        };
        let front = &mut self.front;
        // Idle audio gathered for the wake word models; empty while listening.
        let mut gathered: Vec<f32> = Vec::new();
        loop {
            // Commands first: a follow-up listen must start before the next audio.
            while let Ok(command) = self.commands.try_recv() {
                if !gathered.is_empty() && !outlet.feed(front, &std::mem::take(&mut gathered)) {
                    return;
                }
                if !outlet.obey(front, command) {
                    return;
                }
            }
            let mut block = match outlet.next_block() {
                Ok(Some(block)) => block,
                Ok(None) => break,
                Err(err) => {
                    send(AudioEvent::SourceError(err.to_string()));
                    return;
                }
            };
            if !front.is_listening() && gathered.len() + block.len() < self.idle_batch {
                gathered.extend_from_slice(&block);
                continue;
            }
            if !gathered.is_empty() {
                gathered.extend_from_slice(&block);
                block = std::mem::take(&mut gathered);
            }
            if !outlet.feed(front, &block) {
                return;
            }
        }
        if !gathered.is_empty() && !outlet.feed(front, &gathered) {
            return;
        }
        let last = front.finish();
        if outlet.pass(front, last) {
            send(AudioEvent::End);
        }
    }
}

/// Where the audio thread's front-end events go.
struct Outlet<'a> {
    send: &'a dyn Fn(AudioEvent) -> bool,
    commands: &'a std_mpsc::Receiver<AudioCommand>,
    muted: &'a AtomicBool,
    stats: &'a AudioStats,
    file_mode: bool,
    source: RefCell<Box<dyn BlockSource>>,
    /// Input samples read so far.
    read: Cell<u64>,
    hearing: Cell<Hearing>,
    tail: u64,
    /// File input: the session loop's word to go on came while waiting for speech to end.
    resumed: Cell<bool>,
}

impl Outlet<'_> {
    /// The next block of input, with what Sotto's own voice covers replaced by silence.
    fn next_block(&self) -> Result<Option<Vec<f32>>, sotto_audio::AudioError> {
        let Some(mut block) = self.source.borrow_mut().next_block()? else { return Ok(None) };
        let start = self.read.get();
        self.read.set(start + block.len() as u64);
        let deaf = match self.hearing.get() {
            Hearing::Normal => 0,
            Hearing::Speaking { .. } => block.len(),
            Hearing::DeafUntil(end) => {
                if end <= start + block.len() as u64 {
                    self.hearing.set(Hearing::Normal);
                }
                end.saturating_sub(start).min(block.len() as u64) as usize
            }
        };
        block[..deaf].fill(0.0);
        self.stats.samples_while_speaking.fetch_add(deaf as u64, Ordering::Relaxed);
        Ok(Some(block))
    }

    /// Sotto stopped speaking after `samples`: deaf until that much input since it started, plus
    /// the tail, has passed. File input reads and feeds that stretch now (see the module doc).
    fn spoke(&self, front: &mut FrontEnd, samples: u64) -> bool {
        let since = match self.hearing.get() {
            Hearing::Speaking { since } => since,
            _ => self.read.get(),
        };
        let until = since + samples + if samples > 0 { self.tail } else { 0 };
        self.hearing.set(if until > self.read.get() { Hearing::DeafUntil(until) } else { Hearing::Normal });
        while self.file_mode && matches!(self.hearing.get(), Hearing::DeafUntil(_)) {
            match self.next_block() {
                Ok(Some(block)) => {
                    if !self.feed(front, &block) {
                        return false;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    (self.send)(AudioEvent::SourceError(err.to_string()));
                    return false;
                }
            }
        }
        true
    }

    /// Runs `samples` through the front end and passes its events on. Returns false to stop.
    fn feed(&self, front: &mut FrontEnd, samples: &[f32]) -> bool {
        match front.feed(samples) {
            Ok(evs) => self.pass(front, evs),
            Err(err) => {
                (self.send)(AudioEvent::SourceError(format!("audio front end: {err}")));
                false
            }
        }
    }

    /// Carries out a command of the session loop. Returns false to stop.
    fn obey(&self, front: &mut FrontEnd, command: AudioCommand) -> bool {
        match command {
            AudioCommand::Stop => return false,
            AudioCommand::ListenNow => match front.listen_now() {
                Ok(evs) => return self.pass(front, evs),
                Err(err) => tracing::error!(error = %err, "cannot start listening"),
            },
            AudioCommand::StopListening => front.stop_listening(),
            AudioCommand::EndAt { end_sample } => {
                let events = front.end_at_pause(end_sample);
                return self.pass(front, events);
            }
            AudioCommand::Continue => {}
            AudioCommand::Speaking => {
                // A text right after another starts where the other's echo ends.
                let since = match self.hearing.get() {
                    Hearing::DeafUntil(end) => end.max(self.read.get()),
                    _ => self.read.get(),
                };
                self.hearing.set(Hearing::Speaking { since });
                if self.file_mode {
                    // The file stands still while Sotto speaks; it goes on by the speech's length.
                    return self.wait_for_speech(front);
                }
            }
            AudioCommand::Spoke { samples } => return self.spoke(front, samples),
        }
        true
    }

    /// File input: hold the audio until Sotto has spoken, carrying out other commands meanwhile.
    fn wait_for_speech(&self, front: &mut FrontEnd) -> bool {
        loop {
            match self.commands.recv() {
                Ok(AudioCommand::Spoke { samples }) => return self.spoke(front, samples),
                Ok(AudioCommand::Stop) | Err(_) => return false,
                // Meant for the wait for the session around this one: kept for it.
                Ok(AudioCommand::Continue) => self.resumed.set(true),
                Ok(AudioCommand::ListenNow) => {
                    self.resumed.set(true);
                    if !self.obey(front, AudioCommand::ListenNow) {
                        return false;
                    }
                }
                Ok(other) => {
                    if !self.obey(front, other) {
                        return false;
                    }
                }
            }
        }
    }

    /// Sends `evs` to the session loop (wake words dropped while muted); file input then waits
    /// for each utterance to be handled. Returns false to stop.
    fn pass(&self, front: &mut FrontEnd, evs: Vec<Event>) -> bool {
        for e in evs {
            if let Event::Wake(d) = &e {
                if self.muted.load(Ordering::Relaxed) {
                    self.stats.wakes_muted.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(wake = %d.wake, "wake word while muted: ignored");
                    continue;
                }
            }
            let is_utterance = matches!(e, Event::Utterance(_));
            if !(self.send)(AudioEvent::Front(e)) {
                return false;
            }
            if self.file_mode && is_utterance && !self.wait_for_session(front) {
                return false;
            }
        }
        true
    }

    /// File input: hold the audio until the session loop has handled the utterance. Commands
    /// other than its word (a question timing out meanwhile) are carried out while waiting.
    fn wait_for_session(&self, front: &mut FrontEnd) -> bool {
        loop {
            if self.resumed.take() {
                return true;
            }
            match self.commands.recv() {
                Ok(AudioCommand::Continue) => return true,
                Ok(AudioCommand::ListenNow) => return self.obey(front, AudioCommand::ListenNow),
                Ok(AudioCommand::Stop) | Err(_) => return false,
                Ok(other) => {
                    if !self.obey(front, other) {
                        return false;
                    }
                }
            }
        }
    }
}

/// An audio event for a log line: an utterance by its span, never its samples (a `Debug` of
/// them is megabytes of what was said, in the journal).
pub fn describe(event: &AudioEvent) -> String {
    match event {
        AudioEvent::Front(Event::Utterance(u)) => format!(
            "utterance of {:.2} s at sample {}{}",
            u.samples.len() as f32 / SAMPLE_RATE,
            u.start_sample,
            if u.truncated { " (truncated)" } else { "" }
        ),
        AudioEvent::Front(Event::Pause(u)) => {
            format!("pause after {:.2} s of speech", u.samples.len() as f32 / SAMPLE_RATE)
        }
        AudioEvent::Front(other) => format!("{other:?}"),
        AudioEvent::SourceError(e) => format!("source error: {e}"),
        AudioEvent::End => "end of input".into(),
    }
}
