//! `sotto parse`, `sotto transcribe`, `sotto understand`: front end of the `sotto-intents` crate.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sotto_intents::slm::LanguageModel;
use sotto_intents::understand::{Decision, Heard, Transcriber, UnderstandConfig, Understander};
use sotto_intents::{Intents, Resolution};

use crate::config::Config;
use crate::engines::{self, WorkerLanguageModel, WorkerTranscriber};

/// Where the intents come from and how the cascade runs: by default exactly as `sotto run` would
/// (its built-in config, or `--config`'s), so these tools decide the way the daemon does.
#[derive(clap::Args, Debug, Clone)]
pub struct IntentSource {
    /// Config file whose domains, language model and speech settings to use (default: the
    /// built-in config of `sotto run`).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Domain files or directories of `*.toml`, instead of the config's domains.
    #[arg(long = "intents", num_args = 1..)]
    pub intents: Vec<PathBuf>,
    /// Language model for what the grammar misses, instead of the config's: a model id from the
    /// cache (e.g. `gemma3-270m-q4_k_m`) or a GGUF path. It runs with the adapter the config
    /// names (`[slm] adapter`), else alone, asked with examples.
    #[arg(long, conflicts_with = "no_slm")]
    pub slm: Option<String>,
    /// The grammar alone, whatever the config says about the language model.
    #[arg(long)]
    pub no_slm: bool,
    /// Site id substituted into action topics when printing the planned action.
    #[arg(long, default_value = "default")]
    pub site_id: String,
}

#[derive(clap::Args)]
pub struct ParseArgs {
    #[command(flatten)]
    pub source: IntentSource,
    /// Read `{"text": …}` lines from this file (`-` for stdin) and write one result line each.
    #[arg(long, conflicts_with = "text")]
    pub jsonl: Option<PathBuf>,
    /// The transcript to resolve (required unless --jsonl; checked after `--intents` has given
    /// back a trailing text it swallowed).
    pub text: Option<String>,
}

#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// WAV file (any rate and channel count; resampled to 16 kHz mono).
    pub wav: std::path::PathBuf,
    /// Whisper model: an id from the cache or a ggml file path [default: the default profile's,
    /// the daemon's].
    #[arg(long)]
    pub model: Option<String>,
    /// Spoken language (ISO 639-1); `auto` lets Whisper detect it.
    #[arg(long, default_value = "en")]
    pub language: String,
    /// Vocabulary bias: text Whisper treats as preceding context.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Encoder context in 20 ms frames (1500 = 30 s); default: sized to the utterance.
    #[arg(long)]
    pub audio_ctx: Option<u32>,
}

#[derive(clap::Args)]
pub struct UnderstandArgs {
    #[command(flatten)]
    pub source: IntentSource,
    /// Speech-to-text model id or ggml file, instead of the config profile's.
    #[arg(long)]
    pub stt_model: Option<String>,
    /// Send no vocabulary prompt built from the loaded domains to Whisper.
    #[arg(long)]
    pub no_prompt: bool,
    /// 16-bit PCM WAV file with one utterance.
    pub wav: Option<PathBuf>,
}

/// A model id from the cache, or a path to a model file.
fn model_path(id_or_path: &str, what: &str) -> anyhow::Result<PathBuf> {
    let p = PathBuf::from(id_or_path);
    if p.is_file() {
        return Ok(p);
    }
    let store = sotto_models::Store::open().context("opening the model cache")?;
    store
        .path(id_or_path)
        .with_context(|| format!("{what} `{id_or_path}` (fetch it with `sotto models fetch {id_or_path}`)"))
}

/// The cascade as the daemon would run it.
struct Loaded {
    config: Config,
    intents: Intents,
    understanding: UnderstandConfig,
    lm: Option<sotto_workers::SlmClient>,
    site_id: String,
}

