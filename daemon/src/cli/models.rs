//! `sotto models …`: front end of the `sotto-models` crate.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sotto_models::{whisper_ct2, Fetcher, Role, Status, Store};

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// List the models of the manifest and whether each is present and verified.
    List,
    /// Download (or convert) missing models, verifying each file's size and sha256.
    Fetch {
        /// A profile from the manifest (`default`, `tiny`, or your own).
        #[arg(long)]
        profile: Option<String>,
        /// Model ids to fetch (in addition to the profile's).
        ids: Vec<String>,
        /// Fetch the files of another CPU architecture (`aarch64`, `x86_64`) into an empty model
        /// directory (set SOTTO_MODELS), for `sotto models import` on a board without network.
        #[arg(long)]
        arch: Option<String>,
    },
    /// Copy models from a model directory filled on another machine (e.g. for a board without
    /// network), verifying each file's size and sha256 against the manifest. Without ids or a
    /// profile, every manifest model found in DIR is imported.
    Import {
        dir: PathBuf,
        #[arg(long)]
        profile: Option<String>,
        ids: Vec<String>,
    },
    /// Re-hash model files and report any that are missing or corrupt (all present ones if no ids
    /// or profile are given).
    Verify {
        #[arg(long)]
        profile: Option<String>,
        ids: Vec<String>,
    },
    /// Print the path of a present, verified model (for scripts).
    Path { id: String },
    /// Show a GGUF language model's architecture, quantisation, context length and chat template.
    Inspect {
        /// A model id or a path to a .gguf file.
        model: String,
    },
    /// Convert a CTranslate2 Whisper model directory (model.bin, vocabulary.txt) to a ggml file.
    ImportWhisperCt2 {
        dir: PathBuf,
        out: PathBuf,
        /// Write 8-bit (q8_0) weights: half the size of f16.
        #[arg(long)]
        q8: bool,
    },
}

