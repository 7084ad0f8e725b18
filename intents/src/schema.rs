//! Domain files: TOML, one per domain, checked in full at load (every problem reported at once,
//! naming file, intent, template or key).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sotto_problems::{Problem, Problems};

use crate::error::LoadError;
use crate::grammar::{self, Grammar};
use crate::template::{self, Expr};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    domain: String,
    #[serde(default)]
    description: String,
    /// Expansion rules referenced as `<name>` in templates.
    #[serde(default)]
    rules: BTreeMap<String, String>,
    /// Slot types shared by several intents, referenced by `type = "<name>"`.
    #[serde(default)]
    types: BTreeMap<String, RawSlot>,
    #[serde(default, rename = "intent")]
    intents: Vec<RawIntent>,
    /// What Sotto says when nothing is understood, a value is refused, or it asks to confirm.
    #[serde(default)]
    responses: crate::responses::DomainResponses,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    slots: BTreeMap<String, RawSlot>,
    templates: Vec<String>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    confirm: bool,
    /// The intent answers a question ("is press one running?", "where is the nearest charger?"):
    /// only such intents may be resolved from a question (see [`crate::grounding`]).
    #[serde(default)]
    query: bool,
    /// Confirmation only when these slots have these values (e.g. unlocking, not locking).
    #[serde(default)]
    confirm_when: BTreeMap<String, String>,
    action: Option<RawAction>,
    /// Spoken after the action (`{slot}` in spoken form, see `responses`).
    say: Option<String>,
    /// The spoken confirmation question.
    confirm_say: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    description: String,
    /// Enum: canonical value → spoken synonyms (the canonical value, `_` read as a space, is always one).
    values: Option<BTreeMap<String, Vec<String>>>,
    min: Option<f64>,
    max: Option<f64>,
    unit: Option<String>,
    /// A bare fraction means a share of 100: "half" → 50.
    percent: Option<bool>,
    max_words: Option<usize>,
    default: Option<toml::Value>,
    required: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    topic: String,
    payload: Option<toml::Table>,
    #[serde(default)]
    qos: u8,
    #[serde(default)]
    retain: bool,
    expiry_s: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct EnumValue {
    pub canonical: String,
    pub synonyms: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum SlotKind {
    Enum(Vec<EnumValue>),
    Integer { min: Option<f64>, max: Option<f64>, unit: Option<String>, percent: bool },
    Number { min: Option<f64>, max: Option<f64>, unit: Option<String>, percent: bool },
    Duration { min: Option<f64>, max: Option<f64> },
    Text { max_words: usize },
}

impl SlotKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            SlotKind::Enum(_) => "enum",
            SlotKind::Integer { .. } => "integer",
            SlotKind::Number { .. } => "number",
            SlotKind::Duration { .. } => "duration",
            SlotKind::Text { .. } => "text",
        }
    }
}

/// A slot value after validation: enums and text are strings, numbers keep their type.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SlotValue {
    Int(i64),
    Num(f64),
    Str(String),
}

