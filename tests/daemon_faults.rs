//! Faults the daemon meets in the field, each provoked for real: the broker missing at start or
//! refusing the credentials, the speech-to-text worker hanging or failing at every start, a model
//! file changed under a running daemon, SIGTERM in the middle of a command, a disk filling up
//! while models are fetched, and a microphone that is not there. In every case the daemon stays
//! up (or exits cleanly when told to), says why, and retries at a bounded rate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sotto_tests::daemon::{children_named, one_at_a_time, signal, sotto, unique_site, write_config, LiveDaemon};
use sotto_tests::mqtt::{free_port, Mosquitto, MqttMessage, MqttSubscriber};

const MOSQUITTO: u16 = 1883;

/// A stdin-fed daemon for `site` on the broker at `port`; `mqtt` and `rest` are extra lines for
/// the `[mqtt]` table and for the tables after it. Speech-to-text gets a minute unless `rest` has
/// its own `[stt]`: on a loaded 2-core machine Whisper alone has taken over 15 s.
fn config(site: &str, port: u16, mqtt: &str, rest: &str) -> String {
    let stt = if rest.contains("[stt]") { "" } else { "[stt]\ntimeout_s = 60\n" };
    format!("[audio]\nsource = \"stdin\"\n[slm]\nenabled = false\n{stt}[mqtt]\nport = {port}\nsite_id = \"{site}\"\n{mqtt}\n{rest}\n")
}

fn lines_with<'a>(lines: &'a [String], needle: &str) -> Vec<&'a String> {
    lines.iter().filter(|l| l.contains(needle)).collect()
}

/// sessionEnded payloads of `site` among `messages`.
fn ended(messages: &[MqttMessage], site: &str) -> Vec<serde_json::Value> {
    messages
        .iter()
        .filter(|m| m.topic == "hermes/dialogueManager/sessionEnded" && m.payload["siteId"] == site)
        .map(|m| m.payload.clone())
        .collect()
}

/// The next sessionEnded of `site` (other sites on the shared broker are skipped).
fn next_ended(subscriber: &MqttSubscriber, site: &str, timeout: Duration) -> serde_json::Value {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = subscriber.expect("hermes/dialogueManager/sessionEnded", left).unwrap_or_else(|e| panic!("{e}"));
        if message.payload["siteId"] == site {
            return message.payload;
        }
    }
}

fn stt_worker(daemon: &LiveDaemon) -> u32 {
    let workers = children_named(daemon.pid(), "sotto-stt-worker");
    assert_eq!(workers.len(), 1, "one STT worker under the daemon: {workers:?}");
    workers[0]
}

/// Connection attempts a daemon logs while its broker cannot be used: a few per window thanks to
/// the backoff (`reconnect_max_secs = 2`), not a busy loop.
fn assert_bounded_retries(window: &[String], seconds: u64) -> usize {
    let attempts = lines_with(window, "cannot connect to the MQTT broker").len();
    assert!(
        (2..=(seconds as usize / 2 + 3)).contains(&attempts),
        "{attempts} connection attempts in {seconds} s with reconnect_max_secs = 2:\n{}",
        window.join("\n")
    );
    attempts
}

#[test]
fn a_broker_down_at_start_is_retried_with_backoff_and_a_command_spoken_meanwhile_arrives() {
    let _one = one_at_a_time();
    let site = unique_site("down-at-start");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let session = format!("{site}-sub");
    // Register a persistent subscriber on a broker that then moves to the daemon's port while
    // stopped: when it comes up there, the session (and what the daemon sends) is kept for it.
    let mut broker = Mosquitto::start();
    drop(MqttSubscriber::start(broker.port, &[&action_topic], Some(&session)));
    broker.stop();
    let port = free_port();
    broker.move_to(port);

    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&site, port, "reconnect_max_secs = 2", ""));
    let mut daemon = LiveDaemon::start(&path);
    let window = daemon.log_during(Duration::from_secs(8));
    assert_bounded_retries(&window, 8);
    assert!(window.iter().any(|l| l.contains("Connection refused")), "the cause is named:\n{}", window.join("\n"));

    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log(&format!("topic={action_topic}"), Duration::from_secs(60));
    let decided = Instant::now();
    broker.restart();
    daemon.wait_for_log("MQTT connected", Duration::from_secs(10));
    let subscriber = MqttSubscriber::start(port, &[&action_topic], Some(&session));
    let actions = subscriber.drain(Duration::from_secs(3));
    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
    // vehicle.toml gives climate actions a 10 s expiry.
    assert!(decided.elapsed() < Duration::from_secs(10) || !actions.is_empty(), "the test itself was too slow");
    assert_eq!(actions.len(), 1, "the command spoken during the outage arrives once: {actions:?}");
    assert_eq!(actions[0].payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));
}

