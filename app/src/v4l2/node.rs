//! The narrow hardware boundary: [`Node`] is everything the camera sources and the
//! memory-to-memory encoder ask of a V4L2 device node, in typed calls. The real
//! device implements it with ioctls and mmap; tests implement it with fakes that
//! behave like the Raspberry Pi's drivers, so everything above this trait (format
//! selection, control mapping, the capture loop, the encoder state machine) is
//! tested without hardware.
//!
//! The boundary owns its words: what QUERYCAP and the enumerations answer
//! ([`Capability`], [`FormatDesc`], [`FrameSize`], [`FrameInterval`], [`Fraction`]),
//! formats, buffers and controls as typed values, and the [`Error`] every call
//! returns, which names the device.
//!
//! [`NodeDescription`] is what a node says about itself (QUERYCAP, ENUM_FMT,
//! ENUM_FRAMESIZES, ENUM_FRAMEINTERVALS, QUERYCTRL/QUERYMENU) as plain data:
//! `streamer probe --json` prints it, and recorded descriptions are the fixtures
//! that discovery and format selection are tested against.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::sys;

/// One of a node's buffer queues (`V4L2_BUF_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Queue {
    /// Single-planar capture: a camera's frames (`VIDEO_CAPTURE`).
    Capture,
    /// Single-planar output (`VIDEO_OUTPUT`).
    Output,
    /// Multi-planar capture: an M2M encoder's coded frames (`VIDEO_CAPTURE_MPLANE`).
    CaptureMplane,
    /// Multi-planar output: an M2M encoder's raw input (`VIDEO_OUTPUT_MPLANE`).
    OutputMplane,
}

impl Queue {
    /// The `V4L2_BUF_TYPE_*` value.
    pub fn buf_type(self) -> u32 {
        match self {
            Queue::Capture => sys::V4L2_BUF_TYPE_VIDEO_CAPTURE,
            Queue::Output => sys::V4L2_BUF_TYPE_VIDEO_OUTPUT,
            Queue::CaptureMplane => sys::V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            Queue::OutputMplane => sys::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
        }
    }

    /// Whether buffers of this queue are described plane by plane.
    pub fn is_mplane(self) -> bool {
        matches!(self, Queue::CaptureMplane | Queue::OutputMplane)
    }
}

/// The layout of one plane of an image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaneLayout {
    /// Bytes from the start of one row to the next (0 for compressed formats).
    pub bytesperline: u32,
    /// Bytes a buffer of this plane must hold.
    pub sizeimage: u32,
}

/// A negotiated image format: `v4l2_pix_format` for single-planar queues (one
/// entry in `planes`), `v4l2_pix_format_mplane` for multi-planar ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFormat {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The fourcc, e.g. `V4L2_PIX_FMT_H264`.
    pub pixelformat: u32,
    /// `V4L2_FIELD_*` (`V4L2_FIELD_NONE` for progressive video).
    pub field: u32,
    /// `V4L2_COLORSPACE_*`, 0 to let the driver choose.
    pub colorspace: u32,
    /// One layout per plane. When setting a format, 0s ask the driver to choose.
    pub planes: Vec<PlaneLayout>,
}

/// The kind of a control (`V4L2_CTRL_TYPE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    /// A number in `minimum..=maximum` on the `step` grid.
    Integer,
    /// 0 or 1.
    Boolean,
    /// An index into a menu of names (see [`ControlInfo::menu`]).
    Menu,
    /// An index into a menu of numbers.
    IntegerMenu,
    /// Writing any value performs an action (e.g. force a keyframe).
    Button,
    /// A 64-bit number.
    Integer64,
    /// Any other type, by its number.
    Other(u32),
}

/// One menu entry of a menu control (`VIDIOC_QUERYMENU`): only valid indexes are
/// listed (drivers skip some, e.g. H.264 levels the encoder cannot do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuItem {
    /// The value to set.
    pub index: u32,
    /// The entry's name (menus), or its number as text (integer menus).
    pub name: String,
}

