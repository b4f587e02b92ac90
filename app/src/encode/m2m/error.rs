//! The Raspberry Pi's memory-to-memory hardware H.264 encoder (`bcm2835-codec`,
//! card `bcm2835-codec-encode`, usually `/dev/video11`, but the number is never
//! assumed) as a state machine over a [`Node`]: raw frames in, coded frames out.
//!
//! Multi-planar API, one plane per buffer: the OUTPUT queue takes raw frames
//! (the camera's format, rows aligned the way the driver says), the CAPTURE queue
//! gives H.264 (Annex B, SPS/PPS repeated before every IDR).
//!
//! Use, on the camera's thread:
//!
//! 1. [`M2mEncoder::start`] checks that the node is the encoder, that it takes the
//!    camera's format and size (at most 1920x1080), sets the formats, the frame
//!    rate and the codec controls of [`EncoderSettings`] (values adjusted to what
//!    the driver offers are explained in [`M2mEncoder::notes`]), allocates MMAP
//!    buffers on both queues, queues every capture buffer and starts streaming.
//! 2. For every camera frame, [`M2mEncoder::encode`] copies it into a free OUTPUT
//!    buffer in the encoder's layout and queues it. It never blocks the camera for
//!    long: when the encoder holds every buffer it waits a few milliseconds
//!    ([`M2mEncoder::set_input_wait`]), then drops the frame and counts it.
//! 3. [`M2mEncoder::poll_output`] hands out the coded frames that are ready (waiting
//!    up to a timeout) and gives their buffers back to the encoder. Call it after
//!    every `encode` (a zero timeout is fine): the encoder only returns raw buffers
//!    while it has free coded buffers to fill.
//! 4. [`M2mEncoder::force_keyframe`] asks for an IDR picture (a new viewer).
//! 5. [`M2mEncoder::finish`] drains: `V4L2_ENC_CMD_STOP`, the remaining coded frames
//!    until the buffer flagged `V4L2_BUF_FLAG_LAST` (bounded time), then stops both
//!    queues and frees the buffers. Dropping the encoder without `finish` stops
//!    and frees without draining.
//!
//! Nothing the driver returns can make this panic: unknown buffer indexes, a
//! `bytesused` beyond the buffer and error-flagged buffers are counted in
//! [`EncoderStats`] and skipped.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::codec_controls;
use super::raw_picture::{copy_frame, FrameLayout, LayoutError, RawFormat};
use crate::config::{spelled, BitrateMode, EncoderConfig, Profile};
use crate::v4l2::discover::H264_ENCODER_CARD;
use crate::v4l2::{
    fourcc_to_string, sys, ControlInfo, ControlKind, Error as V4l2Error, Fraction, FrameSize,
    ImageFormat, Node, PlaneLayout, Queue,
};

/// The largest picture the VideoCore H.264 encoder handles (its driver lets
/// formats up to 1920x1920 through, the encoder does not).
pub const MAX_WIDTH: u32 = 1920;
/// See [`MAX_WIDTH`].
pub const MAX_HEIGHT: u32 = 1080;
/// Raw frame buffers: enough that the camera rarely finds them all busy.
pub const OUTPUT_BUFFERS: u32 = 4;
/// Coded frame buffers.
pub const CAPTURE_BUFFERS: u32 = 6;
/// How long [`M2mEncoder::encode`] waits for a free raw buffer before dropping the frame.
pub const DEFAULT_INPUT_WAIT: Duration = Duration::from_millis(5);

/// What to encode, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSettings {
    /// Width in pixels (the camera's).
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The camera's raw format, e.g. `V4L2_PIX_FMT_YUYV`: the encoder takes it as it is.
    pub pixelformat: u32,
    /// Bytes per row of the camera's frames (0: tight rows). Its planes follow
    /// each other with no rows in between (chroma after `height` luma rows).
    pub input_bytesperline: u32,
    /// Frames per second (0 leaves the driver's 30).
    pub framerate: u32,
    /// Target bits per second.
    pub bitrate: u32,
    /// Variable or constant bitrate.
    pub bitrate_mode: BitrateMode,
    /// H.264 profile.
    pub profile: Profile,
    /// H.264 level as the configuration writes it ("4", "4.1"...).
    pub level: String,
    /// Frames from one IDR picture to the next.
    pub intra_period: u32,
}

impl EncoderSettings {
    /// Settings for the camera's negotiated format and the `[encoder]` configuration.
    pub fn new(
        width: u32,
        height: u32,
        pixelformat: u32,
        input_bytesperline: u32,
        framerate: u32,
        encoder: &EncoderConfig,
    ) -> Self {
        EncoderSettings {
            width,
            height,
            pixelformat,
            input_bytesperline,
            framerate,
            bitrate: encoder.bitrate,
            bitrate_mode: encoder.bitrate_mode,
            profile: encoder.profile,
            level: encoder.level.clone(),
            intra_period: encoder.intra_period,
        }
    }
}

/// One codec control to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlSetting {
    /// `V4L2_CID_*`.
    pub id: u32,
    /// What it is, for messages.
    pub name: &'static str,
    /// The value (a menu index for menus).
    pub value: i64,
}

/// The codec controls for `settings`, adjusted to what the encoder offers
/// (`available`, from `VIDIOC_QUERYCTRL`), and a note for every adjustment or
/// setting the encoder cannot take. Pure.
pub fn plan_controls(
    settings: &EncoderSettings,
    available: &[ControlInfo],
) -> (Vec<ControlSetting>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let wanted: [(u32, &'static str, String, Option<i64>); 6] = [
        (
            sys::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
            "bitrate mode",
            format!(
                "encoder.bitrate_mode = \"{}\"",
                spelled(&settings.bitrate_mode)
            ),
            Some(i64::from(codec_controls::bitrate_mode(
                settings.bitrate_mode,
            ))),
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_BITRATE,
            "bitrate",
            format!("encoder.bitrate = {}", settings.bitrate),
            Some(i64::from(settings.bitrate)),
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
            "H.264 profile",
            format!("encoder.profile = \"{}\"", spelled(&settings.profile)),
            Some(i64::from(codec_controls::profile(settings.profile))),
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
            "H.264 level",
            format!("encoder.level = \"{}\"", settings.level),
            codec_controls::level(&settings.level).map(i64::from),
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
            "keyframe interval",
            format!("encoder.intra_period = {}", settings.intra_period),
            Some(i64::from(settings.intra_period)),
        ),
        (
            sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
            "repeated SPS/PPS",
            "SPS/PPS before every keyframe".to_string(),
            Some(1),
        ),
    ];
    for (id, name, setting, value) in wanted {
        let Some(value) = value else {
            notes.push(format!(
                "{setting} is not an H.264 level: leaving the encoder's"
            ));
            continue;
        };
        let Some(info) = available.iter().find(|c| c.id == id) else {
            notes.push(format!(
                "the encoder has no {name} control: {setting} is left to the driver"
            ));
            continue;
        };
        if !info.is_writable() {
            notes.push(format!(
                "the encoder's {name} control cannot be set now: {setting} is left to the driver"
            ));
            continue;
        }
        let value = match info.kind {
            ControlKind::Menu | ControlKind::IntegerMenu => {
                if info.menu.iter().any(|m| i64::from(m.index) == value) {
                    value
                } else if id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL {
                    // The highest level the encoder offers below the one asked for.
                    match info
                        .menu
                        .iter()
                        .filter(|m| i64::from(m.index) < value)
                        .max_by_key(|m| m.index)
                    {
                        Some(lower) => {
                            notes.push(format!(
                                "{setting} is above what the Pi's encoder takes: using {}",
                                lower.name
                            ));
                            i64::from(lower.index)
                        }
                        None => {
                            notes.push(format!(
                                "{setting} is not offered by the encoder: leaving the encoder's"
                            ));
                            continue;
                        }
                    }
                } else {
                    notes.push(format!(
                        "{setting} is not offered by the encoder: leaving the encoder's"
                    ));
                    continue;
                }
            }
            ControlKind::Integer | ControlKind::Integer64 | ControlKind::Boolean => {
                let fitted = info.fit(i128::from(value));
                if fitted != value {
                    notes.push(format!(
                        "{setting}: the encoder takes {} to {} in steps of {}; using {fitted}",
                        info.minimum, info.maximum, info.step
                    ));
                }
                fitted
            }
            ControlKind::Button | ControlKind::Other(_) => continue,
        };
        out.push(ControlSetting { id, name, value });
    }
    (out, notes)
}

/// A queue, named for messages.
fn queue_name(queue: Queue) -> &'static str {
    match queue {
        Queue::OutputMplane => "OUTPUT (raw frames in)",
        Queue::CaptureMplane => "CAPTURE (H.264 out)",
        Queue::Output => "OUTPUT",
        Queue::Capture => "CAPTURE",
    }
}

