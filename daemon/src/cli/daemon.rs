//! `sotto run` and `sotto check-config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use sotto_problems::Problems;

use crate::config::Config;
use crate::engines;
use crate::mqtt::BrokerMode;

#[derive(clap::Args)]
pub struct RunArgs {
    /// Config file; without it the built-in default: embedded broker, `default` model profile,
    /// every shipped domain, wake word "hey jarvis".
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Run the pipeline on this WAV file and exit, printing every published MQTT message as a JSON
    /// line `{"topic": …, "payload": …}`.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// With --input: feed the file at its recorded speed, as a microphone would, so that latency
    /// figures include what happens during pauses (speculative speech-to-text). Each command is
    /// still handled before the audio after it.
    #[arg(long, requires = "input")]
    pub realtime: bool,
}

#[derive(clap::Args)]
pub struct CheckConfigArgs {
    pub config: PathBuf,
    /// Also connect to the configured broker.
    #[arg(long)]
    pub online: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::builtin(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let result = runtime.block_on(crate::pipeline::run(config, args.config.clone(), args.input.clone(), args.realtime));
    // A request abandoned at shutdown may still occupy a blocking thread until its worker dies;
    // dropping the runtime would wait for it without bound.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result?;
    Ok(ExitCode::SUCCESS)
}

pub fn check_config(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    // Only unreadable or non-TOML text stops here: a wrong type or an unknown key is one problem
    // among the others, its key left at the default so every other check still runs.
    let (config, mut problems) = Config::read(&args.config);
    if let Some(config) = &config {
        // The models and domains are looked up as far as the values allow; what validation
        // already said about a key (an unknown wake word, a missing domain file) is not said again.
        let mut later = Problems::new();
        if let Err(found) = engines::locate_models(config) {
            later.extend(found);
        }
        if let Err(found) = engines::load_intents(config) {
            later.extend(found);
        }
        if args.online && config.mqtt.broker == BrokerMode::External {
            if let Err(message) = broker_reachable(config) {
                later.add("mqtt.host", message);
            }
        }
        let new: Vec<_> = later.into_iter().filter(|p| !problems.touches(&p.key)).collect();
        problems.extend(new);
    }
    if problems.is_empty() {
        println!("{}: OK", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{}: {} problem(s)", args.config.display(), problems.len());
    for problem in &problems {
        eprintln!("  {problem}");
    }
    Ok(ExitCode::FAILURE)
}

/// Connects with the configured settings and waits for the broker's CONNACK.
fn broker_reachable(config: &Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime
        .block_on(crate::mqtt::probe(&config.mqtt, Duration::from_secs(5)))
        .map_err(|e| format!("{}:{}: {e}", config.mqtt.host, config.mqtt.port))
}
