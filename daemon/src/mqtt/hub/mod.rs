//! The connection to the broker: availability, publishing with a bounded wait queue, control input.
//!
//! Two tasks share one [`State`] behind a mutex that is never held across an `.await`:
//! - the *connection* task owns rumqttc's `EventLoop` and polls it without interruption (its
//!   `poll` is not safe to cancel mid-write, so it never sits in a `select!`);
//! - the *feeder* task moves waiting messages to the client whenever it is woken and connected.
//!
//! # Delivery of actions (QoS 1)
//! A message is in exactly one place: the wait `queue`, `handed` (given to rumqttc's request
//! channel, not yet written), or `in_flight` (written to the socket, waiting for PUBACK). rumqttc
//! reports each written PUBLISH as `Outgoing::Publish(pkid)` in request order, which is how a
//! `handed` message learns its packet id.
//!
//! The session is clean (`clean_start = true`), so rumqttc's own re-send machinery never runs:
//! on a connection error the hub drains rumqttc's request channel and pending list and drops them
//! (`EventLoop::clean` + clearing `pending` and buffered events, under the state lock so the
//! feeder cannot slip a request in between). It then puts `in_flight` and `handed` messages back at
//! the front of the queue in their original order. After the next CONNACK, `online` is published
//! and the queue drains; anything past its expiry is dropped with a log line instead.
//!
//! So within its expiry an action is never lost while the process lives. The residual risk is a
//! duplicate: a PUBLISH the broker received whose PUBACK was lost with the connection is sent
//! again (`in_flight` → queue). That is QoS 1's at-least-once window; it is logged (`resent`
//! counter) and every action carries the MQTT 5 user property `sotto-action-id` so a consumer
//! can drop the repeat. Actions waiting in memory are lost if the daemon itself dies.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{LastWill, Packet, PubAckReason, PubRecReason, PublishProperties};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions};
use rumqttc::Outgoing;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;

use super::broker::{start_embedded, EmbeddedBroker};
use super::control::{control_topics, parse_control, ControlMessage};
use super::hermes::HermesEvent;
use super::queue::{Kind, Outbound, OutboundQueue};
use super::settings::{BrokerMode, MqttSettings};
use super::MqttError;

mod connection;
use connection::run_connection;

/// At most this many messages are with rumqttc at once (handed + in flight); the rest wait in our
/// queue, where expiry and the drop policy apply.
const MAX_IN_FLIGHT: usize = 32;
const CONTROL_CHANNEL: usize = 64;
const BACKOFF_START: Duration = Duration::from_millis(250);
/// Largest packet the broker may send us, declared in CONNECT (MQTT 5 Maximum Packet Size):
/// control messages are a few hundred bytes. A broker drops bigger ones for this client instead
/// of sending them, which the client would otherwise have to treat as a protocol error that
/// costs the connection.
const MAX_INCOMING_PACKET: u32 = 64 * 1024;

/// A command for an integrator's device, published once per validated intent.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub topic: String,
    /// A JSON string is published as its raw text; any other JSON value as JSON.
    pub payload: serde_json::Value,
    pub qos: QoS,
    pub retain: bool,
    /// How long the command stays worth executing; `Duration::ZERO` = the configured default.
    pub expiry: Duration,
}

impl Action {
    /// QoS 1, not retained, default expiry.
    pub fn new(topic: impl Into<String>, payload: serde_json::Value) -> Self {
        Action { topic: topic.into(), payload, qos: QoS::AtLeastOnce, retain: false, expiry: Duration::ZERO }
    }
}

/// Where published messages are echoed as JSON lines `{"topic": …, "payload": …}`.
#[derive(Clone, Default)]
pub enum PrintMode {
    #[default]
    Off,
    Stdout,
    Writer(Arc<Mutex<dyn Write + Send>>),
}

