//! `[mqtt]` settings: where the broker is, how to authenticate, and the outbound queue policy.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sotto_problems::{Problem, Problems};

use super::MqttError;

/// Which broker the hub talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BrokerMode {
    /// An MQTT broker run by someone else (Mosquitto, EMQX, ...), at `host`:`port`.
    #[default]
    External,
    /// `rumqttd` in this process on 127.0.0.1:`port` (0 = a free port): zero set-up demos.
    Embedded,
}

/// TLS towards an external broker. Without `ca_file` the connection is plain TCP.
#[derive(Clone, PartialEq, Eq, Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file with the certificate authority (or authorities) that signed the broker's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate for mutual TLS; needs `client_key_file`.
    pub client_cert_file: Option<PathBuf>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<PathBuf>,
}

/// The `[mqtt]` table of the daemon configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttSettings {
    /// `"external"` (default) or `"embedded"`.
    pub broker: BrokerMode,
    /// Broker host (external only).
    pub host: String,
    /// Broker port; for the embedded broker the port it listens on, 0 = pick a free one.
    pub port: u16,
    /// MQTT client id; default `sotto-<site_id>`. Two clients with one id kick each other off.
    pub client_id: Option<String>,
    /// Keep-alive interval in seconds (the broker fires the last will after 1.5× this of silence).
    pub keep_alive_secs: u64,
    pub username: Option<String>,
    /// Password inline (discouraged: config files get copied around). At most one of
    /// `password`, `password_file`, `password_env`.
    pub password: Option<String>,
    /// File whose content (trailing newline stripped) is the password.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password.
    pub password_env: Option<String>,
    pub tls: TlsSettings,
    /// Site id used in Hermes payloads and in `sotto/<site_id>/…` topics.
    pub site_id: String,
    /// How many outbound messages (actions and events) may wait while the broker is down.
    /// When full, the oldest waiting event is dropped first, else the oldest action.
    pub queue_capacity: usize,
    /// Message expiry (seconds) of Hermes events and of actions that do not set their own.
    pub default_expiry_secs: u64,
    /// Upper bound of the reconnect back-off, in seconds (it starts at 0.25 s and doubles).
    pub reconnect_max_secs: u64,
}

impl Default for MqttSettings {
    fn default() -> Self {
        MqttSettings {
            broker: BrokerMode::External,
            host: "127.0.0.1".into(),
            port: 1883,
            client_id: None,
            keep_alive_secs: 30,
            username: None,
            password: None,
            password_file: None,
            password_env: None,
            tls: TlsSettings::default(),
            site_id: "default".into(),
            queue_capacity: 64,
            default_expiry_secs: 30,
            reconnect_max_secs: 10,
        }
    }
}

/// Secrets stay out of logs: `{:?}` of the settings shows whether a password is set, never its value.
impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSettings")
            .field("broker", &self.broker)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("client_id", &self.client_id)
            .field("keep_alive_secs", &self.keep_alive_secs)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("password_env", &self.password_env)
            .field("tls", &self.tls)
            .field("site_id", &self.site_id)
            .field("queue_capacity", &self.queue_capacity)
            .field("default_expiry_secs", &self.default_expiry_secs)
            .field("reconnect_max_secs", &self.reconnect_max_secs)
            .finish()
    }
}

