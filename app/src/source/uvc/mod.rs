//! The `uvc` source (`camera.source = "uvc"`): a USB webcam through uvcvideo.
//!
//! When the webcam offers H.264 at the configured size and rate, its stream is
//! passed through (the capture loop of [`super::capture`], as for the legacy
//! camera). Otherwise a raw format the Pi's hardware encoder takes is captured
//! (YUYV, NV12 or YU12, in that order of preference) and encoded there by
//! [`crate::encode::m2m`] (on a board without that encoder, a Pi 5 or a laptop, it
//! is encoded on the CPU with OpenH264 instead, dropping frames the CPU cannot keep
//! up with): each captured frame is copied into the encoder's raw
//! buffers (its stride and alignment) and the coded frame is written to the sink
//! as soon as the encoder hands it back. A camera frame never waits for the
//! encoder: when the encoder is busy the frame is dropped and counted. MJPEG is not
//! usable (the Pi's encoder does not take it, and decoding it would cost the CPU).
//!
//! Keyframes on request ([`Sink::keyframe_requested`]): raw video is encoded by us,
//! so the next picture is made an IDR picture (the hardware encoder's
//! `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`, or OpenH264's forced intra frame). A
//! webcam's own H.264 gets the request only if uvcvideo lists that control for it
//! ([`super::keyframe::can_force`]); uvcvideo maps none of the vendor extension-unit
//! controls through which such webcams (the C920) set their encoder, so for them
//! viewers wait for the webcam's next keyframe.

pub mod controls;

use std::path::PathBuf;
use std::sync::Arc;

use std::time::{Duration, Instant, SystemTime};

use super::capture::{self, BufferHandler, CapturedBuffer};
use super::keyframe::{self, ForcedKeyframes};
use super::mode::{self, Mode, ModeRequest};
use super::{Sink, Source, SourceError};
use crate::config::{Config, EncoderConfig, ImageConfig};
use crate::encode::i420::I420Picture;
use crate::encode::m2m::{DropReason, EncoderSettings, M2mEncoder, Submitted};
use crate::encode::raw_picture::PictureLayout;
use crate::encode::software::{SoftwareEncoder, SoftwareSettings};
use crate::h264::split::contains_slice;
use crate::v4l2::{describe, sys, ControlInfo, Fraction, ImageFormat, Node, Opener, Queue};

const NAME: &str = "uvc";

/// Raw formats the Pi's encoder takes, most preferred first.
pub const RAW_FORMATS: [u32; 3] = [
    sys::V4L2_PIX_FMT_YUYV,
    sys::V4L2_PIX_FMT_NV12,
    sys::V4L2_PIX_FMT_YUV420,
];

/// What the `uvc` source needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct UvcSettings {
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub framerate: u32,
    /// The hardware encoder's node (`bcm2835-codec-encode`), for webcams without
    /// H.264; `None` when the board has none.
    pub encoder: Option<PathBuf>,
    /// How to encode raw video.
    pub encoding: EncoderConfig,
    /// The picture settings, applied as well as the webcam's controls allow.
    pub image: ImageConfig,
}

