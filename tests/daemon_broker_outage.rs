//! The broker goes away while the daemon listens (microphone-like input on stdin): a command
//! spoken during the outage is published once when the broker is back within the action's expiry,
//! and dropped when it comes back too late. Events queued meanwhile are not lost either.

use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sotto_tests::daemon::{fixture, one_at_a_time, sotto, unique_site, write_config};
use sotto_tests::mqtt::{Mosquitto, MqttSubscriber};

/// 16 kHz mono s16le PCM of a fixture (any WAV format), via sox.
fn pcm_of(name: &str) -> Vec<u8> {
    let out = std::process::Command::new("sox")
        .arg(fixture(name))
        .args(["-t", "raw", "-r", "16000", "-c", "1", "-e", "signed", "-b", "16", "-"])
        .output()
        .expect("sox is missing (Debian package sox)");
    assert!(out.status.success());
    out.stdout
}

fn silence(seconds: f32) -> Vec<u8> {
    vec![0u8; (seconds * 16_000.0) as usize * 2]
}

/// Writes audio at about real time (a microphone does not deliver faster).
fn speak(stdin: &mut ChildStdin, pcm: &[u8]) {
    for chunk in pcm.chunks(3200) {
        stdin.write_all(chunk).unwrap();
        std::thread::sleep(Duration::from_millis(90));
    }
}

fn wait_for_log(lines: &mpsc::Receiver<String>, needle: &str, timeout: Duration, seen: &mut Vec<String>) {
    let deadline = Instant::now() + timeout;
    while let Ok(line) = lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen.push(line.clone());
        if line.contains(needle) {
            return;
        }
    }
    panic!("no log line with {needle:?} within {timeout:?}; log:\n{}", seen.join("\n"));
}

/// Returns the action messages a persistent subscriber received after the broker came back,
/// `back_after` the daemon decided on the action.
fn outage(back_after: Duration) -> Vec<sotto_tests::mqtt::MqttMessage> {
    let _one = one_at_a_time();
    let mut broker = Mosquitto::start();
    let site = unique_site("outage");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let session = format!("{site}-sub");
    // Register a persistent session, so messages published while it is offline are kept for it.
    drop(MqttSubscriber::start(broker.port, &[&action_topic, "hermes/#"], Some(&session)));

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n[mqtt]\nport = {}\nsite_id = \"{site}\"\nreconnect_max_secs = 1\n",
            broker.port
        ),
    );
    let mut daemon = sotto()
        .args(["run", "--config"])
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let stderr = daemon.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    wait_for_log(&lines, "MQTT connected", Duration::from_secs(60), &mut log);
    wait_for_log(&lines, "sotto ready", Duration::from_secs(60), &mut log);
    let mut stdin = daemon.stdin.take().unwrap();
    speak(&mut stdin, &silence(0.5));

    broker.stop();
    speak(&mut stdin, &pcm_of("pos_jarvis_vehicle_temp.wav"));
    speak(&mut stdin, &silence(1.0));
    wait_for_log(&lines, &format!("topic={action_topic}"), Duration::from_secs(60), &mut log);
    let decided = Instant::now();

    std::thread::sleep(back_after.saturating_sub(decided.elapsed()));
    broker.restart();
    let subscriber = MqttSubscriber::start(broker.port, &[&action_topic, "hermes/#"], Some(&session));
    // The daemon reconnects within reconnect_max_secs and drains its queue.
    let received = subscriber.drain(Duration::from_secs(4));
    speak(&mut stdin, &silence(0.2));
    drop(stdin);
    let status = daemon.wait().unwrap();
    while let Ok(line) = lines.try_recv() {
        log.push(line);
    }
    assert!(status.success(), "daemon exit {status}; log:\n{}", log.join("\n"));
    let events: Vec<&str> = received.iter().filter(|m| m.payload["siteId"] == site.as_str()).map(|m| m.topic.as_str()).collect();
    assert!(
        events.contains(&"hermes/asr/textCaptured") && events.contains(&"hermes/intent/climate.set_temperature"),
        "events queued during the outage arrive too: {events:?}"
    );
    received.into_iter().filter(|m| m.topic == action_topic).collect()
}

#[test]
fn an_action_spoken_while_the_broker_is_down_arrives_once_within_its_expiry() {
    let actions = outage(Duration::from_secs(2));
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));
}

#[test]
fn an_action_whose_expiry_passed_during_the_outage_is_dropped() {
    // vehicle.toml gives climate actions a 10 s expiry.
    let actions = outage(Duration::from_secs(12));
    assert!(actions.is_empty(), "an expired command must not run late: {actions:?}");
}
