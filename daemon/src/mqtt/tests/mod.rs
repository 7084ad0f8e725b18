//! Hub tests against real brokers: the Mosquitto on 127.0.0.1:1883 (started by
//! `tools/setup.d/mqtt.sh`), private Mosquitto processes on free ports that the tests stop and
//! restart, and the embedded rumqttd. Each test uses its own site id and topics, so they can run
//! in parallel on one broker.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::v5::mqttbytes::v5::{Filter, Packet};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use serde_json::json;
use tokio::sync::mpsc;

use sotto_tests::mqtt::Mosquitto;

use super::*;

mod tls;

const SHARED_MOSQUITTO_PORT: u16 = 1883;

fn unique_site() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("t{}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn require_shared_mosquitto() {
    if TcpStream::connect(("127.0.0.1", SHARED_MOSQUITTO_PORT)).is_err() {
        panic!(
            "no MQTT broker on 127.0.0.1:{SHARED_MOSQUITTO_PORT}: these tests need Mosquitto there \
             (tools/setup.d/mqtt.sh starts one; or `mosquitto -d -p {SHARED_MOSQUITTO_PORT}`)"
        );
    }
}

#[derive(Debug, Clone)]
struct Received {
    topic: String,
    payload: String,
    retain: bool,
    expiry: Option<u32>,
    user_properties: Vec<(String, String)>,
}

impl Received {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload)
            .unwrap_or_else(|e| panic!("{} payload is not JSON ({e}): {}", self.topic, self.payload))
    }
}

/// A second MQTT 5 client that records what it receives.
struct Subscriber {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// `persistent`: keep the session (and its queued messages) across broker restarts.
    async fn connect(port: u16, filters: &[String], persistent: bool) -> Subscriber {
        let mut options = MqttOptions::new(format!("{}-sub", unique_site()), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(5));
        if persistent {
            options.set_clean_start(false).set_session_expiry_interval(Some(600));
        }
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let props = p.properties.clone().unwrap_or_default();
                        let _ = tx.send(Received {
                            topic: String::from_utf8_lossy(&p.topic).into_owned(),
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retain: p.retain,
                            expiry: props.message_expiry_interval,
                            user_properties: props.user_properties,
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        let filters: Vec<Filter> = filters.iter().map(|f| Filter::new(f.clone(), QoS::AtLeastOnce)).collect();
        client.subscribe_many(filters).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), subscribed_rx.recv())
            .await
            .expect("subscriber got no SUBACK within 5 s");
        Subscriber { client, rx, task }
    }

    /// The next message on `topic` (others are skipped), or panics after `timeout`.
    async fn expect(&mut self, topic: &str, timeout: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(msg)) if msg.topic == topic => return msg,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("subscriber stopped while waiting for {topic}"),
                Err(_) => panic!("nothing on {topic} within {timeout:?}"),
            }
        }
    }

    /// Everything received within `window`.
    async fn drain(&mut self, window: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + window;
        let mut out = Vec::new();
        while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            out.push(msg);
        }
        out
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn settings(site: &str, port: u16) -> MqttSettings {
    MqttSettings { site_id: site.into(), port, reconnect_max_secs: 1, ..Default::default() }
}

fn capture() -> (PrintMode, Arc<Mutex<Vec<u8>>>) {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    (PrintMode::Writer(buffer.clone()), buffer)
}

fn printed(buffer: &Arc<Mutex<Vec<u8>>>) -> Vec<serde_json::Value> {
    let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("printed line is not JSON ({e}): {l}")))
        .collect()
}

