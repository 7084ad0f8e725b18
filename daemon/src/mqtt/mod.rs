//! The daemon's MQTT side: Hermes-compatible events, device actions with expiry, availability
//! (`sotto/<site>/status` = `online`, last will `offline`, both retained), control topics, and an
//! optional in-process broker. MQTT 5 throughout (`rumqttc::v5`): message expiry is a v5 property.
//! Mosquitto 2 and the embedded rumqttd 0.20 both speak it (tested).
//!
//! The pipeline uses [`MqttHub`]: `start` it from [`MqttSettings`], then `publish_event`,
//! `publish_action`, read [`ControlMessage`]s from the returned receiver, `flush` before exiting
//! and `shutdown`. Nothing here blocks the caller: publishing only queues.
//!
//! # What goes out
//! | topic | QoS | retain | expiry |
//! |---|---|---|---|
//! | `sotto/<site>/status`: `online` at every (re)connect, `offline` at shutdown and as last will | 1 | yes | none |
//! | Hermes events (`hermes/hotword/<id>/detected`, `hermes/asr/textCaptured`, `hermes/intent/<name>`, `hermes/nlu/intentNotRecognized`, `hermes/dialogueManager/sessionStarted`/`sessionEnded`, `hermes/tts/sayFinished`, and `hermes/tts/say` when Sotto has no voice of its own) | 1 | no | `default_expiry_secs` |
//! | `sotto/<site>/said`: what Sotto spoke (`{id, text, sessionId, seconds, wav?, error?}`) | 0 | no | `default_expiry_secs` |
//! | actions (topic and payload from the intent) | as configured (1) | as configured | the action's, else `default_expiry_secs` |
//!
//! Actions carry the user property `sotto-action-id`. The expiry sent is what is *left* when
//! the message reaches the broker; a message that ran out while waiting is dropped, logged and
//! counted (`HubStats::dropped_expired`). Waiting messages live in a queue of `queue_capacity`;
//! when full the oldest event goes first, else the oldest action (`dropped_queue_full`).
//! Delivery guarantees and the one residual duplicate risk are written down in `hub.rs`.
//!
//! # What comes in
//! See `control.rs`: `sotto/<site>/mute|unmute|reload`, `hermes/hotword/toggleOff|toggleOn`,
//! `hermes/dialogueManager/startSession|continueSession|endSession`, `hermes/tts/say`. Malformed payloads are logged with the reason, counted
//! (`malformed_control`) and ignored; retained ones are ignored.
//!
//! # Print mode
//! With [`PrintMode::Stdout`] every message handed to the broker is also printed as one JSON line
//! `{"topic": …, "payload": …}` (payload as JSON when it parses, else a string), in publishing
//! order, including the `online`/`offline` status lines. A message is printed when it is handed to
//! the client, so one re-sent after a connection loss is printed again.
//!
//! # `[mqtt]` settings (all optional)
//! ```toml
//! [mqtt]
//! broker = "external"        # or "embedded": rumqttd in-process on 127.0.0.1:port (0 = free port)
//! host = "127.0.0.1"
//! port = 1883
//! client_id = "sotto-kitchen" # default sotto-<site_id>
//! keep_alive_secs = 30
//! username = "sotto"
//! password_file = "/etc/sotto/mqtt.password"  # or password_env = "SOTTO_MQTT_PASSWORD", or password
//! site_id = "kitchen"
//! queue_capacity = 64
//! default_expiry_secs = 30
//! reconnect_max_secs = 10     # back-off starts at 0.25 s and doubles up to this
//! [mqtt.tls]
//! ca_file = "/etc/sotto/ca.pem"
//! client_cert_file = "/etc/sotto/client.pem"
//! client_key_file = "/etc/sotto/client.key"
//! ```

mod broker;
mod control;
mod hermes;
mod hub;
mod queue;
mod settings;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::Duration;

pub use broker::{start_embedded, EmbeddedBroker};
pub use control::{
    control_topics, parse_control, ContinueSession, ControlMessage, SayRequest, SessionKind, StartSession,
};
pub use hermes::{
    HermesEvent, HotwordDetected, IntentInfo, IntentNotRecognized, IntentRecognized, SayFinished, SessionEnded,
    SessionStarted, Slot, SlotRange, SlotValue, Termination, TerminationReason, TextCaptured, TtsSay,
};
pub use hub::{probe, Action, HubStats, MqttHub, PrintMode};
pub use rumqttc::v5::mqttbytes::QoS;
pub use settings::{BrokerMode, MqttSettings, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("invalid MQTT settings:\n{0}")]
    Config(sotto_problems::Problems),
    #[error("{key}: cannot read {}: {source}", path.display())]
    ReadFile { key: &'static str, path: PathBuf, source: std::io::Error },
    #[error("embedded MQTT broker on 127.0.0.1:{port}: {reason}")]
    EmbeddedBroker { port: u16, reason: String },
    #[error("cannot publish to topic {topic:?}: {reason}")]
    InvalidTopic { topic: String, reason: String },
    #[error("malformed control message on {topic}: {reason}")]
    MalformedControl { topic: String, reason: String },
    #[error("MQTT broker not connected after {waited:?}")]
    NotConnected { waited: Duration },
    #[error("MQTT flush gave up after {waited:?}: {queued} messages queued, {in_flight} in flight")]
    FlushTimeout { waited: Duration, queued: usize, in_flight: usize },
    #[error("the MQTT hub is shut down")]
    Closed,
}
