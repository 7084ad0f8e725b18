//! `sotto audio …`: front end of the `sotto-audio` crate.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AudioCommand {
    /// List capture devices.
    Devices,
}

pub fn run(command: AudioCommand) -> anyhow::Result<ExitCode> {
    match command {
        AudioCommand::Devices => anyhow::bail!("not implemented yet"),
    }
}
