//! Sotto speaking, through the built daemon with the real voice, Whisper and the wake-word models:
//! spoken questions and answers (each written as a WAV by `tts.wav_dir`), half duplex (its own
//! voice, heard back by the microphone, is neither an answer nor a wake word), and the Hermes
//! TTS and dialogue-manager requests against the real Mosquitto on 127.0.0.1:1883.
//!
//! The echo of Sotto's voice is made with `sotto say` (the daemon's own voice and text) and laid
//! into the input right after the command, where a microphone would hear the loudspeaker.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use sotto_tests::daemon::{
    concat_wavs, fixture, one_at_a_time, pcm_of, repo_root, run_on_file, silence, sotto, trim_wav, unique_site,
    write_config, LiveDaemon, Printed,
};
use sotto_tests::mqtt::{publish, MqttMessage, MqttSubscriber};

const MOSQUITTO: u16 = 1883;
/// Longer than the default tail: the echo laid in after the command starts up to ~0.5 s after the
/// endpoint, where a loudspeaker would start at once.
const TAIL: &str = "tail_ms = 1200";

/// Writes `text` in Sotto's voice to `path`.
fn say_wav(text: &str, path: &Path) {
    let out = sotto().arg("say").arg(text).arg("--output").arg(path).output().unwrap();
    assert!(out.status.success(), "sotto say failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn answers_dir(dir: &Path) -> PathBuf {
    let answers = dir.join("answers");
    std::fs::create_dir_all(&answers).unwrap();
    answers
}

fn embedded(site: &str, extra: &str) -> String {
    format!("[mqtt]\nbroker = \"embedded\"\nport = 0\nsite_id = \"{site}\"\n\n{extra}\n")
}

fn said(printed: &[Printed], site: &str) -> Vec<serde_json::Value> {
    printed.iter().filter(|p| p.topic == format!("sotto/{site}/said")).map(|p| p.payload.clone()).collect()
}

fn texts(said: &[serde_json::Value]) -> Vec<&str> {
    said.iter().map(|s| s["text"].as_str().unwrap_or_default()).collect()
}

/// Seconds of audio in a 16-bit mono WAV (from its size; the header is 44 bytes).
fn wav_seconds(path: &Path, rate: f64) -> f64 {
    (std::fs::metadata(path).unwrap().len() - 44) as f64 / 2.0 / rate
}

/// "Hey Jarvis! Stop press one.", then the question as the microphone hears it from the
/// loudspeaker, then a spoken "Yes.".
fn stop_then_echo_then_yes(dir: &Path) -> PathBuf {
    let command = dir.join("command.wav");
    trim_wav(&repo_root().join("tests/fixtures/dialogue/jarvis_factory_stop_silence.wav"), &command, 4.4);
    let (echo, yes) = (dir.join("echo.wav"), dir.join("yes.wav"));
    say_wav("Stop press one? Say yes or no.", &echo);
    say_wav("Yes.", &yes);
    let stream = dir.join("stream.wav");
    concat_wavs(&stream, &[command, echo, yes], 0.3);
    stream
}

#[test]
fn the_question_is_spoken_its_echo_is_not_the_answer_and_yes_acts() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let stream = stop_then_echo_then_yes(dir.path());
    let answers = answers_dir(dir.path());
    let site = unique_site("spoken-question");
    let config = write_config(
        dir.path(),
        &embedded(&site, &format!("[tts]\nwav_dir = {:?}\n{TAIL}", answers.display().to_string())),
    );
    let (output, printed) = run_on_file(&config, &stream);
    let log = String::from_utf8_lossy(&output.stderr);
    let spoken = said(&printed, &site);
    assert_eq!(texts(&spoken), ["Stop press one? Say yes or no.", "Stopping press one."], "{log}");
    for s in &spoken {
        let wav = PathBuf::from(s["wav"].as_str().expect("a WAV per text"));
        assert!(wav.starts_with(&answers) && wav.exists(), "{s}");
        let seconds = s["seconds"].as_f64().unwrap();
        assert!(seconds > 0.5 && (wav_seconds(&wav, 22_050.0) - seconds).abs() < 0.05, "{s}");
    }
    let confirms: Vec<&Printed> = printed.iter().filter(|p| p.topic == format!("sotto/{site}/confirm")).collect();
    assert_eq!(confirms.len(), 1, "asked once; its own echo was no answer: {confirms:#?}\n{log}");
    assert_eq!(confirms[0].payload["again"], json!(false));
    let action = printed.iter().find(|p| p.topic == format!("sotto/{site}/factory/press_1/command"));
    assert_eq!(action.map(|p| &p.payload), Some(&json!({"command": "stop"})), "{printed:#?}\n{log}");
}

