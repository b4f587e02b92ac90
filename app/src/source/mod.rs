//! Video sources: everything that produces H.264.
//!
//! A [`Source`] runs on a thread of its own (never on the async runtime), writes
//! Annex-B bytes into a [`Sink`], and returns when asked to stop or when it fails.
//! The [`supervisor`] owns the running source: it restarts a failed one with backoff
//! and publishes what it produces to the hub.

pub mod file;
pub mod rpicam;
pub mod supervisor;
pub mod test_pattern;

use std::time::SystemTime;

use crate::config::{Config, SourceKind};
use file::FileSource;
use rpicam::{RpicamSettings, RpicamSource};
use supervisor::SourcePlan;
use test_pattern::{TestPattern, TestPatternSettings};

/// Where a source delivers its output. Implemented by the supervisor's ingest
/// pipeline (H.264 reader -> hub) and by tests.
pub trait Sink {
    /// Annex-B bytes, in stream order. `frame_end` says the data ends on an access-unit
    /// boundary, so the frame is published now rather than when the next one starts.
    /// `captured` is when the frame was captured (wall clock), for latency estimates.
    fn write(&mut self, annex_b: &[u8], frame_end: bool, captured: SystemTime);

    /// True once the source should return from [`Source::run`] as soon as it can.
    fn should_stop(&self) -> bool;
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

/// Decides which source to run for `config`.
///
/// `auto` chooses the test pattern until camera sources exist (the Raspberry Pi
/// camera work adds them to the probe), and says so.
pub fn plan(config: &Config) -> SourcePlan {
    let camera = &config.camera;
    match camera.source {
        SourceKind::File => {
            let path = camera.file.clone().unwrap_or_default();
            let fallback_fps = f64::from(camera.framerate);
            SourcePlan {
                kind: "file".into(),
                description: format!("file {}", path.display()),
                reason: None,
                factory: Box::new(move || {
                    Ok(Box::new(FileSource::new(path.clone(), fallback_fps)) as Box<dyn Source>)
                }),
            }
        }
        SourceKind::Rpicam => {
            let settings = RpicamSettings {
                program: None,
                width: camera.width,
                height: camera.height,
                framerate: camera.framerate,
                bitrate: config.encoder.bitrate,
                profile: config.encoder.profile,
                level: config.encoder.level.clone(),
                intra_period: config.encoder.intra_period,
                hflip: config.image.hflip,
                vflip: config.image.vflip,
                rotation: config.image.rotation,
                extra_args: Vec::new(),
            };
            SourcePlan {
                kind: "rpicam".into(),
                description: format!(
                    "rpicam-vid {}x{} @ {} fps",
                    settings.width, settings.height, settings.framerate
                ),
                reason: None,
                factory: Box::new(move || {
                    Ok(Box::new(RpicamSource::new(settings.clone())?) as Box<dyn Source>)
                }),
            }
        }
        SourceKind::V4l2 | SourceKind::Uvc => {
            let name = if camera.source == SourceKind::V4l2 {
                "v4l2"
            } else {
                "uvc"
            };
            let reason = format!(
                "camera.source = \"{name}\" is not supported by this build of the streamer yet"
            );
            SourcePlan {
                kind: name.into(),
                description: format!("{name} camera"),
                reason: None,
                factory: Box::new(move || {
                    Err(SourceError::Start {
                        source_name: name,
                        reason: reason.clone(),
                    })
                }),
            }
        }
        SourceKind::Test | SourceKind::Auto => {
            let settings = TestPatternSettings {
                width: camera.width,
                height: camera.height,
                framerate: camera.framerate,
                bitrate: config.encoder.bitrate,
                intra_period: config.encoder.intra_period,
            };
            let reason = (camera.source == SourceKind::Auto).then(|| {
                "camera.source = auto: no camera found, showing the test pattern".to_string()
            });
            SourcePlan {
                kind: "test".into(),
                description: format!(
                    "test pattern {}x{} @ {} fps",
                    settings.width, settings.height, settings.framerate
                ),
                reason,
                factory: Box::new(move || {
                    Ok(Box::new(TestPattern::new(settings.clone())?) as Box<dyn Source>)
                }),
            }
        }
    }
}
