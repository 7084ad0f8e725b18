//! `sotto run`: the async shell around the dialogue core ([`sotto::dialogue`]).
//!
//! The shell only carries out effects and feeds back what happened:
//! - the **audio thread** ([`audio`]) sends front-end events (wake word, pause, utterance, no
//!   speech) over a bounded channel; the shell takes the next one only when the core
//!   [`accepts_audio`](Dialogue::accepts_audio), so commands are handled in order;
//! - **work** (speech-to-text, the understanding cascade) runs on the blocking worker clients in
//!   `spawn_blocking`, one request at a time per worker (the client's mutex); each result comes
//!   back as an input over a bounded channel of [`DONE_CHANNEL`] slots. A task whose result finds
//!   the channel full waits for room: results are never dropped, and there are never more tasks
//!   than speculative starts plus one command;
//! - **control** messages, SIGHUP (reload), SIGTERM (shutdown: the request in flight is aborted
//!   through its worker's supervisor) and a 500 ms tick (deadlines, the systemd watchdog).
//!
//! - **speech** ([`speaker`]): the dialogue's texts go to the speaker thread (or, without a voice,
//!   out as `hermes/tts/say`); each text's end comes back as an input, and what was said is
//!   published on `sotto/<site>/said`.
//!
//! Speculative speech-to-text: at a pause inside speech (`endpoint.speculate_after_ms`) the core
//! asks for a transcription of the utterance as it stands while the endpointer keeps waiting out
//! the trailing silence; if the endpoint then cuts exactly that audio, its transcript is used.

mod audio;
mod speaker;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use sotto::dialogue::{self, AudioCommand as Command, CommandReport, Dialogue, Effect, Input};
use sotto_audio::{AudioInput, Event, FrontEnd};
use sotto_intents::confirm::SystemClock;
use sotto_intents::understand::{UnderstandConfig, Understander};
use sotto_intents::PlannedAction;
use sotto_workers::{SlmClient, SttClient, TranscribeOptions};
use tokio::sync::mpsc;

use self::audio::{AudioCommand, AudioEvent, AudioStats, AudioThread, EVENT_CHANNEL};
use self::speaker::{Output, Speaker, Spoken, SPEAK_QUEUE};
use crate::config::{AudioSource, Config};
use crate::engines::{self, WorkerLanguageModel, WorkerTranscriber};
use crate::mqtt::{self, ControlMessage, MqttHub, PrintMode};

/// Results of work in flight waiting for the session loop (see the module doc for when full).
pub const DONE_CHANNEL: usize = 4;
const SAMPLE_RATE: usize = 16_000;

