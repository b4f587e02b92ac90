//! The `uvc` source (`camera.source = "uvc"`): a USB webcam through uvcvideo.
//!
//! When the webcam offers H.264 at the configured size and rate, its stream is
//! passed through (the capture loop of [`super::capture`], as for the legacy
//! camera). Otherwise a raw format the Pi's hardware encoder takes is captured
//! (YUYV, NV12 or YU12, in that order of preference) and encoded there: that path
//! is [`UvcCamera::encode_raw`], not wired to the encoder yet. MJPEG is not usable.

use std::path::PathBuf;
use std::sync::Arc;

use super::capture::{self, H264Handler};
use super::mode::{self, Mode, ModeRequest};
use super::{Sink, Source, SourceError};
use crate::config::Config;
use crate::v4l2::{describe, sys, Fraction, ImageFormat, Node, Opener, Queue};

const NAME: &str = "uvc";

/// Raw formats the Pi's encoder takes, most preferred first.
pub const RAW_FORMATS: [u32; 3] = [
    sys::V4L2_PIX_FMT_YUYV,
    sys::V4L2_PIX_FMT_NV12,
    sys::V4L2_PIX_FMT_YUV420,
];

/// What the `uvc` source needs from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UvcSettings {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
}

impl UvcSettings {
    /// The settings for `config`.
    pub fn from_config(config: &Config) -> UvcSettings {
        UvcSettings {
            width: config.camera.width,
            height: config.camera.height,
            framerate: config.camera.framerate,
        }
    }
}

/// Chooses the webcam's mode: its own H.264 first, else a raw format for the
/// Pi's encoder. Refusals name what the webcam offers.
pub fn choose_mode(
    offered: &[crate::v4l2::FormatModes],
    settings: &UvcSettings,
) -> Result<Mode, String> {
    let mut formats = vec![sys::V4L2_PIX_FMT_H264];
    formats.extend_from_slice(&RAW_FORMATS);
    let request = ModeRequest {
        width: settings.width,
        height: settings.height,
        fps: settings.framerate,
        formats,
        h264_limit: None,
    };
    mode::select(offered, &request).map_err(|why| {
        let mjpeg = offered
            .iter()
            .any(|f| f.format.pixelformat == sys::V4L2_PIX_FMT_MJPEG);
        if mjpeg {
            format!(
                "{why} (its MJPEG cannot be used: the Pi's encoder takes raw YUYV, NV12 or YU12)"
            )
        } else {
            why
        }
    })
}

/// The USB webcam source.
pub struct UvcCamera {
    path: PathBuf,
    opener: Arc<Opener>,
    settings: UvcSettings,
}

impl UvcCamera {
    /// The webcam at `path`, opened with `opener` (`Device::open` in production).
    pub fn new(path: PathBuf, opener: Arc<Opener>, settings: UvcSettings) -> UvcCamera {
        UvcCamera {
            path,
            opener,
            settings,
        }
    }

    fn start_error(reason: String) -> SourceError {
        SourceError::Start {
            source_name: NAME,
            reason,
        }
    }

    /// Raw frames (`format`, already set on `node`) through the Pi's hardware
    /// encoder into `sink`. Not wired yet: the integrator connects
    /// `super::m2m_encoder` here (a [`capture::FrameHandler`] that queues each
    /// frame into the encoder and writes its output to the sink, run with
    /// [`capture::capture`]).
    pub fn encode_raw(
        &mut self,
        node: &mut dyn Node,
        format: &ImageFormat,
        interval: Fraction,
        sink: &mut dyn Sink,
    ) -> Result<(), SourceError> {
        let _ = (node, interval, sink);
        Err(Self::start_error(format!(
            "the webcam offers no H.264 at {}x{}, only {}: raw capture needs the hardware \
             encoder: not wired yet",
            format.width,
            format.height,
            mode::format_name(format.pixelformat)
        )))
    }
}

