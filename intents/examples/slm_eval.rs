//! The language-model resolver alone (no grammar) on the text test set, with a real GGUF model
//! through the SLM worker: how far the fallback can be trusted, and what it costs.
//!
//! ```text
//! SOTTO_WORKER_DIR=… cargo run --release -p sotto-intents --example slm_eval -- [--model ID (default: the default profile's)] [--limit N] [--no-calibration] [--shortlist K] [--min-margin M] [--rival-margin M] [--domain-rivals | --no-domain-rivals] [--no-query-own-word] [--sets vehicle,…,paraphrase] [-v]
//!     [--adapter ID|FILE.gguf [--adapter-scale F]] [--cases FILE.jsonl --domains home,vehicle,…]
//! ```
//! With `--adapter` (a distilled LoRA adapter, tools/distil) the model is asked as the daemon asks
//! it then ([`SlmConfig::distilled`]: the short prompt, no calibration). `--cases` adds a set of
//! one's own, e.g. the held-out split distil.sh writes beside the adapter, run through the cascade
//! with the `--domains` given.
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
    let limit: usize = arg("--limit").map(|v| v.parse().unwrap()).unwrap_or(usize::MAX);
    let verbose = args.iter().any(|a| a == "-v");
    let store = sotto_models::Store::open().expect("model cache");
    // By default the daemon's: the default profile's language model.
    let model_id = arg("--model").unwrap_or_else(|| {
        let ids = store.profile("default").expect("default profile");
        store.profile_model(&ids, sotto_models::Role::Slm).expect("a language model in the default profile")
    });
    let adapter = arg("--adapter").map(|a| match store.path(&a) {
        Ok(path) => path,
        Err(_) if Path::new(&a).is_file() => a.into(),
        Err(e) => panic!("--adapter {a}: {e}"),
    });
    let mut config = if adapter.is_some() { SlmConfig::distilled() } else { SlmConfig::default() };
    if args.iter().any(|a| a == "--no-calibration") {
        config.calibrate = false;
    }
    if let Some(m) = arg("--min-margin") {
        config.min_margin = m.parse().expect("--min-margin: log-probability margin over `none`");
    }
    if let Some(m) = arg("--rival-margin") {
        config.rival_margin = m.parse().expect("--rival-margin: log-probability margin over the next intent");
    }
    // The domain and query checks are on with an adapter (as the daemon runs it), off without
    // one; these say otherwise.
    if args.iter().any(|a| a == "--domain-rivals") {
        config.refuse_domain_rivals = true;
    }
    if args.iter().any(|a| a == "--no-domain-rivals") {
        config.refuse_domain_rivals = false;
    }
    if args.iter().any(|a| a == "--no-query-own-word") {
        config.query_needs_own_word = false;
    }
    if let Some(k) = arg("--shortlist") {
        config.shortlist = k.parse().expect("--shortlist: a number of candidates (0 = every intent)");
    }
    let model = store.path(&model_id).unwrap_or_else(|e| panic!("{e} (run `sotto models fetch {model_id}`)"));
    let mut worker = sotto_workers::WorkerConfig::new(model);
    // Long prompts on a shared, loaded machine: slow is not hung.
    worker.request_timeout = std::time::Duration::from_secs(300);
    if let Some(adapter) = &adapter {
        worker.args = vec!["--lora".into(), adapter.display().to_string()];
        worker.args.extend(["--lora-scale".into(), arg("--adapter-scale").unwrap_or_else(|| "1".into())]);
        // The context the daemon gives the short prompt (daemon/src/engines.rs).
        worker.args.extend(["--ctx".into(), sotto_intents::slm::SHORT_PROMPT_CONTEXT.to_string()]);
    }
    let mut client = sotto_workers::SlmClient::start(worker).expect("start the SLM worker (set SOTTO_WORKER_DIR)");
    let mut lm = WorkerLanguageModel(&mut client);
    let sets = arg("--sets").unwrap_or_else(|| "vehicle,factory,home,out_of_domain,paraphrase".into());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testset");
    println!(
        "model {model_id}, adapter {}, prompt {:?}, calibration {}, min margin {}, shortlist {}",
        adapter.as_ref().map_or("none".into(), |a| a.display().to_string()),
        config.prompt,
        config.calibrate,
        config.min_margin,
        config.shortlist
    );
    println!(
        "{:<14} {:>6} {:>8} {:>6} {:>7} {:>9} {:>16}",
        "set", "cases", "exact %", "wrong", "missed", "null→int", "p50/p90 ms"
    );
    let own = arg("--cases").map(|file| {
        let domains = arg("--domains").expect("--cases needs --domains a,b,…");
        (file, domains.split(',').map(String::from).collect::<Vec<_>>())
    });
    let mut runs: Vec<(String, Vec<String>, std::path::PathBuf)> = [
        ("vehicle", vec!["vehicle"]),
        ("factory", vec!["factory"]),
        ("home", vec!["home"]),
        ("out_of_domain", vec!["vehicle", "factory", "home"]),
        ("paraphrase", vec!["vehicle", "factory", "home"]),
        ("natural", vec!["vehicle", "factory", "home", "barista"]),
    ]
    .into_iter()
    .filter(|(set, _)| sets.split(',').any(|s| s == *set))
    .map(|(set, d)| (set.to_string(), d.into_iter().map(String::from).collect(), dir.join(format!("{set}.jsonl"))))
    .collect();
    if let Some((file, domains)) = own {
        let name = Path::new(&file).file_stem().map_or("cases".into(), |s| s.to_string_lossy().into_owned());
        runs.push((name, domains, file.into()));
    }
    for (set, domains, file) in runs {
        let set = set.as_str();
        let cascade = !matches!(set, "vehicle" | "factory" | "home" | "out_of_domain");
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        let intents = Intents::shipped_domains(&domains).unwrap();
        let mut state = SlmState::new(&intents, config.prompt);
        let cases = read_cases(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
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
