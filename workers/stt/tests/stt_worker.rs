//! The STT worker with the real Whisper base model: transcription of the speech fixtures,
//! utterance-sized encoder context, refusal of bad input, and supervision (kill -9, bad models).

#[path = "../../common/test_models.rs"]
mod test_models;
#[path = "../../common/wav.rs"]
mod wav;

use std::path::{Path, PathBuf};
use std::time::Duration;

use sotto_workers::{SttClient, TranscribeOptions, WorkerConfig, WorkerError};
use test_models::{model, WHISPER_BASE};

const WORKER: &str = env!("CARGO_BIN_EXE_sotto-stt-worker");

fn config(model: &Path) -> WorkerConfig {
    let mut c = WorkerConfig::new(model);
    c.program = Some(PathBuf::from(WORKER));
    c.request_timeout = Duration::from_secs(120);
    c
}

fn start() -> SttClient {
    SttClient::start(config(&model(WHISPER_BASE))).unwrap_or_else(|e| panic!("starting the STT worker: {e}"))
}

fn read_wav(name: &str) -> Vec<f32> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    wav::read_wav_16k_mono(&path).unwrap()
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// (fixture, words that must all appear; `a|b` = either spelling).
const FIXTURES: &[(&str, &[&str])] = &[
    ("timer_ten_minutes.wav", &["set", "a", "timer", "for", "ten|10", "minutes"]),
    ("kitchen_lights_off.wav", &["turn", "off", "the", "lights", "in", "kitchen"]),
    ("weather_tomorrow.wav", &["what", "will", "the", "weather", "be", "like", "tomorrow"]),
    ("jazz_living_room.wav", &["put", "on", "some", "jazz", "music", "living", "room", "volume", "five|5"]),
    ("espeak_timer_ten_minutes.wav", &["timer", "ten|10", "minutes"]),
];

fn assert_words(text: &str, expected: &[&str], what: &str) {
    let got = words(text);
    for want in expected {
        assert!(want.split('|').any(|w| got.iter().any(|g| g == w)), "{what}: expected the word {want:?} in {text:?}");
    }
}

#[test]
fn transcribes_the_speech_fixtures() {
    let mut stt = start();
    assert_eq!(stt.hello().unwrap().worker, "stt");
    for (file, expected) in FIXTURES {
        let audio = read_wav(file);
        let t = stt.transcribe(&audio, &TranscribeOptions::default()).unwrap();
        assert_words(&t.text, expected, file);
        assert_eq!(t.flagged, None, "{file}: {:?}", t.text);
        assert!(!t.tokens.is_empty());
        assert!(t.tokens.iter().all(|t| (0.0..=1.0).contains(&t.p)), "{:?}", t.tokens);
        assert!(t.timings.audio_ctx < 1500, "{file}: audio_ctx {} not sized to the utterance", t.timings.audio_ctx);
    }
}

#[test]
fn sized_context_matches_the_full_window() {
    let mut stt = start();
    for (file, expected) in FIXTURES {
        let audio = read_wav(file);
        let full = stt.transcribe(&audio, &TranscribeOptions { audio_ctx: Some(1500), ..Default::default() }).unwrap();
        assert_eq!(full.timings.audio_ctx, 1500);
        assert_words(&full.text, expected, &format!("{file} at 1500"));
        // Not word-for-word equal in general (the robotic espeak voice decodes slightly
        // differently), but the command must survive the shorter window.
        let sized = stt.transcribe(&audio, &TranscribeOptions::default()).unwrap();
        assert!(sized.timings.audio_ctx < 1500);
        assert_words(&sized.text, expected, &format!("{file} sized to {}", sized.timings.audio_ctx));
    }
}

#[test]
fn short_audio_and_initial_prompt_are_handled() {
    let mut stt = start();
    // Half a second of a fixture: shorter than whisper.cpp's 1 s minimum, padded by the worker.
    let audio = read_wav("timer_ten_minutes.wav");
    stt.transcribe(&audio[..8000], &TranscribeOptions::default()).unwrap();
    let t = stt
        .transcribe(
            &audio,
            &TranscribeOptions { initial_prompt: Some("Timers, lights, weather.".into()), ..Default::default() },
        )
        .unwrap();
    assert_words(&t.text, &["timer", "minutes"], "with prompt");
}

#[test]
fn bad_audio_is_refused_and_the_worker_survives() {
    let mut stt = start();
    let pid = stt.supervisor().pid();
    for (what, audio) in [("empty", vec![]), ("NaN", vec![f32::NAN; 16_000]), ("40 s", vec![0.0; 40 * 16_000])] {
        match stt.transcribe(&audio, &TranscribeOptions::default()) {
            Err(WorkerError::Request { .. }) => {}
            other => panic!("{what}: expected a refused request, got {other:?}"),
        }
    }
    assert!(stt.ping().is_ok());
    assert_eq!(stt.supervisor().pid(), pid);
}

