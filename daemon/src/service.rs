//! Life as a systemd service: readiness and watchdog notifications, and the signals that reload
//! (SIGHUP) or stop (SIGTERM, SIGINT) the daemon. Outside systemd the notifications are no-ops.

use tokio::signal::unix::{signal, Signal, SignalKind};

pub fn notify_ready() {
    notify(&[sd_notify::NotifyState::Ready]);
}

pub fn notify_stopping() {
    notify(&[sd_notify::NotifyState::Stopping]);
}

/// Called from the session loop's tick: a stuck loop stops the pings and systemd restarts us.
pub fn notify_watchdog() {
    notify(&[sd_notify::NotifyState::Watchdog]);
}

fn notify(state: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(err) = sd_notify::notify(state) {
        tracing::warn!(error = %err, "systemd notification failed");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceSignal {
    Reload,
    Terminate,
}

pub struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    pub fn new() -> std::io::Result<Self> {
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal that concerns the daemon.
    pub async fn next(&mut self) -> ServiceSignal {
        tokio::select! {
            _ = self.hangup.recv() => ServiceSignal::Reload,
            _ = self.terminate.recv() => ServiceSignal::Terminate,
            _ = self.interrupt.recv() => ServiceSignal::Terminate,
        }
    }
}