/// `mosquitto_passwd` writes a password file Mosquitto (which drops root) can read.
fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let file = dir.join("passwd");
    let status = Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args([user, password])
        .status()
        .expect("mosquitto_passwd");
    assert!(status.success());
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    file
}

#[test]
fn a_broker_refusing_the_credentials_is_named_retried_at_a_bounded_rate_and_gets_no_action() {
    let _one = one_at_a_time();
    let site = unique_site("bad-password");
    // One broker, two listeners: the daemon's needs a password, the test's subscriber listens on
    // an anonymous one and would see anything the daemon managed to publish.
    let mut broker = Mosquitto::configured(free_port());
    let open_port = free_port();
    let passwd = password_file(broker.dir(), "sotto", "the right one");
    broker.set_config(&format!(
        "per_listener_settings true\nlistener {} 127.0.0.1\nallow_anonymous false\npassword_file {}\n\
         listener {open_port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
        broker.port,
        passwd.display()
    ));
    broker.restart();
    let subscriber = MqttSubscriber::start(open_port, &["#"], None);

    let dir = tempfile::tempdir().unwrap();
    let mqtt = "reconnect_max_secs = 2\nusername = \"sotto\"\npassword_env = \"SOTTO_TEST_MQTT_PASSWORD\"";
    let path = write_config(dir.path(), &config(&site, broker.port, mqtt, ""));
    let secret = "wrong-secret-7f3a";
    let mut daemon = LiveDaemon::start_with_env(&path, &[("SOTTO_TEST_MQTT_PASSWORD", secret)]);
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    daemon.wait_for_log(&format!("topic=sotto/{site}/vehicle/climate/temperature"), Duration::from_secs(60));
    let window = daemon.log_during(Duration::from_secs(8));
    assert_bounded_retries(&window, 8);
    let refused = lines_with(&window, "cannot connect to the MQTT broker");
    assert!(
        refused.iter().all(|l| l.contains("BadUserNamePassword") || l.contains("NotAuthorized")),
        "each attempt names the refusal:\n{}",
        window.join("\n")
    );
    // At the end of its input the daemon still cannot deliver what it queued: it says so and
    // exits non-zero rather than pretend.
    let (ok, log) = daemon.finish();
    assert!(!ok && log.iter().any(|l| l.contains("publishing what was queued before exit")), "{}", log.join("\n"));
    assert!(!log.iter().any(|l| l.contains(secret)), "the password never appears in the log");
    let seen: Vec<String> = subscriber.drain(Duration::from_secs(1)).into_iter().map(|m| m.topic).collect();
    assert!(seen.iter().all(|t| !t.contains(&site)), "nothing of this site got through: {seen:?}");
}

