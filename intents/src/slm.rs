//! The language-model fallback: function calling with a small (4-bit) model for what the grammar
//! does not match.
//!
//! Two steps, both against a fixed prompt whose prefix the worker keeps in its KV cache: a few-shot
//! prompt (functions and worked examples) for the base model, or the short prompt a distilled
//! adapter was trained on ([`PromptMode::Short`], tools/distil):
//! 1. choose the function: the intents sharing words with the request ([`crate::shortlist`], a
//!    few at most; none at all means out of domain, and the model is not asked) and `none` are
//!    scored as continuations, and the scores are calibrated against the model's prior (the same
//!    choices scored for an empty request, cached), so a base model does not pick one favourite;
//! 2. fill the arguments: generation constrained by a GBNF grammar generated from the schema
//!    (this intent's slots only, enum values only, numbers in range).
//!
//! The result goes through the same validation as the grammar's, so the model can never cause
//! an action outside the schema.

use std::collections::BTreeMap;

use crate::error::SlmError;
use crate::grounding::Heard;
use crate::matcher::Extracted;
use crate::numbers::SpokenNumber;
use crate::schema::{EnumValue, Intent, Slot, SlotKind, SlotValue};
use crate::{Intents, Resolution, Resolver};

/// Output constraint for generation (mirrors the worker's `Grammar`).
#[derive(Debug, Clone, PartialEq)]
pub enum Grammar {
    Gbnf(String),
    JsonSchema(String),
    Lark(String),
}

/// A blocking language model; the daemon adapts the SLM worker client to it.
pub trait LanguageModel {
    /// Continuation of `prompt`, constrained by `grammar` when given.
    fn generate(&mut self, prompt: &str, grammar: Option<&Grammar>, max_tokens: u32) -> Result<String, SlmError>;
    /// Log-probability of each candidate as the continuation of `prompt`.
    fn score(&mut self, prompt: &str, candidates: &[String]) -> Result<Vec<f32>, SlmError>;
    /// Log-probability of each candidate as a choice among `among` (every continuation the model
    /// could be choosing, the candidates included): a model may stop scoring a candidate at the
    /// first token no other continuation shares, since the rest only spells out that choice. By
    /// default the whole candidates, which ranks them the same when those tokens are certain.
    fn score_choice(&mut self, prompt: &str, candidates: &[String], among: &[String]) -> Result<Vec<f32>, SlmError> {
        let _ = among;
        self.score(prompt, candidates)
    }
}

/// Which prompt the model is asked with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptMode {
    /// The functions, worked examples and `none` examples: for a general base model.
    #[default]
    FewShot,
    /// One instruction line and the request: for a model fine-tuned on the loaded domains
    /// (tools/distil trains on exactly this prompt), which knows the functions already. Much
    /// shorter, so faster, and no example can leak into an answer.
    Short,
}

#[derive(Debug, Clone)]
pub struct SlmConfig {
    /// Subtract the prior (scores on an empty request) from the choice scores.
    pub calibrate: bool,
    /// Minimum calibrated log-probability margin of the winner over `none`. 4 on the shipped
    /// paraphrase and out-of-domain sets with Gemma 3 270M: near-domain remarks ("the fan club
    /// meets on tuesday") given an intent fell from 6 of 7 to 2, requests served rose
    /// (`slm_eval --min-margin`).
    pub min_margin: f32,
    /// Minimum log-probability margin of the winner over the best other intent (0 = none): two
    /// intents the model cannot tell apart are a question, not an action.
    pub rival_margin: f32,
    /// Refuse the model's choice when nothing in the request points at its domain rather than at
    /// another loaded domain's intent that could be served by what was heard ([`rival_domain`]):
    /// "bring the heat up to twenty four" with a house and a car loaded is a question, not an
    /// action. On with the distilled adapter ([`SlmConfig::distilled`], the default config's);
    /// off for the base model asked with examples, where it was never measured (docs/grounding.md).
    pub refuse_domain_rivals: bool,
    /// Refuse a query intent (`query = true`, it reports) that the model chose when no word of
    /// the request is its own, beyond the values it names: "mark press one as faulty, the
    /// button is stuck" asks for no status report. On with the distilled adapter, as
    /// `refuse_domain_rivals` (docs/grounding.md).
    pub query_needs_own_word: bool,
    pub max_tokens: u32,
    /// Candidates the model chooses among (plus `none`), from [`crate::shortlist`]; `0` scores
    /// every declared intent and also asks the model when no word matches.
    pub shortlist: usize,
    pub prompt: PromptMode,
}

