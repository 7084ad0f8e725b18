//! `broker = "embedded"`: `rumqttd` in this process, MQTT 5 on 127.0.0.1 only, no authentication.
//!
//! Meant for demos and single-board set-ups where nothing else needs the bus. rumqttd offers no
//! way to stop a running broker, so it lives until the process exits; start it once per process.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings};

use super::MqttError;

/// A running embedded broker.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedBroker {
    pub port: u16,
}

/// Starts the broker on 127.0.0.1:`port` (0 = a free port) and returns once it accepts connections.
pub fn start_embedded(port: u16) -> Result<EmbeddedBroker, MqttError> {
    let port = if port == 0 { free_port()? } else { port };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    // Checked first because readiness below is detected as "the port became taken".
    TcpListener::bind(addr)
        .map_err(|e| MqttError::EmbeddedBroker { port, reason: format!("cannot listen there: {e}") })?;
    let config = broker_config(addr);

    let thread = std::thread::Builder::new()
        .name("sotto-mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            // start() only returns on failure (e.g. the port is taken).
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, %addr, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| MqttError::EmbeddedBroker { port, reason: format!("cannot spawn its thread: {e}") })?;

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        // Probing by binding, not connecting: a probe connection that closes without CONNECT
        // makes rumqttd log an error.
        if matches!(TcpListener::bind(addr), Err(e) if e.kind() == std::io::ErrorKind::AddrInUse) {
            tracing::info!(%addr, "embedded MQTT broker (rumqttd, MQTT 5) listening");
            return Ok(EmbeddedBroker { port });
        }
        if thread.is_finished() {
            return Err(MqttError::EmbeddedBroker { port, reason: "it exited at start (is the port in use?)".into() });
        }
        if Instant::now() > deadline {
            return Err(MqttError::EmbeddedBroker { port, reason: "not accepting connections after 5 s".into() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The OS picks a free port; there is a short window in which another process could take it.
fn free_port() -> Result<u16, MqttError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| MqttError::EmbeddedBroker { port: 0, reason: format!("cannot find a free port: {e}") })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| MqttError::EmbeddedBroker { port: 0, reason: format!("cannot find a free port: {e}") })
}

fn broker_config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
        name: "sotto-v5".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 256 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 64,
            max_outgoing_packet_count: 200,
            max_segment_size: 1024 * 1024,
            max_segment_count: 10,
            ..Default::default()
        },
        v5: Some(HashMap::from([("sotto".to_string(), server)])),
        ..Default::default()
    }
}
