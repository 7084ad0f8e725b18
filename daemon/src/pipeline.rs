//! `sotto run`: idle → wake → listening → understanding → (confirming) → idle, for one site.
//!
//! Threads and channels:
//! - The **audio thread** owns the source and the front end (wake word, VAD, endpointing, all
//!   synchronous ONNX inference). It sends [`AudioEvent`]s to the session loop over a bounded
//!   channel of [`EVENT_CHANNEL`] slots. Live input never waits on it: when the channel is full
//!   (the session loop is still understanding earlier commands), the event is dropped and counted
//!   in `events_dropped_busy` with a warning; the microphone ring buffer itself is never blocked.
//!   File input waits instead (back-pressure), and after each utterance it waits for the session
//!   loop's word, so a file runs exactly as if spoken with pauses.
//! - The **session loop** (async) publishes Hermes events, runs speech-to-text and intents on the
//!   blocking worker clients inside `spawn_blocking` (one request at a time per worker), drives the
//!   confirmation gate, and handles control messages, SIGHUP (reload) and SIGTERM (shutdown).
//! - **Speculative speech-to-text**: at a pause inside speech (`endpoint.speculate_after_ms`) the
//!   session loop starts transcribing the utterance as it stands, in the background, while the
//!   endpointer keeps waiting out the trailing silence. If the endpoint then cuts exactly that
//!   audio, its transcript is used and the user waits only for what is left of it; if speech
//!   resumed, the result is discarded (the worker finishes it first: one request at a time).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sotto_audio::{Event, FrontEnd, Utterance};
use sotto_intents::confirm::{ConfirmationGate, Outcome, SystemClock};
use sotto_intents::{speech_grammar, Intents, PlannedAction, Resolution};
use sotto_workers::{SlmClient, SttClient, TranscribeOptions, Transcript, WorkerError};
use tokio::sync::mpsc;

use crate::config::{AudioSource, Config};
use crate::engines::{self, WorkerLanguageModel};
use crate::mqtt::{self, ControlMessage, HermesEvent, MqttHub, PrintMode, TerminationReason};

/// Slots between the audio thread and the session loop (see the module doc for when full).
pub const EVENT_CHANNEL: usize = 8;
const SAMPLE_RATE: f32 = 16_000.0;
/// Audio handed to the front end at a time when reading a file.
const FILE_BLOCK: usize = 1280 * 4;
/// The same, paced at the recorded speed (`--realtime`).
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

/// What the audio thread reports.
#[derive(Debug)]
pub enum AudioEvent {
    Front(Event),
    /// The source failed for good (a file that cannot be read) or ended.
    SourceError(String),
    End,
}

/// What the session loop asks of the audio thread.
#[derive(Debug)]
enum AudioCommand {
    /// Start listening for a command now, without a wake word.
    ListenNow,
    /// File input only: the last utterance is handled, go on.
    Continue,
    Stop,
}

/// Counters since start, logged at exit.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub wakes: AtomicU64,
    pub wakes_muted: AtomicU64,
    pub events_dropped_busy: AtomicU64,
    pub utterances: AtomicU64,
    pub actions: AtomicU64,
    pub not_recognized: AtomicU64,
    pub rejected: AtomicU64,
    pub worker_errors: AtomicU64,
    /// Speculative transcriptions whose audio was the final utterance / that were discarded.
    pub speculations_used: AtomicU64,
    pub speculations_discarded: AtomicU64,
}

