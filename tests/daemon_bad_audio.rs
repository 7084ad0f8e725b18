//! Audio no one should send a voice assistant, generated here and streamed through the daemon's
//! raw-PCM stdin faster than real time: hours of silence, clipping, DC offset, white noise,
//! synthetic chords, a ten-minute monologue after the wake word. Nothing is published as an
//! action, the monologue is cut at `endpoint.max_utterance_ms`, and the daemon's memory stays
//! flat. Recordings in the wrong format are decoded or refused with the reason.

use std::f32::consts::TAU;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use sotto_tests::daemon::{fixture, one_at_a_time, pcm_of, run_on_file, sotto, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::MqttSubscriber;

const MOSQUITTO: u16 = 1883;
const RATE: usize = 16_000;

/// s16le bytes of `seconds` of the signal `f(t)` (in [-1, 1]; louder is clipped as an ADC does).
fn synth(seconds: f32, mut f: impl FnMut(f32) -> f32) -> Vec<u8> {
    let n = (seconds * RATE as f32) as usize;
    let mut out = Vec::with_capacity(n * 2);
    for i in 0..n {
        let x = f(i as f32 / RATE as f32).clamp(-1.0, 1.0);
        out.extend_from_slice(&((x * 32767.0) as i16).to_le_bytes());
    }
    out
}

/// Deterministic uniform noise in [-1, 1] (xorshift), so a failure can be replayed.
fn noise(seconds: f32, amplitude: f32) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    let mut samples = (0..(seconds * RATE as f32) as usize).map(move |_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as f32 / u32::MAX as f32 * 2.0 - 1.0
    });
    synth(seconds, |_| samples.next().unwrap_or(0.0) * amplitude)
}

/// Triads with a few harmonics each, two seconds per chord: C, F, G, A minor.
fn chords(seconds: f32) -> Vec<u8> {
    let progression: [[f32; 3]; 4] =
        [[261.6, 329.6, 392.0], [349.2, 440.0, 523.3], [392.0, 493.9, 587.3], [440.0, 523.3, 659.3]];
    synth(seconds, |t| {
        let chord = progression[(t / 2.0) as usize % progression.len()];
        let tone = |f: f32| (1..=4).map(|h| (TAU * f * h as f32 * t).sin() / h as f32).sum::<f32>();
        chord.iter().map(|&f| tone(f)).sum::<f32>() * 0.15
    })
}

/// A fixture as 16 kHz s16le after the sox `effects`.
fn sox_pcm(name: &str, effects: &[&str]) -> Vec<u8> {
    let out = Command::new("sox")
        .arg(fixture(name))
        .args(["-t", "raw", "-r", "16000", "-c", "1", "-e", "signed", "-b", "16", "-"])
        .args(effects)
        .output()
        .expect("sox is missing (Debian package sox)");
    assert!(out.status.success(), "sox {name} {effects:?}");
    out.stdout
}

/// The first `seconds` of a fixture.
fn head_of(name: &str, seconds: f32) -> Vec<u8> {
    sox_pcm(name, &["trim", "0", &seconds.to_string()])
}

/// A fixture without its leading and trailing silence, so that sentences run on.
fn speech_of(name: &str) -> Vec<u8> {
    sox_pcm(name, &["silence", "1", "0.05", "0.5%", "reverse", "silence", "1", "0.05", "0.5%", "reverse"])
}

/// Streams `pcm` in pieces of at most ten audio minutes and samples the daemon's RSS after each.
fn stream_sampling(daemon: &mut LiveDaemon, pcm: &[u8], rss: &mut Vec<(String, u64)>, label: &str) {
    for piece in pcm.chunks(RATE * 2 * 600) {
        daemon.stream_pcm(piece);
        rss.push((label.to_string(), daemon.rss_kib()));
    }
}

