//! Speech-level barista benchmark (`shared/data/barista/README.md` beside the repository, or `$SOTTO_BARISTA`): Whisper through the STT
//! worker, then the grammar matcher with the barista domain, scored by intent + every slot.
//!
//! ```text
//! cargo run --release -p sotto-intents --example barista_speech -- [--snr clean,6,9,…] [--stt-model ID] [--cache FILE] [--no-prompt] [--beam N] [--files-from LIST] [--no-grammar-pass] [--dump FILE] [--negatives LIST] [--max-drop NATS] [--max-improbable SHARE] [--min-word P]
//! ```
//! `--negatives LIST`: also run out-of-domain speech (a TSV of `WAV<TAB>what is said`, paths
//! relative to the list) at the same levels through the same rule, and count the intents each pass
//! makes of it (every one is a false action).
//! The grammar-constrained second pass ([`sotto_intents::speech_grammar`]) runs by default, with
//! exactly the daemon's rule: only when the free transcript does not resolve well, kept only when
//! Whisper finds the forced reading nearly as likely. `--dump FILE` writes one JSON line per
//! second pass (file, level, both transcripts with their tokens' probabilities, whether each
//! resolution is right, the verdict) for calibrating the rule.
//! Noisy copies follow the README: a random window of the kitchen noise (fixed seed), scaled so the
//! ratio of the speech's and the noise's maximum 2048-sample frame energy is the SNR, added, peak
//! normalised to 0.5. The window comes from a generator seeded by the level and the file name.
//! Transcripts are cached in a JSON-lines file (default `$SOTTO_CACHE/barista-transcripts.jsonl`)
//! keyed by file, SNR, prompt and beam, so matcher changes are re-scored without re-running Whisper. The worker binary is found via `SOTTO_WORKER_DIR`.
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sotto_intents::barista::{accepted, data_dir, read_labels};
use sotto_intents::evaluate::percentile;
use sotto_intents::speech_grammar::{mean_logprob, Verdict};
use sotto_intents::understand::{Heard, UnderstandConfig, Understander, Understanding};
use sotto_intents::Intents;

#[derive(Clone)]
struct Cached {
    text: String,
    tokens: Vec<sotto_speech::Token>,
    flagged: Option<String>,
    ms: f64,
}

impl Cached {
    fn heard(&self) -> Heard {
        Heard { text: self.text.clone(), tokens: self.tokens.clone(), flagged: self.flagged.clone() }
    }
}

/// Transcripts by key: from the cache file, else from the STT worker (started on first need) and
/// then appended to the cache file.
struct Transcriber {
    cache: BTreeMap<String, Cached>,
    cache_out: std::fs::File,
    stt: Option<sotto_workers::SttClient>,
    /// The speech-to-text model of the store (`--stt-model`, default `whisper-base`).
    model: String,
    /// Score only what is already transcribed (fast matcher iterations while Whisper runs).
    cached_only: bool,
}

impl Transcriber {
    /// Cached transcript, or a fresh one (then cached); `None` when it failed or, with
    /// `cached_only`, is not cached.
    fn get(
        &mut self,
        key: &str,
        samples: &dyn Fn() -> Vec<f32>,
        opts: &sotto_workers::TranscribeOptions,
    ) -> Option<Cached> {
        if let Some(c) = self.cache.get(key) {
            return Some(c.clone());
        }
        if self.cached_only {
            return None;
        }
        let client = self.stt.get_or_insert_with(|| {
            let store = sotto_models::Store::open().expect("model cache");
            let id = &self.model;
            let model = store.path(id).unwrap_or_else(|e| panic!("{e} (run `sotto models fetch {id}`)"));
            let mut config = sotto_workers::WorkerConfig::new(model);
            // The benchmark shares the machine; a slow request is not a hung worker.
            config.request_timeout = std::time::Duration::from_secs(180);
            sotto_workers::SttClient::start(config).expect("start the STT worker (set SOTTO_WORKER_DIR)")
        });
        let t = Instant::now();
        let tr = match client.transcribe(&samples(), opts) {
            Ok(tr) => tr,
            Err(e) => {
                // Counted as a miss, not cached, so a rerun retries it.
                eprintln!("{key}: transcription failed: {e}");
                return None;
            }
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        let line =
            serde_json::json!({"key": key, "text": tr.text, "tokens": tr.tokens, "flagged": tr.flagged, "stt_ms": ms});
        writeln!(self.cache_out, "{line}").unwrap();
        let fresh = Cached { text: tr.text, tokens: tr.tokens, flagged: tr.flagged, ms };
        self.cache.insert(key.to_string(), fresh.clone());
        Some(fresh)
    }
}

/// The cascade's constrained pass, answered from the transcript cache (or the worker, then cached).
struct CachedConstrained<'a> {
    transcriber: &'a mut Transcriber,
    key: String,
    options: sotto_workers::TranscribeOptions,
    ms: Option<f64>,
    tokens: Vec<sotto_speech::Token>,
}