/// What `VIDIOC_QUERYCTRL` (and `VIDIOC_QUERYMENU`) say about one control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlInfo {
    /// `V4L2_CID_*`.
    pub id: u32,
    /// The driver's name for it, e.g. `Video Bitrate`.
    pub name: String,
    /// Its type.
    pub kind: ControlKind,
    /// Smallest value.
    pub minimum: i64,
    /// Largest value.
    pub maximum: i64,
    /// Step between values (1 for menus).
    pub step: u64,
    /// The value after reset.
    pub default: i64,
    /// `V4L2_CTRL_FLAG_*`.
    pub flags: u32,
    /// Menu and integer-menu controls: the valid entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub menu: Vec<MenuItem>,
}

impl ControlInfo {
    /// Whether the control can be set now (not disabled, read-only or inactive...).
    pub fn is_writable(&self) -> bool {
        self.flags
            & (sys::V4L2_CTRL_FLAG_DISABLED
                | sys::V4L2_CTRL_FLAG_READ_ONLY
                | sys::V4L2_CTRL_FLAG_GRABBED)
            == 0
    }

    /// `value` as the V4L2 control core stores it (`ROUND_TO_RANGE`): clamped into
    /// the range and rounded to the nearest step from the minimum, never beyond the
    /// maximum. Exact for any value (`i128`); a range whose minimum exceeds its
    /// maximum leaves the value as it is (saturated to `i64`).
    pub fn fit(&self, value: i128) -> i64 {
        let min = i128::from(self.minimum);
        let max = i128::from(self.maximum);
        let saturated =
            |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        if min > max {
            return saturated(value);
        }
        let step = i128::from(self.step.max(1));
        let clamped = value.clamp(min, max);
        let mut rounded = min + (clamped - min + step / 2) / step * step;
        if rounded > max {
            rounded -= step;
        }
        saturated(rounded.clamp(min, max))
    }
}

/// One format of a queue with the sizes and frame intervals the node offers for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatModes {
    /// The format (`VIDIOC_ENUM_FMT`).
    pub format: FormatDesc,
    /// Its sizes (`VIDIOC_ENUM_FRAMESIZES`); empty when the driver does not say.
    #[serde(default)]
    pub sizes: Vec<SizeModes>,
}

/// One frame size and its intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeModes {
    /// The size (discrete, or a stepwise range).
    pub size: FrameSize,
    /// Its frame intervals (`VIDIOC_ENUM_FRAMEINTERVALS`; for a stepwise size, those
    /// at its largest size); empty when the driver does not say.
    #[serde(default)]
    pub intervals: Vec<FrameInterval>,
}

/// One queue's formats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueDescription {
    /// Which queue.
    pub queue: Queue,
    /// Its formats, in the driver's order.
    pub formats: Vec<FormatModes>,
}

/// Everything a node says about itself, as data: `streamer probe --json` prints
/// it, and test fixtures are recorded (or reconstructed) copies of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeDescription {
    /// Where this description came from: `"recorded by streamer probe on <board>"`,
    /// or, for a fixture reconstructed from driver sources, which sources.
    #[serde(default)]
    pub provenance: String,
    /// The device node, e.g. `/dev/video0`.
    pub path: String,
    /// `VIDIOC_QUERYCAP`.
    pub capability: Capability,
    /// The formats of each queue the node has.
    pub queues: Vec<QueueDescription>,
    /// Its controls (`VIDIOC_QUERYCTRL` with `V4L2_CTRL_FLAG_NEXT_CTRL`), control
    /// classes left out.
    #[serde(default)]
    pub controls: Vec<ControlInfo>,
}

impl NodeDescription {
    /// The formats of `queue` (empty when the node has no such queue).
    pub fn formats(&self, queue: Queue) -> &[FormatModes] {
        self.queues
            .iter()
            .find(|q| q.queue == queue)
            .map(|q| q.formats.as_slice())
            .unwrap_or(&[])
    }

