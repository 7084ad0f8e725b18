//! The whole chain through the built daemon on real models and spoken fixtures: wake word, VAD,
//! Whisper, intents, and MQTT against the real Mosquitto on 127.0.0.1:1883.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sotto_tests::daemon::{
    children_named, concat_wavs, fixture, one_at_a_time, run_on_file, run_on_file_with, signal, spawn_run, trim_wav,
    unique_site, write_config, Printed,
};
use sotto_tests::mqtt::{MqttMessage, MqttSubscriber};

const MOSQUITTO: u16 = 1883;

/// A config on Mosquitto with one wake word. Sotto's spoken responses are off: these tests are
/// about what is understood and published (`daemon_speech.rs` covers speaking).
fn config_for(site: &str, wake: &str, extra: &str) -> String {
    format!(
        "[mqtt]\nhost = \"127.0.0.1\"\nport = {MOSQUITTO}\nsite_id = \"{site}\"\n\n[tts]\nresponses = false\n\n[[wake.models]]\nname = \"{wake}\"\n\n{extra}\n"
    )
}

/// Runs one fixture through the daemon against Mosquitto and returns what a subscriber saw for
/// this site (Hermes events filtered by `siteId`, and the site's own topics), plus what the
/// daemon printed.
fn speak(wav: &str, wake: &str, extra: &str) -> (String, Vec<MqttMessage>, Vec<Printed>) {
    speak_file(&fixture(wav), wake, extra)
}

/// [`speak`] for a recording outside `tests/fixtures/audio/`.
fn speak_file(wav: &Path, wake: &str, extra: &str) -> (String, Vec<MqttMessage>, Vec<Printed>) {
    let _one = one_at_a_time();
    let site = unique_site(&wav.file_stem().expect("a file name").to_string_lossy());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &config_for(&site, wake, extra));
    let own = format!("sotto/{site}/#");
    let subscriber = MqttSubscriber::start(MOSQUITTO, &["hermes/#", &own], None);
    let (_, printed) = run_on_file(&config, wav);
    let seen = subscriber
        .drain(Duration::from_millis(1500))
        .into_iter()
        .filter(|m| m.topic.starts_with(&format!("sotto/{site}/")) || m.payload["siteId"] == json!(site))
        .collect();
    (site, seen, printed)
}

fn topics(messages: &[MqttMessage]) -> Vec<&str> {
    messages.iter().map(|m| m.topic.as_str()).collect()
}

fn payload_of<'a>(messages: &'a [MqttMessage], topic: &str) -> &'a serde_json::Value {
    &messages
        .iter()
        .find(|m| m.topic == topic)
        .unwrap_or_else(|| panic!("nothing on {topic}; got {:?}", topics(messages)))
        .payload
}

/// The Hermes sequence of a command the grammar recognised, then its action, in publication order.
fn assert_command(seen: &[MqttMessage], wake: &str, intent: &str, action_topic: &str, action: serde_json::Value) {
    assert_command_by(seen, "grammar", wake, intent, action_topic, action);
}

