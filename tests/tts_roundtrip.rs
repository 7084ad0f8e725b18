//! Sotto's voice, heard back: `sotto say` writes responses of every shipped domain (what it says
//! after an action, the confirmation questions, a refusal, not-understood) to WAV with the real
//! Piper voice, `sotto transcribe` reads them back with the real Whisper model, and at least 90% of
//! the words must come back right (word error rate over all sentences ≤ 10%). Also the bad inputs
//! of `sotto say`: empty text, a 10,000-character text, an unknown voice, a missing espeak-ng data
//! directory — each an error naming the value.

use std::collections::BTreeMap;
use std::path::Path;

use sotto_intents::responses;
use sotto_intents::Intents;
use sotto_tests::daemon::{one_at_a_time, sotto};

/// Per domain: transcripts whose resolutions give the responses spoken (realistic slot values).
const COMMANDS: &[(&str, &[&str])] = &[
    ("vehicle", &["set the temperature to 21 degrees on the passenger side", "set the fan to level three"]),
    ("factory", &["stop press one", "what is the status of the cnc mill"]),
    ("home", &["turn on the kitchen lights", "set a timer for ten minutes", "unlock the front door"]),
    ("barista", &["can i get a large latte with soy milk"]),
];

/// What Sotto would say for each command: the confirmation question for a risky intent, else the
/// intent's `say`; plus one refusal and the factory's not-understood line.
fn responses_to_speak(intents: &Intents) -> Vec<String> {
    let mut out = Vec::new();
    for (domain_name, commands) in COMMANDS {
        let domain = intents.domains.iter().find(|d| d.name == *domain_name).expect("shipped domain");
        for command in *commands {
            let r = intents.parse(command);
            assert!(r.accepted(), "{command:?} must resolve: {r:?}");
            let intent = intents.intent(r.intent.as_deref().unwrap()).unwrap();
            let text = if r.confirm {
                responses::confirm_question(domain, intent, &r.slots)
            } else {
                responses::done(intent, &r.slots).unwrap_or_else(|| panic!("{} has no `say`", intent.name))
            };
            out.push(text);
        }
    }
    let vehicle = intents.domains.iter().find(|d| d.name == "vehicle").unwrap();
    let r = intents.parse("set the temperature to 35 degrees");
    let t = intents.intent("climate.set_temperature").unwrap();
    out.push(responses::refused_for_reason(vehicle, t, r.rejected_reason.as_deref().unwrap()).unwrap());
    let factory = intents.domains.iter().find(|d| d.name == "factory").unwrap();
    out.push(responses::not_understood(Some(factory)));
    out
}

/// Lower case words, punctuation dropped, digits as words (Whisper writes "21", Sotto says
/// "twenty one"), hyphens as spaces.
fn words(text: &str) -> Vec<String> {
    let cleaned: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '\'' || c == '.' { c } else { ' ' })
        .collect();
    let spaced: Vec<String> = cleaned.split_whitespace().map(|w| w.trim_matches('.').to_string()).collect();
    responses::numbers_in_text(&spaced.join(" ")).split_whitespace().map(str::to_string).collect()
}

/// Word-level edit distance (substitutions, insertions, deletions).
fn edits(reference: &[String], hypothesis: &[String]) -> usize {
    let mut prev: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut cur = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(r != h)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[hypothesis.len()]
}

fn transcribe(wav: &Path) -> String {
    let out = sotto().args(["transcribe", "--model", "whisper-base"]).arg(wav).output().unwrap();
    assert!(out.status.success(), "transcribe {}: {}", wav.display(), String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    line["text"].as_str().expect("text field").to_string()
}

#[test]
fn spoken_responses_are_understood_back() {
    let _guard = one_at_a_time();
    let intents = Intents::shipped();
    let texts = responses_to_speak(&intents);
    let dir = tempfile::tempdir().unwrap();
    let (mut total_words, mut total_edits) = (0, 0);
    let mut report = BTreeMap::new();
    for (i, text) in texts.iter().enumerate() {
        let wav = dir.path().join(format!("response_{i}.wav"));
        let out = sotto().args(["say", "--output"]).arg(&wav).arg(text).output().unwrap();
        assert!(out.status.success(), "say {text:?}: {}", String::from_utf8_lossy(&out.stderr));
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON summary line");
        assert!(summary["audio_s"].as_f64().unwrap() > 0.5, "{summary}");
        let heard = transcribe(&wav);
        let (r, h) = (words(text), words(&heard));
        let e = edits(&r, &h);
        total_words += r.len();
        total_edits += e;
        report.insert(i, format!("{text:?} → {heard:?} ({e} of {} words wrong)", r.len()));
    }
    let wer = total_edits as f64 / total_words as f64;
    let listing = report.values().cloned().collect::<Vec<_>>().join("\n  ");
    eprintln!("word error rate {:.1}% over {total_words} words:\n  {listing}", wer * 100.0);
    assert!(wer <= 0.10, "word error rate {:.1}% > 10%:\n  {listing}", wer * 100.0);
}

#[test]
fn bad_input_is_a_clear_error_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("out.wav");
    let long = "word ".repeat(2000);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["say".into(), "--output".into(), wav.display().to_string(), "   ".into()], "the text is empty"),
        (vec!["say".into(), "--output".into(), wav.display().to_string(), long], "10000 characters"),
        (
            vec![
                "say".into(),
                "--voice".into(),
                "no-such-voice".into(),
                "--output".into(),
                wav.display().to_string(),
                "hi".into(),
            ],
            "unknown voice \"no-such-voice\"",
        ),
        (
            vec![
                "say".into(),
                "--espeak-data".into(),
                "/nonexistent/espeak-ng-data".into(),
                "--output".into(),
                wav.display().to_string(),
                "hi".into(),
            ],
            "/nonexistent/espeak-ng-data",
        ),
    ];
    for (args, needle) in cases {
        let out = sotto().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{:?} succeeded", &args[..args.len().min(4)]);
        assert!(err.contains(needle), "{:?}: stderr lacks {needle:?}:\n{err}", &args[..args.len().min(4)]);
        assert!(!wav.exists(), "no output file is left after an error");
    }
}

#[test]
fn wer_helper_counts_word_edits() {
    let w = |s: &str| words(s);
    assert_eq!(words("Setting the fan to level 3."), w("setting the fan to level three"));
    assert_eq!(edits(&w("stop press one say yes or no"), &w("Stop press 1? Say yes or no.")), 0);
    assert_eq!(edits(&w("a b c d"), &w("a x c")), 2);
    assert_eq!(edits(&w("a b"), &w("")), 2);
}
