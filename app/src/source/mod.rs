//! Video sources: everything that produces H.264.
//!
//! A [`Source`] runs on a thread of its own (never on the async runtime), writes
//! Annex-B bytes into a [`Sink`], and returns when asked to stop or when it fails.
//! The [`supervisor`] owns the running source: it restarts a failed one with backoff
//! and publishes what it produces to the hub.

pub mod capture;
pub mod file;
pub mod legacy_camera;
pub mod legacy_controls;
pub mod libcamera_list;
pub mod m2m_encoder;
pub mod mode;
pub mod raw_frame;
pub mod rpicam;
pub mod rpicam_controls;
pub mod supervisor;
pub mod test_pattern;
pub mod uvc;

use std::time::SystemTime;

use std::path::PathBuf;

use crate::config::{CameraConfig, Config, SourceKind};
use crate::device::DeviceReport;
use file::FileSource;
use libcamera_list::LibcameraCamera;
use rpicam::{find_program, RpicamSettings, RpicamSource};
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

/// Decides which source to run for `config` on the hardware `device` describes.
///
/// `auto` picks a camera the device has and this build supports: a libcamera (CSI)
/// camera through rpicam-vid. Otherwise it shows the test pattern and says what it
/// found and why it is not used (the legacy V4L2 camera and USB webcams are not in
/// this build yet).
pub fn plan(config: &Config, device: &DeviceReport) -> SourcePlan {
    let camera = &config.camera;
    if camera.source == SourceKind::Auto {
        let program = find_program(std::env::var_os("PATH").as_deref());
        let listed = match (&program, device.libcamera_csi) {
            (Some(program), true) => Some(libcamera_list::list_cameras(
                program,
                libcamera_list::LIST_TIMEOUT,
            )),
            _ => None,
        };
        let (choice, reason) = auto_choice(device, program, listed);
        let mut plan = plan(
            &Config {
                camera: CameraConfig {
                    source: choice,
                    ..camera.clone()
                },
                ..config.clone()
            },
            device,
        );
        plan.reason = Some(reason);
        return plan;
    }
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
            let (extra_args, notes) = rpicam_controls::image_arguments(&config.image);
            for note in notes {
                tracing::warn!(%note, "camera setting not applied");
            }
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
                software_encoder: device
                    .model
                    .as_ref()
                    .is_some_and(|model| !model.has_hw_h264_encoder),
                extra_args,
            };
            SourcePlan {
                kind: "rpicam".into(),
                description: format!(
                    "rpicam-vid {}x{} @ {} fps{}",
                    settings.width,
                    settings.height,
                    settings.framerate,
                    if settings.software_encoder {
                        " (H.264 encoded in software: this board has no hardware encoder)"
                    } else {
                        ""
                    }
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
            SourcePlan {
                kind: "test".into(),
                description: format!(
                    "test pattern {}x{} @ {} fps",
                    settings.width, settings.height, settings.framerate
                ),
                reason: None,
                factory: Box::new(move || {
                    Ok(Box::new(TestPattern::new(settings.clone())?) as Box<dyn Source>)
                }),
            }
        }
    }
}