#[test]
fn a_hung_stt_worker_is_killed_at_its_timeout_and_the_next_command_is_served() {
    let _one = one_at_a_time();
    let site = unique_site("hung-stt");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let ends = MqttSubscriber::start(MOSQUITTO, &["hermes/dialogueManager/sessionEnded"], None);
    let subscriber = MqttSubscriber::start(MOSQUITTO, &[&action_topic], None);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&site, MOSQUITTO, "", "[stt]\ntimeout_s = 30"));
    let mut daemon = LiveDaemon::start(&path);

    // Frozen before the command: it neither reads the request (the audio is larger than a pipe
    // buffer) nor answers.
    let frozen = stt_worker(&daemon);
    signal(frozen, "-STOP");
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    let failed = daemon.wait_for_log("speech-to-text failed", Duration::from_secs(60));
    assert!(failed.contains("did not answer") && failed.contains("30s"), "{failed}");
    let first = next_ended(&ends, &site, Duration::from_secs(5));
    assert_eq!(first["termination"]["reason"], "error", "{first}");
    assert!(first["termination"]["error"].as_str().unwrap().contains("did not answer"), "{first}");

    daemon.speak("pos_jarvis_vehicle_temp.wav");
    let action = subscriber
        .expect(&action_topic, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the next command is served: {e}\n{}", daemon.log_text()));
    assert_eq!(action.payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));
    let restarted = stt_worker(&daemon);
    assert_ne!(restarted, frozen, "a new worker serves");
    assert!(!Path::new(&format!("/proc/{frozen}")).exists(), "the hung worker was killed and reaped");

    assert_eq!(next_ended(&ends, &site, Duration::from_secs(5))["termination"]["reason"], "nominal");

    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
    let failures: Vec<&String> = lines_with(&log, "worker failure");
    assert_eq!(failures.len(), 1, "one failure, then a healthy worker: {failures:?}");
}

#[test]
fn a_worker_failing_at_every_start_is_given_up_on_after_bounded_attempts() {
    let _one = one_at_a_time();
    let site = unique_site("crash-loop");
    let subscriber = MqttSubscriber::start(MOSQUITTO, &["hermes/dialogueManager/sessionEnded"], None);
    // A private worker directory whose STT worker can be replaced while the daemon runs.
    let workers = tempfile::tempdir().unwrap();
    let real = sotto_tests::daemon::target_dir().join("sotto-stt-worker");
    let installed = workers.path().join("sotto-stt-worker");
    std::fs::copy(&real, &installed).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &config(&site, MOSQUITTO, "", ""));
    let workers_dir = workers.path().display().to_string();
    let mut daemon = LiveDaemon::start_with_env(&path, &[("SOTTO_WORKER_DIR", workers_dir.as_str())]);

    // The installation breaks: every start of the worker fails the same way from now on.
    let spawns = workers.path().join("spawns");
    let broken = workers.path().join("broken");
    std::fs::write(
        &broken,
        format!(
            "#!/bin/sh\necho start >> {}\necho 'ERROR cannot load the model: bad magic' >&2\nexit 3\n",
            spawns.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&broken, &installed).unwrap();
    signal(stt_worker(&daemon), "-KILL");

    let count = || std::fs::read_to_string(&spawns).map_or(0, |s| s.lines().count());
    let mut errors = Vec::new();
    let mut spawned = Vec::new();
    for _ in 0..7 {
        daemon.speak("pos_jarvis_vehicle_temp.wav");
        errors.push(daemon.wait_for_log("speech-to-text failed", Duration::from_secs(60)));
        spawned.push(count());
    }
    // Five consecutive failures (the killed worker, then four starts) and the supervisor stops:
    // later commands fail at once, without another start.
    assert_eq!(spawned, [0, 1, 2, 3, 4, 4, 4], "start attempts after each command; errors:\n{}", errors.join("\n"));
    assert!(errors[4].contains("gave up after 5 consecutive failures"), "{}", errors[4]);
    assert!(errors[6].contains("gave up"), "{}", errors[6]);

    let (ok, log) = daemon.finish();
    assert!(ok, "the daemon stays up and ends normally:\n{}", log.join("\n"));
    let ends = ended(&subscriber.drain(Duration::from_secs(1)), &site);
    assert_eq!(ends.len(), 7, "{ends:?}");
    let last = &ends[6]["termination"];
    assert_eq!(last["reason"], "error");
    let reason = last["error"].as_str().unwrap();
    assert!(
        reason.contains("gave up") && reason.contains("exit status 3") && reason.contains("bad magic"),
        "Hermes carries the reason: {last}"
    );
}

