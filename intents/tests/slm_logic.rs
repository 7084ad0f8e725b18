//! The language-model fallback's own logic (prompt, generated grammar, calibration, parsing and
//! validation of the output) driven by a scripted model. The real-model run is in `slm_real.rs`.

use sotto_intents::slm::{self, Grammar, LanguageModel, Notation, SlmConfig};
use sotto_intents::{Intents, Resolver, SlmError, SlotValue};

/// Scores each candidate by a per-intent table, with a strong bias toward one favourite that is
/// also present on the empty request (the model's prior), and generates a fixed continuation.
struct Scripted {
    favourite: &'static str,
    right: &'static str,
    generated: String,
    prompts: Vec<String>,
    grammars: Vec<Grammar>,
}

impl LanguageModel for Scripted {
    fn generate(&mut self, prompt: &str, grammar: Option<&Grammar>, _max: u32) -> Result<String, SlmError> {
        self.prompts.push(prompt.to_string());
        self.grammars.extend(grammar.cloned());
        Ok(self.generated.clone())
    }

    fn score(&mut self, prompt: &str, candidates: &[String]) -> Result<Vec<f32>, SlmError> {
        let empty = prompt.ends_with("Request: \nCall: {\"intent\": \"");
        Ok(candidates
            .iter()
            .map(|c| {
                let name = c.trim_end_matches('"');
                let mut s = -10.0;
                if name == self.favourite {
                    s += 6.0;
                }
                if name == self.right && !empty {
                    s += 4.0;
                }
                s
            })
            .collect())
    }
}

fn scripted(generated: &str) -> Scripted {
    Scripted {
        favourite: "nav.navigate_to",
        right: "climate.set_fan",
        generated: generated.into(),
        prompts: vec![],
        grammars: vec![],
    }
}

#[test]
fn calibration_removes_the_models_favourite() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    let text = "the blower should go to four";
    let mut lm = scripted(", \"level\": 4}");
    // Every intent a candidate, so the favourite competes.
    let every_intent = SlmConfig { shortlist: 0, ..SlmConfig::default() };
    let uncalibrated = SlmConfig { calibrate: false, ..every_intent.clone() };
    let r = slm::resolve(&vehicle, text, &mut lm, &uncalibrated).unwrap();
    assert_eq!(r.intent.as_deref(), Some("nav.navigate_to"), "the scripted prior wins without calibration");
    let r = slm::resolve(&vehicle, text, &mut lm, &every_intent).unwrap();
    assert_eq!(r.intent.as_deref(), Some("climate.set_fan"));
    assert_eq!(r.resolver, Some(Resolver::Slm));
    assert_eq!(r.slots.get("level"), Some(&SlotValue::Int(4)));
    assert!(r.accepted());
    // The arguments were generated under this intent's grammar, after its name in the prompt.
    let Grammar::Lark(g) = lm.grammars.last().unwrap() else {
        panic!("arguments are constrained in Lark for llguidance")
    };
    assert!(g.contains(r#"", \"level\": ""#), "{g}");
    assert!(lm.prompts.last().unwrap().ends_with("Call: {\"intent\": \"climate.set_fan"));
}

#[test]
fn model_output_is_validated_like_the_grammars() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    let mut lm = scripted(", \"level\": 9}");
    let r = slm::resolve(&vehicle, "blower nine", &mut lm, &SlmConfig::default()).unwrap();
    assert!(r.rejected_reason.unwrap().contains("out of range"));
    let mut lm = scripted(", \"colour\": \"red\"}");
    let r = slm::resolve(&vehicle, "blower red", &mut lm, &SlmConfig::default()).unwrap();
    assert!(r.rejected_reason.is_some(), "unknown argument must be rejected");
    let mut lm = scripted("garbage");
    let r = slm::resolve(&vehicle, "blower", &mut lm, &SlmConfig::default()).unwrap();
    assert!(!r.accepted());
}

