//! The SLM worker with the real GGUF models: grammar-constrained output on both models, prefix
//! cache correctness, scoring, and supervision (kill -9, bad grammar, corrupt model, crash loop).

#[path = "../../common/test_models.rs"]
mod test_models;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sotto_workers::{Grammar, SlmClient, WorkerConfig, WorkerError};
use test_models::{model, GEMMA, GEMMA_ADAPTER, GEMMA_EN, GEMMA_Q5_0, SMOLLM2};

const WORKER: &str = env!("CARGO_BIN_EXE_sotto-slm-worker");

fn config(model: &Path) -> WorkerConfig {
    let mut c = WorkerConfig::new(model);
    c.program = Some(PathBuf::from(WORKER));
    c.request_timeout = Duration::from_secs(120);
    c
}

fn start(model: &Path) -> SlmClient {
    SlmClient::start(config(model)).unwrap_or_else(|e| panic!("starting the SLM worker on {}: {e}", model.display()))
}

const INTENT_GBNF: &str = r#"root ::= "{\"intent\": \"" intent "\", \"minutes\": " minutes "}"
intent ::= "set_timer" | "lights_off" | "weather"
minutes ::= [0-9] | [1-9] [0-9]
"#;

const INTENT_SCHEMA: &str = r#"{
  "type": "object",
  "properties": {
    "intent": {"enum": ["set_timer", "lights_off", "weather"]},
    "minutes": {"type": "integer", "minimum": 0, "maximum": 99}
  },
  "required": ["intent", "minutes"],
  "additionalProperties": false
}"#;

const FEW_SHOT: &str = "Turn each command into JSON.\n\
Command: switch off the lights\nJSON: {\"intent\": \"lights_off\", \"minutes\": 0}\n\
Command: will it rain today\nJSON: {\"intent\": \"weather\", \"minutes\": 0}\n\
Command: set a timer for five minutes\nJSON: {\"intent\": \"set_timer\", \"minutes\": 5}\n";

fn prompt(command: &str) -> String {
    format!("{FEW_SHOT}Command: {command}\nJSON:")
}

/// Parses and checks the schema by hand, so the test does not trust the engine it tests.
fn assert_valid(text: &str, what: &str) -> (String, u64) {
    let v: serde_json::Value =
        serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{what}: output is not JSON ({e}): {text:?}"));
    let obj = v.as_object().unwrap_or_else(|| panic!("{what}: not an object: {text:?}"));
    assert_eq!(obj.len(), 2, "{what}: extra or missing keys: {text:?}");
    let intent = obj["intent"].as_str().unwrap_or_else(|| panic!("{what}: intent not a string: {text:?}"));
    assert!(["set_timer", "lights_off", "weather"].contains(&intent), "{what}: bad intent in {text:?}");
    let minutes = obj["minutes"].as_u64().unwrap_or_else(|| panic!("{what}: minutes not an integer: {text:?}"));
    assert!(minutes <= 99, "{what}: minutes out of range: {text:?}");
    (intent.to_string(), minutes)
}

fn grammar_valid_on(model_path: &Path) {
    let mut slm = start(model_path);
    let name = slm.hello().unwrap().model.description.clone();
    for command in ["set a timer for ten minutes", "turn the lights off", "what's the weather like"] {
        for grammar in [Grammar::Gbnf(INTENT_GBNF.into()), Grammar::JsonSchema(INTENT_SCHEMA.into())] {
            let kind = format!("{name} / {:?}", std::mem::discriminant(&grammar));
            let g = slm.generate(&prompt(command), Some(grammar), 40).unwrap();
            assert_ne!(g.stop, "max_tokens", "{kind}: grammar never completed: {:?}", g.text);
            assert_valid(&g.text, &kind);
        }
    }
}

#[test]
fn gemma_output_follows_gbnf_and_json_schema() {
    grammar_valid_on(&model(GEMMA));
}

