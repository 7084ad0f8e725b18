//! What Sotto says back, from the domain files: per-intent `say` (after an action) and
//! `confirm_say` (the yes/no question), and a domain's `[responses]` (not understood, a value
//! refused, the wrapper around confirmation questions). Slot values are rendered as spoken words:
//! numbers as words, enum values by their name with `_` read as a space, durations in hours,
//! minutes and seconds. Every response has a default, so a domain without any still speaks.
//!
//! Templates: `{slot}` is replaced by the slot's spoken value; `[ ... ]` is a part dropped when a
//! slot inside it has no value (`"One {coffeeDrink}[ with {milkAmount}]"`).

use std::collections::BTreeMap;

use crate::numbers::{ONES, TENS};
use crate::schema::{Domain, Intent, Slot, SlotKind, SlotValue};

/// Spoken when the transcript matched no intent and the domain says nothing else.
pub const DEFAULT_NOT_UNDERSTOOD: &str = "Sorry, I did not understand that.";
/// Wraps a value refused for being out of range; `{slot}`, `{range}`, `{min}`, `{max}`, `{unit}`.
pub const DEFAULT_REFUSED: &str = "I can only set the {slot} {range}.";
/// Wraps every confirmation question; `{question}`.
pub const DEFAULT_CONFIRM: &str = "{question} Say yes or no.";

/// A domain's `[responses]` table (all optional).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainResponses {
    pub not_understood: Option<String>,
    pub refused: Option<String>,
    pub confirm: Option<String>,
}

const REFUSED_KEYS: [&str; 5] = ["slot", "range", "min", "max", "unit"];

/// Problems with a domain's response templates, as `(key path, message)`; `intents` are the
/// domain's intents with their index in the file.
pub fn check(responses: &DomainResponses, intents: &[(usize, &Intent)]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut check_one = |key: String, template: &str, allowed: &dyn Fn(&str) -> bool| match placeholders(template) {
        Err(e) => out.push((key, e)),
        Ok(names) => {
            for n in names.into_iter().filter(|n| !allowed(n)) {
                out.push((key.clone(), format!("unknown placeholder {{{n}}} in {template:?}")));
            }
        }
    };
    if let Some(t) = &responses.not_understood {
        check_one("responses.not_understood".into(), t, &|_| false);
    }
    if let Some(t) = &responses.refused {
        check_one("responses.refused".into(), t, &|n| REFUSED_KEYS.contains(&n));
    }
    if let Some(t) = &responses.confirm {
        check_one("responses.confirm".into(), t, &|n| n == "question");
    }
    for (index, intent) in intents {
        let is_slot = |n: &str| intent.slot(n).is_some();
        if let Some(t) = &intent.say {
            check_one(format!("intent[{index}].say"), t, &is_slot);
        }
        if let Some(t) = &intent.confirm_say {
            check_one(format!("intent[{index}].confirm_say"), t, &is_slot);
        }
    }
    out
}

/// The placeholders of a template, or what is malformed about it.
fn placeholders(template: &str) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let mut depth = 0;
    let mut chars = template.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed || name.is_empty() || name.contains('{') {
                    return Err(format!("unclosed or empty {{…}} at character {i} in {template:?}"));
                }
                names.push(name);
            }
            '}' => return Err(format!("unexpected `}}` at character {i} in {template:?}")),
            '[' if depth == 0 => depth = 1,
            '[' => return Err(format!("nested `[` at character {i} in {template:?}")),
            ']' if depth == 1 => depth = 0,
            ']' => return Err(format!("unexpected `]` at character {i} in {template:?}")),
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unclosed `[` in {template:?}"));
    }
    Ok(names)
}

/// Fills a (checked) template: `{name}` from `lookup`; a `[…]` part disappears when a name in it
/// has no value. Spaces are tidied.
fn fill(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut part = String::new();
    let mut in_part = false;
    let mut part_ok = true;
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        match c {
            '{' => {
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                let value = lookup(&name);
                if value.is_none() {
                    part_ok = false;
                }
                let target = if in_part { &mut part } else { &mut out };
                target.push_str(&value.unwrap_or_default());
            }
            '[' => {
                in_part = true;
                part_ok = true;
                part.clear();
            }
            ']' => {
                in_part = false;
                if part_ok {
                    out.push_str(&part);
                }
            }
            c if in_part => part.push(c),
            c => out.push(c),
        }
    }
    tidy(&out)
}