#[test]
fn the_model_chooses_only_among_intents_sharing_words_with_the_request() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    // The favourite is not among the candidates for a fan request, even uncalibrated.
    let mut lm = scripted(", \"level\": 4}");
    let uncalibrated = SlmConfig { calibrate: false, ..SlmConfig::default() };
    let r = slm::resolve(&vehicle, "the blower should go to four", &mut lm, &uncalibrated).unwrap();
    assert_eq!(r.intent.as_deref(), Some("climate.set_fan"));
    // Nothing in common with any intent: the model is not asked at all.
    let mut lm = scripted(", \"level\": 4}");
    let r = slm::resolve(&vehicle, "who won the game last night", &mut lm, &SlmConfig::default()).unwrap();
    assert!(r.intent.is_none());
    assert!(lm.prompts.is_empty() && lm.grammars.is_empty());
}

#[test]
fn none_wins_when_calibrated_scores_say_so() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    let mut lm = Scripted {
        favourite: "nav.navigate_to",
        right: "none",
        generated: String::new(),
        prompts: vec![],
        grammars: vec![],
    };
    let r = slm::resolve(&vehicle, "tell me a story", &mut lm, &SlmConfig { shortlist: 0, ..SlmConfig::default() })
        .unwrap();
    assert!(r.intent.is_none());
    assert!(
        lm.prompts.iter().all(|p| !p.contains("tell me a story")),
        "nothing is generated for none beyond the warm-up: {:?}",
        lm.prompts
    );
}

#[test]
fn grammar_allows_declared_values_only() {
    let all = Intents::shipped();
    for notation in [Notation::Gbnf, Notation::Lark] {
        let (Grammar::Gbnf(g) | Grammar::Lark(g)) =
            slm::arguments_grammar(all.intent("nav.find_nearby").unwrap(), notation)
        else {
            panic!()
        };
        for v in ["charging_station", "gas_station", "parking", "restaurant", "hospital"] {
            assert!(g.contains(&format!("\\\"{v}\\\"")), "{v} missing in {g}");
        }
        assert!(!g.contains("kitchen"));
        let (Grammar::Gbnf(g) | Grammar::Lark(g)) =
            slm::arguments_grammar(all.intent("climate.set_fan").unwrap(), notation)
        else {
            panic!()
        };
        assert!(g.contains("\"7\"") && !g.contains("\"8\""), "{g}");
    }
    let prefix = slm::prompt_prefix(&all);
    assert!(
        prefix.contains(
            "- climate.set_temperature(temperature: number 16..30 °C, zone: all|driver|passenger|rear = all)"
        ),
        "{prefix}"
    );
    assert!(prefix.contains("{\"intent\": \"none\"}"));
    assert!(prefix.contains("Call: {\"intent\": \"orderDrink\""));
}

#[test]
fn the_cascade_prefers_the_grammar() {
    let all = Intents::shipped();
    let mut lm = scripted(", \"level\": 4}");
    let r = all.resolve("turn on the kitchen lights", Some(&mut lm), &SlmConfig::default());
    assert_eq!(r.resolver, Some(Resolver::Grammar));
    assert!(lm.prompts.is_empty());
    let r = all.resolve("the blower should go to four", Some(&mut lm), &SlmConfig::default());
    assert_eq!((r.intent.as_deref(), r.resolver), (Some("climate.set_fan"), Some(Resolver::Slm)));
}

/// The Python string literals of `SHORT_INSTRUCTION = (…)` in tools/distil/generate.py, joined.
fn trained_instruction() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/distil/generate.py");
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.split("SHORT_INSTRUCTION = (").nth(1).expect("SHORT_INSTRUCTION in generate.py");
    let mut out = String::new();
    for line in body.lines().map(str::trim).filter(|l| !l.is_empty()).take_while(|l| *l != ")") {
        let quote = line.chars().next().unwrap();
        let inner = &line[1..line.rfind(quote).unwrap()];
        out.push_str(&inner.replace("\\n", "\n"));
    }
    out
}