/// [`assert_command`] for a command that `resolver` (as the command report names it) recognised.
fn assert_command_by(
    seen: &[MqttMessage],
    resolver: &str,
    wake: &str,
    intent: &str,
    action_topic: &str,
    action: serde_json::Value,
) {
    let expected = [
        format!("hermes/hotword/{wake}/detected"),
        "hermes/dialogueManager/sessionStarted".into(),
        "hermes/asr/textCaptured".into(),
        format!("hermes/intent/{intent}"),
        action_topic.to_string(),
        "hermes/dialogueManager/sessionEnded".into(),
    ];
    // After the dialogue, its figures as data: the command's report, then the counters.
    let site = action_topic.split('/').nth(1).expect("sotto/<site>/… action topic");
    let (report_topic, counters_topic) = (format!("sotto/{site}/metrics/command"), format!("sotto/{site}/metrics"));
    let order: Vec<&str> = topics(seen).into_iter().filter(|t| !t.ends_with("/status")).collect();
    let mut with_metrics = expected.to_vec();
    with_metrics.extend([report_topic.clone(), counters_topic.clone()]);
    // A query (`query = true`) keeps its session open for the answer of the system that handles
    // it (`intents.reply_timeout_s`): here none comes, and it ends after the figures.
    if sotto_intents::Intents::shipped().intent(intent).is_some_and(|i| i.query) {
        let ended = with_metrics.remove(5);
        with_metrics.push(ended);
    }
    assert_eq!(order, with_metrics, "published sequence");
    let report = payload_of(seen, &report_topic);
    assert_eq!(
        (&report["intent"], &report["decision"], &report["resolver"]),
        (&json!(intent), &json!("execute"), &json!(resolver))
    );
    assert!(report["end_of_speech_to_action_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{report}");
    assert_eq!(payload_of(seen, &counters_topic)["actions"], json!(1));
    assert_eq!(payload_of(seen, action_topic), &action, "action payload");
    let recognised = payload_of(seen, &format!("hermes/intent/{intent}"));
    assert_eq!(recognised["intent"]["intentName"], json!(intent));
    let session = payload_of(seen, "hermes/dialogueManager/sessionStarted")["sessionId"].clone();
    assert!(session.is_string());
    for topic in &expected[..4] {
        if !topic.starts_with("sotto/") {
            assert_eq!(payload_of(seen, topic)["sessionId"], session, "{topic} carries the session id");
        }
    }
    assert_eq!(payload_of(seen, "hermes/dialogueManager/sessionEnded")["termination"]["reason"], json!("nominal"));
}

#[test]
fn vehicle_command_publishes_the_climate_action_and_hermes_events() {
    let (site, seen, printed) = speak("pos_jarvis_vehicle_temp.wav", "hey_jarvis", "");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    assert_command(
        &seen,
        "hey_jarvis",
        "climate.set_temperature",
        &action_topic,
        json!({"celsius": 21.0, "zone": "driver"}),
    );
    let slots = &payload_of(&seen, "hermes/intent/climate.set_temperature")["slots"];
    assert!(
        slots.as_array().unwrap().iter().any(|s| s["slotName"] == "temperature" && s["value"]["value"] == json!(21.0)),
        "{slots}"
    );
    // `--input` prints exactly what was published, in order, status first and last.
    assert_eq!(printed.first().map(|p| p.topic.clone()), Some(format!("sotto/{site}/status")));
    assert_eq!(printed.last().map(|p| p.payload.clone()), Some(json!("offline")));
    assert!(printed.iter().any(|p| p.topic == action_topic));
}

/// The daemon's `latency` log line for each command, as `field=value` pairs.
fn latency_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.contains(" latency ") || l.ends_with(" latency"))
        .map(str::to_string)
        .collect()
}

/// At the recorded speed, speech-to-text starts at the pause after the command and its result is
/// the one used: same action as without speculation, and the wait after the endpoint is shorter
/// than the transcription itself.
#[test]
fn speculative_transcription_at_the_pause_serves_the_command() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut waits = Vec::new();
    for (speculate_after_ms, expect_speculative) in [(200, true), (0, false)] {
        let site = unique_site("speculate");
        let extra = format!("[endpoint]\nspeculate_after_ms = {speculate_after_ms}\n");
        let config = write_config(dir.path(), &config_for(&site, "hey_jarvis", &extra));
        let (output, printed) = run_on_file_with(&config, &fixture("pos_jarvis_vehicle_temp.wav"), &["--realtime"]);
        let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
        let action = printed
            .iter()
            .find(|p| p.topic == action_topic)
            .unwrap_or_else(|| panic!("no action; printed {printed:?}"));
        assert_eq!(action.payload, json!({"celsius": 21.0, "zone": "driver"}));
        let lines = latency_lines(&output.stderr);
        assert_eq!(lines.len(), 1, "one command, one latency line: {lines:?}");
        assert!(lines[0].contains(&format!("speculative={expect_speculative}")), "{}", lines[0]);
        let field = |name: &str| -> f64 {
            let at = lines[0].find(&format!(" {name}=")).unwrap_or_else(|| panic!("no {name} in {}", lines[0]));
            lines[0][at + name.len() + 2..].split_whitespace().next().unwrap().parse().unwrap()
        };
        waits.push((field("stt_ms"), field("stt_compute_ms")));
    }
    // Speculation had about trailing_silence_ms - speculate_after_ms = 500 ms of head start; without
    // it the wait includes the whole transcription.
    let ((spec_wait, spec_compute), (plain_wait, plain_compute)) = (waits[0], waits[1]);
    assert!(spec_wait < spec_compute, "speculative: waited {spec_wait} ms for a {spec_compute} ms transcription");
    assert!(
        plain_wait >= plain_compute,
        "not speculative: waited {plain_wait} ms for a {plain_compute} ms transcription"
    );
}