/// Runs the daemon until the input ends (files, stdin) or SIGTERM/SIGINT (microphone).
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    input: Option<PathBuf>,
    realtime: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // Before anything else: "ready" must not be announced while SIGHUP and SIGTERM still have
    // their default action (terminate), and a SIGTERM during start-up is kept for the loop.
    let mut signals = crate::service::Signals::new().context("installing the signal handlers")?;
    let models = engines::locate_models(&config)
        .map_err(|issues| anyhow::anyhow!("models are missing or damaged:\n  {}", issue_lines(&issues)))?;
    sotto_audio::init_onnx_runtime(&models.onnxruntime).context("loading ONNX Runtime")?;
    let intents = engines::load_intents(&config).map_err(|issue| anyhow::anyhow!("{issue}"))?;

    let print = if input.is_some() { PrintMode::Stdout } else { PrintMode::Off };
    let mqtt_secrets = config.mqtt.secrets_fingerprint();
    let (hub, control) = MqttHub::start(&config.mqtt, print).await.context("starting MQTT")?;

    // Engines load in parallel with each other: whisper and the LM take seconds to map.
    let stt_model = models.stt.clone();
    let slm_model = models.slm.clone();
    let (stt, slm) = {
        let cfg_stt = config.clone();
        let cfg_slm = config.clone();
        let stt = tokio::task::spawn_blocking(move || engines::start_stt(&cfg_stt, &stt_model));
        let slm = tokio::task::spawn_blocking(move || slm_model.map(|m| engines::start_slm(&cfg_slm, &m)).transpose());
        (stt.await??, slm.await??)
    };
    let front = FrontEnd::load(&models.front_end, config.endpoint.clone()).context("loading the audio front end")?;

    let audio_input = match (&input, &config.audio.source) {
        (Some(path), _) => AudioInput::File { path: path.clone(), realtime },
        (None, AudioSource::Microphone) => AudioInput::Microphone { device: config.audio.device.clone() },
        (None, AudioSource::Stdin) => AudioInput::Stdin { sample_rate: config.audio.stdin_sample_rate },
    };
    tracing::info!(ready_in_ms = started.elapsed().as_millis() as u64, input = ?audio_input, "sotto ready");
    crate::service::notify_ready();

    let stats = Arc::new(PipelineStats::default());
    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let (commands_tx, commands_rx) = std_mpsc::channel();
    let muted = Arc::new(AtomicBool::new(false));
    let audio = {
        let stats = stats.clone();
        let muted = muted.clone();
        let input = audio_input.clone();
        let idle_batch = config.wake.batch_ms as usize * SAMPLE_RATE as usize / 1000;
        std::thread::Builder::new()
            .name("sotto-audio".into())
            .spawn(move || audio_thread(front, input, idle_batch, events_tx, commands_rx, muted, stats))
            .context("starting the audio thread")?
    };

    let mut session = SessionLoop {
        stt_prompt: config.stt_prompt(&intents),
        gate: ConfirmationGate::new(SystemClock, Duration::from_secs_f32(config.intents.confirm_timeout_s)),
        mqtt_secrets,
        config,
        config_path,
        hub,
        stt: Arc::new(Mutex::new(stt)),
        slm: slm.map(|s| Arc::new(Mutex::new(s))),
        intents: Arc::new(intents),
        stats: stats.clone(),
        muted,
        commands: commands_tx,
        file_mode: input.is_some(),
        session: None,
        busy_worker: BusyWorker::default(),
        speculation: None,
    };
    session.warm_up_language_model();
    let result = session.run(events_rx, control, &mut signals).await;
    let _ = session.commands.send(AudioCommand::Stop);
    crate::service::notify_stopping();
    // The audio thread may sit in a blocking read; it notices Stop at its next block.
    drop(audio);
    let flushed = session.hub.flush(Duration::from_secs(5)).await;
    let _ = session.hub.shutdown(Duration::from_secs(3)).await;
    tracing::info!(stats = ?stats, mqtt = ?session.hub.stats(), "sotto stopped");
    result?;
    flushed.context("publishing what was queued before exit")?;
    Ok(())
}

fn audio_thread(
    mut front: FrontEnd,
    input: AudioInput,
    idle_batch: usize,
    events: mpsc::Sender<AudioEvent>,
    commands: std_mpsc::Receiver<AudioCommand>,
    muted: Arc<AtomicBool>,
    stats: Arc<PipelineStats>,
) {
    let file_mode = matches!(input, AudioInput::File { .. });
    let send = |event: AudioEvent| -> bool {
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
    let outlet = Outlet { send: &send, commands: &commands, muted: &muted, stats: &stats, file_mode };
    let mut source = match open_source(&input) {
        Ok(source) => source,
        Err(err) => {
            send(AudioEvent::SourceError(format!("{err:#}")));
            return;
        }
    };
    // Idle audio gathered for the wake word models (`wake.batch_ms`); empty while listening.
    let mut gathered: Vec<f32> = Vec::new();
    loop {
        // Commands first: a follow-up listen must start before the next audio.
        while let Ok(command) = commands.try_recv() {
            match command {
                AudioCommand::Stop => return,
                AudioCommand::ListenNow => {
                    // What was gathered came before the request: it is not part of the answer.
                    if !gathered.is_empty() && !outlet.feed(&mut front, &std::mem::take(&mut gathered)) {
                        return;
                    }
                    match front.listen_now() {
                        Ok(evs) => {
                            for e in evs {
                                send(AudioEvent::Front(e));
                            }
                        }
                        Err(err) => tracing::error!(error = %err, "cannot start listening"),
                    }
                }
                AudioCommand::Continue => {}
            }
        }
        let mut block = match source.next_block() {
            Ok(Some(block)) => block,
            Ok(None) => break,
            Err(err) => {
                send(AudioEvent::SourceError(format!("{err:#}")));
                return;
            }
        };
        if !front.is_listening() && gathered.len() + block.len() < idle_batch {
            gathered.extend_from_slice(&block);
            continue;
        }
        if !gathered.is_empty() {
            gathered.extend_from_slice(&block);
            block = std::mem::take(&mut gathered);
        }
        if !outlet.feed(&mut front, &block) {
            return;
        }
    }
    if !gathered.is_empty() && !outlet.feed(&mut front, &gathered) {
        return;
    }
    let last = front.finish();
    if outlet.pass(&mut front, last) {
        send(AudioEvent::End);
    }
}

/// Where the audio thread's front-end events go.
struct Outlet<'a> {
    send: &'a dyn Fn(AudioEvent) -> bool,
    commands: &'a std_mpsc::Receiver<AudioCommand>,
    muted: &'a AtomicBool,
    stats: &'a PipelineStats,
    file_mode: bool,
}