impl Loaded {
    fn open(source: &IntentSource) -> anyhow::Result<Loaded> {
        let mut config = match &source.config {
            Some(path) => Config::load(path)?,
            None => Config::builtin(),
        };
        let intents = if source.intents.is_empty() {
            engines::load_intents(&config).map_err(|issue| anyhow::anyhow!("{issue}"))?
        } else {
            // The files stand for the config's domains, so the model's defaults (no shipped
            // adapter for files of one's own) follow them.
            config.intents.domains = source.intents.iter().map(|p| p.display().to_string()).collect();
            Intents::load(&source.intents).context("loading intents")?
        };
        if source.slm.is_some() && config.slm.adapter.is_none() {
            // The default adapter belongs to the profile's model, not to one named here.
            config.slm.adapter = Some(crate::config::NO_ADAPTER.into());
        }
        let lm_model = match &source.slm {
            Some(id) => Some(model_path(id, "language model")?),
            None if source.no_slm => None,
            None if config.slm_enabled() => Some(
                engines::profile_model(&config, sotto_models::Role::Slm).map_err(|issue| anyhow::anyhow!("{issue}"))?,
            ),
            None => None,
        };
        config.slm.enabled = Some(lm_model.is_some());
        let lm = lm_model.map(|model| engines::start_slm(&config, &model)).transpose()?;
        let understanding = config.understanding();
        Ok(Loaded { config, intents, understanding, lm, site_id: source.site_id.clone() })
    }

    /// The cascade on `heard` (with its audio and recogniser for the second pass, when given),
    /// as one JSON object: the resolution, the decision, how it was reached and what Sotto says.
    fn understand(&mut self, heard: &Heard, samples: &[f32], stt: Option<&mut dyn Transcriber>) -> serde_json::Value {
        let understander = Understander::new(&self.intents, &self.understanding, &self.site_id);
        let mut adapter = self.lm.as_mut().map(WorkerLanguageModel);
        let lm = adapter.as_mut().map(|l| l as &mut dyn LanguageModel);
        let u = understander.understand(heard, samples, stt, lm);
        let mut v = serde_json::to_value(&u.resolution).expect("a resolution serialises");
        v["text"] = u.text.clone().into();
        v["decision"] = serde_json::to_value(&u.decision).expect("a decision serialises");
        if let Decision::Execute { action } | Decision::Confirm { action } = &u.decision {
            v["action"] = serde_json::to_value(action).expect("an action serialises");
        }
        if let Some(pass) = &u.second_pass {
            v["second_pass"] = serde_json::to_value(pass).expect("a second pass serialises");
        }
        v["asked_model"] = u.asked_model.into();
        v["elapsed_ms"] = u.elapsed_ms.into();
        // What the daemon would say back (with `tts.responses` on).
        if let Some(say) = u.reply(&self.intents) {
            v["say"] = say.into();
        }
        v
    }

    fn resolve(&mut self, text: &str) -> serde_json::Value {
        self.understand(&Heard::text(text), &[], None)
    }
}

