//! The daemon's one typed configuration: parsed from TOML, then validated as a whole, so that
//! every mistake — syntax aside, a wrong type, an unknown key, a bad value — is reported at once
//! with its key path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sotto_problems::{Problem, Problems};

/// The name the session loop knows the problem type by.
pub use sotto_problems::Problem as ConfigIssue;

/// Why a configuration could not be used: the file, and every problem found in it.
#[derive(Debug)]
pub struct ConfigErrors {
    pub source: String,
    pub issues: Problems,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} problem(s)", self.source, self.issues.len())?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub models: ModelsConfig,
    pub audio: AudioConfig,
    pub wake: WakeConfig,
    /// Endpointing after a wake word (Silero VAD thresholds, pre-roll, trailing silence, limits).
    pub endpoint: sotto_audio::EndpointConfig,
    pub stt: SttConfig,
    pub intents: IntentsConfig,
    pub slm: SlmConfig,
    /// Sotto's voice: Piper text-to-speech for its responses and Hermes texts.
    pub tts: TtsConfig,
    pub mqtt: crate::mqtt::MqttSettings,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelsConfig {
    /// Model profile of the manifest (`default`, `tiny`, or one of the user's).
    pub profile: String,
    /// Model cache directory; default `$SOTTO_MODELS`, else `$XDG_CACHE_HOME/sotto/models`.
    pub dir: Option<PathBuf>,
}

