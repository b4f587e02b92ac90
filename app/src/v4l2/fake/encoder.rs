//! A fake bcm2835-codec encoder node (`bcm2835-codec-encode`) for tests: a [`Node`]
//! that answers like the Raspberry Pi's memory-to-memory H.264 encoder.
//!
//! What it imitates, from `drivers/staging/vc04_services/bcm2835-codec/
//! bcm2835-v4l2-codec.c` (raspberrypi/linux) and the V4L2 core:
//!
//! - QUERYCAP, ENUM_FMT, ENUM_FRAMESIZES (stepwise 32..1920, step 2) and the controls
//!   (ranges, steps, menus) from the fixture `tests/fixtures/v4l2/bcm2835-codec-encode.json`;
//!   ENUM_FRAMEINTERVALS is not implemented (ENOTTY).
//! - S_FMT as `vidioc_try_fmt` does for the ENCODE role: an unknown pixel format
//!   becomes the queue's first format (no error), the size is clamped to
//!   32..1920, `bytesperline` = ALIGN(width x depth / 8, align) with 64 for YU12,
//!   YV12 and the packed 4:2:2 formats and 32 for NV12/NV21, the height is NOT
//!   aligned, `sizeimage` = bytesperline x height x 3/2 (4:2:0) or x 1 (4:2:2);
//!   H.264 gets 512 KiB up to 1280x720 and 768 KiB above, or more if asked. EBUSY
//!   once buffers exist.
//! - Controls as the V4L2 control core: integers clamped and rounded to the step,
//!   menu entries outside the menu refused (EINVAL), read-only ones EACCES.
//! - MMAP buffers are `Vec<u8>` of `sizeimage` bytes; QBUF/DQBUF/STREAMON/STREAMOFF
//!   with vb2's checks (bad index, queued twice, bytesused beyond the buffer).
//! - Encoding: every queued output buffer yields one coded frame on the next free
//!   capture buffer: the next access unit of the real Pi recording
//!   `shared/samples/pi-raspivid-1080p25.h264` (in order, from the start again
//!   after the end), `V4L2_BUF_FLAG_KEYFRAME` on IDR pictures, the output
//!   buffer's timestamp copied. `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME` makes the next
//!   frame the first (IDR) access unit. `V4L2_ENC_CMD_STOP` yields, after the
//!   pending frames, an empty capture buffer with `V4L2_BUF_FLAG_LAST`; DQBUF after
//!   it fails with EPIPE, as vb2 does.
//!
//! It records what it was given ([`FakeHandle::record`]): formats, controls, frame
//! interval, commands and every output buffer's bytes, so tests can check that the
//! stride conversion put the pixels in the right place. Faults ([`Faults`]) can be
//! switched on at any time through the handle.

use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::h264::AccessUnitReader;
use crate::v4l2::node::{
    ControlInfo, ControlKind, Dequeued, ImageFormat, Node, NodeDescription, PlaneLayout, PlaneUse,
    Queue, Readiness,
};
use crate::v4l2::{fourcc, sys, Capability, Error, FormatDesc, Fraction, FrameInterval, FrameSize};

/// The fixture this fake answers from.
pub const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v4l2/bcm2835-codec-encode.json"
));

/// The real Pi recording whose access units the fake "encodes".
pub const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/samples/pi-raspivid-1080p25.h264"
);

/// The fixture, parsed.
pub fn description() -> NodeDescription {
    serde_json::from_str(FIXTURE).expect("the bcm2835-codec-encode fixture parses")
}

/// One coded frame of the sample: Annex-B bytes and whether it is an IDR picture.
#[derive(Debug, Clone)]
pub struct SampleFrame {
    /// The access unit, Annex-B.
    pub data: Vec<u8>,
    /// An IDR (or recovery point) picture.
    pub keyframe: bool,
}