impl MqttSettings {
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| format!("sotto-{}", self.site_id))
    }

    pub fn default_expiry(&self) -> Duration {
        Duration::from_secs(self.default_expiry_secs)
    }

    pub fn reconnect_max(&self) -> Duration {
        Duration::from_secs(self.reconnect_max_secs.max(1))
    }

    /// Every problem at once, each with its key path under `prefix`: where the table sits in the
    /// daemon config, e.g. `"mqtt"`. Checks the files and the environment variable exist too, so
    /// `sotto check-config` catches a missing secret before the service starts.
    pub fn validate(&self, prefix: &str) -> Problems {
        let key = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
        let mut errors = Problems::new();
        let mut err = |k: &str, msg: String| errors.add(key(k), msg);

        if let Err(msg) = check_topic_level(&self.site_id) {
            err("site_id", msg);
        }
        if let Some(id) = &self.client_id {
            if id.trim().is_empty() {
                err("client_id", "must not be empty (omit it for sotto-<site_id>)".into());
            }
        }
        if self.keep_alive_secs < 5 || self.keep_alive_secs > u16::MAX as u64 {
            // rumqttc refuses keep-alives under 5 s; MQTT encodes it in 16 bits.
            err("keep_alive_secs", format!("{} is outside 5..=65535", self.keep_alive_secs));
        }
        if self.queue_capacity == 0 || self.queue_capacity > 100_000 {
            err("queue_capacity", format!("{} is outside 1..=100000", self.queue_capacity));
        }
        if self.default_expiry_secs == 0 || self.default_expiry_secs > u32::MAX as u64 {
            err("default_expiry_secs", format!("{} must be at least 1 (seconds)", self.default_expiry_secs));
        }
        if self.reconnect_max_secs == 0 || self.reconnect_max_secs > 3600 {
            err("reconnect_max_secs", format!("{} is outside 1..=3600", self.reconnect_max_secs));
        }

        let password_sources = [self.password.is_some(), self.password_file.is_some(), self.password_env.is_some()];
        if password_sources.iter().filter(|set| **set).count() > 1 {
            err("password", "set at most one of password, password_file, password_env".into());
        }
        if password_sources.iter().any(|set| *set) && self.username.is_none() {
            err("username", "a password is configured but no username".into());
        }
        if let Some(path) = &self.password_file {
            if let Err(e) = std::fs::metadata(path) {
                err("password_file", format!("cannot read {}: {e}", path.display()));
            }
        }
        if let Some(var) = &self.password_env {
            if std::env::var_os(var).is_none() {
                err("password_env", format!("environment variable {var} is not set"));
            }
        }

        let tls = &self.tls;
        for (k, path) in [
            ("tls.ca_file", &tls.ca_file),
            ("tls.client_cert_file", &tls.client_cert_file),
            ("tls.client_key_file", &tls.client_key_file),
        ] {
            if let Some(path) = path {
                if let Err(e) = std::fs::metadata(path) {
                    err(k, format!("cannot read {}: {e}", path.display()));
                }
            }
        }
        if tls.client_cert_file.is_some() != tls.client_key_file.is_some() {
            err("tls", "client_cert_file and client_key_file go together".into());
        }
        if tls.ca_file.is_none() && tls.client_cert_file.is_some() {
            err("tls.ca_file", "a client certificate needs TLS, which needs ca_file".into());
        }

        match self.broker {
            BrokerMode::External => {
                if self.host.trim().is_empty() {
                    err("host", "empty broker host".into());
                }
                if self.port == 0 {
                    err("port", "port 0 only makes sense with broker = \"embedded\"".into());
                }
            }
            BrokerMode::Embedded => {
                // The embedded broker listens on loopback without authentication or TLS.
                if self.tls.ca_file.is_some() || self.tls.client_cert_file.is_some() {
                    err("tls", "TLS is not supported with broker = \"embedded\"".into());
                }
                if self.username.is_some() {
                    err("username", "credentials are not supported with broker = \"embedded\"".into());
                }
            }
        }
        errors
    }

    /// A hash of what the connection is built from that `==` on the settings cannot see: the
    /// password's value wherever it comes from (file, environment) and the TLS files' contents.
    /// Reload compares it to notice a rotated password or certificate. Keyed with a per-process
    /// random key so the number means nothing outside this process; never log it anyway.
    pub fn secrets_fingerprint(&self) -> u64 {
        use std::hash::{BuildHasher, Hash, Hasher};
        static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
        let mut hasher = KEY.get_or_init(Default::default).build_hasher();
        // An unreadable source hashes as its error kind, so "became unreadable" is a change too.
        match self.resolve_password() {
            Ok(password) => password.hash(&mut hasher),
            Err(_) => "unreadable password".hash(&mut hasher),
        }
        for path in [&self.tls.ca_file, &self.tls.client_cert_file, &self.tls.client_key_file].into_iter().flatten() {
            match std::fs::read(path) {
                Ok(bytes) => bytes.hash(&mut hasher),
                Err(e) => e.kind().to_string().hash(&mut hasher),
            }
        }
        hasher.finish()
    }

    /// The password from whichever source is configured. Never logged.
    pub(crate) fn resolve_password(&self) -> Result<Option<String>, MqttError> {
        if let Some(p) = &self.password {
            return Ok(Some(p.clone()));
        }
        if let Some(path) = &self.password_file {
            let text = std::fs::read_to_string(path).map_err(|source| MqttError::ReadFile {
                key: "mqtt.password_file",
                path: path.clone(),
                source,
            })?;
            return Ok(Some(text.trim_end_matches(['\r', '\n']).to_string()));
        }
        if let Some(var) = &self.password_env {
            return std::env::var(var).map(Some).map_err(|_| {
                MqttError::Config(vec![Problem::new("mqtt.password_env", format!("{var} is not set"))].into())
            });
        }
        Ok(None)
    }
}