impl Outlet<'_> {
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
            if self.file_mode && is_utterance && !wait_for_session(front, self.commands, self.send) {
                return false;
            }
        }
        true
    }
}

/// File input: hold the audio until the session loop has handled the utterance. Returns false to stop.
fn wait_for_session(
    front: &mut FrontEnd,
    commands: &std_mpsc::Receiver<AudioCommand>,
    send: &dyn Fn(AudioEvent) -> bool,
) -> bool {
    match commands.recv() {
        Ok(AudioCommand::Continue) => true,
        Ok(AudioCommand::ListenNow) => match front.listen_now() {
            Ok(evs) => evs.into_iter().all(|e| send(AudioEvent::Front(e))),
            Err(err) => {
                tracing::error!(error = %err, "cannot start listening");
                true
            }
        },
        Ok(AudioCommand::Stop) | Err(_) => false,
    }
}

trait BlockSource {
    fn next_block(&mut self) -> anyhow::Result<Option<Vec<f32>>>;
}

struct FileSource {
    samples: Vec<f32>,
    at: usize,
    block: usize,
    /// Real-time pacing: block `at` is due at `clock.0 + (at - clock.1) / 16 kHz`.
    pace: Option<(Instant, usize)>,
}

impl BlockSource for FileSource {
    fn next_block(&mut self) -> anyhow::Result<Option<Vec<f32>>> {
        if self.at >= self.samples.len() {
            return Ok(None);
        }
        let end = (self.at + self.block).min(self.samples.len());
        if let Some((since, from)) = &mut self.pace {
            // A block is available once all of it has been "recorded". After a wait for the
            // session loop (file input holds the audio meanwhile), the clock restarts: the file
            // goes on as if the speaker had waited for the answer.
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

struct MicSource(sotto_audio::Capture);

impl BlockSource for MicSource {
    fn next_block(&mut self) -> anyhow::Result<Option<Vec<f32>>> {
        Ok(Some(self.0.read(Duration::from_millis(200))?))
    }
}

struct StdinSource(sotto_audio::PcmReader<std::io::Stdin>);

impl BlockSource for StdinSource {
    fn next_block(&mut self) -> anyhow::Result<Option<Vec<f32>>> {
        Ok(self.0.next_block()?)
    }
}

fn open_source(input: &AudioInput) -> anyhow::Result<Box<dyn BlockSource>> {
    Ok(match input {
        AudioInput::File { path, realtime } => {
            let samples = sotto_audio::read_wav(path).with_context(|| format!("reading {}", path.display()))?;
            // Paced, in the 80 ms pieces a capture device delivers, so no event is seen early.
            let block = if *realtime { REALTIME_BLOCK } else { FILE_BLOCK };
            Box::new(FileSource { samples, at: 0, block, pace: realtime.then(|| (Instant::now(), 0)) })
        }
        AudioInput::Microphone { device } => {
            let config = sotto_audio::CaptureConfig { device: device.clone(), ..Default::default() };
            Box::new(MicSource(sotto_audio::Capture::start(config)?))
        }
        AudioInput::Stdin { sample_rate } => {
            let format = sotto_audio::PcmFormat { sample_rate: *sample_rate, ..Default::default() };
            Box::new(StdinSource(sotto_audio::PcmReader::new(std::io::stdin(), format)?))
        }
    })
}

/// The worker process serving the request in flight, if any. Its client is locked by the blocking
/// task that waits for the reply, so shutdown kills the process by id instead of waiting for the
/// request's timeout (and leaving a hung process behind).
#[derive(Clone, Default)]
struct BusyWorker(Arc<AtomicU32>);

impl BusyWorker {
    fn during<T>(&self, pid: Option<u32>, request: impl FnOnce() -> T) -> T {
        self.0.store(pid.unwrap_or(0), Ordering::SeqCst);
        let result = request();
        self.0.store(0, Ordering::SeqCst);
        result
    }

    fn kill(&self) {
        let pid = self.0.swap(0, Ordering::SeqCst);
        let Ok(pid) = libc::pid_t::try_from(pid) else { return };
        if pid == 0 {
            return;
        }
        tracing::warn!(pid, "killing the worker that is still busy with the abandoned command");
        // SAFETY: kill(2) has no memory effects; the pid is our own child, still unreaped because
        // its supervisor is blocked waiting on it.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            tracing::warn!(pid, error = %std::io::Error::last_os_error(), "cannot kill the busy worker");
        }
    }
}

/// One dialogue session: from a wake word (or startSession) to its end.
struct Session {
    id: String,
    wake: Option<String>,
    /// Utterances heard in this session; a confirmation follow-up is the second.
    turns: u32,
}

struct SessionLoop {
    config: Config,
    config_path: Option<PathBuf>,
    hub: MqttHub,
    stt: engines::Shared<SttClient>,
    slm: Option<engines::Shared<SlmClient>>,
    intents: Arc<Intents>,
    stt_prompt: Option<String>,
    gate: ConfirmationGate<SystemClock>,
    stats: Arc<PipelineStats>,
    muted: Arc<AtomicBool>,
    commands: std_mpsc::Sender<AudioCommand>,
    file_mode: bool,
    session: Option<Session>,
    busy_worker: BusyWorker,
    /// `MqttSettings::secrets_fingerprint` of the connection made at start, for reload.
    mqtt_secrets: u64,
    /// Speech-to-text started at the last pause, if the utterance has not ended since.
    speculation: Option<Speculation>,
}

type TranscriptTask = tokio::task::JoinHandle<Result<Transcript, WorkerError>>;

/// A transcription started before the endpoint, for the audio up to a pause.
struct Speculation {
    start_sample: u64,
    end_sample: u64,
    task: TranscriptTask,
}

impl SessionLoop {
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<AudioEvent>,
        mut control: mpsc::Receiver<ControlMessage>,
        signals: &mut crate::service::Signals,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(AudioEvent::Front(event)) => {
                        // Understanding a command takes seconds, or a hung worker's whole timeout:
                        // SIGTERM must not wait for it.
                        tokio::select! {
                            () = self.on_front_event(event) => {}
                            () = signals.terminated() => {
                                tracing::info!("termination requested during a command: abandoning it");
                                self.busy_worker.kill();
                                self.end_session(TerminationReason::AbortedByUser, Some("daemon shutting down".into()));
                                return Ok(());
                            }
                        }
                        if signals.take_reload() {
                            self.reload("SIGHUP");
                        }
                    }
                    Some(AudioEvent::SourceError(message)) => {
                        self.end_session(TerminationReason::Error, Some(message.clone()));
                        anyhow::bail!("audio input: {message}");
                    }
                    Some(AudioEvent::End) | None => {
                        self.end_session(TerminationReason::Nominal, None);
                        return Ok(());
                    }
                },
                Some(message) = control.recv() => self.on_control(message),
                signal = signals.next() => match signal {
                    crate::service::ServiceSignal::Reload => self.reload("SIGHUP"),
                    crate::service::ServiceSignal::Terminate => {
                        tracing::info!("termination requested: shutting down");
                        self.end_session(TerminationReason::AbortedByUser, Some("daemon shutting down".into()));
                        return Ok(());
                    }
                },
                _ = tick.tick() => {
                    crate::service::notify_watchdog();
                    self.expire_confirmation();
                }
            }
        }
    }

    async fn on_front_event(&mut self, event: Event) {
        match event {
            Event::Wake(detection) => {
                self.stats.wakes.fetch_add(1, Ordering::Relaxed);
                self.discard_speculation();
                if self.session.is_some() {
                    self.end_session(
                        TerminationReason::AbortedByUser,
                        Some("a new wake word started another session".into()),
                    );
                }
                let id = self.open_session(Some(detection.wake.clone()));
                let sensitivity =
                    self.config.wake.models.iter().find(|w| w.name == detection.wake).map_or(0.5, |w| w.threshold);
                tracing::info!(wake = %detection.wake, time_s = detection.sample as f32 / SAMPLE_RATE, score = detection.score, session = %id, "wake word");
                self.publish(HermesEvent::HotwordDetected(mqtt::HotwordDetected {
                    wakeword_id: detection.wake.clone(),
                    model_id: detection.wake,
                    model_version: String::new(),
                    model_type: "universal".into(),
                    current_sensitivity: sensitivity,
                    site_id: self.site_id(),
                    session_id: Some(id.clone()),
                    lang: Some(self.config.stt.language.clone()),
                }));
                self.publish_session_started(&id);
            }
            Event::NoSpeech { .. } => {
                self.discard_speculation();
                if let Some(action) = self.gate.cancel() {
                    tracing::info!(intent = %action.intent, "no answer to the confirmation question; action dropped");
                    self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed", action.intent)));
                } else {
                    tracing::info!("no speech after the wake word");
                    self.end_session(TerminationReason::Timeout, None);
                }
            }
            Event::Pause(utterance) => {
                self.discard_speculation();
                tracing::debug!(
                    start = utterance.start_sample,
                    end = utterance.end_sample,
                    "pause: transcribing speculatively"
                );
                let (start_sample, end_sample) = (utterance.start_sample, utterance.end_sample);
                let task = self.start_transcription(utterance.samples, self.transcribe_options());
                self.speculation = Some(Speculation { start_sample, end_sample, task });
            }
            Event::Utterance(utterance) => {
                self.stats.utterances.fetch_add(1, Ordering::Relaxed);
                let follow_up = self.understand(utterance).await;
                let command = if follow_up { AudioCommand::ListenNow } else { AudioCommand::Continue };
                if self.file_mode || follow_up {
                    let _ = self.commands.send(command);
                }
            }
        }
    }

    /// Speech-to-text, intents, confirmation and publishing for one utterance. Returns true when
    /// a yes/no follow-up should be listened for.
    async fn understand(&mut self, utterance: Utterance) -> bool {
        if self.session.is_none() {
            // Its wake event was dropped while busy: the session still opens visibly, so the
            // sessionEnded that follows has a start.
            let id = self.open_session(None);
            self.publish_session_started(&id);
        }
        let seconds = utterance.samples.len() as f32 / SAMPLE_RATE;
        // Stream position where the utterance ends (last speech + post-roll): the benchmark compares
        // it with the known end of speech to measure how late the VAD saw speech end.
        let utterance_end_s = utterance.end_sample as f64 / SAMPLE_RATE as f64;
        let started = Instant::now();
        let same_audio = self
            .speculation
            .take_if(|s| (s.start_sample, s.end_sample) == (utterance.start_sample, utterance.end_sample));
        self.discard_speculation();
        let (task, speculative) = match same_audio {
            Some(s) => {
                self.stats.speculations_used.fetch_add(1, Ordering::Relaxed);
                (s.task, true)
            }
            None => (self.start_transcription(utterance.samples.clone(), self.transcribe_options()), false),
        };
        let transcript = match task.await {
            Ok(Ok(t)) => t,
            Ok(Err(err)) => {
                self.stats.worker_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, "speech-to-text failed");
                self.end_session(TerminationReason::Error, Some(format!("speech-to-text: {err}")));
                return false;
            }
            Err(join) => {
                self.end_session(TerminationReason::Error, Some(format!("speech-to-text task: {join}")));
                return false;
            }
        };
        // What the user waited for after the endpoint; with a speculation, less than the work.
        let stt_ms = started.elapsed().as_secs_f64() * 1000.0;
        let stt_compute_ms = transcript.timings.total_ms;
        let text = transcript.text.trim().to_string();
        let likelihood = mean_probability(&transcript.tokens);
        tracing::info!(text = %text, audio_s = seconds, stt_ms, stt_compute_ms, speculative, flagged = ?transcript.flagged, "transcribed");
        self.publish(HermesEvent::TextCaptured(mqtt::TextCaptured {
            text: text.clone(),
            likelihood,
            seconds,
            site_id: self.site_id(),
            session_id: self.session_id(),
            wakeword_id: self.session.as_ref().and_then(|s| s.wake.clone()),
            lang: Some(self.config.stt.language.clone()),
        }));
        if let Some(reason) = transcript.flagged {
            self.not_recognized(&text, Some(format!("unreliable transcript: {reason}")));
            return false;
        }
        if let Some(session) = &mut self.session {
            session.turns += 1;
        }

        // A pending risky action takes this utterance as its yes/no.
        if self.gate.pending().is_some() {
            return self.on_confirmation_answer(&text);
        }

        let intents_started = Instant::now();
        let (text, resolution, second_pass_ms) =
            self.resolve_utterance(text, &transcript.tokens, utterance.samples).await;
        let intents_ms = intents_started.elapsed().as_secs_f64() * 1000.0;
        let follow_up = self.on_resolution(&text, resolution.clone());
        // From the endpoint decision to the action handed to MQTT: what a user waits for after
        // the trailing silence. One line per utterance, parsed by tools/bench_e2e.sh.
        tracing::info!(
            audio_s = seconds,
            utterance_end_s,
            stt_ms,
            stt_compute_ms,
            speculative,
            intents_ms,
            second_pass_ms,
            resolver = ?resolution.resolver,
            intent = ?resolution.intent,
            end_of_speech_to_action_ms = started.elapsed().as_secs_f64() * 1000.0,
            "latency"
        );
        follow_up
    }

    /// The grammar on the free transcript. When the grammar finds no intent at all and the
    /// language model is enabled, the model is asked next (that is what it is there for: requests
    /// phrased outside the templates). When nothing understood the transcript, or the grammar's
    /// match was weak or refused a value, the grammar-constrained second speech-to-text pass
    /// (`stt.second_pass`, [`sotto_intents::speech_grammar`]) reads the audio again: its reading is
    /// kept when Whisper found it about as likely as the free one, goes through the confirmation
    /// gate when only one word of it was barely heard, and is dropped otherwise. Returns the text
    /// the resolution is of, the resolution, and the second pass's time if it ran.
    async fn resolve_utterance(
        &self,
        text: String,
        free_tokens: &[(String, f32)],
        samples: Vec<f32>,
    ) -> (String, Resolution, Option<f64>) {
        let grammar = self.intents.parse(&text);
        let mut model_answer = None;
        if self.slm.is_some() && grammar.intent.is_none() {
            let resolution = self.resolve(text.clone()).await;
            if resolution.intent.is_some() {
                return (text, resolution, None);
            }
            model_answer = Some(resolution);
        }
        let wanted = self.config.stt.second_pass && speech_grammar::wants_second_pass(&text, &grammar);
        let mut second_pass_ms = None;
        if let (true, Ok(graph)) = (wanted, self.intents.speech_grammar()) {
            let started = Instant::now();
            let options = TranscribeOptions { word_graph: Some(graph.text().to_string()), ..self.transcribe_options() };
            let forced = self.start_transcription(samples, options).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            second_pass_ms = Some(ms);
            match forced {
                Ok(Ok(forced)) => {
                    let forced_text = forced.text.trim().to_string();
                    let mut resolution = self.intents.parse(&forced_text);
                    let verdict = if forced.flagged.is_some() {
                        speech_grammar::Verdict::Reject
                    } else {
                        speech_grammar::judge_second_pass(free_tokens, &resolution, &forced.tokens)
                    };
                    tracing::info!(free = %text, forced = %forced_text, ?verdict, ms, intent = ?resolution.intent, "grammar-constrained second pass");
                    match verdict {
                        speech_grammar::Verdict::Keep => return (forced_text, resolution, second_pass_ms),
                        // Plausible, but one word of it Whisper barely heard: act only after a
                        // spoken yes, like a risky intent.
                        speech_grammar::Verdict::Confirm => {
                            resolution.confirm = true;
                            return (forced_text, resolution, second_pass_ms);
                        }
                        speech_grammar::Verdict::Reject => {}
                    }
                }
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "grammar-constrained second pass failed; using the free transcript")
                }
                Err(join) => tracing::warn!(error = %join, "grammar-constrained second pass task failed"),
            }
        }
        let resolution = match model_answer {
            Some(resolution) => resolution,
            None => self.resolve(text.clone()).await,
        };
        (text, resolution, second_pass_ms)
    }

    fn transcribe_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: Some(self.config.stt.language.clone()),
            initial_prompt: self.stt_prompt.clone(),
            ..Default::default()
        }
    }

    /// Transcribes `samples` on the STT worker in the background (queued behind any request in
    /// flight: the worker serves one at a time).
    fn start_transcription(&self, samples: Vec<f32>, options: TranscribeOptions) -> TranscriptTask {
        let stt = self.stt.clone();
        let busy = self.busy_worker.clone();
        tokio::task::spawn_blocking(move || {
            let mut client = stt.lock().unwrap_or_else(|p| p.into_inner());
            let pid = client.supervisor().pid();
            busy.during(pid, || client.transcribe(&samples, &options))
        })
    }

    /// Forgets a speculative transcription whose utterance did not come (the task runs to its end,
    /// its result unused).
    fn discard_speculation(&mut self) {
        if self.speculation.take().is_some() {
            self.stats.speculations_discarded.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Puts the prompt prefix in the language model's cache and computes its calibration priors
    /// in the background, so the first command the grammar misses is not seconds slower than the
    /// rest. A command that needs the model meanwhile waits for it (the client's lock).
    fn warm_up_language_model(&self) {
        let Some(slm) = self.slm.clone() else { return };
        let intents = self.intents.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut client = slm.lock().unwrap_or_else(|p| p.into_inner());
            match intents.warm_up_slm(&mut WorkerLanguageModel(&mut client)) {
                Ok(()) => tracing::info!(took_ms = started.elapsed().as_millis() as u64, "language model warmed up"),
                Err(e) => {
                    tracing::warn!(error = %e, "language-model warm-up failed; the first fallback request will do it")
                }
            }
        });
    }

    async fn resolve(&self, text: String) -> Resolution {
        let intents = self.intents.clone();
        let slm = self.slm.clone();
        let slm_config = sotto_intents::slm::SlmConfig { max_tokens: self.config.slm.max_tokens, ..Default::default() };
        let busy = self.busy_worker.clone();
        let result = tokio::task::spawn_blocking(move || match slm {
            Some(slm) => {
                let mut client = slm.lock().unwrap_or_else(|p| p.into_inner());
                let pid = client.supervisor().pid();
                let mut model = WorkerLanguageModel(&mut client);
                busy.during(pid, || intents.resolve(&text, Some(&mut model), &slm_config))
            }
            None => intents.resolve(&text, None, &slm_config),
        })
        .await;
        result.unwrap_or_else(|join| {
            tracing::error!(error = %join, "intent resolution task failed");
            Resolution::none(0.0)
        })
    }

    fn on_resolution(&mut self, text: &str, resolution: Resolution) -> bool {
        tracing::info!(intent = ?resolution.intent, resolver = ?resolution.resolver, confidence = resolution.confidence,
            rejected = ?resolution.rejected_reason, elapsed_ms = resolution.elapsed_ms, "resolved");
        let Some(intent_name) = resolution.intent.clone() else {
            self.not_recognized(text, None);
            return false;
        };
        if let Some(reason) = &resolution.rejected_reason {
            self.stats.rejected.fetch_add(1, Ordering::Relaxed);
            self.not_recognized(text, Some(format!("{intent_name} rejected: {reason}")));
            return false;
        }
        self.publish(HermesEvent::Intent(self.hermes_intent(text, &resolution)));
        let Some(action) = self.intents.plan_action(&resolution, &self.site_id()) else {
            self.end_session(TerminationReason::Nominal, None);
            return false;
        };
        match self.gate.submit(action, resolution.confirm) {
            Outcome::Execute(action) => {
                self.publish_action(action);
                self.end_session(TerminationReason::Nominal, None);
                false
            }
            Outcome::AwaitingConfirmation(action) => {
                tracing::info!(intent = %action.intent, topic = %action.topic, "waiting for a spoken yes/no");
                self.publish_raw(
                    &format!("sotto/{}/confirm", self.site_id()),
                    serde_json::json!({"intent": action.intent, "topic": action.topic, "payload": action.payload,
                        "sessionId": self.session_id(), "timeoutSeconds": self.config.intents.confirm_timeout_s}),
                );
                true
            }
            other => {
                tracing::warn!(outcome = ?other, "unexpected confirmation outcome");
                false
            }
        }
    }

    fn on_confirmation_answer(&mut self, text: &str) -> bool {
        match self.gate.answer(text) {
            Outcome::Execute(action) => {
                tracing::info!(intent = %action.intent, "confirmed");
                self.publish_action(action);
                self.end_session(TerminationReason::Nominal, None);
                false
            }
            Outcome::Cancelled(action) => {
                tracing::info!(intent = %action.intent, "cancelled by the user");
                self.end_session(TerminationReason::AbortedByUser, Some(format!("{} cancelled", action.intent)));
                false
            }
            Outcome::Expired(action) => {
                tracing::info!(intent = %action.intent, "confirmation timed out");
                self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed in time", action.intent)));
                false
            }
            Outcome::StillPending => {
                tracing::info!(answer = %text, "not a yes or no; still waiting");
                true
            }
            Outcome::AwaitingConfirmation(_) | Outcome::Idle => false,
        }
    }

    fn expire_confirmation(&mut self) {
        if let Outcome::Expired(action) = self.gate.tick() {
            tracing::info!(intent = %action.intent, "confirmation timed out; action dropped");
            self.end_session(TerminationReason::Timeout, Some(format!("{} not confirmed in time", action.intent)));
        }
    }

    fn hermes_intent(&self, text: &str, resolution: &Resolution) -> mqtt::IntentRecognized {
        let intent = resolution.intent.as_deref().and_then(|name| self.intents.intent(name));
        let slots = resolution
            .slots
            .iter()
            .map(|(name, value)| {
                let entity = intent.and_then(|i| i.slot(name)).map_or("unknown", |s| s.kind.type_name());
                let kind = match value {
                    sotto_intents::SlotValue::Int(_) | sotto_intents::SlotValue::Num(_) => "Number",
                    sotto_intents::SlotValue::Str(_) => "Custom",
                };
                mqtt::Slot {
                    slot_name: name.clone(),
                    entity: entity.to_string(),
                    raw_value: value.as_text(),
                    value: mqtt::SlotValue { kind: kind.into(), value: value.to_json() },
                    range: None,
                    confidence: None,
                }
            })
            .collect();
        mqtt::IntentRecognized {
            input: text.to_string(),
            intent: mqtt::IntentInfo {
                intent_name: resolution.intent.clone().unwrap_or_default(),
                confidence_score: resolution.confidence,
            },
            slots,
            site_id: self.site_id(),
            session_id: self.session_id(),
            custom_data: None,
        }
    }

    fn not_recognized(&mut self, text: &str, reason: Option<String>) {
        self.stats.not_recognized.fetch_add(1, Ordering::Relaxed);
        tracing::info!(text = %text, reason = ?reason, "not recognised");
        self.publish(HermesEvent::IntentNotRecognized(mqtt::IntentNotRecognized {
            input: text.to_string(),
            site_id: self.site_id(),
            session_id: self.session_id(),
            custom_data: reason.clone(),
        }));
        self.end_session(TerminationReason::IntentNotRecognized, reason);
    }

    fn publish_action(&mut self, action: PlannedAction) {
        self.stats.actions.fetch_add(1, Ordering::Relaxed);
        let qos = match action.qos {
            0 => mqtt::QoS::AtMostOnce,
            2 => mqtt::QoS::ExactlyOnce,
            _ => mqtt::QoS::AtLeastOnce,
        };
        let expiry = action.expiry_s.map_or(Duration::ZERO, |s| Duration::from_secs(s as u64));
        let message =
            mqtt::Action { topic: action.topic.clone(), payload: action.payload, qos, retain: action.retain, expiry };
        tracing::info!(intent = %action.intent, topic = %action.topic, "action");
        if let Err(err) = self.hub.publish_action(message) {
            tracing::error!(error = %err, topic = %action.topic, "action not published");
        }
    }

    fn publish(&self, event: HermesEvent) {
        if let Err(err) = self.hub.publish_event(&event) {
            tracing::error!(error = %err, topic = %event.topic(), "event not published");
        }
    }

    /// Sotto's own notices (not Hermes), e.g. a confirmation request.
    fn publish_raw(&self, topic: &str, payload: serde_json::Value) {
        let mut notice = mqtt::Action::new(topic, payload);
        notice.qos = mqtt::QoS::AtMostOnce;
        if let Err(err) = self.hub.publish_action(notice) {
            tracing::error!(error = %err, topic, "notice not published");
        }
    }

    fn open_session(&mut self, wake: Option<String>) -> String {
        let id = new_session_id();
        self.session = Some(Session { id: id.clone(), wake, turns: 0 });
        id
    }

    fn publish_session_started(&self, id: &str) {
        self.publish(HermesEvent::SessionStarted(mqtt::SessionStarted {
            session_id: id.to_string(),
            site_id: self.site_id(),
            custom_data: None,
            lang: Some(self.config.stt.language.clone()),
        }));
    }

    fn end_session(&mut self, reason: TerminationReason, error: Option<String>) {
        let Some(session) = self.session.take() else { return };
        tracing::debug!(session = %session.id, turns = session.turns, ?reason, "session ended");
        self.publish(HermesEvent::SessionEnded(mqtt::SessionEnded {
            session_id: session.id,
            site_id: self.site_id(),
            termination: mqtt::Termination { reason, error },
            custom_data: None,
        }));
    }

    fn on_control(&mut self, message: ControlMessage) {
        match message {
            ControlMessage::Mute => {
                tracing::info!("muted");
                self.muted.store(true, Ordering::Relaxed);
            }
            ControlMessage::Unmute => {
                tracing::info!("unmuted");
                self.muted.store(false, Ordering::Relaxed);
            }
            ControlMessage::Reload => self.reload("control topic"),
            ControlMessage::StartSession(start) => {
                if start.kind == mqtt::SessionKind::Notification {
                    tracing::info!(text = ?start.text, "notification session: nothing to listen for");
                    return;
                }
                if self.session.is_some() {
                    tracing::warn!("startSession while a session is open: ignored");
                    return;
                }
                let id = self.open_session(None);
                self.publish_session_started(&id);
                let _ = self.commands.send(AudioCommand::ListenNow);
            }
        }
    }

    /// Re-reads the config file; a bad one is refused and the running one stays. Intents and the
    /// dialogue settings change in place; audio, model and MQTT settings need a restart (logged).
    fn reload(&mut self, trigger: &str) {
        let Some(path) = self.config_path.clone() else {
            tracing::warn!(trigger, "reload requested, but the daemon runs on the built-in config");
            return;
        };
        let new = match Config::load(&path) {
            Ok(new) => new,
            Err(errors) => {
                tracing::error!(trigger, "new config refused, the running one stays:\n{errors}");
                return;
            }
        };
        let intents = match engines::load_intents(&new) {
            Ok(intents) => intents,
            Err(issue) => {
                tracing::error!(trigger, "new config refused, the running one stays: {issue}");
                return;
            }
        };
        // The workers keep the models they loaded, but the next restart of one (after a crash)
        // would load whatever is on disk now: files that changed since they were verified
        // refuse the reload, so the operator hears about it while the old engines still serve.
        // Unchanged files cost a stat each (the store's verification stamps); changed ones are
        // re-hashed, off the async workers.
        if let Err(issues) = tokio::task::block_in_place(|| engines::locate_models(&new)) {
            tracing::error!(
                trigger,
                "new config refused, the running one stays: model files changed or damaged:\n  {}",
                issue_lines(&issues)
            );
            return;
        }
        let changed = self.config.restart_only_changes(self.mqtt_secrets, &new);
        if !changed.is_empty() {
            tracing::warn!(trigger, changed = %changed.join(", "), "these sections changed; they take effect at the next restart");
        }
        self.stt_prompt = new.stt_prompt(&intents);
        self.intents = Arc::new(intents);
        self.warm_up_language_model();
        self.gate = ConfirmationGate::new(SystemClock, Duration::from_secs_f32(new.intents.confirm_timeout_s));
        self.config.stt = new.stt;
        self.config.slm = new.slm;
        self.config.intents = new.intents;
        tracing::info!(trigger, path = %path.display(), "config reloaded");
    }

    fn site_id(&self) -> String {
        self.config.mqtt.site_id.clone()
    }

    fn session_id(&self) -> Option<String> {
        self.session.as_ref().map(|s| s.id.clone())
    }
}

fn issue_lines(issues: &[crate::config::ConfigIssue]) -> String {
    issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n  ")
}

/// An audio event for a log line: an utterance by its span, never its samples (a `Debug` of
/// them is megabytes of what was said, in the journal).
fn describe(event: &AudioEvent) -> String {
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

fn mean_probability(tokens: &[(String, f32)]) -> f32 {
    if tokens.is_empty() {
        return 0.0;
    }
    tokens.iter().map(|(_, p)| p).sum::<f32>() / tokens.len() as f32
}

/// Unique enough for a device: time in nanoseconds mixed with a process-wide counter.
fn new_session_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}-{n}", nanos)
}
