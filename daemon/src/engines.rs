//! Everything the pipeline runs on, loaded from a config: model files from the store, the audio
//! front end, the supervised STT and SLM workers, and the compiled intents.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use sotto_intents::{Intents, LoadError};
use sotto_models::Role;
use sotto_workers::{SlmClient, SttClient, WorkerConfig};

use sotto_problems::{Problem, Problems};

use crate::config::{missing_domain, open_store, Config, WakeModelConfig, SHIPPED_DOMAINS};

/// Paths of every model file a config needs, each present and verified.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub onnxruntime: PathBuf,
    pub front_end: sotto_audio::FrontEndModels,
    pub stt: PathBuf,
    pub slm: Option<PathBuf>,
    /// The voice's model and its config, when `tts.enabled`.
    pub voice: Option<VoiceFiles>,
}

#[derive(Debug, Clone)]
pub struct VoiceFiles {
    pub id: String,
    pub model: PathBuf,
    pub config: PathBuf,
}

/// Finds every model of the config's profile; all missing or damaged files are reported at once.
/// A wake word that is not shipped has no model to find: that is [`Config::validate`]'s problem.
pub fn locate_models(config: &Config) -> Result<ModelFiles, Problems> {
    let store = open_store(config).map_err(|issue| Problems::from(vec![issue]))?;
    let issues = std::cell::RefCell::new(Problems::new());
    let profile_key = "models.profile";
    // Any voice of the store will do, in the profile or not (voices are added in models.local.toml),
    // so it is checked whatever the profile says.
    let voice = config.tts.enabled.then(|| {
        let id = &config.tts.voice;
        let known = sotto_tts::voice_ids(&store);
        if !known.contains(id) {
            issues.borrow_mut().add("tts.voice", format!("unknown voice {id:?}; the store has: {}", known.join(", ")));
            return None;
        }
        let path = |id: &str| store.path(id).map_err(|err| issues.borrow_mut().add("tts.voice", err.to_string())).ok();
        let (model, config) = (path(id)?, path(&format!("{id}{}", sotto_tts::CONFIG_SUFFIX))?);
        Some(VoiceFiles { id: id.clone(), model, config })
    });
    let voice = voice.flatten();
    let ids = match store.profile(&config.models.profile) {
        Ok(ids) => ids,
        Err(err) => {
            let mut issues = issues.into_inner();
            issues.add(profile_key, err.to_string());
            return Err(issues);
        }
    };
    let with_role = |role: Role| store.profile_model(&ids, role);
    let get = |key: &str, id: &str| match store.path(id) {
        Ok(path) => path,
        Err(err) => {
            issues.borrow_mut().add(key, err.to_string());
            PathBuf::new()
        }
    };
    let onnxruntime = get(profile_key, sotto_audio::ONNXRUNTIME_ID);
    let stt = match with_role(Role::Stt) {
        Some(id) => get(profile_key, &id),
        None => {
            issues
                .borrow_mut()
                .add(profile_key, format!("profile {:?} has no speech-to-text model", config.models.profile));
            PathBuf::new()
        }
    };
    let slm = match (config.slm_enabled(), with_role(Role::Slm)) {
        (false, _) => None,
        (true, Some(id)) => Some(get(profile_key, &id)),
        (true, None) => {
            issues.borrow_mut().add(
                "slm.enabled",
                format!(
                    "profile {:?} has no language model; set slm.enabled = false or pick another profile",
                    config.models.profile
                ),
            );
            None
        }
    };
    if slm.is_some() {
        if let Err(problem) = slm_adapter(config) {
            issues.borrow_mut().push(problem);
        }
    }
    let wakes: Vec<&WakeModelConfig> =
        config.wake.models.iter().filter(|w| sotto_audio::SHIPPED_WAKE_WORDS.contains(&w.name.as_str())).collect();
    let wake_names: Vec<String> = wakes.iter().map(|w| w.name.clone()).collect();
    // Each missing file is its own problem: a wake word's under its config key, the shared
    // front-end models under the profile.
    let model_key = |id: &str| match config.wake.models.iter().position(|w| id.strip_prefix("wake-") == Some(&w.name)) {
        Some(i) => format!("wake.models[{i}].name"),
        None => profile_key.to_string(),
    };
    let mut missing = false;
    let front_end = sotto_audio::FrontEndModels::resolve(&wake_names, &sotto_audio::TriggerConfig::default(), |id| {
        store.path(id).inspect_err(|err| {
            missing = true;
            issues.borrow_mut().add(model_key(id), err.to_string());
        })
    });
    let front_end = match front_end {
        Ok(mut models) => {
            // Each wake word keeps its own decision rule from the config.
            for (spec, wake) in models.wakes.iter_mut().zip(&wakes) {
                spec.trigger = wake.trigger();
            }
            Some(models)
        }
        Err(err) => {
            if !missing {
                issues.borrow_mut().add("wake.models", err.to_string());
            }
            None
        }
    };
    let issues = issues.into_inner();
    match front_end {
        Some(front_end) if issues.is_empty() => Ok(ModelFiles { onnxruntime, front_end, stt, slm, voice }),
        _ => Err(issues),
    }
}