/// The sample's access units, read once.
pub fn sample_frames() -> &'static [SampleFrame] {
    static FRAMES: OnceLock<Vec<SampleFrame>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let bytes = std::fs::read(SAMPLE).expect("the Pi sample is readable");
        let mut reader = AccessUnitReader::new();
        let mut units = Vec::new();
        reader.push(&bytes, &mut units);
        reader.flush(&mut units);
        units
            .iter()
            .map(|au| SampleFrame {
                data: au.to_annex_b().to_vec(),
                keyframe: au.is_keyframe(),
            })
            .collect()
    })
}

/// Faults to inject.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// S_FMT with this pixel format fails with EINVAL.
    pub refuse_format: Option<u32>,
    /// Setting this control fails with EINVAL whatever the value (firmware that
    /// rejects a value its range allows).
    pub refuse_control: Option<u32>,
    /// The encoder holds every output buffer and encodes nothing (a stalled VPU).
    pub slow: bool,
    /// The device is gone: every call fails with ENODEV, poll reports an error.
    pub vanished: bool,
    /// Coded frames report a `bytesused` beyond their buffer.
    pub bogus_bytesused: bool,
    /// Coded frames come back with an index that was never allocated, once each.
    pub bogus_index: bool,
    /// Coded frames carry `V4L2_BUF_FLAG_ERROR`.
    pub error_flag: bool,
    /// Answers DQBUF on the capture queue gives instead of the real ones, whatever
    /// they say (for robustness tests), until used up.
    pub scripted_capture: VecDeque<Dequeued>,
    /// The same for the output queue.
    pub scripted_output: VecDeque<Dequeued>,
}

/// One output buffer the fake was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Buffer index.
    pub index: u32,
    /// `bytesused` of its plane.
    pub bytesused: u32,
    /// Its first `bytesused` bytes.
    pub data: Vec<u8>,
    /// Its timestamp.
    pub timestamp: Duration,
}

/// What the fake was asked to do.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Every S_FMT answer, in order.
    pub formats: Vec<(Queue, ImageFormat)>,
    /// Every control set, with the value the control took (after rounding).
    pub controls: Vec<(u32, i64)>,
    /// The last S_PARM frame interval.
    pub frame_interval: Option<Fraction>,
    /// Every REQBUFS: queue, count asked.
    pub reqbufs: Vec<(Queue, u32)>,
    /// Every ENCODER_CMD.
    pub commands: Vec<u32>,
    /// Every output buffer queued while the output queue was streaming.
    pub received: Vec<Received>,
    /// STREAMON / STREAMOFF calls: queue, on.
    pub streaming: Vec<(Queue, bool)>,
}

impl Record {
    /// The last value set on control `id`.
    pub fn control(&self, id: u32) -> Option<i64> {
        self.controls
            .iter()
            .rev()
            .find(|(c, _)| *c == id)
            .map(|(_, v)| *v)
    }

    /// The last format set on `queue`.
    pub fn format(&self, queue: Queue) -> Option<&ImageFormat> {
        self.formats
            .iter()
            .rev()
            .find(|(q, _)| *q == queue)
            .map(|(_, f)| f)
    }
}

#[derive(Debug, Default)]
struct Shared {
    faults: Faults,
    record: Record,
}

/// The test's side of a [`FakeEncoder`], usable after the node moved into the code
/// under test.
#[derive(Debug, Clone)]
pub struct FakeHandle(Arc<Mutex<Shared>>);

impl FakeHandle {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Changes the faults.
    pub fn faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.lock().faults);
    }

    /// A copy of what the fake was asked.
    pub fn record(&self) -> Record {
        self.lock().record.clone()
    }
}

#[derive(Debug)]
struct QueueState {
    format: ImageFormat,
    buffers: Vec<Vec<u8>>,
    /// Buffers the driver owns (queued, being processed, or done and not dequeued).
    owned: Vec<bool>,
    /// Queued and waiting: index, timestamp, bytesused.
    waiting: VecDeque<(u32, Duration, u32)>,
    done: VecDeque<Dequeued>,
    streaming: bool,
    sequence: u32,
}

impl QueueState {
    fn new(format: ImageFormat) -> Self {
        QueueState {
            format,
            buffers: Vec::new(),
            owned: Vec::new(),
            waiting: VecDeque::new(),
            done: VecDeque::new(),
            streaming: false,
            sequence: 0,
        }
    }

