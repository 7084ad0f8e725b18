//! Secrets never leave the daemon: with the most verbose log filter (`trace`), the MQTT password
//! (from a file or from the environment) and the TLS client key's contents appear neither in
//! `sotto check-config --online` output, nor in the daemon's stdout/stderr across a command and
//! reloads, nor in any MQTT message on the broker (`#`). A rotated password file is noticed on
//! reload (it takes effect at the next restart) without showing the password.

use std::time::Duration;

use sotto_tests::daemon::{one_at_a_time, signal, sotto, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::{publish, MqttSubscriber};
use sotto_tests::secure_mqtt::{SecureMosquitto, SecureOptions};

const USER: &str = "sotto-secrets";
/// Distinctive enough that any occurrence in a log is this password and nothing else.
const PASSWORD: &str = "pw-Q7xk29-correct-horse-battery";
const ROTATED: &str = "pw-M3vz81-rotated-staple";
const WRONG: &str = "pw-Z0fj55-wrong-guess";
const PASSWORD_VAR: &str = "SOTTO_TEST_MQTT_PASSWORD";

/// The strings that must never be shown: passwords, and every line of the client key's PEM body
/// (a line of base64 is 64 characters: a match is the key, not a coincidence).
fn secrets(broker: &SecureMosquitto) -> Vec<String> {
    let key = std::fs::read_to_string(&broker.tls.as_ref().expect("TLS broker").client_key_file).unwrap();
    let mut all: Vec<String> = [PASSWORD, ROTATED, WRONG].map(String::from).to_vec();
    all.extend(key.lines().filter(|l| !l.starts_with("-----") && l.len() >= 32).map(String::from));
    assert!(all.len() > 10, "the key file should have a PEM body");
    all
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for secret in secrets {
        assert!(!text.contains(secret.as_str()), "{what} shows a secret ({}…):\n{text}", &secret[..12]);
    }
}

fn config(broker: &SecureMosquitto, site: &str, password_source: &str) -> String {
    format!(
        "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[stt]\ntimeout_s = 60\n[intents]\ndomains = [\"vehicle\"]\n{}",
        broker.daemon_mqtt_config(site, USER, password_source)
    )
}

/// `sotto check-config CONFIG --online` at trace level: (success, stdout + stderr).
fn check_config(path: &std::path::Path, env: &[(&str, &str)]) -> (bool, String) {
    let out = sotto()
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied())
        .arg("check-config")
        .arg(path)
        .arg("--online")
        .output()
        .expect("cannot run sotto check-config");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn passwords_and_key_contents_stay_out_of_logs_and_messages() {
    let _one = one_at_a_time();
    let broker = SecureMosquitto::start(&SecureOptions { user: USER, password: PASSWORD, tls: true, acl: None });
    let secrets = secrets(&broker);
    // One subscriber to wait on (it skips what it is not waiting for), one that keeps everything.
    let observer = MqttSubscriber::start(broker.observer_port, &["#"], None);
    let everything_seen = MqttSubscriber::start(broker.observer_port, &["#"], None);
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("mqtt-password");

    for from_file in [true, false] {
        let site = unique_site(if from_file { "secret-file" } else { "secret-env" });
        let source = if from_file {
            std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
            format!("password_file = {:?}", password_file.display().to_string())
        } else {
            format!("password_env = \"{PASSWORD_VAR}\"")
        };
        let path = write_config(dir.path(), &config(&broker, &site, &source));
        let env = [("RUST_LOG", "trace"), (PASSWORD_VAR, if from_file { "" } else { PASSWORD })];

        // check-config connects with the real credentials, and with wrong ones fails without echoing them.
        let (ok, shown) = check_config(&path, &env);
        assert!(ok, "check-config with the right password failed:\n{shown}");
        assert_no_secret("check-config", &shown, &secrets);
        let wrong_env = [("RUST_LOG", "trace"), (PASSWORD_VAR, WRONG)];
        if from_file {
            std::fs::write(&password_file, WRONG).unwrap();
        }
        let (ok, shown) = check_config(&path, &wrong_env);
        assert!(!ok && shown.contains("mqtt.host"), "a wrong password must fail the online check:\n{shown}");
        assert_no_secret("check-config with a wrong password", &shown, &secrets);
        if from_file {
            std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        }

        let mut daemon = LiveDaemon::start_with_env(&path, &env);
        daemon.wait_for_log("MQTT connected", Duration::from_secs(30));
        daemon.speak("pos_jarvis_vehicle_temp.wav");
        let action = format!("sotto/{site}/vehicle/climate/temperature");
        let message = observer.expect(&action, Duration::from_secs(90)).unwrap();
        assert_eq!(message.payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));

        // An unchanged config reloads without a restart warning.
        signal(daemon.pid(), "-HUP");
        daemon.wait_for_log("config reloaded", Duration::from_secs(10));
        assert!(!daemon.log.iter().any(|l| l.contains("next restart")), "nothing changed:\n{}", daemon.log.join("\n"));

        if from_file {
            // Only the file's content changes: the settings compare equal, their Debug form too,
            // yet the reload must say the MQTT connection needs a restart.
            std::fs::write(&password_file, format!("{ROTATED}\n")).unwrap();
            publish(broker.observer_port, &format!("sotto/{site}/reload"), "", false);
            daemon.wait_for_log("next restart", Duration::from_secs(10));
            let line = daemon.log.iter().rev().find(|l| l.contains("next restart")).unwrap().clone();
            assert!(line.contains("changed=mqtt"), "{line}");
            daemon.wait_for_log("config reloaded", Duration::from_secs(10));
        }

        let (ok, log) = daemon.finish();
        let log = log.join("\n");
        assert!(ok, "{log}");
        assert!(log.contains("TRACE") || log.contains("DEBUG"), "the daemon should have logged at trace level:\n{log}");
        assert_no_secret(
            if from_file { "the daemon log (password file)" } else { "the daemon log (password env)" },
            &log,
            &secrets,
        );
    }

    let seen = everything_seen.drain(Duration::from_secs(2));
    let everything: String = seen.iter().map(|m| format!("{} {} {}\n", m.topic, m.payload, m.properties)).collect();
    assert!(
        everything.contains("hermes/asr/textCaptured"),
        "the observer should have seen the sessions:\n{everything}"
    );
    assert_no_secret("an MQTT message", &everything, &secrets);
}