/// Out-of-domain speech after a wake word: the grammar misses its transcript, so the daemon runs the
/// grammar-constrained second pass, whose forced reading (some command) Whisper finds far less
/// likely than what it heard: the reading is neither taken nor offered for confirmation, and
/// nothing is published.
#[test]
fn the_second_pass_does_not_force_out_of_domain_speech_into_a_command() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let wake = dir.path().join("wake.wav");
    let status = std::process::Command::new("sox")
        .arg(fixture("pos_jarvis_home_lights.wav"))
        .arg(&wake)
        .args(["trim", "0", "1.5"])
        .status()
        .unwrap();
    assert!(status.success());
    let wav = dir.path().join("jarvis_chat.wav");
    concat_wavs(&wav, &[wake, fixture("neg_chat_espeak.wav")], 0.3);
    let site = unique_site("second-pass");
    let config = write_config(dir.path(), &config_for(&site, "hey_jarvis", ""));
    let (output, printed) = run_on_file(&config, &wav);
    let log = String::from_utf8_lossy(&output.stderr);
    let second: Vec<&str> = log.lines().filter(|l| l.contains("grammar-constrained second pass")).collect();
    assert_eq!(second.len(), 1, "the second pass runs once for the missed transcript:\n{log}");
    assert!(second[0].contains("verdict=Reject"), "{}", second[0]);
    let topics: Vec<&str> = printed.iter().map(|p| p.topic.as_str()).collect();
    assert!(topics.contains(&"hermes/nlu/intentNotRecognized"), "{topics:?}");
    assert!(
        !topics.iter().any(|t| t.starts_with("hermes/intent/") || (t.starts_with("sotto/") && !t.ends_with("/status"))),
        "{topics:?}"
    );
    assert!(!topics.iter().any(|t| t.ends_with("/confirm")), "{topics:?}");
}

#[test]
fn home_command_switches_the_kitchen_light() {
    let (site, seen, _) = speak("pos_jarvis_home_lights.wav", "hey_jarvis", "");
    assert_command(
        &seen,
        "hey_jarvis",
        "light.set",
        &format!("sotto/{site}/home/light/kitchen"),
        json!({"state": "on"}),
    );
}

#[test]
fn factory_status_request_with_the_alexa_wake_word() {
    let (site, seen, _) = speak("pos_alexa_factory_status.wav", "alexa", "");
    assert_command(
        &seen,
        "alexa",
        "machine.status",
        &format!("sotto/{site}/factory/press_2/status/get"),
        json!({"machine": "press_2"}),
    );
}

#[test]
fn speech_without_the_wake_word_publishes_nothing_but_status() {
    let (_, seen, printed) = speak("neg_home_lights.wav", "hey_jarvis", "");
    assert!(seen.iter().all(|m| m.topic.ends_with("/status")), "{:?}", topics(&seen));
    assert!(printed.iter().all(|p| p.topic.ends_with("/status")), "{printed:?}");
}

#[test]
fn a_wake_word_that_is_not_configured_is_not_heard() {
    let (_, seen, _) = speak("pos_alexa_factory_status.wav", "hey_jarvis", "");
    assert!(seen.iter().all(|m| m.topic.ends_with("/status")), "{:?}", topics(&seen));
}

/// A worker killed while it transcribes: that command ends with an error event, the daemon stays
/// up, restarts the worker and serves the next command.
#[test]
fn a_killed_stt_worker_fails_one_command_and_the_next_one_is_served() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("two-commands.wav");
    concat_wavs(&wav, &[fixture("pos_jarvis_home_lights.wav"), fixture("pos_jarvis_vehicle_temp.wav")], 1.0);
    let site = unique_site("kill");
    let config = write_config(dir.path(), &config_for(&site, "hey_jarvis", "[slm]\nenabled = false\n"));
    let mut daemon = spawn_run(&config, &wav);
    let pid = daemon.id();
    let stdout = daemon.stdout.take().unwrap();
    let mut printed = Vec::new();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let message: serde_json::Value = serde_json::from_str(&line).unwrap();
        if !killed && message["topic"] == "hermes/dialogueManager/sessionStarted" {
            // The utterance follows the wake word within a second of audio, read faster than real
            // time: freezing the worker first guarantees the kill lands inside the request.
            let workers = children_named(pid, "sotto-stt-worker");
            assert_eq!(workers.len(), 1, "one STT worker under the daemon");
            signal(workers[0], "-STOP");
            std::thread::sleep(Duration::from_millis(1500));
            signal(workers[0], "-KILL");
            killed = true;
        }
        printed.push(message);
    }
    let status = daemon.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut daemon.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "the daemon survives the worker's death: {status}\n{stderr}");
    let ended: Vec<&serde_json::Value> =
        printed.iter().filter(|m| m["topic"] == "hermes/dialogueManager/sessionEnded").map(|m| &m["payload"]).collect();
    assert_eq!(ended.len(), 2, "{printed:#?}");
    assert_eq!(ended[0]["termination"]["reason"], json!("error"), "{}", ended[0]);
    assert!(ended[0]["termination"]["error"].as_str().unwrap().contains("speech-to-text"), "{}", ended[0]);
    assert!(
        printed.iter().any(|m| m["topic"] == format!("sotto/{site}/vehicle/climate/temperature")),
        "the second command is served after the restart: {printed:#?}\n{stderr}"
    );
    assert!(
        !printed.iter().any(|m| m["topic"] == format!("sotto/{site}/home/light/kitchen")),
        "the failed command published no action"
    );
}

