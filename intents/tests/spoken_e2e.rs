//! One end-to-end check per domain: a spoken fixture (the command part of the shared Piper
//! fixtures in `tests/fixtures/audio`, a real recording for the barista) through Whisper base in
//! the STT worker, with the domain's vocabulary prompt, to the validated intent.
//! Needs `sotto models fetch --profile default` and the `sotto-stt-worker` binary (built by
//! `cargo test --release --workspace`, or pointed to by `SOTTO_WORKER_DIR`).

use std::path::{Path, PathBuf};

use sotto_intents::understand::{UnderstandConfig, Understander};
use sotto_intents::{Intents, SlotValue};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/audio")
}

fn read_wav(path: &Path, from_s: f64, to_s: f64) -> Vec<f32> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!((r.spec().sample_rate, r.spec().channels), (16000, 1), "{}", path.display());
    let all: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    let a = ((from_s.max(0.0)) * 16000.0) as usize;
    let b = ((to_s * 16000.0) as usize).min(all.len());
    all[a..b].to_vec()
}

/// The command part of a manifest fixture, with 0.3 s of margin.
fn command_audio(file: &str) -> Vec<f32> {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("manifest.json")).expect("fixture manifest"))
            .unwrap();
    let list = manifest.as_array().cloned().or_else(|| manifest["fixtures"].as_array().cloned()).expect("fixture list");
    let f = list.iter().find(|f| f["file"] == file).unwrap_or_else(|| panic!("{file} not in the manifest"));
    read_wav(
        &fixture_dir().join(file),
        f["speech_start_s"].as_f64().unwrap() - 0.3,
        f["speech_end_s"].as_f64().unwrap() + 0.3,
    )
}

fn stt() -> sotto_workers::SttClient {
    let store = sotto_models::Store::open().expect("model cache");
    let model =
        store.path("whisper-base").unwrap_or_else(|e| panic!("{e}: run `sotto models fetch --profile default`"));
    let mut config = sotto_workers::WorkerConfig::new(model);
    config.request_timeout = std::time::Duration::from_secs(120);
    sotto_workers::SttClient::start(config).expect("start sotto-stt-worker")
}

/// The daemon's cascade on one utterance (its default prompt length and second pass).
fn understand(stt: &mut sotto_workers::SttClient, domain: &str, audio: &[f32]) -> (String, sotto_intents::Resolution) {
    let intents = Intents::shipped_domains(&[domain]).unwrap();
    let options = sotto_workers::TranscribeOptions {
        initial_prompt: Some(intents.stt_prompt(sotto_intents::vocabulary::DEFAULT_PROMPT_CHARS)),
        ..Default::default()
    };
    let heard = sotto_engines::heard(stt.transcribe(audio, &options).expect("transcription"));
    let config = UnderstandConfig::default();
    let mut transcriber = sotto_engines::WorkerTranscriber { client: stt, options };
    let u = Understander::new(&intents, &config, "test").understand(&heard, audio, Some(&mut transcriber), None);
    (u.text, u.resolution)
}

fn s(v: &str) -> SlotValue {
    SlotValue::Str(v.into())
}

/// Domain, audio, expected intent, expected slots.
type SpokenCase<'a> = (&'a str, Vec<f32>, &'a str, Vec<(&'a str, SlotValue)>);

#[test]
fn spoken_commands_of_every_domain_become_validated_intents() {
    let mut stt = stt();
    let cases: Vec<SpokenCase> = vec![
        (
            "vehicle",
            command_audio("pos_jarvis_vehicle_temp.wav"),
            "climate.set_temperature",
            vec![("temperature", SlotValue::Num(21.0)), ("zone", s("driver"))],
        ),
        ("factory", command_audio("pos_alexa_factory_status.wav"), "machine.status", vec![("machine", s("press_2"))]),
        (
            "home",
            command_audio("pos_jarvis_home_lights.wav"),
            "light.set",
            vec![("room", s("kitchen")), ("state", s("on"))],
        ),
        (
            "barista",
            read_wav(
                &sotto_intents::barista::data_dir().join("clean/0075d273-51bb-47cb-b323-4437bd0de029.wav"),
                0.0,
                60.0,
            ),
            "orderDrink",
            vec![("coffeeDrink", s("coffee")), ("roast", s("light roast")), ("size", s("twelve ounce"))],
        ),
    ];
    for (domain, audio, intent, slots) in cases {
        let (text, r) = understand(&mut stt, domain, &audio);
        assert_eq!(r.intent.as_deref(), Some(intent), "{domain}: transcript {text:?} → {r:?}");
        assert!(r.accepted(), "{domain}: {text:?} → {r:?}");
        let want: std::collections::BTreeMap<String, SlotValue> =
            slots.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        assert_eq!(r.slots, want, "{domain}: transcript {text:?}");
    }
}