    /// The entry of `pixelformat` on `queue`.
    pub fn format(&self, queue: Queue, pixelformat: u32) -> Option<&FormatModes> {
        self.formats(queue)
            .iter()
            .find(|f| f.format.pixelformat == pixelformat)
    }

    /// The control `id`.
    pub fn control(&self, id: u32) -> Option<&ControlInfo> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// What `VIDIOC_ENUM_FMT` on `queue` answers.
    pub fn format_descs(&self, queue: Queue) -> Vec<FormatDesc> {
        self.formats(queue)
            .iter()
            .map(|f| f.format.clone())
            .collect()
    }

    /// The entry of `pixelformat` on whichever queue offers it.
    fn any_queue_format(&self, pixelformat: u32) -> Option<&FormatModes> {
        self.queues
            .iter()
            .flat_map(|q| &q.formats)
            .find(|f| f.format.pixelformat == pixelformat)
    }

    /// What `VIDIOC_ENUM_FRAMESIZES` answers for `pixelformat`, `None` when no
    /// queue offers it (the driver's `EINVAL`).
    pub fn frame_sizes_of(&self, pixelformat: u32) -> Option<Vec<FrameSize>> {
        self.any_queue_format(pixelformat)
            .map(|f| f.sizes.iter().map(|s| s.size).collect())
    }

    /// What `VIDIOC_ENUM_FRAMEINTERVALS` answers for `pixelformat` at
    /// `width`x`height`: the intervals of the discrete size, or of the stepwise
    /// range that holds it (on its step grid); `None` for a format or size not
    /// offered.
    pub fn frame_intervals_of(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Option<Vec<FrameInterval>> {
        self.any_queue_format(pixelformat)?
            .sizes
            .iter()
            .find(|s| s.size.contains(width, height))
            .map(|s| s.intervals.clone())
    }
}

/// A buffer the driver handed back (`VIDIOC_DQBUF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dequeued {
    /// The buffer's index.
    pub index: u32,
    /// Bytes of payload per plane, each starting at its plane's `data_offset`
    /// (`bytesused` counts from the plane's start, so payload is
    /// `data_offset..bytesused`).
    pub planes: Vec<PlaneUse>,
    /// `V4L2_BUF_FLAG_*` (`KEYFRAME`, `ERROR`, `LAST`, ...).
    pub flags: u32,
    /// The buffer's timestamp; with `V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC`, when the
    /// frame was captured on `CLOCK_MONOTONIC`.
    pub timestamp: Duration,
    /// The driver's frame counter.
    pub sequence: u32,
}

/// How much of one plane a dequeued buffer fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneUse {
    /// Bytes used, from the start of the plane.
    pub bytesused: u32,
    /// Where the payload starts (0 for single-planar buffers).
    pub data_offset: u32,
}

impl PlaneUse {
    /// The payload range within the plane's memory, `None` when the driver's numbers
    /// do not fit a plane of `length` bytes.
    pub fn payload(&self, length: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.data_offset).ok()?;
        let end = usize::try_from(self.bytesused).ok()?;
        (start <= end && end <= length).then_some(start..end)
    }
}

/// What [`Node::wait`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// A capture buffer can be dequeued (`POLLIN`).
    pub capture: bool,
    /// An output buffer can be dequeued (`POLLOUT`).
    pub output: bool,
    /// An event is pending (`POLLPRI`).
    pub event: bool,
    /// The driver reported an error (`POLLERR`): e.g. the device is gone, or a
    /// queue is streaming with no buffers.
    pub error: bool,
}

impl Readiness {
    /// True when nothing happened before the timeout.
    pub fn timed_out(&self) -> bool {
        *self == Readiness::default()
    }
}