impl SlotValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            SlotValue::Int(i) => serde_json::Value::from(*i),
            SlotValue::Num(f) => serde_json::Value::from(*f),
            SlotValue::Str(s) => serde_json::Value::from(s.clone()),
        }
    }

    pub fn as_text(&self) -> String {
        match self {
            SlotValue::Int(i) => i.to_string(),
            SlotValue::Num(f) => f.to_string(),
            SlotValue::Str(s) => s.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Slot {
    pub name: String,
    pub description: String,
    pub kind: SlotKind,
    pub required: bool,
    pub default: Option<SlotValue>,
}

#[derive(Debug, Clone)]
pub struct Action {
    /// `{slot}` and `{site_id}` are substituted.
    pub topic: String,
    /// A string that is exactly `"{slot}"` becomes the typed slot value; other strings interpolate.
    pub payload: serde_json::Value,
    pub qos: u8,
    pub retain: bool,
    pub expiry_s: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub domain: String,
    pub description: String,
    pub slots: Vec<Slot>,
    pub templates: Vec<Expr>,
    pub examples: Vec<String>,
    pub confirm: bool,
    /// Questions may resolve to it (it reports, it does not change anything).
    pub query: bool,
    pub confirm_when: BTreeMap<String, String>,
    pub action: Option<Action>,
    /// Spoken response templates (see [`crate::responses`]).
    pub say: Option<String>,
    pub confirm_say: Option<String>,
}

impl Intent {
    pub fn slot(&self, name: &str) -> Option<&Slot> {
        self.slots.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Domain {
    pub name: String,
    pub description: String,
    pub file: String,
    pub rules: BTreeMap<String, Expr>,
    pub intents: Vec<Intent>,
    pub responses: crate::responses::DomainResponses,
}

/// The shipped domain files, embedded so an installed binary needs no data directory.
pub const SHIPPED: &[(&str, &str)] = &[
    ("vehicle.toml", include_str!("../domains/vehicle.toml")),
    ("factory.toml", include_str!("../domains/factory.toml")),
    ("home.toml", include_str!("../domains/home.toml")),
    ("barista.toml", include_str!("../domains/barista.toml")),
];

/// Reads every `*.toml` of the given files and directories (directories sorted by name).
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<(String, String)>, LoadError> {
    let mut sources = Vec::new();
    for path in paths {
        let io = |source| LoadError::Io { path: path.clone(), source };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(LoadError::NoDomains(path.clone()));
            }
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Io { path: f.clone(), source })?;
                sources.push((f.display().to_string(), text));
            }
        } else {
            sources.push((path.display().to_string(), std::fs::read_to_string(path).map_err(io)?));
        }
    }
    Ok(sources)
}

/// Parses and validates domain sources `(file name, TOML text)`; intent names must be unique
/// across all of them.
pub fn load_domains(sources: &[(String, String)]) -> Result<Vec<Domain>, LoadError> {
    load(sources).map(|(domains, _)| domains)
}

/// [`load_domains`], and the domains' intents compiled (in the same order): the compiler's
/// problems (rules nested too deep or in a cycle, templates that expand too far) are reported
/// with the others.
pub fn load(sources: &[(String, String)]) -> Result<(Vec<Domain>, Grammar), LoadError> {
    let mut issues = Problems::new();
    let mut grammar = Grammar::default();
    let mut domains = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for (file, text) in sources {
        // Every unknown key and wrong type of the file at once; a file that cannot be read as a
        // domain at all (syntax, a required key) is skipped after its problems are noted.
        let mut found = Problems::new();
        let raw: Option<RawDomain> = sotto_problems::from_toml_lenient(text, &mut found);
        issues.extend(found.into_iter().map(|p| Problem::new(key_in(file, Some(&p.key)), p.message)));
        let Some(raw) = raw else { continue };
        let domain = check_domain(file, raw, &mut grammar, &mut issues);
        for intent in &domain.intents {
            if !seen.insert(intent.name.clone()) {
                issues.push(issue(
                    file,
                    Some(&intent.name),
                    None,
                    None,
                    "intent name already used by another intent or domain",
                ));
            }
        }
        domains.push(domain);
    }
    if issues.is_empty() {
        Ok((domains, grammar))
    } else {
        Err(LoadError::Schema(issues))
    }
}

/// `file:key.path`, or the file alone when the problem is not tied to one key.
fn key_in(file: &str, key: Option<&str>) -> String {
    match key {
        Some(key) if !key.is_empty() => format!("{file}:{key}"),
        _ => file.to_string(),
    }
}

fn issue(
    file: &str,
    intent: Option<&str>,
    template: Option<&str>,
    key: Option<String>,
    message: impl Into<String>,
) -> Problem {
    let mut context = String::new();
    if let Some(intent) = intent {
        context += &format!("intent `{intent}`: ");
    }
    if let Some(template) = template {
        context += &format!("template \"{template}\": ");
    }
    Problem::new(key_in(file, key.as_deref()), context + &message.into())
}

