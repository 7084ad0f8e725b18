//! `sotto parse`, `sotto transcribe`, `sotto understand`: front end of the `sotto-intents` crate.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ParseArgs {
    /// The transcript to resolve.
    pub text: String,
}

#[derive(clap::Args)]
pub struct TranscribeArgs {
    pub wav: std::path::PathBuf,
}

#[derive(clap::Args)]
pub struct UnderstandArgs {
    pub wav: std::path::PathBuf,
}

pub fn parse(_args: ParseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

pub fn transcribe(_args: TranscribeArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}

pub fn understand(_args: UnderstandArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not implemented yet")
}