impl UvcSettings {
    /// The settings for `config`.
    pub fn from_config(config: &Config) -> UvcSettings {
        UvcSettings {
            width: config.camera.width,
            height: config.camera.height,
            framerate: config.camera.framerate,
            encoder: None,
            encoding: config.encoder.clone(),
            image: config.image.clone(),
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

    /// Sets the configuration's `[image]` on the webcam's controls (`available`, as
    /// it listed them). What the webcam cannot do, and controls it refuses, are
    /// warnings, never a failure: the video streams anyway. Returns the warnings.
    pub fn apply_image(&self, node: &mut dyn Node, available: &[ControlInfo]) -> Vec<String> {
        let (settings, mut problems) = controls::plan(&self.settings.image, available);
        for setting in &settings {
            if let Err(e) = node.set_control(setting.id, setting.value) {
                problems.push(format!(
                    "{}: the webcam refused {} = {}: {e}",
                    setting.key, setting.control, setting.value
                ));
            }
        }
        for problem in &problems {
            tracing::warn!(source = NAME, "image setting not applied: {problem}");
        }
        tracing::debug!(
            source = NAME,
            controls = settings.len(),
            refused_or_missing = problems.len(),
            "image settings applied"
        );
        problems
    }

    /// Raw frames (`format`, already set on `node`) through the Pi's hardware
    /// encoder into `sink`.
    pub fn encode_raw(
        &mut self,
        node: &mut dyn Node,
        format: &ImageFormat,
        interval: Fraction,
        sink: &mut dyn Sink,
    ) -> Result<(), SourceError> {
        let offered = format!(
            "the webcam offers no H.264 at {}x{}, only {}",
            format.width,
            format.height,
            mode::format_name(format.pixelformat)
        );
        let Some(encoder_path) = self.settings.encoder.clone() else {
            return self.encode_in_software(node, format, interval, sink, &offered);
        };
        let encoder_node = (self.opener)(&encoder_path).map_err(|e| {
            Self::start_error(format!(
                "{offered}; the hardware encoder cannot be opened: {e}"
            ))
        })?;
        let fps = frames_per_second(interval).unwrap_or(self.settings.framerate);
        let bytesperline = format.planes.first().map_or(0, |p| p.bytesperline);
        let settings = EncoderSettings::new(
            format.width,
            format.height,
            format.pixelformat,
            bytesperline,
            fps,
            &self.settings.encoding,
        );
        let mut encoder = M2mEncoder::start(encoder_node, settings)
            .map_err(|e| Self::start_error(format!("{offered}, and {e}")))?;
        for note in encoder.notes() {
            tracing::warn!(source = NAME, %note, "encoder setting adjusted");
        }
        tracing::info!(
            source = NAME,
            encoder = %encoder_path.display(),
            format = %mode::format_name(format.pixelformat),
            width = format.width,
            height = format.height,
            fps,
            "encoding the webcam's raw video in the hardware encoder"
        );
        let frame_time = Duration::from_secs(1) / fps.max(1);
        let mut handler = EncodeHandler {
            encoder: &mut encoder,
            sink,
            // Wait for the coded frame a little, so it goes out now rather than
            // with the next camera frame; never long enough to miss one.
            output_wait: (frame_time / 2).min(Duration::from_millis(40)),
            busy_drops_logged: 0,
            keyframes: ForcedKeyframes::new(NAME),
        };
        let captured = capture::capture(node, NAME, &mut handler);
        let stats = encoder.finish(Duration::from_millis(500), |_, _, _| {});
        match stats {
            Ok(stats) if stats.dropped_busy > 0 || stats.dropped_short > 0 => {
                tracing::info!(
                    source = NAME,
                    dropped_busy = stats.dropped_busy,
                    dropped_short = stats.dropped_short,
                    "camera frames dropped because the encoder was busy or a frame was short"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(source = NAME, error = %e, "stopping the encoder"),
        }
        captured.map(|_| ())
    }
}

impl UvcCamera {
    /// Raw frames encoded on the CPU with OpenH264, for boards without the hardware
    /// encoder (a Raspberry Pi 5, a laptop). Frames that wait longer than two frame
    /// times (the CPU is behind) are dropped, so the delay stays short.
    fn encode_in_software(
        &mut self,
        node: &mut dyn Node,
        format: &ImageFormat,
        interval: Fraction,
        sink: &mut dyn Sink,
        offered: &str,
    ) -> Result<(), SourceError> {
        let fps = frames_per_second(interval).unwrap_or(self.settings.framerate);
        let (bytesperline, sizeimage) = format
            .planes
            .first()
            .map_or((0, 0), |p| (p.bytesperline, p.sizeimage));
        let layout = PictureLayout::from_driver(
            format.pixelformat,
            format.width,
            format.height,
            bytesperline,
            sizeimage,
        )
        .or_else(|_| PictureLayout::tight(format.pixelformat, format.width, format.height))
        .map_err(|e| Self::start_error(format!("{offered}: {e}")))?;
        let settings = SoftwareSettings {
            width: format.width,
            height: format.height,
            framerate: fps,
            bitrate: self.settings.encoding.bitrate,
            intra_period: self.settings.encoding.intra_period.max(1),
        };
        let encoder = SoftwareEncoder::new(settings).map_err(|e| {
            Self::start_error(format!(
                "{offered}, this board has no hardware H.264 encoder, and the software \
                 encoder cannot take it: {e}"
            ))
        })?;
        tracing::info!(
            source = NAME,
            format = %mode::format_name(format.pixelformat),
            width = format.width,
            height = format.height,
            fps,
            "no hardware H.264 encoder: encoding the webcam's raw video in software \
             (OpenH264, constrained baseline)"
        );
        let frame_time = Duration::from_secs(1) / fps.max(1);
        let mut handler = SoftwareHandler {
            picture: I420Picture::new(format.width as usize, format.height as usize),
            layout,
            encoder,
            sink,
            frame: 0,
            late_after: frame_time * 2,
            dropped_late: 0,
            dropped_short: 0,
        };
        let result = capture::capture(node, NAME, &mut handler);
        if handler.dropped_late > 0 || handler.dropped_short > 0 {
            tracing::info!(
                source = NAME,
                dropped_late = handler.dropped_late,
                dropped_short = handler.dropped_short,
                encoded = handler.frame,
                "camera frames dropped: the CPU could not encode them in time, or they were short"
            );
        }
        result.map(|_| ())
    }
}

/// Feeds captured raw frames through OpenH264 to the sink.
struct SoftwareHandler<'a> {
    picture: I420Picture,
    layout: PictureLayout,
    encoder: SoftwareEncoder,
    sink: &'a mut dyn Sink,
    /// Frames encoded so far (the encoder's frame number).
    frame: u64,
    late_after: Duration,
    dropped_late: u64,
    dropped_short: u64,
}

impl BufferHandler for SoftwareHandler<'_> {
    fn buffer(&mut self, frame: &CapturedBuffer<'_>) -> Result<(), SourceError> {
        if self.sink.keyframe_requested() {
            // Kept by the encoder until the next picture it encodes.
            self.encoder.force_keyframe();
        }
        let age = SystemTime::now()
            .duration_since(frame.captured)
            .unwrap_or_default();
        if self.frame > 0 && age > self.late_after {
            self.dropped_late += 1;
            return Ok(());
        }
        if self.picture.fill_from(&self.layout, frame.data).is_err() {
            self.dropped_short += 1;
            return Ok(());
        }
        let out = self
            .encoder
            .encode(&self.picture, self.frame)
            .map_err(|reason| SourceError::Failed {
                source_name: NAME,
                reason,
            })?;
        if !out.is_empty() {
            self.sink.write(out, true, frame.captured);
        }
        self.frame += 1;
        Ok(())
    }

    fn should_stop(&self) -> bool {
        self.sink.should_stop()
    }
}

/// Whole frames per second of a frame interval, `None` for a zero interval.
fn frames_per_second(interval: Fraction) -> Option<u32> {
    if interval.numerator == 0 || interval.denominator == 0 {
        return None;
    }
    let fps = (f64::from(interval.denominator) / f64::from(interval.numerator)).round();
    (fps >= 1.0).then_some(fps as u32)
}

/// Feeds captured raw frames to the encoder and its coded frames to the sink.
struct EncodeHandler<'a> {
    encoder: &'a mut M2mEncoder,
    sink: &'a mut dyn Sink,
    output_wait: Duration,
    busy_drops_logged: u64,
    /// Viewers' keyframe requests passed to the encoder.
    keyframes: ForcedKeyframes,
}

impl EncodeHandler<'_> {
    /// Coded frames to the sink, waiting up to `wait` for the first one.
    fn pass_output(&mut self, wait: Duration) -> Result<usize, SourceError> {
        let sink = &mut *self.sink;
        let deadline = Instant::now() + wait;
        let mut total = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let count = self
                .encoder
                .poll_output(left, |data, _flags, timestamp| {
                    let captured = SystemTime::UNIX_EPOCH + timestamp;
                    let frame_end = contains_slice(data);
                    sink.write(data, frame_end, captured);
                })
                .map_err(|e| SourceError::Failed {
                    source_name: NAME,
                    reason: e.to_string(),
                })?;
            total += count;
            // poll also wakes when a raw buffer comes back: keep waiting for the
            // coded frame until the deadline.
            if total > 0 || left.is_zero() {
                return Ok(total);
            }
        }
    }
}

