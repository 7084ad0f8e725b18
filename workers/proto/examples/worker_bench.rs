//! Worker benchmark: prints the figures the README quotes.
//!
//! ```text
//! cargo build --release -p sotto-stt-worker -p sotto-slm-worker
//! cargo run --release -p sotto-workers --example worker_bench -- [--clips N] [--reps N] [--skip-stt] [--skip-slm]
//! ```
//! Models come from the model cache (`$SOTTO_MODELS`); speech from the STT fixtures plus the first
//! N clips of the barista set's `clean/` (`shared/data/barista` beside the repository, or `$SOTTO_BARISTA`) when present (`--wav-dir DIR` to use another
//! folder of 16 kHz mono 16-bit WAV files).
//!
//! Sections: STT latency with the utterance-sized encoder context vs the full 30 s window, and a
//! sweep of the context floor (how often a smaller context changes or flags the transcript);
//! SLM prefill with and without the cached prompt prefix; grammar-constrained decoding speed with
//! GBNF and llguidance, each with the one-token fast path and with a full-vocabulary mask; peak RSS
//! of each worker.

#[path = "../../common/test_models.rs"]
mod test_models;
#[path = "../../common/wav.rs"]
mod wav;

use std::path::{Path, PathBuf};

use sotto_workers::{Grammar, SlmClient, SttClient, TranscribeOptions, WorkerConfig};

struct Opts {
    clips: usize,
    reps: usize,
    wav_dir: PathBuf,
    stt: bool,
    slm: bool,
    /// Extra worker arguments, e.g. `--threads 1`.
    worker_args: Vec<String>,
    /// CTranslate2 Whisper base directory: also run faster-whisper on the same clips.
    peer_ct2: Option<PathBuf>,
}

fn main() {
    let mut o = Opts {
        clips: 20,
        reps: 3,
        wav_dir: std::env::var_os("SOTTO_BARISTA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/barista"))
            .join("clean"),
        stt: true,
        slm: true,
        worker_args: Vec::new(),
        peer_ct2: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clips" => o.clips = args.next().and_then(|v| v.parse().ok()).expect("--clips N"),
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--wav-dir" => o.wav_dir = PathBuf::from(args.next().expect("--wav-dir DIR")),
            "--skip-stt" => o.stt = false,
            "--skip-slm" => o.slm = false,
            "--peer-ct2" => o.peer_ct2 = Some(PathBuf::from(args.next().expect("--peer-ct2 DIR"))),
            "--threads" => o.worker_args.extend(["--threads".to_string(), args.next().expect("--threads N")]),
            other => panic!("unknown argument {other}"),
        }
    }
    if o.stt {
        stt_bench(&o);
    }
    if o.slm {
        slm_bench(&o);
    }
}

/// (path, samples) of every clip.
fn speech(o: &Opts) -> Vec<(String, Vec<f32>)> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stt/tests/fixtures");
    let mut files: Vec<PathBuf> = list_wavs(&fixtures);
    files.extend(list_wavs(&o.wav_dir).into_iter().take(o.clips));
    files.into_iter().map(|p| (p.display().to_string(), wav::read_wav_16k_mono(&p).unwrap())).collect()
}

