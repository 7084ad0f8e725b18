//! The shipped voice, in process: audio streams out one sentence at a time, the callback can stop
//! it, and bad input (text, voice id, espeak-ng data directory) is an error naming the value.
//! Real models: `sotto models fetch` first (tools/setup.sh does).

use std::ops::ControlFlow;

use sotto_tts::{TtsError, Voice, VoiceOptions, DEFAULT_VOICE};

fn voice() -> Voice {
    let store = sotto_models::Store::open().unwrap();
    Voice::from_store(&store, DEFAULT_VOICE, &VoiceOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

#[test]
fn speech_streams_sentence_by_sentence_and_can_be_stopped() {
    // A daemon holds the voice and calls it from a blocking thread.
    fn is_send<T: Send>() {}
    is_send::<Voice>();
    let mut v = voice();
    assert_eq!(v.sample_rate(), 22_050);
    let text = "Stop press one? Say yes or no. The front door is unlocked.";
    let mut chunks = Vec::new();
    let report = v
        .speak(text, |c| {
            chunks.push(c.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!((chunks.len(), report.sentences), (3, 3), "one chunk per sentence");
    for c in &chunks {
        let secs = c.len() as f32 / 22_050.0;
        assert!((0.4..6.0).contains(&secs), "a short sentence lasts {secs} s");
        assert!(rms(c) > 0.02, "speech, not silence: rms {}", rms(c));
        assert!(c.iter().all(|x| x.is_finite() && x.abs() <= 1.0));
    }
    assert_eq!(report.samples, chunks.iter().map(Vec::len).sum::<usize>());
    assert!(report.first_audio < report.synthesis + std::time::Duration::from_millis(500));

    let mut calls = 0;
    let stopped = v
        .speak(text, |_| {
            calls += 1;
            ControlFlow::Break(())
        })
        .unwrap();
    assert!(stopped.stopped && calls == 1 && stopped.sentences == 1, "{stopped:?}");
}

#[test]
fn bad_text_and_voice_are_errors_naming_the_value() {
    let mut v = voice();
    assert!(matches!(v.synthesize("  \n "), Err(TtsError::EmptyText)));
    assert!(matches!(v.synthesize(&"a".repeat(10_000)), Err(TtsError::TextTooLong { chars: 10_000, .. })));
    assert!(matches!(v.synthesize("... ?!"), Err(TtsError::NothingToSay { .. })));
    // A run-on without punctuation is cut into pieces the model can take, none lost.
    let long = "and then the conveyor stopped again ".repeat(30);
    let mut n = 0;
    v.speak(&long, |_| {
        n += 1;
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(n >= 2, "{n} chunks for a {}-character run-on", long.len());

    let store = sotto_models::Store::open().unwrap();
    let e = Voice::from_store(&store, "no-such-voice", &VoiceOptions::default()).err().unwrap();
    assert!(e.to_string().contains("\"no-such-voice\"") && e.to_string().contains(DEFAULT_VOICE), "{e}");
}
