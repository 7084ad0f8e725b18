//! `sotto run` and `sotto check-config`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, ConfigIssue};
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
    // Syntax and unknown keys stop here; every other check runs, so all problems show at once.
    let config = match Config::load_unvalidated(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut issues: Vec<ConfigIssue> = config.validate();
    if let Err(found) = engines::locate_models(&config) {
        issues.extend(found);
    }
    if let Err(issue) = engines::load_intents(&config) {
        issues.push(issue);
    }
    if args.online && config.mqtt.broker == BrokerMode::External {
        if let Err(message) = broker_reachable(&config) {
            issues.push(ConfigIssue { key: "mqtt.host".into(), message });
        }
    }
    if issues.is_empty() {
        println!("{}: OK", args.config.display());
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("{}: {} problem(s)", args.config.display(), issues.len());
    for issue in &issues {
        eprintln!("  {issue}");
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