/// The config's profile's model of `role`, present and verified (for the tools that need one
/// engine, not the whole front end).
pub fn profile_model(config: &Config, role: Role) -> Result<PathBuf, Problem> {
    let store = open_store(config)?;
    let issue = |message: String| Problem::new("models.profile", message);
    let ids = store.profile(&config.models.profile).map_err(|e| issue(e.to_string()))?;
    let id = store
        .profile_model(&ids, role)
        .ok_or_else(|| issue(format!("profile {:?} has no {role:?} model", config.models.profile)))?;
    store.path(&id).map_err(|e| issue(e.to_string()))
}

/// The intents of the config: shipped domain names resolve to the embedded files. Every problem
/// at once: a domain that cannot be read keyed `intents.domains[i]` (in the wording of
/// [`Config::validate`]), a domain file's own problems keyed `FILE:key.path`.
pub fn load_intents(config: &Config) -> Result<Intents, Problems> {
    let domains = &config.intents.domains;
    let shipped: Vec<&str> = domains.iter().map(String::as_str).filter(|d| SHIPPED_DOMAINS.contains(d)).collect();
    let mut sources: Vec<(String, String)> = sotto_intents::schema::shipped_sources()
        .into_iter()
        .filter(|(name, _)| shipped.iter().any(|d| name.trim_end_matches(".toml").ends_with(d)))
        .collect();
    let mut problems = Problems::new();
    for (i, domain) in domains.iter().enumerate().filter(|(_, d)| !SHIPPED_DOMAINS.contains(&d.as_str())) {
        if let Some(missing) = missing_domain(i, domain) {
            problems.push(missing);
            continue;
        }
        match sotto_intents::schema::read_sources(&[PathBuf::from(domain)]) {
            Ok(read) => sources.extend(read),
            Err(err) => problems.add(format!("intents.domains[{i}]"), err.to_string()),
        }
    }
    problems.into_result(())?;
    Intents::from_sources(&sources).map_err(|err| match err {
        LoadError::Schema(problems) => problems,
        other => vec![Problem::new("intents.domains", other.to_string())].into(),
    })
}

/// Worker clients are blocking; the async pipeline calls them inside `spawn_blocking`, one request
/// at a time per worker (the mutex), which is also what a worker process can serve.
pub type Shared<T> = Arc<Mutex<T>>;

/// `--threads N` for a worker: 0 in the config means every core.
fn thread_args(threads: u32) -> Vec<String> {
    let n = if threads == 0 { std::thread::available_parallelism().map_or(1, |n| n.get() as u32) } else { threads };
    vec!["--threads".into(), n.to_string()]
}

pub fn start_stt(config: &Config, model: &PathBuf) -> anyhow::Result<SttClient> {
    let mut worker = WorkerConfig::new(model);
    worker.request_timeout = config.stt_timeout();
    worker.args = thread_args(config.stt.threads);
    SttClient::start(worker).with_context(|| format!("starting the speech-to-text worker on {}", model.display()))
}

/// The file of `[slm] adapter`: a model id of the store (role `adapter`, verified) or a GGUF
/// file's path. `None` when no adapter is configured.
pub fn slm_adapter(config: &Config) -> Result<Option<PathBuf>, Problem> {
    let Some(adapter) = config.slm_adapter() else { return Ok(None) };
    let adapter = adapter.as_str();
    let key = "slm.adapter";
    let store = open_store(config)?;
    if let Ok(entry) = store.entry(adapter) {
        if entry.role != Role::Adapter {
            return Err(Problem::new(key, format!("model {adapter:?} is a {} model, not an adapter", entry.role)));
        }
        return store.path(adapter).map(Some).map_err(|e| Problem::new(key, e.to_string()));
    }
    let path = PathBuf::from(adapter);
    if path.is_file() {
        Ok(Some(path))
    } else {
        let ids: Vec<&str> =
            store.ids().into_iter().filter(|id| store.entry(id).is_ok_and(|e| e.role == Role::Adapter)).collect();
        Err(Problem::new(
            key,
            format!("{adapter:?} is neither an adapter in the model store ({}) nor a file", ids.join(", ")),
        ))
    }
}

pub fn start_slm(config: &Config, model: &PathBuf) -> anyhow::Result<SlmClient> {
    let mut worker = WorkerConfig::new(model);
    worker.request_timeout = config.slm_timeout();
    worker.args = thread_args(config.slm.threads);
    if let Some(adapter) = slm_adapter(config).map_err(|p| anyhow::anyhow!("{p}"))? {
        worker.args.extend(["--lora".into(), adapter.display().to_string()]);
        worker.args.extend(["--lora-scale".into(), config.slm.adapter_scale.to_string()]);
        // The adapter is asked with the short prompt: a context of that size instead of the
        // worker's default, whose cache is sized for the few-shot prompt.
        worker.args.extend(["--ctx".into(), sotto_intents::slm::SHORT_PROMPT_CONTEXT.to_string()]);
    }
    SlmClient::start(worker).with_context(|| format!("starting the language-model worker on {}", model.display()))
}

/// Loads the voice (ONNX Runtime must be initialised); the espeak-ng data is checked here.
pub fn load_voice(config: &Config, files: &VoiceFiles) -> anyhow::Result<sotto_tts::Voice> {
    let opts = sotto_tts::VoiceOptions { threads: config.tts.threads as usize, ..Default::default() };
    sotto_tts::Voice::load(&files.id, &files.model, &files.config, &opts)
        .with_context(|| format!("tts.voice: loading voice {:?}", files.id))
}

pub use sotto_engines::{heard, WorkerLanguageModel, WorkerTranscriber};
