//! Wake-word benchmark (run through tools/bench_wake.sh, which also runs the Python reference).
//!
//!   wake_bench throughput FILE_OR_DIR...
//!       CPU time of openWakeWord (all shipped wake words) on the concatenated audio, fed as a live
//!       stream in 80 ms chunks and in 1 s blocks (with and without the whole-run embedding, see
//!       `OpenWakeWord::set_whole_run_embedding`). One JSON line each.
//!   wake_bench false-accepts --positives MANIFEST --negatives FILE_OR_DIR...
//!       Every file as its own stream; for a sweep of thresholds: detections on the negatives per
//!       hour, and whether every positive fixture is detected (its own wake word, once).
//!
//! Models come from the store ($SOTTO_MODELS); CPU time is the process's user+system time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;
use sotto_audio::{read_wav, FrontEndModels, OpenWakeWord, Trigger, TriggerConfig, FRAME, SHIPPED_WAKE_WORDS};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models = load()?;
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(&models, &files(&args[1..])?),
        Some("false-accepts") => {
            let pos_at = args.iter().position(|a| a == "--positives").ok_or("--positives MANIFEST missing")?;
            let neg_at = args.iter().position(|a| a == "--negatives").ok_or("--negatives missing")?;
            false_accepts(&models, Path::new(&args[pos_at + 1]), &files(&args[neg_at + 1..])?)
        }
        _ => Err("usage: wake_bench throughput FILE_OR_DIR... | false-accepts --positives MANIFEST --negatives FILE_OR_DIR...".into()),
    }
}

fn load() -> Result<FrontEndModels, Box<dyn std::error::Error>> {
    let store = sotto_models::Store::open()?;
    sotto_audio::init_onnx_runtime(&store.path(sotto_audio::ONNXRUNTIME_ID)?)?;
    let wakes: Vec<String> = SHIPPED_WAKE_WORDS.iter().map(|s| s.to_string()).collect();
    Ok(FrontEndModels::resolve(&wakes, &TriggerConfig::default(), |id| store.path(id))?)
}