/// Counters since start. "published" means confirmed by the broker (PUBACK) or, for QoS 0,
/// written to the socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubStats {
    pub published: u64,
    pub actions_published: u64,
    pub dropped_queue_full: u64,
    pub dropped_expired: u64,
    /// Messages written but unconfirmed when the connection dropped, sent again (possible duplicate).
    pub resent: u64,
    /// PUBACKs with an error reason (e.g. not authorised).
    pub rejected: u64,
    pub malformed_control: u64,
    /// Control messages dropped because the pipeline did not take them in time.
    pub control_dropped: u64,
    pub connects: u64,
    pub connection_losses: u64,
    /// Waiting in the queue now.
    pub queued: usize,
    /// Given to the client, not yet written to the socket.
    pub handed: usize,
    /// Written to the socket, waiting for the broker's acknowledgement.
    pub in_flight: usize,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    actions_published: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_expired: AtomicU64,
    resent: AtomicU64,
    rejected: AtomicU64,
    malformed_control: AtomicU64,
    control_dropped: AtomicU64,
    connects: AtomicU64,
    connection_losses: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

struct State {
    connected: bool,
    queue: OutboundQueue,
    handed: VecDeque<Outbound>,
    /// (packet id, message), in hand-off order.
    in_flight: Vec<(u16, Outbound)>,
}

