//! The language-model resolver alone (no grammar) on the text test set, with a real GGUF model
//! through the SLM worker: how far the fallback can be trusted, and what it costs.
//!
//! ```text
//! SOTTO_WORKER_DIR=… cargo run --release -p sotto-intents --example slm_eval -- [--model gemma3-270m-q4_k_m] [--limit N] [--no-calibration] [--shortlist K] [--min-margin M] [--sets vehicle,…,paraphrase] [-v]
//! ```
//! The `paraphrase` set holds requests the templates do not cover (and near-domain lines that must
//! give nothing), with the three domains loaded: it runs the daemon's cascade (grammar, then the
//! model for what the grammar misses) and also reports the grammar alone on it; so does `natural`
//! (requests in users' own words, questions, unexpressible requests), with all four domains.
//! Wrong actions (an action that is not the expected one) are counted apart from misses.
use std::path::Path;
use std::time::Instant;

use sotto_engines::WorkerLanguageModel;
use sotto_intents::evaluate::{percentile, read_cases, score_with};
use sotto_intents::slm::{self, LanguageModel, SlmConfig, SlmState};
use sotto_intents::Intents;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let model_id = arg("--model").unwrap_or_else(|| "gemma3-270m-q4_k_m".into());
    let limit: usize = arg("--limit").map(|v| v.parse().unwrap()).unwrap_or(usize::MAX);
    let verbose = args.iter().any(|a| a == "-v");
    let mut config = SlmConfig { calibrate: !args.iter().any(|a| a == "--no-calibration"), ..SlmConfig::default() };
    if let Some(m) = arg("--min-margin") {
        config.min_margin = m.parse().expect("--min-margin: log-probability margin over `none`");
    }
    if let Some(k) = arg("--shortlist") {
        config.shortlist = k.parse().expect("--shortlist: a number of candidates (0 = every intent)");
    }
    let store = sotto_models::Store::open().expect("model cache");
    let model = store.path(&model_id).unwrap_or_else(|e| panic!("{e} (run `sotto models fetch {model_id}`)"));
    let mut worker = sotto_workers::WorkerConfig::new(model);
    // Long prompts on a shared, loaded machine: slow is not hung.
    worker.request_timeout = std::time::Duration::from_secs(300);
    let mut client = sotto_workers::SlmClient::start(worker).expect("start the SLM worker (set SOTTO_WORKER_DIR)");
    let mut lm = WorkerLanguageModel(&mut client);
    let sets = arg("--sets").unwrap_or_else(|| "vehicle,factory,home,out_of_domain,paraphrase".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testset");
    println!("model {model_id}, calibration {}, shortlist {}", config.calibrate, config.shortlist);
    println!(
        "{:<14} {:>6} {:>8} {:>6} {:>7} {:>9} {:>16}",
        "set", "cases", "exact %", "wrong", "missed", "null→int", "p50/p90 ms"
    );
    for (set, domains) in [
        ("vehicle", vec!["vehicle"]),
        ("factory", vec!["factory"]),
        ("home", vec!["home"]),
        ("out_of_domain", vec!["vehicle", "factory", "home"]),
        ("paraphrase", vec!["vehicle", "factory", "home"]),
        ("natural", vec!["vehicle", "factory", "home", "barista"]),
    ] {
        let cascade = set == "paraphrase" || set == "natural";
        if !sets.split(',').any(|s| s == set) {
            continue;
        }
        let intents = Intents::shipped_domains(&domains).unwrap();
        let mut state = SlmState::new(&intents);
        let cases = read_cases(&dir.join(format!("{set}.jsonl"))).unwrap();
        let cases: Vec<_> = cases.into_iter().filter(|c| !c.text.trim().is_empty()).take(limit).collect();
        let grammar = score_with(&cases, |text| intents.parse(text));
        let score = score_with(&cases, |text| {
            let t = Instant::now();
            let mut r = if cascade {
                intents.resolve(text, Some(&mut lm as &mut dyn LanguageModel), &config)
            } else {
                slm::resolve_with(&mut state, &intents, text, &mut lm, &config)
                    .unwrap_or_else(|e| panic!("{text}: {e}"))
            };
            r.elapsed_ms = t.elapsed().as_secs_f64() * 1000.0;
            r
        });
        if verbose {
            for (case, r) in &score.failures {
                println!(
                    "  MISS {:?} want {:?} {:?}\n       got {}",
                    case.text,
                    case.intent,
                    case.slots,
                    serde_json::to_string(r).unwrap()
                );
            }
        }
        println!(
            "{:<14} {:>6} {:>8.1} {:>6} {:>7} {:>9} {:>8.0}/{:.0}",
            set,
            score.cases,
            score.accuracy(),
            score.wrong_actions,
            score.misses,
            format!("{}/{}", score.false_intents, score.null_cases),
            percentile(&score.latencies_ms, 0.5),
            percentile(&score.latencies_ms, 0.9)
        );
        if cascade {
            println!(
                "{:<14} {:>6} {:>8.1} {:>6} {:>7}   (grammar alone on the same lines)",
                "",
                grammar.cases,
                grammar.accuracy(),
                grammar.wrong_actions,
                grammar.misses
            );
        }
    }
}