#[test]
fn smollm2_output_follows_gbnf_and_json_schema() {
    grammar_valid_on(&model(SMOLLM2));
}

#[test]
fn hello_exposes_chat_template_and_model_facts() {
    let slm = start(&model(SMOLLM2));
    let hello = slm.hello().unwrap();
    assert_eq!(hello.worker, "slm");
    assert_eq!(hello.model.metadata.get("general.architecture").map(String::as_str), Some("llama"));
    let template = slm.chat_template().expect("SmolLM2 ships a chat template");
    assert!(template.contains("<|im_start|>"), "{template}");
    assert!(hello.model.n_vocab > 40_000);
}

#[test]
fn cached_prefix_gives_the_same_output_as_a_fresh_worker() {
    let path = model(GEMMA);
    let mut warm = start(&path);
    let first = warm.generate(&prompt("turn the lights off"), Some(Grammar::Gbnf(INTENT_GBNF.into())), 40).unwrap();
    let second =
        warm.generate(&prompt("set a timer for twelve minutes"), Some(Grammar::Gbnf(INTENT_GBNF.into())), 40).unwrap();
    assert!(
        second.cached_tokens as usize >= FEW_SHOT.len() / 8,
        "the few-shot prefix was not reused: {} of {} prompt tokens cached",
        second.cached_tokens,
        second.prompt_tokens
    );
    assert!(second.cached_tokens < second.prompt_tokens);
    drop(warm);
    let mut cold = start(&path);
    let fresh =
        cold.generate(&prompt("set a timer for twelve minutes"), Some(Grammar::Gbnf(INTENT_GBNF.into())), 40).unwrap();
    assert_eq!(fresh.cached_tokens, 0);
    assert_eq!(second.text, fresh.text, "KV-cache reuse changed the output (first was {:?})", first.text);
}

#[test]
fn scores_are_consistent_log_probabilities() {
    let mut slm = start(&model(GEMMA));
    let p = "The capital of France is";
    let cands = vec![" Paris".to_string(), " a banana split with extra cream".to_string(), String::new()];
    let s = slm.score_detailed(p, &cands).unwrap();
    assert_eq!(s.logprobs.len(), 3);
    assert!(s.logprobs[0] < 0.0 && s.logprobs[1] < 0.0, "{:?}", s.logprobs);
    assert_eq!(s.logprobs[2], 0.0, "empty continuation has probability 1");
    assert!(s.logprobs[0] > s.logprobs[1], "Paris should beat a banana split: {:?}", s.logprobs);
    // Scoring one candidate alone (other cache state) must give the same number.
    let alone = slm.score(p, &cands[1..2]).unwrap();
    assert!((alone[0] - s.logprobs[1]).abs() < 1e-2, "{} vs {}", alone[0], s.logprobs[1]);
    assert!(slm.score_detailed(p, &cands[..1]).unwrap().cached_tokens > 0);
}

#[test]
fn bad_grammar_is_refused_and_the_worker_survives() {
    let mut slm = start(&model(SMOLLM2));
    let pid = slm.supervisor().pid();
    for bad in [
        Grammar::Gbnf("root ::= \"unterminated".into()),
        Grammar::Gbnf("root ::= undefined_rule".into()),
        Grammar::Gbnf("no rules here".into()),
        Grammar::JsonSchema("{ not json".into()),
        Grammar::Lark("start: (((".into()),
    ] {
        match slm.generate("Hello", Some(bad.clone()), 5) {
            Err(WorkerError::Request { message, .. }) => {
                assert!(message.contains("grammar") || message.contains("JSON"), "{message}")
            }
            other => panic!("{bad:?}: expected a refused request, got {other:?}"),
        }
    }
    let ok = slm.generate("Hello", Some(Grammar::Gbnf(INTENT_GBNF.into())), 40).unwrap();
    assert_valid(&ok.text, "after bad grammars");
    assert_eq!(slm.supervisor().pid(), pid, "the worker was restarted");
}

