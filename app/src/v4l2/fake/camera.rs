//! A fake capture [`Node`] for tests, built from a [`NodeDescription`] fixture
//! (`app/tests/fixtures/v4l2/*.json`), that behaves like the drivers it stands for:
//!
//! - bcm2835-v4l2 (the legacy camera, driver `bm2835 mmal`): `S_FMT` clamps sizes
//!   to 32..maximum and rounds them to even, computes `sizeimage` as the driver
//!   does (80 KiB at least for compressed formats); `S_PARM` clips to 1/90..1 s;
//!   H.264 comes as the access units of the real Pi sample
//!   `shared/samples/pi-raspivid-1080p25.h264` (whatever size was set), with SPS and
//!   PPS in a buffer of their own before the picture, `V4L2_BUF_FLAG_KEYFRAME` on
//!   IDR pictures (the driver sets no `PFRAME`), monotonic timestamps at the set
//!   frame rate; a picture larger than a buffer continues in the next one.
//! - uvcvideo (driver `uvcvideo`): `S_FMT` picks the nearest offered size, `S_PARM`
//!   the nearest offered interval; H.264 as above but SPS/PPS with the picture.
//!
//! Raw formats (YUYV, NV12, YU12) are frames of a moving gradient. Controls have the
//! fixture's ranges: integers are clamped and rounded to their step (as the V4L2
//! core does), menu values out of range fail with `ERANGE`, skipped menu entries and
//! unknown controls with `EINVAL`. `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`, in a
//! description that lists it (none of the fixtures does), makes the next H.264
//! picture the sample's first, an IDR picture with SPS and PPS. Faults can be
//! injected ([`Faults`]): the device vanishes (`ENODEV`) after N frames, stalls,
//! flags buffers `ERROR`, or refuses a control. What the code under test did is
//! recorded in a shared [`FakeLog`].

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::h264::{AccessUnitReader, NalType};
use crate::v4l2::clock::monotonic_now;
use crate::v4l2::{
    sys, Capability, ControlInfo, ControlKind, Dequeued, Error, FormatDesc, Fraction,
    FrameInterval, FrameSize, ImageFormat, Node, NodeDescription, Opener, PlaneLayout, PlaneUse,
    Queue, Readiness,
};

/// The real Pi sample the H.264 payload comes from.
pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/pi-raspivid-1080p25.h264"
);

/// Loads `app/tests/fixtures/v4l2/<name>.json`.
pub fn fixture(name: &str) -> NodeDescription {
    let path = format!(
        "{}/tests/fixtures/v4l2/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// After this many delivered frames the device is gone: `ENODEV` from then on.
    pub vanish_after: Option<u64>,
    /// After this many delivered frames no more frames come.
    pub stall_after: Option<u64>,
    /// Every n-th buffer comes back flagged `V4L2_BUF_FLAG_ERROR` with no payload.
    pub error_every: Option<u64>,
    /// Setting this control fails with `EINVAL` (the firmware refused it).
    pub refuse_control: Option<u32>,
    /// Pause before each frame (0: as fast as the loop asks).
    pub frame_pause: Duration,
    /// Allocate buffers of this many bytes instead of `sizeimage`, so that
    /// pictures arrive split over several buffers.
    pub buffer_size: Option<usize>,
    /// When vanishing, say so through `poll` (`POLLERR`) instead of `ENODEV` from
    /// the next `VIDIOC_DQBUF`.
    pub vanish_in_poll: bool,
}

/// What the code under test did to the fake.
#[derive(Debug, Clone, Default)]
pub struct FakeLog {
    /// Times the node was opened.
    pub opened: u32,
    /// Every control set, with the value the fake stored.
    pub controls: Vec<(u32, i64)>,
    /// Every format set, as the fake answered.
    pub formats: Vec<ImageFormat>,
    /// The frame interval in force at each format set (bcm2835-v4l2 gives it to
    /// the GPU encoder then).
    pub interval_at_format: Vec<Fraction>,
    /// Every frame interval set, as the fake answered.
    pub intervals: Vec<Fraction>,
    /// `VIDIOC_STREAMON` calls.
    pub stream_on: u32,
    /// `VIDIOC_STREAMOFF` calls.
    pub stream_off: u32,
    /// Buffers handed back (error-flagged ones included).
    pub buffers_done: u64,
    /// Buffers currently allocated.
    pub buffers_allocated: u32,
}

impl FakeLog {
    /// The last value set for control `id`.
    pub fn control(&self, id: u32) -> Option<i64> {
        self.controls
            .iter()
            .rev()
            .find(|(c, _)| *c == id)
            .map(|(_, v)| *v)
    }
}

/// Which driver the fake imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Driver {
    Legacy,
    Uvc,
}