/// Runs the daemon until the input ends (files, stdin) or SIGTERM/SIGINT (microphone).
pub async fn run(
    mut config: Config,
    config_path: Option<PathBuf>,
    input: Option<PathBuf>,
    realtime: bool,
) -> anyhow::Result<()> {
    let started = Instant::now();
    // Before anything else: "ready" must not be announced while SIGHUP and SIGTERM still have
    // their default action (terminate), and a SIGTERM during start-up is kept for the loop.
    let mut signals = crate::service::Signals::new().context("installing the signal handlers")?;
    let missing = |issues: Problems| anyhow::anyhow!("models are missing or damaged:\n  {}", issue_lines(&issues));
    let models = match engines::locate_models(&config) {
        Ok(models) => models,
        // Commands matter more than the voice: without it Sotto still serves them, and its
        // texts go out on hermes/tts/say (`sotto check-config` reports the problem).
        Err(issues) if issues.iter().all(|i| i.key.starts_with("tts.")) => {
            tracing::error!("{}; Sotto runs without its voice", issue_lines(&issues));
            config.tts.enabled = false;
            engines::locate_models(&config).map_err(missing)?
        }
        Err(issues) => return Err(missing(issues)),
    };
    sotto_audio::init_onnx_runtime(&models.onnxruntime).context("loading ONNX Runtime")?;
    let intents = Arc::new(engines::load_intents(&config).map_err(|issue| anyhow::anyhow!("{issue}"))?);

    let print = if input.is_some() { PrintMode::Stdout } else { PrintMode::Off };
    let mqtt_secrets = config.mqtt.secrets_fingerprint();
    let (hub, control) = MqttHub::start(&config.mqtt, print).await.context("starting MQTT")?;

    // Engines load in parallel with each other: whisper and the LM take seconds to map.
    let (stt, slm, voice) = {
        let (cfg_stt, cfg_slm, cfg_voice) = (config.clone(), config.clone(), config.clone());
        let (stt_model, slm_model, voice_files) = (models.stt.clone(), models.slm.clone(), models.voice.clone());
        let stt = tokio::task::spawn_blocking(move || engines::start_stt(&cfg_stt, &stt_model));
        let slm = tokio::task::spawn_blocking(move || slm_model.map(|m| engines::start_slm(&cfg_slm, &m)).transpose());
        let voice =
            tokio::task::spawn_blocking(move || voice_files.map(|v| engines::load_voice(&cfg_voice, &v)).transpose());
        let voice = voice.await?.unwrap_or_else(|err| {
            tracing::error!("{err:#}; Sotto runs without its voice");
            None
        });
        (stt.await??, slm.await??, voice)
    };
    config.tts.enabled = voice.is_some();
    let (spoken_tx, spoken_rx) = mpsc::channel(SPEAK_QUEUE);
    let speaker = match voice {
        Some(voice) => {
            let output = match &config.tts.wav_dir {
                Some(dir) => Output::WavDir { dir: dir.clone(), paced: input.is_none() },
                None => Output::Device(config.tts.device.clone()),
            };
            Some(Speaker::spawn(voice, output, spoken_tx.clone()).context("starting the speaker thread")?)
        }
        None => None,
    };
    let front = FrontEnd::load(&models.front_end, config.endpoint.clone()).context("loading the audio front end")?;

    let audio_input = match (&input, &config.audio.source) {
        (Some(path), _) => AudioInput::File { path: path.clone(), realtime },
        (None, AudioSource::Microphone) => AudioInput::Microphone { device: config.audio.device.clone() },
        (None, AudioSource::Stdin) => AudioInput::Stdin { sample_rate: config.audio.stdin_sample_rate },
    };
    tracing::info!(ready_in_ms = started.elapsed().as_millis() as u64, input = ?audio_input, "sotto ready");
    crate::service::notify_ready();

    let (events_tx, events_rx) = mpsc::channel(EVENT_CHANNEL);
    let (commands_tx, commands_rx) = std_mpsc::channel();
    let muted = Arc::new(AtomicBool::new(false));
    let audio_stats = Arc::new(AudioStats::default());
    let file_mode = audio_input.is_file();
    let audio = AudioThread {
        front,
        input: audio_input,
        idle_batch: config.wake.batch_ms as usize * SAMPLE_RATE / 1000,
        events: events_tx,
        commands: commands_rx,
        muted: muted.clone(),
        stats: audio_stats.clone(),
        tail: config.tts.tail_ms as u64 * SAMPLE_RATE as u64 / 1000,
    }
    .spawn()
    .context("starting the audio thread")?;

    let (done_tx, done_rx) = mpsc::channel(DONE_CHANNEL);
    let boot = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let dialogue = Dialogue::new(SystemClock, dialogue_settings(&config), intents.clone(), format!("{boot:016x}"));
    let mut aborts = vec![stt.supervisor_ref().abort_handle()];
    aborts.extend(slm.as_ref().map(|s| s.supervisor_ref().abort_handle()));
    let mut shell = Shell {
        stt_prompt: config.stt_prompt(&intents),
        understand: config.understanding(),
        mqtt_secrets,
        config,
        config_path,
        hub,
        stt: Arc::new(Mutex::new(stt)),
        slm: slm.map(|s| Arc::new(Mutex::new(s))),
        dialogue,
        muted,
        commands: commands_tx,
        file_mode,
        done: done_tx,
        audio_stats,
        aborts,
        speaker,
        spoken: spoken_tx,
    };
    shell.warm_up_language_model();
    let result = shell.run(events_rx, done_rx, spoken_rx, control, &mut signals).await;
    let _ = shell.commands.send(AudioCommand::Stop);
    crate::service::notify_stopping();
    // The audio thread may sit in a blocking read; it notices Stop at its next block.
    drop(audio);
    let flushed = shell.hub.flush(Duration::from_secs(5)).await;
    let _ = shell.hub.shutdown(Duration::from_secs(3)).await;
    tracing::info!(counters = ?shell.dialogue.counters(), audio = ?shell.audio_stats, mqtt = ?shell.hub.stats(),
        "sotto stopped");
    result?;
    flushed.context("publishing what was queued before exit")?;
    Ok(())
}