#[test]
fn kill_9_mid_request_fails_that_request_and_the_next_one_succeeds() {
    let mut stt = start();
    let pid = stt.supervisor().pid().unwrap();
    // 25 s of speech at the full window: long enough to be mid-flight when killed.
    let one = read_wav("jazz_living_room.wav");
    let long: Vec<f32> = one.iter().cycle().take(25 * 16_000).copied().collect();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let ok = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
        assert!(ok.success());
    });
    let err = stt.transcribe(&long, &TranscribeOptions { audio_ctx: Some(1500), ..Default::default() }).unwrap_err();
    killer.join().unwrap();
    assert!(matches!(&err, WorkerError::Crashed { status, .. } if status.contains("SIGKILL")), "{err}");
    let t = stt.transcribe(&read_wav("timer_ten_minutes.wav"), &TranscribeOptions::default()).unwrap();
    assert_words(&t.text, &["timer", "minutes"], "after restart");
    assert_eq!(stt.supervisor().restarts(), 1);
}

#[test]
fn wrong_and_truncated_models_are_clear_load_errors() {
    let dir = std::env::temp_dir().join(format!("sotto-stt-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wrong = dir.join("wrong.bin");
    std::fs::write(&wrong, b"GGUF\x03\x00\x00\x00 a language model, not Whisper").unwrap();
    let err = SttClient::start(config(&wrong)).err().unwrap();
    assert!(matches!(err, WorkerError::ModelLoad { .. }), "{err}");
    assert!(err.to_string().contains("not a ggml Whisper model"), "{err}");

    let truncated = dir.join("truncated.bin");
    let full = std::fs::read(model(WHISPER_BASE)).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 2]).unwrap();
    let err = SttClient::start(config(&truncated)).err().unwrap();
    assert!(matches!(err, WorkerError::ModelLoad { .. }), "{err}");

    let err = SttClient::start(config(&dir.join("absent.bin"))).err().unwrap();
    assert!(matches!(err, WorkerError::ModelMissing { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn mean_logprob(tokens: &[sotto_workers::Token]) -> f32 {
    tokens.iter().map(|t| t.p.max(1e-10).ln()).sum::<f32>() / tokens.len().max(1) as f32
}

/// A word graph keeps the transcript to its sentences, and the probabilities reported are
/// Whisper's own before the constraint: the heard sentence keeps about its free score, a forced
/// one scores far lower (what the second pass's guard relies on).
#[test]
fn a_word_graph_constrains_the_transcript_and_reports_unconstrained_probabilities() {
    // set a timer for <number> minutes | turn off the lights in the garage
    let graph = "0 1 set\n1 2 a\n2 3 timer\n3 4 for\n4 5 <number>\n5 4 -\n5 6 minutes\n\
                 0 10 turn\n10 11 off\n11 12 the\n12 13 lights\n13 14 in\n14 15 the\n15 16 garage\nfinal 6 16\n";
    let parsed = sotto_workers::WordGraph::parse(graph).unwrap();
    let mut stt = start();
    let audio = read_wav("timer_ten_minutes.wav");
    let free = stt.transcribe(&audio, &TranscribeOptions::default()).unwrap();
    let heard =
        stt.transcribe(&audio, &TranscribeOptions { word_graph: Some(graph.into()), ..Default::default() }).unwrap();
    assert!(parsed.accepts(&heard.text), "{:?} is not in the graph", heard.text);
    assert_words(&heard.text, &["set", "a", "timer", "for", "ten|10", "minutes"], "constrained");
    assert!(mean_logprob(&heard.tokens) > mean_logprob(&free.tokens) - 0.3, "{:?} vs {:?}", heard.tokens, free.tokens);

    let audio = read_wav("kitchen_lights_off.wav");
    let free = stt.transcribe(&audio, &TranscribeOptions::default()).unwrap();
    let forced =
        stt.transcribe(&audio, &TranscribeOptions { word_graph: Some(graph.into()), ..Default::default() }).unwrap();
    assert!(parsed.accepts(&forced.text), "{:?} is not in the graph", forced.text);
    assert!(words(&forced.text).contains(&"garage".to_string()), "{:?}", forced.text);
    assert!(
        mean_logprob(&forced.tokens) < mean_logprob(&free.tokens) - 0.3,
        "forced {:?} vs free {:?}",
        forced.tokens,
        free.tokens
    );

    let bad = stt.transcribe(
        &audio,
        &TranscribeOptions { word_graph: Some("0 1 Garage\nfinal 1".into()), ..Default::default() },
    );
    let message = bad.unwrap_err().to_string();
    assert!(message.contains("word graph line 1"), "{message}");
}
