//! The shipped text test set: at least 95% exact intent-and-slots matches per domain, and no
//! out-of-domain line may produce an intent. (`cargo run --release -p sotto-intents --example
//! evaluate -- -v` prints the figures and every miss.)

use std::path::Path;

use sotto_intents::evaluate::shipped_testset;

#[test]
fn text_testset_meets_the_goal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testset");
    for (name, score) in shipped_testset(&dir).unwrap() {
        assert!(score.cases >= 40, "{name}: only {} cases", score.cases);
        assert_eq!(score.false_intents, 0, "{name}: out-of-domain lines produced intents: {:?}", score.failures);
        assert!(score.accuracy() >= 95.0, "{name}: {:.1}% exact; misses: {:#?}", score.accuracy(), score.failures);
    }
}