fn dialogue_settings(config: &Config) -> dialogue::Settings {
    dialogue::Settings {
        site_id: config.mqtt.site_id.clone(),
        lang: config.stt.language.clone(),
        confirm_timeout: Duration::from_secs_f32(config.intents.confirm_timeout_s),
        confirm_reasks: 1,
        sensitivities: config.wake.models.iter().map(|w| (w.name.clone(), w.threshold)).collect(),
        voice: config.tts.enabled,
        responses: config.tts.responses,
        reply_timeout: Duration::from_secs_f32(config.intents.reply_timeout_s),
        early_decisions: config.endpoint.early_after_ms > 0 && config.endpoint.speculate_after_ms > 0,
        speculate_after: Duration::from_millis(config.endpoint.speculate_after_ms as u64),
    }
}

struct Shell {
    config: Config,
    config_path: Option<PathBuf>,
    hub: MqttHub,
    stt: engines::Shared<SttClient>,
    slm: Option<engines::Shared<SlmClient>>,
    stt_prompt: Option<String>,
    understand: UnderstandConfig,
    dialogue: Dialogue<SystemClock>,
    muted: Arc<AtomicBool>,
    commands: std_mpsc::Sender<AudioCommand>,
    file_mode: bool,
    done: mpsc::Sender<Input>,
    audio_stats: Arc<AudioStats>,
    /// Each worker's handle for ending the request in flight (its client is locked meanwhile).
    aborts: Vec<sotto_workers::AbortHandle>,
    /// `MqttSettings::secrets_fingerprint` of the connection made at start, for reload.
    mqtt_secrets: u64,
    /// Sotto's voice (None: `tts.enabled = false`, texts go out as `hermes/tts/say`).
    speaker: Option<Speaker>,
    /// Where a text's end is reported (the speaker thread, or the shell itself without a voice).
    spoken: mpsc::Sender<Spoken>,
}

