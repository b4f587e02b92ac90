//! What the servers' accept loops share (HTTP in `web`, RTSP in `rtsp`): telling
//! a process that is out of resources from one connection's own trouble, the
//! pause before accepting again, and a log line no client can make repeat.

use std::io;
use std::time::Duration;

/// Pause after `accept` failed for lack of a resource (files, memory): the next
/// call would fail too, and a busy loop would take the CPU from the video.
pub const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Whether `accept` failed for lack of a resource of the whole process (so the
/// next call would fail too), not because of one connection.
pub fn out_of_resources(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// Refusals and `accept` errors are logged at most this often.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Logs at most once per [`LOG_INTERVAL`], saying how many were held back: for
/// what a client can make happen as often as it likes (refused connections and
/// requests, a full process's failing `accept`).
#[derive(Debug)]
pub struct RateLimitedLog {
    last: Option<tokio::time::Instant>,
    held_back: u64,
}

impl RateLimitedLog {
    /// Nothing logged yet: the first one is due.
    pub const fn new() -> Self {
        RateLimitedLog {
            last: None,
            held_back: 0,
        }
    }

    /// `Some(number held back since the last one)` when this one is to be logged.
    pub fn due(&mut self) -> Option<u64> {
        let now = tokio::time::Instant::now();
        if self.last.is_some_and(|last| now < last + LOG_INTERVAL) {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

impl Default for RateLimitedLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limited_log_holds_back_what_comes_within_the_interval() {
        let mut log = RateLimitedLog::new();
        assert_eq!(log.due(), Some(0));
        assert_eq!(log.due(), None);
        assert_eq!(log.due(), None);
        assert_eq!(log.held_back, 2);
    }

    #[test]
    fn only_the_process_wide_shortages_count_as_out_of_resources() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(out_of_resources(&io::Error::from_raw_os_error(errno)));
        }
        for errno in [libc::ECONNABORTED, libc::EPERM, libc::EINTR] {
            assert!(!out_of_resources(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!out_of_resources(&io::Error::other("no errno")));
    }
}