fn check_domain(file: &str, raw: RawDomain, grammar: &mut Grammar, issues: &mut Problems) -> Domain {
    let mut rules = BTreeMap::new();
    for (name, text) in &raw.rules {
        match template::parse(text) {
            Ok(e) => {
                let mut slots = Vec::new();
                e.slots(&mut slots);
                if !slots.is_empty() {
                    issues.push(issue(
                        file,
                        None,
                        Some(text),
                        Some(format!("rules.{name}")),
                        "rules cannot reference slots",
                    ));
                }
                rules.insert(name.clone(), e);
            }
            Err(e) => issues.push(issue(file, None, Some(text), Some(format!("rules.{name}")), e.to_string())),
        }
    }
    for (name, e) in &rules {
        let mut refs = Vec::new();
        e.rules(&mut refs);
        for x in refs.into_iter().filter(|x| !rules.contains_key(x)) {
            issues.push(issue(file, None, None, Some(format!("rules.{name}")), format!("unknown rule <{x}>")));
        }
    }
    // Rules may reference rules, neither in a cycle nor deeper than the compiler expands; each
    // is checked (by compiling it) even when no template uses it.
    for (name, problem) in grammar::check_rules(&rules) {
        issues.push(issue(file, None, None, Some(format!("rules.{name}")), problem.to_string()));
    }
    let mut intents = Vec::new();
    for (index, ri) in raw.intents.into_iter().enumerate() {
        let name = ri.name.clone();
        let at = |k: &str| Some(format!("intent[{index}].{k}"));
        let problems_before = issues.len();
        let mut slots = Vec::new();
        for (slot_name, rs) in &ri.slots {
            let key = format!("intent[{index}].slots.{slot_name}");
            let resolved = match raw.types.get(&rs.kind) {
                Some(shared) => merge_shared(shared, rs),
                None => rs.clone(),
            };
            match check_slot(slot_name, &resolved) {
                Ok(s) => slots.push(s),
                Err(msg) => issues.push(issue(file, Some(&name), None, Some(key), msg)),
            }
        }
        let mut templates = Vec::new();
        if ri.templates.is_empty() {
            issues.push(issue(file, Some(&name), None, at("templates"), "at least one template is required"));
        }
        for t in &ri.templates {
            match template::parse(t) {
                Ok(e) => {
                    let mut refs = Vec::new();
                    e.slots(&mut refs);
                    for r in refs {
                        if !slots.iter().any(|s| s.name == r) && !ri.slots.contains_key(&r) {
                            issues.push(issue(file, Some(&name), Some(t), None, format!("unknown slot {{{r}}}")));
                        }
                    }
                    let mut rule_refs = Vec::new();
                    e.rules(&mut rule_refs);
                    for r in rule_refs {
                        if !rules.contains_key(&r) {
                            issues.push(issue(file, Some(&name), Some(t), None, format!("unknown rule <{r}>")));
                        }
                    }
                    templates.push(e);
                }
                Err(e) => issues.push(issue(file, Some(&name), Some(t), None, e.to_string())),
            }
        }
        // Compiled here, once, so that its size is the real one and the problems come with the
        // file's others; only when its slots and templates are sound (else the load fails anyway).
        if issues.len() == problems_before {
            match grammar.add_intent(&templates, &rules, &slots) {
                // Reported at the rule by the rule check above.
                Err(e) if e.is_in_a_rule() => {}
                Err(e) => issues.push(issue(file, Some(&name), None, at("templates"), e.to_string())),
                Ok(()) => {}
            }
        }
        for (slot, value) in &ri.confirm_when {
            let ok = slots.iter().any(|s| {
                s.name == *slot && matches!(&s.kind, SlotKind::Enum(v) if v.iter().any(|x| &x.canonical == value))
            });
            if !ok {
                issues.push(issue(
                    file,
                    Some(&name),
                    None,
                    at("confirm_when"),
                    format!("`{slot} = {value}` is not an enum slot value of this intent"),
                ));
            }
        }
        let action = ri.action.map(|ra| {
            let mut placeholders = Vec::new();
            collect_placeholders(&ra.topic, &mut placeholders);
            let payload = toml_to_json(&toml::Value::Table(ra.payload.unwrap_or_default()));
            collect_json_placeholders(&payload, &mut placeholders);
            for p in placeholders {
                if p != "site_id" && p != "intent" && !slots.iter().any(|s| s.name == p) {
                    issues.push(issue(
                        file,
                        Some(&name),
                        None,
                        at("action"),
                        format!("placeholder {{{p}}} is neither a slot nor site_id/intent"),
                    ));
                }
            }
            if ra.qos > 2 {
                issues.push(issue(
                    file,
                    Some(&name),
                    None,
                    at("action.qos"),
                    format!("qos {} is not 0, 1 or 2", ra.qos),
                ));
            }
            Action { topic: ra.topic, payload, qos: ra.qos, retain: ra.retain, expiry_s: ra.expiry_s }
        });
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            issues.push(issue(file, Some(&name), None, at("name"), "intent names are non-empty and have no spaces"));
        }
        intents.push(Intent {
            name,
            domain: raw.domain.clone(),
            description: ri.description,
            slots,
            templates,
            examples: ri.examples,
            confirm: ri.confirm,
            query: ri.query,
            confirm_when: ri.confirm_when,
            action,
            say: ri.say,
            confirm_say: ri.confirm_say,
        });
    }
    if intents.is_empty() {
        issues.push(issue(file, None, None, None, "no [[intent]] defined"));
    }
    let indexed: Vec<(usize, &Intent)> = intents.iter().enumerate().collect();
    for (key, message) in crate::responses::check(&raw.responses, &indexed) {
        issues.push(issue(file, None, None, Some(key), message));
    }
    let responses = raw.responses;
    Domain { name: raw.domain, description: raw.description, file: file.to_string(), rules, intents, responses }
}

