//! Which source runs: the one the configuration names, or for `auto` the best
//! camera this board has (in order: the legacy camera, a libcamera camera, a USB
//! webcam on a Raspberry Pi, else the test pattern, with what was found and why),
//! and where its V4L2 nodes are, found at every start by what they say
//! ([`crate::v4l2::discover`]).

use std::path::PathBuf;
use std::sync::Arc;

use super::file::FileSource;
use super::legacy_camera::{LegacyCamera, LegacySettings};
use super::rpicam::camera_list::{self, LibcameraCamera};
use super::rpicam::{self, find_program, RpicamSettings, RpicamSource};
use super::supervisor::SourcePlan;
use super::test_pattern::{TestPattern, TestPatternSettings};
use super::uvc::{UvcCamera, UvcSettings};
use super::{Source, SourceError};
use crate::config::{CameraConfig, Config, SourceKind};
use crate::probe::ProbeReport;
use crate::v4l2::discover::{self, Role};
use crate::v4l2::Opener;

/// Decides which source to run for `config` on the hardware `device` describes.
///
/// `auto` picks a camera the device has and this build supports: a libcamera (CSI)
/// camera through rpicam-vid. Otherwise it shows the test pattern and says what it
/// found and why it is not used.
pub fn plan(config: &Config, device: &ProbeReport) -> SourcePlan {
    plan_with(config, device, &Hardware::system())
}

/// How camera sources reach the hardware: where `/sys` is (to list the video
/// nodes afresh at every start, since a replugged webcam may get a new number) and
/// how a node is opened. Tests point both at fakes.
#[derive(Clone)]
pub struct Hardware {
    /// The filesystem root whose `/sys/class/video4linux` lists the nodes.
    pub root: PathBuf,
    /// Opens a node.
    pub opener: Arc<Opener>,
}

impl Hardware {
    /// The real system: `/` and [`crate::v4l2::device::open_node`].
    pub fn system() -> Hardware {
        Hardware {
            root: PathBuf::from("/"),
            opener: Arc::new(crate::v4l2::device::open_node),
        }
    }

    /// The video nodes there are now, by number.
    fn candidates(&self) -> Vec<PathBuf> {
        crate::probe::probe(&self.root)
            .video_devices
            .iter()
            .map(|d| PathBuf::from(&d.node))
            .collect()
    }

    /// The node `forced` (camera.device), or the first node whose QUERYCAP answer
    /// gives it `role`.
    fn locate(
        &self,
        source_name: &'static str,
        forced: Option<&PathBuf>,
        role: Role,
    ) -> Result<PathBuf, SourceError> {
        if let Some(path) = forced {
            return Ok(path.clone());
        }
        discover::find(role, &self.candidates(), self.opener.as_ref())
            .map(|(path, _node)| path)
            .map_err(|reason| SourceError::Start {
                source_name,
                reason: format!("{reason} (set camera.device to choose a node)"),
            })
    }
}