/// A V4L2 device node, as the sources use it. Buffers are always
/// `V4L2_MEMORY_MMAP`; the implementation owns their mappings.
///
/// The real implementation is [`super::Device`]; tests use fakes that behave like
/// the Pi's drivers. Every method names the ioctl it stands for.
pub trait Node: Send {
    /// The device node's path, for messages.
    fn path(&self) -> &Path;

    /// `VIDIOC_QUERYCAP`, asked once when the node was opened.
    fn capability(&self) -> &Capability;

    /// `VIDIOC_ENUM_FMT` on `queue`.
    fn formats(&self, queue: Queue) -> Result<Vec<FormatDesc>, Error>;

    /// `VIDIOC_ENUM_FRAMESIZES` for `pixelformat`; empty when the driver does not
    /// enumerate sizes.
    fn frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error>;

    /// `VIDIOC_ENUM_FRAMEINTERVALS`; empty when the driver does not enumerate them.
    fn frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error>;

    /// `VIDIOC_QUERYCTRL` over every control, with `VIDIOC_QUERYMENU` for menus.
    fn controls(&self) -> Result<Vec<ControlInfo>, Error>;

    /// Sets one control (`VIDIOC_S_EXT_CTRLS` with one control).
    fn set_control(&mut self, id: u32, value: i64) -> Result<(), Error>;

    /// `VIDIOC_G_FMT` on `queue`.
    fn format(&self, queue: Queue) -> Result<ImageFormat, Error>;

    /// `VIDIOC_S_FMT` on `queue`: returns the format the driver chose, which may
    /// differ from the one asked for (size rounded, strides aligned).
    fn set_format(&mut self, queue: Queue, format: &ImageFormat) -> Result<ImageFormat, Error>;

    /// `VIDIOC_S_PARM`: asks for `interval` seconds per frame on `queue`. Returns the
    /// interval the driver chose, or `None` when the driver cannot set one
    /// (no `V4L2_CAP_TIMEPERFRAME`).
    fn set_frame_interval(
        &mut self,
        queue: Queue,
        interval: Fraction,
    ) -> Result<Option<Fraction>, Error>;

    /// `VIDIOC_REQBUFS` with `V4L2_MEMORY_MMAP`, then `VIDIOC_QUERYBUF` and `mmap`
    /// of every plane of every buffer. Returns how many buffers the driver
    /// allocated (it may give more or fewer than `count`). `count` 0 unmaps and frees
    /// them (the queue must be stopped).
    fn request_buffers(&mut self, queue: Queue, count: u32) -> Result<u32, Error>;

    /// The memory of one plane of a buffer, `None` for an index or plane that does
    /// not exist.
    fn buffer(&self, queue: Queue, index: u32, plane: usize) -> Option<&[u8]>;

    /// The same, writable (to fill an output buffer before queueing it).
    fn buffer_mut(&mut self, queue: Queue, index: u32, plane: usize) -> Option<&mut [u8]>;

    /// `VIDIOC_QBUF`: hands buffer `index` to the driver. For output queues
    /// `bytesused` (one per plane) says how much is filled and `timestamp` is
    /// copied to the coded frame; capture queues ignore both.
    fn queue_buffer(
        &mut self,
        queue: Queue,
        index: u32,
        bytesused: &[u32],
        timestamp: Duration,
    ) -> Result<(), Error>;

    /// `VIDIOC_DQBUF`: the next finished buffer of `queue`, `Ok(None)` when none is
    /// ready (`EAGAIN`; nodes are non-blocking).
    fn dequeue_buffer(&mut self, queue: Queue) -> Result<Option<Dequeued>, Error>;

    /// `VIDIOC_STREAMON`.
    fn stream_on(&mut self, queue: Queue) -> Result<(), Error>;

    /// `VIDIOC_STREAMOFF`: stops `queue` and takes every buffer back from the driver.
    fn stream_off(&mut self, queue: Queue) -> Result<(), Error>;

    /// `poll(2)` until a buffer is ready, an event or error is pending, or
    /// `timeout` passes.
    fn wait(&mut self, timeout: Duration) -> Result<Readiness, Error>;