/// What went wrong; every variant names the encoder node and the step.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The node is some other device.
    #[error("{} is {card:?} (driver {driver:?}), not the Pi's H.264 encoder ({H264_ENCODER_CARD:?})", path.display())]
    NotTheEncoder {
        /// The node.
        path: PathBuf,
        /// Its card name.
        card: String,
        /// Its driver name.
        driver: String,
    },
    /// The node lacks the multi-planar memory-to-memory streaming capabilities.
    #[error("{} is the encoder but lacks multi-planar memory-to-memory streaming (capabilities {caps:#010x})", path.display())]
    MissingCapabilities {
        /// The node.
        path: PathBuf,
        /// Its capabilities.
        caps: u32,
    },
    /// The camera's format is not one this encoder path copies.
    #[error("{}: the camera's {} frames cannot be fed to the hardware encoder (it takes YUYV, UYVY, NV12, NV21, YU12 or YV12 from a camera)", path.display(), fourcc_to_string(*fourcc))]
    UnsupportedInput {
        /// The node.
        path: PathBuf,
        /// The camera's format.
        fourcc: u32,
    },
    /// Larger than the encoder can encode.
    #[error("the Pi's hardware encoder handles at most {MAX_WIDTH}x{MAX_HEIGHT}; camera.width x camera.height = {width}x{height}")]
    TooLarge {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// A size the encoder does not list.
    #[error("{} encodes {} at {offered}; camera.width x camera.height = {width}x{height} is not one of them", path.display(), fourcc_to_string(*fourcc))]
    SizeNotOffered {
        /// The node.
        path: PathBuf,
        /// The format.
        fourcc: u32,
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
        /// The sizes it lists, in words.
        offered: String,
    },
    /// A queue does not list a format.
    #[error("{} does not offer {} on its {} queue (it offers {offered})", path.display(), fourcc_to_string(*fourcc), queue_name(*queue))]
    FormatNotOffered {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// The format asked for.
        fourcc: u32,
        /// What it lists.
        offered: String,
    },
    /// The driver answered S_FMT with a different format or size.
    #[error("{}: asked {} {}x{} on the {} queue, the driver chose {} {}x{}", path.display(), fourcc_to_string(asked.pixelformat), asked.width, asked.height, queue_name(*queue), fourcc_to_string(got.pixelformat), got.width, got.height)]
    FormatChanged {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// What was asked.
        asked: Box<ImageFormat>,
        /// What the driver chose.
        got: Box<ImageFormat>,
    },
    /// The driver's answers about buffer layout do not add up, or a frame does not fit.
    #[error("{}: {what}: {source}", path.display())]
    Layout {
        /// The node.
        path: PathBuf,
        /// Whose layout.
        what: &'static str,
        /// What is wrong.
        source: LayoutError,
    },
    /// A control could not be set.
    #[error("{}: setting the {name} control to {value}: {source}", path.display())]
    Control {
        /// The node.
        path: PathBuf,
        /// The control.
        name: &'static str,
        /// The value.
        value: i64,
        /// The driver's answer.
        source: V4l2Error,
    },
    /// A step failed in the driver. `step` says which, in words.
    #[error("{}: {step}: {source}", path.display())]
    Driver {
        /// The node.
        path: PathBuf,
        /// What was being done, e.g. "setting the raw input format (VIDIOC_S_FMT)".
        step: String,
        /// The driver's answer.
        source: V4l2Error,
    },
    /// The driver allocated no buffers, or buffers too small for the frames.
    #[error("{}: {queue} buffers: {problem}", path.display(), queue = queue_name(*queue))]
    Buffers {
        /// The node.
        path: PathBuf,
        /// The queue.
        queue: Queue,
        /// What is wrong.
        problem: String,
    },
    /// `poll` reported an error and no buffer could be dequeued.
    #[error("{}: the encoder reported an error (POLLERR) and has no buffer to return; the device may be gone", path.display())]
    PollError {
        /// The node.
        path: PathBuf,
    },
    /// The last coded frame did not come in time after the stop command.
    #[error("{}: the encoder did not return its last frame within {waited:?} after V4L2_ENC_CMD_STOP", path.display())]
    DrainTimeout {
        /// The node.
        path: PathBuf,
        /// How long it waited.
        waited: Duration,
    },
}

/// Why a camera frame was not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Every raw buffer was still with the encoder.
    EncoderBusy,
    /// The camera's frame was shorter than its format says.
    ShortFrame {
        /// Its length.
        len: usize,
        /// The length its format needs.
        needed: usize,
    },
}

/// What [`M2mEncoder::encode`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Queued to the encoder.
    Queued,
    /// Not encoded (counted in [`EncoderStats`]).
    Dropped(DropReason),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EncoderStats {
    /// Frames given to [`M2mEncoder::encode`].
    pub frames_in: u64,
    /// Frames queued to the encoder.
    pub frames_queued: u64,
    /// Frames dropped because the encoder held every raw buffer.
    pub dropped_busy: u64,
    /// Frames dropped because they were shorter than their format.
    pub dropped_short: u64,
    /// Coded frames handed out.
    pub frames_out: u64,
    /// Of which flagged as keyframes.
    pub keyframes: u64,
    /// Coded bytes handed out.
    pub bytes_out: u64,
    /// Buffers the driver flagged `V4L2_BUF_FLAG_ERROR` (skipped).
    pub error_buffers: u64,
    /// Buffers with an unknown index or an impossible `bytesused` (skipped).
    pub bogus_buffers: u64,
}

/// The running encoder. See the module documentation.
pub struct M2mEncoder {
    node: Box<dyn Node>,
    path: PathBuf,
    input: FrameLayout,
    encoder_layout: FrameLayout,
    output_bytesused: u32,
    /// Per output buffer: with the driver.
    output_busy: Vec<bool>,
    /// Per capture buffer: with the driver.
    capture_queued: Vec<bool>,
    input_wait: Duration,
    last_seen: bool,
    streaming: bool,
    stats: EncoderStats,
    notes: Vec<String>,
}