/// The same stream without Sotto's voice: nothing mutes the microphone, and the echo of the
/// question (here just a recording in the stream) is taken for an unclear answer. This is what the
/// test above guards against.
#[test]
fn without_half_duplex_the_echo_would_be_taken_for_an_answer() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let stream = stop_then_echo_then_yes(dir.path());
    let site = unique_site("no-voice");
    let config = write_config(dir.path(), &embedded(&site, "[tts]\nenabled = false"));
    let (_, printed) = run_on_file(&config, &stream);
    let again =
        printed.iter().filter(|p| p.topic == format!("sotto/{site}/confirm") && p.payload["again"] == json!(true));
    assert_eq!(again.count(), 1, "{printed:#?}");
    // Without a voice the texts go out for another system to speak.
    let say: Vec<&Printed> = printed.iter().filter(|p| p.topic == "hermes/tts/say").collect();
    assert!(say.iter().any(|p| p.payload["text"] == json!("Stop press one? Say yes or no.")), "{say:#?}");
}

/// A response that says the wake word itself (the worst case) heard back through the microphone:
/// one wake word, one session. Without the voice (`enabled = false`), the same audio wakes Sotto
/// a second time, so the test can tell.
#[test]
fn the_wake_word_does_not_fire_on_sottos_own_voice() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let domain = dir.path().join("lights.toml");
    let home = std::fs::read_to_string(repo_root().join("intents/domains/home.toml")).unwrap();
    let echo_text = "Hey Jarvis! The kitchen lights are on.";
    std::fs::write(
        &domain,
        home.replace(
            "say = \"Turning the {room} lights {state}.\"",
            "say = \"Hey Jarvis! The {room} lights are {state}.\"",
        ),
    )
    .unwrap();
    let echo = dir.path().join("echo.wav");
    say_wav(echo_text, &echo);
    let stream = dir.path().join("stream.wav");
    concat_wavs(&stream, &[fixture("pos_jarvis_home_lights.wav"), echo], 0.3);
    let answers = answers_dir(dir.path());
    let wakes = |tts: &str| {
        let site = unique_site("own-voice");
        let extra = format!("[intents]\ndomains = [{:?}]\n\n[tts]\n{tts}\n", domain.display().to_string());
        let config = write_config(dir.path(), &embedded(&site, &extra));
        let (_, printed) = run_on_file(&config, &stream);
        let said = texts(&said(&printed, &site)).iter().map(|s| s.to_string()).collect::<Vec<_>>();
        (printed.iter().filter(|p| p.topic == "hermes/hotword/hey_jarvis/detected").count(), said)
    };
    let (with_voice, spoken) = wakes(&format!("wav_dir = {:?}\n{TAIL}", answers.display().to_string()));
    assert_eq!(spoken, [echo_text]);
    assert_eq!(with_voice, 1, "Sotto woke itself up");
    let (without, _) = wakes("enabled = false");
    assert_eq!(without, 2, "the echo carries a wake word the detector hears when not muted");
}

/// A daemon on stdin against Mosquitto, speaking into WAV files (paced as if played). The test
/// is its microphone: while it waits for a message it keeps sending silence, as a microphone
/// keeps delivering audio.
struct Live {
    site: String,
    daemon: LiveDaemon,
    subscriber: MqttSubscriber,
    /// Received, not yet waited for.
    pending: Vec<MqttMessage>,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start(label: &str) -> Live {
        let dir = tempfile::tempdir().unwrap();
        let site = unique_site(label);
        let answers = answers_dir(dir.path());
        let config = write_config(
            dir.path(),
            &format!(
                "[audio]\nsource = \"stdin\"\n\n[mqtt]\nhost = \"127.0.0.1\"\nport = {MOSQUITTO}\nsite_id = \"{site}\"\n\n[[wake.models]]\nname = \"alexa\"\n\n[tts]\nwav_dir = {:?}\n",
                answers.display().to_string()
            ),
        );
        let own = format!("sotto/{site}/#");
        let subscriber = MqttSubscriber::start(MOSQUITTO, &["hermes/#", &own], None);
        let daemon = LiveDaemon::start(&config);
        Live { site, daemon, subscriber, pending: Vec::new(), _dir: dir }
    }