fn intent_event(site: &str, intent_name: &str) -> HermesEvent {
    HermesEvent::Intent(IntentRecognized {
        input: "two large lattes".into(),
        intent: IntentInfo { intent_name: intent_name.into(), confidence_score: 1.0 },
        slots: vec![Slot {
            slot_name: "count".into(),
            entity: "sotto/number".into(),
            raw_value: "two".into(),
            value: SlotValue { kind: "Number".into(), value: json!(2) },
            range: None,
            confidence: None,
        }],
        site_id: site.into(),
        session_id: Some("session-1".into()),
        custom_data: None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mosquitto_actions_events_status_and_last_will() {
    require_shared_mosquitto();
    let site = unique_site();
    let (print, printed_buffer) = capture();
    let (hub, _control) = MqttHub::start(&settings(&site, SHARED_MOSQUITTO_PORT), print).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();

    let action_topic = format!("test/{site}/coffee/order");
    let intent_name = format!("OrderCoffee_{site}");
    let status_topic = format!("sotto/{site}/status");
    let mut sub = Subscriber::connect(
        SHARED_MOSQUITTO_PORT,
        &[status_topic.clone(), action_topic.clone(), format!("hermes/intent/{intent_name}")],
        false,
    )
    .await;

    // Subscribed after the hub came up: the status must be the retained "online".
    let status = sub.expect(&status_topic, Duration::from_secs(5)).await;
    assert_eq!((status.payload.as_str(), status.retain), ("online", true));

    let action = Action {
        topic: action_topic.clone(),
        payload: json!({"drink": "latte", "size": "large", "count": 2}),
        qos: QoS::AtLeastOnce,
        retain: false,
        expiry: Duration::from_secs(10),
    };
    let id = hub.publish_action(action).unwrap();
    hub.publish_event(&intent_event(&site, &intent_name)).unwrap();
    hub.flush(Duration::from_secs(5)).await.unwrap();

    let got = sub.expect(&action_topic, Duration::from_secs(5)).await;
    assert_eq!(got.json(), json!({"drink": "latte", "size": "large", "count": 2}));
    assert!(matches!(got.expiry, Some(1..=10)), "message expiry {:?} should be set and ≤ 10 s", got.expiry);
    assert_eq!(got.user_properties, vec![("sotto-action-id".to_string(), id.clone())]);

    let intent = sub.expect(&format!("hermes/intent/{intent_name}"), Duration::from_secs(5)).await;
    assert_eq!(
        intent.json(),
        json!({
            "input": "two large lattes",
            "intent": {"intentName": intent_name, "confidenceScore": 1.0},
            "slots": [{"slotName": "count", "entity": "sotto/number", "rawValue": "two",
                       "value": {"kind": "Number", "value": 2}}],
            "siteId": site,
            "sessionId": "session-1"
        })
    );

    // Print mode saw the same messages, in publishing order.
    let lines = printed(&printed_buffer);
    assert_eq!(
        lines,
        vec![
            json!({"topic": status_topic, "payload": "online"}),
            json!({"topic": action_topic, "payload": {"drink": "latte", "size": "large", "count": 2}}),
            json!({"topic": format!("hermes/intent/{intent_name}"), "payload": intent.json()}),
        ]
    );
    let stats = hub.stats();
    assert_eq!((stats.actions_published, stats.published), (1, 3), "{stats:?}");

    // No DISCONNECT: the broker must publish the last will, retained.
    hub.kill_for_test();
    let will = sub.expect(&status_topic, Duration::from_secs(10)).await;
    assert_eq!((will.payload.as_str(), will.retain), ("offline", false), "live delivery of the will");
    drop(sub);
    let mut late = Subscriber::connect(SHARED_MOSQUITTO_PORT, std::slice::from_ref(&status_topic), false).await;
    let retained = late.expect(&status_topic, Duration::from_secs(5)).await;
    assert_eq!((retained.payload.as_str(), retained.retain), ("offline", true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_delivers_queued_action_once_and_drops_expired() {
    let mut broker = Mosquitto::start();
    let site = unique_site();
    let (hub, _control) = MqttHub::start(&settings(&site, broker.port), PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();

    let fresh_topic = format!("test/{site}/fresh");
    let stale_topic = format!("test/{site}/stale");
    let event_name = format!("Event_{site}");
    let event_topic = format!("hermes/intent/{event_name}");
    // A persistent session: Mosquitto keeps queueing for it while the test restarts the broker.
    let status_topic = format!("sotto/{site}/status");
    let mut sub = Subscriber::connect(
        broker.port,
        &[fresh_topic.clone(), stale_topic.clone(), event_topic.clone(), status_topic.clone()],
        true,
    )
    .await;
    assert_eq!(sub.expect(&status_topic, Duration::from_secs(5)).await.payload, "online");

    broker.stop();
    let deadline = Instant::now() + Duration::from_secs(5);
    while hub.is_connected() {
        assert!(Instant::now() < deadline, "hub did not notice the broker stopping");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut fresh = Action::new(fresh_topic.clone(), json!({"cmd": "fresh"}));
    fresh.expiry = Duration::from_secs(30);
    let mut stale = Action::new(stale_topic.clone(), json!({"cmd": "stale"}));
    stale.expiry = Duration::from_millis(500);
    hub.publish_action(fresh).unwrap();
    hub.publish_action(stale).unwrap();
    hub.publish_event(&intent_event(&site, &event_name)).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    broker.restart();

    hub.wait_connected(Duration::from_secs(10)).await.unwrap();
    hub.flush(Duration::from_secs(10)).await.unwrap();
    let got = sub.drain(Duration::from_secs(3)).await;
    let on = |topic: &str| got.iter().filter(|m| m.topic == topic).count();
    assert_eq!(on(&fresh_topic), 1, "the action within its expiry arrives exactly once: {got:?}");
    assert_eq!(on(&stale_topic), 0, "the expired action is dropped: {got:?}");
    assert_eq!(on(&event_topic), 1, "the event queued meanwhile arrives too: {got:?}");
    let statuses: Vec<&str> = got.iter().filter(|m| m.topic == status_topic).map(|m| m.payload.as_str()).collect();
    // Mosquitto may deliver the hub's last will ("offline") as it goes down or comes back; what
    // matters is that "online" follows once the hub is back.
    assert_eq!(statuses.last(), Some(&"online"), "online again after the reconnect: {got:?}");
    let fresh_msg = got.iter().find(|m| m.topic == fresh_topic).unwrap();
    assert_eq!(fresh_msg.json(), json!({"cmd": "fresh"}));
    assert!(matches!(fresh_msg.expiry, Some(1..=29)), "remaining expiry, not the original: {:?}", fresh_msg.expiry);

    let stats = hub.stats();
    assert_eq!(stats.dropped_expired, 1, "{stats:?}");
    assert_eq!(stats.actions_published, 1, "{stats:?}");
    assert!(stats.connection_losses >= 1 && stats.connects >= 2, "{stats:?}");
    hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_wait_while_the_broker_is_down_at_start() {
    // The daemon must come up, and keep commands, before the broker does.
    let mut broker = Mosquitto::start();
    let site = unique_site();
    let topic = format!("test/{site}/early");
    let mut sub = Subscriber::connect(broker.port, std::slice::from_ref(&topic), true).await;
    broker.stop();

    let (hub, _control) = MqttHub::start(&settings(&site, broker.port), PrintMode::Off).await.unwrap();
    let mut early = Action::new(topic.clone(), json!("raw text"));
    early.expiry = Duration::from_secs(30);
    hub.publish_action(early).unwrap();
    let err = hub.flush(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, MqttError::FlushTimeout { queued: 1, .. }), "{err}");

    broker.restart();
    hub.wait_connected(Duration::from_secs(10)).await.unwrap();
    hub.flush(Duration::from_secs(10)).await.unwrap();
    let got = sub.drain(Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1, "exactly once: {got:?}");
    assert_eq!(got[0].payload, "raw text", "a JSON string is published as its raw text");
    hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_round_trip_with_controls_and_clean_shutdown() {
    let site = unique_site();
    let mut s = settings(&site, 0);
    s.broker = BrokerMode::Embedded;
    let (hub, mut control) = MqttHub::start(&s, PrintMode::Off).await.unwrap();
    let port = hub.embedded_port().expect("embedded broker port");
    assert_ne!(port, 0);
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();

    let status_topic = format!("sotto/{site}/status");
    let action_topic = format!("test/{site}/lights");
    let mut sub = Subscriber::connect(port, &[status_topic.clone(), action_topic.clone()], false).await;
    let status = sub.expect(&status_topic, Duration::from_secs(5)).await;
    assert_eq!((status.payload.as_str(), status.retain), ("online", true));

    hub.publish_action(Action::new(action_topic.clone(), json!({"light": "kitchen", "on": true}))).unwrap();
    let got = sub.expect(&action_topic, Duration::from_secs(5)).await;
    assert_eq!(got.json(), json!({"light": "kitchen", "on": true}));

    sub.client.publish(format!("sotto/{site}/mute"), QoS::AtLeastOnce, false, "").await.unwrap();
    let msg = tokio::time::timeout(Duration::from_secs(5), control.recv()).await.unwrap().unwrap();
    assert_eq!(msg, ControlMessage::Mute);

    hub.shutdown(Duration::from_secs(5)).await.unwrap();
    let offline = sub.expect(&status_topic, Duration::from_secs(5)).await;
    assert_eq!(offline.payload, "offline");
    assert_eq!(hub.stats().connection_losses, 0, "a clean shutdown is not a lost connection");
    assert!(hub.publish_action(Action::new(action_topic, json!({}))).is_err(), "no publishing after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_publishes_the_last_will() {
    let site = unique_site();
    let mut s = settings(&site, 0);
    s.broker = BrokerMode::Embedded;
    let (hub, _control) = MqttHub::start(&s, PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();
    let status_topic = format!("sotto/{site}/status");
    let mut sub = Subscriber::connect(hub.embedded_port().unwrap(), std::slice::from_ref(&status_topic), false).await;
    assert_eq!(sub.expect(&status_topic, Duration::from_secs(5)).await.payload, "online");
    hub.kill_for_test();
    assert_eq!(sub.expect(&status_topic, Duration::from_secs(10)).await.payload, "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_control_payloads_are_ignored_and_counted() {
    require_shared_mosquitto();
    let site = unique_site();
    // A retained command from earlier must not fire when the hub (re)subscribes.
    let reload_topic = format!("sotto/{site}/reload");
    let mut early = Subscriber::connect(SHARED_MOSQUITTO_PORT, std::slice::from_ref(&reload_topic), false).await;
    early.client.publish(reload_topic.clone(), QoS::AtLeastOnce, true, "{}").await.unwrap();
    early.expect(&reload_topic, Duration::from_secs(5)).await; // the broker has it
    let (hub, mut control) = MqttHub::start(&settings(&site, SHARED_MOSQUITTO_PORT), PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();
    // The hub subscribes right after CONNACK; give the SUBACK a moment.
    let sub = Subscriber::connect(SHARED_MOSQUITTO_PORT, &[format!("sotto/{site}/none")], false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let publish = |topic: String, payload: &'static [u8]| {
        let client = sub.client.clone();
        async move { client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap() }
    };
    publish(format!("sotto/{site}/mute"), b"please mute").await;
    publish(format!("sotto/{site}/reload"), b"[1, 2]").await;
    publish(format!("sotto/{site}/unmute"), &[0xff, 0x00]).await;
    publish("hermes/dialogueManager/startSession".into(), b"{\"siteId\": 42}").await;
    // For another site: well-formed, not ours, not counted as malformed.
    publish("hermes/hotword/toggleOff".into(), b"{\"siteId\": \"somewhere-else\"}").await;
    let start =
        format!("{{\"siteId\": \"{site}\", \"init\": {{\"type\": \"action\", \"sendIntentNotRecognized\": true}}}}");
    sub.client.publish("hermes/dialogueManager/startSession", QoS::AtLeastOnce, false, start).await.unwrap();
    publish(format!("sotto/{site}/unmute"), b"{}").await;

    let first = tokio::time::timeout(Duration::from_secs(5), control.recv()).await.unwrap().unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), control.recv()).await.unwrap().unwrap();
    assert_eq!(
        first,
        ControlMessage::StartSession(StartSession { send_intent_not_recognized: true, ..Default::default() })
    );
    assert_eq!(second, ControlMessage::Unmute);
    assert_eq!(hub.stats().malformed_control, 4, "{:?}", hub.stats());
    assert!(tokio::time::timeout(Duration::from_millis(300), control.recv()).await.is_err(), "nothing else");
    hub.shutdown(Duration::from_secs(2)).await.unwrap();
    // An empty retained payload clears the retained message.
    early.client.publish(reload_topic, QoS::AtLeastOnce, true, "").await.unwrap();
    early.expect(&format!("sotto/{site}/reload"), Duration::from_secs(5)).await;
}

/// What the fault-injecting proxy forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Pass,
    /// Client → broker bytes are swallowed: the PUBLISH never arrives.
    DropUp,
    /// Broker → client bytes are swallowed: the PUBACK never arrives.
    DropDown,
}

/// A TCP proxy in front of a broker that can lose one direction and cut every connection, to put
/// the hub in the "written but not acknowledged" state deterministically.
struct FaultyProxy {
    port: u16,
    flow: Arc<Mutex<Flow>>,
    /// Every byte the proxy has swallowed, either way.
    swallowed: Arc<Mutex<Vec<u8>>>,
    cut: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultyProxy {
    async fn start(upstream: u16) -> FaultyProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let flow = Arc::new(Mutex::new(Flow::Pass));
        let swallowed = Arc::new(Mutex::new(Vec::new()));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (flow2, cut2, swallowed2) = (flow.clone(), cut.clone(), swallowed.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { continue };
                let mut cut_rx = cut2.subscribe();
                cut_rx.borrow_and_update();
                let (flow, swallowed) = (flow2.clone(), swallowed2.clone());
                tokio::spawn(async move {
                    let (client_rd, client_wr) = client.into_split();
                    let (broker_rd, broker_wr) = broker.into_split();
                    tokio::select! {
                        _ = pump(client_rd, broker_wr, flow.clone(), Flow::DropUp, swallowed.clone()) => {}
                        _ = pump(broker_rd, client_wr, flow, Flow::DropDown, swallowed) => {}
                        _ = cut_rx.changed() => {}
                    }
                });
            }
        });
        FaultyProxy { port, flow, swallowed, cut, task }
    }

    /// Whether the bytes of `text` were among those swallowed. The hub counts a packet in flight
    /// once it wrote it, which can be before the proxy read it: a test that lets the flow pass
    /// again must first see the packet swallowed, or the proxy forwards it after all.
    fn has_swallowed(&self, text: &str) -> bool {
        self.swallowed.lock().unwrap().windows(text.len()).any(|w| w == text.as_bytes())
    }

    fn set(&self, flow: Flow) {
        *self.flow.lock().unwrap() = flow;
    }

    fn cut_all(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    flow: Arc<Mutex<Flow>>,
    swallowed_when: Flow,
    swallowed: Arc<Mutex<Vec<u8>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *flow.lock().unwrap() == swallowed_when {
            swallowed.lock().unwrap().extend_from_slice(&buf[..n]);
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_lost_in_transit_is_sent_again_after_reconnect() {
    require_shared_mosquitto();
    let proxy = FaultyProxy::start(SHARED_MOSQUITTO_PORT).await;
    let site = unique_site();
    let topic = format!("test/{site}/lost");
    let mut sub = Subscriber::connect(SHARED_MOSQUITTO_PORT, std::slice::from_ref(&topic), false).await;
    let (hub, _control) = MqttHub::start(&settings(&site, proxy.port), PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();
    hub.flush(Duration::from_secs(5)).await.unwrap(); // the "online" status

    proxy.set(Flow::DropUp);
    let id = hub.publish_action(Action::new(topic.clone(), json!({"n": 1}))).unwrap();
    wait_until("the action is written but unacknowledged", Duration::from_secs(5), || {
        let stats = hub.stats();
        (stats.handed, stats.in_flight) == (0, 1)
    })
    .await;
    wait_until("the proxy swallowed the PUBLISH", Duration::from_secs(5), || proxy.has_swallowed(&topic)).await;
    proxy.set(Flow::Pass);
    proxy.cut_all();

    hub.flush(Duration::from_secs(10)).await.unwrap();
    let got = sub.drain(Duration::from_secs(1)).await;
    assert_eq!(got.len(), 1, "sent once more after the reconnect, not lost: {got:?}");
    assert_eq!(got[0].user_properties, vec![("sotto-action-id".to_string(), id.clone())]);
    let stats = hub.stats();
    assert_eq!((stats.resent, stats.actions_published, stats.connection_losses), (1, 1, 1), "{stats:?}");
    hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// The documented residual risk of QoS 1: the broker got the PUBLISH, its PUBACK died with the
/// connection, so the hub cannot tell and sends it again. Both copies carry the same action id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_puback_gives_one_duplicate_with_the_same_action_id() {
    require_shared_mosquitto();
    let proxy = FaultyProxy::start(SHARED_MOSQUITTO_PORT).await;
    let site = unique_site();
    let topic = format!("test/{site}/dup");
    let mut sub = Subscriber::connect(SHARED_MOSQUITTO_PORT, std::slice::from_ref(&topic), false).await;
    let (hub, _control) = MqttHub::start(&settings(&site, proxy.port), PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(5)).await.unwrap();
    hub.flush(Duration::from_secs(5)).await.unwrap();

    proxy.set(Flow::DropDown);
    let id = hub.publish_action(Action::new(topic.clone(), json!({"n": 2}))).unwrap();
    let first = sub.expect(&topic, Duration::from_secs(5)).await;
    // The subscriber has it, but the PUBACK is lost on the way back.
    wait_until("the hub saw its PUBLISH written", Duration::from_secs(5), || hub.stats().in_flight == 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hub.stats().in_flight, 1, "the PUBACK must not have reached the hub");
    proxy.set(Flow::Pass);
    proxy.cut_all();

    hub.flush(Duration::from_secs(10)).await.unwrap();
    let mut got = vec![first];
    got.extend(sub.drain(Duration::from_secs(1)).await);
    assert_eq!(got.len(), 2, "{got:?}");
    for msg in &got {
        assert_eq!(msg.user_properties, vec![("sotto-action-id".to_string(), id.clone())]);
    }
    hub.shutdown(Duration::from_secs(2)).await.unwrap();
}

/// Benchmark, not a test: action latency from `publish_action` to a subscriber, one at a time.
/// `cargo test -p sotto mqtt::tests::bench_action_latency -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run explicitly"]
async fn bench_action_latency() {
    require_shared_mosquitto();
    const N: usize = 300;
    for embedded in [false, true] {
        let site = unique_site();
        let mut s = settings(&site, SHARED_MOSQUITTO_PORT);
        if embedded {
            s.broker = BrokerMode::Embedded;
            s.port = 0;
        }
        let (hub, _control) = MqttHub::start(&s, PrintMode::Off).await.unwrap();
        hub.wait_connected(Duration::from_secs(5)).await.unwrap();
        let port = hub.embedded_port().unwrap_or(SHARED_MOSQUITTO_PORT);
        let topic = format!("test/{site}/bench");
        let mut sub = Subscriber::connect(port, std::slice::from_ref(&topic), false).await;
        let mut micros = Vec::with_capacity(N);
        for i in 0..N {
            let start = Instant::now();
            hub.publish_action(Action::new(topic.clone(), json!({"i": i}))).unwrap();
            let got = sub.expect(&topic, Duration::from_secs(5)).await;
            micros.push(start.elapsed().as_micros() as u64);
            assert_eq!(got.json(), json!({"i": i}));
        }
        micros.sort_unstable();
        let pct = |p: f64| micros[((N as f64 - 1.0) * p) as usize] as f64 / 1000.0;
        println!(
            "{}: {N} actions, publish_action → subscriber: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            if embedded { "embedded rumqttd" } else { "Mosquitto 127.0.0.1:1883" },
            pct(0.5),
            pct(0.95),
            pct(1.0)
        );
        hub.shutdown(Duration::from_secs(2)).await.unwrap();
    }
}

#[test]
fn embedded_broker_refuses_a_taken_port() {
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = start_embedded(port).unwrap_err().to_string();
    assert!(err.contains(&port.to_string()) && err.contains("cannot listen"), "{err}");
}