/// The model directory the tests use, from the built binary's own view of it.
fn shared_models_dir() -> PathBuf {
    let out = sotto().args(["models", "path", "silero-vad"]).output().unwrap();
    assert!(out.status.success(), "models are not fetched: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).parent().unwrap().to_path_buf()
}

/// A model directory of links to the shared models, except `own`, which is a private copy a test
/// may change.
fn private_models(own: &str) -> tempfile::TempDir {
    let shared = shared_models_dir();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&shared).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') || !entry.path().is_file() {
            continue; // verification stamps and fetch leftovers belong to the shared directory
        }
        if name == own {
            std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
        } else {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(&name)).unwrap();
        }
    }
    assert!(dir.path().join(own).is_file(), "{own} is not in {}", shared.display());
    dir
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn a_reload_after_a_model_file_changed_is_refused_and_the_old_engines_keep_serving() {
    let _one = one_at_a_time();
    let models = private_models("silero-vad.onnx");
    let vad = models.path().join("silero-vad.onnx");
    let site = unique_site("model-changed");
    let action_topic = format!("sotto/{site}/vehicle/climate/temperature");
    let subscriber = MqttSubscriber::start(MOSQUITTO, &[&action_topic], None);
    let dir = tempfile::tempdir().unwrap();
    let rest = format!("[models]\ndir = \"{}\"", models.path().display());
    let path = write_config(dir.path(), &config(&site, MOSQUITTO, "", &rest));
    let mut daemon = LiveDaemon::start(&path);

    flip_last_byte(&vad);
    signal(daemon.pid(), "-HUP");
    daemon.wait_for_log("new config refused", Duration::from_secs(20));
    let reason = daemon.wait_for_log("silero-vad", Duration::from_secs(5));
    assert!(
        reason.contains(&vad.display().to_string()) && reason.contains("sha256"),
        "names the file and the mismatch: {reason}"
    );

    daemon.speak("pos_jarvis_vehicle_temp.wav");
    let action = subscriber
        .expect(&action_topic, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the loaded engines keep serving: {e}\n{}", daemon.log_text()));
    assert_eq!(action.payload, serde_json::json!({"celsius": 21.0, "zone": "driver"}));

    // Put right, the same reload goes through: the check refuses changed bytes, not reloads.
    flip_last_byte(&vad);
    signal(daemon.pid(), "-HUP");
    daemon.wait_for_log("config reloaded", Duration::from_secs(20));
    let (ok, log) = daemon.finish();
    assert!(ok, "{}", log.join("\n"));
}

#[test]
fn sigterm_while_speech_to_text_runs_exits_within_5_s_and_leaves_offline_retained() {
    let _one = one_at_a_time();
    let site = unique_site("sigterm");
    let status_topic = format!("sotto/{site}/status");
    let subscriber = MqttSubscriber::start(MOSQUITTO, &["hermes/dialogueManager/sessionEnded"], None);
    let dir = tempfile::tempdir().unwrap();
    // A long timeout: the exit must not wait for it.
    let path = write_config(dir.path(), &config(&site, MOSQUITTO, "", "[stt]\ntimeout_s = 60"));
    let mut daemon = LiveDaemon::start(&path);
    daemon.wait_for_log("MQTT connected", Duration::from_secs(10));

    // The worker cannot finish, so the command is certainly still in speech-to-text below.
    let worker = stt_worker(&daemon);
    signal(worker, "-STOP");
    daemon.speak("pos_jarvis_vehicle_temp.wav");
    std::thread::sleep(Duration::from_secs(1));
    let (status, took, log) = daemon.stop_with("-TERM", Duration::from_secs(20));
    let status = status.unwrap_or_else(|| panic!("still running 20 s after SIGTERM:\n{}", log.join("\n")));
    assert!(status.success(), "exit status {status}:\n{}", log.join("\n"));
    assert!(took < Duration::from_secs(5), "exited {took:?} after SIGTERM:\n{}", log.join("\n"));
    assert!(log.iter().any(|l| l.contains("termination requested during a command")), "{}", log.join("\n"));
    // Killed, not left frozen as an orphan (it may linger as a zombie until reaped).
    let state = std::fs::read_to_string(format!("/proc/{worker}/stat")).unwrap_or_default();
    assert!(!state.contains(") T"), "the busy worker is still there, stopped: {state}");

    let ends = ended(&subscriber.drain(Duration::from_secs(1)), &site);
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["termination"]["reason"], "abortedByUser", "{}", ends[0]);
    let retained = MqttSubscriber::start(MOSQUITTO, &[&status_topic], None);
    let offline = retained.expect(&status_topic, Duration::from_secs(3)).unwrap();
    assert!(offline.retain && offline.payload == "offline", "{offline:?}");
}