impl std::fmt::Debug for M2mEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("M2mEncoder")
            .field("path", &self.path)
            .field("input", &self.input)
            .field("encoder_layout", &self.encoder_layout)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl M2mEncoder {
    /// Checks, configures and starts the encoder on `node`. See the module
    /// documentation for the steps; every refusal says why in plain words.
    pub fn start(
        mut node: Box<dyn Node>,
        settings: EncoderSettings,
    ) -> Result<M2mEncoder, EncoderError> {
        let path = node.path().to_path_buf();
        let driver_err = |step: &str| {
            let path = path.clone();
            let step = step.to_string();
            move |source| EncoderError::Driver { path, step, source }
        };

        // What the node is.
        let capability = node.capability().clone();
        // The encoder is known by its card name: its number differs between boards.
        if capability.card != H264_ENCODER_CARD {
            return Err(EncoderError::NotTheEncoder {
                path,
                card: capability.card,
                driver: capability.driver,
            });
        }
        let needed = sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING;
        if !capability.has(needed) {
            return Err(EncoderError::MissingCapabilities {
                path,
                caps: capability.node_caps(),
            });
        }

        // What it takes.
        let (width, height, pixelformat) = (settings.width, settings.height, settings.pixelformat);
        if RawFormat::from_fourcc(pixelformat).is_none() {
            return Err(EncoderError::UnsupportedInput {
                path,
                fourcc: pixelformat,
            });
        }
        if width > MAX_WIDTH || height > MAX_HEIGHT {
            return Err(EncoderError::TooLarge { width, height });
        }
        for (queue, fourcc, step) in [
            (
                Queue::OutputMplane,
                pixelformat,
                "listing the raw input formats (VIDIOC_ENUM_FMT)",
            ),
            (
                Queue::CaptureMplane,
                sys::V4L2_PIX_FMT_H264,
                "listing the coded formats (VIDIOC_ENUM_FMT)",
            ),
        ] {
            let offered = node.formats(queue).map_err(driver_err(step))?;
            if !offered.iter().any(|f| f.pixelformat == fourcc) {
                return Err(EncoderError::FormatNotOffered {
                    path,
                    queue,
                    fourcc,
                    offered: list_formats(offered.iter().map(|f| f.pixelformat)),
                });
            }
        }
        match node.frame_sizes(pixelformat) {
            Ok(sizes) if !sizes.is_empty() => {
                if !sizes.iter().any(|s| s.contains(width, height)) {
                    return Err(EncoderError::SizeNotOffered {
                        path,
                        fourcc: pixelformat,
                        width,
                        height,
                        offered: describe_sizes(&sizes),
                    });
                }
            }
            Ok(_) | Err(V4l2Error::Unsupported { .. }) => {}
            Err(e) => {
                return Err(driver_err(
                    "listing the frame sizes (VIDIOC_ENUM_FRAMESIZES)",
                )(e))
            }
        }

        // The camera's layout.
        let input = if settings.input_bytesperline == 0 {
            FrameLayout::tight(pixelformat, width, height)
        } else {
            FrameLayout::new(
                pixelformat,
                width,
                height,
                settings.input_bytesperline,
                height,
            )
        }
        .map_err(|source| EncoderError::Layout {
            path: path.clone(),
            what: "the camera's frames",
            source,
        })?;

        // Formats: the driver aligns the raw rows; its answer is the layout to fill.
        let asked = ImageFormat {
            width,
            height,
            pixelformat,
            field: sys::V4L2_FIELD_NONE,
            colorspace: 0,
            planes: vec![PlaneLayout {
                bytesperline: 0,
                sizeimage: 0,
            }],
        };
        let got = node
            .set_format(Queue::OutputMplane, &asked)
            .map_err(driver_err("setting the raw input format (VIDIOC_S_FMT)"))?;
        check_same(&path, Queue::OutputMplane, &asked, &got)?;
        let plane = single_plane(&path, Queue::OutputMplane, &got)?;
        let encoder_layout = FrameLayout::from_driver(
            pixelformat,
            width,
            height,
            plane.bytesperline,
            plane.sizeimage,
        )
        .map_err(|source| EncoderError::Layout {
            path: path.clone(),
            what: "the encoder's raw input format",
            source,
        })?;
        let coded_asked = ImageFormat {
            pixelformat: sys::V4L2_PIX_FMT_H264,
            planes: vec![PlaneLayout {
                bytesperline: 0,
                sizeimage: coded_buffer_size(width, height),
            }],
            ..asked.clone()
        };
        let coded = node
            .set_format(Queue::CaptureMplane, &coded_asked)
            .map_err(driver_err("setting the H.264 output format (VIDIOC_S_FMT)"))?;
        check_same(&path, Queue::CaptureMplane, &coded_asked, &coded)?;
        let coded_plane = single_plane(&path, Queue::CaptureMplane, &coded)?;
        if coded_plane.sizeimage == 0 {
            return Err(EncoderError::Buffers {
                path,
                queue: Queue::CaptureMplane,
                problem: "the driver gives coded buffers of 0 bytes".into(),
            });
        }

        let mut notes = Vec::new();
        // Frame rate: on the OUTPUT queue (the driver passes it to the encoder).
        if settings.framerate > 0 {
            let interval = Fraction {
                numerator: 1,
                denominator: settings.framerate,
            };
            match node
                .set_frame_interval(Queue::OutputMplane, interval)
                .map_err(driver_err("setting the frame rate (VIDIOC_S_PARM)"))?
            {
                Some(_) => {}
                None => notes.push(
                    "the encoder does not take a frame rate: its rate control assumes 30 fps"
                        .into(),
                ),
            }
        }

        // Controls.
        let available = match node.controls() {
            Ok(list) => list,
            Err(V4l2Error::Unsupported { .. }) => Vec::new(),
            Err(e) => return Err(driver_err("listing the controls (VIDIOC_QUERYCTRL)")(e)),
        };
        let (controls, control_notes) = plan_controls(&settings, &available);
        notes.extend(control_notes);
        for control in controls {
            // Values were checked against the ranges above; a refusal now costs
            // that setting (noted), not the video, unless the device is gone.
            if let Err(source) = node.set_control(control.id, control.value) {
                if matches!(source.errno(), Some(libc::ENODEV | libc::EIO | libc::ENXIO)) {
                    return Err(EncoderError::Control {
                        path: path.clone(),
                        name: control.name,
                        value: control.value,
                        source,
                    });
                }
                notes.push(format!(
                    "the encoder refused {} = {}: {source}; left as it was",
                    control.name, control.value
                ));
            }
        }

        // Buffers.
        let outputs = node
            .request_buffers(Queue::OutputMplane, OUTPUT_BUFFERS)
            .map_err(driver_err("allocating raw frame buffers (VIDIOC_REQBUFS)"))?;
        let captures = node
            .request_buffers(Queue::CaptureMplane, CAPTURE_BUFFERS)
            .map_err(driver_err(
                "allocating coded frame buffers (VIDIOC_REQBUFS)",
            ))?;
        for (queue, count) in [
            (Queue::OutputMplane, outputs),
            (Queue::CaptureMplane, captures),
        ] {
            if count == 0 {
                return Err(EncoderError::Buffers {
                    path,
                    queue,
                    problem: "the driver allocated none".into(),
                });
            }
        }
        for index in 0..outputs {
            let len = node
                .buffer(Queue::OutputMplane, index, 0)
                .map(<[u8]>::len)
                .unwrap_or(0);
            if len < encoder_layout.min_len() {
                return Err(EncoderError::Buffers {
                    path,
                    queue: Queue::OutputMplane,
                    problem: format!(
                        "buffer {index} has {len} bytes, a {}x{} frame needs {}",
                        width,
                        height,
                        encoder_layout.min_len()
                    ),
                });
            }
        }
        for index in 0..captures {
            node.queue_buffer(Queue::CaptureMplane, index, &[], Duration::ZERO)
                .map_err(driver_err("queueing a coded frame buffer (VIDIOC_QBUF)"))?;
        }
        node.stream_on(Queue::OutputMplane)
            .map_err(driver_err("starting the raw input queue (VIDIOC_STREAMON)"))?;
        node.stream_on(Queue::CaptureMplane).map_err(driver_err(
            "starting the H.264 output queue (VIDIOC_STREAMON)",
        ))?;

        let output_bytesused = plane.sizeimage;
        Ok(M2mEncoder {
            node,
            path,
            input,
            encoder_layout,
            output_bytesused,
            output_busy: vec![false; outputs as usize],
            capture_queued: vec![true; captures as usize],
            input_wait: DEFAULT_INPUT_WAIT,
            last_seen: false,
            streaming: true,
            stats: EncoderStats::default(),
            notes,
        })
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Settings the encoder took differently than configured, in plain words.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The counters.
    pub fn stats(&self) -> EncoderStats {
        self.stats
    }

    /// The layout [`M2mEncoder::encode`] expects camera frames in.
    pub fn input_layout(&self) -> &FrameLayout {
        &self.input
    }

    /// The layout of the encoder's raw buffers (rows aligned by the driver).
    pub fn encoder_layout(&self) -> &FrameLayout {
        &self.encoder_layout
    }

    /// How long [`M2mEncoder::encode`] waits for a free raw buffer (default
    /// [`DEFAULT_INPUT_WAIT`]).
    pub fn set_input_wait(&mut self, wait: Duration) {
        self.input_wait = wait;
    }

    /// Copies one camera frame (in [`M2mEncoder::input_layout`]) into a free raw
    /// buffer and queues it with `timestamp`, which the coded frame carries. Never
    /// blocks longer than the input wait: when the encoder holds every buffer, or
    /// the frame is short, the frame is dropped and counted.
    pub fn encode(&mut self, frame: &[u8], timestamp: Duration) -> Result<Submitted, EncoderError> {
        self.stats.frames_in += 1;
        if frame.len() < self.input.min_len() {
            self.stats.dropped_short += 1;
            return Ok(Submitted::Dropped(DropReason::ShortFrame {
                len: frame.len(),
                needed: self.input.min_len(),
            }));
        }
        self.reclaim_outputs()?;
        let mut free = self.output_busy.iter().position(|busy| !busy);
        if free.is_none() {
            let deadline = deadline_after(Instant::now(), self.input_wait);
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let ready = self.node.wait(deadline - now).map_err(|source| {
                    self.driver_error("waiting for a free raw frame buffer (poll)", source)
                })?;
                self.reclaim_outputs()?;
                free = self.output_busy.iter().position(|busy| !busy);
                if free.is_some() || ready.error {
                    break;
                }
                if !ready.output {
                    // Woken for coded frames (handed out by poll_output, not here):
                    // poll would return at once again, so pause instead of spinning.
                    let left = deadline.saturating_duration_since(Instant::now());
                    std::thread::sleep(left.min(Duration::from_millis(1)));
                }
            }
        }
        let Some(index) = free else {
            self.stats.dropped_busy += 1;
            return Ok(Submitted::Dropped(DropReason::EncoderBusy));
        };
        let index = index as u32;
        let Some(buffer) = self.node.buffer_mut(Queue::OutputMplane, index, 0) else {
            return Err(EncoderError::Buffers {
                path: self.path.clone(),
                queue: Queue::OutputMplane,
                problem: format!("buffer {index} has no mapping"),
            });
        };
        let bytesused = self
            .output_bytesused
            .min(u32::try_from(buffer.len()).unwrap_or(u32::MAX));
        copy_frame(&self.input, frame, &self.encoder_layout, buffer).map_err(|source| {
            EncoderError::Layout {
                path: self.path.clone(),
                what: "copying a camera frame into a raw frame buffer",
                source,
            }
        })?;
        self.node
            .queue_buffer(Queue::OutputMplane, index, &[bytesused], timestamp)
            .map_err(|source| self.driver_error("queueing a raw frame (VIDIOC_QBUF)", source))?;
        if let Some(busy) = self.output_busy.get_mut(index as usize) {
            *busy = true;
        }
        self.stats.frames_queued += 1;
        Ok(Submitted::Queued)
    }

    /// Hands every coded frame that is ready to `on_frame` (bytes, `V4L2_BUF_FLAG_*`
    /// flags, the timestamp given to [`M2mEncoder::encode`]) and gives the buffers
    /// back to the encoder. Waits up to `timeout` when none is ready yet. Returns
    /// how many frames were handed out.
    pub fn poll_output(
        &mut self,
        timeout: Duration,
        mut on_frame: impl FnMut(&[u8], u32, Duration),
    ) -> Result<usize, EncoderError> {
        let mut count = self.drain_capture(&mut on_frame)?;
        if count == 0 && !timeout.is_zero() && !self.last_seen {
            let ready = self
                .node
                .wait(timeout)
                .map_err(|source| self.driver_error("waiting for coded frames (poll)", source))?;
            count += self.drain_capture(&mut on_frame)?;
            if count == 0 && ready.error {
                return Err(EncoderError::PollError {
                    path: self.path.clone(),
                });
            }
        }
        self.reclaim_outputs()?;
        Ok(count)
    }

    /// Asks for the next coded frame to be an IDR picture
    /// (`V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`).
    pub fn force_keyframe(&mut self) -> Result<(), EncoderError> {
        self.node
            .set_control(sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME, 1)
            .map_err(|source| EncoderError::Control {
                path: self.path.clone(),
                name: "force keyframe",
                value: 1,
                source,
            })
    }

    /// Drains and stops: `V4L2_ENC_CMD_STOP`, then every remaining coded frame to
    /// `on_frame` until the one flagged `V4L2_BUF_FLAG_LAST`, waiting at most
    /// `timeout`; then both queues are stopped and the buffers freed (also when
    /// draining failed). Returns the final counters.
    pub fn finish(
        mut self,
        timeout: Duration,
        mut on_frame: impl FnMut(&[u8], u32, Duration),
    ) -> Result<EncoderStats, EncoderError> {
        let drained = self.drain(timeout, &mut on_frame);
        let stopped = self.shutdown();
        drained.and(stopped).map(|()| self.stats)
    }

    fn drain(
        &mut self,
        timeout: Duration,
        on_frame: &mut impl FnMut(&[u8], u32, Duration),
    ) -> Result<(), EncoderError> {
        if self.last_seen {
            return Ok(());
        }
        self.node
            .encoder_command(sys::V4L2_ENC_CMD_STOP)
            .map_err(|source| {
                self.driver_error(
                    "asking the encoder to drain (VIDIOC_ENCODER_CMD STOP)",
                    source,
                )
            })?;
        let start = Instant::now();
        let deadline = deadline_after(start, timeout);
        loop {
            self.drain_capture(on_frame)?;
            if self.last_seen {
                return Ok(());
            }
            self.reclaim_outputs()?;
            let now = Instant::now();
            if now >= deadline {
                return Err(EncoderError::DrainTimeout {
                    path: self.path.clone(),
                    waited: now - start,
                });
            }
            let ready = self
                .node
                .wait((deadline - now).min(Duration::from_millis(50)))
                .map_err(|source| self.driver_error("waiting for the last frame (poll)", source))?;
            if ready.error {
                self.drain_capture(on_frame)?;
                if !self.last_seen {
                    return Err(EncoderError::PollError {
                        path: self.path.clone(),
                    });
                }
            }
        }
    }

    /// STREAMOFF both queues and free the buffers; the first error is returned,
    /// every step is tried.
    fn shutdown(&mut self) -> Result<(), EncoderError> {
        if !self.streaming {
            return Ok(());
        }
        self.streaming = false;
        let mut first = Ok(());
        for (queue, step_off, step_free) in [
            (
                Queue::OutputMplane,
                "stopping the raw input queue (VIDIOC_STREAMOFF)",
                "freeing the raw frame buffers (VIDIOC_REQBUFS 0)",
            ),
            (
                Queue::CaptureMplane,
                "stopping the H.264 output queue (VIDIOC_STREAMOFF)",
                "freeing the coded frame buffers (VIDIOC_REQBUFS 0)",
            ),
        ] {
            if let Err(source) = self.node.stream_off(queue) {
                if first.is_ok() {
                    first = Err(self.driver_error(step_off, source));
                }
            }
            if let Err(source) = self.node.request_buffers(queue, 0) {
                if first.is_ok() {
                    first = Err(self.driver_error(step_free, source));
                }
            }
        }
        self.output_busy.iter_mut().for_each(|b| *b = false);
        self.capture_queued.iter_mut().for_each(|q| *q = false);
        first
    }

    fn driver_error(&self, step: &str, source: V4l2Error) -> EncoderError {
        EncoderError::Driver {
            path: self.path.clone(),
            step: step.to_string(),
            source,
        }
    }

    /// Takes back every raw buffer the encoder has finished with.
    fn reclaim_outputs(&mut self) -> Result<(), EncoderError> {
        // Bounded: a driver cannot return more buffers than exist, plus a few bogus ones.
        for _ in 0..self.output_busy.len() + 4 {
            let done = self
                .node
                .dequeue_buffer(Queue::OutputMplane)
                .map_err(|source| {
                    self.driver_error("taking back a raw frame buffer (VIDIOC_DQBUF)", source)
                })?;
            let Some(done) = done else {
                break;
            };
            match self.output_busy.get_mut(done.index as usize) {
                Some(busy) if *busy => *busy = false,
                _ => self.stats.bogus_buffers += 1,
            }
        }
        Ok(())
    }

    /// Hands out every coded frame that is ready, without waiting.
    fn drain_capture(
        &mut self,
        on_frame: &mut impl FnMut(&[u8], u32, Duration),
    ) -> Result<usize, EncoderError> {
        let mut count = 0;
        for _ in 0..self.capture_queued.len() + 4 {
            if self.last_seen {
                break;
            }
            let done = match self.node.dequeue_buffer(Queue::CaptureMplane) {
                Ok(Some(done)) => done,
                Ok(None) => break,
                Err(source) => {
                    return Err(self.driver_error("taking a coded frame (VIDIOC_DQBUF)", source))
                }
            };
            let index = done.index;
            match self.capture_queued.get_mut(index as usize) {
                Some(queued) if *queued => *queued = false,
                _ => {
                    self.stats.bogus_buffers += 1;
                    continue;
                }
            }
            let last = done.flags & sys::V4L2_BUF_FLAG_LAST != 0;
            if done.flags & sys::V4L2_BUF_FLAG_ERROR != 0 {
                self.stats.error_buffers += 1;
            } else if let Some(buffer) = self.node.buffer(Queue::CaptureMplane, index, 0) {
                match done.planes.first().and_then(|p| p.payload(buffer.len())) {
                    Some(range) if range.is_empty() => {}
                    Some(range) => {
                        if let Some(bytes) = buffer.get(range) {
                            on_frame(bytes, done.flags, done.timestamp);
                            self.stats.frames_out += 1;
                            self.stats.bytes_out += bytes.len() as u64;
                            if done.flags & sys::V4L2_BUF_FLAG_KEYFRAME != 0 {
                                self.stats.keyframes += 1;
                            }
                            count += 1;
                        }
                    }
                    None => self.stats.bogus_buffers += 1,
                }
            } else {
                self.stats.bogus_buffers += 1;
            }
            if last {
                self.last_seen = true;
                break;
            }
            self.node
                .queue_buffer(Queue::CaptureMplane, index, &[], Duration::ZERO)
                .map_err(|source| {
                    self.driver_error("giving a coded frame buffer back (VIDIOC_QBUF)", source)
                })?;
            if let Some(queued) = self.capture_queued.get_mut(index as usize) {
                *queued = true;
            }
        }
        Ok(count)
    }
}