pub fn parse(mut args: ParseArgs) -> anyhow::Result<ExitCode> {
    // `--intents` takes several values, so `sotto parse --intents a.toml "text"` hands the text to
    // it: a last value that is no file is the text.
    if args.text.is_none() && args.jsonl.is_none() {
        if let Some(last) = args.source.intents.last() {
            if !last.exists() {
                args.text = args.source.intents.pop().map(|p| p.to_string_lossy().into_owned());
            }
        }
    }
    let mut loaded = Loaded::open(&args.source)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match (&args.jsonl, &args.text) {
        (Some(path), _) => {
            let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
                ))
            };
            for (n, line) in reader.lines().enumerate() {
                let line = line.with_context(|| format!("reading {}", path.display()))?;
                if line.trim().is_empty() {
                    continue;
                }
                let input: serde_json::Value = serde_json::from_str(&line)
                    .with_context(|| format!("{}:{}: not a JSON object", path.display(), n + 1))?;
                let text = input["text"]
                    .as_str()
                    .with_context(|| format!("{}:{}: no string field `text`", path.display(), n + 1))?;
                let mut result = loaded.resolve(text);
                result["text"] = text.into();
                writeln!(out, "{}", serde_json::to_string(&result)?)?;
            }
        }
        (None, Some(text)) => writeln!(out, "{}", serde_json::to_string(&loaded.resolve(text))?)?,
        (None, None) => anyhow::bail!("give the text to parse, or --jsonl FILE"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one JSON line: text, per-token probabilities, the guard's flag, timings.
pub fn transcribe(args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    let samples = sotto_audio::read_wav(&args.wav).with_context(|| format!("reading {}", args.wav.display()))?;
    let model = match args.model {
        Some(file) if std::path::Path::new(&file).is_file() => PathBuf::from(file),
        Some(id) => sotto_models::Store::open()?.path(&id)?,
        None => {
            engines::profile_model(&Config::builtin(), sotto_models::Role::Stt).map_err(|i| anyhow::anyhow!("{i}"))?
        }
    };
    let mut stt = sotto_workers::SttClient::start(sotto_workers::WorkerConfig::new(&model))?;
    let options = sotto_workers::TranscribeOptions {
        language: Some(args.language).filter(|l| l != "auto"),
        initial_prompt: args.prompt,
        audio_ctx: args.audio_ctx,
        ..Default::default()
    };
    let transcript = stt.transcribe(&samples, &options)?;
    let mut line = serde_json::to_value(&transcript)?;
    line["model"] = model.display().to_string().into();
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// The speech part of one utterance by Silero VAD: first to last speech window, padded, so that
/// Whisper sees no long silences (its context is sized to the audio).
fn trim_to_speech(samples: &[f32], store: &sotto_models::Store) -> anyhow::Result<Option<Vec<f32>>> {
    use sotto_audio::Vad;
    sotto_audio::init_onnx_runtime(&store.path(sotto_audio::ONNXRUNTIME_ID)?)?;
    let mut vad = sotto_audio::SileroVad::new(&store.path("silero-vad")?)?;
    let w = sotto_audio::VAD_WINDOW;
    let mut speech = Vec::new();
    for (i, chunk) in samples.chunks_exact(w).enumerate() {
        if vad.probability(chunk)? >= 0.5 {
            speech.push(i);
        }
    }
    let (Some(first), Some(last)) = (speech.first(), speech.last()) else { return Ok(None) };
    let pad = 16_000 * 3 / 10;
    let start = (first * w).saturating_sub(pad);
    let end = ((last + 1) * w + pad).min(samples.len());
    Ok(Some(samples[start..end].to_vec()))
}

pub fn understand(mut args: UnderstandArgs) -> anyhow::Result<ExitCode> {
    // As in `parse`: a trailing WAV swallowed by the multi-valued `--intents` is the input.
    if args.wav.is_none() && args.source.intents.last().is_some_and(|p| p.extension().is_some_and(|e| e == "wav")) {
        args.wav = args.source.intents.pop();
    }
    let wav = args.wav.clone().context("give the WAV file to understand")?;
    let mut loaded = Loaded::open(&args.source)?;
    let samples = sotto_audio::read_wav(&wav).with_context(|| format!("reading {}", wav.display()))?;
    let store = sotto_models::Store::open().context("opening the model cache")?;
    let t = std::time::Instant::now();
    let speech = trim_to_speech(&samples, &store).context("voice activity detection")?;
    let vad_ms = t.elapsed().as_secs_f64() * 1000.0;
    let Some(speech) = speech else {
        let mut v = serde_json::to_value(Resolution::none(0.0))?;
        v["transcript"] = "".into();
        v["rejected_reason"] = "no speech detected".into();
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    };
    let model = match &args.stt_model {
        Some(id) => model_path(id, "speech model")?,
        None => engines::profile_model(&loaded.config, sotto_models::Role::Stt).map_err(|i| anyhow::anyhow!("{i}"))?,
    };
    let mut stt = engines::start_stt(&loaded.config, &model)?;
    if args.no_prompt {
        loaded.config.stt.vocabulary_prompt = false;
    }
    let options = sotto_workers::TranscribeOptions {
        language: Some(loaded.config.stt.language.clone()),
        initial_prompt: loaded.config.stt_prompt(&loaded.intents),
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let transcript = stt.transcribe(&speech, &options).context("transcribing")?;
    let stt_ms = t.elapsed().as_secs_f64() * 1000.0;
    let transcript_text = transcript.text.trim().to_string();
    let heard = engines::heard(transcript);
    let mut transcriber = WorkerTranscriber { client: &mut stt, options };
    let mut v = loaded.understand(&heard, &speech, Some(&mut transcriber));
    v["transcript"] = transcript_text.into();
    if let Some(flag) = &heard.flagged {
        v["transcript_flagged"] = flag.clone().into();
    }
    v["timings_ms"] = serde_json::json!({"vad": vad_ms, "stt": stt_ms, "intents": v["elapsed_ms"].clone()});
    println!("{v}");
    Ok(ExitCode::SUCCESS)
}
