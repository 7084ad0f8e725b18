//! Resolves each argument with the shipped domains and prints the JSON result (for quick checks;
//! the user-facing command is `sotto parse`).
fn main() {
    let intents = sotto_intents::Intents::shipped();
    eprintln!("graph states: {}", intents.matcher().states());
    for text in std::env::args().skip(1) {
        let r = intents.parse(&text);
        let again = intents.parse(&text);
        eprintln!("   first {:.3} ms, again {:.3} ms", r.elapsed_ms, again.elapsed_ms);
        println!("{}", serde_json::to_string(&r).unwrap());
        for m in intents.matcher().ranked(&text).iter().take(3) {
            eprintln!("   {} cost {:.2} conf {:.2}", intents.intents()[m.intent].name, m.cost, m.confidence);
        }
    }
}