struct Shared {
    state: Mutex<State>,
    client: AsyncClient,
    site_id: String,
    status_topic: String,
    default_expiry: Duration,
    reconnect_max: Duration,
    print: PrintMode,
    counters: Counters,
    next_action_id: AtomicU64,
    /// Start time (ms since the epoch, hex): makes action ids unique across daemon restarts.
    boot: String,
    wake_feeder: Notify,
    progress: Notify,
    connected_tx: watch::Sender<bool>,
    shutting_down: AtomicBool,
    control_tx: mpsc::Sender<ControlMessage>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Cheap to clone; all clones drive the same connection.
#[derive(Clone)]
pub struct MqttHub {
    shared: Arc<Shared>,
    broker: Option<EmbeddedBroker>,
}

impl MqttHub {
    /// Validates `settings`, starts the embedded broker if asked, and starts connecting in the
    /// background: the daemon runs (and queues) even while the broker is unreachable. Returns the
    /// hub and the stream of parsed control messages.
    pub async fn start(
        settings: &MqttSettings,
        print: PrintMode,
    ) -> Result<(MqttHub, mpsc::Receiver<ControlMessage>), MqttError> {
        let errors = settings.validate("mqtt");
        if !errors.is_empty() {
            return Err(MqttError::Config(errors));
        }
        let (broker, host, port) = match settings.broker {
            BrokerMode::Embedded => {
                let port = settings.port;
                let broker = tokio::task::spawn_blocking(move || start_embedded(port))
                    .await
                    .map_err(|e| MqttError::EmbeddedBroker { port, reason: e.to_string() })??;
                (Some(broker), "127.0.0.1".to_string(), broker.port)
            }
            BrokerMode::External => (None, settings.host.clone(), settings.port),
        };

        let status_topic = format!("sotto/{}/status", settings.site_id);
        let mut options = MqttOptions::new(settings.client_id(), host.clone(), port);
        options
            .set_keep_alive(Duration::from_secs(settings.keep_alive_secs))
            .set_clean_start(true)
            .set_connection_timeout(5)
            .set_max_packet_size(Some(MAX_INCOMING_PACKET))
            .set_last_will(LastWill::new(&status_topic, "offline", QoS::AtLeastOnce, true, None));
        if let Some(user) = &settings.username {
            options.set_credentials(user.clone(), settings.resolve_password()?.unwrap_or_default());
        }
        if let Some(transport) = tls_transport(settings)? {
            options.set_transport(transport);
        }

        let (client, eventloop) = AsyncClient::new(options, MAX_IN_FLIGHT + 16);
        let (control_tx, control_rx) = mpsc::channel(CONTROL_CHANNEL);
        let (connected_tx, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                connected: false,
                queue: OutboundQueue::new(settings.queue_capacity),
                handed: VecDeque::new(),
                in_flight: Vec::new(),
            }),
            client,
            site_id: settings.site_id.clone(),
            status_topic,
            default_expiry: settings.default_expiry(),
            reconnect_max: settings.reconnect_max(),
            print,
            counters: Counters::default(),
            next_action_id: AtomicU64::new(1),
            boot: format!(
                "{:x}",
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis()
            ),
            wake_feeder: Notify::new(),
            progress: Notify::new(),
            connected_tx,
            shutting_down: AtomicBool::new(false),
            control_tx,
            tasks: Mutex::new(Vec::new()),
        });
        let connection = tokio::spawn(run_connection(shared.clone(), eventloop));
        let feeder = tokio::spawn(run_feeder(shared.clone()));
        shared.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend([connection, feeder]);
        tracing::info!(%host, port, client_id = %settings.client_id(), site_id = %settings.site_id, "MQTT hub started");
        Ok((MqttHub { shared, broker }, control_rx))
    }

    /// The port of the embedded broker, when `broker = "embedded"`.
    pub fn embedded_port(&self) -> Option<u16> {
        self.broker.map(|b| b.port)
    }

    pub fn site_id(&self) -> &str {
        &self.shared.site_id
    }

    /// Queues a Hermes event (QoS 1, default expiry).
    pub fn publish_event(&self, event: &HermesEvent) -> Result<(), MqttError> {
        let topic = event.topic();
        check_topic(&topic)?;
        let payload = Bytes::from(event.payload().to_string());
        self.enqueue(Outbound {
            kind: Kind::Event,
            topic,
            payload,
            qos: QoS::AtLeastOnce,
            retain: false,
            expires_at: Instant::now() + self.shared.default_expiry,
        })
    }

    /// Queues a metrics message under `sotto/<site>/` (QoS 0; `retain` for the latest counters).
    pub fn publish_metrics(&self, subtopic: &str, payload: &serde_json::Value, retain: bool) -> Result<(), MqttError> {
        let topic = format!("sotto/{}/{subtopic}", self.site_id());
        check_topic(&topic)?;
        self.enqueue(Outbound {
            kind: Kind::Metrics,
            topic,
            payload: Bytes::from(payload.to_string()),
            qos: QoS::AtMostOnce,
            retain,
            expires_at: Instant::now() + self.shared.default_expiry,
        })
    }

    /// Queues an action; returns its id (the `sotto-action-id` user property, `<boot>-<n>`).
    pub fn publish_action(&self, action: Action) -> Result<String, MqttError> {
        check_topic(&action.topic)?;
        let payload = match &action.payload {
            serde_json::Value::String(text) => Bytes::from(text.clone()),
            other => Bytes::from(other.to_string()),
        };
        let expiry = if action.expiry.is_zero() { self.shared.default_expiry } else { action.expiry };
        let id = self.shared.next_action_id.fetch_add(1, Ordering::Relaxed);
        self.enqueue(Outbound {
            kind: Kind::Action { id },
            topic: action.topic,
            payload,
            qos: action.qos,
            retain: action.retain,
            expires_at: Instant::now() + expiry,
        })?;
        Ok(self.shared.action_id(id))
    }

    fn enqueue(&self, msg: Outbound) -> Result<(), MqttError> {
        if self.shared.shutting_down.load(Ordering::Relaxed) {
            return Err(MqttError::Closed);
        }
        let dropped = self.shared.lock().queue.push(msg);
        if let Some(old) = dropped {
            bump(&self.shared.counters.dropped_queue_full);
            tracing::warn!(topic = %old.topic, kind = ?old.kind, "MQTT queue full: dropped the oldest waiting message");
            self.shared.progress.notify_waiters();
        }
        self.shared.wake_feeder.notify_one();
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        *self.shared.connected_tx.borrow()
    }

    /// Waits until the broker has acknowledged the connection.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), MqttError> {
        let mut rx = self.shared.connected_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .map_err(|_| MqttError::NotConnected { waited: timeout })?
            .map_err(|_| MqttError::Closed)?;
        Ok(())
    }

    /// Waits until every queued message is confirmed or dropped (e.g. before `sotto run --input`
    /// exits). Times out while the broker is unreachable.
    pub async fn flush(&self, timeout: Duration) -> Result<(), MqttError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.progress.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.shared.lock();
                if state.queue.is_empty() && state.handed.is_empty() && state.in_flight.is_empty() {
                    return Ok(());
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(MqttError::FlushTimeout {
                        waited: timeout,
                        queued: state.queue.len(),
                        in_flight: state.handed.len() + state.in_flight.len(),
                    });
                }
            }
            // Expired messages only leave the queue when the feeder looks at them.
            self.shared.wake_feeder.notify_one();
            let _ = tokio::time::timeout_at(deadline, notified).await;
        }
    }

    pub fn stats(&self) -> HubStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let state = self.shared.lock();
        HubStats {
            published: get(&c.published),
            actions_published: get(&c.actions_published),
            dropped_queue_full: get(&c.dropped_queue_full),
            dropped_expired: get(&c.dropped_expired),
            resent: get(&c.resent),
            rejected: get(&c.rejected),
            malformed_control: get(&c.malformed_control),
            control_dropped: get(&c.control_dropped),
            connects: get(&c.connects),
            connection_losses: get(&c.connection_losses),
            queued: state.queue.len(),
            handed: state.handed.len(),
            in_flight: state.in_flight.len(),
        }
    }

    /// Publishes `offline` (retained), waits up to `timeout` for queued messages, disconnects
    /// cleanly (so the broker does not fire the last will) and stops the tasks.
    pub async fn shutdown(&self, timeout: Duration) -> Result<(), MqttError> {
        let mut result = Ok(());
        {
            let mut state = self.shared.lock();
            if state.connected && !self.shared.shutting_down.load(Ordering::Relaxed) {
                let offline = self.shared.status_message("offline");
                hand_off(&self.shared, &mut state, offline);
            }
        }
        if self.is_connected() {
            result = self.flush(timeout).await;
        }
        self.shared.shutting_down.store(true, Ordering::Relaxed);
        let _ = self.shared.client.try_disconnect();
        let tasks: Vec<_> = std::mem::take(&mut *self.shared.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task).await.is_err() {
                abort.abort();
            }
        }
        tracing::info!(stats = ?self.stats(), "MQTT hub stopped");
        result
    }
}