impl Default for SlmConfig {
    fn default() -> Self {
        SlmConfig {
            calibrate: true,
            min_margin: 4.0,
            rival_margin: 0.0,
            refuse_domain_rivals: false,
            query_needs_own_word: false,
            max_tokens: 48,
            shortlist: 4,
            prompt: PromptMode::FewShot,
        }
    }
}

impl SlmConfig {
    /// For the base model with a distilled adapter (tools/distil): the short prompt it was trained
    /// on, and no calibration (the fine-tuned model has no favourite to correct for). A margin of
    /// 3 over `none`, chosen on the adapter's generated held-out split (docs/distil.md): 1 served
    /// 69.9% exactly with 30 wrong actions, 3 66.1% with 13, 5 55.7% with 5.
    pub fn distilled() -> Self {
        SlmConfig {
            calibrate: false,
            min_margin: 3.0,
            prompt: PromptMode::Short,
            refuse_domain_rivals: true,
            query_needs_own_word: true,
            ..SlmConfig::default()
        }
    }
}

const NONE: &str = "none";
const MAX_LISTED_VALUES: usize = 8;

fn slot_signature(intent: &Intent) -> String {
    let mut parts = Vec::new();
    for s in &intent.slots {
        let ty = match &s.kind {
            // Long value lists are cut in the prompt (the grammar still lists them all), or a few
            // domains overflow a small model's 2048-token context.
            SlotKind::Enum(v) if v.len() > MAX_LISTED_VALUES => {
                let shown: Vec<&str> = v.iter().take(MAX_LISTED_VALUES).map(|x| x.canonical.as_str()).collect();
                format!("{}|…", shown.join("|"))
            }
            SlotKind::Enum(v) => v.iter().map(|x| x.canonical.as_str()).collect::<Vec<_>>().join("|"),
            SlotKind::Integer { min, max, unit, .. } | SlotKind::Number { min, max, unit, .. } => format!(
                "{} {}..{}{}",
                s.kind.type_name(),
                min.map(|x| x.to_string()).unwrap_or_default(),
                max.map(|x| x.to_string()).unwrap_or_default(),
                unit.as_deref().map(|u| format!(" {u}")).unwrap_or_default()
            ),
            SlotKind::Duration { .. } => "seconds".to_string(),
            SlotKind::Text { .. } => "text".to_string(),
        };
        let default = s.default.as_ref().map(|d| format!(" = {}", d.as_text())).unwrap_or_default();
        let optional = if !s.required && s.default.is_none() { "?" } else { "" };
        parts.push(format!("{}{optional}: {ty}{default}", s.name));
    }
    parts.join(", ")
}

fn call_json(intent: &str, slots: &BTreeMap<String, SlotValue>, order: &[String]) -> String {
    let mut out = format!("{{\"intent\": \"{intent}\"");
    for name in order {
        if let Some(v) = slots.get(name) {
            out.push_str(&format!(", \"{name}\": {}", v.to_json()));
        }
    }
    out.push('}');
    out
}

