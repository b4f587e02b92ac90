//! Updates without reflashing: a signed RAUC bundle, uploaded to
//! `POST /api/update`, is installed by RAUC into the other root slot; the
//! device restarts into it on trial and goes back by itself when the streamer
//! does not come up (the scripts around RAUC, not this module, do that part).
//!
//! - [`install`]: the pure core: one update at a time, its phases, the size a
//!   bundle may have, RAUC's progress.
//! - [`record`]: the pure readers of `/boot/last-update.txt` (the last
//!   update's result) and of `IMAGE_VERSION` in `/etc/os-release`.
//! - [`rauc`]: the narrow [`rauc::Rauc`] trait the rest uses, so it is tested
//!   without D-Bus; [`dbus`] is the real one.
//! - [`http`]: `GET` and `POST /api/update`, mounted by `web`.
//!
//! [`Updates`] puts them together. Where RAUC is not (a laptop, `make run`),
//! everything says "updates are not available here", logged once at info level.

pub mod dbus;
pub mod http;
pub mod install;
pub mod rauc;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use install::{Installer, Phase};
use rauc::{Rauc, RaucError, RaucStatus};
use record::LastUpdate;

/// Where an uploaded bundle is written before RAUC installs it: the unit's
/// `RuntimeDirectory=streamer-update` (memory, mode 0700, the streamer's own).
pub const SPOOL_DIR: &str = "/run/streamer-update";
/// Overrides [`SPOOL_DIR`] (tests, `make run`). Not a configuration variable:
/// it has no `__`.
pub const SPOOL_DIR_ENV: &str = "STREAMER_UPDATE_SPOOL";
/// The running image's `os-release`, with its `IMAGE_VERSION=`.
pub const OS_RELEASE: &str = "/etc/os-release";
/// Overrides [`OS_RELEASE`] (tests).
pub const OS_RELEASE_ENV: &str = "STREAMER_UPDATE_OS_RELEASE";
/// The kernel's id of this boot (a random UUID made at each boot): the update
/// page tells by it that the device restarted.
pub const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// Overrides [`BOOT_ID`] (tests: a restart is played by writing a new one).
pub const BOOT_ID_ENV: &str = "STREAMER_UPDATE_BOOT_ID";
/// The last update's result, beside the configuration file (`/boot`).
pub const LAST_UPDATE_FILE: &str = "last-update.txt";
/// The file name of the bundle in the spool directory.
pub const SPOOL_FILE: &str = "upload.raucb";

/// RAUC's answers are kept this long for `/api/status` (which the player asks
/// every few seconds).
const SUMMARY_TTL: Duration = Duration::from_secs(5);

/// The files the update feature reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The spool directory.
    pub spool: PathBuf,
    /// `last-update.txt`.
    pub last_update: PathBuf,
    /// `os-release`.
    pub os_release: PathBuf,
    /// The kernel's boot id.
    pub boot_id: PathBuf,
}

impl Paths {
    /// The paths for the configuration file `config`, with the environment's
    /// overrides (`get` reads a variable).
    pub fn new(config: &Path, get: impl Fn(&str) -> Option<String>) -> Self {
        let directory = config.parent().unwrap_or(Path::new("/boot"));
        Paths {
            spool: get(SPOOL_DIR_ENV).map_or_else(|| SPOOL_DIR.into(), PathBuf::from),
            last_update: directory.join(LAST_UPDATE_FILE),
            os_release: get(OS_RELEASE_ENV).map_or_else(|| OS_RELEASE.into(), PathBuf::from),
            boot_id: get(BOOT_ID_ENV).map_or_else(|| BOOT_ID.into(), PathBuf::from),
        }
    }

    /// The bundle's file in the spool directory.
    pub fn spool_file(&self) -> PathBuf {
        self.spool.join(SPOOL_FILE)
    }
}

/// The update service: shared by the handlers (cheap to clone).
#[derive(Clone)]
pub struct Updates {
    inner: Arc<Inner>,
}

struct Inner {
    rauc: Box<dyn Rauc>,
    paths: Paths,
    allow_without_password: bool,
    installer: Mutex<Installer>,
    /// The last summary and when it was made.
    summary: tokio::sync::Mutex<Option<(tokio::time::Instant, UpdateSummary)>>,
    /// Whether RAUC was there at the last look (logged when it changes).
    available: Mutex<Option<bool>>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates")
            .field("paths", &self.inner.paths)
            .field("allow_without_password", &self.inner.allow_without_password)
            .finish_non_exhaustive()
    }
}

/// For `/api/status`: the running system and the last update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UpdateSummary {
    /// RAUC is here: updates can be installed.
    pub available: bool,
    /// Why not, when not ("updates are not available here: ...").
    pub reason: Option<String>,
    /// The slot running now (`A` or `B`), when RAUC says.
    pub slot: Option<String>,
    /// The image's version (`IMAGE_VERSION` of `/etc/os-release`).
    pub version: Option<String>,
    /// `last-update.txt`, when there is one.
    pub last: Option<LastUpdate>,
}

/// `GET /api/update`: everything the update page shows.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateReport {
    /// RAUC is here.
    pub available: bool,
    /// Why not, when not.
    pub reason: Option<String>,
    /// Whether `POST /api/update` would be refused for want of a password.
    pub needs_password: bool,
    /// This process's side: receiving, installing, finished.
    pub upload: Phase,
    /// RAUC's state, when it is here.
    pub rauc: Option<RaucStatus>,
    /// The image's version.
    pub version: Option<String>,
    /// `last-update.txt`.
    pub last: Option<LastUpdate>,
    /// The kernel's id of this boot: a different one means the device restarted.
    pub boot_id: Option<String>,
}