    fn reset(&mut self) {
        self.owned.iter_mut().for_each(|o| *o = false);
        self.waiting.clear();
        self.done.clear();
        self.streaming = false;
        self.sequence = 0;
    }
}

/// A fake `bcm2835-codec-encode` node. See the module documentation.
#[derive(Debug)]
pub struct FakeEncoder {
    path: PathBuf,
    description: NodeDescription,
    output: QueueState,
    capture: QueueState,
    controls: Vec<(u32, i64)>,
    next_frame: usize,
    force_keyframe: bool,
    draining: bool,
    last_queued: bool,
    last_dequeued: bool,
    shared: Arc<Mutex<Shared>>,
}

/// `(depth in bits, bytesperline alignment for the ENCODE role, sizeimage x 2 / (bpl x height))`
/// of a raw format in the driver's table; `None` for compressed or unknown formats.
fn raw_format_info(pixelformat: u32) -> Option<(u64, u64, u64)> {
    let table: [(&[u8; 4], u64, u64, u64); 12] = [
        (b"YU12", 8, 64, 3),
        (b"YV12", 8, 64, 3),
        (b"NV12", 8, 32, 3),
        (b"NV21", 8, 32, 3),
        (b"RGBP", 16, 32, 2),
        (b"YUYV", 16, 64, 2),
        (b"UYVY", 16, 64, 2),
        (b"YVYU", 16, 64, 2),
        (b"VYUY", 16, 64, 2),
        (b"RGB3", 24, 32, 2),
        (b"BGR3", 24, 32, 2),
        (b"BGR4", 32, 64, 2),
    ];
    table
        .iter()
        .find(|(code, ..)| fourcc(code) == pixelformat)
        .map(|&(_, depth, align, mult)| (depth, align, mult))
}

const MIN_SIZE: u32 = 32;
const MAX_SIZE: u32 = 1920;

impl FakeEncoder {
    /// A fake encoder at `/dev/video11`, answering from the fixture.
    pub fn new() -> (FakeEncoder, FakeHandle) {
        Self::with_path("/dev/video11")
    }

    /// The same at another path (the number is never assumed).
    pub fn with_path(path: impl AsRef<Path>) -> (FakeEncoder, FakeHandle) {
        Self::with_description(path, description())
    }

