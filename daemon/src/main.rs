//! `sotto`: the offline voice-assistant daemon and its command-line tools.
//!
//! The binary links no native inference engine: speech-to-text and the language model run in the
//! `sotto-stt-worker` and `sotto-slm-worker` processes, which this binary supervises.

mod cli;
mod engines;
mod pipeline;
mod service;

// Config and MQTT live in the library so that fuzz targets and other crates can reach them.
use sotto::{config, mqtt};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sotto", version, about = "Offline voice assistant: wake word, speech-to-text, intents, MQTT")]
struct Cli {
    /// Log filter, e.g. `info`, `sotto=debug` (overrides RUST_LOG).
    #[arg(long, global = true)]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch, list, verify and convert models.
    #[command(subcommand)]
    Models(cli::models::ModelsCommand),
    /// Audio tools: list capture devices, run wake-word detection on files.
    #[command(subcommand)]
    Audio(cli::audio::AudioCommand),
    /// Resolve a transcript to a validated intent.
    Parse(cli::intents::ParseArgs),
    /// Transcribe a WAV file with the speech-to-text worker.
    Transcribe(cli::intents::TranscribeArgs),
    /// Speak a text with a Piper voice: on a loudspeaker, or to a WAV file or stdout.
    Say(cli::say::SayArgs),
    /// VAD, speech-to-text and intents on one utterance in a WAV file.
    Understand(cli::intents::UnderstandArgs),
    /// Run the daemon (the microphone, or one WAV file with --input).
    Run(cli::daemon::RunArgs),
    /// Validate a config file: keys, values, model files, intents; the broker with --online.
    CheckConfig(cli::daemon::CheckConfigArgs),
}

fn main() -> std::process::ExitCode {
    sotto_workers::memory::fix_mmap_threshold();
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let result = match cli.command {
        Command::Models(cmd) => cli::models::run(cmd),
        Command::Audio(cmd) => cli::audio::run(cmd),
        Command::Parse(args) => cli::intents::parse(args),
        Command::Transcribe(args) => cli::intents::transcribe(args),
        Command::Say(args) => cli::say::say(args),
        Command::Understand(args) => cli::intents::understand(args),
        Command::Run(args) => cli::daemon::run(args),
        Command::CheckConfig(args) => cli::daemon::check_config(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so that stdout stays machine-readable (JSON lines).
fn init_logging(filter: Option<&str>) {
    let filter = filter
        .map(tracing_subscriber::EnvFilter::new)
        .or_else(|| tracing_subscriber::EnvFilter::try_from_default_env().ok())
        // The embedded broker logs every subscription at info; only its warnings matter to users.
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info,rumqttd=warn,rumqttd::server::broker=off"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).init();
}