fn list_wavs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "wav")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn stt_bench(o: &Opts) {
    let model = test_models::model(test_models::WHISPER_BASE);
    let mut stt = SttClient::start(config(&model, o, &[])).expect("start the STT worker");
    let clips = speech(o);
    let total_secs: f32 = clips.iter().map(|(_, a)| a.len() as f32 / 16_000.0).sum();
    println!(
        "## STT: Whisper base ({}), {} clips, {:.1} s of speech, {} reps",
        model.display(),
        clips.len(),
        total_secs,
        o.reps
    );
    // Warm-up: first-call allocations are not what a running daemon pays.
    stt.transcribe(&clips[0].1, &TranscribeOptions::default()).unwrap();

    let mut reference = Vec::new();
    println!("| encoder context | p50 latency | p90 latency | mean audio | flagged |");
    println!("|---|---|---|---|---|");
    for (label, ctx) in [("full 30 s window (1500)", Some(1500u32)), ("sized to the utterance", None)] {
        let mut lat = Vec::new();
        let mut flagged = 0;
        for (i, (_, audio)) in clips.iter().enumerate() {
            for _ in 0..o.reps {
                let t = stt.transcribe(audio, &TranscribeOptions { audio_ctx: ctx, ..Default::default() }).unwrap();
                lat.push(t.timings.total_ms);
                if ctx.is_some() && reference.len() == i {
                    reference.push(norm(&t.text));
                }
                flagged += usize::from(t.flagged.is_some());
            }
        }
        println!(
            "| {label} | {:.0} ms | {:.0} ms | {:.2} s | {} |",
            pct(&mut lat, 50.0),
            pct(&mut lat, 90.0),
            total_secs / clips.len() as f32,
            flagged / o.reps
        );
    }

    if let Some(dir) = &o.peer_ct2 {
        peer(o, dir, &clips, &reference);
    }

    println!("\nContext floor sweep (one pass; 'differs' = words differ from the 1500-frame transcript):");
    println!("| floor | p50 latency | differs | flagged |");
    println!("|---|---|---|---|");
    for floor in [64u32, 128, 192, 256, 320, 384, 512] {
        let (mut lat, mut differs, mut flagged) = (Vec::new(), 0, 0);
        for (i, (name, audio)) in clips.iter().enumerate() {
            let frames = (audio.len().max(17_600) * 50).div_ceil(16_000) as u32 + 32;
            let ctx = frames.max(floor).min(1500);
            let t = stt.transcribe(audio, &TranscribeOptions { audio_ctx: Some(ctx), ..Default::default() }).unwrap();
            lat.push(t.timings.total_ms);
            if norm(&t.text) != reference[i] {
                differs += 1;
                if floor >= 256 {
                    let short = Path::new(name).file_name().unwrap().to_string_lossy();
                    println!("|   | {short}: {:?} vs {:?} | | |", t.text, reference[i]);
                }
            }
            flagged += usize::from(t.flagged.is_some());
        }
        println!("| {floor} (+utterance) | {:.0} ms | {differs}/{} | {flagged} |", pct(&mut lat, 50.0), clips.len());
    }
    println!("\nSTT worker peak RSS: {}\n", peak_rss(stt.supervisor().pid()));
}

/// faster-whisper int8 on the same clips, as a subprocess in the tools venv.
fn peer(o: &Opts, ct2: &Path, clips: &[(String, Vec<f32>)], reference: &[String]) {
    let venv = std::env::var_os("SOTTO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/sotto/venv"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/faster_whisper_peer.py");
    let threads =
        o.worker_args.iter().skip_while(|a| *a != "--threads").nth(1).cloned().unwrap_or_else(|| {
            std::thread::available_parallelism().map(|n| (n.get() - 1).max(1)).unwrap_or(1).to_string()
        });
    let out = std::process::Command::new(venv.join("bin/python"))
        .arg(&script)
        .arg(ct2)
        .arg(&threads)
        .arg(o.reps.to_string())
        .args(clips.iter().map(|(p, _)| p))
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run the faster-whisper peer (pip install faster-whisper into the venv)");
    assert!(out.status.success(), "faster-whisper peer failed");
    let (mut lat, mut same) = (Vec::new(), 0);
    for (i, line) in String::from_utf8_lossy(&out.stdout).lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        lat.push(v["ms"].as_f64().unwrap());
        if i < clips.len() && norm(v["text"].as_str().unwrap()) == reference[i] {
            same += 1;
        }
    }
    println!(
        "| faster-whisper int8 ({threads} threads), peer | {:.0} ms | {:.0} ms | | same words as ours at 1500: {same}/{} |",
        pct(&mut lat, 50.0),
        pct(&mut lat, 90.0),
        clips.len()
    );
}