/// The fixed prompt prefix: functions, then worked examples (labelled by the grammar matcher,
/// so they always agree with the schema), then out-of-scope examples answered `none`.
pub fn prompt_prefix(intents: &Intents) -> String {
    let mut p = String::from(
        "Map each request to one function call in JSON. Use only these functions and values. \
         If no function fits the request, answer {\"intent\": \"none\"}.\n\nFunctions:\n",
    );
    for i in intents.intents() {
        p.push_str(&format!("- {}({}): {}\n", i.name, slot_signature(i), i.description));
    }
    p.push('\n');
    let mut shots = Vec::new();
    // Two examples each fit a domain or two in a 2048-token context; more domains get one each.
    let per_intent = if intents.intents().len() <= 10 { 2 } else { 1 };
    for i in intents.intents() {
        for e in i.examples.iter().take(per_intent) {
            let r = intents.parse(e);
            if r.accepted() && r.intent.as_deref() == Some(&i.name) {
                let order: Vec<String> = i.slots.iter().map(|s| s.name.clone()).collect();
                shots.push((e.clone(), call_json(&i.name, &r.slots, &order)));
            }
        }
    }
    // Out-of-scope requests interleaved so "none" is a familiar answer.
    let nones = ["what is the meaning of life", "tell me a joke", "who won the game last night"];
    for (k, n) in nones.iter().enumerate() {
        let at = ((k + 1) * shots.len() / (nones.len() + 1)).min(shots.len());
        shots.insert(at, (n.to_string(), format!("{{\"intent\": \"{NONE}\"}}")));
    }
    for (req, call) in shots {
        p.push_str(&format!("Request: {req}\nCall: {call}\n"));
    }
    p
}

/// The short prompt's instruction: tools/distil/generate.py trains on exactly this text (a test
/// reads it from there, so the two cannot drift apart).
pub const SHORT_INSTRUCTION: &str = "Map the request to one function call in JSON. \
     If it is not a command for this device, answer {\"intent\": \"none\"}.\n\n";

/// Context (tokens) for the short prompt: its instruction, a request of up to a few hundred
/// tokens, the answer, and the scoring candidates' own cells. The worker's default (2048) is for
/// the few-shot prompt; at 512 its key-value cache and attention buffers take 28 MiB less
/// (benchmark with the adapter, peak 460 vs 432 MiB). A longer request gets the worker's error
/// and the grammar's answer, never a truncated prompt.
pub const SHORT_PROMPT_CONTEXT: u32 = 512;

/// The fixed part of the prompt in `mode`.
pub fn prompt_for(intents: &Intents, mode: PromptMode) -> String {
    match mode {
        PromptMode::FewShot => prompt_prefix(intents),
        PromptMode::Short => SHORT_INSTRUCTION.to_string(),
    }
}

/// The whole prompt for a request: the model continues with the intent name (step 1 scores it)
/// and the arguments (step 2 generates them).
pub fn request_prompt(prefix: &str, text: &str) -> String {
    format!("{prefix}Request: {}\nCall: {{\"intent\": \"", text.trim())
}

/// Grammar notations the workers accept for generated arguments. Both quote literals the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notation {
    /// llama.cpp's GBNF.
    Gbnf,
    /// llguidance's Lark dialect: the worker can then append the tokens the grammar forces (the
    /// `", "name": ` between values) in one step instead of generating them one by one.
    Lark,
}

impl Notation {
    fn rule(self, name: &str, body: &str) -> String {
        match self {
            Notation::Gbnf => format!("{name} ::= {body}"),
            Notation::Lark => format!("{name}: {body}"),
        }
    }

    fn start(self) -> &'static str {
        match self {
            Notation::Gbnf => "root",
            Notation::Lark => "start",
        }
    }

    /// A character-level pattern: GBNF writes classes inline, Lark needs a regex terminal.
    fn pattern(self, gbnf: &str, regex: &str) -> String {
        match self {
            Notation::Gbnf => gbnf.to_string(),
            Notation::Lark => format!("/{regex}/"),
        }
    }

    fn wrap(self, source: String) -> Grammar {
        match self {
            Notation::Gbnf => Grammar::Gbnf(source),
            Notation::Lark => Grammar::Lark(source),
        }
    }
}