impl Default for ModelsConfig {
    fn default() -> Self {
        ModelsConfig { profile: "default".into(), dir: None }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum AudioSource {
    Microphone,
    Stdin,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    pub source: AudioSource,
    /// Capture device name as `sotto audio devices` lists it; empty = the system default.
    pub device: String,
    /// Sample rate of raw PCM on stdin (signed 16-bit little-endian, mono).
    pub stdin_sample_rate: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig { source: AudioSource::Microphone, device: String::new(), stdin_sample_rate: 16_000 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WakeConfig {
    pub models: Vec<WakeModelConfig>,
    /// While no command is being listened for, audio is gathered into pieces of this length before
    /// the wake word models run on it: the wake models' convolutions then run once per piece, so
    /// idle listening costs less CPU, and a detection comes up to this much later (the command
    /// after it is not delayed: its audio is kept, and once listening, every block is handled as
    /// it arrives). 0 = no gathering.
    pub batch_ms: u32,
}

impl Default for WakeConfig {
    fn default() -> Self {
        WakeConfig { models: vec![WakeModelConfig::default()], batch_ms: 320 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WakeModelConfig {
    /// A shipped wake word (`hey_jarvis`, `alexa`, `hey_mycroft`, `hey_rhasspy`).
    pub name: String,
    /// Score in 0..1 at or above which an 80 ms frame counts.
    pub threshold: f32,
    /// Consecutive frames over the threshold before a detection.
    pub patience: u32,
    /// After a detection, no new one of this word for this long.
    pub refractory_ms: u32,
}

impl Default for WakeModelConfig {
    fn default() -> Self {
        let trigger = sotto_audio::TriggerConfig::default();
        WakeModelConfig {
            name: "hey_jarvis".into(),
            threshold: trigger.threshold,
            patience: trigger.patience,
            refractory_ms: trigger.refractory_ms,
        }
    }
}

impl WakeModelConfig {
    pub fn trigger(&self) -> sotto_audio::TriggerConfig {
        sotto_audio::TriggerConfig {
            threshold: self.threshold,
            patience: self.patience,
            refractory_ms: self.refractory_ms,
        }
    }
}

/// Largest `stt.timeout_s` / `slm.timeout_s` / `intents.confirm_timeout_s`, in seconds: one hour,
/// enough for the emulated aarch64 runs of `cross/` (see the check in `Config::validate`).
pub const MAX_REQUEST_TIMEOUT_S: f32 = 3600.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SttConfig {
    /// Whisper language code.
    pub language: String,
    /// A transcription taking longer fails, and the worker is restarted.
    pub timeout_s: f32,
    /// Bias Whisper towards the loaded domains' vocabulary.
    pub vocabulary_prompt: bool,
    /// Longest vocabulary prompt, in characters. Whisper decodes the prompt with every request,
    /// so it costs time: on the 2-core x86 VM a command took 395 ms without a prompt, 602 ms with
    /// 250 characters and 715 ms with 600 (README, `tools/bench_e2e.py`).
    pub vocabulary_prompt_chars: u32,
    /// When the grammar does not understand a transcript, transcribe the utterance again with
    /// Whisper constrained to the loaded domains' sentences, and take that reading when Whisper
    /// finds it about as likely as the free one (misheard commands in noise).
    pub second_pass: bool,
    /// Whisper threads; 0 = every core. The audio thread needs little while a command is
    /// transcribed, so the default uses the whole machine for the shortest answer.
    pub threads: u32,
}

impl Default for SttConfig {
    fn default() -> Self {
        SttConfig {
            language: "en".into(),
            timeout_s: 15.0,
            vocabulary_prompt: true,
            vocabulary_prompt_chars: sotto_intents::vocabulary::DEFAULT_PROMPT_CHARS as u32,
            second_pass: true,
            threads: 0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntentsConfig {
    /// Shipped domain names (`vehicle`, `factory`, `home`, `barista`) or paths to domain TOML files.
    pub domains: Vec<String>,
    /// Seconds a pending confirmation waits for "yes"/"no" before it is dropped (counted from
    /// the end of the spoken question).
    pub confirm_timeout_s: f32,
    /// Seconds a session stays open after a query intent (`query = true`) for the system that
    /// answers it (`hermes/dialogueManager/endSession` with the answer, or `continueSession`);
    /// 0 = end at once (an answer with a text is still spoken).
    pub reply_timeout_s: f32,
}

/// The model store of the config: `models.dir` (with its local manifest), else the default one.
pub fn open_store(config: &Config) -> Result<sotto_models::Store, Problem> {
    let issue = |message: String| Problem::new("models.dir", message);
    match &config.models.dir {
        Some(dir) => {
            let local = dir.join(sotto_models::store::LOCAL_MANIFEST);
            let manifest = sotto_models::Manifest::load_with_local(&local).map_err(|e| issue(e.to_string()))?;
            Ok(sotto_models::Store::with_manifest(dir, manifest))
        }
        None => sotto_models::Store::open().map_err(|e| issue(e.to_string())),
    }
}

pub const SHIPPED_DOMAINS: &[&str] = &["vehicle", "factory", "home", "barista"];

/// `[slm] adapter = "none"`: the base model, asked with the few-shot prompt.
pub const NO_ADAPTER: &str = "none";

impl IntentsConfig {
    /// Every domain is a shipped one (what the shipped adapter was trained on).
    pub fn only_shipped(&self) -> bool {
        self.domains.iter().all(|d| SHIPPED_DOMAINS.contains(&d.as_str()))
    }
}

impl Default for IntentsConfig {
    fn default() -> Self {
        IntentsConfig {
            domains: SHIPPED_DOMAINS.iter().map(|d| d.to_string()).collect(),
            confirm_timeout_s: 10.0,
            reply_timeout_s: 4.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlmConfig {
    /// Ask the language model when the grammar matcher finds nothing. Left out, it is on when the
    /// profile has an adapter and every loaded domain is a shipped one ([`Config::slm_enabled`]):
    /// the shipped adapter was trained on exactly those, and nothing else earned a default.
    pub enabled: Option<bool>,
    pub timeout_s: f32,
    pub max_tokens: u32,
    /// Language-model threads; 0 = every core.
    pub threads: u32,
    /// A LoRA adapter specialising the model to the loaded domains (tools/distil): a model id of
    /// the store (role `adapter`), a GGUF file, or [`NO_ADAPTER`] for the base model asked with
    /// examples. Left out: the profile's adapter when every loaded domain is shipped
    /// ([`Config::slm_adapter`]). With one, the model is asked with the short prompt it was
    /// trained on ([`sotto_intents::slm::SlmConfig::distilled`]).
    pub adapter: Option<String>,
    /// How strongly the adapter applies; 1 = as trained.
    pub adapter_scale: f32,
}

impl Default for SlmConfig {
    fn default() -> Self {
        SlmConfig { enabled: None, timeout_s: 10.0, max_tokens: 48, threads: 0, adapter: None, adapter_scale: 1.0 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TtsConfig {
    /// Sotto has a voice: the voice loads at start, Sotto speaks its responses and answers
    /// `hermes/tts/say`. Off: its texts are published on `hermes/tts/say` for another system.
    pub enabled: bool,
    /// Speak Sotto's own responses (confirmation questions, the intents' `say`, not understood,
    /// refused values). Off where another system speaks them; Hermes texts are still spoken.
    pub responses: bool,
    /// A voice of the model store (`sotto models list`, role `tts`).
    pub voice: String,
    /// Output device name as `sotto audio devices` lists it; empty = the system default.
    pub device: String,
    /// Write each spoken text as a WAV file in this directory instead of playing it (tests, the
    /// demo); the front end still counts the audio as heard by the microphone.
    pub wav_dir: Option<PathBuf>,
    /// After Sotto stops speaking, the microphone is ignored this much longer (room echo, the
    /// output device's buffer).
    pub tail_ms: u32,
    /// ONNX Runtime threads for the voice.
    pub threads: u32,
}

impl Default for TtsConfig {
    fn default() -> Self {
        TtsConfig {
            enabled: true,
            responses: true,
            voice: sotto_tts::DEFAULT_VOICE.into(),
            device: String::new(),
            wav_dir: None,
            tail_ms: 300,
            threads: 1,
        }
    }
}

impl Config {
    /// Reads, parses and validates a config file; every problem is reported at once.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let (config, problems) = Self::read(path);
        Self::accepted(config, problems, &path.display().to_string())
    }

    /// Reads, parses and validates a config file without stopping at a problem: a key of the
    /// wrong type or unknown is reported and left at its default, so the checks of every other
    /// key still run. The config is `None` only when the file cannot be read or is not TOML.
    pub fn read(path: &Path) -> (Option<Config>, Problems) {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(err) => (None, vec![Problem::new("(file)", format!("cannot read: {err}"))].into()),
        }
    }

    /// Parses and validates config text; `source` names it in the errors. What [`Config::load`]
    /// does after reading the file (tests and the fuzz target feed text directly).
    pub fn from_toml(text: &str, source: &str) -> Result<Config, ConfigErrors> {
        let (config, problems) = Self::parse(text);
        Self::accepted(config, problems, source)
    }

    fn parse(text: &str) -> (Option<Config>, Problems) {
        let mut problems = Problems::new();
        let config: Option<Config> = sotto_problems::from_toml_lenient(text, &mut problems);
        if let Some(config) = &config {
            problems.extend(config.validate());
        }
        (config, problems)
    }

    fn accepted(config: Option<Config>, problems: Problems, source: &str) -> Result<Config, ConfigErrors> {
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigErrors { source: source.to_string(), issues: problems }),
        }
    }

    /// Checks values that the types alone cannot; files and models are checked by `check-config`.
    pub fn validate(&self) -> Problems {
        let mut issues = Problems::new();
        if self.wake.batch_ms > 1000 {
            issues.add("wake.batch_ms", format!("{} is over 1000", self.wake.batch_ms));
        }
        if self.wake.models.is_empty() {
            issues.add("wake.models", "at least one wake word is needed");
        }
        for (i, model) in self.wake.models.iter().enumerate() {
            let key = format!("wake.models[{i}]");
            if !sotto_audio::SHIPPED_WAKE_WORDS.contains(&model.name.as_str()) {
                issues.add(
                    format!("{key}.name"),
                    format!(
                        "unknown wake word {:?}; shipped: {}",
                        model.name,
                        sotto_audio::SHIPPED_WAKE_WORDS.join(", ")
                    ),
                );
            }
            issues.extend(model.trigger().problems(&key));
        }
        issues.extend(self.endpoint.problems("endpoint"));
        if self.stt.language.len() < 2 || !self.stt.language.chars().all(|c| c.is_ascii_lowercase()) {
            issues
                .add("stt.language", format!("{:?} is not a Whisper language code such as \"en\"", self.stt.language));
        }
        // The upper limit only catches a unit mistake (milliseconds written as seconds); it is far
        // above any native request because the aarch64 build under qemu-user (cross/qemu.toml)
        // computes floating point in software and one Whisper base request takes many minutes there.
        for (key, value) in [("stt.timeout_s", self.stt.timeout_s), ("slm.timeout_s", self.slm.timeout_s)] {
            if !(0.1..=MAX_REQUEST_TIMEOUT_S).contains(&value) {
                issues.add(key, format!("{value} is not in 0.1..={MAX_REQUEST_TIMEOUT_S}"));
            }
        }
        // Whisper keeps at most 224 prompt tokens; about 4 characters a token.
        if !(20..=900).contains(&self.stt.vocabulary_prompt_chars) {
            issues
                .add("stt.vocabulary_prompt_chars", format!("{} is not in 20..=900", self.stt.vocabulary_prompt_chars));
        }
        for (key, threads) in [("stt.threads", self.stt.threads), ("slm.threads", self.slm.threads)] {
            if threads > 256 {
                issues.add(key, format!("{threads} is over 256 (0 = every core)"));
            }
        }
        if !(1..=512).contains(&self.slm.max_tokens) {
            issues.add("slm.max_tokens", format!("{} is not in 1..=512", self.slm.max_tokens));
        }
        if !(0.0..=300.0).contains(&self.intents.reply_timeout_s) {
            issues.add("intents.reply_timeout_s", format!("{} is not in 0..=300", self.intents.reply_timeout_s));
        }
        if self.tts.tail_ms > 5000 {
            issues.add("tts.tail_ms", format!("{} is over 5000", self.tts.tail_ms));
        }
        if !(1..=16).contains(&self.tts.threads) {
            issues.add("tts.threads", format!("{} is not in 1..=16", self.tts.threads));
        }
        if self.tts.voice.trim().is_empty() {
            issues.add("tts.voice", "empty; name a voice of the model store (`sotto models list`)");
        }
        if let Some(dir) = &self.tts.wav_dir {
            if !dir.is_dir() {
                issues.add("tts.wav_dir", format!("{} is not a directory", dir.display()));
            }
        }
        if !(self.slm.adapter_scale > 0.0 && self.slm.adapter_scale <= 4.0) {
            issues.add("slm.adapter_scale", format!("{} is not in (0, 4]", self.slm.adapter_scale));
        }
        if self.slm.adapter.as_deref().is_some_and(|a| a.trim().is_empty()) {
            issues.add("slm.adapter", "is empty: name a model id or a GGUF file, or leave the key out");
        }
        // The answer's transcription counts against the confirmation's time, so emulation needs
        // as much room here as for a request (cross/parity.toml).
        if !(1.0..=MAX_REQUEST_TIMEOUT_S).contains(&self.intents.confirm_timeout_s) {
            issues.add(
                "intents.confirm_timeout_s",
                format!("{} is not in 1..={MAX_REQUEST_TIMEOUT_S}", self.intents.confirm_timeout_s),
            );
        }
        if self.intents.domains.is_empty() {
            issues.add("intents.domains", "at least one domain is needed");
        }
        issues.extend(self.intents.domains.iter().enumerate().filter_map(|(i, domain)| missing_domain(i, domain)));
        issues.extend(self.mqtt.validate("mqtt"));
        issues
    }

    /// The sections of `new` that differ from this running config but only take effect at a
    /// restart. Compares values, not their (redacted) Debug form, plus the MQTT secrets'
    /// fingerprint taken when the connection was made, so a rotated password file counts.
    pub fn restart_only_changes(&self, running_secrets: u64, new: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self.mqtt != new.mqtt || running_secrets != new.mqtt.secrets_fingerprint() {
            changed.push("mqtt");
        }
        for (section, differs) in [
            ("models", self.models != new.models),
            ("audio", self.audio != new.audio),
            ("wake", self.wake != new.wake),
            ("endpoint", self.endpoint != new.endpoint),
            ("tts", self.tts != new.tts),
            ("slm.adapter", self.slm.adapter != new.slm.adapter || self.slm.adapter_scale != new.slm.adapter_scale),
        ] {
            if differs {
                changed.push(section);
            }
        }
        changed
    }

    /// Whisper's vocabulary prompt for these intents, if configured.
    pub fn stt_prompt(&self, intents: &sotto_intents::Intents) -> Option<String> {
        self.stt.vocabulary_prompt.then(|| intents.stt_prompt(self.stt.vocabulary_prompt_chars as usize))
    }

    /// The config of `sotto run` without `--config`: zero set-up (an embedded broker on a free
    /// port, the `default` model profile, every shipped domain).
    pub fn builtin() -> Config {
        let mut config = Config::default();
        config.mqtt.broker = crate::mqtt::BrokerMode::Embedded;
        config.mqtt.port = 0;
        config
    }

    /// The understanding cascade's switches from this config (the daemon, `sotto parse` and
    /// `sotto understand` all take them from here).
    pub fn understanding(&self) -> sotto_intents::understand::UnderstandConfig {
        let mut u =
            sotto_intents::understand::UnderstandConfig { second_pass: self.stt.second_pass, ..Default::default() };
        if self.slm_adapter().is_some() {
            u.slm = sotto_intents::slm::SlmConfig::distilled();
        }
        u.slm.max_tokens = self.slm.max_tokens;
        u
    }

    /// Whether the language model runs: as configured, else when it has an adapter
    /// ([`Config::slm_adapter`]). The base model alone, asked with examples, acts wrongly too
    /// often to be on unasked (docs/distil.md).
    pub fn slm_enabled(&self) -> bool {
        self.slm.enabled.unwrap_or_else(|| self.slm_adapter().is_some())
    }

    /// The adapter the language model runs with: as configured (`"none"`: without one), else the
    /// profile's adapter when every loaded domain is a shipped one. A domain file of the user's
    /// own was not in the shipped adapter's training, so it gets none (docs/distil.md says how to
    /// make one).
    pub fn slm_adapter(&self) -> Option<String> {
        match self.slm.adapter.as_deref() {
            Some(NO_ADAPTER) => None,
            Some(adapter) => Some(adapter.to_string()),
            None => self.default_adapter(),
        }
    }

    fn default_adapter(&self) -> Option<String> {
        if !self.intents.only_shipped() {
            return None;
        }
        let store = open_store(self).ok()?;
        store.profile_model(&store.profile(&self.models.profile).ok()?, sotto_models::Role::Adapter)
    }

    pub fn stt_timeout(&self) -> Duration {
        Duration::from_secs_f32(self.stt.timeout_s)
    }

    pub fn slm_timeout(&self) -> Duration {
        Duration::from_secs_f32(self.slm.timeout_s)
    }
}

/// The problem of `intents.domains[i]` when it names neither a shipped domain nor a file: one
/// check and one wording for validation and for loading the intents.
pub fn missing_domain(i: usize, domain: &str) -> Option<Problem> {
    let is_shipped = SHIPPED_DOMAINS.contains(&domain);
    (!is_shipped && !Path::new(domain).is_file()).then(|| {
        Problem::new(
            format!("intents.domains[{i}]"),
            format!("{domain:?} is neither a shipped domain ({}) nor an existing file", SHIPPED_DOMAINS.join(", ")),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let config = Config::from_toml("", "test").unwrap();
        assert_eq!(config.mqtt.site_id, "default");
        assert_eq!(config.wake.models[0].name, "hey_jarvis");
        assert_eq!(config.intents.domains, SHIPPED_DOMAINS);
    }

    #[test]
    fn the_vocabulary_prompt_is_cut_at_its_configured_length() {
        let intents = sotto_intents::Intents::shipped();
        let short = Config::from_toml("[stt]\nvocabulary_prompt_chars = 60\n", "test").unwrap();
        let prompt = short.stt_prompt(&intents).unwrap();
        assert!(!prompt.is_empty() && prompt.len() <= 60, "{prompt:?}");
        let default = Config::from_toml("", "test").unwrap().stt_prompt(&intents).unwrap();
        assert!(default.len() > prompt.len() && default.len() <= 250, "{default:?}");
        let off = Config::from_toml("[stt]\nvocabulary_prompt = false\n", "test").unwrap();
        assert_eq!(off.stt_prompt(&intents), None);
        let errors = Config::from_toml("[stt]\nvocabulary_prompt_chars = 5000\n", "bad.toml").unwrap_err();
        assert_eq!(errors.issues.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["stt.vocabulary_prompt_chars"]);
    }

    #[test]
    fn idle_wake_batching_is_bounded() {
        assert_eq!(Config::from_toml("", "test").unwrap().wake.batch_ms, 320);
        assert_eq!(Config::from_toml("[wake]\nbatch_ms = 0\n", "test").unwrap().wake.batch_ms, 0);
        let errors = Config::from_toml("[wake]\nbatch_ms = 5000\n", "bad.toml").unwrap_err();
        assert_eq!(errors.issues.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), ["wake.batch_ms"]);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_key() {
        let text = r#"
            [[wake.models]]
            name = "hey_siri"
            threshold = 1.5
            [mqtt]
            site_id = "a/b"
            [intents]
            domains = ["vehicle", "/nonexistent/pizza.toml"]
        "#;
        let errors = Config::from_toml(text, "bad.toml").unwrap_err();
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["wake.models[0].name", "wake.models[0].threshold", "intents.domains[1]", "mqtt.site_id"]);
        assert!(errors.to_string().contains("hey_siri"));
    }

    #[test]
    fn reload_notices_a_password_change_that_debug_output_hides() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "old-secret").unwrap();
        let with_file = format!("[mqtt]\nusername = \"u\"\npassword_file = {:?}\n", file.display().to_string());
        let running = Config::from_toml(&with_file, "running").unwrap();
        let secrets = running.mqtt.secrets_fingerprint();
        assert!(running.restart_only_changes(secrets, &running.clone()).is_empty());

        std::fs::write(&file, "new-secret").unwrap();
        let reread = Config::from_toml(&with_file, "reread").unwrap();
        assert_eq!(format!("{:?}", running.mqtt), format!("{:?}", reread.mqtt), "Debug cannot tell them apart");
        assert_eq!(running.restart_only_changes(secrets, &reread), ["mqtt"]);

        let inline =
            |p: &str| Config::from_toml(&format!("[mqtt]\nusername = \"u\"\npassword = \"{p}\"\n"), "inline").unwrap();
        let (a, b) = (inline("one"), inline("two"));
        assert_eq!(a.restart_only_changes(a.mqtt.secrets_fingerprint(), &b), ["mqtt"]);
        let mut wake = a.clone();
        wake.wake.models[0].threshold = 0.7;
        assert_eq!(a.restart_only_changes(a.mqtt.secrets_fingerprint(), &wake), ["wake"]);
    }

    #[test]
    fn an_adapter_switches_to_the_short_prompt_and_bad_adapter_keys_are_named() {
        let plain = Config::from_toml("[slm]\nenabled = true\nadapter = \"none\"\n", "test").unwrap();
        assert_eq!(plain.understanding().slm.prompt, sotto_intents::slm::PromptMode::FewShot);
        let tuned = Config::from_toml("[slm]\nenabled = true\nadapter = \"a.gguf\"\nmax_tokens = 40\n", "t").unwrap();
        let u = tuned.understanding().slm;
        assert_eq!((u.prompt, u.calibrate, u.max_tokens), (sotto_intents::slm::PromptMode::Short, false, 40));
        assert_eq!(plain.restart_only_changes(plain.mqtt.secrets_fingerprint(), &tuned), ["slm.adapter"]);
        let errors = Config::from_toml("[slm]\nadapter = \" \"\nadapter_scale = 0.0\n", "bad.toml").unwrap_err();
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["slm.adapter_scale", "slm.adapter"], "{errors}");
    }

    #[test]
    fn the_model_is_on_by_default_only_with_an_adapter_trained_on_the_loaded_domains() {
        let on = |text: &str| {
            let c = Config::from_toml(text, "t.toml").unwrap();
            (c.slm_enabled(), c.slm_adapter(), c.understanding().slm.refuse_domain_rivals)
        };
        let shipped = Some("gemma3-270m-sotto-lora".to_string());
        assert_eq!(on(""), (true, shipped.clone(), true), "the built-in config");
        assert_eq!(on("[intents]\ndomains = [\"home\"]\n"), (true, shipped.clone(), true), "a subset of the shipped");
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("pizza.toml");
        std::fs::write(&own, "").unwrap();
        let own = format!("[intents]\ndomains = [\"home\", {:?}]\n", own.display().to_string());
        assert_eq!(on(&own), (false, None, false), "a domain file of one's own: no shipped adapter, no model");
        assert_eq!(on(&format!("{own}[slm]\nenabled = true\n")), (true, None, false), "asked for: the base model");
        assert_eq!(on("[models]\nprofile = \"tiny\"\n"), (false, None, false), "a profile without an adapter");
        assert_eq!(on("[slm]\nenabled = false\n"), (false, shipped, true), "switched off");
        assert_eq!(on("[slm]\nadapter = \"none\"\n"), (false, None, false), "no adapter: not on unasked");
        assert_eq!(on("[slm]\nenabled = true\nadapter = \"my.gguf\"\n").1.as_deref(), Some("my.gguf"));
    }

    #[test]
    fn a_wrong_type_or_an_unknown_key_hides_no_other_problem() {
        let text = "[mqtt]\nport = 99999\nsite_id = \"a/b\"\n[stt]\nlanguag = \"en\"\ntimeout_s = 0.0\n";
        let errors = Config::from_toml(text, "bad.toml").unwrap_err();
        let mut keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["mqtt.port", "mqtt.site_id", "stt.languag", "stt.timeout_s"], "{errors}");
        assert!(errors.to_string().contains("99999"), "{errors}");
    }

    #[test]
    fn request_timeouts_allow_emulation_but_not_milliseconds() {
        // cross/qemu.toml: the aarch64 build under qemu needs many minutes per Whisper request.
        let qemu = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../cross/qemu.toml")).unwrap();
        let config = Config::from_toml(&qemu, "cross/qemu.toml").unwrap();
        assert!(config.stt.timeout_s > 300.0, "{}", config.stt.timeout_s);
        let errors =
            Config::from_toml("[stt]\ntimeout_s = 15000.0\n[slm]\ntimeout_s = 10000.0\n", "ms.toml").unwrap_err();
        let keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["stt.timeout_s", "slm.timeout_s"], "{errors}");
        assert!(errors.to_string().contains("15000 is not in 0.1..=3600"), "{errors}");
        let parity = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../cross/parity.toml")).unwrap();
        let config = Config::from_toml(&parity, "cross/parity.toml").unwrap();
        assert!(config.intents.confirm_timeout_s > 300.0, "{}", config.intents.confirm_timeout_s);
    }

    #[test]
    fn the_voice_settings_are_checked_with_their_keys() {
        let config = Config::from_toml("", "test").unwrap();
        assert!(config.tts.enabled && config.tts.responses);
        assert_eq!(config.tts.voice, sotto_tts::DEFAULT_VOICE);
        let text = "[tts]\nvoice = \" \"\ntail_ms = 9000\nthreads = 0\nwav_dir = \"/nonexistent/said\"\nspeak = true\n";
        let errors = Config::from_toml(text, "bad.toml").unwrap_err();
        let mut keys: Vec<&str> = errors.issues.iter().map(|i| i.key.as_str()).collect();
        keys.sort();
        assert_eq!(keys, ["tts.speak", "tts.tail_ms", "tts.threads", "tts.voice", "tts.wav_dir"], "{errors}");
        assert!(errors.to_string().contains("/nonexistent/said"), "{errors}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let errors = Config::from_toml("[stt]\nlanguag = \"en\"\n", "typo.toml").unwrap_err();
        assert_eq!(errors.issues[0].key, "stt.languag", "{errors}");
        assert!(errors.issues[0].message.contains("unknown field"), "{errors}");
    }
}