#[test]
fn the_short_prompt_is_the_one_the_adapter_is_trained_on() {
    assert_eq!(slm::SHORT_INSTRUCTION, trained_instruction());
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    let mut lm = scripted(", \"level\": 4}");
    let r = slm::resolve(&vehicle, "the blower should go to four", &mut lm, &SlmConfig::distilled()).unwrap();
    assert_eq!(r.intent.as_deref(), Some("climate.set_fan"));
    // No function list and no worked example can reach the model: only the instruction and the request.
    let want = format!("{}Request: the blower should go to four\nCall: {{\"intent\": \"", slm::SHORT_INSTRUCTION);
    assert_eq!(lm.prompts, vec![format!("{want}climate.set_fan")]);
    // The cascade's kept state follows the configured prompt: few-shot, then short.
    let all = Intents::shipped();
    let mut lm = scripted(", \"level\": 4}");
    all.resolve("the blower should go to four", Some(&mut lm), &SlmConfig::default());
    assert!(lm.prompts.last().unwrap().contains("Functions:"));
    all.resolve("the blower should go to four", Some(&mut lm), &SlmConfig::distilled());
    assert!(lm.prompts.last().unwrap().starts_with(slm::SHORT_INSTRUCTION), "{:?}", lm.prompts.last());
}

/// The grammar of one request offers the values grounding would accept: numbers and durations
/// said, values heard clearly (required when they are not the default), spans of the words.
#[test]
fn the_arguments_grammar_of_a_request_offers_what_was_heard() {
    use sotto_intents::grounding::Heard;
    use sotto_intents::slm::{arguments_grammar_heard, Notation, Request};
    let all = Intents::shipped();
    let intent = |name: &str| all.intents().iter().find(|i| i.name == name).unwrap().clone();
    let knows = |w: &str| all.knows(w);
    let grammar = |name: &str, text: &str| {
        let heard = Heard::new(text);
        match arguments_grammar_heard(
            &intent(name),
            Notation::Lark,
            Some(&Request { heard: &heard, in_vocabulary: &knows }),
        ) {
            Grammar::Lark(g) => g,
            other => panic!("{other:?}"),
        }
    };
    // The zone said is required (not left to the default `all`); the one temperature said is the only one.
    let g = grammar("climate.set_temperature", "my side of the car is boiling, bring it down to nineteen");
    assert!(g.contains("start: \"\\\"\" s0 s1 \"}\""), "{g}");
    assert!(g.contains("(\"19\")") && g.contains("(\"\\\"driver\\\"\")"), "{g}");
    // "a quarter of an hour" is 900 s, not the hour inside it.
    let g = grammar("timer.start", "ping me in a quarter of an hour");
    assert!(g.contains("(\"900\")"), "{g}");
    // Free text: spans of the words only.
    let g = grammar("nav.navigate_to", "take us over to 14 harbour street");
    assert!(g.contains("\"harbour\" (\" \" s0w6)?") && !g.contains("[^"), "{g}");
    // A door heard only as a near sound ("bay" for "back") is not offered alone.
    let g = grammar("lock.set", "open the pod bay doors");
    assert!(g.contains("\"\\\"front\\\"\"") && g.contains("\"\\\"back\\\"\""), "{g}");
}

#[test]
fn a_rival_intent_too_close_to_the_winner_is_no_action_when_asked_for() {
    let vehicle = Intents::shipped_domains(&["vehicle"]).unwrap();
    // Uncalibrated scores: the fan -4, the temperature -6 (2 behind), everything else and `none` -10.
    let lm = || Scripted {
        favourite: "climate.set_fan",
        right: "climate.set_temperature",
        generated: ", \"level\": 4}".into(),
        prompts: vec![],
        grammars: vec![],
    };
    let text = "the blower should go to four";
    let cfg = |rival_margin| SlmConfig { calibrate: false, shortlist: 0, rival_margin, ..SlmConfig::default() };
    for (margin, acts) in [(0.0, true), (1.0, true), (3.0, false)] {
        let r = slm::resolve(&vehicle, text, &mut lm(), &cfg(margin)).unwrap();
        let want = acts.then_some("climate.set_fan");
        assert_eq!(r.intent.as_deref(), want, "rival margin {margin}: {r:?}");
    }
}

