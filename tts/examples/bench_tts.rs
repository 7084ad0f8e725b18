//! Speed and memory of a voice (run by `tools/bench_tts.sh`): time from text to the first audio
//! sample for a short sentence, real-time factor on a paragraph, voice load time and peak RSS, for
//! each thread count given, plus a Raspberry Pi 5 projection in the style of `bench/arm/`.
//!
//! `cargo run --release -p sotto-tts --example bench_tts -- [--voice ID] [--threads 1,2] [--repeat N]`
//! prints one JSON document.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;
use sotto_tts::{Voice, VoiceOptions};

const SHORT: &str = "Stopping press one.";
const PARAGRAPH: &str = "Setting the temperature to twenty one degrees for passenger. Stop press one? Say yes or no. \
    The front door is unlocked. One large latte with soy milk, coming up. I can only set the temperature between \
    sixteen and thirty degrees. Sorry, I did not understand. Please say it again.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut voice_id = sotto_tts::DEFAULT_VOICE.to_string();
    let mut threads = vec![1usize, 2];
    let mut repeat = 10usize;
    let mut projection = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/arm/projection.json"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--voice" => voice_id = value()?,
            "--threads" => threads = value()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--repeat" => repeat = value()?.parse()?,
            "--projection" => projection = value()?.into(),
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    let store = sotto_models::Store::open()?;
    let rss_before = rss_kib("VmRSS:");
    let mut runs = Vec::new();
    for &n in &threads {
        let started = Instant::now();
        let mut voice = Voice::from_store(&store, &voice_id, &VoiceOptions { threads: n, ..Default::default() })?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let rss_loaded = rss_kib("VmRSS:");
        voice.synthesize(SHORT)?; // warm-up: first-run allocations and kernel selection
        let mut first = Vec::new();
        let mut first_cpu = Vec::new();
        let mut short_audio_s = 0.0;
        for _ in 0..repeat {
            let (start, cpu) = (Instant::now(), cpu_ns());
            let mut at = None;
            let report = voice.speak(SHORT, |_| {
                at.get_or_insert_with(|| (start.elapsed(), cpu_ns() - cpu));
                ControlFlow::Continue(())
            })?;
            let (wall, cpu) = at.expect("audio");
            first.push(wall.as_secs_f64() * 1e3);
            first_cpu.push(cpu as f64 / 1e6);
            short_audio_s = report.samples as f64 / voice.sample_rate() as f64;
        }
        let mut rtf = Vec::new();
        let mut rtf_cpu = Vec::new();
        let mut para_first = Vec::new();
        let mut para = (0, 0.0);
        for _ in 0..3.min(repeat).max(1) {
            let (start, cpu) = (Instant::now(), cpu_ns());
            let report = voice.speak(PARAGRAPH, |_| ControlFlow::Continue(()))?;
            let audio_s = report.samples as f64 / voice.sample_rate() as f64;
            rtf.push(start.elapsed().as_secs_f64() / audio_s);
            rtf_cpu.push((cpu_ns() - cpu) as f64 / 1e9 / audio_s);
            para_first.push(report.first_audio.as_secs_f64() * 1e3);
            para = (report.sentences, audio_s);
        }
        runs.push(json!({
            "threads": n,
            "voice_load_ms": round1(load_ms),
            "rss_after_load_kib": rss_loaded,
            "short": { "text": SHORT, "audio_s": round3(short_audio_s), "first_audio_ms": stats(&first),
                       "first_audio_cpu_ms": stats(&first_cpu) },
            "paragraph": { "sentences": para.0, "audio_s": round3(para.1), "real_time_factor": stats(&rtf),
                           "cpu_real_time_factor": stats(&rtf_cpu),
                           "first_audio_ms": stats(&para_first) },
        }));
        drop(voice);
    }
    let one = runs.iter().find(|r| r["threads"] == 1);
    let out = json!({
        "what": "sotto-tts on this machine: text → first audio sample of a short sentence (median of --repeat after one warm-up), \
                 real-time factor = wall time / audio time over a paragraph (median of 3), voice load and resident memory; \
                 *_cpu_* = CPU time of the process's threads instead of wall time (the cost without waiting for a core)",
        "load_average_1min": std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok()),
        "voice": voice_id,
        "host_cpu": std::env::consts::ARCH,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rss_before_voice_kib": rss_before,
        "peak_rss_kib": rss_kib("VmHWM:"),
        "runs": runs,
        "pi5_projection": one.and_then(|r| project(&projection, r).ok()),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

/// Pi 5 time = published Pi 5 Whisper-base encoder time × this stage's time / the full-window
/// transcription time measured on this machine by `bench/arm/project.sh` (both 1 thread).
fn project(
    path: &std::path::Path,
    one_thread: &serde_json::Value,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let pi_ms = p["published"]["encode_ms"].as_f64().ok_or("published.encode_ms")?;
    let here_ms =
        p["measured"]["a_full_window_transcription_no_prompt_ms"]["median_ms"].as_f64().ok_or("measured.a")?;
    let scale = pi_ms / here_ms;
    let threads = p["published"]["threads"].as_f64().unwrap_or(4.0);
    // CPU time, not wall time: the reference was timed on an idle machine, this may not be.
    let first = one_thread["short"]["first_audio_cpu_ms"]["median"].as_f64().ok_or("first")?;
    let rtf = one_thread["paragraph"]["cpu_real_time_factor"]["median"].as_f64().ok_or("rtf")?;
    Ok(json!({
        "first_audio_ms": round1(first * scale),
        "real_time_factor": round3(rtf * scale),
        "one_thread_first_audio_ms_at_most": round1(first * scale * threads),
        "one_thread_real_time_factor_at_most": round3(rtf * scale * threads),
        "scale": round3(scale),
        "method": format!(
            "Pi 5 = this machine's 1-thread CPU time x {pi_ms} ms (whisper.cpp base encoder on a Pi 5, {threads} threads, \
             published) / {here_ms} ms (full-window transcription here, 1 thread, bench/arm/projection.json), as \
             bench/arm does: assumes ONNX Runtime keeps its speed ratio to whisper.cpp from AVX2 to NEON and \
             gains from {threads} threads as whisper.cpp does; the voice on 1 Pi core takes at most {threads}x that \
             (the *_at_most figures). Projected, not measured."
        ),
    }))
}

fn stats(v: &[f64]) -> serde_json::Value {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let median = if s.is_empty() { 0.0 } else { s[s.len() / 2] };
    json!({ "median": round3(median), "min": round3(s[0]), "max": round3(*s.last().unwrap()), "n": s.len() })
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// CPU time of all this process's threads so far (ns, from /proc/self/task/*/schedstat): on a
/// machine shared with other jobs, what the work costs apart from waiting for a core.
fn cpu_ns() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// A field of /proc/self/status in KiB (0 where there is no procfs).
fn rss_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