fn literal(s: &str) -> String {
    let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// JSON literal of a string as a grammar literal: `"\"value\""`.
fn json_string_literal(s: &str) -> String {
    literal(&format!("\"{s}\""))
}

fn number_rule(notation: Notation, min: Option<f64>, max: Option<f64>, integer: bool) -> String {
    // Small integer ranges are listed value by value; others get a digit pattern and validation.
    if let (Some(lo), Some(hi)) = (min, max) {
        if hi - lo <= 200.0 && lo >= 0.0 {
            let alts: Vec<String> =
                ((lo.ceil() as i64)..=(hi.floor() as i64)).map(|v| literal(&v.to_string())).collect();
            let frac =
                if integer { String::new() } else { format!(" (\".\" {})?", notation.pattern("[0-9]", "[0-9]")) };
            return format!("({}){frac}", alts.join(" | "));
        }
    }
    let sign = if min.is_some_and(|m| m >= 0.0) { "" } else { "-?" };
    let frac = if integer { "" } else { r"(\.[0-9]{1,2})?" };
    match notation {
        Notation::Gbnf => {
            let frac = if integer { "" } else { " (\".\" [0-9]{1,2})?" };
            let sign = if sign.is_empty() { "" } else { "\"-\"? " };
            format!("{sign}[0-9]{{1,6}}{frac}")
        }
        Notation::Lark => format!("/{sign}[0-9]{{1,6}}{frac}/"),
    }
}

/// Grammar for the rest of a call once `{"intent": "<name>` is in the prompt: this intent's slots
/// only, in declaration order, each optional one optional.
pub fn arguments_grammar(intent: &Intent, notation: Notation) -> Grammar {
    arguments_grammar_heard(intent, notation, None)
}

/// The words of one request, for [`arguments_grammar_heard`]: `in_vocabulary` says whether a
/// word is one of the loaded domains' (a heard word of the vocabulary stands only for itself).
pub struct Request<'a> {
    pub heard: &'a Heard,
    pub in_vocabulary: &'a dyn Fn(&str) -> bool,
}

/// [`arguments_grammar`] for one request: the model chooses among the values grounding would
/// accept instead of writing one that grounding then refuses ("fifteen minutes" cannot become
/// 600 s, "my side" cannot be left out for the default zone). A number or a duration can only be
/// one that was said, free text only a span of the words, an enum value only one heard clearly
/// when any was. A slot with a default must be given when another of its values was heard
/// clearly. A required number or text nothing was heard for keeps the open rule, so that
/// grounding names what is missing; an optional one cannot be given at all.
pub fn arguments_grammar_heard(intent: &Intent, notation: Notation, request: Option<&Request>) -> Grammar {
    let mut rules = Vec::new();
    let mut root = vec![literal("\"")];
    for (k, s) in intent.slots.iter().enumerate() {
        let mut required = s.required;
        let heard_value = request.and_then(|r| match &s.kind {
            SlotKind::Enum(values) => {
                let said = clearly_heard(s, values, r);
                let default = s.default.as_ref().map(SlotValue::as_text);
                required |= said.iter().any(|v| Some(v.to_string()) != default);
                (!said.is_empty()).then(|| alternatives(said.iter().map(|v| json_string_literal(v))))
            }
            SlotKind::Text { .. } => {
                // Spans of the words: rule s{k}w{i} is word i, optionally followed by the rest.
                let words = r.heard.words();
                for (i, w) in words.iter().enumerate() {
                    let rest = if i + 1 < words.len() {
                        format!(" ({} s{k}w{})?", literal(" "), i + 1)
                    } else {
                        String::new()
                    };
                    rules.push(notation.rule(&format!("s{k}w{i}"), &format!("{}{rest}", literal(w))));
                }
                (!words.is_empty()).then(|| {
                    let starts = alternatives((0..words.len()).map(|i| format!("s{k}w{i}")));
                    format!("{} {starts} {}", literal("\""), literal("\""))
                })
            }
            _ => r.heard.said_values(s).filter(|v| !v.is_empty()).map(|v| alternatives(v.iter().map(|x| literal(x)))),
        });
        // An enum value heard only as a mishearing keeps the open rule: grounding judges it, and
        // the grammar does not steer the model to the nearest sound ("the pod bay doors").
        let open_enum = matches!(s.kind, SlotKind::Enum(_));
        if request.is_some() && heard_value.is_none() && !open_enum && !(s.required && s.default.is_none()) {
            continue;
        }
        let value = heard_value.unwrap_or_else(|| match &s.kind {
            SlotKind::Enum(values) => alternatives(values.iter().map(|v| json_string_literal(&v.canonical))),
            SlotKind::Integer { min, max, percent: _, .. } => number_rule(notation, *min, *max, true),
            SlotKind::Number { min, max, .. } => number_rule(notation, *min, *max, false),
            SlotKind::Duration { min, max } => number_rule(notation, *min, *max, true),
            SlotKind::Text { .. } => notation.pattern(r#""\"" [^"\\\n]{1,120} "\"""#, r#""[^"\\\n]{1,120}""#),
        });
        rules.push(notation.rule(&format!("s{k}"), &format!("{} {value}", literal(&format!(", \"{}\": ", s.name)))));
        root.push(if required { format!("s{k}") } else { format!("s{k}?") });
    }
    root.push(literal("}"));
    let mut g = notation.rule(notation.start(), &root.join(" "));
    g.push('\n');
    for r in rules {
        g.push_str(&r);
        g.push('\n');
    }
    notation.wrap(g)
}

/// The values of enum slot `s` heard clearly in the request ([`Heard::clearly_said`]).
fn clearly_heard<'v>(s: &Slot, values: &'v [EnumValue], r: &Request) -> Vec<&'v str> {
    values.iter().map(|v| v.canonical.as_str()).filter(|v| r.heard.clearly_said(s, v, r.in_vocabulary)).collect()
}