/// Lower-case words without punctuation; hyphens split words ("light-roast" = "light roast").
fn norm(text: &str) -> String {
    text.replace('-', " ")
        .split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

const GBNF: &str = r#"root ::= "{\"intent\": \"" intent "\", \"slots\": {" slot ("," " " slot)* "}}"
intent ::= "set_timer" | "lights_off" | "lights_on" | "weather" | "play_music" | "order_drink"
slot ::= "\"" [a-z_]+ "\": " value
value ::= "\"" [a-z0-9 ]* "\"" | [0-9]+
"#;

const SCHEMA: &str = r#"{"type":"object","properties":{
 "intent":{"enum":["set_timer","lights_off","lights_on","weather","play_music","order_drink"]},
 "slots":{"type":"object","additionalProperties":{"anyOf":[{"type":"string","pattern":"^[a-z0-9 ]*$"},{"type":"integer"}]}}},
 "required":["intent","slots"],"additionalProperties":false}"#;

fn static_prefix(tag: &str) -> String {
    let mut p = format!("{tag}You turn spoken commands for a home assistant into JSON with an intent and its slots.\n");
    for (c, j) in [
        ("switch off the lights in the bedroom", r#"{"intent": "lights_off", "slots": {"room": "bedroom"}}"#),
        ("set a timer for five minutes", r#"{"intent": "set_timer", "slots": {"minutes": 5}}"#),
        ("will it rain tomorrow in paris", r#"{"intent": "weather", "slots": {"day": "tomorrow", "city": "paris"}}"#),
        ("play some jazz in the kitchen", r#"{"intent": "play_music", "slots": {"genre": "jazz", "room": "kitchen"}}"#),
        (
            "a large oat milk latte please",
            r#"{"intent": "order_drink", "slots": {"drink": "latte", "size": "large", "milk": "oat milk"}}"#,
        ),
        ("turn the hallway lights on", r#"{"intent": "lights_on", "slots": {"room": "hallway"}}"#),
    ] {
        p.push_str(&format!("Command: {c}\nJSON: {j}\n"));
    }
    p
}

const COMMANDS: &[&str] = &[
    "could you set a timer for twelve minutes for the pasta please",
    "turn off all the lights in the living room right now please",
    "what is the weather going to be like in berlin on saturday",
    "i would like a medium cappuccino with almond milk and one sugar",
    "play some relaxing piano music in the bedroom at low volume",
];

fn slm_bench(o: &Opts) {
    for id in [test_models::GEMMA, test_models::SMOLLM2] {
        let model = test_models::model(id);
        let mut slm = SlmClient::start(config(&model, o, &[])).expect("start the SLM worker");
        let desc = slm.hello().unwrap().model.description.clone();
        println!("## SLM: {id} — {desc}");
        // Warm-up, and builds llguidance's token trie once.
        slm.generate(&format!("{}Command: hi\nJSON:", static_prefix("")), Some(Grammar::JsonSchema(SCHEMA.into())), 8)
            .unwrap();

        let (mut cold, mut warm, mut new_tokens, mut prompt_tokens) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for r in 0..o.reps {
            for (i, c) in COMMANDS.iter().enumerate() {
                // A different first line defeats the cache: the whole prompt is evaluated.
                let g = slm
                    .generate(&format!("{}Command: {c}\nJSON:", static_prefix(&format!("Session {r}-{i}.\n"))), None, 1)
                    .unwrap();
                cold.push(g.timings.prefill_ms);
                prompt_tokens = g.prompt_tokens;
            }
            let prefix = static_prefix("");
            slm.generate(&format!("{prefix}Command: x\nJSON:"), None, 1).unwrap();
            for c in COMMANDS {
                let g = slm.generate(&format!("{prefix}Command: {c}\nJSON:"), None, 1).unwrap();
                warm.push(g.timings.prefill_ms);
                new_tokens.push((g.prompt_tokens - g.cached_tokens) as f64);
            }
        }
        println!("| prefill ({prompt_tokens}-token prompt) | p50 | p90 |");
        println!("|---|---|---|");
        println!("| whole prompt (no cache) | {:.1} ms | {:.1} ms |", pct(&mut cold, 50.0), pct(&mut cold, 90.0));
        println!(
            "| cached prefix, ~{:.0} new tokens | {:.1} ms | {:.1} ms |",
            pct(&mut new_tokens, 50.0),
            pct(&mut warm, 50.0),
            pct(&mut warm, 90.0)
        );

        println!("\n| constrained decoding | tokens/s (p50 over commands) | ms/token | valid JSON |");
        println!("|---|---|---|---|");
        let full_vocab_worker = SlmClient::start(config(&model, o, &["--grammar-full-vocab"]))
            .expect("start the full-vocabulary SLM worker");
        let mut workers = [("fast path", slm), ("full-vocabulary mask", full_vocab_worker)];
        for (mode, w) in workers.iter_mut() {
            w.generate(
                &format!("{}Command: hi\nJSON:", static_prefix("")),
                Some(Grammar::JsonSchema(SCHEMA.into())),
                4,
            )
            .unwrap();
            for (gname, grammar) in [
                ("GBNF (llama.cpp)", Grammar::Gbnf(GBNF.into())),
                ("JSON schema (llguidance)", Grammar::JsonSchema(SCHEMA.into())),
            ] {
                let (mut tps, mut mspt, mut valid, mut n) = (Vec::new(), Vec::new(), 0, 0);
                for c in COMMANDS {
                    let g = w
                        .generate(&format!("{}Command: {c}\nJSON:", static_prefix("")), Some(grammar.clone()), 64)
                        .unwrap();
                    let per = g.timings.generate_ms / g.generated_tokens.max(1) as f64;
                    mspt.push(per);
                    tps.push(1000.0 / per);
                    n += 1;
                    valid += usize::from(serde_json_valid(&g.text));
                }
                println!(
                    "| {gname}, {mode} | {:.0} | {:.1} | {valid}/{n} |",
                    pct(&mut tps, 50.0),
                    pct(&mut mspt, 50.0)
                );
            }
        }
        let [(_, slm), (_, full)] = &mut workers;
        println!(
            "\nSLM worker peak RSS: {} (second worker: {})\n",
            peak_rss(slm.supervisor().pid()),
            peak_rss(full.supervisor().pid())
        );
    }
}

/// Whether `text` is one complete JSON object (cheap structural check: the grammar guarantees
/// the rest, the tests check it properly).
fn serde_json_valid(text: &str) -> bool {
    let t = text.trim();
    let mut depth = 0i32;
    let mut in_str = false;
    let mut esc = false;
    for ch in t.chars() {
        match (in_str, esc, ch) {
            (true, true, _) => esc = false,
            (true, false, '\\') => esc = true,
            (true, false, '"') => in_str = false,
            (false, _, '"') => in_str = true,
            (false, _, '{') => depth += 1,
            (false, _, '}') => depth -= 1,
            _ => {}
        }
    }
    t.starts_with('{') && t.ends_with('}') && depth == 0 && !in_str
}

fn config(model: &Path, o: &Opts, extra: &[&str]) -> WorkerConfig {
    let mut c = WorkerConfig::new(model);
    c.args = o.worker_args.clone();
    c.args.extend(extra.iter().map(|s| s.to_string()));
    c.request_timeout = std::time::Duration::from_secs(300);
    c
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let idx = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[idx]
}

fn peak_rss(pid: Option<u32>) -> String {
    let Some(pid) = pid else { return "worker not running".into() };
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| l["VmHWM:".len()..].trim().to_string()))
        .map(|kb| {
            let n: f64 = kb.trim_end_matches(" kB").trim().parse().unwrap_or(0.0);
            format!("{:.0} MiB", n / 1024.0)
        })
        .unwrap_or_else(|| "unknown".into())
}
