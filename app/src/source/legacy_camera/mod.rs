//! The `v4l2` source (`camera.source = "v4l2"`): H.264 from the legacy camera
//! driver (bcm2835-v4l2, QUERYCAP driver `bm2835 mmal`), whose GPU encoder does
//! the encoding.
//!
//! On every start: open the node, check it is that driver, choose the H.264 mode
//! ([`super::mode`]; at most 1920x1080, even sizes), check it against
//! `encoder.level` ([`crate::h264::level`]), `VIDIOC_S_PARM` and `VIDIOC_S_FMT`, then
//! the controls [`controls::controls`] maps from the configuration,
//! each checked against what the driver says about it (absent: a note; out of its
//! range: a warning naming the range, not set). SPS/PPS repetition is always set.
//! Then the capture loop ([`super::capture`]) until the sink says stop.
//!
//! Keyframes on request: when the driver lists `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`
//! (added to bcm2835-v4l2 later than the rest of its controls, so not every kernel
//! has it), a viewer's request sets it on the capture node between pictures and
//! the GPU encoder's next picture is an IDR picture; without it viewers wait for
//! the next keyframe (`encoder.intra_period`). See [`super::keyframe`].

pub mod controls;

use std::path::PathBuf;
use std::sync::Arc;

use super::capture;
use super::keyframe;
use super::mode::{self, ModeRequest, GPU_H264_LIMIT};
use super::{Sink, Source, SourceError};
use crate::config::{Config, Profile};
use crate::v4l2::discover::is_legacy_camera_driver;
use crate::v4l2::{
    describe, sys, ControlInfo, ControlKind, Fraction, ImageFormat, Node, Opener, Queue,
};
use controls::Control;

const NAME: &str = "v4l2";

/// What the `v4l2` source needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct LegacySettings {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
    /// Bits per second (for the level check).
    pub bitrate: u32,
    /// `level_idc` of `encoder.level`, `None` if it is no level.
    pub level_idc: Option<u8>,
    /// Whether the profile is High (the level's bitrate limit is higher).
    pub high_profile: bool,
    /// The controls to set, in order.
    pub controls: Vec<Control>,
    /// What the configuration asks that the driver cannot do.
    pub notes: Vec<String>,
}

impl LegacySettings {
    /// The settings for `config`.
    pub fn from_config(config: &Config) -> LegacySettings {
        let (controls, notes) = controls::controls(config);
        LegacySettings {
            width: config.camera.width,
            height: config.camera.height,
            framerate: config.camera.framerate,
            bitrate: config.encoder.bitrate,
            level_idc: config.encoder.level_idc(),
            high_profile: config.encoder.profile == Profile::High,
            controls,
            notes,
        }
    }
}

/// The legacy camera source.
pub struct LegacyCamera {
    path: PathBuf,
    opener: Arc<Opener>,
    settings: LegacySettings,
    warnings: Vec<String>,
}

impl LegacyCamera {
    /// The camera at `path` (e.g. `/dev/video0`), opened with `opener`
    /// (`Device::open` in production).
    pub fn new(path: PathBuf, opener: Arc<Opener>, settings: LegacySettings) -> LegacyCamera {
        LegacyCamera {
            path,
            opener,
            settings,
            warnings: Vec::new(),
        }
    }