/// [`plan`] with the hardware reached through `hardware`.
pub fn plan_with(config: &Config, device: &ProbeReport, hardware: &Hardware) -> SourcePlan {
    let camera = &config.camera;
    if camera.source == SourceKind::Auto {
        let program = find_program(std::env::var_os("PATH").as_deref());
        let listed = match (&program, device.libcamera_csi) {
            (Some(program), true) => Some(camera_list::list_cameras(
                program,
                camera_list::LIST_TIMEOUT,
            )),
            _ => None,
        };
        let (choice, reason) = auto_choice(device, program, listed);
        let mut plan = plan_with(
            &Config {
                camera: CameraConfig {
                    source: choice,
                    ..camera.clone()
                },
                ..config.clone()
            },
            device,
            hardware,
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
            let (extra_args, notes) = rpicam::controls::image_arguments(&config.image);
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
        SourceKind::LegacyCamera => {
            let settings = LegacySettings::from_config(config);
            let forced = camera.device.clone();
            let hardware = hardware.clone();
            SourcePlan {
                kind: "v4l2".into(),
                description: format!(
                    "legacy camera {} {}x{} @ {} fps",
                    node_text(forced.as_ref()),
                    settings.width,
                    settings.height,
                    settings.framerate
                ),
                reason: None,
                factory: Box::new(move || {
                    let path = hardware.locate("v4l2", forced.as_ref(), Role::LegacyCamera)?;
                    Ok(Box::new(LegacyCamera::new(
                        path,
                        hardware.opener.clone(),
                        settings.clone(),
                    )) as Box<dyn Source>)
                }),
            }
        }
        SourceKind::Uvc => {
            let settings = UvcSettings::from_config(config);
            let forced = camera.device.clone();
            let hardware = hardware.clone();
            SourcePlan {
                kind: "uvc".into(),
                description: format!(
                    "USB camera {} {}x{} @ {} fps",
                    node_text(forced.as_ref()),
                    settings.width,
                    settings.height,
                    settings.framerate
                ),
                reason: None,
                factory: Box::new(move || {
                    let path = hardware.locate("uvc", forced.as_ref(), Role::UvcCamera)?;
                    // The encoder is looked for at every start too; only a webcam
                    // without H.264 needs it, and says so when it is missing.
                    let encoder = hardware.locate("uvc", None, Role::H264Encoder).ok();
                    Ok(Box::new(UvcCamera::new(
                        path,
                        hardware.opener.clone(),
                        UvcSettings {
                            encoder,
                            ..settings.clone()
                        },
                    )) as Box<dyn Source>)
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

/// `/dev/video0`, or "found by its driver" when no node is forced.
fn node_text(forced: Option<&PathBuf>) -> String {
    match forced {
        Some(path) => path.display().to_string(),
        None => "(found by its driver)".to_string(),
    }
}

/// What `camera.source = "auto"` runs on `device`, and why, in plain words.
/// `rpicam_program` is the rpicam-vid (or libcamera-vid) found on PATH, if any;
/// `listed` what its `--list-cameras` said, when it was asked.
///
/// The order: a camera module before a USB webcam, and the legacy camera (`v4l2`,
/// H.264 from the GPU) first, as its driver is there only when the board is set up
/// for the legacy stack; then a libcamera camera (`rpicam`), then a USB webcam
/// (`uvc`; on a Raspberry Pi only, so a laptop's built-in webcam does not replace
/// the test pattern), then the test pattern with what was found and why it is not
/// used.
pub fn auto_choice(
    device: &ProbeReport,
    rpicam_program: Option<PathBuf>,
    listed: Option<Result<Vec<LibcameraCamera>, String>>,
) -> (SourceKind, String) {
    if let Some(node) = &device.legacy_camera {
        return (
            SourceKind::LegacyCamera,
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
    use crate::source::Sink;
    use std::path::Path;
    use std::time::SystemTime;

    fn fixture(name: &str) -> ProbeReport {
        crate::probe::probe(
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
        assert_eq!(kind, SourceKind::LegacyCamera);
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
        assert_eq!(kind, SourceKind::LegacyCamera);
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

    /// Counts coded frames; stops after `wanted` or 10 s.
    struct Counting {
        frames: usize,
        wanted: usize,
        deadline: std::time::Instant,
    }

    impl Sink for Counting {
        fn write(&mut self, _annex_b: &[u8], frame_end: bool, _captured: SystemTime) {
            if frame_end {
                self.frames += 1;
            }
        }
        fn should_stop(&self) -> bool {
            self.frames >= self.wanted || std::time::Instant::now() >= self.deadline
        }
    }

    fn counting(wanted: usize) -> Counting {
        Counting {
            frames: 0,
            wanted,
            deadline: std::time::Instant::now() + std::time::Duration::from_secs(10),
        }
    }

    /// Fake hardware: the pi4 sysroot's node list, a camera (from the fixture
    /// `camera`) at `camera_path`, the fake encoder at /dev/video11, and codec nodes
    /// that are no camera everywhere else.
    fn fake_hardware(camera: &str, camera_path: &'static str) -> Hardware {
        use crate::v4l2::fake::camera::{fixture as node_fixture, FakeCamera, FakeLog, Faults};
        use crate::v4l2::fake::described::{decoder, opener};
        use crate::v4l2::fake::encoder::FakeEncoder;
        use std::sync::Mutex;
        let camera = FakeCamera::opener(
            node_fixture(camera),
            Faults::default(),
            Arc::new(Mutex::new(FakeLog::default())),
        );
        let others = opener(vec![
            ("/dev/video0", decoder()),
            ("/dev/video10", decoder()),
            ("/dev/video12", decoder()),
        ]);
        let opener: Arc<Opener> = Arc::new(move |path: &Path| {
            if path == Path::new(camera_path) {
                camera(path)
            } else if path == Path::new("/dev/video11") {
                Ok(Box::new(FakeEncoder::new().0) as Box<dyn crate::v4l2::Node>)
            } else {
                others(path)
            }
        });
        Hardware {
            root: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/sysroots/pi4-legacy-camera"),
            opener,
        }
    }

    #[test]
    fn the_v4l2_plan_finds_the_legacy_camera_by_what_it_says_not_its_number() {
        let mut config = Config::default();
        config.camera.source = SourceKind::LegacyCamera;
        config.camera.width = 1280;
        config.camera.height = 720;
        // The camera answers at /dev/video12; /dev/video0 is some other node.
        let hardware = fake_hardware("legacy-imx219", "/dev/video12");
        let plan = plan_with(&config, &fixture("pi4-legacy-camera"), &hardware);
        assert_eq!(plan.kind, "v4l2");
        let mut source = (plan.factory)().unwrap();
        assert!(
            source.describe().contains("/dev/video12"),
            "{}",
            source.describe()
        );
        let mut sink = counting(10);
        source.run(&mut sink).unwrap();
        assert!(sink.frames >= 10, "{} frames", sink.frames);

        // Nothing answers as the legacy camera: the start error says what was seen.
        let hardware = fake_hardware("uvc-c270", "/dev/video12");
        let plan = plan_with(&config, &fixture("pi4-legacy-camera"), &hardware);
        let error = match (plan.factory)() {
            Ok(_) => panic!("a webcam is no legacy camera"),
            Err(e) => e.to_string(),
        };
        assert!(error.contains("no legacy camera"), "{error}");
        assert!(error.contains("camera.device"), "{error}");

        // camera.device forces the node.
        config.camera.device = Some(PathBuf::from("/dev/video12"));
        let hardware = fake_hardware("legacy-imx219", "/dev/video12");
        let plan = plan_with(&config, &fixture("pi4-legacy-camera"), &hardware);
        assert!(
            plan.description.contains("/dev/video12"),
            "{}",
            plan.description
        );
    }

    #[test]
    fn the_uvc_plan_uses_the_hardware_encoder_for_a_raw_webcam() {
        let mut config = Config::default();
        config.camera.source = SourceKind::Uvc;
        config.camera.width = 640;
        config.camera.height = 480;
        let hardware = fake_hardware("uvc-c270", "/dev/video12");
        let plan = plan_with(&config, &fixture("pi4-legacy-camera"), &hardware);
        assert_eq!(plan.kind, "uvc");
        let mut source = (plan.factory)().unwrap();
        let mut sink = counting(10);
        source.run(&mut sink).unwrap();
        assert!(sink.frames >= 10, "{} frames", sink.frames);
    }

    #[test]
    fn the_plan_for_auto_carries_the_reason() {
        let config = Config::default();
        let plan = plan(&config, &fixture("pi-zero-w"));
        assert_eq!(plan.kind, "test");
        assert!(plan.reason.unwrap_or_default().contains("No camera found"));
    }
}
