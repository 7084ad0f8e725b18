//! The shipped domain files honour the issue's contract, and schema errors name what is wrong.

use sotto_intents::{Intents, LoadError, SlotKind, SlotValue};

fn load_err(sources: &[(&str, &str)]) -> String {
    let owned: Vec<(String, String)> = sources.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    match Intents::from_sources(&owned) {
        Ok(_) => panic!("expected a schema error"),
        Err(e @ LoadError::Schema(_)) => e.to_string(),
        Err(e) => panic!("expected a schema error, got {e}"),
    }
}

fn enum_values(intents: &Intents, intent: &str, slot: &str) -> Vec<String> {
    let i = intents.intent(intent).unwrap_or_else(|| panic!("intent {intent} missing"));
    match &i.slot(slot).unwrap_or_else(|| panic!("{intent}.{slot} missing")).kind {
        SlotKind::Enum(v) => {
            let mut v: Vec<String> = v.iter().map(|x| x.canonical.clone()).collect();
            v.sort();
            v
        }
        other => panic!("{intent}.{slot} is {other:?}, not an enum"),
    }
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn shipped_domains_have_the_contracted_intents_and_slots() {
    let all = Intents::shipped();
    let names: Vec<&str> = all.intents().iter().map(|i| i.name.as_str()).collect();
    for want in [
        "climate.set_temperature",
        "climate.set_fan",
        "climate.defrost",
        "nav.navigate_to",
        "nav.find_nearby",
        "seat.set_heating",
        "window.set",
        "machine.status",
        "machine.stop",
        "machine.start",
        "fault.report",
        "note.log",
        "procedure.lookup",
        "light.set",
        "light.brightness",
        "thermostat.set",
        "media.control",
        "media.volume",
        "lock.set",
        "timer.start",
        "orderDrink",
    ] {
        assert!(names.contains(&want), "{want} missing from the shipped domains");
    }
    let t = all.intent("climate.set_temperature").unwrap();
    assert!(matches!(t.slot("temperature").unwrap().kind, SlotKind::Number { min: Some(16.0), max: Some(30.0), .. }));
    assert_eq!(t.slot("zone").unwrap().default, Some(SlotValue::Str("all".into())));
    assert_eq!(enum_values(&all, "climate.set_temperature", "zone"), sorted(&["driver", "passenger", "rear", "all"]));
    assert!(matches!(
        all.intent("climate.set_fan").unwrap().slot("level").unwrap().kind,
        SlotKind::Integer { min: Some(0.0), max: Some(7.0), .. }
    ));
    assert_eq!(
        enum_values(&all, "nav.find_nearby", "category"),
        sorted(&["charging_station", "gas_station", "parking", "restaurant", "hospital"])
    );
    assert_eq!(
        enum_values(&all, "window.set", "window"),
        sorted(&["driver", "passenger", "rear_left", "rear_right", "all"])
    );
    let machines =
        sorted(&["press_1", "press_2", "conveyor_1", "conveyor_2", "cnc_mill", "packaging_line", "robot_cell"]);
    for i in ["machine.status", "machine.stop", "machine.start", "fault.report", "note.log"] {
        assert_eq!(enum_values(&all, i, "machine"), machines, "{i}");
    }
    assert!(all.intent("machine.stop").unwrap().confirm && all.intent("machine.start").unwrap().confirm);
    assert!(!all.intent("machine.status").unwrap().confirm);
    assert_eq!(
        enum_values(&all, "light.set", "room"),
        sorted(&["kitchen", "living_room", "bedroom", "bathroom", "hallway", "office", "garden"])
    );
    assert!(matches!(
        all.intent("timer.start").unwrap().slot("duration_s").unwrap().kind,
        SlotKind::Duration { min: Some(1.0), max: Some(86400.0) }
    ));
    assert!(matches!(
        all.intent("thermostat.set").unwrap().slot("temperature").unwrap().kind,
        SlotKind::Number { min: Some(5.0), max: Some(30.0), .. }
    ));
}

#[test]
fn barista_slot_values_are_the_benchmark_phrases() {
    let all = Intents::shipped();
    assert_eq!(enum_values(&all, "orderDrink", "roast"), sorted(&["light roast", "medium roast", "dark roast"]));
    assert_eq!(
        enum_values(&all, "orderDrink", "numberOfShots"),
        sorted(&["single shot", "double shot", "triple shot"])
    );
    assert_eq!(
        enum_values(&all, "orderDrink", "size"),
        sorted(&["small", "medium", "large", "eight ounce", "twelve ounce", "sixteen ounce", "twenty ounce"])
    );
    assert_eq!(enum_values(&all, "orderDrink", "milkAmount").len(), 36);
    assert_eq!(enum_values(&all, "orderDrink", "sugarAmount").len(), 18);
    assert_eq!(enum_values(&all, "orderDrink", "coffeeDrink").len(), 10);
}

#[test]
fn every_example_resolves_to_its_own_intent() {
    // The language-model prompt labels its examples with the grammar: they must agree.
    let all = Intents::shipped();
    for intent in all.intents() {
        assert!(!intent.examples.is_empty(), "{} has no examples", intent.name);
        for e in &intent.examples {
            let r = all.parse(e);
            assert_eq!(r.intent.as_deref(), Some(intent.name.as_str()), "example {e:?}: {r:?}");
            assert!(r.accepted(), "example {e:?} rejected: {r:?}");
        }
    }
}

const GOOD: &str = r#"
domain = "test"
[[intent]]
name = "a.b"
templates = ["do {x}"]
examples = ["do one"]
[intent.slots.x]
type = "enum"
values = { one = [] }
"#;

#[test]
fn a_template_error_names_file_intent_and_template() {
    let bad = GOOD.replace("do {x}", "do (it | {x}");
    let msg = load_err(&[("bad.toml", &bad)]);
    assert!(msg.contains("bad.toml"), "{msg}");
    assert!(msg.contains("intent `a.b`"), "{msg}");
    assert!(msg.contains("template \"do (it | {x}\""), "{msg}");
    assert!(msg.contains("unbalanced `(`"), "{msg}");
}

#[test]
fn unknown_slots_rules_keys_and_types_are_all_reported_at_once() {
    let bad = GOOD
        .replace("do {x}", "do {y} <nope>")
        .replace("type = \"enum\"", "type = \"enum\"\nmin = 3")
        .replace("[[intent]]", "[[intent]]\nconfirm_when = { x = \"two\" }");
    let msg = load_err(&[("many.toml", &bad)]);
    for want in ["unknown slot {y}", "unknown rule <nope>", "`min/max` does not apply", "confirm_when"] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
    let typo = GOOD.replace("templates", "templatez");
    let msg = load_err(&[("typo.toml", &typo)]);
    assert!(msg.contains("typo.toml") && msg.contains("templatez"), "{msg}");
    let kind = GOOD.replace("type = \"enum\"", "type = \"colour\"");
    assert!(load_err(&[("k.toml", &kind)]).contains("unknown slot type `colour`"));
}

#[test]
fn ranges_defaults_and_actions_are_checked() {
    let bad = r#"
domain = "t"
[[intent]]
name = "t.set"
templates = ["set {n}"]
[intent.slots.n]
type = "integer"
min = 10
max = 1
default = "high"
[intent.action]
topic = "x/{site_id}/{missing}"
qos = 3
"#;
    let msg = load_err(&[("r.toml", bad)]);
    for want in ["min 10 is greater than max 1", "placeholder {missing}", "qos 3"] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
}

#[test]
fn intent_names_are_unique_across_files() {
    let msg = load_err(&[("one.toml", GOOD), ("two.toml", GOOD)]);
    assert!(msg.contains("two.toml") && msg.contains("already used"), "{msg}");
}

#[test]
fn loads_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.toml"), GOOD).unwrap();
    let intents = Intents::load(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(intents.parse("do one").intent.as_deref(), Some("a.b"));
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(Intents::load(&[empty.path().to_path_buf()]), Err(LoadError::NoDomains(_))));
    let missing = dir.path().join("nope.toml");
    let err = Intents::load(std::slice::from_ref(&missing)).err().unwrap().to_string();
    assert!(err.contains("nope.toml"), "{err}");
}

#[test]
fn unknown_keys_and_wrong_types_of_one_file_are_all_reported_with_their_key_paths() {
    let bad = GOOD.replace("domain = \"test\"", "domain = \"test\"\ncolour = 3").replace("examples", "examplez");
    let bad = bad.replace("[intent.slots.x]", "confirm = \"yes\"\n[intent.slots.x]");
    let msg = load_err(&[("keys.toml", &bad)]);
    for want in ["keys.toml:colour: unknown field", "keys.toml:intent[0].examplez", "keys.toml:intent[0].confirm"] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
}
