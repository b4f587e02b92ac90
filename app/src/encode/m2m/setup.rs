//! Setting the encoder up: what it must be and take (checked before anything is
//! configured), the settings, the codec controls planned against what the driver
//! offers ([`plan_controls`], pure), and the steps of [`super::M2mEncoder::start`]
//! in the order the driver needs them ([`configure`]).

use std::path::Path;
use std::time::Duration;

use super::EncoderError;
use crate::config::{spelled, BitrateMode, EncoderConfig, Profile};
use crate::encode::codec_controls;
use crate::encode::raw_picture::{PictureLayout, RawFormat};
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

/// What [`configure`] leaves the running encoder.
#[derive(Debug)]
pub(super) struct Configured {
    /// The layout camera frames come in.
    pub(super) input: PictureLayout,
    /// The layout of the encoder's raw buffers.
    pub(super) encoder_layout: PictureLayout,
    /// `bytesused` of a queued raw buffer.
    pub(super) output_bytesused: u32,
    /// Raw buffers allocated.
    pub(super) outputs: u32,
    /// Coded buffers allocated (all queued).
    pub(super) captures: u32,
    /// Settings taken differently than configured, in plain words.
    pub(super) notes: Vec<String>,
}

/// Checks, configures and starts `node` for `settings`, in the order the driver
/// needs: what the node is, what it takes, the camera's layout, the formats, the
/// frame rate, the controls, then the buffers and streaming. Every refusal says
/// why in plain words.
pub(super) fn configure(
    node: &mut dyn Node,
    settings: &EncoderSettings,
) -> Result<Configured, EncoderError> {
    let path = node.path().to_path_buf();
    check_node(node, &path)?;
    check_input(node, &path, settings)?;
    let input = camera_layout(&path, settings)?;
    let (encoder_layout, output_bytesused) = set_formats(node, &path, settings)?;
    let mut notes = set_frame_rate(node, &path, settings)?;
    notes.extend(set_controls(node, &path, settings)?);
    let (outputs, captures) = start_streaming(node, &path, settings, &encoder_layout)?;
    Ok(Configured {
        input,
        encoder_layout,
        output_bytesused,
        outputs,
        captures,
        notes,
    })
}

/// The error for a driver's refusal at `step`.
fn driver_err(path: &Path, step: &str) -> impl FnOnce(V4l2Error) -> EncoderError {
    let path = path.to_path_buf();
    let step = step.to_string();
    move |source| EncoderError::Driver { path, step, source }
}

/// What the node is: the encoder, known by its card name (its number differs
/// between boards), with multi-planar memory-to-memory streaming.
fn check_node(node: &dyn Node, path: &Path) -> Result<(), EncoderError> {
    let capability = node.capability().clone();
    if capability.card != H264_ENCODER_CARD {
        return Err(EncoderError::NotTheEncoder {
            path: path.to_path_buf(),
            card: capability.card,
            driver: capability.driver,
        });
    }
    let needed = sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING;
    if !capability.has(needed) {
        return Err(EncoderError::MissingCapabilities {
            path: path.to_path_buf(),
            caps: capability.node_caps(),
        });
    }
    Ok(())
}