/// Runs a dialogue fixture on the embedded broker and returns the printed messages of the run.
/// Sotto speaks (into WAV files): its questions mute the microphone while they last.
fn dialogue(name: &str) -> (String, Vec<Printed>) {
    let _one = one_at_a_time();
    let site = unique_site(name);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{site}\"\n\n[tts]\nwav_dir = {:?}\n",
            dir.path().display().to_string()
        ),
    );
    let wav = sotto_tests::daemon::repo_root().join("tests/fixtures/dialogue").join(name);
    let (_, printed) = run_on_file(&config, &wav);
    (site, printed)
}

fn printed_topics(printed: &[Printed]) -> Vec<&str> {
    printed.iter().map(|p| p.topic.as_str()).filter(|t| !t.ends_with("/status")).collect()
}

#[test]
fn a_risky_command_runs_only_after_a_spoken_yes() {
    let (site, printed) = dialogue("jarvis_factory_stop_yes.wav");
    let action = format!("sotto/{site}/factory/press_1/command");
    let confirm = format!("sotto/{site}/confirm");
    let said = format!("sotto/{site}/said");
    assert_eq!(
        printed_topics(&printed),
        [
            "hermes/hotword/hey_jarvis/detected",
            "hermes/dialogueManager/sessionStarted",
            "hermes/asr/textCaptured",
            "hermes/intent/machine.stop",
            said.as_str(),
            confirm.as_str(),
            "hermes/asr/textCaptured",
            action.as_str(),
            "hermes/dialogueManager/sessionEnded",
            said.as_str(),
        ]
    );
    let spoken: Vec<&serde_json::Value> =
        printed.iter().filter(|p| p.topic == said).map(|p| &p.payload["text"]).collect();
    assert_eq!(spoken, [&json!("Stop press one? Say yes or no."), &json!("Stopping press one.")]);
    assert_eq!(printed.iter().find(|p| p.topic == action).unwrap().payload, json!({"command": "stop"}));
}

#[test]
fn a_spoken_no_cancels_the_risky_command() {
    let (site, printed) = dialogue("jarvis_factory_stop_no.wav");
    assert!(!printed.iter().any(|p| p.topic == format!("sotto/{site}/factory/press_1/command")), "{printed:#?}");
    let ended = &printed.iter().find(|p| p.topic == "hermes/dialogueManager/sessionEnded").unwrap().payload;
    assert_eq!(ended["termination"]["reason"], json!("abortedByUser"), "{ended}");
}

#[test]
fn no_answer_drops_the_risky_command() {
    let (site, printed) = dialogue("jarvis_factory_stop_silence.wav");
    assert!(!printed.iter().any(|p| p.topic == format!("sotto/{site}/factory/press_1/command")), "{printed:#?}");
    let ended = &printed.iter().find(|p| p.topic == "hermes/dialogueManager/sessionEnded").unwrap().payload;
    assert_eq!(ended["termination"]["reason"], json!("timeout"), "{ended}");
}

#[test]
fn an_out_of_range_value_is_rejected_with_its_reason_and_publishes_no_action() {
    let (site, printed) = dialogue("jarvis_vehicle_out_of_range.wav");
    assert!(!printed.iter().any(|p| p.topic.starts_with(&format!("sotto/{site}/vehicle"))), "{printed:#?}");
    let rejected =
        &printed.iter().find(|p| p.topic == "hermes/nlu/intentNotRecognized").expect("intentNotRecognized").payload;
    let reason = rejected["customData"].as_str().unwrap();
    assert!(reason.contains("climate.set_temperature") && reason.contains("out of range"), "{reason}");
}

