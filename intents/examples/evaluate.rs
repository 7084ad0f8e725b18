//! Text-level evaluation of the grammar matcher on `intents/testset/*.jsonl`.
//!
//! `cargo run --release -p sotto-intents --example evaluate [-- --verbose | --completeness]`
use std::path::Path;

use sotto_intents::evaluate::{held_out_sets, percentile, shipped_testset, Score};

fn main() {
    let verbose = std::env::args().any(|a| a == "--verbose" || a == "-v");
    let debug = std::env::args().any(|a| a == "--debug");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testset");
    if debug {
        // Confidence and latency of every line, to see the margins around the threshold.
        let all = sotto_intents::Intents::shipped();
        for f in ["vehicle", "factory", "home", "out_of_domain"] {
            for c in sotto_intents::evaluate::read_cases(&dir.join(format!("{f}.jsonl"))).unwrap() {
                let best = all.matcher().ranked(&c.text).into_iter().find(|m| m.well_supported());
                let r = all.parse(&c.text);
                println!(
                    "{f:<14} {:.2} {:>7.3}ms {:<26} {}",
                    best.map(|m| m.confidence).unwrap_or(0.0),
                    r.elapsed_ms,
                    r.intent.unwrap_or_default(),
                    c.text
                );
            }
        }
        return;
    }
    if std::env::args().any(|a| a == "--completeness") {
        // How many test lines are finished commands (`Intents::complete`), with all four domains
        // loaded and with each domain alone, by the reason the others may go on.
        let all = sotto_intents::Intents::shipped();
        for f in ["vehicle", "factory", "home"] {
            let alone = sotto_intents::Intents::shipped_domains(&[f]).unwrap();
            for (loaded, intents) in [("all four", &all), ("alone", &alone)] {
                let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
                for c in sotto_intents::evaluate::read_cases(&dir.join(format!("{f}.jsonl"))).unwrap() {
                    let why = serde_json::to_value(intents.complete(&c.text)).unwrap();
                    *counts.entry(why["completeness"].as_str().unwrap_or_default().to_string()).or_default() += 1;
                }
                println!("{f:<8} {loaded:<8} {counts:?}");
            }
        }
        return;
    }
    if let Some(i) = std::env::args().position(|a| a == "--latency") {
        // Every test line, all four domains loaded, N runs each: per-call latency distribution.
        let runs: usize = std::env::args().nth(i + 1).and_then(|v| v.parse().ok()).unwrap_or(50);
        let all = sotto_intents::Intents::shipped();
        let (mut ms, mut medians) = (Vec::new(), Vec::new());
        for f in ["vehicle", "factory", "home", "out_of_domain"] {
            for c in sotto_intents::evaluate::read_cases(&dir.join(format!("{f}.jsonl"))).unwrap() {
                let line: Vec<f64> = (0..runs).map(|_| all.parse(&c.text).elapsed_ms).collect();
                medians.push(percentile(&line, 0.5));
                ms.extend(line);
            }
        }
        // Wall-clock outliers on a shared machine are the scheduler; the per-line median is not.
        println!("slowest line (median of its {runs} runs): {:.3} ms", percentile(&medians, 1.0));
        println!(
            "all four domains ({} graph states), {} calls: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            all.matcher().states(),
            ms.len(),
            percentile(&ms, 0.5),
            percentile(&ms, 0.9),
            percentile(&ms, 0.99),
            percentile(&ms, 1.0)
        );
        return;
    }
    let results = shipped_testset(&dir).unwrap_or_else(|e| panic!("cannot run the test set: {e}"));
    let held_out = held_out_sets(&dir).unwrap_or_else(|e| panic!("cannot run the held-out sets: {e}"));
    let mut total = Score::default();
    let row = |name: &str, s: &Score| {
        println!(
            "{:<15} {:>6} {:>8.1} {:>7} {:>7} {:>9} {:>7.3}/{:.3}",
            name,
            s.cases,
            s.accuracy(),
            s.wrong_actions,
            s.misses,
            format!("{}/{}", s.false_intents, s.null_cases),
            percentile(&s.latencies_ms, 0.5),
            percentile(&s.latencies_ms, 0.99)
        )
    };
    println!(
        "{:<15} {:>6} {:>8} {:>7} {:>7} {:>9} {:>14}",
        "set", "cases", "exact %", "wrong", "missed", "null→int", "p50/p99 ms"
    );
    let shipped = results.len();
    for (k, (name, s)) in results.into_iter().chain(held_out).enumerate() {
        if k == shipped {
            row("all (shipped)", &total);
            println!("held out, all four domains loaded (not part of the goal):");
        }
        row(&name, &s);
        if verbose {
            for (case, r) in &s.failures {
                println!(
                    "   MISS {:?}\n        want {:?} {:?}\n        got  {}",
                    case.text,
                    case.intent,
                    case.slots,
                    serde_json::to_string(r).unwrap()
                );
            }
        }
        if k < shipped {
            total.add(s);
        }
    }
}