/// What it takes: the camera's format on the raw queue, H.264 on the coded one,
/// and the size (at most [`MAX_WIDTH`]x[`MAX_HEIGHT`], and one it lists).
fn check_input(
    node: &dyn Node,
    path: &Path,
    settings: &EncoderSettings,
) -> Result<(), EncoderError> {
    let (width, height, pixelformat) = (settings.width, settings.height, settings.pixelformat);
    if RawFormat::from_fourcc(pixelformat).is_none() {
        return Err(EncoderError::UnsupportedInput {
            path: path.to_path_buf(),
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
        let offered = node.formats(queue).map_err(driver_err(path, step))?;
        if !offered.iter().any(|f| f.pixelformat == fourcc) {
            return Err(EncoderError::FormatNotOffered {
                path: path.to_path_buf(),
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
                    path: path.to_path_buf(),
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
                path,
                "listing the frame sizes (VIDIOC_ENUM_FRAMESIZES)",
            )(e))
        }
    }
    Ok(())
}

/// The camera's layout: tight rows, or the camera's `bytesperline`.
fn camera_layout(path: &Path, settings: &EncoderSettings) -> Result<PictureLayout, EncoderError> {
    let (width, height, pixelformat) = (settings.width, settings.height, settings.pixelformat);
    if settings.input_bytesperline == 0 {
        PictureLayout::tight(pixelformat, width, height)
    } else {
        PictureLayout::new(
            pixelformat,
            width,
            height,
            settings.input_bytesperline,
            height,
        )
    }
    .map_err(|source| EncoderError::Layout {
        path: path.to_path_buf(),
        what: "the camera's frames",
        source,
    })
}

/// The formats of both queues. The driver aligns the raw rows: its answer is the
/// layout to fill, returned with the raw buffers' `bytesused`.
fn set_formats(
    node: &mut dyn Node,
    path: &Path,
    settings: &EncoderSettings,
) -> Result<(PictureLayout, u32), EncoderError> {
    let (width, height, pixelformat) = (settings.width, settings.height, settings.pixelformat);
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
        .map_err(driver_err(
            path,
            "setting the raw input format (VIDIOC_S_FMT)",
        ))?;
    check_same(path, Queue::OutputMplane, &asked, &got)?;
    let plane = single_plane(path, Queue::OutputMplane, &got)?;
    let encoder_layout = PictureLayout::from_driver(
        pixelformat,
        width,
        height,
        plane.bytesperline,
        plane.sizeimage,
    )
    .map_err(|source| EncoderError::Layout {
        path: path.to_path_buf(),
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
        .map_err(driver_err(
            path,
            "setting the H.264 output format (VIDIOC_S_FMT)",
        ))?;
    check_same(path, Queue::CaptureMplane, &coded_asked, &coded)?;
    let coded_plane = single_plane(path, Queue::CaptureMplane, &coded)?;
    if coded_plane.sizeimage == 0 {
        return Err(EncoderError::Buffers {
            path: path.to_path_buf(),
            queue: Queue::CaptureMplane,
            problem: "the driver gives coded buffers of 0 bytes".into(),
        });
    }
    Ok((encoder_layout, plane.sizeimage))
}

/// The frame rate, on the OUTPUT queue (the driver passes it to the encoder); a
/// note when the driver does not take one.
fn set_frame_rate(
    node: &mut dyn Node,
    path: &Path,
    settings: &EncoderSettings,
) -> Result<Vec<String>, EncoderError> {
    let mut notes = Vec::new();
    if settings.framerate > 0 {
        let interval = Fraction {
            numerator: 1,
            denominator: settings.framerate,
        };
        match node
            .set_frame_interval(Queue::OutputMplane, interval)
            .map_err(driver_err(path, "setting the frame rate (VIDIOC_S_PARM)"))?
        {
            Some(_) => {}
            None => notes.push(
                "the encoder does not take a frame rate: its rate control assumes 30 fps".into(),
            ),
        }
    }
    Ok(notes)
}

/// The codec controls of [`plan_controls`]; what the encoder adjusts or refuses
/// becomes a note, not a failure, unless the device is gone.
fn set_controls(
    node: &mut dyn Node,
    path: &Path,
    settings: &EncoderSettings,
) -> Result<Vec<String>, EncoderError> {
    let available = match node.controls() {
        Ok(list) => list,
        Err(V4l2Error::Unsupported { .. }) => Vec::new(),
        Err(e) => {
            return Err(driver_err(path, "listing the controls (VIDIOC_QUERYCTRL)")(
                e,
            ))
        }
    };
    let (controls, mut notes) = plan_controls(settings, &available);
    for control in controls {
        // Values were checked against the ranges above; a refusal now costs
        // that setting (noted), not the video, unless the device is gone.
        if let Err(source) = node.set_control(control.id, control.value) {
            if matches!(source.errno(), Some(libc::ENODEV | libc::EIO | libc::ENXIO)) {
                return Err(EncoderError::Control {
                    path: path.to_path_buf(),
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
    Ok(notes)
}

/// The buffers of both queues (raw ones large enough for a frame in
/// `encoder_layout`), every coded buffer queued, both queues streaming. Returns
/// how many raw and coded buffers there are.
fn start_streaming(
    node: &mut dyn Node,
    path: &Path,
    settings: &EncoderSettings,
    encoder_layout: &PictureLayout,
) -> Result<(u32, u32), EncoderError> {
    let outputs = node
        .request_buffers(Queue::OutputMplane, OUTPUT_BUFFERS)
        .map_err(driver_err(
            path,
            "allocating raw frame buffers (VIDIOC_REQBUFS)",
        ))?;
    let captures = node
        .request_buffers(Queue::CaptureMplane, CAPTURE_BUFFERS)
        .map_err(driver_err(
            path,
            "allocating coded frame buffers (VIDIOC_REQBUFS)",
        ))?;
    for (queue, count) in [
        (Queue::OutputMplane, outputs),
        (Queue::CaptureMplane, captures),
    ] {
        if count == 0 {
            return Err(EncoderError::Buffers {
                path: path.to_path_buf(),
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
                path: path.to_path_buf(),
                queue: Queue::OutputMplane,
                problem: format!(
                    "buffer {index} has {len} bytes, a {}x{} frame needs {}",
                    settings.width,
                    settings.height,
                    encoder_layout.min_len()
                ),
            });
        }
    }
    for index in 0..captures {
        node.queue_buffer(Queue::CaptureMplane, index, &[], Duration::ZERO)
            .map_err(driver_err(
                path,
                "queueing a coded frame buffer (VIDIOC_QBUF)",
            ))?;
    }
    node.stream_on(Queue::OutputMplane).map_err(driver_err(
        path,
        "starting the raw input queue (VIDIOC_STREAMON)",
    ))?;
    node.stream_on(Queue::CaptureMplane).map_err(driver_err(
        path,
        "starting the H.264 output queue (VIDIOC_STREAMON)",
    ))?;
    Ok((outputs, captures))
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
    use crate::encode::m2m::tests::{settings, start};
    use crate::encode::m2m::M2mEncoder;
    use crate::v4l2::fake::encoder::FakeEncoder;

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
}
