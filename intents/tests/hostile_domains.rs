//! Domain files written to hurt: each must be refused at load with a schema error naming the key,
//! quickly and in bounded memory, never panic or hang the daemon's start. The inputs are the kind
//! the `intent_domain` / `intent_template` fuzz targets explore (see `fuzz/`).

use std::time::{Duration, Instant};

use sotto_intents::{Intents, LoadError};

/// Loads one domain file; returns the schema error text, and fails if loading took over a second.
fn schema_error(text: &str) -> String {
    let start = Instant::now();
    let result = Intents::from_sources(&[("hostile.toml".to_string(), text.to_string())]);
    assert!(start.elapsed() < Duration::from_secs(1), "loading took {:?}", start.elapsed());
    match result {
        Ok(_) => panic!("expected a schema error for:\n{text}"),
        Err(e @ LoadError::Schema(_)) => e.to_string(),
        Err(e) => panic!("expected a schema error, got {e}"),
    }
}

fn domain(rules: &str, template: &str) -> String {
    format!("domain = \"d\"\n[rules]\n{rules}\n[[intent]]\nname = \"i\"\ntemplates = [\"{template}\"]\n")
}

/// A chain of 17 rules (16 hops) passed the old load check (which allowed depth 16) and then hit
/// the compiler's `depth < 16` assertion: a panic at daemon start.
#[test]
fn rules_nested_past_the_compiler_limit_are_refused_not_a_panic() {
    let chain = |n: usize| (0..n).map(|i| format!("r{i} = \"word{i} <r{}>\"", i + 1)).collect::<Vec<_>>().join("\n");
    let deep = format!("{}\nr16 = \"end\"", chain(16));
    let err = schema_error(&domain(&deep, "go <r0>"));
    assert!(err.contains("rules.r0") && err.contains("levels deep"), "{err}");
    // One level less compiles and matches through the whole chain.
    let ok = format!("{}\nr15 = \"end\"", chain(15));
    let intents = Intents::from_sources(&[("ok.toml".into(), domain(&ok, "go <r0>"))]).unwrap();
    let words: Vec<String> = (0..15).map(|i| format!("word{i}")).collect();
    let spoken = format!("go {} end", words.join(" "));
    assert_eq!(intents.parse(&spoken).intent.as_deref(), Some("i"), "{spoken}");
}

/// Twelve rules, each referencing the next eight times, the last one being `last`.
fn fan_out(last: &str) -> String {
    let mut rules: Vec<String> =
        (0..12).map(|i| format!("r{i} = \"{}\"", vec![format!("<r{}>", i + 1); 8].join(" "))).collect();
    rules.push(format!("r12 = \"{last}\""));
    rules.join("\n")
}

/// Each rule references the next eight times: the old cycle check walked every path (8^16) and
/// never finished; the compiler would have built as many states.
#[test]
fn a_rule_fan_out_is_refused_quickly() {
    let err = schema_error(&domain(&fan_out("x"), "<r0>"));
    assert!(err.contains("matcher states"), "{err}");
}

/// The same fan-out of rules that expand to nothing: the old size estimate counted no state for
/// it, and the compiler then walked its 8^13 references. Now the compiler's step limit refuses it.
#[test]
fn a_fan_out_of_empty_rules_is_refused_quickly() {
    let err = schema_error(&domain(&fan_out("()"), "go <r0>"));
    assert!(err.contains("rules.r0") && err.contains("expansion steps"), "{err}");
}

/// Nested five-item permutations: 120 orders at each level, 120^3 x 15 states.
#[test]
fn nested_permutations_are_refused_by_size() {
    let p1 = "(a; b; c; d; e)";
    let p2 = format!("({p1}; {p1}; {p1}; {p1}; {p1})");
    let p3 = format!("({p2}; {p2}; {p2}; {p2}; {p2})");
    let err = schema_error(&domain("", &p3));
    assert!(err.contains("intent[0].templates") && err.contains("matcher states"), "{err}");
}

#[test]
fn rule_cycles_are_still_named() {
    let err = schema_error(&domain("a = \"x <b>\"\nb = \"<a> y\"", "<a>"));
    assert!(err.contains("rules.a") && err.contains("cycle"), "{err}");
}

/// The size limit leaves the shipped grammar far inside it.
#[test]
fn shipped_domains_are_well_inside_the_state_limit() {
    let states = Intents::shipped().matcher().states();
    let intents = Intents::shipped().intents().len();
    eprintln!("shipped grammar: {states} matcher states over {intents} intents");
    assert!(states < sotto_intents::grammar::MAX_INTENT_STATES, "{states} states over {intents} intents");
}

/// Property: every prefix of every shipped template (a file cut while editing) parses or gives a
/// template error; never a panic.
#[test]
fn every_prefix_of_the_shipped_templates_parses_or_errors() {
    let mut checked = 0;
    for (file, text) in sotto_intents::schema::shipped_sources() {
        let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let intents = doc["intent"].as_array().expect("[[intent]] tables");
        for template in intents.iter().flat_map(|i| i["templates"].as_array().unwrap()) {
            let template = template.as_str().unwrap();
            for (cut, _) in template.char_indices() {
                let _ = sotto_intents::template::parse(&template[..cut]);
                checked += 1;
            }
            sotto_intents::template::parse(template).unwrap_or_else(|e| panic!("{file}: {template}: {e}"));
        }
    }
    assert!(checked > 1000, "only {checked} prefixes");
}