/// An intent slot that names a shared type inherits it; its own keys (default, required) win.
fn merge_shared(shared: &RawSlot, own: &RawSlot) -> RawSlot {
    let mut s = shared.clone();
    if !own.description.is_empty() {
        s.description = own.description.clone();
    }
    s.values = own.values.clone().or(s.values);
    s.min = own.min.or(s.min);
    s.max = own.max.or(s.max);
    s.unit = own.unit.clone().or(s.unit);
    s.percent = own.percent.or(s.percent);
    s.max_words = own.max_words.or(s.max_words);
    s.default = own.default.clone().or(s.default);
    s.required = own.required.or(s.required);
    s
}

fn check_slot(name: &str, rs: &RawSlot) -> Result<Slot, String> {
    let unused = |what: &str, present: bool| {
        if present {
            Err(format!("`{what}` does not apply to a {} slot", rs.kind))
        } else {
            Ok(())
        }
    };
    let kind = match rs.kind.as_str() {
        "enum" => {
            unused("min/max", rs.min.is_some() || rs.max.is_some())?;
            let values = rs.values.as_ref().ok_or("enum slot needs `values`")?;
            if values.is_empty() {
                return Err("enum slot has no values".into());
            }
            SlotKind::Enum(
                values
                    .iter()
                    .map(|(canonical, syn)| {
                        let mut synonyms = vec![canonical.replace('_', " ").trim().to_string()];
                        synonyms.extend(syn.iter().map(|s| s.trim().to_string()));
                        synonyms.dedup();
                        EnumValue { canonical: canonical.clone(), synonyms }
                    })
                    .collect(),
            )
        }
        "integer" | "number" | "duration" => {
            unused("values", rs.values.is_some())?;
            if let (Some(a), Some(b)) = (rs.min, rs.max) {
                if a > b {
                    return Err(format!("min {a} is greater than max {b}"));
                }
            }
            let percent = rs.percent.unwrap_or(false);
            match rs.kind.as_str() {
                "integer" => SlotKind::Integer { min: rs.min, max: rs.max, unit: rs.unit.clone(), percent },
                "number" => SlotKind::Number { min: rs.min, max: rs.max, unit: rs.unit.clone(), percent },
                _ => SlotKind::Duration { min: rs.min, max: rs.max },
            }
        }
        "text" => {
            unused("values", rs.values.is_some())?;
            SlotKind::Text { max_words: rs.max_words.unwrap_or(12) }
        }
        other => {
            return Err(format!(
                "unknown slot type `{other}` (enum, integer, number, duration, text or a [types] name)"
            ))
        }
    };
    let default = match &rs.default {
        None => None,
        Some(v) => Some(check_value(&kind, v).map_err(|m| format!("default: {m}"))?),
    };
    Ok(Slot {
        name: name.to_string(),
        description: rs.description.clone(),
        required: rs.required.unwrap_or(default.is_none()),
        kind,
        default,
    })
}