impl Updates {
    /// The service over `rauc`.
    pub fn new(rauc: Box<dyn Rauc>, paths: Paths, allow_without_password: bool) -> Self {
        Updates {
            inner: Arc::new(Inner {
                rauc,
                paths,
                allow_without_password,
                installer: Mutex::new(Installer::default()),
                summary: tokio::sync::Mutex::new(None),
                available: Mutex::new(None),
            }),
        }
    }

    /// RAUC over D-Bus, with the paths for the configuration file `config`.
    pub fn on_dbus(config: &Path, allow_without_password: bool) -> Self {
        Self::new(
            Box::new(dbus::DbusRauc::new()),
            Paths::new(config, |name| std::env::var(name).ok()),
            allow_without_password,
        )
    }

    /// The paths.
    pub fn paths(&self) -> &Paths {
        &self.inner.paths
    }

    /// `[update] allow_without_password`.
    pub fn allow_without_password(&self) -> bool {
        self.inner.allow_without_password
    }

    fn installer(&self) -> std::sync::MutexGuard<'_, Installer> {
        self.inner
            .installer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// RAUC's status, and a line in the log when RAUC comes or goes.
    async fn rauc_status(&self) -> Result<RaucStatus, RaucError> {
        let status = self.inner.rauc.status().await;
        let now = status.is_ok();
        let before = self
            .inner
            .available
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(now);
        if before != Some(now) {
            match &status {
                Ok(status) => tracing::info!(
                    boot_slot = %status.boot_slot,
                    compatible = %status.compatible,
                    "updates: RAUC is here"
                ),
                Err(error) => tracing::info!(%error, "updates: RAUC is not here"),
            }
        }
        status
    }

    /// For `/api/status`, at most [`SUMMARY_TTL`] old.
    pub async fn summary(&self) -> UpdateSummary {
        let mut cached = self.inner.summary.lock().await;
        let busy = self.installer().busy();
        if let Some((at, summary)) = cached.as_ref() {
            if at.elapsed() < SUMMARY_TTL && !busy {
                return summary.clone();
            }
        }
        let status = self.rauc_status().await;
        let summary = UpdateSummary {
            available: status.is_ok(),
            reason: status.as_ref().err().map(ToString::to_string),
            slot: status
                .ok()
                .map(|s| s.boot_slot)
                .filter(|slot| !slot.is_empty()),
            version: self.version().await,
            last: self.last_update().await,
        };
        *cached = Some((tokio::time::Instant::now(), summary.clone()));
        summary
    }

    /// For `GET /api/update`; `password_set`: whether `[access]` has one.
    pub async fn report(&self, password_set: bool) -> UpdateReport {
        let status = self.rauc_status().await;
        let upload = self.installer().phase().clone();
        UpdateReport {
            available: status.is_ok(),
            reason: status.as_ref().err().map(ToString::to_string),
            needs_password: !password_set && !self.inner.allow_without_password,
            upload,
            rauc: status.ok(),
            version: self.version().await,
            last: self.last_update().await,
            boot_id: self.boot_id().await,
        }
    }

    /// `IMAGE_VERSION` of the os-release file.
    pub async fn version(&self) -> Option<String> {
        read_small(&self.inner.paths.os_release)
            .await
            .and_then(|text| record::image_version(&text))
    }

    /// The kernel's boot id (its first line, when not empty).
    pub async fn boot_id(&self) -> Option<String> {
        read_small(&self.inner.paths.boot_id)
            .await
            .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()))
            .filter(|id| !id.is_empty())
    }

    /// `last-update.txt`.
    pub async fn last_update(&self) -> Option<LastUpdate> {
        read_small(&self.inner.paths.last_update)
            .await
            .and_then(|text| LastUpdate::parse(&text))
    }
}

/// The first [`record::MAX_FILE_BYTES`] of a file, as text; `None` when it
/// cannot be read.
async fn read_small(path: &Path) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut bytes = Vec::new();
    file.take(record::MAX_FILE_BYTES as u64)
        .read_to_end(&mut bytes)
        .await
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_configuration_file_and_the_overrides() {
        let paths = Paths::new(Path::new("/boot/streamer.toml"), |_| None);
        assert_eq!(paths.spool, Path::new("/run/streamer-update"));
        assert_eq!(paths.last_update, Path::new("/boot/last-update.txt"));
        assert_eq!(paths.os_release, Path::new("/etc/os-release"));
        assert_eq!(paths.boot_id, Path::new("/proc/sys/kernel/random/boot_id"));
        assert_eq!(
            paths.spool_file(),
            Path::new("/run/streamer-update/upload.raucb")
        );
        let paths = Paths::new(Path::new("/tmp/x/s.toml"), |name| {
            Some(format!("/over/{name}"))
        });
        assert_eq!(paths.spool, Path::new("/over/STREAMER_UPDATE_SPOOL"));
        assert_eq!(
            paths.os_release,
            Path::new("/over/STREAMER_UPDATE_OS_RELEASE")
        );
        assert_eq!(paths.boot_id, Path::new("/over/STREAMER_UPDATE_BOOT_ID"));
        assert_eq!(paths.last_update, Path::new("/tmp/x/last-update.txt"));
    }
}