fn alternatives(items: impl Iterator<Item = String>) -> String {
    format!("({})", items.collect::<Vec<_>>().join(" | "))
}

/// Parses the generated argument text (after `{"intent": "<name>`) into extracted slot values.
pub fn parse_arguments(intent: &Intent, generated: &str) -> Result<BTreeMap<String, Extracted>, SlmError> {
    let body = generated.trim_start().trim_start_matches('"');
    let end = body.find('}').ok_or_else(|| SlmError::Unparsable(generated.to_string()))?;
    let json = format!("{{\"intent\": \"{}\"{}}}", intent.name, &body[..end]);
    let value: serde_json::Value =
        serde_json::from_str(&json).map_err(|_| SlmError::Unparsable(generated.to_string()))?;
    let obj = value.as_object().ok_or_else(|| SlmError::Unparsable(generated.to_string()))?;
    let mut out = BTreeMap::new();
    for (k, v) in obj {
        if k == "intent" {
            continue;
        }
        let Some(slot) = intent.slot(k) else {
            return Err(SlmError::Unparsable(format!("unknown argument `{k}` in {generated}")));
        };
        let x = match (&slot.kind, v) {
            (SlotKind::Duration { .. }, serde_json::Value::Number(n)) => {
                Extracted::Duration(n.as_f64().unwrap_or(f64::NAN))
            }
            (_, serde_json::Value::Number(n)) => {
                Extracted::Number(SpokenNumber { value: n.as_f64().unwrap_or(f64::NAN), fraction_only: false })
            }
            (SlotKind::Enum(_), serde_json::Value::String(s)) => Extracted::Enum(s.clone()),
            (_, serde_json::Value::String(s)) => Extracted::Text(s.clone()),
            _ => return Err(SlmError::Unparsable(format!("argument `{k}` has an unsupported value {v}"))),
        };
        out.insert(k.clone(), x);
    }
    Ok(out)
}