#[test]
fn prompt_longer_than_the_context_is_an_error_not_a_crash() {
    let mut slm = start(&model(SMOLLM2));
    let huge = "word ".repeat(5000);
    let err = slm.generate(&huge, None, 10).unwrap_err();
    assert!(matches!(err, WorkerError::Request { .. }), "{err}");
    assert!(err.to_string().contains("context"), "{err}");
    slm.generate("Hello", None, 3).unwrap();
}

#[test]
fn kill_9_mid_request_fails_that_request_and_the_next_one_succeeds() {
    let mut slm = start(&model(GEMMA));
    let pid = slm.supervisor().pid().unwrap();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        unsafe_kill(pid);
    });
    // A ~1600-token prompt: still being evaluated when the signal lands, however fast the
    // machine (generation alone could end early on an end-of-text token).
    let err = slm.generate(&"Once upon a time ".repeat(400), None, 300).unwrap_err();
    killer.join().unwrap();
    match &err {
        WorkerError::Crashed { status, during, .. } => {
            assert!(status.contains("SIGKILL"), "{err}");
            assert!(during.contains("generate"), "{err}");
        }
        other => panic!("expected Crashed, got {other}"),
    }
    let g = slm.generate(&prompt("turn the lights off"), Some(Grammar::Gbnf(INTENT_GBNF.into())), 40).unwrap();
    assert_valid(&g.text, "after restart");
    assert_eq!(slm.supervisor().restarts(), 1);
    assert_ne!(slm.supervisor().pid(), Some(pid));
}