    /// Notes and warnings of the last start: settings the driver lacks, values
    /// outside its ranges (also logged).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn start_error(reason: String) -> SourceError {
        SourceError::Start {
            source_name: NAME,
            reason,
        }
    }

    fn warn(&mut self, text: String) {
        tracing::warn!(source = NAME, "{text}");
        self.warnings.push(text);
    }

    /// Opens and configures the camera; returns the node ready to capture and
    /// whether it makes keyframes on request.
    fn start(&mut self) -> Result<(Box<dyn Node>, bool), SourceError> {
        self.warnings.clear();
        let path = self.path.display().to_string();
        let mut node = (self.opener)(&self.path).map_err(|e| {
            Self::start_error(match e.errno() {
                Some(libc::ENOENT) => format!(
                    "no camera at {path}: is the legacy camera stack enabled (start_x=1 and \
                     camera_auto_detect=0 in config.txt) and the camera connected?"
                ),
                _ => e.to_string(),
            })
        })?;
        let capability = node.capability().clone();
        if !is_legacy_camera_driver(&capability.driver) {
            return Err(Self::start_error(format!(
                "{path} is not the legacy camera: its driver is \"{}\" (\"{}\"), not bcm2835-v4l2 \
                 (\"bm2835 mmal\"); set camera.device to the legacy camera's node, or use \
                 camera.source = \"uvc\" for a USB webcam",
                capability.driver, capability.card
            )));
        }
        let described = describe(node.as_ref()).map_err(|e| Self::start_error(e.to_string()))?;
        let s = &self.settings;
        let request = ModeRequest {
            width: s.width,
            height: s.height,
            fps: s.framerate,
            formats: vec![sys::V4L2_PIX_FMT_H264],
            h264_limit: Some(GPU_H264_LIMIT),
        };
        let chosen = mode::select(described.formats(Queue::Capture), &request)
            .map_err(|why| Self::start_error(format!("{why} (camera {path})")))?;
        if let Some(needed) =
            crate::h264::level::minimum_level(chosen.width, chosen.height, s.framerate)
        {
            if needed.level_idc > controls::MAX_LEVEL_IDC {
                return Err(Self::start_error(format!(
                    "{}x{} at {} fps needs H.264 level {}, and the legacy camera's encoder \
                     goes up to level 4.0 (at most 1920x1080 at 30 fps): lower \
                     camera.width x camera.height or camera.framerate",
                    chosen.width, chosen.height, s.framerate, needed.name
                )));
            }
        }
        if let Some(level_idc) = s.level_idc {
            crate::h264::level::check(
                level_idc.min(controls::MAX_LEVEL_IDC),
                chosen.width,
                chosen.height,
                s.framerate,
                s.bitrate,
                s.high_profile,
            )
            .map_err(Self::start_error)?;
        }
        // S_PARM before S_FMT: bcm2835-v4l2 copies the frame interval into the GPU
        // encoder's port when the format is set (mmal_setup_encode_component), and
        // the encoder's rate control works with that rate.
        let interval = Fraction {
            numerator: 1,
            denominator: self.settings.framerate,
        };
        match node.set_frame_interval(Queue::Capture, interval) {
            Ok(Some(set)) if set != interval => self.warn(format!(
                "camera.framerate = {}: the camera chose {}/{} s per frame",
                self.settings.framerate, set.numerator, set.denominator
            )),
            Ok(_) => {}
            Err(e) => {
                return Err(Self::start_error(format!(
                    "the camera refused {} frames per second: {e}",
                    self.settings.framerate
                )))
            }
        }
        let asked = ImageFormat {
            width: chosen.width,
            height: chosen.height,
            pixelformat: chosen.pixelformat,
            field: sys::V4L2_FIELD_NONE,
            colorspace: 0,
            planes: vec![],
        };
        let got = node.set_format(Queue::Capture, &asked).map_err(|e| {
            Self::start_error(format!(
                "the camera refused H.264 at {}x{}: {e}",
                chosen.width, chosen.height
            ))
        })?;
        if (got.pixelformat, got.width, got.height)
            != (chosen.pixelformat, chosen.width, chosen.height)
        {
            return Err(Self::start_error(format!(
                "asked the camera for H.264 at {}x{}, it chose {} at {}x{}",
                chosen.width,
                chosen.height,
                mode::format_name(got.pixelformat),
                got.width,
                got.height
            )));
        }
        for note in self.settings.notes.clone() {
            self.warn(note);
        }
        for control in self.settings.controls.clone() {
            let always = control.id == sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER;
            if !always {
                match described.control(control.id) {
                    None => {
                        self.warn(format!(
                            "the camera driver has no {} control: not set",
                            control.name
                        ));
                        continue;
                    }
                    Some(info) => {
                        if let Some(problem) = check_value(info, control.value) {
                            self.warn(format!(
                                "{} = {}: {problem}; not set",
                                control.name, control.value
                            ));
                            continue;
                        }
                    }
                }
            }
            // A refused setting costs that setting, not the video; only a camera
            // that is gone stops the start.
            if let Err(e) = node.set_control(control.id, control.value) {
                if crate::source::capture::is_disconnect(&e) {
                    return Err(Self::start_error(format!(
                        "the camera disconnected while being set up ({e})"
                    )));
                }
                self.warn(format!(
                    "the camera refused {} = {}: {e}; left as it was",
                    control.name, control.value
                ));
            }
        }
        if !self
            .settings
            .controls
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER)
        {
            if let Err(e) = node.set_control(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1) {
                // The hub puts the cached SPS/PPS before every keyframe anyway.
                self.warn(format!("the camera refused to repeat SPS/PPS: {e}"));
            }
        }
        let force_keyframes = keyframe::can_force(NAME, &described.controls);
        Ok((node, force_keyframes))
    }
}

