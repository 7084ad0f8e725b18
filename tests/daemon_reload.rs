//! Config reload while running, on SIGHUP and on `sotto/<site>/reload`: a good new config takes
//! effect without a restart; a bad one is refused with its errors and the old one keeps serving.

use std::time::Duration;

use sotto_tests::daemon::{one_at_a_time, signal, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::{publish, MqttSubscriber};

const MOSQUITTO: u16 = 1883;

fn config(site: &str, domains: &str) -> String {
    format!("[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[stt]\ntimeout_s = 60\n[intents]\ndomains = {domains}\n[mqtt]\nport = {MOSQUITTO}\nsite_id = \"{site}\"\n")
}

#[test]
fn sighup_and_the_reload_topic_apply_a_good_config_and_refuse_a_bad_one() {
    let _one = one_at_a_time();
    let site = unique_site("reload");
    let action = format!("sotto/{site}/vehicle/climate/temperature");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&site, r#"["home"]"#));
    let subscriber = MqttSubscriber::start(MOSQUITTO, &[&action], None);
    let mut daemon = LiveDaemon::start(&path);
    daemon.wait_for_log("MQTT connected", Duration::from_secs(30));

    // Home only: a vehicle command is not understood.
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log("not recognised", Duration::from_secs(60));

    // A bad config is refused and names its problem; the running one stays.
    write_config(dir.path(), &config(&site, r#"["vehicle", "/nonexistent/pizza.toml"]"#));
    signal(daemon.pid(), "-HUP");
    daemon.wait_for_log("new config refused", Duration::from_secs(10));
    daemon.wait_for_log("intents.domains[1]: \"/nonexistent/pizza.toml\"", Duration::from_secs(5));
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log("not recognised", Duration::from_secs(60));

    // SIGHUP with a good config: vehicle commands now work, on the same MQTT session.
    write_config(dir.path(), &config(&site, r#"["vehicle"]"#));
    signal(daemon.pid(), "-HUP");
    daemon.wait_for_log("config reloaded", Duration::from_secs(10));
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    let message = subscriber.expect(&action, Duration::from_secs(60)).unwrap();
    assert_eq!(message.payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));

    // The reload topic does the same.
    write_config(dir.path(), &config(&site, r#"["home"]"#));
    publish(MOSQUITTO, &format!("sotto/{site}/reload"), "", false);
    daemon.wait_for_log("config reloaded", Duration::from_secs(10));
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log("not recognised", Duration::from_secs(60));

    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
    assert_eq!(
        log.iter().filter(|l| l.contains("MQTT connected")).count(),
        1,
        "no reconnect during reloads:\n{}",
        log.join("\n")
    );
}
