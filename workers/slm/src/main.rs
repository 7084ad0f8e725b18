//! `sotto-slm-worker --model FILE.gguf [--threads N] [--ctx N]`: the small language model as a
//! worker process (llama.cpp via llama-cpp-2), speaking the `sotto-workers` protocol on
//! stdin/stdout.
//!
//! Greedy decoding only: intent extraction wants the most likely, reproducible answer. The KV cache
//! of the previous request is kept and its longest common token prefix with the next prompt reused,
//! so the static part of the intents prompt is evaluated once per process.

mod engine;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;
use sotto_workers::server::run_worker;

fn main() -> ExitCode {
    run_worker(
        |args| Args::try_parse_from(args).map_err(|e| e.to_string()),
        |args: &Args| {
            engine::Engine::load(&args.model, args.threads, args.ctx, args.grammar_full_vocab)
                .map_err(|e| format!("{e:#}"))
        },
        engine::Engine::hello,
        |engine, request, body| engine.handle(request, body),
    )
}

/// Arguments as the supervisor passes them: `--model FILE` first, then the config's extras.
#[derive(clap::Parser)]
#[command(no_binary_name = true, args_override_self = true)]
struct Args {
    /// The GGUF model file.
    #[arg(long)]
    model: PathBuf,
    /// llama.cpp threads; default every core.
    #[arg(long)]
    threads: Option<i32>,
    /// Context length in tokens.
    #[arg(long, default_value_t = 2048)]
    ctx: u32,
    /// Mask the whole vocabulary every step (benchmark baseline).
    #[arg(long)]
    grammar_full_vocab: bool,
}
