//! One install at a time, pure: the phases an update goes through in this
//! process (receiving the bundle, RAUC installing it, finished), the size a
//! bundle may have, and RAUC's progress as the page shows it.

use serde::Serialize;

/// The largest bundle taken, whatever the free space: a squashfs root of the
/// appliance is a few tens of megabytes.
pub const MAX_BUNDLE_BYTES: u64 = 1024 * 1024 * 1024;

/// Space left free in the spool directory below the bundle: `/run` is memory,
/// shared with the journal and the network's runtime files.
pub const SPOOL_RESERVE_BYTES: u64 = 8 * 1024 * 1024;

/// Where this process's update stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Nothing since the start.
    Idle,
    /// The bundle is arriving.
    Receiving {
        /// Bytes written to the spool file so far.
        received_bytes: u64,
        /// The request's `Content-Length`, when it has one.
        expected_bytes: Option<u64>,
    },
    /// RAUC has the bundle and installs it.
    Installing,
    /// The last attempt ended.
    Finished {
        /// Whether RAUC installed it (the device restarts into it).
        ok: bool,
        /// What happened, for humans.
        message: String,
    },
}

/// The phase, and who holds the one place for an update.
#[derive(Debug)]
pub struct Installer {
    phase: Phase,
}

/// Another update is being received or installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an update is already being {0}; wait for it to finish")]
pub struct Busy(&'static str);

impl Default for Installer {
    fn default() -> Self {
        Installer { phase: Phase::Idle }
    }
}

impl Installer {
    /// The phase now.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// Whether an update holds the place (receiving or installing).
    pub fn busy(&self) -> bool {
        matches!(self.phase, Phase::Receiving { .. } | Phase::Installing)
    }

    /// A bundle starts to arrive: takes the one place.
    pub fn begin(&mut self, expected_bytes: Option<u64>) -> Result<(), Busy> {
        match self.phase {
            Phase::Receiving { .. } => Err(Busy("received")),
            Phase::Installing => Err(Busy("installed")),
            Phase::Idle | Phase::Finished { .. } => {
                self.phase = Phase::Receiving {
                    received_bytes: 0,
                    expected_bytes,
                };
                Ok(())
            }
        }
    }

    /// `bytes` more of the bundle were written.
    pub fn received(&mut self, bytes: u64) {
        if let Phase::Receiving { received_bytes, .. } = &mut self.phase {
            *received_bytes = received_bytes.saturating_add(bytes);
        }
    }

    /// RAUC took the bundle.
    pub fn installing(&mut self) {
        if matches!(self.phase, Phase::Receiving { .. }) {
            self.phase = Phase::Installing;
        }
    }

    /// The attempt ended (at any phase): gives the place back.
    pub fn finish(&mut self, ok: bool, message: String) {
        self.phase = Phase::Finished { ok, message };
    }

    /// The attempt ended before anything was installed and leaves nothing worth
    /// showing (the request was refused): back to what it was before, as far as
    /// can be told, so a refusal does not hide the last real result.
    pub fn abandon(&mut self) {
        if self.busy() {
            self.phase = Phase::Idle;
        }
    }
}

/// The most a bundle may have when `free` bytes are available in the spool
/// directory: [`MAX_BUNDLE_BYTES`], or the free space less
/// [`SPOOL_RESERVE_BYTES`] when that is less.
pub fn size_limit(free: u64) -> u64 {
    MAX_BUNDLE_BYTES.min(free.saturating_sub(SPOOL_RESERVE_BYTES))
}

/// A bundle larger than there is room for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the bundle is too large: {}{} but there is room for {} (the update is kept in memory \
     until it is installed; at most {} in any case)",
    if *.at_least { "at least " } else { "" },
    megabytes(.size),
    megabytes(.limit),
    megabytes(&MAX_BUNDLE_BYTES)
)]
pub struct TooLarge {
    /// Its size, or how much had arrived when it went over.
    pub size: u64,
    /// Whether `size` is only what had arrived.
    pub at_least: bool,
    /// The limit.
    pub limit: u64,
}

/// Checks a size (announced or arrived so far) against `limit`.
pub fn check_size(size: u64, at_least: bool, limit: u64) -> Result<(), TooLarge> {
    if size > limit {
        Err(TooLarge {
            size,
            at_least,
            limit,
        })
    } else {
        Ok(())
    }
}