/// One buffer's worth of payload waiting to be delivered.
struct Payload {
    data: Vec<u8>,
    flags: u32,
}

/// The fake node.
pub struct FakeCamera {
    desc: NodeDescription,
    path: PathBuf,
    driver: Driver,
    format: ImageFormat,
    interval: Fraction,
    values: HashMap<u32, i64>,
    buffers: Vec<Vec<u8>>,
    queued: VecDeque<u32>,
    done: VecDeque<Dequeued>,
    streaming: bool,
    gone: bool,
    /// Frames delivered with a payload.
    delivered: u64,
    /// Buffers completed (error-flagged ones included).
    completed: u32,
    stream_start: Duration,
    pending: VecDeque<Payload>,
    next_unit: usize,
    faults: Faults,
    log: Arc<Mutex<FakeLog>>,
}

/// One access unit of the sample: parameter sets, the rest, whether it is IDR.
type SampleUnit = (Vec<u8>, Vec<u8>, bool);

/// The sample's access units as Annex-B buffers, split the way bcm2835-v4l2
/// delivers them: `(parameter sets, picture, is IDR)`.
fn sample_units() -> &'static [SampleUnit] {
    static UNITS: OnceLock<Vec<SampleUnit>> = OnceLock::new();
    UNITS.get_or_init(|| {
        let bytes = std::fs::read(SAMPLE).unwrap_or_else(|e| panic!("{SAMPLE}: {e}"));
        let mut reader = AccessUnitReader::new();
        let mut units = Vec::new();
        reader.push(&bytes, &mut units);
        reader.flush(&mut units);
        units
            .iter()
            .map(|unit| {
                let mut config = Vec::new();
                let mut picture = Vec::new();
                for nal in &unit.nals {
                    let target = match nal.nal_type() {
                        NalType::Sps | NalType::Pps => &mut config,
                        _ => &mut picture,
                    };
                    target.extend_from_slice(&[0, 0, 0, 1]);
                    target.extend_from_slice(nal.data());
                }
                (config, picture, unit.contains(NalType::IdrSlice))
            })
            .collect()
    })
}

/// Bits per pixel and bytes per pixel of the first plane, as bcm2835-v4l2's
/// format table has them (`depth`, `ybbp`); `None` for a compressed format.
fn legacy_depth(pixelformat: u32) -> (u32, u32, bool) {
    match pixelformat {
        sys::V4L2_PIX_FMT_YUV420
        | sys::V4L2_PIX_FMT_YVU420
        | sys::V4L2_PIX_FMT_NV12
        | sys::V4L2_PIX_FMT_NV21 => (12, 1, true),
        sys::V4L2_PIX_FMT_RGB24 | sys::V4L2_PIX_FMT_BGR24 => (24, 3, false),
        p if p == crate::v4l2::fourcc(b"BGR4") => (32, 4, false),
        sys::V4L2_PIX_FMT_H264 | sys::V4L2_PIX_FMT_MJPEG | sys::V4L2_PIX_FMT_JPEG => (8, 0, false),
        _ => (16, 2, false), // the 4:2:2 packed formats
    }
}

/// The size of one raw frame of `pixelformat`.
fn raw_frame_size(pixelformat: u32, width: u32, height: u32) -> usize {
    let pixels = width as usize * height as usize;
    match pixelformat {
        sys::V4L2_PIX_FMT_YUV420
        | sys::V4L2_PIX_FMT_YVU420
        | sys::V4L2_PIX_FMT_NV12
        | sys::V4L2_PIX_FMT_NV21 => pixels * 3 / 2,
        sys::V4L2_PIX_FMT_RGB24 | sys::V4L2_PIX_FMT_BGR24 => pixels * 3,
        _ => pixels * 2,
    }
}

fn is_h264(pixelformat: u32) -> bool {
    pixelformat == sys::V4L2_PIX_FMT_H264
}

fn is_compressed(pixelformat: u32) -> bool {
    matches!(
        pixelformat,
        sys::V4L2_PIX_FMT_H264 | sys::V4L2_PIX_FMT_MJPEG | sys::V4L2_PIX_FMT_JPEG
    )
}

