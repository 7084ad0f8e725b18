//! Validation after either resolver: types, ranges, enum values, required slots, defaults.
//! Whatever fails here is rejected with a reason and never becomes an action.

use std::collections::BTreeMap;

use crate::matcher::Extracted;
use crate::numbers::SpokenNumber;
use crate::schema::{Intent, SlotKind, SlotValue};

fn range_text(min: Option<f64>, max: Option<f64>, unit: &Option<String>) -> String {
    let fmt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let unit = unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default();
    format!("{}..{}{}", fmt(min), fmt(max), unit)
}

fn in_range(v: f64, min: Option<f64>, max: Option<f64>) -> bool {
    min.is_none_or(|m| v >= m) && max.is_none_or(|m| v <= m)
}

/// A number as the slot means it: a bare fraction of a percentage is a share of 100, and "max" or
/// "minimum" (±∞ from [`crate::numbers`]) is the slot's bound, which a slot without one cannot serve.
fn slot_number(name: &str, n: &SpokenNumber, min: Option<f64>, max: Option<f64>, percent: bool) -> Result<f64, String> {
    match n.value {
        v if v == f64::INFINITY => max.ok_or_else(|| format!("{name} has no maximum to set")),
        v if v == f64::NEG_INFINITY => min.ok_or_else(|| format!("{name} has no minimum to set")),
        v if percent && n.fraction_only => Ok(v * 100.0),
        v => Ok(v),
    }
}

/// The reason given when a required slot was not said: the question to ask back.
pub fn missing(slot: &str) -> String {
    format!("which {}? (missing required slot {slot})", slot.replace('_', " "))
}

/// Checks one extracted value against its slot type.
pub fn check_slot(intent: &Intent, name: &str, value: &Extracted) -> Result<SlotValue, String> {
    let slot = intent.slot(name).ok_or_else(|| format!("intent {} has no slot `{name}`", intent.name))?;
    match (&slot.kind, value) {
        (SlotKind::Enum(values), Extracted::Enum(v) | Extracted::Text(v)) => {
            // Canonical names and spoken synonyms are both accepted (the language model may use either).
            let norm = v.trim().to_lowercase();
            values
                .iter()
                .find(|x| {
                    x.canonical == *v
                        || x.canonical.to_lowercase() == norm
                        || x.synonyms.iter().any(|s| s.to_lowercase() == norm)
                })
                .map(|x| SlotValue::Str(x.canonical.clone()))
                .ok_or_else(|| {
                    let all: Vec<&str> = values.iter().map(|x| x.canonical.as_str()).collect();
                    format!("{name} `{v}` is not one of {}", all.join(", "))
                })
        }
        (SlotKind::Integer { min, max, unit, percent }, Extracted::Number(n)) => {
            let v = slot_number(name, n, *min, *max, *percent)?;
            if v.fract() != 0.0 {
                return Err(format!("{name} {v} is not a whole number"));
            }
            if !in_range(v, *min, *max) {
                return Err(format!("{name} {v} is out of range {}", range_text(*min, *max, unit)));
            }
            Ok(SlotValue::Int(v as i64))
        }
        (SlotKind::Number { min, max, unit, percent }, Extracted::Number(n)) => {
            let v = slot_number(name, n, *min, *max, *percent)?;
            if !in_range(v, *min, *max) {
                return Err(format!("{name} {v} is out of range {}", range_text(*min, *max, unit)));
            }
            Ok(SlotValue::Num(v))
        }
        (
            SlotKind::Duration { min, max },
            Extracted::Duration(s) | Extracted::Number(SpokenNumber { value: s, .. }),
        ) => {
            if !s.is_finite() {
                return Err(format!("{name} {s} is no duration"));
            }
            let s = s.round();
            if !in_range(s, *min, *max) {
                return Err(format!("{name} {s} s is out of range {} s", range_text(*min, *max, &None)));
            }
            Ok(SlotValue::Int(s as i64))
        }
        (SlotKind::Text { max_words }, Extracted::Text(t)) => {
            let t = t.trim();
            if t.is_empty() {
                return Err(format!("{name} is empty"));
            }
            if t.split_whitespace().count() > *max_words {
                return Err(format!("{name} is longer than {max_words} words"));
            }
            Ok(SlotValue::Str(t.to_string()))
        }
        (kind, other) => Err(format!("{name} {other:?} does not fit a {} slot", kind.type_name())),
    }
}

/// All slots of an intent checked, defaults filled in, required ones present. Errors are joined.
pub fn validate(intent: &Intent, found: &BTreeMap<String, Extracted>) -> Result<BTreeMap<String, SlotValue>, String> {
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, value) in found {
        match check_slot(intent, name, value) {
            Ok(v) => {
                out.insert(name.clone(), v);
            }
            Err(e) => errors.push(e),
        }
    }
    for slot in &intent.slots {
        if out.contains_key(&slot.name) || found.contains_key(&slot.name) {
            continue;
        }
        if let Some(d) = &slot.default {
            out.insert(slot.name.clone(), d.clone());
        } else if slot.required {
            errors.push(missing(&slot.name));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("; "))
    }
}

/// Whether this validated request must be confirmed before it is executed.
pub fn needs_confirmation(intent: &Intent, slots: &BTreeMap<String, SlotValue>) -> bool {
    if intent.confirm {
        return true;
    }
    !intent.confirm_when.is_empty()
        && intent.confirm_when.iter().all(|(k, v)| slots.get(k) == Some(&SlotValue::Str(v.clone())))
}