/// One space between words, none before punctuation.
fn tidy(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        if matches!(c, ',' | '.' | '?' | '!' | ';' | ':') && out.ends_with(' ') {
            out.pop();
        }
        out.push(c);
    }
    out
}

/// The intent's `say` with the slots spoken, or `None` when it has none.
pub fn done(intent: &Intent, slots: &BTreeMap<String, SlotValue>) -> Option<String> {
    intent.say.as_ref().map(|t| fill(t, &|n| slot_words(intent, slots, n)))
}

/// The spoken confirmation question: the intent's `confirm_say` (default "Should I <description>,
/// <slot values>?") inside the domain's `confirm` wrapper (default "{question} Say yes or no.").
pub fn confirm_question(domain: &Domain, intent: &Intent, slots: &BTreeMap<String, SlotValue>) -> String {
    let question = match &intent.confirm_say {
        Some(t) => fill(t, &|n| slot_words(intent, slots, n)),
        None => default_question(intent, slots),
    };
    let wrapper = domain.responses.confirm.as_deref().unwrap_or(DEFAULT_CONFIRM);
    fill(wrapper, &|n| (n == "question").then(|| question.clone()))
}

fn default_question(intent: &Intent, slots: &BTreeMap<String, SlotValue>) -> String {
    // "Stop a machine (asks for confirmation)" → "stop a machine".
    let what = intent.description.split('(').next().unwrap_or("").trim().trim_end_matches('.');
    let what = if what.is_empty() { intent.name.replace(['.', '_'], " ") } else { lower_first(what) };
    let values: Vec<String> = intent.slots.iter().filter_map(|s| slot_words(intent, slots, &s.name)).collect();
    if values.is_empty() {
        format!("Should I {what}?")
    } else {
        format!("Should I {what}, {}?", values.join(", "))
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

/// What to say when nothing was understood (`domain`: the one the device serves, if known).
pub fn not_understood(domain: Option<&Domain>) -> String {
    domain.and_then(|d| d.responses.not_understood.clone()).unwrap_or_else(|| DEFAULT_NOT_UNDERSTOOD.to_string())
}

/// The refusal of an out-of-range value of `slot`, from the slot's range: "I can only set the
/// temperature between sixteen and thirty degrees." `None` for a slot without a range.
pub fn refused(domain: &Domain, intent: &Intent, slot: &str) -> Option<String> {
    let s = intent.slot(slot)?;
    let (min, max, unit) = match &s.kind {
        SlotKind::Integer { min, max, unit, .. } | SlotKind::Number { min, max, unit, .. } => {
            (*min, *max, unit.as_deref().map(spoken_unit).unwrap_or_default())
        }
        SlotKind::Duration { min, max } => (*min, *max, String::new()),
        _ => return None,
    };
    if min.is_none() && max.is_none() {
        return None;
    }
    let is_duration = matches!(s.kind, SlotKind::Duration { .. });
    let num = |v: f64| if is_duration { duration_words(v as i64) } else { number_words(v) };
    let with_unit = |v: f64| [num(v), unit.clone()].join(" ").trim().to_string();
    let range = match (min, max) {
        (Some(a), Some(b)) => format!("between {} and {}", num(a), with_unit(b)),
        (Some(a), None) => format!("to at least {}", with_unit(a)),
        (None, Some(b)) => format!("to at most {}", with_unit(b)),
        (None, None) => unreachable!("checked above"),
    };
    let template = domain.responses.refused.as_deref().unwrap_or(DEFAULT_REFUSED);
    Some(fill(template, &|n| match n {
        "slot" => Some(slot.replace('_', " ")),
        "range" => Some(range.clone()),
        "min" => min.map(num),
        "max" => max.map(num),
        "unit" => Some(unit.clone()),
        _ => None,
    }))
}

/// The refusal for a rejected resolution's reason, when a value was out of range (the reason as
/// [`crate::validate`] words it: "<slot> <value> is out of range …"), or the question back when
/// two loaded domains fit the words alike ([`crate::slm::rival_domain`]).
pub fn refused_for_reason(domain: &Domain, intent: &Intent, reason: &str) -> Option<String> {
    if let Some((rival, chosen)) = crate::slm::rival_domains(reason) {
        return Some(format!(
            "For the {} or the {}? Please say it again with one of them.",
            chosen.replace('_', " "),
            rival.replace('_', " ")
        ));
    }
    reason.split("; ").filter(|r| r.contains(" is out of range ")).find_map(|r| {
        let slot = r.split_whitespace().next()?;
        refused(domain, intent, slot)
    })
}

fn slot_words(intent: &Intent, slots: &BTreeMap<String, SlotValue>, name: &str) -> Option<String> {
    let value = slots.get(name)?;
    Some(match intent.slot(name) {
        Some(slot) => spoken_value(slot, value),
        None => value.as_text(),
    })
}

/// A slot value as words to speak.
pub fn spoken_value(slot: &Slot, value: &SlotValue) -> String {
    match (&slot.kind, value) {
        (SlotKind::Duration { .. }, SlotValue::Int(s)) => duration_words(*s),
        (_, SlotValue::Int(i)) => number_words(*i as f64),
        (_, SlotValue::Num(x)) => number_words(*x),
        (SlotKind::Enum(_), SlotValue::Str(s)) => numbers_in_text(&s.replace('_', " ")),
        (_, SlotValue::Str(s)) => s.clone(),
    }
}

/// Unit symbols as spoken.
fn spoken_unit(unit: &str) -> String {
    match unit.trim() {
        "°C" | "C" | "celsius" => "degrees".into(),
        "°F" | "F" => "degrees Fahrenheit".into(),
        "%" => "percent".into(),
        "s" => "seconds".into(),
        "min" => "minutes".into(),
        "km/h" => "kilometres an hour".into(),
        other => other.to_string(),
    }
}

/// Digits inside a phrase as words: "press 1" → "press one".
pub fn numbers_in_text(s: &str) -> String {
    s.split(' ')
        .map(|w| match w.parse::<f64>() {
            Ok(x) if w.chars().all(|c| c.is_ascii_digit() || c == '.') => number_words(x),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration in seconds as words: 4500 → "one hour and fifteen minutes".
pub fn duration_words(seconds: i64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut parts = Vec::new();
    for (n, unit) in [(h, "hour"), (m, "minute"), (s, "second")] {
        if n != 0 {
            parts.push(format!("{} {unit}{}", number_words(n as f64), if n == 1 { "" } else { "s" }));
        }
    }
    match parts.len() {
        0 => "zero seconds".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().expect("two or more");
            format!("{} and {last}", parts.join(", "))
        }
    }
}

/// A number as English words: 21 → "twenty one", 21.5 → "twenty one point five", -3 → "minus
/// three". Decimals are read digit by digit (at most three).
pub fn number_words(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x < 0.0 {
        return format!("minus {}", number_words(-x));
    }
    let whole = x.trunc();
    let mut out = integer_words(whole as u64);
    let frac = format!("{:.3}", x - whole);
    let digits = frac.trim_start_matches('0').trim_start_matches('.').trim_end_matches('0');
    if !digits.is_empty() {
        out.push_str(" point");
        for d in digits.chars() {
            out.push(' ');
            out.push_str(ONES[d.to_digit(10).unwrap_or(0) as usize]);
        }
    }
    out
}

fn integer_words(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].to_string(),
        20..=99 => match n % 10 {
            0 => TENS[(n / 10) as usize].to_string(),
            r => format!("{} {}", TENS[(n / 10) as usize], ONES[r as usize]),
        },
        100..=999 => match n % 100 {
            0 => format!("{} hundred", ONES[(n / 100) as usize]),
            r => format!("{} hundred and {}", ONES[(n / 100) as usize], integer_words(r)),
        },
        _ => {
            let scales = [
                (1_000_000_000_000, "trillion"),
                (1_000_000_000, "billion"),
                (1_000_000, "million"),
                (1_000, "thousand"),
            ];
            let (size, name) = scales.into_iter().find(|(s, _)| n >= *s).expect("n >= 1000");
            let rest = n % size;
            let head = format!("{} {name}", integer_words(n / size));
            match rest {
                0 => head,
                1..=99 => format!("{head} and {}", integer_words(rest)),
                _ => format!("{head} {}", integer_words(rest)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> crate::Intents {
        crate::Intents::shipped()
    }

    fn slots(pairs: &[(&str, SlotValue)]) -> BTreeMap<String, SlotValue> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn numbers_read_as_words() {
        assert_eq!(number_words(21.0), "twenty one");
        assert_eq!(number_words(21.5), "twenty one point five");
        assert_eq!(number_words(-3.0), "minus three");
        assert_eq!(number_words(100.0), "one hundred");
        assert_eq!(number_words(1015.0), "one thousand and fifteen");
        assert_eq!(number_words(86400.0), "eighty six thousand four hundred");
        assert_eq!(duration_words(4500), "one hour and fifteen minutes");
        assert_eq!(duration_words(3661), "one hour, one minute and one second");
        assert_eq!(numbers_in_text("press 1"), "press one");
    }

    #[test]
    fn templates_speak_slots_and_drop_parts_without_values() {
        let i = shipped();
        let t = i.intent("climate.set_temperature").unwrap();
        let said =
            done(t, &slots(&[("temperature", SlotValue::Num(21.5)), ("zone", SlotValue::Str("passenger".into()))]));
        assert_eq!(said.as_deref(), Some("Setting the temperature to twenty one point five degrees for passenger."));
        let order = i.intent("orderDrink").unwrap();
        let said = done(order, &slots(&[("coffeeDrink", SlotValue::Str("latte".into()))])).unwrap();
        assert!(!said.contains("with") && said.contains("latte"), "{said}");
        assert!(!said.contains("  ") && !said.contains(" ."), "{said}");
    }

    #[test]
    fn confirmation_questions_have_the_enum_spoken_and_the_yes_no_prompt() {
        let i = shipped();
        let d = i.domains.iter().find(|d| d.name == "factory").unwrap();
        let stop = i.intent("machine.stop").unwrap();
        let q = confirm_question(d, stop, &slots(&[("machine", SlotValue::Str("press_1".into()))]));
        assert_eq!(q, "Stop press one? Say yes or no.");
    }

    #[test]
    fn defaults_when_a_domain_gives_none() {
        let src = r#"
domain = "bare"
[[intent]]
name = "pump.stop"
description = "Stop a pump (asks first)"
confirm = true
templates = ["stop pump {n}"]
[intent.slots.n]
type = "integer"
min = 1
max = 4
"#;
        let i = crate::Intents::from_sources(&[("bare.toml".into(), src.into())]).unwrap();
        let (d, p) = (&i.domains[0], i.intent("pump.stop").unwrap());
        assert_eq!(done(p, &slots(&[("n", SlotValue::Int(2))])), None);
        assert_eq!(
            confirm_question(d, p, &slots(&[("n", SlotValue::Int(2))])),
            "Should I stop a pump, two? Say yes or no."
        );
        assert_eq!(not_understood(Some(d)), DEFAULT_NOT_UNDERSTOOD);
        assert_eq!(refused(d, p, "n").as_deref(), Some("I can only set the n between one and four."));
    }

    #[test]
    fn refusal_comes_from_the_range_in_the_validators_reason() {
        let i = shipped();
        let d = i.domains.iter().find(|d| d.name == "vehicle").unwrap();
        let r = i.parse("set the temperature to 35 degrees");
        let reason = r.rejected_reason.as_deref().expect("35 is out of range");
        let t = i.intent("climate.set_temperature").unwrap();
        assert_eq!(
            refused_for_reason(d, t, reason).as_deref(),
            Some("I can only set the temperature between sixteen and thirty degrees.")
        );
    }

    #[test]
    fn bad_templates_are_reported_with_their_key() {
        let src = r#"
domain = "bad"
[responses]
confirm = "{qestion} Yes or no?"
refused = "Only {range"
[[intent]]
name = "x.y"
say = "Doing {nope}[ now"
templates = ["do it"]
"#;
        let err = crate::Intents::from_sources(&[("bad.toml".into(), src.into())]).err().unwrap().to_string();
        assert!(err.contains("responses.confirm") && err.contains("{qestion}"), "{err}");
        assert!(err.contains("responses.refused"), "{err}");
        assert!(err.contains("intent[0].say"), "{err}");
    }
}
