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

use sotto_workers::server::run_worker;

fn main() -> ExitCode {
    run_worker(
        Args::parse,
        |args: &Args| {
            engine::Engine::load(&args.model, args.threads, args.ctx, args.grammar_full_vocab)
                .map_err(|e| format!("{e:#}"))
        },
        engine::Engine::hello,
        |engine, request, body| engine.handle(request, body),
    )
}

struct Args {
    model: PathBuf,
    threads: Option<i32>,
    ctx: u32,
    /// `--grammar-full-vocab`: mask the whole vocabulary every step (benchmark baseline).
    grammar_full_vocab: bool,
}

impl Args {
    fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let (mut model, mut threads, mut ctx, mut grammar_full_vocab) = (None, None, 2048u32, false);
        while let Some(arg) = it.next() {
            let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
            match arg.as_str() {
                "--model" => model = Some(PathBuf::from(value("--model")?)),
                "--threads" => {
                    let v = value("--threads")?;
                    threads = Some(v.parse().map_err(|_| format!("--threads: not a number: {v:?}"))?);
                }
                "--ctx" => {
                    let v = value("--ctx")?;
                    ctx = v.parse().map_err(|_| format!("--ctx: not a number: {v:?}"))?;
                }
                "--grammar-full-vocab" => grammar_full_vocab = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(Self { model: model.ok_or("--model FILE is required")?, threads, ctx, grammar_full_vocab })
    }
}