fn check_value(kind: &SlotKind, v: &toml::Value) -> Result<SlotValue, String> {
    match (kind, v) {
        (SlotKind::Enum(values), toml::Value::String(s)) => {
            if values.iter().any(|x| &x.canonical == s) {
                Ok(SlotValue::Str(s.clone()))
            } else {
                Err(format!("`{s}` is not one of the enum values"))
            }
        }
        (SlotKind::Text { .. }, toml::Value::String(s)) => Ok(SlotValue::Str(s.clone())),
        (SlotKind::Integer { .. } | SlotKind::Duration { .. }, toml::Value::Integer(i)) => Ok(SlotValue::Int(*i)),
        (SlotKind::Number { .. }, toml::Value::Integer(i)) => Ok(SlotValue::Num(*i as f64)),
        (SlotKind::Number { .. }, toml::Value::Float(f)) => Ok(SlotValue::Num(*f)),
        _ => Err(format!("{v} does not fit a {} slot", kind.type_name())),
    }
}

fn collect_placeholders(s: &str, out: &mut Vec<String>) {
    let mut rest = s;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { break };
        out.push(rest[start + 1..start + len].to_string());
        rest = &rest[start + len + 1..];
    }
}

fn collect_json_placeholders(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => collect_placeholders(s, out),
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_json_placeholders(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_json_placeholders(x, out)),
        _ => {}
    }
}

fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => s.clone().into(),
        toml::Value::Integer(i) => (*i).into(),
        toml::Value::Float(f) => (*f).into(),
        toml::Value::Boolean(b) => (*b).into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(a) => a.iter().map(toml_to_json).collect::<Vec<_>>().into(),
        toml::Value::Table(t) => {
            t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect::<serde_json::Map<_, _>>().into()
        }
    }
}

/// Fills an action's topic and payload templates with validated slot values.
pub fn render_action(
    action: &Action,
    intent: &str,
    slots: &BTreeMap<String, SlotValue>,
    site_id: &str,
) -> (String, serde_json::Value) {
    let lookup = |name: &str| -> Option<SlotValue> {
        match name {
            "site_id" => Some(SlotValue::Str(site_id.to_string())),
            "intent" => Some(SlotValue::Str(intent.to_string())),
            _ => slots.get(name).cloned(),
        }
    };
    let interpolate = |s: &str| -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else { break };
            let name = &rest[start + 1..start + len];
            out.push_str(&lookup(name).map(|v| v.as_text()).unwrap_or_default());
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    };
    fn walk(v: &serde_json::Value, f: &dyn Fn(&str) -> serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Array(a) => a.iter().map(|x| walk(x, f)).collect::<Vec<_>>().into(),
            serde_json::Value::Object(o) => {
                o.iter().map(|(k, x)| (k.clone(), walk(x, f))).collect::<serde_json::Map<_, _>>().into()
            }
            other => other.clone(),
        }
    }
    let whole = |s: &str| -> serde_json::Value {
        if s.starts_with('{') && s.ends_with('}') && s[1..s.len() - 1].chars().all(|c| c != '{' && c != '}') {
            return lookup(&s[1..s.len() - 1]).map(|v| v.to_json()).unwrap_or(serde_json::Value::Null);
        }
        interpolate(s).into()
    };
    (interpolate(&action.topic), walk(&action.payload, &whole))
}

pub fn shipped_sources() -> Vec<(String, String)> {
    SHIPPED.iter().map(|(n, t)| (format!("intents/domains/{n}"), t.to_string())).collect()
}

pub fn domain_file_name(path: &Path) -> String {
    path.display().to_string()
}