    /// `VIDIOC_ENCODER_CMD` with `cmd` (`V4L2_ENC_CMD_STOP` to drain an encoder).
    fn encoder_command(&mut self, cmd: u32) -> Result<(), Error>;
}

/// Opens a node by path: [`super::Device::open`] in production, a fake in tests.
pub type Opener = dyn Fn(&Path) -> Result<Box<dyn Node>, Error> + Send + Sync;

/// Asks `node` everything it says about itself. An ioctl a driver does not
/// implement leaves its part empty; other errors are returned.
pub fn describe(node: &dyn Node) -> Result<NodeDescription, Error> {
    let capability = node.capability().clone();
    let caps = capability.node_caps();
    let mut queues = Vec::new();
    let has = |bits: u32| caps & bits != 0;
    let candidates = [
        (
            Queue::Capture,
            has(sys::V4L2_CAP_VIDEO_CAPTURE | sys::V4L2_CAP_VIDEO_M2M),
        ),
        (
            Queue::Output,
            has(sys::V4L2_CAP_VIDEO_OUTPUT | sys::V4L2_CAP_VIDEO_M2M),
        ),
        (
            Queue::CaptureMplane,
            has(sys::V4L2_CAP_VIDEO_CAPTURE_MPLANE | sys::V4L2_CAP_VIDEO_M2M_MPLANE),
        ),
        (
            Queue::OutputMplane,
            has(sys::V4L2_CAP_VIDEO_OUTPUT_MPLANE | sys::V4L2_CAP_VIDEO_M2M_MPLANE),
        ),
    ];
    for (queue, present) in candidates {
        if !present {
            continue;
        }
        let mut formats = Vec::new();
        for format in unsupported_is_empty(node.formats(queue))? {
            let mut sizes = Vec::new();
            for size in unsupported_is_empty(node.frame_sizes(format.pixelformat))? {
                let (width, height) = match size {
                    FrameSize::Discrete { width, height } => (width, height),
                    FrameSize::Stepwise {
                        max_width,
                        max_height,
                        ..
                    } => (max_width, max_height),
                };
                let intervals =
                    unsupported_is_empty(node.frame_intervals(format.pixelformat, width, height))?;
                sizes.push(SizeModes { size, intervals });
            }
            formats.push(FormatModes { format, sizes });
        }
        queues.push(QueueDescription { queue, formats });
    }
    let controls = unsupported_is_empty(node.controls())?;
    Ok(NodeDescription {
        provenance: String::new(),
        path: node.path().display().to_string(),
        capability,
        queues,
        controls,
    })
}

/// `ENOTTY` (and, for enumerations, `EINVAL` at index 0) means "nothing to list".
fn unsupported_is_empty<T>(answer: Result<Vec<T>, Error>) -> Result<Vec<T>, Error> {
    match answer {
        Err(Error::Unsupported { .. }) => Ok(Vec::new()),
        Err(e) if e.errno() == Some(libc::EINVAL) => Ok(Vec::new()),
        other => other,
    }
}

/// Enumerations stop here even if a driver never says "no more" (`EINVAL`).
pub const MAX_ENUM_ENTRIES: u32 = 1024;