/// Why `value` is not acceptable to the control `info` describes, in plain words
/// naming the driver's range, or `None` when it is.
pub fn check_value(info: &ControlInfo, value: i64) -> Option<String> {
    if !info.is_writable() {
        return Some("the driver does not allow setting it now".to_string());
    }
    match info.kind {
        ControlKind::Menu | ControlKind::IntegerMenu => {
            if info.menu.iter().any(|m| i64::from(m.index) == value) {
                return None;
            }
            let names: Vec<String> = info
                .menu
                .iter()
                .map(|m| format!("{} ({})", m.index, m.name))
                .collect();
            Some(format!(
                "the driver's {} takes {}",
                info.name,
                names.join(", ")
            ))
        }
        _ => {
            let in_range = value >= info.minimum && value <= info.maximum;
            let step = i128::from(info.step.max(1));
            let on_step = (i128::from(value) - i128::from(info.minimum)) % step == 0;
            if in_range && on_step {
                return None;
            }
            let steps = if step > 1 {
                format!(" in steps of {step}")
            } else {
                String::new()
            };
            Some(format!(
                "the driver's {} takes {} to {}{steps}",
                info.name, info.minimum, info.maximum
            ))
        }
    }
}

impl Source for LegacyCamera {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "legacy camera {} H.264 {}x{} @ {} fps",
            self.path.display(),
            self.settings.width,
            self.settings.height,
            self.settings.framerate
        )
    }

    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let (mut node, force_keyframes) = self.start()?;
        capture::stream_h264(node.as_mut(), NAME, sink, force_keyframes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_sink::Recording;
    use crate::v4l2::fake::camera::{fixture, FakeCamera, FakeLog, Faults};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    fn legacy(
        sensor: &str,
        config: &Config,
        faults: Faults,
    ) -> (LegacyCamera, Arc<Mutex<FakeLog>>) {
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let opener = FakeCamera::opener(fixture(sensor), faults, log.clone());
        let camera = LegacyCamera::new(
            PathBuf::from("/dev/video0"),
            opener,
            LegacySettings::from_config(config),
        );
        (camera, log)
    }

    #[test]
    fn every_sensor_streams_parseable_h264_with_keyframes() {
        for sensor in ["legacy-ov5647", "legacy-imx219", "legacy-imx477"] {
            let config = Config::default(); // 1280x720 @ 30
            let (mut camera, log) = legacy(sensor, &config, Faults::default());
            let mut sink = Recording::new(60, Duration::from_secs(20));
            camera.run(&mut sink).unwrap();
            assert!(
                sink.units.len() >= 60,
                "{sensor}: {} units",
                sink.units.len()
            );
            assert!(
                sink.units[0].is_keyframe(),
                "{sensor}: starts with a keyframe"
            );
            assert!(sink.units.iter().filter(|u| u.is_keyframe()).count() >= 1);
            assert_eq!(sink.reader.stats().errors(), 0, "{sensor}");
            // Parameter-set buffers never end a frame; picture buffers do.
            assert!(sink.writes.iter().any(|w| !w.1));
            assert!(sink.writes.iter().filter(|w| w.1).count() >= 60);
            let log = log.lock().unwrap().clone();
            let format = log.formats.last().unwrap();
            assert_eq!(
                (format.pixelformat, format.width, format.height),
                (sys::V4L2_PIX_FMT_H264, 1280, 720)
            );
            let rate = Fraction {
                numerator: 1,
                denominator: 30,
            };
            assert_eq!(log.intervals, vec![rate]);
            assert_eq!(log.interval_at_format, vec![rate], "S_PARM before S_FMT");
            assert_eq!(log.stream_on, 1);
            assert_eq!(log.stream_off, 1, "{sensor}: streaming stopped");
            assert_eq!(log.buffers_allocated, 0, "{sensor}: buffers freed");
            // The controls as mapped: every one the driver takes was set.
            let (mapped, _) = controls::controls(&config);
            for control in mapped {
                assert_eq!(
                    log.control(control.id),
                    Some(control.value),
                    "{sensor}: {}",
                    control.name
                );
            }
            assert_eq!(
                log.control(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER),
                Some(1)
            );
            assert!(camera.warnings().is_empty(), "{:?}", camera.warnings());
        }
    }

    /// `sensor`'s description with the Force Key Frame button, as kernels whose
    /// bcm2835-v4l2 has it list it (the same standard control bcm2835-codec has).
    fn with_force_key_frame(sensor: &str) -> crate::v4l2::NodeDescription {
        let mut desc = fixture(sensor);
        let button = crate::v4l2::fake::encoder::description()
            .control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
            .cloned()
            .unwrap();
        desc.controls.push(button);
        desc
    }

    fn forced(log: &Mutex<FakeLog>) -> usize {
        let log = log.lock().unwrap();
        log.controls
            .iter()
            .filter(|(id, _)| *id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
            .count()
    }

    #[test]
    fn a_keyframe_request_makes_the_gpu_encoder_send_one_at_once() {
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let opener = FakeCamera::opener(
            with_force_key_frame("legacy-imx219"),
            Faults::default(),
            log.clone(),
        );
        let mut camera = LegacyCamera::new(
            PathBuf::from("/dev/video0"),
            opener,
            LegacySettings::from_config(&Config::default()),
        );
        let mut sink = Recording::new(45, Duration::from_secs(20));
        sink.keyframe_requests_at = vec![5, 20];
        camera.run(&mut sink).unwrap();
        assert_eq!(
            sink.keyframes_requested_at.len(),
            2,
            "both requests were taken"
        );
        assert_eq!(forced(&log), 2, "one control set per request");
        // The sample's own next IDR picture is its 61st: every keyframe here but
        // the first was asked for, and came within a few pictures of the request.
        let keyframes = sink.keyframe_indexes();
        assert_eq!(keyframes.len(), 3, "{keyframes:?}");
        assert_eq!(keyframes[0], 0);
        for (asked, got) in sink.keyframes_requested_at.iter().zip(&keyframes[1..]) {
            assert!(
                (*asked..=asked + 3).contains(got),
                "asked at {asked}, keyframe at {got}: {keyframes:?}"
            );
        }
        assert!(sink.units[keyframes[1]].contains(crate::h264::NalType::Sps));
        assert_eq!(sink.reader.stats().errors(), 0);
    }

    #[test]
    fn without_a_working_force_key_frame_control_requests_wait_for_the_next_keyframe() {
        // A driver without the control: nothing is set, the request is not taken.
        let (mut camera, log) = legacy("legacy-ov5647", &Config::default(), Faults::default());
        let mut sink = Recording::new(30, Duration::from_secs(20));
        sink.keyframe_requests_at = vec![5];
        camera.run(&mut sink).unwrap();
        assert!(sink.keyframes_requested_at.is_empty());
        assert_eq!(forced(&log), 0);
        assert_eq!(sink.keyframe_indexes(), [0]);
        // A driver that lists it but refuses it: logged, and the video goes on.
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let faults = Faults {
            refuse_control: Some(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME),
            ..Faults::default()
        };
        let opener = FakeCamera::opener(with_force_key_frame("legacy-ov5647"), faults, log.clone());
        let mut camera = LegacyCamera::new(
            PathBuf::from("/dev/video0"),
            opener,
            LegacySettings::from_config(&Config::default()),
        );
        let mut sink = Recording::new(30, Duration::from_secs(20));
        sink.keyframe_requests_at = vec![5, 10, 15];
        camera.run(&mut sink).unwrap();
        assert_eq!(sink.keyframes_requested_at.len(), 3);
        assert!(sink.units.len() >= 30);
        assert_eq!(sink.keyframe_indexes(), [0]);
    }

    #[test]
    fn pictures_larger_than_a_buffer_are_joined_again() {
        // With 4 KiB buffers the sample's pictures arrive in pieces; a full buffer
        // must not end the frame, or the reader would cut pictures apart.
        let faults = Faults {
            buffer_size: Some(4096),
            ..Faults::default()
        };
        let (mut camera, _) = legacy("legacy-ov5647", &Config::default(), faults);
        let mut sink = Recording::new(30, Duration::from_secs(20));
        camera.run(&mut sink).unwrap();
        let full: Vec<&(usize, bool)> = sink.writes.iter().filter(|w| w.0 == 4096).collect();
        assert!(
            !full.is_empty(),
            "pictures were split: {:?}",
            &sink.writes[..8]
        );
        assert!(
            full.iter().all(|w| !w.1),
            "a full buffer never ends a frame"
        );
        assert_eq!(sink.reader.stats().errors(), 0);
        assert!(sink.units.len() >= 30);
        let keyframe = sink.units.iter().find(|u| u.is_keyframe()).unwrap();
        assert!(keyframe.annex_b_len() > 4096, "a whole keyframe");
    }

    #[test]
    fn values_the_driver_cannot_take_are_explained_and_skipped() {
        let mut config = Config::default();
        config.encoder.level = "4.2".into(); // the driver's menu ends at 4.0: clamped
        config.image.metering = crate::config::Metering::Matrix; // no Matrix entry
        config.image.denoise = false; // no such control at all
        let (mut camera, log) = legacy("legacy-imx219", &config, Faults::default());
        let mut sink = Recording::new(5, Duration::from_secs(10));
        camera.run(&mut sink).unwrap();
        let warnings = camera.warnings().join("\n");
        assert!(
            !warnings.contains("H.264 level"),
            "the level is clamped to 4.0 beforehand: {warnings}"
        );
        assert!(
            warnings.contains("metering = 3: the driver's Exposure, Metering Mode takes 0 (Average), 1 (Center Weighted), 2 (Spot); not set"),
            "{warnings}"
        );
        assert!(warnings.contains("denoise"), "{warnings}");
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log.control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL),
            Some(i64::from(sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_0))
        );
        assert_eq!(log.control(sys::V4L2_CID_EXPOSURE_METERING), None);
        assert_eq!(
            log.control(sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER),
            Some(1)
        );
        assert!(sink.units.len() >= 5);
    }

    #[test]
    fn refusals_are_plain_words() {
        let start_reason = |result: Result<(), SourceError>| match result {
            Err(SourceError::Start { reason, .. }) => reason,
            other => panic!("expected a start error, got {other:?}"),
        };
        // Larger than the GPU encoder.
        let mut config = Config::default();
        config.camera.width = 2592;
        config.camera.height = 1944;
        let (mut camera, log) = legacy("legacy-ov5647", &config, Faults::default());
        let why = start_reason(camera.run(&mut Recording::new(1, Duration::from_secs(1))));
        assert!(why.contains("at most 1920x1080"), "{why}");
        assert!(log.lock().unwrap().formats.is_empty(), "nothing was set");
        // Beyond the level.
        let mut config = Config::default();
        config.camera.width = 1920;
        config.camera.height = 1080;
        config.camera.framerate = 60;
        let (mut camera, _) = legacy("legacy-ov5647", &config, Faults::default());
        let why = start_reason(camera.run(&mut Recording::new(1, Duration::from_secs(1))));
        assert!(why.contains("needs H.264 level 4.2"), "{why}");
        assert!(why.contains("goes up to level 4.0"), "{why}");
        // Within what the camera can do, but beyond the configured level.
        let mut config = Config::default();
        config.encoder.level = "3.1".into();
        config.camera.width = 1920;
        config.camera.height = 1080;
        let (mut camera, _) = legacy("legacy-ov5647", &config, Faults::default());
        let why = start_reason(camera.run(&mut Recording::new(1, Duration::from_secs(1))));
        assert!(why.contains("encoder.level = \"4\""), "{why}");
        // A control the firmware refuses costs that setting, not the video.
        let faults = Faults {
            refuse_control: Some(sys::V4L2_CID_MPEG_VIDEO_BITRATE),
            ..Faults::default()
        };
        let (mut camera, _) = legacy("legacy-ov5647", &Config::default(), faults);
        camera
            .run(&mut Recording::new(5, Duration::from_secs(10)))
            .unwrap();
        let warnings = camera.warnings().join("\n");
        assert!(
            warnings.contains("the camera refused bitrate = 3000000"),
            "{warnings}"
        );
        // Not the legacy camera.
        let (mut camera, _) = legacy("uvc-c920", &Config::default(), Faults::default());
        let why = start_reason(camera.run(&mut Recording::new(1, Duration::from_secs(1))));
        assert!(why.contains("is not the legacy camera"), "{why}");
        assert!(why.contains("uvcvideo"), "{why}");
    }

    #[test]
    fn values_are_checked_against_the_drivers_ranges() {
        let desc = fixture("legacy-imx477");
        let bitrate = desc.control(sys::V4L2_CID_MPEG_VIDEO_BITRATE).unwrap();
        assert_eq!(check_value(bitrate, 3_000_000), None);
        assert_eq!(
            check_value(bitrate, 3_010_000).unwrap(),
            "the driver's Video Bitrate takes 25000 to 25000000 in steps of 25000"
        );
        assert!(check_value(bitrate, 30_000_000).is_some());
        let rotate = desc.control(sys::V4L2_CID_ROTATE).unwrap();
        assert_eq!(check_value(rotate, 270), None);
        assert!(check_value(rotate, 45).unwrap().contains("in steps of 90"));
        let profile = desc.control(sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE).unwrap();
        assert_eq!(check_value(profile, 4), None);
        assert!(check_value(profile, 3).unwrap().contains("4 (High)"));
        let mut locked = bitrate.clone();
        locked.flags |= sys::V4L2_CTRL_FLAG_READ_ONLY;
        locked.minimum = i64::MIN;
        assert!(check_value(&locked, 1).unwrap().contains("does not allow"));
        locked.flags = 0;
        assert!(check_value(&locked, i64::MAX).is_some());
    }

    #[test]
    fn a_vanished_camera_fails_saying_it_disconnected() {
        let faults = Faults {
            vanish_after: Some(10),
            ..Faults::default()
        };
        let (mut camera, _) = legacy("legacy-ov5647", &Config::default(), faults);
        let mut sink = Recording::new(usize::MAX, Duration::from_secs(10));
        match camera.run(&mut sink) {
            Err(SourceError::Failed { reason, .. }) => {
                assert!(reason.contains("the camera disconnected"), "{reason}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert!(!sink.units.is_empty());
    }

    #[test]
    fn error_flagged_buffers_are_skipped() {
        let faults = Faults {
            error_every: Some(3),
            ..Faults::default()
        };
        let (mut camera, log) = legacy("legacy-ov5647", &Config::default(), faults);
        let mut sink = Recording::new(20, Duration::from_secs(10));
        camera.run(&mut sink).unwrap();
        assert!(sink.units.len() >= 20);
        assert!(log.lock().unwrap().buffers_done > sink.writes.len() as u64);
    }

    #[test]
    fn stops_promptly_when_asked_even_while_the_camera_stalls() {
        let faults = Faults {
            stall_after: Some(4),
            ..Faults::default()
        };
        let (mut camera, log) = legacy("legacy-ov5647", &Config::default(), faults);
        let started = Instant::now();
        let mut sink = Recording::new(usize::MAX, Duration::from_millis(300));
        camera.run(&mut sink).unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_millis(800), "took {took:?}");
        assert_eq!(log.lock().unwrap().stream_off, 1);
    }
}