/// `bytes` in megabytes, one decimal.
fn megabytes(bytes: &u64) -> String {
    format!("{:.1} MB", *bytes as f64 / 1e6)
}

/// RAUC's `Progress` property: `(percentage, message, nesting depth)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// 0-100.
    pub percent: u8,
    /// What RAUC does now ("Checking and mounting bundle...").
    pub message: String,
    /// How deep in RAUC's steps the message is (1 = the whole install).
    pub depth: u32,
}

impl Progress {
    /// The property's value as RAUC sends it; out-of-range numbers are clamped.
    pub fn from_rauc((percent, message, depth): (i32, String, i32)) -> Self {
        Progress {
            percent: u8::try_from(percent.clamp(0, 100)).unwrap_or(0),
            message,
            depth: u32::try_from(depth.max(0)).unwrap_or(0),
        }
    }
}

/// The result of an install as RAUC reports it: its `Completed` signal's code
/// (0 is success) and its `LastError` property.
pub fn completion_message(code: i32, last_error: &str) -> (bool, String) {
    if code == 0 {
        (
            true,
            "installed; the device restarts into the new system".to_owned(),
        )
    } else if last_error.trim().is_empty() {
        (false, format!("RAUC could not install it (code {code})"))
    } else {
        (
            false,
            format!("RAUC could not install it: {}", last_error.trim()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_update_at_a_time_and_the_place_comes_back_when_it_ends() {
        let mut installer = Installer::default();
        assert!(!installer.busy());
        installer.begin(Some(10)).unwrap();
        assert_eq!(installer.begin(None), Err(Busy("received")));
        installer.received(4);
        installer.received(6);
        assert_eq!(
            installer.phase(),
            &Phase::Receiving {
                received_bytes: 10,
                expected_bytes: Some(10)
            }
        );
        installer.installing();
        assert_eq!(installer.phase(), &Phase::Installing);
        assert_eq!(installer.begin(None), Err(Busy("installed")));
        installer.finish(false, "no".into());
        assert!(!installer.busy());
        installer.begin(None).unwrap();
    }

    #[test]
    fn a_refused_request_leaves_no_trace_but_a_finished_one_stays() {
        let mut installer = Installer::default();
        installer.begin(None).unwrap();
        installer.abandon();
        assert_eq!(installer.phase(), &Phase::Idle);
        installer.finish(true, "done".into());
        installer.abandon();
        assert!(matches!(
            installer.phase(),
            Phase::Finished { ok: true, .. }
        ));
        // Nothing counts outside receiving, and installing comes only after it.
        installer.received(5);
        installer.installing();
        assert!(matches!(installer.phase(), Phase::Finished { .. }));
    }

    #[test]
    fn the_size_limit_is_the_free_space_less_a_reserve_and_at_most_the_maximum() {
        assert_eq!(size_limit(0), 0);
        assert_eq!(size_limit(SPOOL_RESERVE_BYTES), 0);
        assert_eq!(size_limit(SPOOL_RESERVE_BYTES + 5), 5);
        assert_eq!(size_limit(u64::MAX), MAX_BUNDLE_BYTES);
        assert!(check_size(5, false, 5).is_ok());
        let error = check_size(6_000_000, true, 5_000_000).unwrap_err();
        let text = error.to_string();
        assert!(text.contains("at least 6.0 MB"), "{text}");
        assert!(text.contains("room for 5.0 MB"), "{text}");
        let text = check_size(6_000_000, false, 5_000_000)
            .unwrap_err()
            .to_string();
        assert!(text.contains("too large: 6.0 MB but"), "{text}");
    }

    #[test]
    fn rauc_progress_and_results_read_as_the_page_shows_them() {
        assert_eq!(
            Progress::from_rauc((140, "x".into(), -1)),
            Progress {
                percent: 100,
                message: "x".into(),
                depth: 0
            }
        );
        assert_eq!(Progress::from_rauc((-3, String::new(), 2)).percent, 0);
        assert!(completion_message(0, "old error").0);
        let (ok, message) = completion_message(1, "Compatible mismatch\n");
        assert!(!ok);
        assert!(message.ends_with("Compatible mismatch"), "{message}");
        assert!(completion_message(2, " ").1.contains("code 2"));
    }
}
