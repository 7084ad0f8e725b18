//! The hub against a private Mosquitto with TLS, client certificates and a password file.

use super::*;

/// A private Mosquitto with TLS, client certificates and a password file, plus the files the hub
/// needs, all made with the `openssl` and `mosquitto_passwd` tools.
struct SecureMosquitto {
    broker: Mosquitto,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

fn run_tool(dir: &std::path::Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (tools/setup.d/mqtt.sh installs it): {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

impl SecureMosquitto {
    fn start(user: &str, password: &str) -> SecureMosquitto {
        let mut broker = Mosquitto::start();
        broker.stop();
        let dir = broker.dir().to_path_buf();
        let openssl = |args: &[&str]| run_tool(&dir, "openssl", args);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=sotto-test-ca",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=sotto-client",
        ]);
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "client.ext",
        ]);
        run_tool(&dir, "mosquitto_passwd", &["-b", "-c", "passwd", user, password]);
        // Mosquitto drops root privileges: its user must read these (test-only keys).
        use std::os::unix::fs::PermissionsExt;
        for entry in std::fs::read_dir(&dir).unwrap() {
            std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let config = format!(
            "listener {} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n\
             require_certificate true\nallow_anonymous false\npassword_file {d}/passwd\npersistence false\n",
            broker.port,
            d = dir.display()
        );
        broker.set_config(&config);
        broker.restart();
        SecureMosquitto {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            broker,
        }
    }

    fn settings(&self, site: &str, user: &str, password_file: PathBuf) -> MqttSettings {
        MqttSettings {
            username: Some(user.into()),
            password_file: Some(password_file),
            tls: TlsSettings {
                ca_file: Some(self.ca.clone()),
                client_cert_file: Some(self.client_cert.clone()),
                client_key_file: Some(self.client_key.clone()),
            },
            ..settings(site, self.broker.port)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_and_password_file() {
    let secure = SecureMosquitto::start("sotto", "correct horse");
    let secrets = tempfile::tempdir().unwrap();
    let good = secrets.path().join("good");
    let bad = secrets.path().join("bad");
    std::fs::write(&good, "correct horse\n").unwrap();
    std::fs::write(&bad, "wrong horse\n").unwrap();

    let site = unique_site();
    let (hub, _control) = MqttHub::start(&secure.settings(&site, "sotto", good), PrintMode::Off).await.unwrap();
    hub.wait_connected(Duration::from_secs(10)).await.unwrap();
    hub.publish_action(Action::new(format!("test/{site}/secure"), json!({"ok": true}))).unwrap();
    hub.flush(Duration::from_secs(5)).await.unwrap();
    assert_eq!(hub.stats().actions_published, 1);
    hub.shutdown(Duration::from_secs(2)).await.unwrap();

    // The same certificate with the wrong password: refused, and the hub keeps retrying quietly.
    let (refused, _control) =
        MqttHub::start(&secure.settings(&unique_site(), "sotto", bad), PrintMode::Off).await.unwrap();
    assert!(refused.wait_connected(Duration::from_secs(2)).await.is_err());

    // No client certificate: the TLS handshake fails.
    let mut no_cert = secure.settings(&unique_site(), "sotto", secrets.path().join("good"));
    no_cert.tls.client_cert_file = None;
    no_cert.tls.client_key_file = None;
    let (anonymous, _control) = MqttHub::start(&no_cert, PrintMode::Off).await.unwrap();
    assert!(anonymous.wait_connected(Duration::from_secs(2)).await.is_err());
}