impl sotto_intents::understand::Transcriber for CachedConstrained<'_> {
    fn transcribe_constrained(&mut self, samples: &[f32], word_graph: &str) -> Result<Heard, String> {
        let options =
            sotto_workers::TranscribeOptions { word_graph: Some(word_graph.to_string()), ..self.options.clone() };
        let c = self.transcriber.get(&self.key, &|| samples.to_vec(), &options).ok_or("not transcribed")?;
        self.ms = Some(c.ms);
        self.tokens = c.tokens.clone();
        Ok(c.heard())
    }
}

/// One utterance through the daemon's cascade: its free transcript, the grammar's reading of it
/// alone, what the cascade decided, and the constrained pass's tokens and time when it ran.
struct Run {
    free: Cached,
    free_resolution: sotto_intents::Resolution,
    understanding: Understanding,
    forced_tokens: Vec<sotto_speech::Token>,
    second_ms: Option<f64>,
}

fn run_one(
    transcriber: &mut Transcriber,
    understander: &Understander,
    intents: &Intents,
    [key, graph_key]: [&str; 2],
    options: &sotto_workers::TranscribeOptions,
    samples: &dyn Fn() -> Vec<f32>,
) -> Option<Run> {
    let free = transcriber.get(key, samples, options)?;
    let audio = samples();
    let mut pass = CachedConstrained {
        transcriber,
        key: format!("{key}|{graph_key}"),
        options: options.clone(),
        ms: None,
        tokens: Vec::new(),
    };
    let understanding = understander.understand(&free.heard(), &audio, Some(&mut pass), None);
    let (second_ms, forced_tokens) = (pass.ms, pass.tokens);
    Some(Run { free_resolution: intents.parse(&free.text), free, understanding, forced_tokens, second_ms })
}

/// The clip at `path` at one level: clean, or mixed with the kitchen noise. The noise window
/// depends only on the clip's `name` and the level, so cached and fresh transcriptions see the
/// same mix whatever else was cached.
fn audio_at(path: &Path, name: &str, level: &str, noise: &[f32]) -> Vec<f32> {
    let speech = read_wav(path);
    if level == "clean" {
        return speech;
    }
    let mut rng = Lcg((0x5eed_0000 + level.parse::<u64>().unwrap_or(0)) ^ fnv1a(name.as_bytes()));
    mix(&speech, noise, level.parse().unwrap(), &mut rng)
}

/// One transcript for `--dump`: text, tokens, resolution, and whether that resolution is right.
type Reading<'a> = (&'a str, &'a [sotto_speech::Token], &'a sotto_intents::Resolution, bool);

fn write_dump(out: &mut std::fs::File, [file, level]: &[&str; 2], free: Reading, forced: Reading, keep: bool) {
    let side = |(text, tokens, r, ok): Reading| serde_json::json!({"text": text, "tokens": tokens, "intent": r.intent, "slots": r.slots, "confidence": r.confidence, "accepted": r.accepted(), "right": ok, "mean_logprob": mean_logprob(tokens)});
    let line =
        serde_json::json!({"file": file, "level": level, "free": side(free), "forced": side(forced), "kept": keep});
    writeln!(out, "{line}").unwrap();
}

fn read_wav(path: &Path) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!((spec.sample_rate, spec.channels), (16000, 1), "{}: expected 16 kHz mono", path.display());
    r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect()
}

