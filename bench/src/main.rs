//! Turns `bench/results/latest.json` (written by `bench/run.py`, driven by `tools/bench.sh`) into
//! `bench/REPORT.md` and the PNG plots the README embeds.
//!
//! ```text
//! sotto-bench-report [--results bench/results/latest.json] [--out bench]
//! ```
//!
//! The JSON is read loosely (`serde_json::Value`): a figure a run could not produce (peers skipped,
//! `--quick`) becomes "n/a" in the report and a missing bar in a plot, never an error.

mod plots;
mod report;

use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let results = arg("--results").map(PathBuf::from).unwrap_or_else(|| root.join("results/latest.json"));
    let out = arg("--out").map(PathBuf::from).unwrap_or(root);
    let text = std::fs::read_to_string(&results).with_context(|| format!("reading {}", results.display()))?;
    let run: Value = serde_json::from_str(&text).with_context(|| format!("parsing {}", results.display()))?;
    let plot_dir = out.join("plots");
    std::fs::create_dir_all(&plot_dir).with_context(|| format!("creating {}", plot_dir.display()))?;
    plots::register_font()?;
    let written = plots::all(&run, &plot_dir)?;
    let report = report::markdown(&run, &written);
    let path = out.join("REPORT.md");
    std::fs::write(&path, report).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {} and {} plots in {}", path.display(), written.len(), plot_dir.display());
    Ok(())
}

/// The stacks compared side by side: (label, latency summary, whole result object if any).
pub(crate) fn stacks(run: &Value) -> Vec<(String, Value)> {
    let mut out = vec![
        ("Sotto (grammar)".to_string(), run["sotto_summary"]["grammar"].clone()),
        ("Sotto (LM fallback)".to_string(), run["sotto_summary"]["lm"].clone()),
    ];
    if let Some(peers) = run["peer_summary"].as_object() {
        for (name, p) in peers {
            out.push((name.clone(), p["grammar_set"].clone()));
        }
    }
    out.retain(|(_, s)| s.is_object());
    out
}

pub(crate) fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}