/// What can go wrong talking to a V4L2 device. Every variant names the device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The device node could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The device node.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file answered `VIDIOC_QUERYCAP` with `ENOTTY` (or `ENOSYS`, under
    /// qemu-user): it is no V4L2 device.
    #[error("{} is not a V4L2 device (VIDIOC_QUERYCAP: {source})", path.display())]
    NotV4l2 {
        /// The file.
        path: PathBuf,
        /// The error (`ENOTTY`).
        source: io::Error,
    },
    /// The driver does not implement this ioctl (`ENOTTY`).
    #[error("{ioctl} is not supported by {}", path.display())]
    Unsupported {
        /// The ioctl's name, e.g. `VIDIOC_ENUM_FRAMESIZES`.
        ioctl: &'static str,
        /// The device node.
        path: PathBuf,
    },
    /// An ioctl failed.
    #[error("{ioctl} on {} failed: {source}", path.display())]
    Ioctl {
        /// The ioctl's name, e.g. `VIDIOC_S_FMT`.
        ioctl: &'static str,
        /// The device node.
        path: PathBuf,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// The argument's type does not have the size the request number encodes: a
    /// programming error, caught before the kernel sees the call.
    #[error("{ioctl} on {}: argument is {actual} bytes, the request encodes {expected}", path.display())]
    ArgumentSize {
        /// The ioctl's name.
        ioctl: &'static str,
        /// The device node.
        path: PathBuf,
        /// `_IOC_SIZE(request)`.
        expected: usize,
        /// `size_of` the argument passed.
        actual: usize,
    },
    /// An enumeration did not end after 1024 entries.
    #[error("{ioctl} on {} did not end after {MAX_ENUM_ENTRIES} entries", path.display())]
    EndlessEnumeration {
        /// The ioctl's name.
        ioctl: &'static str,
        /// The device node.
        path: PathBuf,
    },
    /// Setting a control failed (`VIDIOC_S_EXT_CTRLS`, or the control does not exist).
    #[error("cannot set control {id:#010x} to {value} on {}: {source}", path.display())]
    Control {
        /// The control (`V4L2_CID_*`).
        id: u32,
        /// The value asked for.
        value: i64,
        /// The device node.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A buffer plane could not be memory-mapped.
    #[error("cannot mmap plane {plane} of {queue:?} buffer {index} of {}: {source}", path.display())]
    Map {
        /// The queue.
        queue: Queue,
        /// The buffer's index.
        index: u32,
        /// The plane.
        plane: usize,
        /// The device node.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A request that cannot be passed to the driver (a buffer that is not mapped,
    /// more payload than the buffer holds...).
    #[error("{}: {message}", path.display())]
    Invalid {
        /// The device node.
        path: PathBuf,
        /// What is wrong, in plain words.
        message: String,
    },
}

impl Error {
    /// The OS error number behind this error, if any (e.g. `EAGAIN`, `EINVAL`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Open { source, .. }
            | Error::NotV4l2 { source, .. }
            | Error::Ioctl { source, .. }
            | Error::Control { source, .. }
            | Error::Map { source, .. } => source.raw_os_error(),
            Error::Unsupported { .. } => Some(libc::ENOTTY),
            Error::ArgumentSize { .. }
            | Error::EndlessEnumeration { .. }
            | Error::Invalid { .. } => None,
        }
    }

    /// The device node the error is about.
    pub fn device_path(&self) -> &Path {
        match self {
            Error::Open { path, .. }
            | Error::NotV4l2 { path, .. }
            | Error::Unsupported { path, .. }
            | Error::Ioctl { path, .. }
            | Error::ArgumentSize { path, .. }
            | Error::EndlessEnumeration { path, .. }
            | Error::Control { path, .. }
            | Error::Map { path, .. }
            | Error::Invalid { path, .. } => path,
        }
    }
}

/// What `VIDIOC_QUERYCAP` says about a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Driver name, e.g. `bm2835 mmal` or `bcm2835-codec`.
    pub driver: String,
    /// Device name, e.g. `mmal service 16.1` or `bcm2835-codec-encode`.
    pub card: String,
    /// Bus location, e.g. `platform:bcm2835-v4l2-0`.
    pub bus_info: String,
    /// Kernel version, `KERNEL_VERSION(major, minor, patch)` packed.
    pub version: u32,
    /// Capabilities of the whole physical device (`V4L2_CAP_*`).
    pub capabilities: u32,
    /// Capabilities of this device node, valid when `capabilities` has
    /// `V4L2_CAP_DEVICE_CAPS`.
    pub device_caps: u32,
}

