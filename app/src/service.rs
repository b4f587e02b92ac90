//! Running as a service: logging (journald or stderr), systemd notifications
//! (`READY=1`, watchdog, `STOPPING=1`) and signals.
//!
//! Outside systemd every notification is a no-op, so the same binary runs from a
//! terminal, from `make run` and as the appliance's unit.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::hub::{Hub, SourceState};

/// Where log records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// The systemd journal, with structured fields.
    Journald,
    /// Human-readable lines on stderr.
    Stderr,
}

/// True when stderr is the journal's stream (systemd sets `JOURNAL_STREAM` to the
/// device and inode of the stream it connected to stderr).
pub fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = value.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Human-readable lines on stderr, coloured only on a terminal.
fn stderr_layer<S>() -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
}

/// Starts logging with `filter` (a tracing `EnvFilter` directive such as `info` or
/// `streamer=debug,info`); `RUST_LOG`, when set, wins. An invalid filter falls
/// back to `info` and is reported once logging works.
pub fn init_logging(filter: &str) -> LogTarget {
    let (env_filter, bad_filter) = match std::env::var("RUST_LOG") {
        Ok(from_env) if !from_env.is_empty() => match EnvFilter::try_new(&from_env) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("RUST_LOG={from_env}: {e}")),
            ),
        },
        _ => match EnvFilter::try_new(filter) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new("info"),
                Some(format!("log.level = {filter:?}: {e}")),
            ),
        },
    };
    let registry = tracing_subscriber::registry().with(env_filter);
    let target = if stderr_is_journal() {
        match tracing_journald::layer() {
            Ok(journald) => {
                registry
                    .with(journald.with_syslog_identifier("streamer".into()))
                    .init();
                LogTarget::Journald
            }
            Err(_) => {
                registry.with(stderr_layer()).init();
                LogTarget::Stderr
            }
        }
    } else {
        registry.with(stderr_layer()).init();
        LogTarget::Stderr
    };
    if let Some(problem) = bad_filter {
        tracing::warn!(%problem, "invalid log filter; logging at info");
    }
    target
}

fn notify(state: NotifyState<'_>) {
    if let Err(error) = sd_notify::notify(&[state]) {
        tracing::debug!(%error, "sd_notify failed");
    }
}

/// Tells systemd the service is ready (listening).
pub fn notify_ready() {
    notify(NotifyState::Ready);
}

/// Tells systemd the service is stopping.
pub fn notify_stopping() {
    notify(NotifyState::Stopping);
}

/// Sets the one-line status `systemctl status` shows.
pub fn notify_status(status: &str) {
    notify(NotifyState::Status(status));
}

/// The watchdog interval systemd asked for (`WatchdogSec=`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
}

/// Whether the service is doing its job, for the watchdog: video flowed within
/// `within`, or the source is offline with a known reason (camera missing or
/// failing) and its supervisor is retrying, or it is idle on purpose because
/// nobody watches (`camera.on_demand`). A source that claims to run but
/// delivers nothing is not alive: then keep-alives stop and systemd restarts us.
pub fn is_alive(hub: &Hub, within: Duration) -> bool {
    let fresh = hub.last_frame_age().is_some_and(|age| age <= within);
    let status = hub.source_status();
    let retrying = status.state == SourceState::Offline && status.message.is_some();
    let starting = status.state == SourceState::Starting && hub.uptime() <= within;
    let idle = status.state == SourceState::Idle;
    fresh || retrying || starting || idle
}

/// Sends watchdog keep-alives every half interval while [`is_alive`]; runs forever.
pub async fn watchdog(hub: Hub, interval: Duration) {
    let mut tick = tokio::time::interval(interval / 2);
    let mut was_alive = true;
    loop {
        tick.tick().await;
        let alive = is_alive(&hub, interval);
        if alive {
            notify(NotifyState::Watchdog);
        } else if was_alive {
            tracing::error!(
                interval_s = interval.as_secs_f64(),
                "no video is flowing: stopping watchdog keep-alives so systemd restarts the service"
            );
        }
        was_alive = alive;
    }
}

/// Completes on the first SIGTERM or SIGINT; a second one exits the process at once.
pub async fn shutdown_signal() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: closing viewers and stopping"),
        _ = int.recv() => tracing::info!("SIGINT: closing viewers and stopping"),
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::idr;
    use crate::hub::{HubLimits, SourceStatus};
    use std::time::SystemTime;

    fn hub() -> Hub {
        Hub::new(HubLimits::for_frame_rate(25.0, 4), Some(25.0))
    }

    fn status(state: SourceState, message: Option<&str>) -> SourceStatus {
        SourceStatus {
            kind: "test".into(),
            description: "test".into(),
            state,
            message: message.map(str::to_owned),
            restarts: 0,
        }
    }

    #[test]
    fn alive_while_frames_flow_and_not_once_they_stop() {
        let hub = hub();
        hub.set_source_status(status(SourceState::Live, None));
        hub.publish(&idr(true, 1), SystemTime::now());
        assert!(is_alive(&hub, Duration::from_millis(200)));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !is_alive(&hub, Duration::from_millis(200)),
            "a live source that delivers nothing is a stall"
        );
    }

    #[test]
    fn alive_while_the_supervisor_retries_an_offline_source() {
        let hub = hub();
        hub.set_source_status(status(SourceState::Offline, Some("camera unplugged")));
        assert!(is_alive(&hub, Duration::from_millis(1)));
    }

    #[test]
    fn starting_is_alive_only_for_one_interval() {
        let hub = hub();
        hub.set_source_status(status(SourceState::Starting, None));
        assert!(is_alive(&hub, Duration::from_secs(5)));
        std::thread::sleep(Duration::from_millis(30));
        assert!(!is_alive(&hub, Duration::from_millis(10)));
    }
}
