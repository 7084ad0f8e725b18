//! `sotto models …`: front end of the `sotto-models` crate.

use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ModelsCommand {
    /// List the models of the manifest and whether each is present and verified.
    List,
}

pub fn run(command: ModelsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ModelsCommand::List => anyhow::bail!("not implemented yet"),
    }
}