    /// A fake answering from `description` (the fixture, changed by a test:
    /// another card, fewer formats or controls).
    pub fn with_description(
        path: impl AsRef<Path>,
        description: NodeDescription,
    ) -> (FakeEncoder, FakeHandle) {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let controls = description
            .controls
            .iter()
            .map(|c| (c.id, c.default))
            .collect();
        let default_out = ImageFormat {
            width: 32,
            height: 32,
            pixelformat: sys::V4L2_PIX_FMT_YUV420,
            field: sys::V4L2_FIELD_NONE,
            colorspace: sys::V4L2_COLORSPACE_REC709,
            planes: vec![PlaneLayout {
                bytesperline: 64,
                sizeimage: 64 * 32 * 3 / 2,
            }],
        };
        let default_cap = ImageFormat {
            width: 32,
            height: 32,
            pixelformat: sys::V4L2_PIX_FMT_H264,
            field: sys::V4L2_FIELD_NONE,
            colorspace: sys::V4L2_COLORSPACE_REC709,
            planes: vec![PlaneLayout {
                bytesperline: 0,
                sizeimage: 512 << 10,
            }],
        };
        let fake = FakeEncoder {
            path: path.as_ref().to_path_buf(),
            description,
            output: QueueState::new(default_out),
            capture: QueueState::new(default_cap),
            controls,
            next_frame: 0,
            force_keyframe: false,
            draining: false,
            last_queued: false,
            last_dequeued: false,
            shared: shared.clone(),
        };
        (fake, FakeHandle(shared))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    fn error(&self, ioctl: &'static str, errno: i32) -> Error {
        Error::Ioctl {
            ioctl,
            path: self.path.clone(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    fn check_present(&self, ioctl: &'static str) -> Result<(), Error> {
        if self.faults().vanished {
            Err(self.error(ioctl, libc::ENODEV))
        } else {
            Ok(())
        }
    }

    fn queue_state(&self, queue: Queue) -> Option<&QueueState> {
        match queue {
            Queue::OutputMplane => Some(&self.output),
            Queue::CaptureMplane => Some(&self.capture),
            _ => None,
        }
    }

    fn queue_state_mut(&mut self, queue: Queue) -> Option<&mut QueueState> {
        match queue {
            Queue::OutputMplane => Some(&mut self.output),
            Queue::CaptureMplane => Some(&mut self.capture),
            _ => None,
        }
    }

    /// `vidioc_try_fmt` of the ENCODE role.
    fn try_format(&self, queue: Queue, asked: &ImageFormat) -> ImageFormat {
        let offered = self.description.formats(queue);
        let pixelformat = if offered
            .iter()
            .any(|f| f.format.pixelformat == asked.pixelformat)
        {
            asked.pixelformat
        } else {
            offered
                .first()
                .map(|f| f.format.pixelformat)
                .unwrap_or(asked.pixelformat)
        };
        let mut width = asked.width.min(MAX_SIZE);
        let mut height = asked.height.min(MAX_SIZE);
        let asked_plane = asked.planes.first().copied().unwrap_or(PlaneLayout {
            bytesperline: 0,
            sizeimage: 0,
        });
        let plane = match raw_format_info(pixelformat) {
            Some((depth, align, mult)) => {
                width = width.max(MIN_SIZE);
                height = height.max(MIN_SIZE);
                let min_bpl = (u64::from(width) * depth / 8).next_multiple_of(align);
                let bpl = u64::from(asked_plane.bytesperline)
                    .max(min_bpl)
                    .next_multiple_of(align);
                let sizeimage = bpl * u64::from(height) * mult / 2;
                PlaneLayout {
                    bytesperline: u32::try_from(bpl).unwrap_or(u32::MAX),
                    sizeimage: u32::try_from(sizeimage).unwrap_or(u32::MAX),
                }
            }
            None => {
                let default = if u64::from(width) * u64::from(height) > 1280 * 720 {
                    768 << 10
                } else {
                    512 << 10
                };
                PlaneLayout {
                    bytesperline: 0,
                    sizeimage: asked_plane.sizeimage.max(default),
                }
            }
        };
        ImageFormat {
            width,
            height,
            pixelformat,
            field: sys::V4L2_FIELD_NONE,
            colorspace: if asked.colorspace == 0 {
                sys::V4L2_COLORSPACE_REC709
            } else {
                asked.colorspace
            },
            planes: vec![plane],
        }
    }

    /// The VPU's work: encodes queued output buffers into free capture buffers.
    fn process(&mut self) {
        let faults = self.faults();
        if faults.vanished || faults.slow || !(self.output.streaming && self.capture.streaming) {
            return;
        }
        let frames = sample_frames();
        while !self.output.waiting.is_empty() && !self.capture.waiting.is_empty() {
            let (Some((out_index, timestamp, out_used)), Some((cap_index, ..))) = (
                self.output.waiting.pop_front(),
                self.capture.waiting.pop_front(),
            ) else {
                break;
            };
            if self.force_keyframe {
                self.force_keyframe = false;
                self.next_frame = 0;
            }
            let frame = &frames[self.next_frame % frames.len()];
            self.next_frame += 1;
            let buffer = &mut self.capture.buffers[cap_index as usize];
            let len = frame.data.len().min(buffer.len());
            buffer[..len].copy_from_slice(&frame.data[..len]);
            let mut flags = sys::V4L2_BUF_FLAG_TIMESTAMP_COPY
                | if frame.keyframe {
                    sys::V4L2_BUF_FLAG_KEYFRAME
                } else {
                    sys::V4L2_BUF_FLAG_PFRAME
                };
            if faults.error_flag {
                flags |= sys::V4L2_BUF_FLAG_ERROR;
            }
            let mut bytesused = len as u32;
            if faults.bogus_bytesused {
                bytesused = buffer.len() as u32 + 100;
            }
            let mut index = cap_index;
            if faults.bogus_index {
                // The real buffer stays with the "driver"; a never-allocated index comes back.
                index = 1000 + cap_index;
            }
            self.capture.done.push_back(Dequeued {
                index,
                planes: vec![PlaneUse {
                    bytesused,
                    data_offset: 0,
                }],
                flags,
                timestamp,
                sequence: self.capture.sequence,
            });
            self.capture.sequence += 1;
            self.output.done.push_back(Dequeued {
                index: out_index,
                planes: vec![PlaneUse {
                    bytesused: out_used,
                    data_offset: 0,
                }],
                flags: sys::V4L2_BUF_FLAG_TIMESTAMP_COPY,
                timestamp,
                sequence: self.output.sequence,
            });
            self.output.sequence += 1;
        }
        if self.draining && !self.last_queued && self.output.waiting.is_empty() {
            if let Some((cap_index, ..)) = self.capture.waiting.pop_front() {
                self.last_queued = true;
                self.draining = false;
                self.capture.done.push_back(Dequeued {
                    index: cap_index,
                    planes: vec![PlaneUse {
                        bytesused: 0,
                        data_offset: 0,
                    }],
                    flags: sys::V4L2_BUF_FLAG_TIMESTAMP_COPY | sys::V4L2_BUF_FLAG_LAST,
                    timestamp: Duration::ZERO,
                    sequence: self.capture.sequence,
                });
                self.capture.sequence += 1;
            }
        }
    }
}

impl Node for FakeEncoder {
    fn path(&self) -> &Path {
        &self.path
    }

    fn capability(&self) -> &Capability {
        &self.description.capability
    }

    fn formats(&self, queue: Queue) -> Result<Vec<FormatDesc>, Error> {
        self.check_present("VIDIOC_ENUM_FMT")?;
        if self.queue_state(queue).is_none() {
            return Err(self.error("VIDIOC_ENUM_FMT", libc::EINVAL));
        }
        Ok(self.description.format_descs(queue))
    }

    fn frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        self.check_present("VIDIOC_ENUM_FRAMESIZES")?;
        self.description
            .frame_sizes_of(pixelformat)
            .ok_or_else(|| self.error("VIDIOC_ENUM_FRAMESIZES", libc::EINVAL))
    }

    fn frame_intervals(&self, _: u32, _: u32, _: u32) -> Result<Vec<FrameInterval>, Error> {
        self.check_present("VIDIOC_ENUM_FRAMEINTERVALS")?;
        Err(Error::Unsupported {
            ioctl: "VIDIOC_ENUM_FRAMEINTERVALS",
            path: self.path.clone(),
        })
    }

    fn controls(&self) -> Result<Vec<ControlInfo>, Error> {
        self.check_present("VIDIOC_QUERYCTRL")?;
        Ok(self.description.controls.clone())
    }

    fn set_control(&mut self, id: u32, value: i64) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_S_EXT_CTRLS";
        self.check_present(IOCTL)?;
        if self.faults().refuse_control == Some(id) {
            return Err(self.error(IOCTL, libc::EINVAL));
        }
        let Some(info) = self.description.control(id).cloned() else {
            return Err(self.error(IOCTL, libc::EINVAL));
        };
        if info.flags & sys::V4L2_CTRL_FLAG_READ_ONLY != 0 {
            return Err(self.error(IOCTL, libc::EACCES));
        }
        let stored = match info.kind {
            ControlKind::Menu | ControlKind::IntegerMenu => {
                if !info.menu.iter().any(|m| i64::from(m.index) == value) {
                    return Err(self.error(IOCTL, libc::EINVAL));
                }
                value
            }
            ControlKind::Button => {
                if id == sys::V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME {
                    self.force_keyframe = true;
                }
                value
            }
            _ => {
                // The control core's ROUND_TO_RANGE: clamp, then the nearest step.
                let clamped = value.clamp(info.minimum, info.maximum);
                let step = i64::try_from(info.step.max(1)).unwrap_or(1);
                let rounded = info.minimum + (clamped - info.minimum + step / 2) / step * step;
                if rounded > info.maximum {
                    rounded - step
                } else {
                    rounded
                }
            }
        };
        if let Some(slot) = self.controls.iter_mut().find(|(c, _)| *c == id) {
            slot.1 = stored;
        }
        // The driver mirrors the I-frame period onto the GOP size.
        if id == sys::V4L2_CID_MPEG_VIDEO_H264_I_PERIOD {
            if let Some(slot) = self
                .controls
                .iter_mut()
                .find(|(c, _)| *c == sys::V4L2_CID_MPEG_VIDEO_GOP_SIZE)
            {
                slot.1 = stored;
            }
        }
        self.lock().record.controls.push((id, stored));
        Ok(())
    }

    fn format(&self, queue: Queue) -> Result<ImageFormat, Error> {
        self.check_present("VIDIOC_G_FMT")?;
        self.queue_state(queue)
            .map(|q| q.format.clone())
            .ok_or_else(|| self.error("VIDIOC_G_FMT", libc::EINVAL))
    }

    fn set_format(&mut self, queue: Queue, format: &ImageFormat) -> Result<ImageFormat, Error> {
        const IOCTL: &str = "VIDIOC_S_FMT";
        self.check_present(IOCTL)?;
        let Some(state) = self.queue_state(queue) else {
            return Err(self.error(IOCTL, libc::EINVAL));
        };
        if !state.buffers.is_empty() {
            return Err(self.error(IOCTL, libc::EBUSY));
        }
        if self.faults().refuse_format == Some(format.pixelformat) {
            return Err(self.error(IOCTL, libc::EINVAL));
        }
        let chosen = self.try_format(queue, format);
        if let Some(state) = self.queue_state_mut(queue) {
            state.format = chosen.clone();
        }
        self.lock().record.formats.push((queue, chosen.clone()));
        Ok(chosen)
    }

    fn set_frame_interval(
        &mut self,
        queue: Queue,
        interval: Fraction,
    ) -> Result<Option<Fraction>, Error> {
        const IOCTL: &str = "VIDIOC_S_PARM";
        self.check_present(IOCTL)?;
        if queue != Queue::OutputMplane || interval.numerator == 0 || interval.denominator == 0 {
            return Err(self.error(IOCTL, libc::EINVAL));
        }
        self.lock().record.frame_interval = Some(interval);
        Ok(Some(interval))
    }

    fn request_buffers(&mut self, queue: Queue, count: u32) -> Result<u32, Error> {
        const IOCTL: &str = "VIDIOC_REQBUFS";
        self.check_present(IOCTL)?;
        let einval = self.error(IOCTL, libc::EINVAL);
        let ebusy = self.error(IOCTL, libc::EBUSY);
        let Some(state) = self.queue_state_mut(queue) else {
            return Err(einval);
        };
        if state.streaming {
            return Err(ebusy);
        }
        let size = state.format.planes.first().map_or(0, |p| p.sizeimage) as usize;
        let count = count.min(32);
        state.buffers = (0..count).map(|_| vec![0u8; size]).collect();
        state.owned = vec![false; count as usize];
        state.reset();
        self.lock().record.reqbufs.push((queue, count));
        Ok(count)
    }

    fn buffer(&self, queue: Queue, index: u32, plane: usize) -> Option<&[u8]> {
        if plane != 0 {
            return None;
        }
        self.queue_state(queue)?
            .buffers
            .get(index as usize)
            .map(|b| b.as_slice())
    }

    fn buffer_mut(&mut self, queue: Queue, index: u32, plane: usize) -> Option<&mut [u8]> {
        if plane != 0 {
            return None;
        }
        self.queue_state_mut(queue)?
            .buffers
            .get_mut(index as usize)
            .map(|b| b.as_mut_slice())
    }

    fn queue_buffer(
        &mut self,
        queue: Queue,
        index: u32,
        bytesused: &[u32],
        timestamp: Duration,
    ) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_QBUF";
        self.check_present(IOCTL)?;
        let einval = self.error(IOCTL, libc::EINVAL);
        let Some(state) = self.queue_state_mut(queue) else {
            return Err(einval);
        };
        let i = index as usize;
        let (Some(buffer), Some(false)) = (state.buffers.get(i), state.owned.get(i).copied())
        else {
            return Err(einval);
        };
        let mut used_bytes = 0;
        let received = if queue == Queue::OutputMplane {
            let [used] = bytesused else {
                return Err(einval);
            };
            let Some(data) = buffer.get(..*used as usize) else {
                return Err(einval);
            };
            used_bytes = *used;
            Some(Received {
                index,
                bytesused: *used,
                data: data.to_vec(),
                timestamp,
            })
        } else {
            None
        };
        state.owned[i] = true;
        state.waiting.push_back((index, timestamp, used_bytes));
        if let Some(received) = received {
            self.lock().record.received.push(received);
        }
        self.process();
        Ok(())
    }

    fn dequeue_buffer(&mut self, queue: Queue) -> Result<Option<Dequeued>, Error> {
        const IOCTL: &str = "VIDIOC_DQBUF";
        self.check_present(IOCTL)?;
        {
            let mut shared = self.lock();
            let scripted = match queue {
                Queue::CaptureMplane => shared.faults.scripted_capture.pop_front(),
                Queue::OutputMplane => shared.faults.scripted_output.pop_front(),
                _ => None,
            };
            if scripted.is_some() {
                return Ok(scripted);
            }
        }
        self.process();
        let last_dequeued = self.last_dequeued;
        let epipe = self.error(IOCTL, libc::EPIPE);
        let einval = self.error(IOCTL, libc::EINVAL);
        let Some(state) = self.queue_state_mut(queue) else {
            return Err(einval);
        };
        if !state.streaming {
            return Err(einval);
        }
        let Some(done) = state.done.pop_front() else {
            if queue == Queue::CaptureMplane && last_dequeued {
                return Err(epipe);
            }
            return Ok(None);
        };
        if let Some(owned) = state.owned.get_mut(done.index as usize) {
            *owned = false;
        }
        if done.flags & sys::V4L2_BUF_FLAG_LAST != 0 {
            self.last_dequeued = true;
        }
        Ok(Some(done))
    }

    fn stream_on(&mut self, queue: Queue) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_STREAMON";
        self.check_present(IOCTL)?;
        let einval = self.error(IOCTL, libc::EINVAL);
        let Some(state) = self.queue_state_mut(queue) else {
            return Err(einval);
        };
        if state.buffers.is_empty() {
            return Err(einval);
        }
        state.streaming = true;
        self.lock().record.streaming.push((queue, true));
        self.process();
        Ok(())
    }

