//! The language-model fallback with the real default model (Gemma 3 270M Q4_K_M) through the real
//! SLM worker: the grammar-constrained output always parses, is validated, and calibration keeps
//! the model from answering every request with one favourite function.
//! Needs `sotto models fetch --profile default` and the `sotto-slm-worker` binary (built by
//! `cargo test --release --workspace`, or pointed to by `SOTTO_WORKER_DIR`).

use sotto_engines::WorkerLanguageModel;
use sotto_intents::slm::{self, SlmConfig, SlmState};
use sotto_intents::Intents;

#[test]
fn gemma_fallback_output_is_always_schema_valid() {
    let store = sotto_models::Store::open().expect("model cache");
    let model =
        store.path("gemma3-270m-q4_k_m").unwrap_or_else(|e| panic!("{e}: run `sotto models fetch --profile default`"));
    let mut config = sotto_workers::WorkerConfig::new(model);
    config.request_timeout = std::time::Duration::from_secs(120);
    let mut client = sotto_workers::SlmClient::start(config).expect("start sotto-slm-worker");
    let mut lm = WorkerLanguageModel(&mut client);
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    let mut state = SlmState::new(&vehicle, SlmConfig::default().prompt);
    // Requests the grammar does not cover.
    let requests = [
        "it is freezing in here, warm the cabin up to twenty four",
        "blast the ventilation at level six",
        "I cannot see through the back glass, it is all fogged",
        "my battery is almost empty, where can I plug in",
        "bring the driver glass all the way down",
        "toast my seat a little, level one",
    ];
    let mut chosen = Vec::new();
    for text in requests {
        assert!(vehicle.parse(text).intent.is_none(), "the grammar already covers {text:?}");
        let r = slm::resolve_with(&mut state, &vehicle, text, &mut lm, &SlmConfig::default())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        if let Some(reason) = &r.rejected_reason {
            // Range or missing-slot rejections are fine; unparsable output would mean the grammar
            // constraint did not hold.
            assert!(
                !reason.contains("not a function call") && !reason.contains("unknown argument"),
                "{text:?}: {reason}"
            );
        }
        if let Some(name) = &r.intent {
            assert!(vehicle.intent(name).is_some());
            chosen.push(name.clone());
        }
    }
    chosen.sort();
    chosen.dedup();
    assert!(chosen.len() >= 2, "calibrated choices collapsed onto {chosen:?}");
}