/// A site id becomes one topic level: no separators, no wildcards.
fn check_topic_level(level: &str) -> Result<(), String> {
    if level.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some(c) = level.chars().find(|c| matches!(c, '/' | '+' | '#' | '\0')) {
        return Err(format!("{level:?} contains {c:?}, which cannot appear in one MQTT topic level"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MqttSettings, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_are_valid_and_point_at_local_mosquitto() {
        let s = parse("").unwrap();
        assert_eq!(s.broker, BrokerMode::External);
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 1883));
        assert_eq!(s.client_id(), "sotto-default");
        assert!(s.validate("mqtt").is_empty(), "{:?}", s.validate("mqtt"));
    }

    #[test]
    fn embedded_with_port_zero_is_valid() {
        let s = parse("broker = \"embedded\"\nport = 0\nsite_id = \"kitchen\"").unwrap();
        assert_eq!(s.broker, BrokerMode::Embedded);
        assert!(s.validate("mqtt").is_empty());
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = parse("brokr = \"embedded\"").unwrap_err().to_string();
        assert!(e.contains("brokr"), "{e}");
        let e = parse("[tls]\nca = \"x\"").unwrap_err().to_string();
        assert!(e.contains("`ca`"), "{e}");
    }

    #[test]
    fn all_errors_are_reported_with_key_paths() {
        let s = parse(
            r#"
            site_id = "a/b"
            keep_alive_secs = 1
            queue_capacity = 0
            password = "x"
            password_env = "SOTTO_TEST_SURELY_UNSET_VAR"
            port = 0
            [tls]
            client_cert_file = "/nonexistent/cert.pem"
            "#,
        )
        .unwrap();
        let keys: Vec<String> = s.validate("mqtt").into_iter().map(|p| p.key).collect();
        for expected in [
            "mqtt.site_id",
            "mqtt.keep_alive_secs",
            "mqtt.queue_capacity",
            "mqtt.password",
            "mqtt.username",
            "mqtt.password_env",
            "mqtt.tls.client_cert_file",
            "mqtt.tls",
            "mqtt.tls.ca_file",
            "mqtt.port",
        ] {
            assert!(keys.contains(&expected.to_string()), "missing {expected} in {keys:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let s = parse("username = \"u\"\npassword = \"hunter2-secret\"").unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }

    #[test]
    fn the_secrets_fingerprint_changes_with_the_password_file_content_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "first\n").unwrap();
        let s = MqttSettings { username: Some("u".into()), password_file: Some(path.clone()), ..Default::default() };
        let before = s.secrets_fingerprint();
        assert_eq!(before, s.secrets_fingerprint(), "same content, same fingerprint");
        std::fs::write(&path, "second\n").unwrap();
        assert_ne!(before, s.secrets_fingerprint(), "a rotated password must be noticed");
    }

    #[test]
    fn password_file_is_read_without_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "s3cret\n").unwrap();
        let s = MqttSettings { username: Some("u".into()), password_file: Some(path), ..Default::default() };
        assert!(s.validate("mqtt").is_empty());
        assert_eq!(s.resolve_password().unwrap().as_deref(), Some("s3cret"));
    }
}
