//! MQTT helpers for tests: a private Mosquitto on a free port that a test can stop and restart,
//! and a subscriber built on `mosquitto_sub` that collects messages as JSON (Debian package
//! `mosquitto` and `mosquitto-clients`; `tools/setup.d/mqtt.sh` installs them).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn find_tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("`{name}` is missing: install the Debian packages mosquitto and mosquitto-clients (tools/setup.d/mqtt.sh does)"))
}

/// A free TCP port on 127.0.0.1 (another process could take it before it is used).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap().local_addr().unwrap().port()
}

fn wait_listening(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// A private Mosquitto with persistence, so a persistent subscriber's session (and the messages
/// queued for it) survive [`Mosquitto::stop`] + [`Mosquitto::restart`] on the same port.
pub struct Mosquitto {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        let mut broker = Mosquitto::configured(free_port());
        broker.restart();
        broker
    }

    /// A broker on `port` that is configured (anonymous, persistent) but not started: a test can
    /// point a daemon at the port first and call [`Mosquitto::restart`] later.
    pub fn configured(port: u16) -> Mosquitto {
        let dir = tempfile::tempdir().unwrap();
        // Started as root, Mosquitto drops to its own user, which must be able to save sessions here.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut broker = Mosquitto { port, dir, child: None };
        broker.set_config(&broker.default_config());
        broker
    }

    /// Anonymous access and persistence on this broker's port and directory.
    pub fn default_config(&self) -> String {
        format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n",
            self.port,
            self.dir().display()
        )
    }

    /// Moves the broker to `port` (stopped brokers only): with persistence, the sessions it
    /// saved follow it, so a subscriber registered on the old port gets what arrives on the new.
    pub fn move_to(&mut self, port: u16) {
        assert!(self.child.is_none(), "stop the broker before moving it");
        self.port = port;
        self.set_config(&self.default_config());
    }

    /// Where the config, log and persistence file live; tests may put certificates here.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Replaces the configuration; takes effect at the next [`Mosquitto::restart`].
    pub fn set_config(&mut self, text: &str) {
        std::fs::write(self.dir().join("mosquitto.conf"), text).unwrap();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "Mosquitto on {} is already running", self.port);
        let log = std::fs::File::create(self.dir().join("mosquitto.log")).unwrap();
        let child = Command::new(find_tool("mosquitto"))
            .arg("-c")
            .arg(self.dir().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start mosquitto");
        self.child = Some(child);
        if !wait_listening(self.port, Duration::from_secs(5)) {
            let log = std::fs::read_to_string(self.dir().join("mosquitto.log")).unwrap_or_default();
            panic!("mosquitto did not listen on {} within 5 s; its log:\n{log}", self.port);
        }
    }

    /// SIGTERM, so Mosquitto saves its sessions before exiting.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One received message. `payload` is the JSON value when the payload parses as JSON, else a
/// JSON string: the same convention as `sotto run --input`'s printed lines.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttMessage {
    pub topic: String,
    pub payload: serde_json::Value,
    pub retain: bool,
    /// MQTT 5 properties as `mosquitto_sub` names them, e.g. `message-expiry-interval`.
    pub properties: serde_json::Value,
}

/// A `mosquitto_sub` process (MQTT 5, QoS 1) collecting messages on a background thread.
pub struct MqttSubscriber {
    child: Child,
    rx: mpsc::Receiver<MqttMessage>,
}

impl MqttSubscriber {
    /// Subscribes to `topics` on 127.0.0.1:`port` and returns once the broker confirmed it.
    /// With `session = Some(client_id)` the session is persistent (clean start off, one hour
    /// expiry): messages published while this subscriber or the broker is down are kept for it.
    pub fn start(port: u16, topics: &[&str], session: Option<&str>) -> MqttSubscriber {
        // mosquitto_sub 2.0.11 block-buffers a piped stdout; stdbuf (coreutils) makes it line-buffered.
        let mut cmd = Command::new("stdbuf");
        cmd.arg("-oL").arg(find_tool("mosquitto_sub"));
        cmd.args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-F", "%j", "-d"]);
        for topic in topics {
            cmd.args(["-t", topic]);
        }
        if let Some(id) = session {
            cmd.args(["-c", "-i", id, "-x", "3600"]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("cannot start mosquitto_sub");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // With -d, protocol traces share stdout with the JSON lines.
                if line.contains("received SUBACK") {
                    let _ = ready_tx.send(());
                }
                if !line.starts_with('{') {
                    continue;
                }
                let Ok(raw) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                let payload_text = raw["payload"].as_str().unwrap_or_default().to_string();
                let payload = serde_json::from_str(&payload_text).unwrap_or(serde_json::Value::String(payload_text));
                let message = MqttMessage {
                    topic: raw["topic"].as_str().unwrap_or_default().to_string(),
                    payload,
                    retain: raw["retain"].as_i64() == Some(1) || raw["retain"].as_bool() == Some(true),
                    properties: raw.get("properties").cloned().unwrap_or(serde_json::Value::Null),
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = child.kill();
            panic!("mosquitto_sub got no SUBACK from 127.0.0.1:{port} within 5 s");
        }
        MqttSubscriber { child, rx }
    }

    /// The next message on `topic` (others are skipped and lost), or an error after `timeout`.
    pub fn expect(&self, topic: &str, timeout: Duration) -> Result<MqttMessage, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(msg) if msg.topic == topic => return Ok(msg),
                Ok(_) => continue,
                Err(_) => return Err(format!("nothing on {topic} within {timeout:?}")),
            }
        }
    }

    /// The next message on any topic, if one comes within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<MqttMessage> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Everything received until `quiet` passes without a new message.
    pub fn drain(&self, quiet: Duration) -> Vec<MqttMessage> {
        std::iter::from_fn(|| self.rx.recv_timeout(quiet).ok()).collect()
    }
}

impl Drop for MqttSubscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes one message with `mosquitto_pub` (MQTT 5, QoS 1).
pub fn publish(port: u16, topic: &str, payload: &str, retain: bool) {
    let mut cmd = Command::new(find_tool("mosquitto_pub"));
    cmd.args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-m", payload]);
    if retain {
        cmd.arg("-r");
    }
    let status = cmd.status().expect("cannot run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub to {topic} on port {port} failed");
}

/// Publishes `payload` as it is (any size, any bytes: it goes through stdin, not the command
/// line) with `mosquitto_pub` (MQTT 5, QoS 1).
pub fn publish_bytes(port: u16, topic: &str, payload: &[u8]) {
    use std::io::Write;
    let mut child = Command::new(find_tool("mosquitto_pub"))
        .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1", "-t", topic, "-s"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("cannot run mosquitto_pub");
    child.stdin.take().unwrap().write_all(payload).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "mosquitto_pub of {} bytes to {topic} on port {port} failed", payload.len());
}
