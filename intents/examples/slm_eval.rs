//! The language-model resolver alone (no grammar) on the text test set, with a real GGUF model
//! through the SLM worker: how far the fallback can be trusted, and what it costs.
//!
//! ```text
//! SOTTO_WORKER_DIR=… cargo run --release -p sotto-intents --example slm_eval -- [--model gemma3-270m-q4_k_m] [--limit N] [--no-calibration] [--shortlist K] [--min-margin M] [--sets vehicle,…,paraphrase] [-v]
//! ```
//! The `paraphrase` set holds requests the templates do not cover (and near-domain lines that must
//! give nothing), with the three domains loaded: it runs the daemon's cascade (grammar, then the
//! model for what the grammar misses) and also reports the grammar alone on it.
use std::path::Path;
use std::time::Instant;

use sotto_engines::WorkerLanguageModel;
use sotto_intents::evaluate::{is_correct, percentile, read_cases};
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
    println!("{:<14} {:>6} {:>8} {:>9} {:>16}", "set", "cases", "exact %", "null→int", "p50/p90 ms");
    for (set, domains) in [
        ("vehicle", vec!["vehicle"]),
        ("factory", vec!["factory"]),
        ("home", vec!["home"]),
        ("out_of_domain", vec!["vehicle", "factory", "home"]),
        ("paraphrase", vec!["vehicle", "factory", "home"]),
    ] {
        let cascade = set == "paraphrase";
        if !sets.split(',').any(|s| s == set) {
            continue;
        }
        let intents = Intents::shipped_domains(&domains).unwrap();
        let mut state = SlmState::new(&intents);
        let cases = read_cases(&dir.join(format!("{set}.jsonl"))).unwrap();
        let (mut ok, mut n, mut false_int, mut nulls, mut ms, mut grammar_ok) = (0, 0, 0, 0, Vec::new(), 0);
        for case in cases.iter().filter(|c| !c.text.trim().is_empty()).take(limit) {
            let t = Instant::now();
            let r = if cascade {
                grammar_ok += usize::from(is_correct(case, &intents.parse(&case.text)));
                intents.resolve(&case.text, Some(&mut lm as &mut dyn LanguageModel), &config)
            } else {
                slm::resolve_with(&mut state, &intents, &case.text, &mut lm, &config)
                    .unwrap_or_else(|e| panic!("{}: {e}", case.text))
            };
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            n += 1;
            if case.intent.is_none() {
                nulls += 1;
                false_int += usize::from(r.intent.is_some());
            }
            if is_correct(case, &r) {
                ok += 1;
            } else if verbose {
                println!(
                    "  MISS {:?} want {:?} {:?}\n       got {}",
                    case.text,
                    case.intent,
                    case.slots,
                    serde_json::to_string(&r).unwrap()
                );
            }
        }
        println!(
            "{:<14} {:>6} {:>8.1} {:>9} {:>8.0}/{:.0}",
            set,
            n,
            100.0 * ok as f64 / n as f64,
            format!("{false_int}/{nulls}"),
            percentile(&ms, 0.5),
            percentile(&ms, 0.9)
        );
        if cascade {
            println!(
                "{:<14} {:>6} {:>8.1}   (grammar alone on the same lines)",
                "",
                n,
                100.0 * grammar_ok as f64 / n as f64
            );
        }
    }
}
