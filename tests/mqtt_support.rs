//! The MQTT test helpers themselves: a private Mosquitto that can be stopped and restarted, and a
//! `mosquitto_sub` subscriber whose persistent session keeps what was published while it was away.
//! The daemon's end-to-end MQTT tests build on these.

use std::time::Duration;

use serde_json::json;
use sotto_tests::mqtt::{publish, Mosquitto, MqttSubscriber};

#[test]
fn subscriber_parses_json_and_text_and_survives_a_broker_restart() {
    let mut broker = Mosquitto::start();
    let id = format!("helper-test-{}", std::process::id());
    let sub = MqttSubscriber::start(broker.port, &["helper/#"], Some(&id));

    publish(broker.port, "helper/json", r#"{"drink": "latte", "count": 2}"#, false);
    publish(broker.port, "helper/text", "plain words", true);
    let got = sub.expect("helper/json", Duration::from_secs(5)).unwrap();
    assert_eq!(got.payload, json!({"drink": "latte", "count": 2}));
    let got = sub.expect("helper/text", Duration::from_secs(5)).unwrap();
    assert_eq!(got.payload, json!("plain words"));
    assert!(!got.retain, "live delivery clears the retain flag");

    // While the subscriber is gone, the broker keeps its session and queues for it; both survive
    // a broker restart.
    drop(sub);
    publish(broker.port, "helper/while-away", "1", false);
    broker.stop();
    assert!(!broker.is_running());
    broker.restart();
    let sub = MqttSubscriber::start(broker.port, &["helper/#"], Some(&id));
    let got = sub.drain(Duration::from_secs(1));
    let topics: Vec<_> = got.iter().map(|m| (m.topic.as_str(), m.retain)).collect();
    assert!(topics.contains(&("helper/while-away", false)), "{got:?}");
    assert!(topics.contains(&("helper/text", true)), "the retained message is replayed: {got:?}");
    assert_eq!(got.iter().filter(|m| m.topic == "helper/json").count(), 0, "{got:?}");
}