/// What `camera.source = "auto"` runs on `device`, and why, in plain words.
/// `rpicam_program` is the rpicam-vid (or libcamera-vid) found on PATH, if any;
/// `listed` what its `--list-cameras` said, when it was asked.
///
/// The order is the issue's: the legacy camera (`v4l2`, H.264 from the GPU), then a
/// libcamera camera (`rpicam`), then a USB webcam (`uvc`; on a Raspberry Pi only, so
/// a laptop's built-in webcam does not replace the test pattern), then the test
/// pattern with what was found and why it is not used.
pub fn auto_choice(
    device: &DeviceReport,
    rpicam_program: Option<PathBuf>,
    listed: Option<Result<Vec<LibcameraCamera>, String>>,
) -> (SourceKind, String) {
    if let Some(node) = &device.legacy_camera {
        return (
            SourceKind::V4l2,
            format!(
                "Legacy camera at {node} (bcm2835-v4l2), H.264 from the GPU encoder \
                 (camera.source = auto)"
            ),
        );
    }
    let mut found = Vec::new();
    if let (true, Some(program)) = (device.libcamera_csi, &rpicam_program) {
        match listed {
            Some(Ok(cameras)) if !cameras.is_empty() => {
                return (
                    SourceKind::Rpicam,
                    format!(
                        "Camera {} on the libcamera stack, streamed with {} (camera.source = auto)",
                        cameras[0].sensor,
                        program.display()
                    ),
                );
            }
            Some(Ok(_)) => found.push(format!(
                "the libcamera camera interface, but {} --list-cameras lists no camera \
                 (is the ribbon cable connected?)",
                program.display()
            )),
            Some(Err(error)) => found.push(format!("the libcamera camera interface, but {error}")),
            None => {}
        }
    }
    if device.libcamera_csi && rpicam_program.is_none() {
        found.push(
            "a libcamera camera, but neither rpicam-vid nor libcamera-vid is installed \
             (package rpicam-apps)"
                .to_string(),
        );
    }
    if let Some(camera) = device.uvc_cameras.first() {
        if device.model.is_some() {
            return (
                SourceKind::Uvc,
                format!(
                    "USB camera \"{}\" at {} (camera.source = auto)",
                    camera.name, camera.node
                ),
            );
        }
        for camera in &device.uvc_cameras {
            found.push(format!(
                "a USB camera \"{}\" at {} (auto uses USB cameras on a Raspberry Pi; \
                 set camera.source = \"uvc\" to use it here)",
                camera.name, camera.node
            ));
        }
    }
    let found = if found.is_empty() {
        "No camera found".to_string()
    } else {
        format!("Found {}", found.join("; "))
    };
    (
        SourceKind::Test,
        format!("{found}: showing the test pattern (camera.source = auto)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixture(name: &str) -> DeviceReport {
        crate::device::probe(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sysroots")
                .join(name),
        )
    }

    #[test]
    fn auto_uses_rpicam_for_a_libcamera_camera_when_rpicam_vid_is_installed() {
        let device = fixture("pi5-imx708");
        let imx708 = LibcameraCamera {
            index: 0,
            sensor: "imx708".into(),
            mode: "4608x2592 10-bit RGGB".into(),
            path: "/base/imx708@1a".into(),
        };
        let program = Some(PathBuf::from("/usr/bin/rpicam-vid"));
        let (kind, why) = auto_choice(&device, program.clone(), Some(Ok(vec![imx708])));
        assert_eq!(kind, SourceKind::Rpicam);
        assert!(
            why.contains("imx708") && why.contains("/usr/bin/rpicam-vid"),
            "{why}"
        );
        let (kind, why) = auto_choice(&device, None, None);
        assert_eq!(kind, SourceKind::Test);
        assert!(why.contains("rpicam-apps"), "{why}");
        let (kind, why) = auto_choice(&device, program.clone(), Some(Ok(vec![])));
        assert_eq!(kind, SourceKind::Test);
        assert!(why.contains("lists no camera"), "{why}");
        let (kind, why) = auto_choice(&device, program, Some(Err("it hung".into())));
        assert_eq!(kind, SourceKind::Test);
        assert!(why.contains("it hung"), "{why}");
    }

    #[test]
    fn auto_says_what_it_found_and_why_it_shows_the_test_pattern() {
        let (kind, why) = auto_choice(&fixture("laptop"), Some("/usr/bin/rpicam-vid".into()), None);
        assert_eq!(kind, SourceKind::Test);
        assert!(why.contains("USB camera"), "{why}");
        assert!(why.contains("camera.source = \"uvc\""), "{why}");
        let (kind, why) = auto_choice(&fixture("pi-zero-w"), None, None);
        assert_eq!(kind, SourceKind::Test);
        assert!(why.contains("No camera found"), "{why}");
    }

    #[test]
    fn auto_prefers_the_legacy_camera_then_libcamera_then_usb() {
        let (kind, why) = auto_choice(&fixture("pi4-legacy-camera"), None, None);
        assert_eq!(kind, SourceKind::V4l2);
        assert!(why.contains("Legacy camera at /dev/video0"), "{why}");
        let (kind, why) = auto_choice(&fixture("pi3-uvc"), None, None);
        assert_eq!(kind, SourceKind::Uvc);
        assert!(why.contains("USB camera"), "{why}");
        // A legacy camera wins even when rpicam-vid is installed and lists one.
        let mut both = fixture("pi4-legacy-camera");
        both.libcamera_csi = true;
        let listed = Some(Ok(vec![LibcameraCamera {
            index: 0,
            sensor: "imx219".into(),
            mode: "3280x2464".into(),
            path: "/base/imx219@10".into(),
        }]));
        let (kind, _) = auto_choice(&both, Some("/usr/bin/rpicam-vid".into()), listed.clone());
        assert_eq!(kind, SourceKind::V4l2);
        // libcamera before USB.
        let mut csi_and_usb = fixture("pi3-uvc");
        csi_and_usb.libcamera_csi = true;
        let (kind, _) = auto_choice(&csi_and_usb, Some("/usr/bin/rpicam-vid".into()), listed);
        assert_eq!(kind, SourceKind::Rpicam);
    }

    #[test]
    fn a_pi_5_encodes_in_software() {
        let mut config = Config::default();
        config.camera.source = SourceKind::Rpicam;
        let pi5 = plan(&config, &fixture("pi5-imx708"));
        assert!(pi5.description.contains("software"), "{}", pi5.description);
        let pi4 = plan(&config, &fixture("pi4-legacy-camera"));
        assert!(!pi4.description.contains("software"), "{}", pi4.description);
    }

    #[test]
    fn the_plan_for_auto_carries_the_reason() {
        let config = Config::default();
        let plan = plan(&config, &fixture("pi-zero-w"));
        assert_eq!(plan.kind, "test");
        assert!(plan.reason.unwrap_or_default().contains("No camera found"));
    }
}