impl Source for UvcCamera {
    fn name(&self) -> &'static str {
        NAME
    }

    fn describe(&self) -> String {
        format!(
            "USB webcam {} {}x{} @ {} fps",
            self.path.display(),
            self.settings.width,
            self.settings.height,
            self.settings.framerate
        )
    }

    fn run(&mut self, sink: &mut dyn Sink) -> Result<(), SourceError> {
        let path = self.path.display().to_string();
        let mut node = (self.opener)(&self.path).map_err(|e| {
            Self::start_error(match e.errno() {
                Some(libc::ENOENT) => {
                    format!("no webcam at {path}: is it plugged in? (camera.device)")
                }
                _ => e.to_string(),
            })
        })?;
        let capability = node.capability().clone();
        if !capability.has(sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_STREAMING) {
            return Err(Self::start_error(format!(
                "{path} (\"{}\", driver {}) does not capture video; a webcam has two nodes, \
                 video and metadata: set camera.device to the first of them",
                capability.card, capability.driver
            )));
        }
        let described = describe(node.as_ref()).map_err(|e| Self::start_error(e.to_string()))?;
        let chosen = choose_mode(described.formats(Queue::Capture), &self.settings)
            .map_err(|why| Self::start_error(format!("{why} (webcam {path})")))?;
        let asked = ImageFormat {
            width: chosen.width,
            height: chosen.height,
            pixelformat: chosen.pixelformat,
            field: sys::V4L2_FIELD_NONE,
            colorspace: 0,
            planes: vec![],
        };
        let name = mode::format_name(chosen.pixelformat);
        let format = node.set_format(Queue::Capture, &asked).map_err(|e| {
            Self::start_error(format!(
                "the webcam refused {name} at {}x{}: {e}",
                chosen.width, chosen.height
            ))
        })?;
        if (format.pixelformat, format.width, format.height)
            != (chosen.pixelformat, chosen.width, chosen.height)
        {
            return Err(Self::start_error(format!(
                "asked the webcam for {name} at {}x{}, it chose {} at {}x{}",
                chosen.width,
                chosen.height,
                mode::format_name(format.pixelformat),
                format.width,
                format.height
            )));
        }
        let interval = match node.set_frame_interval(Queue::Capture, chosen.interval) {
            Ok(Some(set)) => {
                if set != chosen.interval {
                    tracing::warn!(
                        source = NAME,
                        "camera.framerate = {}: the webcam chose {}/{} s per frame",
                        self.settings.framerate,
                        set.numerator,
                        set.denominator
                    );
                }
                set
            }
            Ok(None) => chosen.interval,
            Err(e) => {
                return Err(Self::start_error(format!(
                    "the webcam refused {} frames per second: {e}",
                    self.settings.framerate
                )))
            }
        };
        if chosen.pixelformat != sys::V4L2_PIX_FMT_H264 {
            return self.encode_raw(node.as_mut(), &format, interval, sink);
        }
        let mut handler = H264Handler::new(sink);
        let stats = capture::capture(node.as_mut(), NAME, &mut handler)?;
        if stats.error_buffers > 0 || stats.bad_buffers > 0 {
            tracing::warn!(
                source = NAME,
                error_buffers = stats.error_buffers,
                bad_buffers = stats.bad_buffers,
                "the webcam delivered damaged buffers (skipped)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::{AccessUnit, AccessUnitReader};
    use crate::v4l2::fake_camera::{fixture, FakeCamera, FakeLog, Faults};
    use crate::v4l2::NodeDescription;
    use std::sync::Mutex;
    use std::time::{Duration, Instant, SystemTime};

    struct Recording {
        reader: AccessUnitReader,
        units: Vec<AccessUnit>,
        stop_after: usize,
        deadline: Instant,
    }

    impl Sink for Recording {
        fn write(&mut self, annex_b: &[u8], frame_end: bool, _captured: SystemTime) {
            self.reader.push(annex_b, &mut self.units);
            if frame_end {
                self.reader.flush(&mut self.units);
            }
        }
        fn should_stop(&self) -> bool {
            self.units.len() >= self.stop_after || Instant::now() >= self.deadline
        }
    }

    fn recording(stop_after: usize) -> Recording {
        Recording {
            reader: AccessUnitReader::new(),
            units: Vec::new(),
            stop_after,
            deadline: Instant::now() + Duration::from_secs(10),
        }
    }

    fn webcam(
        desc: NodeDescription,
        width: u32,
        height: u32,
        framerate: u32,
        faults: Faults,
    ) -> (UvcCamera, Arc<Mutex<FakeLog>>) {
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let opener = FakeCamera::opener(desc, faults, log.clone());
        let settings = UvcSettings {
            width,
            height,
            framerate,
        };
        (
            UvcCamera::new(PathBuf::from("/dev/video0"), opener, settings),
            log,
        )
    }

    fn start_reason(result: Result<(), SourceError>) -> String {
        match result {
            Err(SourceError::Start { reason, .. }) => reason,
            other => panic!("expected a start error, got {other:?}"),
        }
    }

    #[test]
    fn a_webcam_with_h264_is_passed_through() {
        let (mut camera, log) = webcam(fixture("uvc-c920"), 1280, 720, 30, Faults::default());
        let mut sink = recording(40);
        camera.run(&mut sink).unwrap();
        assert!(sink.units.len() >= 40);
        assert!(sink.units[0].is_keyframe());
        assert_eq!(sink.reader.stats().errors(), 0);
        let log = log.lock().unwrap().clone();
        let format = log.formats.last().unwrap();
        assert_eq!(
            (format.pixelformat, format.width, format.height),
            (sys::V4L2_PIX_FMT_H264, 1280, 720)
        );
        assert_eq!(log.stream_off, 1);
    }

    #[test]
    fn without_h264_the_raw_path_says_it_is_not_wired_yet() {
        let (mut camera, log) = webcam(fixture("uvc-c270"), 640, 480, 30, Faults::default());
        let why = start_reason(camera.run(&mut recording(1)));
        assert!(
            why.contains("raw capture needs the hardware encoder: not wired yet"),
            "{why}"
        );
        assert!(why.contains("only YUYV"), "{why}");
        // The raw format was chosen and set before handing over.
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log.formats.last().unwrap().pixelformat,
            sys::V4L2_PIX_FMT_YUYV
        );
        // The C920 beyond its H.264 sizes goes raw too.
        let (mut camera, _) = webcam(fixture("uvc-c920"), 2304, 1536, 2, Faults::default());
        let why = start_reason(camera.run(&mut recording(1)));
        assert!(why.contains("not wired yet"), "{why}");
    }

    #[test]
    fn mjpeg_only_is_refused_in_plain_words() {
        let mut desc = fixture("uvc-c270");
        for queue in &mut desc.queues {
            queue
                .formats
                .retain(|f| f.format.pixelformat == sys::V4L2_PIX_FMT_MJPEG);
        }
        let (mut camera, _) = webcam(desc, 640, 480, 30, Faults::default());
        let why = start_reason(camera.run(&mut recording(1)));
        assert!(why.contains("the camera offers MJPEG"), "{why}");
        assert!(why.contains("MJPEG cannot be used"), "{why}");
        // A size the webcam does not have names the nearest.
        let (mut camera, _) = webcam(fixture("uvc-c270"), 1920, 1080, 30, Faults::default());
        let why = start_reason(camera.run(&mut recording(1)));
        assert!(why.contains("nearest: 1280x960"), "{why}");
    }

    #[test]
    fn a_metadata_node_is_not_a_webcam() {
        let mut desc = fixture("uvc-c920");
        desc.capability.device_caps = sys::V4L2_CAP_META_CAPTURE | sys::V4L2_CAP_STREAMING;
        let (mut camera, _) = webcam(desc, 1280, 720, 30, Faults::default());
        let why = start_reason(camera.run(&mut recording(1)));
        assert!(why.contains("does not capture video"), "{why}");
    }

    #[test]
    fn an_unplugged_webcam_fails_saying_it_disconnected() {
        let faults = Faults {
            vanish_after: Some(5),
            ..Faults::default()
        };
        let (mut camera, _) = webcam(fixture("uvc-c920"), 640, 480, 30, faults);
        match camera.run(&mut recording(usize::MAX)) {
            Err(SourceError::Failed { reason, .. }) => {
                assert!(reason.contains("the camera disconnected"), "{reason}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
    }
}