/// Calibrated choice: the scores minus the prior scores, softmax-normalised.
pub fn calibrated(scores: &[f32], prior: Option<&[f32]>) -> Vec<f32> {
    let adj: Vec<f32> = match prior {
        Some(p) => scores.iter().zip(p).map(|(s, p)| s - p).collect(),
        None => scores.to_vec(),
    };
    let max = adj.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = adj.iter().map(|a| (a - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// The continuations scored in step 1: each intent's name closing its JSON string, then `none`.
fn choices<'a>(intents: impl Iterator<Item = &'a Intent>) -> Vec<String> {
    intents.map(|i| format!("{}\"", i.name)).chain(std::iter::once(format!("{NONE}\""))).collect()
}

/// What stays the same between requests: the prompt prefix and the prior score of each choice
/// (scored for an empty request on first use), kept between requests.
pub struct SlmState {
    prefix: String,
    mode: PromptMode,
    prior: BTreeMap<String, f32>,
    /// Every choice of the loaded domains: a candidate is scored as one of these.
    all_choices: Vec<String>,
}

impl SlmState {
    pub fn new(intents: &Intents, mode: PromptMode) -> Self {
        SlmState {
            prefix: prompt_for(intents, mode),
            mode,
            prior: BTreeMap::new(),
            all_choices: choices(intents.intents().iter()),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn mode(&self) -> PromptMode {
        self.mode
    }

    /// Scores every declared intent and `none` on the empty request once: the priors are then
    /// ready, and the model's cache holds the prompt prefix, so the first real request is as fast
    /// as the others. Between requests the cache then only ever holds the prefix plus one request.
    pub fn warm_up(&mut self, intents: &Intents, lm: &mut dyn LanguageModel) -> Result<(), SlmError> {
        self.prior_of(&choices(intents.intents().iter()), lm)?;
        // One constrained token too: the worker builds its grammar engine on first use.
        if let Some(first) = intents.intents().first() {
            let prompt = format!("{}{}", request_prompt(&self.prefix, ""), first.name);
            lm.generate(&prompt, Some(&arguments_grammar(first, Notation::Lark)), 1)?;
        }
        Ok(())
    }

    /// Prior scores of `choices`, asking the model only for the ones not seen before.
    fn prior_of(&mut self, choices: &[String], lm: &mut dyn LanguageModel) -> Result<Vec<f32>, SlmError> {
        let missing: Vec<String> = choices.iter().filter(|c| !self.prior.contains_key(*c)).cloned().collect();
        if !missing.is_empty() {
            let scores = lm.score_choice(&request_prompt(&self.prefix, ""), &missing, &self.all_choices)?;
            self.prior.extend(missing.into_iter().zip(scores));
        }
        Ok(choices.iter().map(|c| self.prior[c]).collect())
    }
}

/// An intent of another loaded domain than `chosen`'s that shares words with the request, when
/// nothing in the request points at `chosen` rather than at it
/// ([`Shortlist::undistinguished_from`]) and its required values were all heard: the model's
/// choice between two domains is then a guess (a 270M model makes it with p = 0.999 either way),
/// and the words, which ground every slot value, do not ground the domain. Within one domain the
/// model's choice stands: its intents share words by design ("lights" for on/off and for
/// brightness). `chosen` is the chosen intent's index in [`Intents::intents`].
///
/// [`Shortlist::undistinguished_from`]: crate::shortlist::Shortlist::undistinguished_from
pub fn rival_domain<'a>(intents: &'a Intents, text: &str, chosen: usize, request: &Request) -> Option<&'a Intent> {
    let all = intents.intents();
    intents
        .shortlist()
        .undistinguished_from(text, chosen)
        .iter()
        .map(|c| &all[c.intent])
        .filter(|rival| rival.domain != all[chosen].domain)
        .find(|rival| servable(rival, request))
}

/// The rejected reason of a choice [`rival_domain`] refuses.
fn rival_reason(chosen: &Intent, rival: &Intent) -> String {
    format!(
        "the words fit {} ({}) as well as {} ({}): which one?",
        rival.name, rival.domain, chosen.name, chosen.domain
    )
}

/// The two domains (the rival's, the chosen one's) of a reason made by [`rival_reason`].
pub fn rival_domains(reason: &str) -> Option<(&str, &str)> {
    let rest = reason.strip_prefix("the words fit ")?.strip_suffix("): which one?")?;
    let (rival, chosen) = rest.split_once(") as well as ")?;
    Some((rival.rsplit_once(" (")?.1, chosen.rsplit_once(" (")?.1))
}

/// Every value `intent` requires without a default can be taken from the words heard.
fn servable(intent: &Intent, request: &Request) -> bool {
    intent.slots.iter().filter(|s| s.required && s.default.is_none()).all(|s| match &s.kind {
        SlotKind::Enum(values) => !clearly_heard(s, values, request).is_empty(),
        SlotKind::Text { .. } => !request.heard.words().is_empty(),
        _ => request.heard.said_values(s).is_some_and(|v| !v.is_empty()),
    })
}

/// The model's choice of `intent` (with probability `p`), not acted on for `reason`.
fn refused_choice(intent: &Intent, p: f32, reason: String) -> Resolution {
    let mut r = Resolution::none(0.0);
    r.intent = Some(intent.name.clone());
    r.resolver = Some(Resolver::Slm);
    r.confidence = p;
    r.rejected_reason = Some(reason);
    r
}

/// The language-model resolver, for one request with a fresh state.
pub fn resolve(
    intents: &Intents,
    text: &str,
    lm: &mut dyn LanguageModel,
    cfg: &SlmConfig,
) -> Result<Resolution, SlmError> {
    resolve_with(&mut SlmState::new(intents, cfg.prompt), intents, text, lm, cfg)
}

/// The language-model resolver; the cascade in [`Intents::resolve`] calls it after the grammar.
pub fn resolve_with(
    state: &mut SlmState,
    intents: &Intents,
    text: &str,
    lm: &mut dyn LanguageModel,
    cfg: &SlmConfig,
) -> Result<Resolution, SlmError> {
    // Indices in `intents.intents()`: the shortlist and the choice rules below speak of them.
    let indices: Vec<usize> = if cfg.shortlist == 0 {
        (0..intents.intents().len()).collect()
    } else {
        intents.shortlist().candidates(text, cfg.shortlist).iter().map(|c| c.intent).collect()
    };
    let candidates: Vec<&Intent> = indices.iter().map(|&i| &intents.intents()[i]).collect();
    if candidates.is_empty() {
        tracing::debug!("no intent shares a word with the request: not asking the language model");
        return Ok(Resolution::none(0.0));
    }
    let choices = choices(candidates.iter().copied());
    if state.mode != cfg.prompt {
        *state = SlmState::new(intents, cfg.prompt);
    }
    if cfg.calibrate && state.prior.is_empty() {
        // Before the request's own scoring, so the request stays in the model's cache for the
        // argument generation that follows.
        state.warm_up(intents, lm)?;
    }
    let prior = if cfg.calibrate { Some(state.prior_of(&choices, lm)?) } else { None };
    let scores = lm.score_choice(&request_prompt(&state.prefix, text), &choices, &state.all_choices)?;
    let probs = calibrated(&scores, prior.as_deref());
    let (best, p) = probs.iter().enumerate().fold((0, f32::MIN), |acc, (i, &p)| if p > acc.1 { (i, p) } else { acc });
    let none_index = choices.len() - 1;
    tracing::debug!(choice = %choices[best], p, ?choices, "language-model function choice");
    if best == none_index || (probs[best].ln() - probs[none_index].ln()) < cfg.min_margin {
        return Ok(Resolution::none(0.0));
    }
    if cfg.rival_margin > 0.0 {
        let rival = (0..none_index).filter(|&i| i != best).map(|i| probs[i]).fold(0f32, f32::max);
        if rival > 0.0 && probs[best].ln() - rival.ln() < cfg.rival_margin {
            tracing::debug!(choice = %choices[best], p, rival, "two intents too close to choose: not acting");
            return Ok(Resolution::none(0.0));
        }
    }
    let (index, intent) = (indices[best], candidates[best]);
    let heard = Heard::new(text);
    let in_vocabulary = |w: &str| intents.knows(w);
    let request = Request { heard: &heard, in_vocabulary: &in_vocabulary };
    if cfg.refuse_domain_rivals {
        if let Some(rival) = rival_domain(intents, text, index, &request) {
            tracing::debug!(choice = %intent.name, rival = %rival.name, "another domain fits the words as well: not acting");
            return Ok(refused_choice(intent, p, rival_reason(intent, rival)));
        }
    }
    if cfg.query_needs_own_word && intent.query && intents.shortlist().own_words(text, index).is_empty() {
        tracing::debug!(choice = %intent.name, "a query no word of the request asks for: not acting");
        return Ok(refused_choice(intent, p, format!("nothing said asks for {}", intent.name)));
    }
    let grammar = arguments_grammar_heard(intent, Notation::Lark, Some(&request));
    let prompt = format!("{}{}", request_prompt(&state.prefix, text), intent.name);
    let generated = lm.generate(&prompt, Some(&grammar), cfg.max_tokens)?;
    let checked = parse_arguments(intent, &generated)
        .map_err(|e| e.to_string())
        .and_then(|found| crate::validate::validate(intent, &found));
    Ok(intents.finish(text, intent, checked, Resolver::Slm, p))
}