fn max_frame_energy(x: &[f32]) -> f64 {
    x.chunks(2048).map(|c| c.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>()).fold(0.0, f64::max)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

/// Deterministic generator for the noise windows (fixed seed, so runs compare).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn mix(speech: &[f32], noise: &[f32], snr_db: f64, rng: &mut Lcg) -> Vec<f32> {
    let start = (rng.next() as usize) % (noise.len() - speech.len());
    let window = &noise[start..start + speech.len()];
    let (es, en) = (max_frame_energy(speech), max_frame_energy(window));
    // energy ratio in dB = 10 log10(es / (g² en))
    let gain = (es / (en * 10f64.powf(snr_db / 10.0))).sqrt() as f32;
    let mut out: Vec<f32> = speech.iter().zip(window).map(|(s, n)| s + gain * n).collect();
    let peak = out.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-9);
    out.iter_mut().for_each(|v| *v *= 0.5 / peak);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let levels: Vec<String> = arg("--snr").unwrap_or_else(|| "clean".into()).split(',').map(str::to_string).collect();
    let use_prompt = !args.iter().any(|a| a == "--no-prompt");
    let verbose = args.iter().any(|a| a == "-v" || a == "--verbose");
    let cached_only = args.iter().any(|a| a == "--cached-only");
    // By default the daemon's: the default profile's speech-to-text model.
    let model = arg("--stt-model").unwrap_or_else(|| {
        let store = sotto_models::Store::open().expect("model cache");
        let ids = store.profile("default").expect("default profile");
        store.profile_model(&ids, sotto_models::Role::Stt).expect("a speech-to-text model in the default profile")
    });
    let cache_path = arg("--cache").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("SOTTO_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sotto"));
        // The cache keys do not name the model: another model gets a file of its own.
        match model.as_str() {
            "whisper-base" => base.join("barista-transcripts.jsonl"),
            other => base.join(format!("barista-transcripts-{other}.jsonl")),
        }
    });
    let dir = data_dir();
    let labels = read_labels(&dir).unwrap_or_else(|e| panic!("{e}"));
    let intents = Intents::shipped_domains(&["barista"]).unwrap();
    let prompt = use_prompt.then(|| intents.stt_prompt(sotto_intents::vocabulary::DEFAULT_PROMPT_CHARS));
    let beam: Option<u32> = arg("--beam").map(|b| b.parse().expect("--beam: a number of beams"));
    // Only these files (one name per line), for quick experiments on a known subset.
    let only: Option<Vec<String>> = arg("--files-from").map(|f| {
        std::fs::read_to_string(&f).unwrap_or_else(|e| panic!("{f}: {e}")).lines().map(str::to_string).collect()
    });
    // The prompt's text is part of the key: a changed prompt is a new cache entry.
    let prompt_name = prompt.as_ref().map_or("noprompt".to_string(), |p| format!("prompt{:016x}", fnv1a(p.as_bytes())));
    let prompt_key = match beam.filter(|&b| b > 1) {
        None => prompt_name,
        Some(b) => format!("{prompt_name}-beam{b}"),
    };

    // The daemon's cascade with its defaults; `--no-grammar-pass` and the guard's limits
    // (`--max-drop`, `--max-improbable`, `--min-word`) can be changed for calibration.
    let mut understand =
        UnderstandConfig { second_pass: !args.iter().any(|a| a == "--no-grammar-pass"), ..Default::default() };
    let guard = &mut understand.guard;
    if let Some(v) = arg("--max-drop") {
        guard.max_mean_drop = v.parse().expect("--max-drop: nats per token");
    }
    if let Some(v) = arg("--max-improbable") {
        guard.max_improbable_share = v.parse().expect("--max-improbable: a share in 0..1");
    }
    if let Some(v) = arg("--min-word") {
        guard.min_word_probability = v.parse().expect("--min-word: a probability");
    }
    let understander = Understander::new(&intents, &understand, "default");
    let opts =
        sotto_workers::TranscribeOptions { initial_prompt: prompt.clone(), beam_size: beam, ..Default::default() };
    let graph = intents.speech_grammar().unwrap_or_else(|e| panic!("{e}")).text().to_string();
    // The graph is part of what Whisper is asked: a changed grammar is a new cache entry.
    let graph_key = format!("graph{:016x}", fnv1a(graph.as_bytes()));
    let mut dump = arg("--dump").map(|f| std::fs::File::create(&f).unwrap_or_else(|e| panic!("{f}: {e}")));

    let mut cache: BTreeMap<String, Cached> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&cache_path) {
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            // Entries of older runs carry no tokens; the second pass's rule needs them.
            let Some(tokens) = v.get("tokens").and_then(|t| serde_json::from_value(t.clone()).ok()) else { continue };
            let c = Cached {
                text: v["text"].as_str().unwrap().to_string(),
                tokens,
                flagged: v.get("flagged").and_then(|f| f.as_str()).map(str::to_string),
                ms: v["stt_ms"].as_f64().unwrap(),
            };
            cache.insert(v["key"].as_str().unwrap().to_string(), c);
        }
    }
    let cache_out = std::fs::OpenOptions::new().create(true).append(true).open(&cache_path).unwrap();
    let mut transcriber = Transcriber { cache, cache_out, stt: None, model, cached_only };
    let noise = read_wav(&dir.join("noise_kitchen.wav"));

    println!(
        "{:<6} {:>6} {:>9} {:>14} {:>14} {:>22} {:>11}",
        "snr", "files", "accept %", "stt p50/p90 ms", "match p50/max ms", "2nd pass run/kept/+/-", "+confirm %"
    );
    let mut noisy_acc = Vec::new();
    let mut noisy_confirm = Vec::new();
    let mut second_ms_all = Vec::new();
    for level in &levels {
        let (mut ok, mut n) = (0, 0);
        let (mut stt_ms, mut match_ms, mut second_ms) = (Vec::new(), Vec::new(), Vec::new());
        let (mut runs, mut kept, mut fixed, mut broken) = (0, 0, 0, 0);
        // Accepted when the lenient guard's readings are confirmed by the user (see `Verdict`).
        let mut ok_confirm: i32 = 0;
        for (file, label) in &labels {
            if only.as_ref().is_some_and(|o| !o.contains(file)) {
                continue;
            }
            let samples = || audio_at(&dir.join("clean").join(file), file, level, &noise);
            let key = format!("{file}|{level}|{prompt_key}");
            let Some(run) = run_one(&mut transcriber, &understander, &intents, [&key, &graph_key], &opts, &samples)
            else {
                if !cached_only {
                    n += 1;
                }
                continue;
            };
            n += 1;
            stt_ms.push(run.free.ms);
            match_ms.push(run.free_resolution.elapsed_ms);
            let u = &run.understanding;
            let ok1 = accepted(label, &run.free_resolution);
            if let (Some(pass), Some(ms)) = (&u.second_pass, run.second_ms) {
                runs += 1;
                second_ms.push(ms);
                let forced = intents.parse(&pass.forced);
                let ok2 = accepted(label, &forced);
                let keep = pass.verdict == Verdict::Keep;
                if let Some(d) = dump.as_mut() {
                    let free = (run.free.text.as_str(), &run.free.tokens[..], &run.free_resolution, ok1);
                    write_dump(d, &[file, level], free, (&pass.forced, &run.forced_tokens, &forced, ok2), keep);
                }
                if keep {
                    kept += 1;
                    fixed += (!ok1 && ok2) as usize;
                    broken += (ok1 && !ok2) as usize;
                }
            }
            // The daemon acts on a reading it must confirm only after a spoken yes.
            let right = accepted(label, &u.resolution);
            if right && !u.resolution.confirm {
                ok += 1;
            } else if verbose {
                println!(
                    "  MISS {file} {:?}\n       want {:?}\n       got  {}",
                    run.free.text,
                    label.slots,
                    serde_json::to_string(&u.resolution).unwrap()
                );
            }
            ok_confirm += right as i32;
        }
        let acc = 100.0 * ok as f64 / n as f64;
        let acc_confirm = 100.0 * ok_confirm as f64 / n as f64;
        if level != "clean" {
            noisy_acc.push(acc);
            noisy_confirm.push(acc_confirm);
        }
        println!(
            "{:<6} {:>6} {:>9.1} {:>7.0}/{:<6.0} {:>7.3}/{:.3} {:>10}/{}/{}/{} {:>11.1}",
            level,
            n,
            acc,
            percentile(&stt_ms, 0.5),
            percentile(&stt_ms, 0.9),
            percentile(&match_ms, 0.5),
            percentile(&match_ms, 1.0),
            runs,
            kept,
            fixed,
            broken,
            acc_confirm
        );
        second_ms_all.extend(second_ms);
    }
    if !noisy_acc.is_empty() {
        println!(
            "noise average over {} levels: {:.1}% (with confirmed second-pass readings: {:.1}%)",
            noisy_acc.len(),
            noisy_acc.iter().sum::<f64>() / noisy_acc.len() as f64,
            noisy_confirm.iter().sum::<f64>() / noisy_confirm.len() as f64
        );
    }
    if let Some(list) = arg("--negatives") {
        let base = Path::new(&list).parent().unwrap_or(Path::new(".")).to_path_buf();
        let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{list}: {e}"));
        let items: Vec<(String, String)> =
            text.lines().filter_map(|l| l.split_once('\t')).map(|(f, t)| (f.to_string(), t.to_string())).collect();
        println!("out-of-domain speech ({} utterances): intents from the free pass / second passes run / intents from the second pass / readings it would ask to confirm", items.len());
        let mut totals = [0usize; 4];
        for level in &levels {
            let (mut free_intents, mut runs, mut forced_intents, mut confirm) = (0, 0, 0, 0);
            for (file, said) in &items {
                let samples = || audio_at(&base.join(file), file, level, &noise);
                let key = format!("neg:{file}|{level}|{prompt_key}");
                let Some(run) = run_one(&mut transcriber, &understander, &intents, [&key, &graph_key], &opts, &samples)
                else {
                    continue;
                };
                let (text, r, u) = (&run.free.text, &run.free_resolution, &run.understanding);
                if r.accepted() {
                    free_intents += 1;
                    if verbose {
                        println!("  FREE INTENT {file} ({said}) heard {text:?}");
                    }
                }
                let Some(pass) = &u.second_pass else { continue };
                runs += 1;
                if let Some(d) = dump.as_mut() {
                    // Out-of-domain speech: no intent is right.
                    let neg = format!("neg:{file}");
                    let forced = intents.parse(&pass.forced);
                    let free = (text.as_str(), &run.free.tokens[..], r, !r.accepted());
                    let forced_side = (pass.forced.as_str(), &run.forced_tokens[..], &forced, !forced.accepted());
                    write_dump(d, &[&neg, level], free, forced_side, pass.verdict == Verdict::Keep);
                }
                if pass.verdict == Verdict::Keep && !r.accepted() {
                    forced_intents += 1;
                    println!("  SECOND-PASS INTENT {file} ({said}) heard {text:?}, forced {:?}", pass.forced);
                } else if pass.verdict == Verdict::Confirm && !r.accepted() {
                    confirm += 1;
                    if verbose {
                        println!("  WOULD CONFIRM {file} ({said}) heard {text:?}, forced {:?}", pass.forced);
                    }
                }
            }
            println!(
                "{level:<6} {:>4} {:>4} {:>4} {:>4} {:>4}",
                items.len(),
                free_intents,
                runs,
                forced_intents,
                confirm
            );
            for (t, x) in totals.iter_mut().zip([free_intents, runs, forced_intents, confirm]) {
                *t += x;
            }
        }
        println!(
            "total  {:>4} {:>4} {:>4} {:>4} {:>4}",
            items.len() * levels.len(),
            totals[0],
            totals[1],
            totals[2],
            totals[3]
        );
    }
    if !second_ms_all.is_empty() {
        println!(
            "second pass: {} runs, p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms (added only to those utterances)",
            second_ms_all.len(),
            percentile(&second_ms_all, 0.5),
            percentile(&second_ms_all, 0.9),
            percentile(&second_ms_all, 1.0)
        );
    }
}
