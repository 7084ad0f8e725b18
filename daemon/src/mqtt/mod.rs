//! The daemon's MQTT side: Hermes-compatible events, device actions with expiry, availability
//! (`sotto/<site>/status` = `online`, last will `offline`, both retained), control topics, and an
//! optional in-process broker. MQTT 5 throughout (`rumqttc::v5`): message expiry is a v5 property.
//!
//! The pipeline uses [`MqttHub`]: `start` it from [`MqttSettings`], then `publish_event`,
//! `publish_action`, read [`ControlMessage`]s from the returned receiver, `flush` before exiting
//! and `shutdown`. Delivery guarantees and their limits are written down in `hub.rs`.
#![allow(dead_code, unused_imports)] // The pipeline (`sotto run`) is wired by the lead; until then parts are unused.

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
pub use control::{control_topics, parse_control, ControlMessage, SessionKind, StartSession};
pub use hermes::{
    HermesEvent, HotwordDetected, IntentInfo, IntentNotRecognized, IntentRecognized, SessionEnded, SessionStarted,
    Slot, SlotRange, SlotValue, Termination, TerminationReason, TextCaptured,
};
pub use hub::{Action, HubStats, MqttHub, PrintMode};
pub use rumqttc::v5::mqttbytes::QoS;
pub use settings::{BrokerMode, MqttSettings, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("invalid MQTT settings: {}", .0.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))]
    Config(Vec<(String, String)>),
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