impl BufferHandler for EncodeHandler<'_> {
    fn buffer(&mut self, frame: &CapturedBuffer<'_>) -> Result<(), SourceError> {
        // The coded frame carries the capture time through the encoder.
        let timestamp = frame
            .captured
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        if self.sink.keyframe_requested() {
            // Set before the frame is queued, so that this frame is the keyframe.
            self.keyframes.record(self.encoder.force_keyframe());
        }
        let submitted =
            self.encoder
                .encode(frame.data, timestamp)
                .map_err(|e| SourceError::Failed {
                    source_name: NAME,
                    reason: e.to_string(),
                })?;
        match submitted {
            Submitted::Queued => {
                self.pass_output(self.output_wait)?;
            }
            Submitted::Dropped(DropReason::ShortFrame { len, needed }) => {
                tracing::debug!(source = NAME, len, needed, "short raw frame dropped");
                self.pass_output(Duration::ZERO)?;
            }
            Submitted::Dropped(_) => {
                let dropped = self.encoder.stats().dropped_busy;
                // Log the first drop and then every 100th, not every frame.
                if self.busy_drops_logged == 0 || dropped >= self.busy_drops_logged + 100 {
                    tracing::warn!(
                        source = NAME,
                        dropped,
                        "the hardware encoder is behind: camera frames dropped"
                    );
                    self.busy_drops_logged = dropped;
                }
                self.pass_output(Duration::ZERO)?;
            }
        }
        Ok(())
    }

    fn should_stop(&self) -> bool {
        self.sink.should_stop()
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
        self.apply_image(node.as_mut(), &described.controls);
        if chosen.pixelformat != sys::V4L2_PIX_FMT_H264 {
            return self.encode_raw(node.as_mut(), &format, interval, sink);
        }
        let force_keyframes = keyframe::can_force(NAME, &described.controls);
        capture::stream_h264(node.as_mut(), NAME, sink, force_keyframes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::test_sink::Recording;
    use crate::v4l2::fake::camera::{fixture, FakeCamera, FakeLog, Faults};
    use crate::v4l2::NodeDescription;
    use std::sync::Mutex;
    use std::time::{Duration, Instant, SystemTime};

    fn recording(stop_after: usize) -> Recording {
        Recording::new(stop_after, Duration::from_secs(10))
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
            encoder: None,
            encoding: Config::default().encoder,
            image: ImageConfig::default(),
        };
        (
            UvcCamera::new(PathBuf::from("/dev/video0"), opener, settings),
            log,
        )
    }

    /// A raw-only webcam at /dev/video0 and the fake hardware encoder at
    /// /dev/video11, both behind one opener.
    fn webcam_and_encoder(
        width: u32,
        height: u32,
        encoder_faults: impl FnOnce(&mut crate::v4l2::fake::encoder::Faults),
    ) -> (UvcCamera, crate::v4l2::fake::encoder::FakeHandle) {
        use crate::v4l2::fake::encoder::FakeEncoder;
        let log = Arc::new(Mutex::new(FakeLog::default()));
        let camera_opener = FakeCamera::opener(fixture("uvc-c270"), Faults::default(), log);
        let (encoder, handle) = FakeEncoder::new();
        handle.faults(encoder_faults);
        let encoder = Mutex::new(Some(encoder));
        let opener: Arc<Opener> = Arc::new(move |path: &std::path::Path| {
            if path == std::path::Path::new("/dev/video11") {
                let taken = encoder.lock().unwrap().take();
                taken
                    .map(|e| Box::new(e) as Box<dyn Node>)
                    .ok_or(crate::v4l2::Error::Open {
                        path: path.to_path_buf(),
                        source: std::io::Error::from_raw_os_error(libc::EBUSY),
                    })
            } else {
                camera_opener(path)
            }
        });
        let settings = UvcSettings {
            width,
            height,
            framerate: 30,
            encoder: Some(PathBuf::from("/dev/video11")),
            encoding: Config::default().encoder,
            image: ImageConfig::default(),
        };
        (
            UvcCamera::new(PathBuf::from("/dev/video0"), opener, settings),
            handle,
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
    fn without_a_hardware_encoder_raw_video_is_encoded_in_software() {
        let (mut camera, log) = webcam(fixture("uvc-c270"), 640, 480, 30, Faults::default());
        let mut sink = recording(15);
        camera.run(&mut sink).unwrap();
        assert!(sink.units.len() >= 15, "{} frames", sink.units.len());
        assert!(sink.units[0].is_keyframe());
        assert_eq!(sink.reader.stats().errors(), 0);
        // The raw format was chosen and set.
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log.formats.last().unwrap().pixelformat,
            sys::V4L2_PIX_FMT_YUYV
        );
        // The C920 beyond its H.264 sizes goes raw too; an odd size the software
        // encoder cannot take is refused in words.
        let (mut camera, _) = webcam(fixture("uvc-c920"), 2304, 1536, 2, Faults::default());
        let mut sink = recording(2);
        match camera.run(&mut sink) {
            Ok(()) => assert!(sink.units.len() >= 2),
            Err(SourceError::Start { reason, .. }) => {
                assert!(reason.contains("software encoder"), "{reason}")
            }
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn raw_video_is_encoded_by_the_hardware_encoder() {
        // 176x144 YUYV: 352-byte rows, which the encoder aligns to 64 bytes (384).
        let (mut camera, encoder) = webcam_and_encoder(176, 144, |_| {});
        let mut sink = recording(20);
        let before = SystemTime::now();
        camera.run(&mut sink).unwrap();
        assert!(sink.units.len() >= 20, "{} coded frames", sink.units.len());
        assert!(sink.units[0].is_keyframe());
        assert_eq!(sink.reader.stats().errors(), 0);
        let record = encoder.record();
        let (_, raw) = record
            .formats
            .iter()
            .find(|(q, _)| *q == Queue::OutputMplane)
            .expect("the raw format was set on the encoder");
        assert_eq!(
            (raw.pixelformat, raw.width, raw.height),
            (sys::V4L2_PIX_FMT_YUYV, 176, 144)
        );
        assert_eq!(raw.planes[0].bytesperline, 384);
        assert!(record.received.len() >= 20);
        // Each raw buffer holds the camera's rows at the encoder's stride. The fake
        // webcam's byte c of every row is (c mod 176) + a per-frame shift, so every
        // row must read the same at offsets 0, 384, 768...; a tight copy would
        // shift row r by 32 x r bytes.
        let first = &record.received[0];
        assert!(first.bytesused >= 384 * 144, "{}", first.bytesused);
        let row0 = &first.data[..352];
        for (c, byte) in row0.iter().enumerate() {
            assert_eq!(byte.wrapping_sub(row0[0]), (c % 176) as u8, "column {c}");
        }
        for r in 1..144 {
            assert_eq!(&first.data[r * 384..r * 384 + 352], row0, "row {r}");
        }
        // The capture time travels through the encoder as its timestamp.
        let captured = SystemTime::UNIX_EPOCH + first.timestamp;
        let skew = captured
            .duration_since(before)
            .or_else(|e| Ok::<_, ()>(e.duration()))
            .unwrap();
        assert!(skew < Duration::from_secs(5), "{skew:?}");
        // Stopping drained the encoder and stopped both of its queues.
        assert!(record.commands.contains(&sys::V4L2_ENC_CMD_STOP));
        assert!(record
            .streaming
            .iter()
            .any(|(q, on)| *q == Queue::OutputMplane && !on));
    }

    /// How often the keyframe control was set on the fake encoder.
    fn forced(record: &crate::v4l2::fake::encoder::Record) -> usize {
        record
            .controls
            .iter()
            .filter(|(id, _)| *id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
            .count()
    }

    /// Every keyframe but the first came within a few pictures of a request.
    fn keyframes_follow_requests(sink: &Recording) {
        let keyframes = sink.keyframe_indexes();
        assert_eq!(keyframes.first(), Some(&0), "{keyframes:?}");
        assert_eq!(
            keyframes.len(),
            1 + sink.keyframes_requested_at.len(),
            "one keyframe per request: {keyframes:?}, asked at {:?}",
            sink.keyframes_requested_at
        );
        for (asked, got) in sink.keyframes_requested_at.iter().zip(&keyframes[1..]) {
            assert!(
                (*asked..=asked + 3).contains(got),
                "asked at {asked}, keyframe at {got}: {keyframes:?}"
            );
        }
    }

    #[test]
    fn keyframe_requests_reach_the_hardware_encoder_once_each() {
        let (mut camera, encoder) = webcam_and_encoder(176, 144, |_| {});
        let mut sink = recording(45);
        sink.keyframe_requests_at = vec![5, 20];
        camera.run(&mut sink).unwrap();
        assert_eq!(sink.keyframes_requested_at.len(), 2);
        assert_eq!(forced(&encoder.record()), 2, "one control set per request");
        // The sample's own next IDR picture is its 61st.
        keyframes_follow_requests(&sink);
        assert_eq!(sink.reader.stats().errors(), 0);
        // A refused control costs the keyframe, not the video.
        let (mut camera, encoder) = webcam_and_encoder(176, 144, |f| {
            f.refuse_control = Some(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
        });
        let mut sink = recording(30);
        sink.keyframe_requests_at = vec![5, 10, 15];
        camera.run(&mut sink).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sink.keyframes_requested_at.len(), 3);
        assert!(sink.units.len() >= 30);
        assert_eq!(sink.keyframe_indexes(), [0]);
        assert_eq!(forced(&encoder.record()), 0);
    }

    #[test]
    fn keyframe_requests_reach_the_software_encoder_and_not_a_webcams_own_h264() {
        // Raw video encoded with OpenH264 (intra period 60 by default).
        let (mut camera, _) = webcam(fixture("uvc-c270"), 320, 240, 30, Faults::default());
        let mut sink = recording(30);
        sink.keyframe_requests_at = vec![5, 15];
        camera.run(&mut sink).unwrap();
        assert_eq!(sink.keyframes_requested_at.len(), 2);
        keyframes_follow_requests(&sink);
        // The C920's own H.264: uvcvideo lists no keyframe control for it.
        let (mut camera, log) = webcam(fixture("uvc-c920"), 640, 480, 30, Faults::default());
        let mut sink = recording(30);
        sink.keyframe_requests_at = vec![5];
        camera.run(&mut sink).unwrap();
        assert!(sink.keyframes_requested_at.is_empty());
        let log = log.lock().unwrap().clone();
        assert_eq!(log.control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME), None);
        assert!(sink.units.len() >= 30);
    }

    #[test]
    fn a_busy_encoder_costs_frames_not_the_camera() {
        let (mut camera, encoder) = webcam_and_encoder(176, 144, |f| f.slow = true);
        let mut sink = recording(usize::MAX);
        sink.deadline = Instant::now() + Duration::from_millis(800);
        let started = Instant::now();
        camera.run(&mut sink).unwrap();
        // The camera loop kept going and stopped on time.
        assert!(started.elapsed() < Duration::from_secs(3));
        let record = encoder.record();
        assert!(record.received.len() <= 6, "{}", record.received.len());
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
    fn image_settings_reach_the_webcam_and_a_refusal_does_not_stop_the_video() {
        use crate::config::{ExposureMode, WhiteBalance};
        const AUTO_WHITE_BALANCE: u32 = sys::V4L2_CID_BASE + 12;
        const WHITE_BALANCE_TEMPERATURE: u32 = sys::V4L2_CID_BASE + 26;
        let faults = Faults {
            refuse_control: Some(sys::V4L2_CID_EXPOSURE_ABSOLUTE),
            ..Faults::default()
        };
        let (mut camera, log) = webcam(fixture("uvc-c920"), 1280, 720, 30, faults.clone());
        camera.settings.image = ImageConfig {
            contrast: 50,
            white_balance: WhiteBalance::Tungsten,
            exposure: ExposureMode::Off,
            iso: 400,
            ..ImageConfig::default()
        };
        let mut sink = recording(10);
        camera.run(&mut sink).unwrap();
        assert!(sink.units.len() >= 10);
        let log = log.lock().unwrap().clone();
        // C920 contrast 0-255 around 128: +50 -> 128 + 0.5 x 127 = 191.5 -> 192.
        assert_eq!(log.control(sys::V4L2_CID_CONTRAST), Some(192));
        assert_eq!(log.control(sys::V4L2_CID_BRIGHTNESS), Some(128));
        assert_eq!(log.control(AUTO_WHITE_BALANCE), Some(0));
        assert_eq!(log.control(WHITE_BALANCE_TEMPERATURE), Some(3200));
        assert_eq!(
            log.control(sys::V4L2_CID_EXPOSURE_AUTO),
            Some(i64::from(sys::V4L2_EXPOSURE_MANUAL))
        );
        // The refused control was not stored; the switches came first.
        assert_eq!(log.control(sys::V4L2_CID_EXPOSURE_ABSOLUTE), None);
        let at = |id: u32| log.controls.iter().position(|(c, _)| *c == id).unwrap();
        assert!(at(AUTO_WHITE_BALANCE) < at(WHITE_BALANCE_TEMPERATURE));
        // Everything was set before the video started.
        assert_eq!(log.stream_on, 1);
        // The warnings name the refused control and what the webcam cannot do.
        let mut refusing = FakeCamera::with(fixture("uvc-c920"), faults, Arc::default());
        let available = refusing.controls().unwrap();
        camera.settings.image = ImageConfig {
            exposure: ExposureMode::Off,
            iso: 400,
            ..ImageConfig::default()
        };
        let problems = camera.apply_image(&mut refusing, &available);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("image.iso = 400"), "{problems:?}");
        assert!(
            problems[1].contains("refused Exposure (Absolute) = 250"),
            "{problems:?}"
        );
        // Without the fault, only the note remains.
        let mut node = FakeCamera::new(fixture("uvc-c920"));
        assert_eq!(camera.apply_image(&mut node, &available).len(), 1);
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