impl Capability {
    /// The capabilities of this node: `device_caps` when the driver fills it in,
    /// else `capabilities`.
    pub fn node_caps(&self) -> u32 {
        if self.capabilities & sys::V4L2_CAP_DEVICE_CAPS != 0 {
            self.device_caps
        } else {
            self.capabilities
        }
    }

    /// Whether this node has every capability bit in `caps` (see [`Self::node_caps`]).
    pub fn has(&self, caps: u32) -> bool {
        self.node_caps() & caps == caps
    }

    /// `version` as `major.minor.patch`.
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            self.version >> 16,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}

/// One entry of `VIDIOC_ENUM_FMT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatDesc {
    /// The pixel format's fourcc (see [`super::fourcc_to_string`]).
    pub pixelformat: u32,
    /// The driver's description, e.g. `H.264`.
    pub description: String,
    /// `V4L2_FMT_FLAG_*`.
    pub flags: u32,
}

impl FormatDesc {
    /// Whether this is a compressed format (H.264, MJPEG...).
    pub fn is_compressed(&self) -> bool {
        self.flags & sys::V4L2_FMT_FLAG_COMPRESSED != 0
    }
}

/// One answer of `VIDIOC_ENUM_FRAMESIZES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameSize {
    /// Exactly this size.
    Discrete {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Any size in the range on the step grid (continuous: steps of 1).
    Stepwise {
        /// Smallest width.
        min_width: u32,
        /// Largest width.
        max_width: u32,
        /// Width step.
        step_width: u32,
        /// Smallest height.
        min_height: u32,
        /// Largest height.
        max_height: u32,
        /// Height step.
        step_height: u32,
    },
}

impl FrameSize {
    /// Whether `width`x`height` is this size, or lies in this range on its step
    /// grid (counted from the minimum; a step of 0 or 1 allows any value).
    pub fn contains(&self, width: u32, height: u32) -> bool {
        match *self {
            FrameSize::Discrete {
                width: w,
                height: h,
            } => (w, h) == (width, height),
            FrameSize::Stepwise {
                min_width,
                max_width,
                step_width,
                min_height,
                max_height,
                step_height,
            } => {
                on_grid(width, min_width, max_width, step_width)
                    && on_grid(height, min_height, max_height, step_height)
            }
        }
    }
}

/// `value` in `min..=max` on the grid of `step` from `min` (step 0 or 1: any).
fn on_grid(value: u32, min: u32, max: u32, step: u32) -> bool {
    (min..=max).contains(&value) && (value - min).is_multiple_of(step.max(1))
}

/// One answer of `VIDIOC_ENUM_FRAMEINTERVALS` (intervals are seconds per frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrameInterval {
    /// Exactly this interval, `numerator / denominator` seconds.
    Discrete(Fraction),
    /// Any interval in the range on the step grid.
    Stepwise {
        /// Shortest interval.
        min: Fraction,
        /// Longest interval.
        max: Fraction,
        /// Step.
        step: Fraction,
    },
}

