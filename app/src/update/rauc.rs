//! What the streamer asks of RAUC, as a narrow trait ([`Rauc`]) so that
//! everything above it is tested without D-Bus; [`super::dbus`] is the real one.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use serde::Serialize;

use super::install::Progress;

/// A boxed future (the trait is used as `dyn Rauc`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// RAUC as the streamer uses it.
pub trait Rauc: Send + Sync {
    /// RAUC's state: its properties, slots and primary slot.
    fn status(&self) -> BoxFuture<'_, Result<RaucStatus, RaucError>>;

    /// Asks RAUC to install the bundle at `bundle` (a local file RAUC can read).
    /// Resolves once RAUC took it (or refused it) with a future that resolves
    /// when the install has ended.
    fn install(
        &self,
        bundle: PathBuf,
    ) -> BoxFuture<'_, Result<BoxFuture<'static, Completion>, RaucError>>;
}

/// How an install ended: RAUC's `Completed` code (0: success) and its
/// `LastError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// 0 for success.
    pub code: i32,
    /// RAUC's `LastError` then (may be an older error when `code` is 0).
    pub last_error: String,
}

/// RAUC's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RaucStatus {
    /// `Operation`: `idle` or `installing`.
    pub operation: String,
    /// `Progress` of the install running or last run.
    pub progress: Progress,
    /// `LastError`: empty when none.
    pub last_error: String,
    /// `Compatible`: the system's compatible string (`streamer-<board>`).
    pub compatible: String,
    /// `BootSlot`: the bootname of the slot running now (`A` or `B`).
    pub boot_slot: String,
    /// `GetPrimary`: the slot the next boot starts, when the bootloader backend
    /// says.
    pub primary: Option<String>,
    /// `GetSlotStatus`: every slot.
    pub slots: Vec<SlotStatus>,
}

/// One slot, from `GetSlotStatus`: the fields RAUC 1.8 and 1.15 both report,
/// each only when reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotStatus {
    /// RAUC's name (`rootfs.0`).
    pub name: String,
    /// `bootname` (`A`).
    pub bootname: Option<String>,
    /// `state`: `booted`, `active` or `inactive`.
    pub state: Option<String>,
    /// `boot-status`: `good` or `bad`.
    pub boot_status: Option<String>,
    /// `device`.
    pub device: Option<String>,
    /// `bundle.version`: the version last installed to it, when RAUC kept it.
    pub bundle_version: Option<String>,
    /// `installed.timestamp`.
    pub installed_timestamp: Option<String>,
}

/// RAUC could not be asked, or refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RaucError {
    /// No RAUC here: no D-Bus, or no `de.pengutronix.rauc` on it.
    #[error("updates are not available here: {0}")]
    Unavailable(String),
    /// RAUC answered with an error.
    #[error("RAUC refused: {0}")]
    Refused(String),
}

/// A [`Rauc`] that is never there (tests, and where no bus can be reached).
#[derive(Debug, Clone)]
pub struct NoRauc(pub String);

impl Rauc for NoRauc {
    fn status(&self) -> BoxFuture<'_, Result<RaucStatus, RaucError>> {
        Box::pin(async { Err(RaucError::Unavailable(self.0.clone())) })
    }

    fn install(
        &self,
        _bundle: PathBuf,
    ) -> BoxFuture<'_, Result<BoxFuture<'static, Completion>, RaucError>> {
        Box::pin(async { Err(RaucError::Unavailable(self.0.clone())) })
    }
}