fn unsafe_kill(pid: u32) {
    let status = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// The short prompt of `sotto_intents::slm::PromptMode::Short`, which the adapter was trained on.
const SHORT_PROMPT: &str = "Map the request to one function call in JSON. \
     If it is not a command for this device, answer {\"intent\": \"none\"}.\n\n";

fn with_adapter(base: &Path, adapter: &Path, scale: &str) -> SlmClient {
    let mut c = config(base);
    c.args = vec!["--lora".into(), adapter.display().to_string(), "--lora-scale".into(), scale.into()];
    SlmClient::start(c).unwrap_or_else(|e| panic!("starting the SLM worker with {}: {e}", adapter.display()))
}

#[test]
fn distilled_adapter_changes_the_answers() {
    let (base, adapter) = (model(GEMMA), model(GEMMA_ADAPTER));
    let choices: Vec<String> = ["light.set\"", "media.control\"", "none\""].iter().map(|c| c.to_string()).collect();
    let score = |slm: &mut SlmClient, request: &str| {
        let prompt = format!("{SHORT_PROMPT}Request: {request}\nCall: {{\"intent\": \"");
        slm.score(&prompt, &choices).unwrap()
    };
    let mut plain = start(&base);
    let mut tuned = with_adapter(&base, &adapter, "1");
    let hello = tuned.hello().unwrap().model.path.clone();
    assert!(hello.contains(&adapter.display().to_string()), "the worker does not name its adapter: {hello}");
    // A command in words none of the templates use. (Near-domain remarks, "i bought some new
    // lights for the kitchen", still get light.set from the shipped adapter's scores: the margin
    // over `none` and grounding are what keep them from acting; docs/distil.md.)
    let command = "it's pitch black in the kitchen, get the lights on";
    let (p_cmd, t_cmd) = (score(&mut plain, command), score(&mut tuned, command));
    assert!(
        p_cmd.iter().zip(&t_cmd).any(|(p, t)| (p - t).abs() > 0.5),
        "the adapter did not change the scores: {p_cmd:?} vs {t_cmd:?}"
    );
    assert!(t_cmd[0] > t_cmd[1] && t_cmd[0] > t_cmd[2], "with the adapter, the command is not light.set: {t_cmd:?}");
    // The generated arguments follow the adapter too (same grammar, same prompt).
    let grammar = Grammar::Gbnf(
        r#"root ::= "\", \"room\": \"" ("kitchen" | "bedroom" | "office") "\", \"state\": \"" ("on" | "off") "\"}""#
            .into(),
    );
    let prompt = format!("{SHORT_PROMPT}Request: {command}\nCall: {{\"intent\": \"light.set");
    let tuned_call = tuned.generate(&prompt, Some(grammar), 24).unwrap().text;
    assert!(tuned_call.contains("kitchen") && tuned_call.contains("\"on\""), "tuned answer {tuned_call:?}");
    // A scale near zero is nearly the base model again: the scale reaches llama.cpp.
    let mut faint = with_adapter(&base, &adapter, "0.001");
    let f_cmd = score(&mut faint, command);
    let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(
        gap(&f_cmd, &p_cmd) * 10.0 < gap(&t_cmd, &p_cmd),
        "scale 0.001 is not near the base: {f_cmd:?}, base {p_cmd:?}, scale 1 {t_cmd:?}"
    );
}

#[test]
fn text_the_grammar_forces_costs_no_model_evaluation() {
    let mut slm = with_adapter(&model(GEMMA), &model(GEMMA_ADAPTER), "1");
    let prompt = format!(
        "{SHORT_PROMPT}Request: it's pitch black in the kitchen, get the lights on\nCall: {{\"intent\": \"light.set"
    );
    // One way to go: the answer is the grammar's, and the model is not run at all.
    let only = r#"start: "\", \"room\": \"kitchen\", \"state\": \"on\"}""#;
    let g = slm.generate(&prompt, Some(Grammar::Lark(only.into())), 40).unwrap();
    assert_eq!(g.text, r#"", "room": "kitchen", "state": "on"}"#);
    assert_eq!((g.model_steps, g.stop.as_str()), (0, "grammar_complete"), "{g:?}");
    // One choice: the forced `", "room": "` goes in with the prompt, the model picks the room
    // from that one evaluation, and the rest is forced again. The same grammar in GBNF, which
    // the worker cannot splice, takes a step per token and must give the same answer.
    let choice = r#""\", \"room\": \"" ("kitchen" | "bedroom" | "office") "\", \"state\": \"on\"}""#;
    let spliced = slm.generate(&prompt, Some(Grammar::Lark(format!("start: {choice}"))), 40).unwrap();
    let stepwise = slm.generate(&prompt, Some(Grammar::Gbnf(format!("root ::= {choice}"))), 40).unwrap();
    assert_eq!(spliced.text, stepwise.text);
    assert!(spliced.text.contains("kitchen"), "{spliced:?}");
    assert_eq!(spliced.model_steps, 1, "{spliced:?}");
    assert!(stepwise.model_steps as usize > spliced.generated_tokens as usize / 2, "{stepwise:?}");
}

#[test]
fn a_choice_is_scored_up_to_where_the_candidates_part() {
    let mut slm = with_adapter(&model(GEMMA), &model(GEMMA_ADAPTER), "1");
    let names = |v: &[&str]| v.iter().map(|c| format!("{c}\"")).collect::<Vec<String>>();
    let candidates = names(&["light.set", "light.brightness", "media.volume", "none"]);
    let among = names(&["light.set", "light.brightness", "media.volume", "media.control", "machine.stop", "none"]);
    let prompt = format!("{SHORT_PROMPT}Request: dim the lights in the bedroom to ten percent\nCall: {{\"intent\": \"");
    let whole = slm.score_detailed(&prompt, &candidates).unwrap();
    let choice = slm.score_choice(&prompt, &candidates, &among).unwrap();
    for k in 0..candidates.len() {
        assert!(choice.tokens[k] >= 1 && choice.tokens[k] <= whole.tokens[k], "{choice:?} vs {whole:?}");
        // What is left out is the log-probability of tokens after the choice, at most 0 (give or
        // take the float noise of evaluating in batches of another shape).
        assert!(choice.logprobs[k] >= whole.logprobs[k] - 0.1, "{choice:?} vs {whole:?}");
    }
    // `light.set` and `light.brightness` share their first token, so each needs more; `none` is
    // told from all the others by its first.
    assert!(choice.tokens[0] > 1 && choice.tokens[1] > 1, "{choice:?}");
    assert_eq!(choice.tokens[3], 1, "{choice:?}");
    let best = |s: &[f32]| (0..s.len()).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap();
    assert_eq!(best(&choice.logprobs), 1, "not light.brightness: {choice:?}");
    assert_eq!(best(&whole.logprobs), 1, "not light.brightness: {whole:?}");
}

#[test]
fn the_english_vocabulary_answers_as_the_whole_one() {
    // The same weights but for the embedding rows of non-English tokens: ASCII requests tokenize
    // the same, and the choice and the arguments come out the same with the adapter.
    let adapter = model(GEMMA_ADAPTER);
    let mut whole = with_adapter(&model(GEMMA_Q5_0), &adapter, "1");
    let mut en = with_adapter(&model(GEMMA_EN), &adapter, "1");
    assert!(en.hello().unwrap().model.n_vocab < 150_000, "{:?}", en.hello().unwrap().model);
    let names = |v: &[&str]| v.iter().map(|c| format!("{c}\"")).collect::<Vec<String>>();
    let candidates = names(&["light.set", "light.brightness", "media.volume", "thermostat.set", "none"]);
    let grammar =
        r#"start: "\", \"room\": \"" ("kitchen" | "bedroom" | "living_room") "\", \"state\": \"" ("on" | "off") "\"}""#;
    for request in [
        "it's pitch black in the kitchen, get the lights on",
        "I'm off to bed, lights out in the bedroom please",
        "what's the capital of France?",
    ] {
        let prompt = format!("{SHORT_PROMPT}Request: {request}\nCall: {{\"intent\": \"");
        let a = whole.score(&prompt, &candidates).unwrap();
        let b = en.score(&prompt, &candidates).unwrap();
        let best = |s: &[f32]| (0..s.len()).max_by(|&x, &y| s[x].total_cmp(&s[y])).unwrap();
        assert_eq!(best(&a), best(&b), "{request}: {a:?} vs {b:?}");
        // Dropping tokens only ever raises a log-probability (a smaller softmax), and the
        // dropped ones are unlikely after an English prompt.
        for (x, y) in a.iter().zip(&b) {
            assert!(*y >= x - 0.1 && *y - x < 0.5, "{request}: {a:?} vs {b:?}");
        }
        let call = format!("{prompt}light.set");
        let ga = whole.generate(&call, Some(Grammar::Lark(grammar.into())), 24).unwrap();
        let gb = en.generate(&call, Some(Grammar::Lark(grammar.into())), 24).unwrap();
        assert_eq!(ga.text, gb.text, "{request}");
        assert_eq!(ga.prompt_tokens, gb.prompt_tokens, "{request}: the prompt tokenized differently");
    }
}

#[test]
fn adapter_that_is_not_gguf_or_not_for_this_model_is_a_load_error() {
    let dir = tempdir();
    let wrong = dir.join("adapter.gguf");
    std::fs::write(&wrong, b"not an adapter at all").unwrap();
    let mut c = config(&model(GEMMA));
    c.args = vec!["--lora".into(), wrong.display().to_string()];
    let err = SlmClient::start(c).err().unwrap();
    assert!(matches!(err, WorkerError::ModelLoad { .. }) && err.to_string().contains("not a GGUF file"), "{err}");
    // A Gemma adapter on SmolLM2: llama.cpp refuses the tensors, the worker says which file.
    let mut c = config(&model(SMOLLM2));
    c.args = vec!["--lora".into(), model(GEMMA_ADAPTER).display().to_string()];
    let err = SlmClient::start(c).err().unwrap().to_string();
    assert!(err.contains("LoRA adapter"), "{err}");
}

#[test]
fn missing_model_is_a_clear_error() {
    let err = SlmClient::start(config(Path::new("/nonexistent/model.gguf"))).err().unwrap();
    assert!(matches!(err, WorkerError::ModelMissing { .. }), "{err}");
    assert!(err.to_string().contains("sotto models fetch"), "{err}");
}

#[test]
fn non_gguf_and_truncated_models_are_clear_load_errors() {
    let dir = tempdir();
    let wrong = dir.join("wrong.gguf");
    std::fs::write(&wrong, b"PK\x03\x04 this is a zip, not a model").unwrap();
    let err = SlmClient::start(config(&wrong)).err().unwrap();
    assert!(matches!(err, WorkerError::ModelLoad { .. }), "{err}");
    assert!(err.to_string().contains("not a GGUF file"), "{err}");

    let truncated = dir.join("truncated.gguf");
    let full = std::fs::read(model(SMOLLM2)).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let t0 = Instant::now();
    let err = SlmClient::start(config(&truncated)).err().unwrap();
    assert!(matches!(err, WorkerError::ModelLoad { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(20), "load failure took {:?}", t0.elapsed());
}

#[test]
fn model_corrupted_while_running_stops_restarts_instead_of_looping() {
    let dir = tempdir();
    let path = dir.join("m.gguf");
    std::fs::copy(model(SMOLLM2), &path).unwrap();
    let mut slm = start(&path);
    std::fs::write(&path, b"garbage").unwrap();
    unsafe_kill(slm.supervisor().pid().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    assert!(matches!(slm.generate("Hi", None, 2), Err(WorkerError::Crashed { .. })));
    let err = slm.generate("Hi", None, 2).unwrap_err();
    assert!(matches!(err, WorkerError::ModelLoad { .. }), "{err}");
    // Permanent: answered at once, no new process.
    let t0 = Instant::now();
    let again = slm.generate("Hi", None, 2).unwrap_err();
    assert!(matches!(again, WorkerError::ModelLoad { .. }), "{again}");
    assert!(t0.elapsed() < Duration::from_millis(50));
    assert_eq!(slm.supervisor().pid(), None);
}

#[test]
fn worker_dying_before_ready_repeatedly_is_a_crash_loop() {
    let dir = tempdir();
    let gate = dir.join("allowed");
    std::fs::write(&gate, b"").unwrap();
    // Starts the real worker while the gate file exists, else dies at once like a broken install.
    let script = dir.join("flaky-worker.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ -e '{}' ] && exec '{WORKER}' \"$@\"\necho 'cannot start: broken' >&2\nexit 70\n",
            gate.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cfg = config(&model(SMOLLM2));
    cfg.program = Some(script);
    cfg.max_failures = 3;
    cfg.backoff_initial = Duration::from_millis(50);
    let mut slm = SlmClient::start(cfg).unwrap();
    std::fs::remove_file(&gate).unwrap();
    unsafe_kill(slm.supervisor().pid().unwrap());
    let t0 = Instant::now();
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(slm.generate("Hi", None, 2).unwrap_err());
    }
    assert!(matches!(errors[0], WorkerError::Crashed { .. }), "{}", errors[0]);
    let second = errors[1].to_string();
    assert!(second.contains("exit status 70") && second.contains("cannot start: broken"), "{second}");
    assert!(matches!(errors[2], WorkerError::CrashLoop { .. }), "{}", errors[2]);
    // Backoff: 50 ms then 100 ms before the two restarts.
    assert!(t0.elapsed() >= Duration::from_millis(150), "{:?}", t0.elapsed());
    let t1 = Instant::now();
    assert!(matches!(slm.generate("Hi", None, 2), Err(WorkerError::CrashLoop { .. })));
    assert!(t1.elapsed() < Duration::from_millis(50), "gave up but still spawning");
}

fn tempdir() -> PathBuf {
    let d =
        std::env::temp_dir().join(format!("sotto-slm-test-{}-{:?}", std::process::id(), std::thread::current().id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