#[cfg(test)]
impl MqttHub {
    /// Drops the connection without DISCONNECT, as a crash or a pulled cable would.
    pub(super) fn kill_for_test(&self) {
        for task in self.shared.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not take publishing down with it; the state stays consistent
        // because every critical section is short and non-panicking by design.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn action_id(&self, n: u64) -> String {
        format!("{}-{n}", self.boot)
    }

    fn status_message(&self, text: &'static str) -> Outbound {
        Outbound {
            kind: Kind::Status,
            topic: self.status_topic.clone(),
            payload: Bytes::from_static(text.as_bytes()),
            qos: QoS::AtLeastOnce,
            retain: true,
            expires_at: far_future(),
        }
    }

    fn set_connected(&self, state: &mut State, connected: bool) {
        state.connected = connected;
        self.connected_tx.send_replace(connected);
    }

    fn echo(&self, msg: &Outbound) {
        let line = |payload: &Bytes, topic: &str| {
            let payload = std::str::from_utf8(payload)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
                .unwrap_or_else(|| serde_json::Value::String(String::from_utf8_lossy(payload).into_owned()));
            serde_json::json!({"topic": topic, "payload": payload}).to_string()
        };
        let result = match &self.print {
            PrintMode::Off => return,
            PrintMode::Stdout => {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{}", line(&msg.payload, &msg.topic)).and_then(|_| out.flush())
            }
            PrintMode::Writer(w) => {
                let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
                writeln!(w, "{}", line(&msg.payload, &msg.topic))
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot print a published MQTT message");
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

/// Gives one message to rumqttc (caller holds the state lock and is connected). Expired messages
/// are dropped here, so the expiry sent to the broker is always the remaining part.
fn hand_off(shared: &Shared, state: &mut State, msg: Outbound) -> bool {
    let now = Instant::now();
    let mut properties = PublishProperties::default();
    if msg.kind != Kind::Status {
        let Some(remaining) = msg.expires_at.checked_duration_since(now).filter(|d| !d.is_zero()) else {
            bump(&shared.counters.dropped_expired);
            tracing::warn!(topic = %msg.topic, kind = ?msg.kind, "MQTT message expired before the broker was reachable: dropped");
            shared.progress.notify_waiters();
            return true;
        };
        // Round up: a message with 0.4 s left must not be sent with "no expiry" or 0 s.
        let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
        properties.message_expiry_interval = Some(secs.min(u32::MAX as u64) as u32);
    }
    if let Kind::Action { id } = msg.kind {
        properties.user_properties.push(("sotto-action-id".into(), shared.action_id(id)));
    }
    match shared.client.try_publish_with_properties(
        msg.topic.clone(),
        msg.qos,
        msg.retain,
        msg.payload.clone(),
        properties,
    ) {
        Ok(()) => {
            if msg.kind != Kind::Metrics {
                shared.echo(&msg);
            }
            state.handed.push_back(msg);
            true
        }
        Err(e) => {
            // Only a full request channel gets here (topics are checked on entry); retry later.
            tracing::debug!(error = %e, topic = %msg.topic, "MQTT client busy; message stays queued");
            let dropped = state.queue.requeue_front(vec![msg]);
            count_overflow(shared, dropped);
            false
        }
    }
}

fn count_overflow(shared: &Shared, dropped: Vec<Outbound>) {
    for old in dropped {
        bump(&shared.counters.dropped_queue_full);
        tracing::warn!(topic = %old.topic, kind = ?old.kind, "MQTT queue full: dropped the oldest waiting message");
    }
}

/// Moves queued messages to rumqttc while there is room (caller holds the lock).
fn feed(shared: &Shared, state: &mut State) {
    while state.connected && state.handed.len() + state.in_flight.len() < MAX_IN_FLIGHT {
        let Some(msg) = state.queue.pop() else { break };
        if !hand_off(shared, state, msg) {
            break;
        }
    }
}

async fn run_feeder(shared: Arc<Shared>) {
    loop {
        shared.wake_feeder.notified().await;
        let mut state = shared.lock();
        if state.connected {
            feed(&shared, &mut state);
        } else {
            drop_expired_while_offline(&shared, &mut state);
        }
    }
}

/// Keeps flush() honest while offline: expired messages are dropped now rather than at reconnect.
fn drop_expired_while_offline(shared: &Shared, state: &mut State) {
    let now = Instant::now();
    let mut keep = Vec::new();
    let mut dropped_any = false;
    while let Some(msg) = state.queue.pop() {
        if msg.expires_at <= now {
            bump(&shared.counters.dropped_expired);
            tracing::warn!(topic = %msg.topic, kind = ?msg.kind, "MQTT message expired while the broker was unreachable: dropped");
            dropped_any = true;
        } else {
            keep.push(msg);
        }
    }
    count_overflow(shared, state.queue.requeue_front(keep));
    if dropped_any {
        shared.progress.notify_waiters();
    }
}

fn check_topic(topic: &str) -> Result<(), MqttError> {
    let bad = |reason: &str| Err(MqttError::InvalidTopic { topic: topic.to_string(), reason: reason.into() });
    if topic.is_empty() {
        return bad("empty");
    }
    if topic.contains(['+', '#']) {
        return bad("wildcards cannot be published to");
    }
    if topic.contains('\0') {
        return bad("contains NUL");
    }
    if topic.len() > u16::MAX as usize {
        return bad("longer than 65535 bytes");
    }
    Ok(())
}

fn tls_transport(settings: &MqttSettings) -> Result<Option<rumqttc::Transport>, MqttError> {
    let Some(ca_file) = &settings.tls.ca_file else { return Ok(None) };
    let read = |key: &'static str, path: &std::path::PathBuf| {
        std::fs::read(path).map_err(|source| MqttError::ReadFile { key, path: path.clone(), source })
    };
    let ca = read("mqtt.tls.ca_file", ca_file)?;
    let client_auth = match (&settings.tls.client_cert_file, &settings.tls.client_key_file) {
        (Some(cert), Some(key)) => {
            Some((read("mqtt.tls.client_cert_file", cert)?, read("mqtt.tls.client_key_file", key)?))
        }
        _ => None,
    };
    // rumqttc builds its rustls config from the process-wide provider; `ring` is the one linked.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(Some(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Simple { ca, alpn: None, client_auth })))
}

/// Connects once with `settings` (credentials, TLS) and disconnects: `sotto check-config --online`.
/// Uses its own client id and no last will, so a running daemon's session and status are untouched.
pub async fn probe(settings: &MqttSettings, timeout: Duration) -> Result<(), String> {
    let mut options = MqttOptions::new(format!("{}-check", settings.client_id()), settings.host.clone(), settings.port);
    options
        .set_keep_alive(Duration::from_secs(settings.keep_alive_secs))
        .set_clean_start(true)
        .set_connection_timeout(timeout.as_secs().max(1));
    if let Some(user) = &settings.username {
        options
            .set_credentials(user.clone(), settings.resolve_password().map_err(|e| e.to_string())?.unwrap_or_default());
    }
    if let Some(transport) = tls_transport(settings).map_err(|e| e.to_string())? {
        options.set_transport(transport);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 4);
    let connack = tokio::time::timeout(timeout, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => continue,
                Err(err) => return Err(err.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")));
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    connack
}
