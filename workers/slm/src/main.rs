//! `sotto-slm-worker --model FILE.gguf [--threads N] [--ctx N] [--lora ADAPTER.gguf [--lora-scale F]]`:
//! the small language model as a worker process (llama.cpp via llama-cpp-2), speaking the
//! `sotto-workers` protocol on stdin/stdout. A LoRA adapter (tools/distil) is applied on top of the
//! base model for every request.
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
            let lora = args.lora.as_deref().map(|path| engine::Lora { path, scale: args.lora_scale });
            engine::Engine::load(&args.model, args.threads, args.ctx, args.grammar_full_vocab, lora)
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
    /// A GGUF LoRA adapter for this base model, applied to every request.
    #[arg(long)]
    lora: Option<PathBuf>,
    /// How strongly the adapter applies (1 = as trained).
    #[arg(long, requires = "lora", default_value_t = 1.0, value_parser = positive)]
    lora_scale: f32,
}

fn positive(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        Ok(v) => Err(format!("{v} is not a positive number")),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lora_scale_needs_lora_and_a_positive_value() {
        let parse = |args: &[&str]| Args::try_parse_from(args.iter().copied());
        let ok = parse(&["--model", "m.gguf", "--lora", "a.gguf", "--lora-scale", "0.5"]).unwrap();
        assert_eq!((ok.lora.as_deref(), ok.lora_scale), (Some(std::path::Path::new("a.gguf")), 0.5));
        assert_eq!(parse(&["--model", "m.gguf", "--lora", "a.gguf"]).unwrap().lora_scale, 1.0);
        let err = parse(&["--model", "m.gguf", "--lora-scale", "0.5"]).err().unwrap().to_string();
        assert!(err.contains("--lora"), "{err}");
        for bad in ["0", "-1", "inf", "x"] {
            let arg = format!("--lora-scale={bad}");
            let err = parse(&["--model", "m.gguf", "--lora", "a.gguf", &arg]).err().unwrap();
            assert!(err.to_string().contains("--lora-scale"), "{bad}: {err}");
        }
    }
}
