//! The broker goes away while the daemon listens (microphone-like input on stdin): a command
//! spoken during the outage is published once when the broker is back within the action's expiry,
//! and dropped when it comes back too late. Events queued meanwhile are not lost either.

use std::time::{Duration, Instant};

use sotto_tests::daemon::{one_at_a_time, silence, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::{Mosquitto, MqttMessage, MqttSubscriber};

/// Returns the action messages a persistent subscriber received after the broker came back,
/// `back_after` the daemon decided on the action.
fn outage(back_after: Duration) -> Vec<MqttMessage> {
    let _one = one_at_a_time();
    let mut broker = Mosquitto::start();
    let site = unique_site("outage");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let session = format!("{site}-sub");
    // Register a persistent session, so messages published while it is offline are kept for it.
    drop(MqttSubscriber::start(broker.port, &[&action_topic, "hermes/#"], Some(&session)));

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[mqtt]\nport = {}\nsite_id = \"{site}\"\nreconnect_max_secs = 1\n",
            broker.port
        ),
    );
    let mut daemon = LiveDaemon::start(&config);
    daemon.wait_for_log("MQTT connected", Duration::from_secs(30));
    daemon.speak_pcm(&silence(0.5));

    broker.stop();
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log(&format!("topic={action_topic}"), Duration::from_secs(60));
    let decided = Instant::now();

    std::thread::sleep(back_after.saturating_sub(decided.elapsed()));
    broker.restart();
    let subscriber = MqttSubscriber::start(broker.port, &[&action_topic, "hermes/#"], Some(&session));
    // The daemon reconnects within reconnect_max_secs and drains its queue.
    let received = subscriber.drain(Duration::from_secs(4));
    let (ok, log) = daemon.finish();
    assert!(ok, "daemon failed; log:\n{}", log.join("\n"));
    let events: Vec<&str> =
        received.iter().filter(|m| m.payload["siteId"] == site.as_str()).map(|m| m.topic.as_str()).collect();
    assert!(
        events.contains(&"hermes/asr/textCaptured") && events.contains(&"hermes/intent/climate.set_temperature"),
        "events queued during the outage arrive too: {events:?}"
    );
    received.into_iter().filter(|m| m.topic == action_topic).collect()
}

#[test]
fn an_action_spoken_while_the_broker_is_down_arrives_once_within_its_expiry() {
    let actions = outage(Duration::from_secs(2));
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));
}

#[test]
fn an_action_whose_expiry_passed_during_the_outage_is_dropped() {
    // vehicle.toml gives climate actions a 10 s expiry.
    let actions = outage(Duration::from_secs(12));
    assert!(actions.is_empty(), "an expired command must not run late: {actions:?}");
}