pub fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List => list(),
        ModelsCommand::Fetch { profile, ids, arch } => fetch(profile, ids, arch.as_deref()),
        ModelsCommand::Import { dir, profile, ids } => import(&dir, profile, ids),
        ModelsCommand::Verify { profile, ids } => verify(profile, ids),
        ModelsCommand::Path { id } => {
            let store = Store::open()?;
            println!("{}", store.path(&id)?.display());
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Inspect { model } => inspect(&model),
        ModelsCommand::ImportWhisperCt2 { dir, out, q8 } => {
            let weights = if q8 { whisper_ct2::WeightType::Q8_0 } else { whisper_ct2::WeightType::F16 };
            let info = whisper_ct2::convert_atomic(&dir, &out, weights)
                .with_context(|| format!("converting {} to {}", dir.display(), out.display()))?;
            eprintln!(
                "wrote {}: {} tensors, {} encoder + {} decoder layers, {} mels, vocabulary {}",
                out.display(),
                info.tensors,
                info.encoder_layers,
                info.decoder_layers,
                info.n_mels,
                info.n_vocab
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Ids named on the command line: the profile's, then the explicit ones, each once.
fn selected(store: &Store, profile: Option<&str>, ids: Vec<String>) -> anyhow::Result<Vec<String>> {
    let mut all = match profile {
        Some(p) => store.profile(p)?,
        None => Vec::new(),
    };
    for id in ids {
        store.entry(&id)?;
        if !all.contains(&id) {
            all.push(id);
        }
    }
    Ok(all)
}

fn list() -> anyhow::Result<ExitCode> {
    let store = Store::open()?;
    println!("cache: {}", store.dir().display());
    for id in store.ids() {
        let entry = store.entry(id)?;
        let state = match store.status(id) {
            Status::Verified(_) => "ok".to_string(),
            Status::Missing(_) => "missing".to_string(),
            Status::Bad(e) => format!("BAD: {e}"),
        };
        let profiles: Vec<&str> = store
            .manifest()
            .profiles
            .iter()
            .filter(|(_, ids)| ids.iter().any(|i| i == id))
            .map(|(p, _)| p.as_str())
            .collect();
        println!(
            "{id:<28} {:<8} {:>8.1} MB  {:<16} [{}]  {state}",
            entry.role.to_string(),
            entry.size as f64 / 1e6,
            entry.license,
            profiles.join(",")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn fetch(profile: Option<String>, ids: Vec<String>, arch: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = match arch {
        Some(arch) => Store::open()?.for_arch(arch)?,
        None => Store::open()?,
    };
    let ids = selected(&store, profile.as_deref(), ids)?;
    if ids.is_empty() {
        anyhow::bail!("nothing to fetch: give --profile NAME or model ids");
    }
    std::fs::create_dir_all(store.dir()).with_context(|| format!("creating {}", store.dir().display()))?;
    let mut fetcher = Fetcher::new(&store);
    obtain_each(&store, &ids, "fetched", |id| {
        let outcome = fetcher.fetch(id)?;
        if store.entry(id)?.role == Role::Slm {
            sotto_models::gguf::inspect_and_warn(&store.path(id)?)
                .with_context(|| format!("{id} was fetched but is not a usable GGUF file"))?;
        }
        Ok(outcome)
    })
}

fn import(dir: &std::path::Path, profile: Option<String>, ids: Vec<String>) -> anyhow::Result<ExitCode> {
    let store = Store::open()?;
    if !dir.is_dir() {
        anyhow::bail!("{} is not a directory", dir.display());
    }
    let ids = if profile.is_some() || !ids.is_empty() {
        selected(&store, profile.as_deref(), ids)?
    } else {
        let found: Vec<String> = store
            .ids()
            .into_iter()
            .filter(|id| store.entry(id).map(|e| dir.join(&e.file).exists()).unwrap_or(false))
            .map(String::from)
            .collect();
        if found.is_empty() {
            anyhow::bail!("{} holds no model file of the manifest (see `sotto models list`)", dir.display());
        }
        found
    };
    obtain_each(&store, &ids, "imported", |id| Ok(sotto_models::import(&store, id, dir)?))
}

/// Makes each model present with `obtain`, reporting each; a failure does not stop the others,
/// and the error at the end names every model that failed.
fn obtain_each(
    store: &Store,
    ids: &[String],
    done: &str,
    mut obtain: impl FnMut(&str) -> anyhow::Result<sotto_models::FetchOutcome>,
) -> anyhow::Result<ExitCode> {
    let mut failed = Vec::new();
    for id in ids {
        match obtain(id) {
            Ok(outcome) => {
                let what = if outcome == sotto_models::FetchOutcome::Fetched { done } else { "present" };
                eprintln!("{id}: {what} ({})", store.file_path(id)?.display());
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                failed.push(id.clone());
            }
        }
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} models could not be {done} into {}: {}",
            failed.len(),
            ids.len(),
            store.dir().display(),
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(profile: Option<String>, ids: Vec<String>) -> anyhow::Result<ExitCode> {
    let store = Store::open()?;
    let explicit = profile.is_some() || !ids.is_empty();
    let ids = if explicit {
        selected(&store, profile.as_deref(), ids)?
    } else {
        // Without a selection, check what is there: absent optional models are not an error.
        store
            .ids()
            .into_iter()
            .filter(|id| store.file_path(id).map(|p| p.exists()).unwrap_or(false))
            .map(String::from)
            .collect()
    };
    let mut bad = 0;
    for (id, result) in store.check_all(&ids) {
        match result {
            Ok(_) => println!("{id}: ok"),
            Err(e) => {
                bad += 1;
                println!("{id}: BAD: {e}");
            }
        }
    }
    if bad > 0 {
        eprintln!("{bad} of {} models failed verification", ids.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn inspect(model: &str) -> anyhow::Result<ExitCode> {
    let path = if std::path::Path::new(model).exists() { PathBuf::from(model) } else { Store::open()?.path(model)? };
    let info = sotto_models::gguf::inspect_and_warn(&path)?;
    println!("file:           {}", path.display());
    println!("architecture:   {}", info.architecture.as_deref().unwrap_or("(none)"));
    println!("name:           {}", info.name.as_deref().unwrap_or("(none)"));
    println!("quantisation:   {}{}", info.quantization, if info.is_4bit() { "" } else { " (not 4-bit)" });
    println!("context length: {}", info.context_length.map(|c| c.to_string()).unwrap_or_else(|| "(none)".into()));
    println!("chat template:  {}", if info.has_chat_template { "yes" } else { "no" });
    println!("tensors:        {}", info.tensor_count);
    Ok(ExitCode::SUCCESS)
}