/// A model that always chooses `intent` and answers `generated`.
fn sure_of(intent: &'static str, generated: &str) -> Scripted {
    Scripted { favourite: intent, right: intent, generated: generated.into(), prompts: vec![], grammars: vec![] }
}

#[test]
fn a_choice_between_two_domains_the_words_do_not_tell_apart_is_refused() {
    let house_and_car = Intents::shipped_domains(&["home", "vehicle"]).unwrap();
    let house = Intents::shipped_domains(&["home"]).unwrap();
    // A model sure of the house's thermostat, whatever was said.
    let lm = || sure_of("thermostat.set", ", \"temperature\": 22}");
    let on = SlmConfig { calibrate: false, shortlist: 0, refuse_domain_rivals: true, ..SlmConfig::default() };
    let off = SlmConfig { refuse_domain_rivals: false, ..on.clone() };
    let unsaid = "it's chilly, turn the heat up to twenty two";

    let r = slm::resolve(&house_and_car, unsaid, &mut lm(), &on).unwrap();
    assert!(!r.accepted(), "{r:?}");
    assert_eq!(r.intent.as_deref(), Some("thermostat.set"));
    let why = r.rejected_reason.unwrap();
    assert!(why.contains("climate.set_temperature") && why.contains("vehicle"), "{why}");
    // What Sotto says back is the question, not "sorry, I did not understand".
    let thermostat = house_and_car.intent("thermostat.set").unwrap();
    let asked = sotto_intents::responses::refused_for_reason(&house_and_car.domains[0], thermostat, &why);
    assert_eq!(asked.as_deref(), Some("For the home or the vehicle? Please say it again with one of them."));
    assert!(slm::resolve(&house_and_car, unsaid, &mut lm(), &off).unwrap().accepted());

    // The house named, or no car loaded: nothing to confuse it with.
    let r = slm::resolve(&house_and_car, "it's chilly in the house, heat up to twenty two", &mut lm(), &on).unwrap();
    assert!(r.accepted(), "{r:?}");
    assert!(slm::resolve(&house, unsaid, &mut lm(), &on).unwrap().accepted());

    // The car's intent fits the words but needs a value nobody said: no rival.
    let lm = || sure_of("light.set", ", \"room\": \"kitchen\", \"state\": \"on\"}");
    let r = slm::resolve(&house_and_car, "switch on the kitchen lights", &mut lm(), &on).unwrap();
    assert!(r.accepted(), "{r:?}");
}

#[test]
fn a_query_nothing_said_asks_for_is_refused() {
    let factory = Intents::shipped_domains(&["factory"]).unwrap();
    // A model sure the request asks for a machine's status, whatever was said.
    let lm = || sure_of("machine.status", ", \"machine\": \"press_1\"}");
    let on = SlmConfig { calibrate: false, shortlist: 0, query_needs_own_word: true, ..SlmConfig::default() };
    let off = SlmConfig { query_needs_own_word: false, ..on.clone() };
    let report = "flag press one as broken, the guard will not close";

    let r = slm::resolve(&factory, report, &mut lm(), &on).unwrap();
    assert!(!r.accepted(), "{r:?}");
    assert_eq!(r.rejected_reason.as_deref(), Some("nothing said asks for machine.status"));
    assert!(slm::resolve(&factory, report, &mut lm(), &off).unwrap().accepted());
    // A word of the query's own (not the machine's name) is enough.
    let r = slm::resolve(&factory, "what's the status of press one", &mut lm(), &on).unwrap();
    assert!(r.accepted(), "{r:?}");
    // Only queries: the model's choice of a command is not second-guessed this way.
    let lm = || sure_of("machine.stop", ", \"machine\": \"press_1\"}");
    let r = slm::resolve(&factory, "press one, the guard will not close, enough of it", &mut lm(), &on).unwrap();
    assert_eq!(r.intent.as_deref(), Some("machine.stop"), "{r:?}");
    assert_ne!(r.rejected_reason.as_deref(), Some("nothing said asks for machine.stop"), "{r:?}");
}