fn files(inputs: &[String]) -> Result<Vec<PathBuf>, Box<dyn std::error::Error>> {
    let mut out = Vec::new();
    for i in inputs {
        let p = PathBuf::from(i);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "wav"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// User + system CPU seconds of this process (Linux /proc, 10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn throughput(models: &FrontEndModels, files: &[PathBuf]) -> Result<(), Box<dyn std::error::Error>> {
    let mut audio = Vec::new();
    for f in files {
        audio.extend(read_wav(f)?);
    }
    let audio_s = audio.len() as f64 / 16_000.0;
    let modes = [
        ("stream 80 ms", FRAME, true),
        ("stream 160 ms blocks, whole-run embedding", 2 * FRAME, true),
        ("stream 240 ms blocks, whole-run embedding", 3 * FRAME, true),
        // The idle daemon's default (`wake.batch_ms = 320`).
        ("stream 320 ms blocks, whole-run embedding", 4 * FRAME, true),
        ("blocks 1 s, one embedding call per window", 16_000, false),
        ("blocks 1 s, whole-run embedding", 16_000, true),
    ];
    for (mode, block, whole_run) in modes {
        let mut oww = OpenWakeWord::new(&models.oww, &models.wakes)?;
        oww.set_whole_run_embedding(whole_run);
        let (cpu0, wall0) = (cpu_seconds(), Instant::now());
        let mut frames = 0;
        for chunk in audio.chunks(block) {
            frames += oww.score_frames(chunk)?.len();
        }
        let (cpu, wall) = (cpu_seconds() - cpu0, wall0.elapsed().as_secs_f64());
        println!(
            "{}",
            json!({"impl": "sotto (Rust, ort)", "mode": mode, "wake_models": models.wakes.len(), "files": files.len(),
                   "audio_s": round(audio_s, 1), "frames": frames, "cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                   "rtf": round(cpu / audio_s, 5), "cpu_s_per_audio_hour": round(cpu / audio_s * 3600.0, 1)})
        );
    }
    Ok(())
}

#[derive(serde::Deserialize)]
struct Manifest {
    fixtures: Vec<Fixture>,
}

#[derive(serde::Deserialize)]
struct Fixture {
    file: String,
    kind: String,
    wake: Option<String>,
}

fn false_accepts(
    models: &FrontEndModels,
    manifest: &Path,
    negatives: &[PathBuf],
) -> Result<(), Box<dyn std::error::Error>> {
    let m: Manifest = serde_json::from_str(&std::fs::read_to_string(manifest)?)?;
    let dir = manifest.parent().unwrap_or(Path::new("."));
    let mut oww = OpenWakeWord::new(&models.oww, &models.wakes)?;
    let names: Vec<String> = models.wakes.iter().map(|w| w.name.clone()).collect();
    // Per file: per frame, the scores of every wake word.
    let mut score = |path: &Path| -> Result<Vec<sotto_audio::Frame>, Box<dyn std::error::Error>> {
        sotto_audio::WakeDetector::reset(&mut oww)?;
        Ok(oww.score_frames(&read_wav(path)?)?)
    };
    let mut negative_scores = Vec::new();
    let mut negative_s = 0.0;
    for f in negatives {
        let frames = score(f)?;
        negative_s += frames.len() as f64 * FRAME as f64 / 16_000.0;
        negative_scores.push((f.clone(), frames));
    }
    for fx in m.fixtures.iter().filter(|f| f.kind == "negative") {
        let frames = score(&dir.join(&fx.file))?;
        negative_s += frames.len() as f64 * FRAME as f64 / 16_000.0;
        negative_scores.push((dir.join(&fx.file), frames));
    }
    let mut positive_scores = Vec::new();
    for fx in m.fixtures.iter().filter(|f| f.kind == "positive" || f.kind == "twin") {
        let wake = fx.wake.clone().ok_or("positive without wake")?;
        let idx = names.iter().position(|n| *n == wake).ok_or("unknown wake in manifest")?;
        positive_scores.push((fx.file.clone(), idx, score(&dir.join(&fx.file))?));
    }
    let count = |frames: &[sotto_audio::Frame], model: usize, cfg: &TriggerConfig| -> usize {
        let mut t = Trigger::new(cfg.clone());
        frames.iter().filter(|f| t.step(f.scores[model], f.end_sample).is_some()).count()
    };
    for patience in [1u32, 2, 3] {
        for threshold in [0.05f32, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9] {
            let cfg = TriggerConfig { threshold, patience, ..TriggerConfig::default() };
            let mut per_model = serde_json::Map::new();
            let mut total = 0;
            let mut where_ = Vec::new();
            for (i, n) in names.iter().enumerate() {
                let c: usize = negative_scores
                    .iter()
                    .map(|(f, fr)| {
                        let c = count(fr, i, &cfg);
                        if c > 0 {
                            where_.push(format!("{n}@{}", f.file_name().unwrap().to_string_lossy()));
                        }
                        c
                    })
                    .sum();
                per_model.insert(n.clone(), json!(c));
                total += c;
            }
            let missed: Vec<&str> = positive_scores
                .iter()
                .filter(|(_, i, fr)| count(fr, *i, &cfg) != 1)
                .map(|(f, _, _)| f.as_str())
                .collect();
            println!(
                "{}",
                json!({"threshold": threshold, "patience": patience, "negative_audio_h": round(negative_s / 3600.0, 3),
                       "false_accepts": total, "false_accepts_per_h": round(total as f64 / (negative_s / 3600.0), 2),
                       "per_model": per_model, "positives": positive_scores.len(),
                       "positives_not_detected_exactly_once": missed, "false_accept_files": where_})
            );
        }
    }
    Ok(())
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}