impl Shell {
    async fn run(
        &mut self,
        mut events: mpsc::Receiver<AudioEvent>,
        mut done: mpsc::Receiver<Input>,
        mut spoken: mpsc::Receiver<Spoken>,
        mut control: mpsc::Receiver<ControlMessage>,
        signals: &mut crate::service::Signals,
    ) -> anyhow::Result<()> {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            let accepting = self.dialogue.accepts_audio();
            tokio::select! {
                event = events.recv(), if accepting => match event {
                    Some(AudioEvent::Front(event)) => self.feed(front_input(event)),
                    Some(AudioEvent::SourceError(message)) => {
                        self.feed(Input::SourceEnded { error: Some(message.clone()) });
                        anyhow::bail!("audio input: {message}");
                    }
                    Some(AudioEvent::End) | None => {
                        self.feed(Input::SourceEnded { error: None });
                        return Ok(());
                    }
                },
                Some(input) = done.recv() => self.feed(input),
                Some(said) = spoken.recv() => self.said(said),
                Some(message) = control.recv() => match message {
                    ControlMessage::Reload => self.reload("control topic"),
                    message => self.feed(Input::Control(message)),
                },
                signal = signals.next() => match signal {
                    crate::service::ServiceSignal::Reload => self.reload("SIGHUP"),
                    crate::service::ServiceSignal::Terminate => {
                        if !self.dialogue.in_session() {
                            tracing::info!("termination requested: shutting down");
                        } else {
                            tracing::info!("termination requested during a command: abandoning it");
                        }
                        self.abort_work();
                        self.feed(Input::Shutdown);
                        return Ok(());
                    }
                },
                _ = tick.tick() => {
                    crate::service::notify_watchdog();
                    self.feed(Input::Tick);
                }
            }
        }
    }

    /// One input into the core, and its effects carried out.
    fn feed(&mut self, input: Input) {
        for effect in self.dialogue.on(input) {
            self.carry_out(effect);
        }
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::Publish(event) => {
                if let Err(err) = self.hub.publish_event(&event) {
                    tracing::error!(error = %err, topic = %event.topic(), "event not published");
                }
            }
            Effect::Act(action) => self.publish_action(action),
            Effect::AskConfirmation { action, session_id, timeout_s, again } => {
                let payload = serde_json::json!({"intent": action.intent, "topic": action.topic,
                    "payload": action.payload, "sessionId": session_id, "timeoutSeconds": timeout_s, "again": again});
                self.publish_notice("confirm", payload);
            }
            Effect::Audio(command) => {
                let command = match command {
                    Command::ListenNow => AudioCommand::ListenNow,
                    Command::StopListening => AudioCommand::StopListening,
                    Command::EndAt { end_sample } => AudioCommand::EndAt { end_sample },
                    // Only file input waits for this word.
                    Command::Resume if self.file_mode => AudioCommand::Continue,
                    Command::Resume => return,
                    Command::Speaking => AudioCommand::Speaking,
                    Command::Spoke { samples } => AudioCommand::Spoke { samples },
                };
                let _ = self.commands.send(command);
            }
            Effect::SetMuted(muted) => self.muted.store(muted, Ordering::Relaxed),
            Effect::Transcribe { job, audio } => self.transcribe(job, audio),
            Effect::Understand { job, heard, audio } => self.understand(job, heard, audio),
            Effect::Report(report) => self.report(&report),
            Effect::Say(speech) => self.say(speech),
        }
    }

    /// Hands a text to the speaker, or without a voice, to whoever speaks `hermes/tts/say`.
    fn say(&mut self, speech: dialogue::Speech) {
        let refused = match &self.speaker {
            Some(speaker) => match speaker.speak(speech) {
                Ok(()) => return,
                Err(speech) => Some((speech, "the speaker's queue is full".to_string())),
            },
            None => {
                let event = mqtt::HermesEvent::TtsSay(mqtt::TtsSay {
                    text: speech.text.clone(),
                    site_id: self.config.mqtt.site_id.clone(),
                    id: speech.id.clone(),
                    session_id: speech.session_id.clone(),
                    lang: Some(self.config.stt.language.clone()),
                });
                if let Err(err) = self.hub.publish_event(&event) {
                    tracing::error!(error = %err, "hermes/tts/say not published");
                }
                Some((speech, String::new()))
            }
        };
        // Nothing is played: the end is reported now (through the channel, so the dialogue is not
        // re-entered from inside one of its own effects).
        if let Some((speech, error)) = refused {
            let spoken = Spoken {
                speech,
                samples: 0,
                wav: None,
                first_audio_ms: 0.0,
                error: Some(error).filter(|e| !e.is_empty()),
            };
            let tx = self.spoken.clone();
            tokio::spawn(async move {
                let _ = tx.send(spoken).await;
            });
        }
    }

    /// A text has been spoken: `sotto/<site>/said` for whoever watches, then the dialogue goes on.
    fn said(&mut self, s: Spoken) {
        if self.speaker.is_some() {
            let mut payload = serde_json::json!({"id": s.speech.id, "text": s.speech.text, "sessionId": s.speech.session_id,
                "seconds": s.samples as f64 / SAMPLE_RATE as f64, "firstAudioMs": s.first_audio_ms});
            if let Some(wav) = &s.wav {
                payload["wav"] = serde_json::json!(wav);
            }
            if let Some(error) = &s.error {
                payload["error"] = serde_json::json!(error);
            }
            self.publish_notice("said", payload);
        }
        self.feed(Input::Spoken { id: s.speech.id, samples: s.samples, error: s.error });
    }

    fn transcribe(&self, job: u64, audio: dialogue::Audio) {
        let (stt, options, done) = (self.stt.clone(), self.transcribe_options(), self.done.clone());
        tokio::spawn(async move {
            let work = tokio::task::spawn_blocking(move || {
                let mut client = stt.lock().unwrap_or_else(|p| p.into_inner());
                client.transcribe(&audio.samples, &options)
            });
            let (result, compute_ms) = match work.await {
                Ok(Ok(t)) => {
                    let ms = t.timings.total_ms;
                    (Ok(engines::heard(t)), ms)
                }
                Ok(Err(err)) => (Err(err.to_string()), 0.0),
                Err(join) => (Err(format!("speech-to-text task: {join}")), 0.0),
            };
            let _ = done.send(Input::Transcribed { job, result, compute_ms }).await;
        });
    }

    fn understand(&self, job: u64, heard: sotto_intents::understand::Heard, audio: dialogue::Audio) {
        let intents = self.dialogue.intents().clone();
        let (stt, slm, done) = (self.stt.clone(), self.slm.clone(), self.done.clone());
        let (config, options, site) =
            (self.understand.clone(), self.transcribe_options(), self.config.mqtt.site_id.clone());
        tokio::spawn(async move {
            let work = tokio::task::spawn_blocking(move || {
                let understander = Understander::new(&intents, &config, &site);
                let mut stt = stt.lock().unwrap_or_else(|p| p.into_inner());
                let mut transcriber = WorkerTranscriber { client: &mut stt, options };
                let mut slm = slm.as_ref().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()));
                let mut model = slm.as_deref_mut().map(WorkerLanguageModel);
                let lm = model.as_mut().map(|m| m as &mut dyn sotto_intents::slm::LanguageModel);
                understander.understand(&heard, &audio.samples, Some(&mut transcriber), lm)
            });
            let result = work.await.map(Box::new).map_err(|join| format!("understanding task: {join}"));
            let _ = done.send(Input::Understood { job, result }).await;
        });
    }

    /// Ends the request in flight on either worker (shutdown must not wait for it).
    fn abort_work(&self) {
        for abort in &self.aborts {
            abort.abort();
        }
    }

    fn report(&self, r: &CommandReport) {
        // One line per command, and the same as data on MQTT for the benchmarks.
        tracing::info!(audio_s = r.audio_s, utterance_end_s = r.utterance_end_s, stt_ms = r.stt_ms,
            stt_compute_ms = r.stt_compute_ms, speculative = r.speculative, early = r.early,
            endpoint_wait_ms = ?r.endpoint_wait_ms, intents_ms = r.intents_ms,
            second_pass_ms = r.second_pass_ms, resolver = ?r.resolver, intent = ?r.intent, decision = r.decision,
            end_of_speech_to_action_ms = r.end_of_speech_to_action_ms, "latency");
        let counters = serde_json::to_value(self.dialogue.counters()).unwrap_or_default();
        for (subtopic, payload, retain) in
            [("metrics/command", serde_json::to_value(r).unwrap_or_default(), false), ("metrics", counters, true)]
        {
            if let Err(err) = self.hub.publish_metrics(subtopic, &payload, retain) {
                tracing::warn!(error = %err, subtopic, "metrics not published");
            }
        }
    }

    fn publish_action(&self, action: PlannedAction) {
        let qos = match action.qos {
            0 => mqtt::QoS::AtMostOnce,
            2 => mqtt::QoS::ExactlyOnce,
            _ => mqtt::QoS::AtLeastOnce,
        };
        let expiry = action.expiry_s.map_or(Duration::ZERO, |s| Duration::from_secs(s as u64));
        let message =
            mqtt::Action { topic: action.topic.clone(), payload: action.payload, qos, retain: action.retain, expiry };
        if let Err(err) = self.hub.publish_action(message) {
            tracing::error!(error = %err, topic = %action.topic, "action not published");
        }
    }

    /// Sotto's own messages under `sotto/<site>/` (not Hermes): a confirmation request, what was said.
    fn publish_notice(&self, subtopic: &str, payload: serde_json::Value) {
        let topic = format!("sotto/{}/{subtopic}", self.config.mqtt.site_id);
        let mut notice = mqtt::Action::new(&topic, payload);
        notice.qos = mqtt::QoS::AtMostOnce;
        if let Err(err) = self.hub.publish_action(notice) {
            tracing::error!(error = %err, topic, "notice not published");
        }
    }

    fn transcribe_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: Some(self.config.stt.language.clone()),
            initial_prompt: self.stt_prompt.clone(),
            ..Default::default()
        }
    }

    /// Puts the prompt prefix in the language model's cache and computes its calibration priors
    /// in the background, so the first command the grammar misses is not seconds slower than the
    /// rest. A command that needs the model meanwhile waits for it (the client's lock).
    fn warm_up_language_model(&self) {
        let Some(slm) = self.slm.clone() else { return };
        let intents = self.dialogue.intents().clone();
        let slm_config = self.understand.slm.clone();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut client = slm.lock().unwrap_or_else(|p| p.into_inner());
            match intents.warm_up_slm(&mut WorkerLanguageModel(&mut client), &slm_config) {
                Ok(()) => tracing::info!(took_ms = started.elapsed().as_millis() as u64, "language model warmed up"),
                Err(e) => {
                    tracing::warn!(error = %e, "language-model warm-up failed; the first fallback request will do it")
                }
            }
        });
    }

    /// Re-reads the config file; a bad one is refused and the running one stays. Intents and the
    /// dialogue settings change in place; audio, model and MQTT settings need a restart (logged).
    fn reload(&mut self, trigger: &str) {
        let Some(path) = self.config_path.clone() else {
            tracing::warn!(trigger, "reload requested, but the daemon runs on the built-in config");
            return;
        };
        let mut new = match Config::load(&path) {
            Ok(new) => new,
            Err(errors) => {
                tracing::error!(trigger, "new config refused, the running one stays:\n{errors}");
                return;
            }
        };
        let intents = match engines::load_intents(&new) {
            Ok(intents) => Arc::new(intents),
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
        // The running language-model worker keeps its adapter, and the prompt must stay the one
        // that adapter expects.
        new.slm.adapter = Some(self.config.slm_adapter().unwrap_or_else(|| crate::config::NO_ADAPTER.into()));
        new.slm.adapter_scale = self.config.slm.adapter_scale;
        self.stt_prompt = new.stt_prompt(&intents);
        self.understand = new.understanding();
        let mut settings = dialogue_settings(&new);
        // The voice was loaded at start: the running `tts` section stays until a restart.
        (settings.voice, settings.responses) = (self.config.tts.enabled, self.config.tts.responses);
        self.dialogue.reconfigure(settings, intents);
        self.warm_up_language_model();
        self.config.stt = new.stt;
        self.config.slm = new.slm;
        self.config.intents = new.intents;
        tracing::info!(trigger, path = %path.display(), "config reloaded");
    }
}

/// A front-end event as the dialogue core takes it.
fn front_input(event: Event) -> Input {
    let audio = |u: sotto_audio::Utterance| dialogue::Audio {
        samples: u.samples.into(),
        start_sample: u.start_sample,
        end_sample: u.end_sample,
    };
    match event {
        Event::Wake(d) => Input::Wake { wake: d.wake, score: d.score, sample: d.sample },
        Event::Pause(u) => Input::Pause(audio(u)),
        Event::Utterance(u) => Input::Utterance(audio(u)),
        Event::NoSpeech { .. } => Input::NoSpeech,
    }
}

type Problems = sotto_problems::Problems;

fn issue_lines(issues: &[crate::config::ConfigIssue]) -> String {
    issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n  ")
}