    /// The next message on `topic` (others are kept for later waits), streaming silence meanwhile.
    fn wait_for(&mut self, topic: &str, timeout: Duration) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.pending.iter().position(|m| m.topic == topic) {
                return Some(self.pending.remove(i).payload);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            match self.subscriber.next(Duration::from_millis(10)) {
                // Only this site's: other daemons may share the broker.
                Some(m)
                    if m.topic.starts_with(&format!("sotto/{}/", self.site))
                        || m.payload["siteId"] == json!(self.site) =>
                {
                    self.pending.push(m)
                }
                Some(_) => {}
                None => self.daemon.speak_pcm(&silence(0.2)),
            }
        }
    }

    fn expect(&mut self, topic: &str) -> serde_json::Value {
        match self.wait_for(topic, Duration::from_secs(40)) {
            Some(payload) => payload,
            None => panic!("nothing on {topic}; pending {:#?}\n{}", self.pending, self.daemon.log_text()),
        }
    }

    /// The next text Sotto said on this site.
    fn said(&mut self) -> String {
        let topic = format!("sotto/{}/said", self.site);
        self.expect(&topic)["text"].as_str().unwrap().to_string()
    }

    fn publish(&self, topic: &str, payload: serde_json::Value) {
        publish(MOSQUITTO, topic, &payload.to_string(), false);
    }
}

#[test]
fn hermes_tts_say_is_spoken_and_finished_and_bad_texts_are_refused() {
    let _one = one_at_a_time();
    let mut live = Live::start("tts-say");
    let site = live.site.clone();
    for (id, text) in [("empty", String::new()), ("long", "word ".repeat(2000)), ("good", "Coffee is ready.".into())] {
        live.publish(
            "hermes/tts/say",
            json!({"text": text, "siteId": site, "id": id, "sessionId": null, "lang": "en"}),
        );
        let finished = live.expect("hermes/tts/sayFinished");
        assert_eq!(finished, json!({"id": id, "siteId": site, "sessionId": null}));
    }
    assert_eq!(live.said(), "Coffee is ready.", "only the good text was spoken");
    // Another site's request is not ours.
    live.publish("hermes/tts/say", json!({"text": "Not for you.", "siteId": "elsewhere", "id": "x"}));
    assert_eq!(live.wait_for("hermes/tts/sayFinished", Duration::from_secs(3)), None);
}

/// "Alexa, what is the status of press two?" → `machine.status`; the plant system asks a follow-up
/// with `continueSession` (spoken), the operator answers without a wake word, and the plant system
/// ends the next such session with a spoken text.
#[test]
fn continue_session_listens_without_a_wake_word_and_end_session_speaks_its_text() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let follow_up = dir.path().join("follow_up.wav");
    say_wav("Turn on the kitchen lights.", &follow_up);
    let mut live = Live::start("continue");
    live.daemon.speak("pos_alexa_factory_status.wav");
    let intent = live.expect("hermes/intent/machine.status");
    let session = intent["sessionId"].as_str().unwrap().to_string();
    live.publish(
        "hermes/dialogueManager/continueSession",
        json!({"sessionId": session, "text": "What next?", "intentFilter": ["light.set"]}),
    );
    assert_eq!(live.said(), "Checking the status of press two.");
    assert_eq!(live.said(), "What next?");
    live.daemon.speak_pcm(&silence(0.5));
    live.daemon.speak_pcm(&pcm_of(&follow_up));
    let lights = live.expect("hermes/intent/light.set");
    assert_eq!(lights["sessionId"], json!(session), "the same session, no wake word");
    let ended = live.expect("hermes/dialogueManager/sessionEnded");
    assert_eq!(ended["sessionId"], json!(session));
    assert_eq!(live.said(), "Turning the kitchen lights on.");

    live.daemon.speak("pos_alexa_factory_status.wav");
    let session = live.expect("hermes/intent/machine.status")["sessionId"].as_str().unwrap().to_string();
    live.publish("hermes/dialogueManager/endSession", json!({"sessionId": session, "text": "Press two is running."}));
    assert_eq!(live.said(), "Checking the status of press two.");
    assert_eq!(live.said(), "Press two is running.");
    let ended = live.expect("hermes/dialogueManager/sessionEnded");
    assert_eq!((&ended["sessionId"], &ended["termination"]["reason"]), (&json!(session), &json!("nominal")));
}

/// Without espeak-ng's data the voice cannot load: the daemon says so and goes on serving
/// commands, its texts published on `hermes/tts/say` for another system to speak.
#[test]
fn without_espeak_data_commands_are_still_served() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let site = unique_site("no-espeak");
    let config = write_config(dir.path(), &embedded(&site, ""));
    let output = sotto()
        .env("SOTTO_ESPEAK_DATA", dir.path().join("no-such-dir"))
        .args(["run", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(fixture("pos_jarvis_home_lights.wav"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    assert!(log.contains("no-such-dir") && log.contains("Sotto runs without its voice"), "{log}");
    let printed = sotto_tests::daemon::printed_messages(&output);
    assert!(printed.iter().any(|p| p.topic == format!("sotto/{site}/home/light/kitchen")), "{printed:#?}");
    let say = printed.iter().find(|p| p.topic == "hermes/tts/say").expect("the text goes out for another speaker");
    assert_eq!(say.payload["text"], json!("Turning the kitchen lights on."));
}
