//! Video sources: everything that produces H.264.
//!
//! A [`Source`] runs on a thread of its own (never on the async runtime), writes
//! Annex-B bytes into a [`Sink`], and returns when asked to stop or when it fails.
//! The [`supervisor`] owns the running source: it restarts a failed one with backoff
//! and publishes what it produces to the hub.
//!
//! - [`plan`](mod@plan): which source runs (`camera.source`, and what `auto` picks on this
//!   board) and where its V4L2 nodes are.
//! - One module per `camera.source` value: [`test_pattern`] (`test`), [`file`](mod@file),
//!   [`rpicam`] (libcamera cameras through rpicam-vid), [`legacy_camera`] (`v4l2`:
//!   bcm2835-v4l2) and [`uvc`] (USB webcams), each with the mapping of the
//!   configuration onto its own controls.
//! - Shared by the two V4L2 cameras: [`mode`] (format, size and rate chosen from
//!   what the node offers), [`capture`] (the MMAP capture loop) and [`keyframe`]
//!   (viewers' keyframe requests as the encoders' force-key-frame control).
//!
//! Encoding raw pictures is not a source's job: see [`crate::encode`].

pub mod capture;
pub mod file;
pub mod keyframe;
pub mod legacy_camera;
pub mod mode;
pub mod plan;
pub mod rpicam;
pub mod supervisor;
pub mod test_pattern;
#[cfg(test)]
pub mod test_sink;
pub mod uvc;

use std::time::SystemTime;

use crate::h264::ReaderStats;

pub use plan::{plan, Hardware};

/// Where a source delivers its output. Implemented by the supervisor's ingest
/// pipeline (H.264 reader -> hub) and by tests.
pub trait Sink {
    /// Annex-B bytes, in stream order. `frame_end` says the data ends on an access-unit
    /// boundary, so the frame is published now rather than when the next one starts.
    /// `captured` is when the frame was captured (wall clock), for latency estimates.
    fn write(&mut self, annex_b: &[u8], frame_end: bool, captured: SystemTime);

    /// True once the source should return from [`Source::run`] as soon as it can.
    fn should_stop(&self) -> bool;

    /// A source that runs an H.264 reader of its own over what it reads (the file
    /// source, to pace frames) reports that reader's counters here, totals since
    /// [`Source::run`] began, so that what it skipped is counted and explained.
    fn reader_stats(&mut self, _stats: &ReaderStats) {}

    /// True once per keyframe request a viewer made that was passed on to the
    /// source since the last call ([`crate::hub::Hub::request_keyframe`], at most
    /// one a second). A source that can make keyframes on demand polls it once per
    /// picture, without waiting, and makes the next picture an IDR picture with SPS
    /// and PPS in front; one that cannot never asks, and viewers wait for the next
    /// keyframe. Asking never blocks and costs no more than a flag check.
    fn keyframe_requested(&mut self) -> bool {
        false
    }
}

/// Why a source stopped producing.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source could not start (missing file, camera absent, bad settings).
    #[error("cannot start {source_name}: {reason}")]
    Start {
        /// Which source.
        source_name: &'static str,
        /// What went wrong, in plain words.
        reason: String,
    },
    /// The source stopped while running.
    #[error("{source_name} failed: {reason}")]
    Failed {
        /// Which source.
        source_name: &'static str,
        /// What went wrong, in plain words.
        reason: String,
    },
}

/// Something that produces H.264.
pub trait Source: Send {
    /// Short name for logs and status, e.g. `test` or `file`.
    fn name(&self) -> &'static str;

    /// One line describing what this source reads, e.g. the file path.
    fn describe(&self) -> String;

    /// Produces video into `sink` until `sink.should_stop()` or an error. Blocking;
    /// runs on a dedicated thread.
    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError>;
}
