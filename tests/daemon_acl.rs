//! The Mosquitto ACL documented in `systemd/mosquitto-acl.example` is sufficient and tight: a
//! daemon restricted by it (password authentication) publishes its status, a confirmation notice,
//! its Hermes events and actions, and receives its control topics, with nothing denied; the same
//! user publishing outside the ACL (another site, a control topic) is dropped by the broker.

use std::time::Duration;

use sotto_tests::daemon::{
    one_at_a_time, pcm_bytes, pcm_of, repo_root, silence, unique_site, write_config, LiveDaemon,
};
use sotto_tests::mqtt::{publish, MqttMessage, MqttSubscriber};
use sotto_tests::secure_mqtt::{SecureMosquitto, SecureOptions};

const USER: &str = "sotto";
const PASSWORD: &str = "acl-test-password";

/// The shipped example with this test's site id in place of `kitchen`.
fn documented_acl(site: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("systemd/mosquitto-acl.example")).unwrap();
    assert!(text.contains("user sotto\n"), "the example ACL is for user sotto");
    text.replace("sotto/kitchen/", &format!("sotto/{site}/"))
}

fn on<'a>(seen: &'a [MqttMessage], topic: &str) -> Vec<&'a MqttMessage> {
    seen.iter().filter(|m| m.topic == topic).collect()
}

#[test]
fn the_documented_acl_lets_the_daemon_work_and_confines_its_user() {
    let _one = one_at_a_time();
    let site = unique_site("acl");
    let acl = documented_acl(&site);
    let broker = SecureMosquitto::start(&SecureOptions { user: USER, password: PASSWORD, tls: false, acl: Some(&acl) });
    let observer = MqttSubscriber::start(broker.observer_port, &["#"], None);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).unwrap();
    let password_line = format!("password_file = {:?}", password_file.display().to_string());
    let config = format!(
        "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[stt]\ntimeout_s = 90\n[intents]\nconfirm_timeout_s = 180\n{}",
        broker.daemon_mqtt_config(&site, USER, &password_line)
    );
    // Every shipped domain, as the example ACL lists them all. Generous timeouts: the "yes" must be
    // transcribed within the confirmation window even on a machine busy with other builds.
    let path = write_config(dir.path(), &config);

    let mut daemon = LiveDaemon::start(&path);
    daemon.wait_for_log("MQTT connected", Duration::from_secs(30));
    // A control topic (read-only for the daemon's user) reaches it: the subscription was allowed.
    publish(broker.observer_port, &format!("sotto/{site}/reload"), "", false);
    daemon.wait_for_log("config reloaded", Duration::from_secs(10));
    // A plain action, then a risky one: the confirmation notice, the spoken "yes", the action.
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log("action intent=climate.set_temperature", Duration::from_secs(200));
    // The recording says "Hey Jarvis! Stop press one." (speech ends at 2.8 s) and "Yes." from 6.6 s
    // on: a person answers after the prompt, so the test does too. The command part keeps 1.5 s of
    // the pause (enough to end the utterance); the answer part starts 0.3 s before the "yes". So the
    // silence heard while waiting for the answer stays well under the 4 s no-speech window, however
    // much of the command's tail the daemon had read before it asked.
    let dialogue = pcm_of(&repo_root().join("tests/fixtures/dialogue/jarvis_factory_stop_yes.wav"));
    daemon.speak_pcm(&dialogue[..pcm_bytes(4.3)]);
    daemon.wait_for_log("waiting for a spoken yes/no", Duration::from_secs(200));
    daemon.speak_pcm(&dialogue[pcm_bytes(6.3)..]);
    daemon.speak_pcm(&silence(1.0));
    daemon.wait_for_log("confirmed", Duration::from_secs(200));
    let (ok, log) = daemon.finish();
    let log = log.join("\n");
    assert!(ok, "{log}");
    assert!(!log.contains("refused a message") && !log.contains("cannot subscribe"), "{log}");

    // The same user, outside its ACL: another site's action, a control topic, a Hermes command.
    let denied = [
        format!("sotto/{site}-other/vehicle/window/front_left"),
        format!("sotto/{site}/reload"),
        "hermes/dialogueManager/startSession".to_string(),
    ];
    for topic in &denied {
        // Mosquitto 2 answers an MQTT 5 publish it refuses with PUBACK reason 135.
        let (_, output) = broker.publish_as(USER, PASSWORD, topic, r#"{"siteId": "x"}"#);
        assert!(output.contains("Not authorized"), "publishing to {topic} should be refused:\n{output}");
    }
    // And inside it, as a control that publishing as this user reaches the observer at all.
    let allowed = format!("sotto/{site}/vehicle/window/rear_left");
    let (published, output) = broker.publish_as(USER, PASSWORD, &allowed, r#"{"position": 50}"#);
    assert!(published, "{output}");

    let seen = observer.drain(Duration::from_secs(2));
    let topics: Vec<&str> = seen.iter().map(|m| m.topic.as_str()).collect();
    let status: Vec<&serde_json::Value> =
        on(&seen, &format!("sotto/{site}/status")).into_iter().map(|m| &m.payload).collect();
    assert_eq!(status, [&serde_json::json!("online"), &serde_json::json!("offline")], "{topics:?}");
    for topic in [
        "hermes/hotword/hey_jarvis/detected".to_string(),
        "hermes/dialogueManager/sessionStarted".into(),
        "hermes/asr/textCaptured".into(),
        "hermes/intent/climate.set_temperature".into(),
        format!("sotto/{site}/vehicle/climate/temperature"),
        format!("sotto/{site}/confirm"),
        format!("sotto/{site}/factory/press_1/command"),
        "hermes/dialogueManager/sessionEnded".into(),
        allowed.clone(),
    ] {
        assert!(
            !on(&seen, &topic).is_empty(),
            "nothing on {topic}; the observer saw {topics:?}\ndaemon log:\n{log}\nbroker log:\n{}",
            broker.log()
        );
    }
    for topic in &denied {
        let from_user: Vec<_> = on(&seen, topic).into_iter().filter(|m| m.payload["siteId"] == "x").collect();
        assert!(from_user.is_empty(), "{topic} outside the ACL was delivered: {from_user:?}");
    }
    let broker_log = broker.log();
    let client = format!("sotto-{site}");
    assert!(
        !broker_log.lines().any(|l| l.contains("Denied") && l.contains(&client)),
        "the broker denied the daemon something the ACL should allow:\n{broker_log}"
    );
    assert!(broker_log.contains("Denied PUBLISH"), "the broker should log the refused publishes:\n{broker_log}");
}