impl FakeCamera {
    /// A fake of the node `desc` describes, with a fresh log and no faults.
    pub fn new(desc: NodeDescription) -> FakeCamera {
        FakeCamera::with(desc, Faults::default(), Arc::default())
    }

    /// A fake with `faults`, recording into `log`.
    pub fn with(desc: NodeDescription, faults: Faults, log: Arc<Mutex<FakeLog>>) -> FakeCamera {
        let driver = if desc.capability.driver == "uvcvideo" {
            Driver::Uvc
        } else {
            Driver::Legacy
        };
        let values = desc.controls.iter().map(|c| (c.id, c.default)).collect();
        let mut fake = FakeCamera {
            path: PathBuf::from(&desc.path),
            desc,
            driver,
            format: ImageFormat {
                width: 0,
                height: 0,
                pixelformat: 0,
                field: sys::V4L2_FIELD_NONE,
                colorspace: 0,
                planes: vec![],
            },
            interval: Fraction {
                numerator: 1000,
                denominator: 30000,
            },
            values,
            buffers: Vec::new(),
            queued: VecDeque::new(),
            done: VecDeque::new(),
            streaming: false,
            gone: false,
            delivered: 0,
            completed: 0,
            stream_start: Duration::ZERO,
            pending: VecDeque::new(),
            next_unit: 0,
            faults,
            log,
        };
        // The driver's power-on format: JPEG 1024x768 (legacy), the first mode (UVC).
        let initial = match driver {
            Driver::Legacy => (sys::V4L2_PIX_FMT_JPEG, 1024, 768),
            Driver::Uvc => {
                let first = fake.desc.formats(Queue::Capture).first();
                let size = first
                    .and_then(|f| f.sizes.first())
                    .map(|s| match s.size {
                        FrameSize::Discrete { width, height } => (width, height),
                        FrameSize::Stepwise {
                            max_width,
                            max_height,
                            ..
                        } => (max_width, max_height),
                    })
                    .unwrap_or((640, 480));
                (
                    first.map(|f| f.format.pixelformat).unwrap_or(0),
                    size.0,
                    size.1,
                )
            }
        };
        fake.format = fake.try_format(&ImageFormat {
            width: initial.1,
            height: initial.2,
            pixelformat: initial.0,
            field: sys::V4L2_FIELD_NONE,
            colorspace: 0,
            planes: vec![],
        });
        fake
    }

    /// An [`Opener`] that opens a new fake of `desc` for every path, with
    /// `faults`, recording into `log`.
    pub fn opener(desc: NodeDescription, faults: Faults, log: Arc<Mutex<FakeLog>>) -> Arc<Opener> {
        Arc::new(move |path: &Path| {
            let mut desc = desc.clone();
            desc.path = path.display().to_string();
            if let Ok(mut log) = log.lock() {
                log.opened += 1;
            }
            Ok(Box::new(FakeCamera::with(desc, faults.clone(), log.clone())) as Box<dyn Node>)
        })
    }