    fn stream_off(&mut self, queue: Queue) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_STREAMOFF";
        self.check_present(IOCTL)?;
        let Some(state) = self.queue_state_mut(queue) else {
            return Err(self.error(IOCTL, libc::EINVAL));
        };
        state.reset();
        if queue == Queue::CaptureMplane {
            self.last_queued = false;
            self.last_dequeued = false;
            self.draining = false;
        }
        self.lock().record.streaming.push((queue, false));
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> Result<Readiness, Error> {
        if self.faults().vanished {
            return Ok(Readiness {
                error: true,
                ..Readiness::default()
            });
        }
        self.process();
        let ready = |fake: &FakeEncoder| Readiness {
            capture: !fake.capture.done.is_empty()
                || (fake.last_dequeued && fake.capture.streaming),
            output: !fake.output.done.is_empty(),
            event: false,
            error: false,
        };
        let now = ready(self);
        if !now.timed_out() {
            return Ok(now);
        }
        // Nothing happens by itself in the fake: the whole timeout passes.
        std::thread::sleep(timeout);
        Ok(ready(self))
    }

    fn encoder_command(&mut self, cmd: u32) -> Result<(), Error> {
        const IOCTL: &str = "VIDIOC_ENCODER_CMD";
        self.check_present(IOCTL)?;
        self.lock().record.commands.push(cmd);
        match cmd {
            sys::V4L2_ENC_CMD_STOP => {
                self.draining = true;
                self.process();
                Ok(())
            }
            sys::V4L2_ENC_CMD_START => Ok(()),
            _ => Err(self.error(IOCTL, libc::EINVAL)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_describes_the_encoder() {
        let d = description();
        assert_eq!(d.capability.card, "bcm2835-codec-encode");
        assert_eq!(d.capability.driver, "bcm2835-codec");
        assert!(d
            .capability
            .has(sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING));
        assert!(d
            .format(Queue::CaptureMplane, sys::V4L2_PIX_FMT_H264)
            .is_some());
        for raw in [
            sys::V4L2_PIX_FMT_YUYV,
            sys::V4L2_PIX_FMT_UYVY,
            sys::V4L2_PIX_FMT_NV12,
            sys::V4L2_PIX_FMT_NV21,
            sys::V4L2_PIX_FMT_YUV420,
            sys::V4L2_PIX_FMT_YVU420,
        ] {
            assert!(d.format(Queue::OutputMplane, raw).is_some(), "{raw:#x}");
        }
        let bitrate = d.control(sys::V4L2_CID_MPEG_VIDEO_BITRATE).unwrap();
        assert_eq!(
            (bitrate.minimum, bitrate.maximum, bitrate.step),
            (25_000, 25_000_000, 25_000)
        );
        let level = d.control(sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL).unwrap();
        assert_eq!(level.menu.last().unwrap().name, "5.1");
        // Controls come in QUERYCTRL order (ascending ids).
        assert!(d.controls.windows(2).all(|w| w[0].id < w[1].id));
        // The description round-trips through JSON unchanged.
        let again: NodeDescription =
            serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn the_sample_gives_real_access_units() {
        let frames = sample_frames();
        assert_eq!(frames.len(), 116);
        assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 2);
        assert!(frames[0].keyframe);
        assert_eq!(&frames[0].data[..4], &[0, 0, 0, 1]);
    }

    #[test]
    fn formats_are_aligned_like_the_driver() {
        let (mut fake, handle) = FakeEncoder::new();
        let ask = |pixelformat, width, height| ImageFormat {
            width,
            height,
            pixelformat,
            field: 0,
            colorspace: 0,
            planes: vec![PlaneLayout {
                bytesperline: 0,
                sizeimage: 0,
            }],
        };
        let yu12 = fake
            .set_format(
                Queue::OutputMplane,
                &ask(sys::V4L2_PIX_FMT_YUV420, 1000, 563),
            )
            .unwrap();
        assert_eq!(yu12.planes[0].bytesperline, 1024);
        assert_eq!(yu12.height, 563);
        assert_eq!(yu12.planes[0].sizeimage, 1024 * 563 * 3 / 2);
        let nv12 = fake
            .set_format(Queue::OutputMplane, &ask(sys::V4L2_PIX_FMT_NV12, 1000, 562))
            .unwrap();
        assert_eq!(nv12.planes[0].bytesperline, 1024);
        let yuyv = fake
            .set_format(Queue::OutputMplane, &ask(sys::V4L2_PIX_FMT_YUYV, 1000, 562))
            .unwrap();
        assert_eq!(yuyv.planes[0].bytesperline, 2048);
        assert_eq!(yuyv.planes[0].sizeimage, 2048 * 562);
        // Unknown formats become the default; sizes are clamped.
        let mjpeg = fake
            .set_format(Queue::OutputMplane, &ask(sys::V4L2_PIX_FMT_MJPEG, 4000, 10))
            .unwrap();
        assert_eq!(mjpeg.pixelformat, sys::V4L2_PIX_FMT_YUV420);
        assert_eq!((mjpeg.width, mjpeg.height), (1920, 32));
        let h264 = fake
            .set_format(
                Queue::CaptureMplane,
                &ask(sys::V4L2_PIX_FMT_H264, 1920, 1080),
            )
            .unwrap();
        assert_eq!(h264.planes[0].sizeimage, 768 << 10);
        assert_eq!(handle.record().formats.len(), 5);
    }
}