impl Drop for M2mEncoder {
    fn drop(&mut self) {
        // Without finish(): stop and free without draining; nothing to report to.
        let _ = self.shutdown();
    }
}

/// `start + wait`, or a day later when that does not fit in an `Instant`.
fn deadline_after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

/// The coded buffer size to ask for: half a byte per pixel (an IDR picture at a
/// high bitrate can exceed the driver's 768 KiB default at 1080p); the driver
/// raises it to its default when smaller.
fn coded_buffer_size(width: u32, height: u32) -> u32 {
    u32::try_from(u64::from(width) * u64::from(height) / 2).unwrap_or(u32::MAX)
}

fn check_same(
    path: &Path,
    queue: Queue,
    asked: &ImageFormat,
    got: &ImageFormat,
) -> Result<(), EncoderError> {
    if got.pixelformat != asked.pixelformat
        || got.width != asked.width
        || got.height != asked.height
    {
        return Err(EncoderError::FormatChanged {
            path: path.to_path_buf(),
            queue,
            asked: Box::new(asked.clone()),
            got: Box::new(got.clone()),
        });
    }
    Ok(())
}

fn single_plane(path: &Path, queue: Queue, got: &ImageFormat) -> Result<PlaneLayout, EncoderError> {
    match got.planes.as_slice() {
        [plane] => Ok(*plane),
        planes => Err(EncoderError::Buffers {
            path: path.to_path_buf(),
            queue,
            problem: format!(
                "the driver describes {} planes per buffer; this encoder path handles one",
                planes.len()
            ),
        }),
    }
}