/// "Stop conveyor three" names a machine the factory schema does not have: the grammar finds no
/// match, the language model (on, in its worker) is asked, and whatever it answers, nothing
/// outside the schema is published.
#[test]
fn the_language_model_fallback_never_publishes_outside_the_schema() {
    let _one = one_at_a_time();
    let site = unique_site("slm");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{site}\"\n[slm]\nenabled = true\ntimeout_s = 60\n"
        ),
    );
    let (output, printed) = run_on_file(&config, &fixture("pos_jarvis_factory_stop.wav"));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("worker ready worker=\"slm\""), "the language-model worker ran:\n{log}");
    let machines = ["press_1", "press_2", "conveyor_1", "conveyor_2", "cnc_mill", "packaging_line", "robot_cell"];
    for p in printed.iter().filter(|p| p.topic.starts_with(&format!("sotto/{site}/factory/"))) {
        let machine = p.topic.split('/').nth(3).unwrap();
        assert!(machines.contains(&machine), "action outside the schema: {p:?}");
    }
    assert!(printed.iter().any(|p| p.topic == "hermes/dialogueManager/sessionEnded"), "{printed:#?}");
}

/// A request in the user's own words that no template covers ("more air from the vents please,
/// level four"), spoken, with the default `[slm]` settings: the grammar finds nothing it may act
/// on, the language model with the distilled adapter (on by default) resolves it, and the action
/// carries exactly the level that was said.
#[test]
fn a_paraphrase_the_grammar_misses_is_served_by_the_distilled_model() {
    let wav = sotto_tests::daemon::repo_root().join("tests/fixtures/model_path/alexa_vehicle_fan_paraphrase.wav");
    let (site, seen, _) = speak_file(&wav, "alexa", "[slm]\ntimeout_s = 60\n");
    let action = format!("sotto/{site}/vehicle/climate/fan");
    assert_command_by(&seen, "slm", "alexa", "climate.set_fan", &action, json!({"level": 4}));
}

/// The dialogue is never deaf: a risky command whose question nobody answers, then three more
/// commands back to back, each with its own wake word. The question ends when the next wake word
/// is heard, and every later command is served.
#[test]
fn commands_after_an_unanswered_confirmation_are_all_served() {
    let _one = one_at_a_time();
    let site = unique_site("never-deaf");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{site}\"\n\n[[wake.models]]\nname = \"hey_jarvis\"\n\n[[wake.models]]\nname = \"alexa\"\n\n[tts]\nresponses = false\n"
        ),
    );
    // The next wake word comes while the question would still be spoken: with spoken responses the
    // microphone is muted then (half duplex, see daemon_speech.rs), so they are off here.
    // "Hey Jarvis! Stop press one." and 1.5 s of the silence after it: the next wake word comes
    // while the question waits for its answer.
    let question = dir.path().join("question.wav");
    trim_wav(
        &sotto_tests::daemon::repo_root().join("tests/fixtures/dialogue/jarvis_factory_stop_silence.wav"),
        &question,
        4.5,
    );
    let mut parts = vec![question];
    parts.extend(
        ["pos_jarvis_home_lights.wav", "pos_alexa_factory_status.wav", "pos_jarvis_vehicle_temp.wav"].map(fixture),
    );
    let stream = dir.path().join("stream.wav");
    concat_wavs(&stream, &parts, 0.5);
    let (_, printed) = run_on_file(&config, &stream);
    let topics = printed_topics(&printed);
    let asked = format!("sotto/{site}/confirm");
    assert!(topics.contains(&asked.as_str()), "the stop asks first: {topics:#?}");
    for served in [
        format!("sotto/{site}/home/light/kitchen"),
        format!("sotto/{site}/factory/press_2/status/get"),
        format!("sotto/{site}/vehicle/climate/temperature"),
    ] {
        assert!(topics.contains(&served.as_str()), "{served} was not served: {topics:#?}");
    }
    assert!(!topics.iter().any(|t| t.ends_with("/press_1/command")), "the unconfirmed stop never runs: {topics:#?}");
    let ended: Vec<&serde_json::Value> = printed
        .iter()
        .filter(|p| p.topic == "hermes/dialogueManager/sessionEnded")
        .map(|p| &p.payload["termination"]["reason"])
        .collect();
    assert_eq!(ended, [&json!("abortedByUser"), &json!("nominal"), &json!("nominal"), &json!("nominal")]);
}