#[test]
fn hours_of_silence_noise_music_and_a_monologue_publish_nothing_and_memory_stays_flat() {
    let _one = one_at_a_time();
    let site = unique_site("bad-audio");
    let subscriber = MqttSubscriber::start(MOSQUITTO, &["hermes/#", &format!("sotto/{site}/#")], None);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[stt]\ntimeout_s = 60\n[endpoint]\nmax_utterance_ms = 10000\n\
         [mqtt]\nport = {MOSQUITTO}\nsite_id = \"{site}\"\n"
    );
    let mut daemon = LiveDaemon::start(&write_config(dir.path(), &config));
    let started = Instant::now();
    let mut rss = Vec::new();

    // Warm-up: every engine has run once (a wake word, VAD, Whisper) before the baseline, on a
    // sentence that is no command.
    let mut warm_up = head_of("pos_jarvis_vehicle_temp.wav", 1.6);
    warm_up.extend(pcm_of(&fixture("neg_chat_espeak.wav")));
    warm_up.extend(vec![0u8; RATE * 2 * 3]);
    daemon.stream_pcm(&warm_up);
    daemon.wait_for_log("transcribed", Duration::from_secs(60));
    rss.push(("warm".into(), daemon.rss_kib()));

    let ten_minutes_of_silence = vec![0u8; RATE * 2 * 600];
    for _ in 0..12 {
        stream_sampling(&mut daemon, &ten_minutes_of_silence, &mut rss, "silence");
    }
    stream_sampling(&mut daemon, &synth(120.0, |t| 3.0 * (TAU * 440.0 * t).sin()), &mut rss, "clipped sine");
    stream_sampling(&mut daemon, &synth(120.0, |t| 0.5 + 0.01 * (TAU * 100.0 * t).sin()), &mut rss, "DC offset");
    stream_sampling(&mut daemon, &noise(600.0, 1.0), &mut rss, "white noise");
    stream_sampling(&mut daemon, &chords(600.0), &mut rss, "chords");

    // "Hey Jarvis", then ten minutes of talk that never pauses long enough to end the command.
    let mut talk = speech_of("neg_vehicle_window.wav");
    talk.extend(speech_of("neg_chat_espeak.wav"));
    let mut monologue = head_of("pos_jarvis_vehicle_temp.wav", 1.6);
    while monologue.len() < RATE * 2 * 600 {
        monologue.extend_from_slice(&talk);
    }
    stream_sampling(&mut daemon, &monologue, &mut rss, "monologue");
    daemon.stream_pcm(&vec![0u8; RATE * 2 * 3]);
    let cut = daemon.wait_for_log("transcribed", Duration::from_secs(120));
    let audio_s: f32 =
        cut.split("audio_s=").nth(1).and_then(|v| v.split_whitespace().next()).and_then(|v| v.parse().ok()).unwrap();
    assert!((9.0..=10.5).contains(&audio_s), "the monologue is cut at max_utterance_ms (10 s), got {audio_s} s: {cut}");
    rss.push(("end".into(), daemon.rss_kib()));
    let audio_minutes = 7200.0 / 60.0 + 2.0 + 2.0 + 10.0 + 10.0 + 10.0;
    eprintln!("{audio_minutes} audio minutes in {:.0} s; RSS KiB: {rss:?}", started.elapsed().as_secs_f32());

    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
    let warm = rss[0].1;
    let (peak_label, peak) = rss.iter().max_by_key(|(_, kib)| *kib).cloned().unwrap();
    assert!(peak < warm + 64 * 1024, "RSS grew from {warm} KiB after warm-up to {peak} KiB ({peak_label}): {rss:?}");
    let ours: Vec<_> = subscriber
        .drain(Duration::from_secs(1))
        .into_iter()
        .filter(|m| m.topic.starts_with(&format!("sotto/{site}/")) || m.payload["siteId"] == site.as_str())
        .collect();
    let metrics = format!("sotto/{site}/metrics");
    let published: Vec<&str> =
        // Sotto may say it did not understand a false wake word's speech (`/said`): no action.
        ours.iter()
            .map(|m| m.topic.as_str())
            .filter(|t| !t.ends_with("/status") && !t.starts_with(&metrics) && !t.ends_with("/said"))
            .collect();
    assert!(
        published.iter().all(|t| t.starts_with("hermes/") && !t.starts_with("hermes/intent/")),
        "no intent and no action: {published:?}"
    );
    let wakes = published.iter().filter(|t| t.starts_with("hermes/hotword/")).count();
    assert_eq!(wakes, 2, "the two spoken wake words, nothing woken by noise or music: {published:?}");
}

fn embedded_config(dir: &Path) -> std::path::PathBuf {
    // A generous speech-to-text budget: these tests are about formats, not speed.
    let text = format!(
        "[slm]\nenabled = false\n[stt]\ntimeout_s = 60\n[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{}\"\n",
        unique_site("format")
    );
    write_config(dir, &text)
}

fn converted(dir: &Path, name: &str, sox_format: &[&str]) -> std::path::PathBuf {
    let out = dir.join(name);
    let status =
        Command::new("sox").arg(fixture("pos_jarvis_vehicle_temp.wav")).args(sox_format).arg(&out).status().unwrap();
    assert!(status.success(), "sox {sox_format:?}");
    out
}

#[test]
fn eight_bit_and_48_khz_stereo_recordings_are_converted_and_understood() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    for wav in [
        converted(dir.path(), "u8.wav", &["-b", "8", "-e", "unsigned"]),
        converted(dir.path(), "48k.wav", &["-r", "48000", "-c", "2"]),
    ] {
        let (_, printed) = run_on_file(&config, &wav);
        let action = printed.iter().find(|p| p.topic.ends_with("/vehicle/climate/temperature"));
        assert_eq!(
            action.map(|p| p.payload.clone()),
            Some(serde_json::json!({"celsius": 21.0, "zone": "driver"})),
            "{}: {printed:#?}",
            wav.display()
        );
    }
}

#[test]
fn files_that_are_not_audio_are_refused_with_the_file_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(dir.path());
    let garbage = dir.path().join("garbage.wav");
    std::fs::write(&garbage, b"this is a shopping list, not a recording\n".repeat(100)).unwrap();
    let truncated = dir.path().join("truncated.wav");
    std::fs::write(&truncated, &std::fs::read(fixture("pos_jarvis_vehicle_temp.wav")).unwrap()[..20]).unwrap();
    for (file, reason) in [(&garbage, "not a WAV file"), (&truncated, "truncated")] {
        let out = sotto().args(["run", "--config"]).arg(&config).arg("--input").arg(file).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{}: {stderr}", file.display());
        assert!(
            stderr.contains(&file.display().to_string()) && stderr.contains(reason),
            "{}:\n{stderr}",
            file.display()
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains("/vehicle/"), "no action");
    }
}