/// A tmpfs of `size` mounted for the test's lifetime; None (with the reason printed) where the
/// test may not mount.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(SmallDisk { dir }),
            Ok(out) => {
                eprintln!("SKIPPED: cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn fetching_a_model_onto_a_full_disk_fails_clearly_and_leaves_no_file_under_its_name() {
    let Some(disk) = SmallDisk::mount("2m") else { return };
    let models = disk.dir.path();
    // A 4 MB "model" from a local file, twice: once declared with its true size (refused before
    // downloading: it cannot fit), once claiming 1 MB (the download itself fills the disk).
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("big.onnx");
    let bytes: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&source, &bytes).unwrap();
    let sha = Command::new("sha256sum").arg(&source).output().unwrap();
    let sha = String::from_utf8_lossy(&sha.stdout).split_whitespace().next().unwrap().to_string();
    let entry = |id: &str, size: usize| {
        format!(
            "[[model]]\nid = \"{id}\"\nrole = \"wake\"\nfile = \"{id}.onnx\"\nsize = {size}\nsha256 = \"{sha}\"\n\
             license = \"MIT\"\nsources = [{{ kind = \"url\", url = \"file://{}\" }}]\n",
            source.display()
        )
    };
    let manifest = entry("big-test-model", bytes.len()) + &entry("liar-test-model", 1 << 20);
    std::fs::write(models.join("models.local.toml"), manifest).unwrap();

    for id in ["big-test-model", "liar-test-model"] {
        let out = sotto().args(["models", "fetch", id]).env("SOTTO_MODELS", models).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "a fetch onto a full disk fails:\n{stderr}");
        assert!(stderr.contains(id), "names the model:\n{stderr}");
        assert!(stderr.contains("no space left on device"), "names the cause:\n{stderr}");
        assert!(!models.join(format!("{id}.onnx")).exists(), "no file under the final name");
        let leftovers: Vec<_> = walk(models).into_iter().filter(|p| p.to_string_lossy().contains(id)).collect();
        assert!(leftovers.is_empty(), "no partial file left behind: {leftovers:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else if path.file_name().is_some_and(|n| n != "models.local.toml") {
            found.push(path);
        }
    }
    found
}

/// There is no capture device on a test machine, which is the "microphone gone" case: the
/// daemon stays up and retries, each wait twice the last (no busy loop), and stops on SIGTERM.
#[test]
fn a_missing_microphone_is_retried_with_doubling_waits_and_the_daemon_stays_up() {
    let _one = one_at_a_time();
    let site = unique_site("no-mic");
    let dir = tempfile::tempdir().unwrap();
    let text = config(&site, MOSQUITTO, "", "")
        .replace("source = \"stdin\"", "source = \"microphone\"\ndevice = \"no-such-microphone\"");
    let path = write_config(dir.path(), &text);
    let mut daemon = LiveDaemon::start(&path);
    let mut window = daemon.log.clone();
    window.extend(daemon.log_during(Duration::from_secs(8)));
    let retries = lines_with(&window, "cannot open capture device");
    let waits: Vec<u64> =
        retries.iter().filter_map(|l| l.split("retry_ms=").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
    assert!((3..=6).contains(&waits.len()), "{} retries in about 8 s:\n{}", waits.len(), window.join("\n"));
    assert!(waits.windows(2).all(|w| w[1] == (w[0] * 2).min(30_000)), "each wait doubles: {waits:?}");
    assert!(retries.iter().all(|l| l.contains("no-such-microphone")), "the device is named:\n{}", window.join("\n"));
    let (status, took, log) = daemon.stop_with("-TERM", Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}:\n{}", log.join("\n"));
    assert!(took < Duration::from_secs(5), "{took:?}");
}