fn describe_sizes(sizes: &[FrameSize]) -> String {
    sizes
        .iter()
        .map(|s| match *s {
            FrameSize::Discrete { width, height } => format!("{width}x{height}"),
            FrameSize::Stepwise {
                min_width,
                max_width,
                step_width,
                min_height,
                max_height,
                step_height,
            } => format!(
                "{min_width}x{min_height} to {max_width}x{max_height} in steps of {step_width}x{step_height}"
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_formats(formats: impl Iterator<Item = u32>) -> String {
    let names: Vec<String> = formats.map(fourcc_to_string).collect();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::fake::encoder::{sample_frames, FakeEncoder, FakeHandle};

    fn settings(pixelformat: u32, width: u32, height: u32) -> EncoderSettings {
        EncoderSettings::new(width, height, pixelformat, 0, 25, &EncoderConfig::default())
    }

    fn start(settings: EncoderSettings) -> (Result<M2mEncoder, EncoderError>, FakeHandle) {
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        (M2mEncoder::start(Box::new(fake), settings), handle)
    }

    /// A camera frame in the tight layout where every sample is a function of
    /// its position (plane, row, byte), so misplaced bytes show.
    fn camera_frame(layout: &FrameLayout) -> Vec<u8> {
        let mut frame = vec![0u8; layout.full_len()];
        for (p, plane) in layout.planes().iter().enumerate() {
            for row in 0..plane.rows {
                for x in 0..plane.row_bytes {
                    frame[plane.offset + row * plane.stride + x] =
                        (p * 71 + row * 31 + x * 7 + 1) as u8;
                }
            }
        }
        frame
    }

    #[test]
    fn formats_controls_and_rate_are_set_as_configured() {
        let mut s = settings(sys::V4L2_PIX_FMT_YUYV, 640, 480);
        s.bitrate = 2_000_000;
        s.bitrate_mode = BitrateMode::Constant;
        s.profile = Profile::Main;
        s.level = "4.1".into();
        s.intra_period = 50;
        let (encoder, handle) = start(s);
        let encoder = encoder.unwrap();
        assert!(encoder.notes().is_empty(), "{:?}", encoder.notes());
        let record = handle.record();
        let out = record.format(Queue::OutputMplane).unwrap();
        assert_eq!(out.pixelformat, sys::V4L2_PIX_FMT_YUYV);
        assert_eq!((out.width, out.height), (640, 480));
        let cap = record.format(Queue::CaptureMplane).unwrap();
        assert_eq!(cap.pixelformat, sys::V4L2_PIX_FMT_H264);
        assert!(cap.planes[0].sizeimage >= 512 << 10);
        assert_eq!(
            record.frame_interval,
            Some(Fraction {
                numerator: 1,
                denominator: 25
            })
        );
        let expect = [
            (sys::V4L2_CID_MPEG_VIDEO_BITRATE, 2_000_000),
            (
                sys::V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
                i64::from(sys::V4L2_MPEG_VIDEO_BITRATE_MODE_CBR),
            ),
            (
                sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                i64::from(sys::V4L2_MPEG_VIDEO_H264_PROFILE_MAIN),
            ),
            (
                sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                i64::from(sys::V4L2_MPEG_VIDEO_H264_LEVEL_4_1),
            ),
            (sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD, 50),
            (sys::V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1),
        ];
        for (id, value) in expect {
            assert_eq!(record.control(id), Some(value), "control {id:#x}");
        }
        assert_eq!(
            record.reqbufs,
            vec![
                (Queue::OutputMplane, OUTPUT_BUFFERS),
                (Queue::CaptureMplane, CAPTURE_BUFFERS)
            ]
        );
        assert_eq!(
            record.streaming,
            vec![(Queue::OutputMplane, true), (Queue::CaptureMplane, true)]
        );
        // The driver's 64-byte alignment of 640x480 YUYV is already 1280.
        assert_eq!(encoder.encoder_layout().bytesperline(), 1280);
    }

    #[test]
    fn values_the_driver_cannot_take_are_adjusted_and_explained() {
        let mut s = settings(sys::V4L2_PIX_FMT_NV12, 640, 480);
        s.bitrate = 64_000; // the driver's step is 25000
        s.level = "5.2".into(); // the menu ends at 5.1
        let (encoder, handle) = start(s);
        let encoder = encoder.unwrap();
        let record = handle.record();
        assert_eq!(
            record.control(sys::V4L2_CID_MPEG_VIDEO_BITRATE),
            Some(75_000)
        );
        assert_eq!(
            record.control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL),
            Some(15) // 5.1
        );
        let notes = encoder.notes().join("\n");
        assert!(notes.contains("encoder.bitrate = 64000"), "{notes}");
        assert!(notes.contains("steps of 25000; using 75000"), "{notes}");
        assert!(notes.contains("encoder.level = \"5.2\""), "{notes}");
        assert!(notes.contains("using 5.1"), "{notes}");

        let mut s = settings(sys::V4L2_PIX_FMT_NV12, 640, 480);
        s.level = "9".into();
        let (controls, notes) =
            plan_controls(&s, &crate::v4l2::fake::encoder::description().controls);
        assert!(!controls
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL));
        assert!(notes[0].contains("not an H.264 level"), "{notes:?}");
        // A profile the menu lacks is left to the driver, and said so.
        let mut controls_without_main = crate::v4l2::fake::encoder::description().controls;
        for c in &mut controls_without_main {
            c.menu.retain(|m| m.name != "Main");
        }
        let mut main = settings(sys::V4L2_PIX_FMT_NV12, 640, 480);
        main.profile = Profile::Main;
        let (controls, notes) = plan_controls(&main, &controls_without_main);
        assert!(!controls
            .iter()
            .any(|c| c.id == sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE));
        assert_eq!(
            notes,
            vec!["encoder.profile = \"main\" is not offered by the encoder: leaving the encoder's"]
        );
        // A driver without the controls: everything left to it, and said so.
        let (controls, notes) = plan_controls(&s, &[]);
        assert!(controls.is_empty());
        assert_eq!(notes.len(), 6, "{notes:?}");
    }

    #[test]
    fn sizes_beyond_the_encoder_are_refused_in_plain_words() {
        let (err, _) = start(settings(sys::V4L2_PIX_FMT_YUYV, 2592, 1944));
        assert_eq!(
            err.unwrap_err().to_string(),
            "the Pi's hardware encoder handles at most 1920x1080; \
             camera.width x camera.height = 2592x1944"
        );
        let (err, _) = start(settings(sys::V4L2_PIX_FMT_YUYV, 1080, 1920));
        assert!(matches!(err.unwrap_err(), EncoderError::TooLarge { .. }));
        let (err, _) = start(settings(sys::V4L2_PIX_FMT_YUYV, 641, 480));
        assert_eq!(
            err.unwrap_err().to_string(),
            "/dev/video23 encodes YUYV at 32x32 to 1920x1920 in steps of 2x2; \
             camera.width x camera.height = 641x480 is not one of them"
        );
        let (err, _) = start(settings(sys::V4L2_PIX_FMT_YUYV, 16, 16));
        assert!(matches!(
            err.unwrap_err(),
            EncoderError::SizeNotOffered { .. }
        ));
        let (err, _) = start(settings(sys::V4L2_PIX_FMT_MJPEG, 640, 480));
        let text = err.unwrap_err().to_string();
        assert!(text.contains("MJPG frames cannot be fed"), "{text}");
    }

    #[test]
    fn other_nodes_are_not_mistaken_for_the_encoder() {
        let mut description = crate::v4l2::fake::encoder::description();
        description.capability.card = "bcm2835-codec-decode".into();
        let (fake, _) = FakeEncoder::with_description("/dev/video10", description);
        let err = M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_YUYV, 640, 480))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/video10 is \"bcm2835-codec-decode\" (driver \"bcm2835-codec\"), \
             not the Pi's H.264 encoder (\"bcm2835-codec-encode\")"
        );
        // A firmware whose encoder does not take the camera's format.
        let mut description = crate::v4l2::fake::encoder::description();
        for queue in &mut description.queues {
            queue.formats.retain(|f| {
                f.format.pixelformat == sys::V4L2_PIX_FMT_H264
                    || f.format.pixelformat == sys::V4L2_PIX_FMT_NV12
            });
        }
        let (fake, _) = FakeEncoder::with_description("/dev/video11", description);
        let err = M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_YUYV, 640, 480))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/video11 does not offer YUYV on its OUTPUT (raw frames in) queue (it offers NV12)"
        );
    }

    #[test]
    fn pixels_land_right_after_stride_conversion_for_every_format() {
        // 1000 pixels wide: the driver pads rows to 1024 (NV12, YU12...) or 2048 (YUYV).
        for format in RawFormat::ALL {
            let (width, height) = (1000, 250);
            let (encoder, handle) = start(settings(format.fourcc(), width, height));
            let mut encoder = encoder.unwrap();
            let input = encoder.input_layout().clone();
            let target = encoder.encoder_layout().clone();
            assert!(
                target.bytesperline() > input.bytesperline(),
                "{format:?}: the driver aligns rows"
            );
            let frame = camera_frame(&input);
            let ts = Duration::from_millis(40);
            assert_eq!(encoder.encode(&frame, ts).unwrap(), Submitted::Queued);
            let received = handle.record().received;
            assert_eq!(received.len(), 1, "{format:?}");
            let got = &received[0];
            assert_eq!(got.timestamp, ts);
            assert_eq!(got.bytesused as usize, target.full_len(), "{format:?}");
            // Every visible byte of every plane, read back in the driver's layout.
            for (p, (src, dst)) in input.planes().iter().zip(target.planes()).enumerate() {
                for row in 0..src.rows {
                    let a = &frame[src.offset + row * src.stride..][..src.row_bytes];
                    let b = &got.data[dst.offset + row * dst.stride..][..dst.row_bytes];
                    assert_eq!(a, b, "{format:?} plane {p} row {row}");
                }
            }
            // And the chroma starts right after `height` rows of the aligned stride.
            if format.is_420() {
                assert_eq!(
                    target.planes()[1].offset,
                    target.bytesperline() as usize * height as usize
                );
            }
        }
    }

    /// Runs ffmpeg with `args`, `input` on stdin; its stdout.
    fn ffmpeg(args: &[&str], input: &[u8]) -> Vec<u8> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("ffmpeg runs (apt-get install -y ffmpeg)");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success(), "ffmpeg {args:?} failed");
        out.stdout
    }

    #[test]
    fn ffmpeg_reads_the_encoder_buffers_as_the_camera_frame() {
        // ffmpeg's test picture in the camera's tight layout goes in; ffmpeg reads
        // the buffer the encoder received as a picture of the aligned width and
        // crops it back: the bytes must be the same.
        let (width, height) = (1000u32, 250u32);
        for (format, pix_fmt) in [
            (RawFormat::Yuyv, "yuyv422"),
            (RawFormat::Uyvy, "uyvy422"),
            (RawFormat::Nv12, "nv12"),
            (RawFormat::Nv21, "nv21"),
            (RawFormat::Yu12, "yuv420p"),
        ] {
            let size = format!("{width}x{height}");
            let camera = ffmpeg(
                &[
                    "-f",
                    "lavfi",
                    "-i",
                    &format!("testsrc2=size={size}:rate=1"),
                    "-frames:v",
                    "1",
                    "-pix_fmt",
                    pix_fmt,
                    "-f",
                    "rawvideo",
                    "pipe:1",
                ],
                &[],
            );
            let (encoder, handle) = start(settings(format.fourcc(), width, height));
            let mut encoder = encoder.unwrap();
            assert_eq!(camera.len(), encoder.input_layout().full_len(), "{pix_fmt}");
            encoder.encode(&camera, Duration::ZERO).unwrap();
            let target = encoder.encoder_layout().clone();
            let pixels_per_row = if format.is_420() {
                target.bytesperline()
            } else {
                target.bytesperline() / 2
            };
            assert!(pixels_per_row > width, "{pix_fmt}: rows are padded");
            let received = handle.record().received.remove(0).data;
            let back = ffmpeg(
                &[
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    pix_fmt,
                    "-s",
                    &format!("{pixels_per_row}x{height}"),
                    "-i",
                    "pipe:0",
                    "-vf",
                    &format!("crop={width}:{height}:0:0"),
                    "-f",
                    "rawvideo",
                    "-pix_fmt",
                    pix_fmt,
                    "pipe:1",
                ],
                &received,
            );
            assert!(
                back == camera,
                "{pix_fmt}: the frame differs after the round trip"
            );
        }
    }

    #[test]
    fn coded_frames_come_out_with_flags_and_timestamps() {
        let (encoder, _) = start(settings(sys::V4L2_PIX_FMT_NV12, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        let mut out: Vec<(Vec<u8>, u32, Duration)> = Vec::new();
        for i in 0..10u64 {
            let ts = Duration::from_millis(40 * i);
            assert_eq!(encoder.encode(&frame, ts).unwrap(), Submitted::Queued);
            encoder
                .poll_output(Duration::from_millis(10), |data, flags, ts| {
                    out.push((data.to_vec(), flags, ts))
                })
                .unwrap();
        }
        assert_eq!(out.len(), 10);
        let samples = sample_frames();
        for (i, (data, flags, ts)) in out.iter().enumerate() {
            assert_eq!(data, &samples[i].data, "frame {i}");
            assert_eq!(*ts, Duration::from_millis(40 * i as u64));
            assert_eq!(
                flags & sys::V4L2_BUF_FLAG_KEYFRAME != 0,
                samples[i].keyframe
            );
        }
        // A forced keyframe: the next frame is an IDR picture with SPS/PPS.
        encoder.force_keyframe().unwrap();
        encoder.encode(&frame, Duration::from_secs(1)).unwrap();
        let mut flags_seen = 0;
        encoder
            .poll_output(Duration::from_millis(10), |data, flags, _| {
                flags_seen = flags;
                assert_eq!(data, &samples[0].data[..]);
            })
            .unwrap();
        assert_ne!(flags_seen & sys::V4L2_BUF_FLAG_KEYFRAME, 0);
        let stats = encoder.stats();
        assert_eq!(
            (stats.frames_in, stats.frames_out, stats.keyframes),
            (11, 11, 2)
        );
    }

    #[test]
    fn a_slow_encoder_makes_frames_drop_not_block() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUYV, 320, 240));
        let mut encoder = encoder.unwrap();
        encoder.set_input_wait(Duration::from_millis(2));
        handle.faults(|f| f.slow = true);
        let frame = camera_frame(encoder.input_layout());
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for i in 0..10u64 {
            outcomes.push(encoder.encode(&frame, Duration::from_millis(i)).unwrap());
        }
        // Four buffers, then every frame is dropped after the short wait.
        assert!(started.elapsed() < Duration::from_millis(500));
        assert_eq!(
            outcomes.iter().filter(|o| **o == Submitted::Queued).count(),
            OUTPUT_BUFFERS as usize
        );
        assert_eq!(
            outcomes.last(),
            Some(&Submitted::Dropped(DropReason::EncoderBusy))
        );
        assert_eq!(encoder.stats().dropped_busy, 10 - u64::from(OUTPUT_BUFFERS));
        // The encoder catches up: buffers come back and frames are queued again.
        handle.faults(|f| f.slow = false);
        let mut coded = 0;
        encoder
            .poll_output(Duration::from_millis(10), |_, _, _| coded += 1)
            .unwrap();
        assert_eq!(coded, OUTPUT_BUFFERS as usize);
        assert_eq!(
            encoder.encode(&frame, Duration::ZERO).unwrap(),
            Submitted::Queued
        );
        // Short frames are dropped and counted too.
        assert_eq!(
            encoder.encode(&frame[..100], Duration::ZERO).unwrap(),
            Submitted::Dropped(DropReason::ShortFrame {
                len: 100,
                needed: 320 * 2 * 240
            })
        );
        assert_eq!(encoder.stats().dropped_short, 1);
    }

    #[test]
    fn finish_drains_to_the_last_buffer_and_stops() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUV420, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        handle.faults(|f| f.slow = true);
        for i in 0..3u64 {
            encoder.encode(&frame, Duration::from_millis(i)).unwrap();
        }
        handle.faults(|f| f.slow = false);
        let mut drained = Vec::new();
        let stats = encoder
            .finish(Duration::from_secs(1), |_, _, ts| drained.push(ts))
            .unwrap();
        // The three pending frames came out before the end.
        assert_eq!(
            drained,
            vec![
                Duration::ZERO,
                Duration::from_millis(1),
                Duration::from_millis(2)
            ]
        );
        assert_eq!(stats.frames_out, 3);
        let record = handle.record();
        assert_eq!(record.commands, vec![sys::V4L2_ENC_CMD_STOP]);
        assert_eq!(
            &record.streaming[2..],
            &[(Queue::OutputMplane, false), (Queue::CaptureMplane, false)]
        );
        assert_eq!(
            &record.reqbufs[2..],
            &[(Queue::OutputMplane, 0), (Queue::CaptureMplane, 0)]
        );
    }

    #[test]
    fn a_drain_that_never_ends_times_out_and_still_stops() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV21, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        handle.faults(|f| f.slow = true);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        let err = encoder
            .finish(Duration::from_millis(60), |_, _, _| {})
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/dev/video23: the encoder did not return its last frame"),
            "{text}"
        );
        let record = handle.record();
        assert_eq!(record.reqbufs.last(), Some(&(Queue::CaptureMplane, 0)));
    }

    #[test]
    fn a_refused_control_is_noted_and_the_encoder_still_runs() {
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        handle.faults(|f| f.refuse_control = Some(sys::V4L2_CID_MPEG_VIDEO_BITRATE));
        let encoder =
            M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_YUV420, 640, 480))
                .expect("a refused bitrate does not stop the encoder");
        let notes = encoder.notes().join("\n");
        assert!(notes.contains("the encoder refused"), "{notes}");
        assert!(notes.contains("3000000"), "{notes}");
        assert!(handle
            .record()
            .control(sys::V4L2_CID_MPEG_VIDEO_BITRATE)
            .is_none());
        // A vanished device still fails the start.
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        handle.faults(|f| f.vanished = true);
        assert!(
            M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_YUV420, 640, 480))
                .is_err()
        );
    }

    #[test]
    fn errors_carry_the_node_and_the_step() {
        // A refused format.
        let (fake, handle) = FakeEncoder::with_path("/dev/video23");
        handle.faults(|f| f.refuse_format = Some(sys::V4L2_PIX_FMT_UYVY));
        let err = M2mEncoder::start(Box::new(fake), settings(sys::V4L2_PIX_FMT_UYVY, 640, 480))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/dev/video23: setting the raw input format (VIDIOC_S_FMT): \
             VIDIOC_S_FMT on /dev/video23 failed: Invalid argument (os error 22)"
        );
        // The device vanishes mid-stream.
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_YUYV, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        encoder.encode(&frame, Duration::ZERO).unwrap();
        handle.faults(|f| f.vanished = true);
        let err = encoder.encode(&frame, Duration::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/dev/video23: taking back a raw frame buffer (VIDIOC_DQBUF)"),
            "{text}"
        );
        assert!(text.contains("No such device"), "{text}");
        let err = encoder
            .poll_output(Duration::from_millis(1), |_, _, _| {})
            .unwrap_err();
        assert!(err.to_string().contains("VIDIOC_DQBUF"), "{err}");
        // Dropping a broken encoder does not panic.
        drop(encoder);
    }

    fn arbitrary_dequeued() -> impl proptest::strategy::Strategy<Value = crate::v4l2::Dequeued> {
        use crate::v4l2::{Dequeued, PlaneUse};
        use proptest::prelude::*;
        let number = prop_oneof![0u32..16, 0u32..2_000_000, Just(u32::MAX)];
        let plane =
            (number.clone(), number.clone()).prop_map(|(bytesused, data_offset)| PlaneUse {
                bytesused,
                data_offset,
            });
        (
            prop_oneof![0u32..12, Just(u32::MAX)],
            prop::collection::vec(plane, 0..3),
            prop_oneof![Just(0u32), Just(sys::V4L2_BUF_FLAG_LAST), any::<u32>()],
            any::<u64>(),
        )
            .prop_map(|(index, planes, flags, nanos)| Dequeued {
                index,
                planes,
                flags,
                timestamp: Duration::from_nanos(nanos),
                sequence: 0,
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Whatever DQBUF returns, the encoder neither panics nor hangs.
        #[test]
        fn arbitrary_driver_answers_never_panic(
            capture in proptest::collection::vec(arbitrary_dequeued(), 0..12),
            output in proptest::collection::vec(arbitrary_dequeued(), 0..12),
            steps in proptest::collection::vec(0u8..4, 1..12),
        ) {
            let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV12, 64, 32));
            let mut encoder = encoder.unwrap();
            encoder.set_input_wait(Duration::ZERO);
            let frame = camera_frame(encoder.input_layout());
            handle.faults(|f| {
                f.scripted_capture = capture.into();
                f.scripted_output = output.into();
            });
            let mut handed = 0u64;
            for step in steps {
                match step {
                    0 => {
                        let _ = encoder.encode(&frame, Duration::ZERO);
                    }
                    1 => {
                        let _ = encoder.poll_output(Duration::ZERO, |data, _, _| {
                            handed += data.len() as u64;
                        });
                    }
                    2 => {
                        let _ = encoder.force_keyframe();
                    }
                    _ => {
                        let _ = encoder.encode(&frame[..10], Duration::ZERO);
                    }
                }
            }
            let stats = encoder.stats();
            proptest::prop_assert_eq!(stats.bytes_out, handed);
            let started = Instant::now();
            let _ = encoder.finish(Duration::from_millis(20), |_, _, _| {});
            proptest::prop_assert!(started.elapsed() < Duration::from_secs(2));
        }
    }

    #[test]
    fn bogus_driver_answers_are_counted_not_trusted() {
        let (encoder, handle) = start(settings(sys::V4L2_PIX_FMT_NV12, 320, 240));
        let mut encoder = encoder.unwrap();
        let frame = camera_frame(encoder.input_layout());
        let mut handed = 0;
        handle.faults(|f| f.bogus_bytesused = true);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        handle.faults(|f| {
            f.bogus_bytesused = false;
            f.error_flag = true;
        });
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        handle.faults(|f| {
            f.error_flag = false;
            f.bogus_index = true;
        });
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        assert_eq!(handed, 0);
        let stats = encoder.stats();
        assert_eq!(stats.bogus_buffers, 2);
        assert_eq!(stats.error_buffers, 1);
        // The encoder still works with a good driver answer.
        handle.faults(|f| f.bogus_index = false);
        encoder.encode(&frame, Duration::ZERO).unwrap();
        encoder
            .poll_output(Duration::from_millis(5), |_, _, _| handed += 1)
            .unwrap();
        assert_eq!(handed, 1);
    }
}