    fn error(&self, ioctl: &'static str, errno: i32) -> Error {
        Error::Ioctl {
            ioctl,
            path: self.path.clone(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    fn check_present(&self, ioctl: &'static str) -> Result<(), Error> {
        if self.gone {
            Err(self.error(ioctl, libc::ENODEV))
        } else {
            Ok(())
        }
    }

    fn record(&self, f: impl FnOnce(&mut FakeLog)) {
        if let Ok(mut log) = self.log.lock() {
            f(&mut log);
        }
    }

    /// `VIDIOC_TRY_FMT` as the imitated driver does it.
    fn try_format(&self, asked: &ImageFormat) -> ImageFormat {
        let offered = self.desc.formats(Queue::Capture);
        let modes = offered
            .iter()
            .find(|f| f.format.pixelformat == asked.pixelformat)
            .or_else(|| offered.first());
        let pixelformat = modes.map(|m| m.format.pixelformat).unwrap_or(0);
        match self.driver {
            Driver::Legacy => {
                let (max_width, max_height) = modes
                    .and_then(|m| m.sizes.first())
                    .map(|s| match s.size {
                        FrameSize::Stepwise {
                            max_width,
                            max_height,
                            ..
                        } => (max_width, max_height),
                        FrameSize::Discrete { width, height } => (width, height),
                    })
                    .unwrap_or((2592, 1944));
                // v4l_bound_align_image with 2-pixel alignment: clamp, round to even.
                let align = |v: u32, max: u32| ((v.clamp(32, max) + 1) & !1).min(max & !1);
                let width = align(asked.width, max_width);
                let height = align(asked.height, max_height);
                let (depth, ybbp, remove_padding) = legacy_depth(pixelformat);
                let mut bytesperline = width * ybbp;
                if !remove_padding && ybbp != 0 {
                    bytesperline = if depth == 24 {
                        ((width + 15) & !15) * 3
                    } else {
                        let mask = ((32 * depth) >> 3) - 1;
                        (bytesperline + mask) & !mask
                    };
                }
                let mut sizeimage = (((height + 15) & !15) * (((width + 31) & !31) * depth)) >> 3;
                if is_compressed(pixelformat) {
                    sizeimage = sizeimage.max(80 * 1024);
                }
                ImageFormat {
                    width,
                    height,
                    pixelformat,
                    field: sys::V4L2_FIELD_NONE,
                    colorspace: sys::V4L2_COLORSPACE_SMPTE170M,
                    planes: vec![PlaneLayout {
                        bytesperline,
                        sizeimage,
                    }],
                }
            }
            Driver::Uvc => {
                let (width, height) = modes
                    .map(|m| {
                        m.sizes
                            .iter()
                            .filter_map(|s| match s.size {
                                FrameSize::Discrete { width, height } => Some((width, height)),
                                FrameSize::Stepwise { .. } => None,
                            })
                            .min_by_key(|(w, h)| w.abs_diff(asked.width) + h.abs_diff(asked.height))
                            .unwrap_or((asked.width, asked.height))
                    })
                    .unwrap_or((asked.width, asked.height));
                let bytesperline = if is_compressed(pixelformat) {
                    0
                } else {
                    width * 2
                };
                ImageFormat {
                    width,
                    height,
                    pixelformat,
                    field: sys::V4L2_FIELD_NONE,
                    colorspace: sys::V4L2_COLORSPACE_SMPTE170M,
                    planes: vec![PlaneLayout {
                        bytesperline,
                        sizeimage: width * height * 2,
                    }],
                }
            }
        }
    }

    /// The next buffer's payload.
    fn next_payload(&mut self) -> Payload {
        if let Some(payload) = self.pending.pop_front() {
            return payload;
        }
        let pixelformat = self.format.pixelformat;
        if is_h264(pixelformat) {
            let units = sample_units();
            let Some((config, picture, idr)) = units.get(self.next_unit % units.len().max(1))
            else {
                return Payload {
                    data: vec![],
                    flags: 0,
                };
            };
            self.next_unit += 1;
            let flags = if *idr { sys::V4L2_BUF_FLAG_KEYFRAME } else { 0 };
            if config.is_empty() {
                return Payload {
                    data: picture.clone(),
                    flags,
                };
            }
            if self.driver == Driver::Legacy {
                // Codec config in a buffer of its own, as MMAL hands it over.
                self.pending.push_back(Payload {
                    data: picture.clone(),
                    flags,
                });
                return Payload {
                    data: config.clone(),
                    flags: 0,
                };
            }
            let mut data = config.clone();
            data.extend_from_slice(picture);
            return Payload { data, flags };
        }
        let size = raw_frame_size(pixelformat, self.format.width, self.format.height);
        let shift = (self.delivered % 256) as u8;
        let width = self.format.width.max(1) as usize;
        let data = (0..size)
            .map(|i| ((i % width) as u8).wrapping_add(shift))
            .collect();
        Payload { data, flags: 0 }
    }

    /// Completes the oldest queued buffer.
    fn produce(&mut self) {
        let Some(index) = self.queued.pop_front() else {
            return;
        };
        let sequence = self.completed;
        self.completed += 1;
        let per_frame = Duration::from_secs(u64::from(self.interval.numerator))
            / self.interval.denominator.max(1);
        let timestamp = self.stream_start + per_frame * sequence;
        let flagged_error = self
            .faults
            .error_every
            .is_some_and(|n| n > 0 && u64::from(self.completed) % n == 0);
        let mut flags = sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC | sys::V4L2_BUF_FLAG_DONE;
        let mut bytesused = 0u32;
        if flagged_error {
            flags |= sys::V4L2_BUF_FLAG_ERROR;
        } else {
            let payload = self.next_payload();
            let Some(buffer) = self.buffers.get_mut(index as usize) else {
                return;
            };
            let n = payload.data.len().min(buffer.len());
            buffer[..n].copy_from_slice(&payload.data[..n]);
            if n < payload.data.len() {
                // A picture larger than the buffer continues in the next one.
                self.pending.push_front(Payload {
                    data: payload.data[n..].to_vec(),
                    flags: payload.flags,
                });
            }
            flags |= payload.flags;
            bytesused = u32::try_from(n).unwrap_or(u32::MAX);
            self.delivered += 1;
        }
        self.done.push_back(Dequeued {
            index,
            planes: vec![PlaneUse {
                bytesused,
                data_offset: 0,
            }],
            flags,
            timestamp,
            sequence,
        });
        self.record(|log| log.buffers_done += 1);
    }

    fn nearest_interval(&self, asked: Fraction) -> Fraction {
        let rate = |f: Fraction| f64::from(f.denominator) / f64::from(f.numerator.max(1));
        let want = rate(asked);
        let offered = self
            .frame_intervals(
                self.format.pixelformat,
                self.format.width,
                self.format.height,
            )
            .unwrap_or_default();
        offered
            .iter()
            .filter_map(|i| match i {
                FrameInterval::Discrete(f) => Some(*f),
                FrameInterval::Stepwise { .. } => None,
            })
            .min_by(|a, b| (rate(*a) - want).abs().total_cmp(&(rate(*b) - want).abs()))
            .unwrap_or(asked)
    }
}

impl Node for FakeCamera {
    fn path(&self) -> &Path {
        &self.path
    }

    fn capability(&self) -> &Capability {
        &self.desc.capability
    }

    fn formats(&self, queue: Queue) -> Result<Vec<FormatDesc>, Error> {
        self.check_present("VIDIOC_ENUM_FMT")?;
        Ok(self.desc.format_descs(queue))
    }

    fn frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        self.check_present("VIDIOC_ENUM_FRAMESIZES")?;
        self.desc
            .frame_sizes_of(pixelformat)
            .ok_or_else(|| self.error("VIDIOC_ENUM_FRAMESIZES", libc::EINVAL))
    }

    fn frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error> {
        self.check_present("VIDIOC_ENUM_FRAMEINTERVALS")?;
        self.desc
            .frame_intervals_of(pixelformat, width, height)
            .ok_or_else(|| self.error("VIDIOC_ENUM_FRAMEINTERVALS", libc::EINVAL))
    }

    fn controls(&self) -> Result<Vec<ControlInfo>, Error> {
        self.check_present("VIDIOC_QUERYCTRL")?;
        Ok(self.desc.controls.clone())
    }

    fn set_control(&mut self, id: u32, value: i64) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_S_EXT_CTRLS";
        self.check_present(IOCTL)?;
        let info = self
            .desc
            .control(id)
            .cloned()
            .ok_or_else(|| self.error(IOCTL, libc::EINVAL))?;
        if info.flags & sys::V4L2_CTRL_FLAG_READ_ONLY != 0 {
            return Err(self.error(IOCTL, libc::EACCES));
        }
        if info.flags & sys::V4L2_CTRL_FLAG_DISABLED != 0 {
            return Err(self.error(IOCTL, libc::EINVAL));
        }
        let stored = match info.kind {
            ControlKind::Menu | ControlKind::IntegerMenu => {
                if value < info.minimum || value > info.maximum {
                    return Err(self.error(IOCTL, libc::ERANGE));
                }
                if !info.menu.iter().any(|m| i64::from(m.index) == value) {
                    return Err(self.error(IOCTL, libc::EINVAL));
                }
                value
            }
            ControlKind::Boolean => i64::from(value != 0),
            // The V4L2 core ignores a button's value.
            ControlKind::Button => 0,
            _ => {
                // The V4L2 core clamps integers into range and rounds them to the step.
                let step = i64::try_from(info.step.max(1)).unwrap_or(1);
                let clamped = value.clamp(info.minimum, info.maximum);
                let rounded = info.minimum + (clamped - info.minimum + step / 2) / step * step;
                rounded.min(info.maximum)
            }
        };
        if self.faults.refuse_control == Some(id) {
            return Err(self.error(IOCTL, libc::EINVAL));
        }
        if id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME {
            // The encoder's next picture is an IDR picture (the sample's first,
            // with its SPS and PPS).
            self.next_unit = 0;
        }
        self.values.insert(id, stored);
        self.record(|log| log.controls.push((id, stored)));
        Ok(())
    }

    fn format(&self, queue: Queue) -> Result<ImageFormat, Error> {
        self.check_present("VIDIOC_G_FMT")?;
        if queue != Queue::Capture {
            return Err(self.error("VIDIOC_G_FMT", libc::EINVAL));
        }
        Ok(self.format.clone())
    }

    fn set_format(&mut self, queue: Queue, format: &ImageFormat) -> Result<ImageFormat, Error> {
        self.check_present("VIDIOC_S_FMT")?;
        if queue != Queue::Capture {
            return Err(self.error("VIDIOC_S_FMT", libc::EINVAL));
        }
        if !self.buffers.is_empty() {
            return Err(self.error("VIDIOC_S_FMT", libc::EBUSY));
        }
        let chosen = self.try_format(format);
        self.format = chosen.clone();
        let interval = self.interval;
        self.record(|log| {
            log.formats.push(chosen.clone());
            log.interval_at_format.push(interval);
        });
        Ok(chosen)
    }

    fn set_frame_interval(
        &mut self,
        queue: Queue,
        interval: Fraction,
    ) -> Result<Option<Fraction>, Error> {
        self.check_present("VIDIOC_S_PARM")?;
        if queue != Queue::Capture {
            return Err(self.error("VIDIOC_S_PARM", libc::EINVAL));
        }
        let chosen = match self.driver {
            Driver::Legacy => {
                let fps_min = Fraction {
                    numerator: 1,
                    denominator: 90,
                };
                let fps_max = Fraction {
                    numerator: 1,
                    denominator: 1,
                };
                let less = |a: Fraction, b: Fraction| {
                    u64::from(a.numerator) * u64::from(b.denominator)
                        < u64::from(b.numerator) * u64::from(a.denominator)
                };
                if interval.denominator == 0 {
                    Fraction {
                        numerator: 1000,
                        denominator: 30000,
                    }
                } else if less(interval, fps_min) {
                    fps_min
                } else if less(fps_max, interval) {
                    fps_max
                } else {
                    interval
                }
            }
            Driver::Uvc => self.nearest_interval(interval),
        };
        self.interval = chosen;
        self.record(|log| log.intervals.push(chosen));
        Ok(Some(chosen))
    }

    fn request_buffers(&mut self, queue: Queue, count: u32) -> Result<u32, Error> {
        self.check_present("VIDIOC_REQBUFS")?;
        if queue != Queue::Capture {
            return Err(self.error("VIDIOC_REQBUFS", libc::EINVAL));
        }
        if self.streaming {
            return Err(self.error("VIDIOC_REQBUFS", libc::EBUSY));
        }
        let size = self
            .format
            .planes
            .first()
            .map(|p| p.sizeimage as usize)
            .unwrap_or(0);
        let size = self.faults.buffer_size.unwrap_or(size);
        self.queued.clear();
        self.done.clear();
        self.buffers = (0..count).map(|_| vec![0u8; size]).collect();
        self.record(|log| log.buffers_allocated = count);
        Ok(count)
    }

    fn buffer(&self, queue: Queue, index: u32, plane: usize) -> Option<&[u8]> {
        if queue != Queue::Capture || plane != 0 {
            return None;
        }
        self.buffers.get(index as usize).map(|b| b.as_slice())
    }

    fn buffer_mut(&mut self, queue: Queue, index: u32, plane: usize) -> Option<&mut [u8]> {
        if queue != Queue::Capture || plane != 0 {
            return None;
        }
        self.buffers
            .get_mut(index as usize)
            .map(|b| b.as_mut_slice())
    }

    fn queue_buffer(
        &mut self,
        queue: Queue,
        index: u32,
        _bytesused: &[u32],
        _timestamp: Duration,
    ) -> Result<(), Error> {
        self.check_present("VIDIOC_QBUF")?;
        if queue != Queue::Capture
            || index as usize >= self.buffers.len()
            || self.queued.contains(&index)
            || self.done.iter().any(|d| d.index == index)
        {
            return Err(self.error("VIDIOC_QBUF", libc::EINVAL));
        }
        self.queued.push_back(index);
        Ok(())
    }

    fn dequeue_buffer(&mut self, queue: Queue) -> Result<Option<Dequeued>, Error> {
        self.check_present("VIDIOC_DQBUF")?;
        if queue != Queue::Capture || !self.streaming {
            return Err(self.error("VIDIOC_DQBUF", libc::EINVAL));
        }
        Ok(self.done.pop_front())
    }

    fn stream_on(&mut self, queue: Queue) -> Result<(), Error> {
        self.check_present("VIDIOC_STREAMON")?;
        if queue != Queue::Capture || self.buffers.is_empty() {
            return Err(self.error("VIDIOC_STREAMON", libc::EINVAL));
        }
        self.streaming = true;
        self.stream_start = monotonic_now();
        self.record(|log| log.stream_on += 1);
        Ok(())
    }

    fn stream_off(&mut self, queue: Queue) -> Result<(), Error> {
        self.check_present("VIDIOC_STREAMOFF")?;
        if queue != Queue::Capture {
            return Err(self.error("VIDIOC_STREAMOFF", libc::EINVAL));
        }
        self.streaming = false;
        self.queued.clear();
        self.done.clear();
        self.record(|log| log.stream_off += 1);
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> Result<Readiness, Error> {
        if self.gone || !self.streaming {
            // poll() on a vanished or idle node: POLLERR.
            return Ok(Readiness {
                error: true,
                ..Readiness::default()
            });
        }
        if !self.done.is_empty() {
            return Ok(Readiness {
                capture: true,
                ..Readiness::default()
            });
        }
        if self
            .faults
            .vanish_after
            .is_some_and(|n| self.delivered >= n)
        {
            // Unplugged: the next DQBUF fails with ENODEV, or poll says POLLERR.
            self.gone = true;
            return Ok(Readiness {
                capture: !self.faults.vanish_in_poll,
                error: self.faults.vanish_in_poll,
                ..Readiness::default()
            });
        }
        let stalled = self.faults.stall_after.is_some_and(|n| self.delivered >= n);
        if stalled || self.queued.is_empty() {
            std::thread::sleep(timeout);
            return Ok(Readiness::default());
        }
        if !self.faults.frame_pause.is_zero() {
            std::thread::sleep(self.faults.frame_pause.min(timeout));
        }
        self.produce();
        Ok(Readiness {
            capture: !self.done.is_empty(),
            ..Readiness::default()
        })
    }

    fn encoder_command(&mut self, _cmd: u32) -> Result<(), Error> {
        Err(Error::Unsupported {
            ioctl: "VIDIOC_ENCODER_CMD",
            path: self.path.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::describe;

    fn set(fake: &mut FakeCamera, pixelformat: u32, width: u32, height: u32) -> ImageFormat {
        fake.set_format(
            Queue::Capture,
            &ImageFormat {
                width,
                height,
                pixelformat,
                field: sys::V4L2_FIELD_NONE,
                colorspace: 0,
                planes: vec![],
            },
        )
        .unwrap()
    }

    #[test]
    fn describing_the_fake_gives_back_its_fixture() {
        for name in [
            "legacy-ov5647",
            "legacy-imx219",
            "legacy-imx477",
            "uvc-c920",
            "uvc-c270",
        ] {
            let desc = fixture(name);
            assert!(desc.provenance.contains("replace"), "{name}");
            let fake = FakeCamera::new(desc.clone());
            let mut described = describe(&fake).unwrap();
            described.provenance = desc.provenance.clone();
            assert_eq!(described, desc, "{name}");
        }
    }

    #[test]
    fn legacy_s_fmt_rounds_and_sizes_like_the_driver() {
        let mut fake = FakeCamera::new(fixture("legacy-ov5647"));
        let h264 = set(&mut fake, sys::V4L2_PIX_FMT_H264, 1279, 719);
        assert_eq!((h264.width, h264.height), (1280, 720));
        assert_eq!(h264.planes[0].bytesperline, 0);
        // ((720+15)&~15) * ((1280+31)&~31) * 8 / 8
        assert_eq!(h264.planes[0].sizeimage, 720 * 1280);
        let small = set(&mut fake, sys::V4L2_PIX_FMT_H264, 64, 48);
        assert_eq!(small.planes[0].sizeimage, 80 * 1024);
        let yuyv = set(&mut fake, sys::V4L2_PIX_FMT_YUYV, 5000, 10);
        assert_eq!((yuyv.width, yuyv.height), (2592, 32));
        assert_eq!(yuyv.planes[0].bytesperline, 2592 * 2);
        // An unknown format becomes the first one (YU12).
        let other = set(&mut fake, crate::v4l2::fourcc(b"ABCD"), 640, 480);
        assert_eq!(other.pixelformat, sys::V4L2_PIX_FMT_YUV420);
        let interval = fake
            .set_frame_interval(
                Queue::Capture,
                Fraction {
                    numerator: 1,
                    denominator: 120,
                },
            )
            .unwrap();
        assert_eq!(
            interval,
            Some(Fraction {
                numerator: 1,
                denominator: 90
            })
        );
    }

    #[test]
    fn uvc_s_fmt_and_s_parm_pick_the_nearest_offer() {
        let mut fake = FakeCamera::new(fixture("uvc-c920"));
        let f = set(&mut fake, sys::V4L2_PIX_FMT_YUYV, 1600, 900);
        assert_eq!((f.width, f.height), (1600, 896));
        let interval = fake
            .set_frame_interval(
                Queue::Capture,
                Fraction {
                    numerator: 1,
                    denominator: 30,
                },
            )
            .unwrap();
        assert_eq!(
            interval,
            Some(Fraction {
                numerator: 2,
                denominator: 15
            })
        );
    }

    #[test]
    fn controls_behave_like_the_v4l2_core() {
        let mut fake = FakeCamera::new(fixture("legacy-imx219"));
        let errno = |r: Result<(), Error>| r.unwrap_err().errno();
        // Integers are clamped and rounded to their step.
        fake.set_control(sys::V4L2_CID_MPEG_VIDEO_BITRATE, 3_010_000)
            .unwrap();
        fake.set_control(sys::V4L2_CID_BRIGHTNESS, 500).unwrap();
        let log = fake.log.lock().unwrap().clone();
        assert_eq!(
            log.control(sys::V4L2_CID_MPEG_VIDEO_BITRATE),
            Some(3_000_000)
        );
        assert_eq!(log.control(sys::V4L2_CID_BRIGHTNESS), Some(100));
        // Menus: out of range, skipped entries, unknown controls.
        assert_eq!(
            errno(fake.set_control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL, 13)),
            Some(libc::ERANGE)
        );
        assert_eq!(
            errno(fake.set_control(sys::V4L2_CID_MPEG_VIDEO_H264_PROFILE, 3)),
            Some(libc::EINVAL)
        );
        assert_eq!(
            errno(fake.set_control(sys::V4L2_CID_POWER_LINE_FREQUENCY + 1000, 0)),
            Some(libc::EINVAL)
        );
    }

    #[test]
    fn legacy_h264_comes_with_parameter_sets_in_their_own_buffer() {
        let mut fake = FakeCamera::new(fixture("legacy-ov5647"));
        set(&mut fake, sys::V4L2_PIX_FMT_H264, 1920, 1080);
        assert_eq!(fake.request_buffers(Queue::Capture, 2).unwrap(), 2);
        for i in 0..2 {
            fake.queue_buffer(Queue::Capture, i, &[], Duration::ZERO)
                .unwrap();
        }
        fake.stream_on(Queue::Capture).unwrap();
        let mut got = Vec::new();
        while got.len() < 4 {
            assert!(fake.wait(Duration::from_millis(10)).unwrap().capture);
            let done = fake.dequeue_buffer(Queue::Capture).unwrap().unwrap();
            let data = fake.buffer(Queue::Capture, done.index, 0).unwrap()
                [..done.planes[0].bytesused as usize]
                .to_vec();
            got.push((data, done.flags, done.timestamp));
            fake.queue_buffer(Queue::Capture, done.index, &[], Duration::ZERO)
                .unwrap();
        }
        // SPS + PPS alone, then the IDR picture flagged KEYFRAME, then P pictures.
        assert_eq!(got[0].0[4] & 0x1f, 7);
        assert!(!crate::h264::split::contains_slice(&got[0].0));
        assert!(crate::h264::split::contains_slice(&got[1].0));
        assert_ne!(got[1].1 & sys::V4L2_BUF_FLAG_KEYFRAME, 0);
        assert_eq!(got[2].1 & sys::V4L2_BUF_FLAG_KEYFRAME, 0);
        assert!(got
            .iter()
            .all(|g| g.1 & sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC != 0));
        assert!(got[3].2 > got[1].2);
    }
}
