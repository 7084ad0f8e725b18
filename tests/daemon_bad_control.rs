//! Bad MQTT control traffic at a running daemon (a private Mosquitto, so other tests' daemons on
//! the shared broker never see it): malformed JSON, wrong types, bytes that are not UTF-8, a
//! 1 MB message, and well-formed commands for other sites. Each malformed one is logged with its
//! topic and counted, none mutes or otherwise changes the daemon, the connection survives, and
//! the next spoken command is served.

use std::time::Duration;

use sotto_tests::daemon::{one_at_a_time, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::{publish_bytes, Mosquitto, MqttSubscriber};

/// A field of the `HubStats { … }` the daemon logs when it stops.
fn stat(log: &[String], name: &str) -> u64 {
    let line = log.iter().rev().find(|l| l.contains("sotto stopped")).expect("the daemon logs its counters at exit");
    let after = line.split(&format!("{name}: ")).nth(1).unwrap_or_else(|| panic!("no {name} in {line}"));
    after.split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn malformed_wrong_typed_oversized_and_foreign_control_messages_are_ignored_and_counted() {
    let _one = one_at_a_time();
    let broker = Mosquitto::start();
    let site = unique_site("control");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let subscriber = MqttSubscriber::start(broker.port, &[&action_topic], None);
    let dir = tempfile::tempdir().unwrap();
    // Speech-to-text gets a minute: on a loaded 2-core machine Whisper alone has taken over 15 s.
    let config = format!(
        "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[stt]\ntimeout_s = 60\n[mqtt]\nport = {}\nsite_id = \"{site}\"\n",
        broker.port
    );
    let mut daemon = LiveDaemon::start(&write_config(dir.path(), &config));
    daemon.wait_for_log("MQTT connected", Duration::from_secs(10));

    let mute = format!("sotto/{site}/mute");
    let malformed: Vec<(String, Vec<u8>)> = vec![
        (mute.clone(), b"[1, 2, 3]".to_vec()),
        (format!("sotto/{site}/unmute"), br#""yes""#.to_vec()),
        (format!("sotto/{site}/reload"), br#"{"why": "#.to_vec()),
        (mute.clone(), vec![0xff, 0xfe, 0x00, 0x80]),
        ("hermes/hotword/toggleOff".into(), br#"{"siteId": 42}"#.to_vec()),
        ("hermes/hotword/toggleOff".into(), b"null".to_vec()),
        (
            "hermes/dialogueManager/startSession".into(),
            format!(r#"{{"siteId": "{site}", "init": {{"type": 5}}}}"#).into_bytes(),
        ),
        (
            "hermes/dialogueManager/startSession".into(),
            format!(r#"{{"siteId": "{site}", "init": "action"}}"#).into_bytes(),
        ),
    ];
    for (topic, payload) in &malformed {
        publish_bytes(broker.port, topic, payload);
    }
    // Well-formed, but for other sites: not ours, so neither obeyed nor counted as malformed.
    publish_bytes(broker.port, "hermes/hotword/toggleOff", br#"{"siteId": "some-other-site"}"#);
    publish_bytes(
        broker.port,
        "hermes/dialogueManager/startSession",
        br#"{"siteId": "some-other-site", "init": {"type": "action"}}"#,
    );
    // 1 MB on a topic the daemon obeys: refused before it can cost memory or the connection.
    let mut huge = b"{\"padding\": \"".to_vec();
    huge.resize(1 << 20, b'x');
    huge.extend_from_slice(b"\"}");
    publish_bytes(broker.port, &mute, &huge);

    // Still listening (not muted by anything above) and still connected.
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    let action = subscriber
        .expect(&action_topic, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the command after the garbage is served: {e}\n{}", daemon.log_text()));
    assert_eq!(action.payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));

    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
    let ignored: Vec<&String> = log.iter().filter(|l| l.contains("malformed MQTT control message ignored")).collect();
    assert_eq!(ignored.len(), malformed.len(), "each one logged:\n{}", log.join("\n"));
    for (topic, _) in &malformed {
        assert!(ignored.iter().any(|l| l.contains(topic.as_str())), "the log names {topic}");
    }
    assert_eq!(stat(&log, "malformed_control"), malformed.len() as u64);
    assert_eq!(stat(&log, "connection_losses"), 0, "no message cost the connection:\n{}", log.join("\n"));
    assert_eq!(stat(&log, "control_dropped"), 0);
    assert!(!log.iter().any(|l| l.trim_end().ends_with(": muted")), "nothing muted the daemon");
    assert!(
        !log.iter().any(|l| l.contains("some-other-site") && l.contains("MQTT control message")),
        "other sites are not obeyed"
    );
}