/// A `v4l2_fract`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fraction {
    /// Numerator.
    pub numerator: u32,
    /// Denominator.
    pub denominator: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_ranges_are_checked() {
        let used = PlaneUse {
            bytesused: 100,
            data_offset: 0,
        };
        assert_eq!(used.payload(100), Some(0..100));
        assert_eq!(used.payload(99), None);
        let offset = PlaneUse {
            bytesused: 100,
            data_offset: 16,
        };
        assert_eq!(offset.payload(4096), Some(16..100));
        let backwards = PlaneUse {
            bytesused: 8,
            data_offset: 16,
        };
        assert_eq!(backwards.payload(4096), None);
    }

    #[test]
    fn queues_map_to_buffer_types() {
        assert_eq!(Queue::Capture.buf_type(), 1);
        assert_eq!(Queue::OutputMplane.buf_type(), 10);
        assert!(Queue::CaptureMplane.is_mplane());
        assert!(!Queue::Capture.is_mplane());
    }

    #[test]
    fn descriptions_answer_enumerations_as_a_driver_would() {
        use crate::v4l2::fake::camera::fixture;
        let c920 = fixture("uvc-c920");
        let formats = c920.format_descs(Queue::Capture);
        assert!(formats
            .iter()
            .any(|f| f.pixelformat == sys::V4L2_PIX_FMT_H264));
        assert!(c920.format_descs(Queue::OutputMplane).is_empty());
        let sizes = c920.frame_sizes_of(sys::V4L2_PIX_FMT_H264).unwrap();
        assert!(sizes.contains(&FrameSize::Discrete {
            width: 1280,
            height: 720
        }));
        assert_eq!(c920.frame_sizes_of(sys::V4L2_PIX_FMT_NV21), None);
        assert!(!c920
            .frame_intervals_of(sys::V4L2_PIX_FMT_H264, 1280, 720)
            .unwrap()
            .is_empty());
        assert_eq!(
            c920.frame_intervals_of(sys::V4L2_PIX_FMT_H264, 1281, 720),
            None
        );
        // A stepwise range answers for any size inside it.
        let legacy = fixture("legacy-imx219");
        let inside = legacy.frame_intervals_of(sys::V4L2_PIX_FMT_H264, 1640, 922);
        assert!(inside.is_some_and(|i| !i.is_empty()));
        assert_eq!(
            legacy.frame_intervals_of(sys::V4L2_PIX_FMT_H264, 9000, 922),
            None
        );
    }

    #[test]
    fn controls_fit_values_as_the_control_core_does() {
        let info = |minimum, maximum, step| ControlInfo {
            id: 0,
            name: String::new(),
            kind: ControlKind::Integer,
            minimum,
            maximum,
            step,
            default: minimum,
            flags: 0,
            menu: Vec::new(),
        };
        let bitrate = info(25_000, 25_000_000, 25_000);
        assert_eq!(bitrate.fit(64_000), 75_000, "the nearest step");
        assert_eq!(bitrate.fit(62_499), 50_000);
        assert_eq!(bitrate.fit(1), 25_000, "clamped up");
        assert_eq!(bitrate.fit(99_000_000), 25_000_000, "clamped down");
        // The last step would pass the maximum: the one below it.
        assert_eq!(info(0, 10, 4).fit(10), 8);
        assert_eq!(info(0, 10, 0).fit(7), 7, "step 0 means any value");
        assert_eq!(info(-5, 5, 1).fit(i128::MIN), -5);
        assert_eq!(info(i64::MIN, i64::MAX, 1).fit(i128::MAX), i64::MAX);
        assert_eq!(info(10, 0, 1).fit(42), 42, "an impossible range leaves it");
    }

    #[test]
    fn readiness_knows_a_timeout() {
        assert!(Readiness::default().timed_out());
        assert!(!Readiness {
            capture: true,
            ..Default::default()
        }
        .timed_out());
    }

    #[test]
    fn frame_sizes_contain_their_grid() {
        let range = FrameSize::Stepwise {
            min_width: 32,
            max_width: 1920,
            step_width: 2,
            min_height: 32,
            max_height: 1080,
            step_height: 2,
        };
        assert!(range.contains(32, 32) && range.contains(1920, 1080));
        assert!(range.contains(1280, 720));
        assert!(!range.contains(1281, 720), "off the step grid");
        assert!(!range.contains(1922, 720) && !range.contains(30, 720));
        let any_step = FrameSize::Stepwise {
            min_width: 1,
            max_width: 10,
            step_width: 0,
            min_height: 1,
            max_height: 10,
            step_height: 1,
        };
        assert!(any_step.contains(7, 3));
        let discrete = FrameSize::Discrete {
            width: 640,
            height: 480,
        };
        assert!(discrete.contains(640, 480) && !discrete.contains(640, 482));
    }
}
