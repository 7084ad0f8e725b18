//! A private Mosquitto set up the way a deployment should be: a password file, optionally TLS
//! with client certificates and an ACL file, on the port the daemon uses, plus a second,
//! anonymous "observer" listener on loopback through which a test watches every message (`#`)
//! and sends control messages, unrestricted by the ACL (`per_listener_settings`).
//! Certificates come from the `openssl` CLI, the password file from `mosquitto_passwd`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::mqtt::{free_port, Mosquitto};

pub struct SecureOptions<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// TLS with `require_certificate` on the daemon's listener.
    pub tls: bool,
    /// Text of a Mosquitto ACL file for the daemon's listener.
    pub acl: Option<&'a str>,
}

/// Paths of the client-side TLS files the daemon's `[mqtt.tls]` table needs.
pub struct ClientTls {
    pub ca_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
}

pub struct SecureMosquitto {
    broker: Mosquitto,
    /// The anonymous listener for the test's own subscriber and publisher.
    pub observer_port: u16,
    pub tls: Option<ClientTls>,
}

/// Runs a set-up tool in `dir`; panics with its stderr when it fails.
fn run_tool(dir: &Path, program: &str, args: &[&str]) {
    let shown = format!("{program} {}", args.join(" "));
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!("{shown} failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => panic!("cannot run {shown} (the Debian packages openssl, mosquitto, mosquitto-clients): {e}"),
    }
}

/// A test certificate authority and a certificate signed by it for `name` (server: an IP SAN for
/// 127.0.0.1; client: the clientAuth usage rustls and Mosquitto check).
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| run_tool(dir, "openssl", args);
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=sotto-secure-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    for (name, subject, extension) in [
        ("server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1"),
        ("client", "/CN=sotto-daemon", "extendedKeyUsage=clientAuth"),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), format!("{extension}\n")).unwrap();
        let (key, csr, pem, ext) =
            (format!("{name}.key"), format!("{name}.csr"), format!("{name}.pem"), format!("{name}.ext"));
        openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", subject, "-keyout", &key, "-out", &csr]);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "1",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-in",
            &csr,
            "-out",
            &pem,
            "-extfile",
            &ext,
        ]);
    }
}

impl SecureMosquitto {
    pub fn start(options: &SecureOptions) -> SecureMosquitto {
        let mut broker = Mosquitto::start();
        broker.stop();
        let dir = broker.dir().to_path_buf();
        run_tool(&dir, "mosquitto_passwd", &["-b", "-c", "passwd", options.user, options.password]);
        let mut listener = format!(
            "listener {} 127.0.0.1\nallow_anonymous false\npassword_file {d}/passwd\n",
            broker.port,
            d = dir.display()
        );
        if let Some(acl) = options.acl {
            std::fs::write(dir.join("acl"), acl).unwrap();
            listener += &format!("acl_file {}/acl\n", dir.display());
        }
        let tls = options.tls.then(|| {
            make_certificates(&dir);
            listener += &format!(
                "cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nrequire_certificate true\n",
                d = dir.display()
            );
            ClientTls {
                ca_file: dir.join("ca.pem"),
                client_cert_file: dir.join("client.pem"),
                client_key_file: dir.join("client.key"),
            }
        });
        // Mosquitto drops root privileges: its user must read these (test-only keys and password).
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
        }
        let observer_port = free_port();
        broker.set_config(&format!(
            "per_listener_settings true\npersistence false\nlog_type all\n{listener}listener {observer_port} 127.0.0.1\nallow_anonymous true\n"
        ));
        broker.restart();
        SecureMosquitto { broker, observer_port, tls }
    }

    /// The port of the authenticated listener the daemon connects to.
    pub fn port(&self) -> u16 {
        self.broker.port
    }

    /// Mosquitto's own log so far (connections, refusals, ACL denials with `log_type all`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.broker.dir().join("mosquitto.log")).unwrap_or_default()
    }

    /// The `[mqtt]` tables of a daemon config for this broker: port, site, user, the given
    /// password source line (e.g. `password_file = "…"`) and the TLS files.
    pub fn daemon_mqtt_config(&self, site: &str, user: &str, password_source: &str) -> String {
        let mut text =
            format!("[mqtt]\nport = {}\nsite_id = \"{site}\"\nusername = \"{user}\"\n{password_source}\n", self.port());
        if let Some(tls) = &self.tls {
            text += &format!(
                "[mqtt.tls]\nca_file = {:?}\nclient_cert_file = {:?}\nclient_key_file = {:?}\n",
                tls.ca_file.display().to_string(),
                tls.client_cert_file.display().to_string(),
                tls.client_key_file.display().to_string()
            );
        }
        text
    }

    /// Publishes once as `user` on the authenticated listener (MQTT 5, QoS 1) with
    /// `mosquitto_pub`; returns its exit success and what it printed. An ACL refusal still exits
    /// 0 in `mosquitto_pub` 2.0; it prints "Not authorized" (PUBACK reason 135) instead.
    pub fn publish_as(&self, user: &str, password: &str, topic: &str, payload: &str) -> (bool, String) {
        let mut cmd = Command::new("mosquitto_pub");
        cmd.args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &self.port().to_string(), "-q", "1", "-d"]);
        cmd.args(["-u", user, "-P", password, "-t", topic, "-m", payload]);
        if let Some(tls) = &self.tls {
            cmd.arg("--cafile")
                .arg(&tls.ca_file)
                .arg("--cert")
                .arg(&tls.client_cert_file)
                .arg("--key")
                .arg(&tls.client_key_file);
        }
        let out = cmd.output().expect("cannot run mosquitto_pub");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    }
}
