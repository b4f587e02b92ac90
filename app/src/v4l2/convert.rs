//! A thin safe wrapper over a V4L2 device node: open it, ask what it is
//! (`VIDIOC_QUERYCAP`) and what it produces (`VIDIOC_ENUM_FMT`,
//! `VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`), and the real
//! implementation of [`Node`]: controls, formats, MMAP buffers (mapped with
//! [`super::mmap`]), streaming and `poll(2)`. Anything else goes through
//! [`Device::ioctl`] with the raw structs of [`super::sys`].
//!
//! The conversions between the kernel's structs and the typed values of
//! [`super::node`] are pure functions ([`raw_format`], [`image_format`],
//! [`dequeued`], [`control_info`], ...), tested here without a device; the ioctl
//! paths themselves are tested on a Raspberry Pi (`app/tests/hardware.rs`).

use super::mmap::{MappedBuffer, MappedPlane};
use super::node::{
    ControlInfo, ControlKind, Dequeued, ImageFormat, MenuItem, Node, PlaneLayout, PlaneUse, Queue,
    Readiness,
};
use super::sys;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Enumerations stop here even if a driver never says "no more" (`EINVAL`).
const MAX_ENUM_ENTRIES: u32 = 1024;

/// At most this many buffers of one queue are mapped (the kernel's `VB2_MAX_FRAME`
/// was 32, later 64).
const MAX_BUFFERS: u32 = 64;

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

impl From<&sys::v4l2_capability> for Capability {
    fn from(raw: &sys::v4l2_capability) -> Self {
        Capability {
            driver: string_from_c_array(&raw.driver),
            card: string_from_c_array(&raw.card),
            bus_info: string_from_c_array(&raw.bus_info),
            version: raw.version,
            capabilities: raw.capabilities,
            device_caps: raw.device_caps,
        }
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

impl From<sys::v4l2_fract> for Fraction {
    fn from(f: sys::v4l2_fract) -> Self {
        Fraction {
            numerator: f.numerator,
            denominator: f.denominator,
        }
    }
}

/// The text in a fixed-size C `char` array: up to the first NUL, or the whole
/// array if the driver filled it completely; invalid UTF-8 replaced.
pub fn string_from_c_array(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(bytes.get(..end).unwrap_or(bytes)).into_owned()
}

/// An open V4L2 device node: [`Node`] with ioctls and `mmap`. Dropping it stops
/// every queue it started and unmaps its buffers before closing the node.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    capability: Capability,
    /// The mapped buffers of each queue, by index.
    buffers: HashMap<Queue, Vec<MappedBuffer>>,
    /// The queues `stream_on` started and `stream_off` has not stopped.
    streaming: Vec<Queue>,
}

impl Device {
    /// Opens `path` read-write, non-blocking and close-on-exec, and checks with
    /// `VIDIOC_QUERYCAP` that it is a V4L2 device.
    pub fn open(path: impl AsRef<Path>) -> Result<Device, Error> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        let raw = query_capability(&file, &path)?;
        Ok(Device {
            file,
            path,
            capability: Capability::from(&raw),
            buffers: HashMap::new(),
            streaming: Vec::new(),
        })
    }

    /// The path the device was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What `VIDIOC_QUERYCAP` said when the device was opened.
    pub fn capability(&self) -> &Capability {
        &self.capability
    }

    /// Asks `VIDIOC_QUERYCAP` again.
    pub fn querycap(&self) -> Result<Capability, Error> {
        query_capability(&self.file, &self.path).map(|raw| Capability::from(&raw))
    }

    /// The formats of buffer type `buf_type` (`V4L2_BUF_TYPE_*`), in the
    /// driver's order.
    pub fn enum_formats(&self, buf_type: u32) -> Result<Vec<FormatDesc>, Error> {
        // SAFETY: VIDIOC_ENUM_FMT takes a v4l2_fmtdesc, which has no pointers.
        unsafe {
            self.enumerate(
                "VIDIOC_ENUM_FMT",
                sys::VIDIOC_ENUM_FMT,
                |index| sys::v4l2_fmtdesc {
                    index,
                    type_: buf_type,
                    ..Default::default()
                },
                |desc| {
                    let format = FormatDesc {
                        pixelformat: desc.pixelformat,
                        description: string_from_c_array(&desc.description),
                        flags: desc.flags,
                    };
                    (format, false)
                },
            )
        }
    }

    /// The frame sizes the device offers for `pixelformat`: a list of discrete
    /// sizes, or one stepwise range. Empty if the driver knows no sizes for it.
    pub fn enum_frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        let arg = |index| sys::v4l2_frmsizeenum {
            index,
            pixel_format: pixelformat,
            ..Default::default()
        };
        let take = |raw: &sys::v4l2_frmsizeenum| {
            if raw.type_ == sys::V4L2_FRMSIZE_TYPE_DISCRETE {
                // SAFETY: the driver filled the `discrete` member (type DISCRETE);
                // every bit pattern is a valid pair of u32s anyway.
                let d = unsafe { raw.u.discrete };
                let size = FrameSize::Discrete {
                    width: d.width,
                    height: d.height,
                };
                (size, false)
            } else {
                // SAFETY: CONTINUOUS and STEPWISE fill `stepwise`; plain u32s.
                let s = unsafe { raw.u.stepwise };
                let range = FrameSize::Stepwise {
                    min_width: s.min_width,
                    max_width: s.max_width,
                    step_width: s.step_width,
                    min_height: s.min_height,
                    max_height: s.max_height,
                    step_height: s.step_height,
                };
                // A range is the only answer.
                (range, true)
            }
        };
        // SAFETY: VIDIOC_ENUM_FRAMESIZES takes a v4l2_frmsizeenum, no pointers.
        unsafe {
            self.enumerate(
                "VIDIOC_ENUM_FRAMESIZES",
                sys::VIDIOC_ENUM_FRAMESIZES,
                arg,
                take,
            )
        }
    }

    /// The frame intervals the device offers for `pixelformat` at
    /// `width`x`height`: a list of discrete intervals, or one stepwise range.
    pub fn enum_frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error> {
        let arg = |index| sys::v4l2_frmivalenum {
            index,
            pixel_format: pixelformat,
            width,
            height,
            ..Default::default()
        };
        let take = |raw: &sys::v4l2_frmivalenum| {
            if raw.type_ == sys::V4L2_FRMIVAL_TYPE_DISCRETE {
                // SAFETY: type DISCRETE fills `discrete`; plain u32s.
                let d = unsafe { raw.u.discrete };
                (FrameInterval::Discrete(d.into()), false)
            } else {
                // SAFETY: CONTINUOUS and STEPWISE fill `stepwise`; plain u32s.
                let s = unsafe { raw.u.stepwise };
                let range = FrameInterval::Stepwise {
                    min: s.min.into(),
                    max: s.max.into(),
                    step: s.step.into(),
                };
                (range, true)
            }
        };
        // SAFETY: VIDIOC_ENUM_FRAMEINTERVALS takes a v4l2_frmivalenum, no pointers.
        unsafe {
            self.enumerate(
                "VIDIOC_ENUM_FRAMEINTERVALS",
                sys::VIDIOC_ENUM_FRAMEINTERVALS,
                arg,
                take,
            )
        }
    }

    /// An index-based enumeration (`VIDIOC_ENUM_FMT`, `_FRAMESIZES`,
    /// `_FRAMEINTERVALS`): asks for index 0, 1, ... with the argument `arg` builds,
    /// until the driver answers `EINVAL` (the end) or `take` says an answer is the
    /// last (a stepwise range). Gives up after [`MAX_ENUM_ENTRIES`].
    ///
    /// # Safety
    ///
    /// `request` must be an ioctl whose argument is a `T` with no pointers.
    unsafe fn enumerate<T, R>(
        &self,
        name: &'static str,
        request: u32,
        mut arg: impl FnMut(u32) -> T,
        mut take: impl FnMut(&T) -> (R, bool),
    ) -> Result<Vec<R>, Error> {
        let mut entries = Vec::new();
        for index in 0..MAX_ENUM_ENTRIES {
            let mut raw = arg(index);
            // SAFETY: forwarded from this function's contract.
            match unsafe { self.ioctl(name, request, &mut raw) } {
                Ok(_) => {}
                Err(e) if e.errno() == Some(libc::EINVAL) => return Ok(entries),
                Err(e) => return Err(e),
            }
            let (entry, last) = take(&raw);
            entries.push(entry);
            if last {
                return Ok(entries);
            }
        }
        Err(self.endless(name))
    }

    /// Issues `request` with `arg`, retrying on `EINTR`. `name` is the request's
    /// name for errors. Fails without calling the kernel if `T`'s size is not the
    /// size `request` encodes. `ENOTTY` becomes [`Error::Unsupported`].
    ///
    /// # Safety
    ///
    /// `request` must be a V4L2 ioctl whose argument is a `T` (a [`super::sys`]
    /// struct, or `c_int` for STREAMON/STREAMOFF), and every pointer inside `arg`
    /// (`v4l2_buffer.m.planes`, `v4l2_ext_controls.controls`, ...) must point to
    /// live memory of the length the other fields claim, for the whole call.
    pub unsafe fn ioctl<T>(
        &self,
        name: &'static str,
        request: u32,
        arg: &mut T,
    ) -> Result<i32, Error> {
        check_size::<T>(request).map_err(|(expected, actual)| Error::ArgumentSize {
            ioctl: name,
            path: self.path.clone(),
            expected,
            actual,
        })?;
        // SAFETY: forwarded from this function's contract; `arg` is a live `&mut T`
        // of the size the request encodes.
        let answer = unsafe { raw_ioctl(self.file.as_raw_fd(), request, (arg as *mut T).cast()) };
        answer.map_err(|source| ioctl_error(name, &self.path, source))
    }

    fn endless(&self, ioctl: &'static str) -> Error {
        Error::EndlessEnumeration {
            ioctl,
            path: self.path.clone(),
        }
    }

    fn invalid(&self, message: String) -> Error {
        Error::Invalid {
            path: self.path.clone(),
            message,
        }
    }

    /// The menu entries of a menu or integer-menu control, `minimum..=maximum`
    /// with the indexes the driver skips (`EINVAL`) left out.
    fn menu(&self, raw: &sys::v4l2_queryctrl, kind: ControlKind) -> Result<Vec<MenuItem>, Error> {
        let Ok(first) = u32::try_from(raw.minimum) else {
            return Ok(Vec::new());
        };
        let Ok(last) = u32::try_from(raw.maximum) else {
            return Ok(Vec::new());
        };
        let mut items = Vec::new();
        for index in (first..=last).take(MAX_ENUM_ENTRIES as usize) {
            let mut entry = sys::v4l2_querymenu {
                id: raw.id,
                index,
                ..Default::default()
            };
            // SAFETY: VIDIOC_QUERYMENU takes a v4l2_querymenu, which has no pointers.
            match unsafe { self.ioctl("VIDIOC_QUERYMENU", sys::VIDIOC_QUERYMENU, &mut entry) } {
                Ok(_) => items.push(menu_item(kind, &entry)),
                Err(e) if e.errno() == Some(libc::EINVAL) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(items)
    }

    /// `VIDIOC_QUERYBUF` of buffer `index` and `mmap` of each of its planes.
    fn map_buffer(&self, queue: Queue, index: u32) -> Result<MappedBuffer, Error> {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let mut buf = sys::v4l2_buffer {
            index,
            type_: queue.buf_type(),
            memory: sys::V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        if queue.is_mplane() {
            buf.m.planes = planes.as_mut_ptr();
            buf.length = sys::VIDEO_MAX_PLANES as u32;
        }
        // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer; for multi-planar queues
        // `m.planes` points to `planes`, an array of `length` v4l2_planes that lives
        // until the end of this function.
        unsafe { self.ioctl("VIDIOC_QUERYBUF", sys::VIDIOC_QUERYBUF, &mut buf) }?;
        let mut mapped = Vec::new();
        for (plane, (offset, length)) in
            plane_mappings(queue, &buf, &planes).into_iter().enumerate()
        {
            let map_error = |source| Error::Map {
                queue,
                index,
                plane,
                path: self.path.clone(),
                source,
            };
            let length = usize::try_from(length).map_err(|_| {
                map_error(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "length does not fit usize",
                ))
            })?;
            mapped.push(
                MappedPlane::map(self.file.as_fd(), u64::from(offset), length)
                    .map_err(map_error)?,
            );
        }
        if mapped.is_empty() {
            return Err(self.invalid(format!(
                "VIDIOC_QUERYBUF says {queue:?} buffer {index} has no planes"
            )));
        }
        Ok(MappedBuffer::new(mapped))
    }

    /// `VIDIOC_REQBUFS` with `count` buffers (the mappings of `queue` must be gone).
    fn reqbufs(&self, queue: Queue, count: u32) -> Result<u32, Error> {
        let mut req = sys::v4l2_requestbuffers {
            count,
            type_: queue.buf_type(),
            memory: sys::V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        // SAFETY: VIDIOC_REQBUFS takes a v4l2_requestbuffers, which has no pointers.
        unsafe { self.ioctl("VIDIOC_REQBUFS", sys::VIDIOC_REQBUFS, &mut req) }?;
        Ok(req.count)
    }

    fn stream_ioctl(&self, name: &'static str, request: u32, queue: Queue) -> Result<(), Error> {
        let mut buf_type = queue.buf_type() as libc::c_int;
        // SAFETY: VIDIOC_STREAMON/OFF take an int, the buffer type.
        unsafe { self.ioctl(name, request, &mut buf_type) }.map(|_| ())
    }
}

impl Node for Device {
    fn path(&self) -> &Path {
        &self.path
    }

    fn capability(&self) -> &Capability {
        &self.capability
    }

    fn formats(&self, queue: Queue) -> Result<Vec<FormatDesc>, Error> {
        self.enum_formats(queue.buf_type())
    }

    fn frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        self.enum_frame_sizes(pixelformat)
    }

    fn frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error> {
        self.enum_frame_intervals(pixelformat, width, height)
    }

    fn controls(&self) -> Result<Vec<ControlInfo>, Error> {
        let mut controls = Vec::new();
        let mut next = sys::V4L2_CTRL_FLAG_NEXT_CTRL;
        for _ in 0..MAX_ENUM_ENTRIES {
            let mut raw = sys::v4l2_queryctrl {
                id: next,
                ..Default::default()
            };
            // SAFETY: VIDIOC_QUERYCTRL takes a v4l2_queryctrl, which has no pointers.
            match unsafe { self.ioctl("VIDIOC_QUERYCTRL", sys::VIDIOC_QUERYCTRL, &mut raw) } {
                Ok(_) => {}
                Err(e) if e.errno() == Some(libc::EINVAL) => return Ok(controls),
                Err(e) => return Err(e),
            }
            next = raw.id | sys::V4L2_CTRL_FLAG_NEXT_CTRL;
            if raw.type_ == sys::V4L2_CTRL_TYPE_CTRL_CLASS
                || raw.flags & sys::V4L2_CTRL_FLAG_DISABLED != 0
            {
                continue;
            }
            let mut info = control_info(&raw);
            if matches!(info.kind, ControlKind::Menu | ControlKind::IntegerMenu) {
                info.menu = self.menu(&raw, info.kind)?;
            }
            controls.push(info);
        }
        Err(self.endless("VIDIOC_QUERYCTRL"))
    }

    fn set_control(&mut self, id: u32, value: i64) -> Result<(), Error> {
        let control_error = |source| Error::Control {
            id,
            value,
            path: self.path.clone(),
            source,
        };
        let mut query = sys::v4l2_queryctrl {
            id,
            ..Default::default()
        };
        // SAFETY: VIDIOC_QUERYCTRL takes a v4l2_queryctrl, which has no pointers.
        match unsafe { self.ioctl("VIDIOC_QUERYCTRL", sys::VIDIOC_QUERYCTRL, &mut query) } {
            Ok(_) => {}
            Err(e) if e.errno() == Some(libc::EINVAL) => {
                return Err(control_error(io::Error::new(
                    io::ErrorKind::NotFound,
                    "the device has no such control",
                )));
            }
            Err(e) => return Err(control_error(io::Error::other(e.to_string()))),
        }
        let mut control = ext_control(id, query.type_, value).map_err(|message| {
            control_error(io::Error::new(io::ErrorKind::InvalidInput, message))
        })?;
        let mut controls = sys::v4l2_ext_controls {
            which: control_class(id),
            count: 1,
            controls: &mut control,
            ..Default::default()
        };
        // SAFETY: VIDIOC_S_EXT_CTRLS takes a v4l2_ext_controls whose `controls`
        // points to `count` (1) v4l2_ext_control, `control`, live for the call; the
        // control is a plain value (no payload pointer).
        match unsafe { self.ioctl("VIDIOC_S_EXT_CTRLS", sys::VIDIOC_S_EXT_CTRLS, &mut controls) } {
            Ok(_) => Ok(()),
            Err(Error::Ioctl { source, .. }) => Err(control_error(source)),
            Err(e) => Err(control_error(io::Error::other(e.to_string()))),
        }
    }

    fn format(&self, queue: Queue) -> Result<ImageFormat, Error> {
        let mut raw = sys::v4l2_format {
            type_: queue.buf_type(),
            ..Default::default()
        };
        // SAFETY: VIDIOC_G_FMT takes a v4l2_format, which has no pointers for
        // video (non-overlay) buffer types.
        unsafe { self.ioctl("VIDIOC_G_FMT", sys::VIDIOC_G_FMT, &mut raw) }?;
        Ok(image_format(queue, &raw))
    }

    fn set_format(&mut self, queue: Queue, format: &ImageFormat) -> Result<ImageFormat, Error> {
        let mut raw = raw_format(queue, format);
        // SAFETY: VIDIOC_S_FMT takes a v4l2_format, no pointers for video types.
        unsafe { self.ioctl("VIDIOC_S_FMT", sys::VIDIOC_S_FMT, &mut raw) }?;
        Ok(image_format(queue, &raw))
    }

    fn set_frame_interval(
        &mut self,
        queue: Queue,
        interval: Fraction,
    ) -> Result<Option<Fraction>, Error> {
        let mut parm = sys::v4l2_streamparm {
            type_: queue.buf_type(),
            ..Default::default()
        };
        // SAFETY: VIDIOC_G_PARM takes a v4l2_streamparm, which has no pointers.
        match unsafe { self.ioctl("VIDIOC_G_PARM", sys::VIDIOC_G_PARM, &mut parm) } {
            Ok(_) => {}
            // A driver without G_PARM cannot set an interval either.
            Err(Error::Unsupported { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        if !set_time_per_frame(queue, &mut parm, interval) {
            return Ok(None);
        }
        // SAFETY: VIDIOC_S_PARM takes a v4l2_streamparm, which has no pointers.
        unsafe { self.ioctl("VIDIOC_S_PARM", sys::VIDIOC_S_PARM, &mut parm) }?;
        Ok(Some(time_per_frame(queue, &parm)))
    }

    fn request_buffers(&mut self, queue: Queue, count: u32) -> Result<u32, Error> {
        if self.streaming.contains(&queue) {
            // The driver would refuse (EBUSY) after the buffers were unmapped.
            return Err(self.invalid(format!(
                "cannot request {queue:?} buffers while the queue streams (stream_off first)"
            )));
        }
        // Unmap first: the driver cannot free (or reallocate) mapped buffers.
        self.buffers.remove(&queue);
        let allocated = self.reqbufs(queue, count)?;
        if count == 0 {
            return Ok(0);
        }
        if allocated > MAX_BUFFERS {
            let _ = self.reqbufs(queue, 0);
            return Err(self.invalid(format!(
                "VIDIOC_REQBUFS allocated {allocated} {queue:?} buffers, more than {MAX_BUFFERS}"
            )));
        }
        let mut mapped = Vec::new();
        for index in 0..allocated {
            match self.map_buffer(queue, index) {
                Ok(buffer) => mapped.push(buffer),
                Err(e) => {
                    drop(mapped);
                    let _ = self.reqbufs(queue, 0);
                    return Err(e);
                }
            }
        }
        self.buffers.insert(queue, mapped);
        Ok(allocated)
    }

    fn buffer(&self, queue: Queue, index: u32, plane: usize) -> Option<&[u8]> {
        self.buffers
            .get(&queue)?
            .get(usize::try_from(index).ok()?)?
            .slice(plane)
    }

    fn buffer_mut(&mut self, queue: Queue, index: u32, plane: usize) -> Option<&mut [u8]> {
        self.buffers
            .get_mut(&queue)?
            .get_mut(usize::try_from(index).ok()?)?
            .slice_mut(plane)
    }

    fn queue_buffer(
        &mut self,
        queue: Queue,
        index: u32,
        bytesused: &[u32],
        timestamp: Duration,
    ) -> Result<(), Error> {
        let lengths = match usize::try_from(index)
            .ok()
            .and_then(|i| self.buffers.get(&queue)?.get(i))
        {
            Some(buffer) => buffer.lengths(),
            None => {
                return Err(self.invalid(format!(
                    "{queue:?} buffer {index} is not mapped (request_buffers first)"
                )))
            }
        };
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let mut buf = qbuf_request(queue, index, bytesused, timestamp, &lengths, &mut planes)
            .map_err(|message| self.invalid(message))?;
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer; for multi-planar queues
        // `qbuf_request` pointed `m.planes` at `planes` (`length` entries), which
        // lives until the end of this function.
        unsafe { self.ioctl("VIDIOC_QBUF", sys::VIDIOC_QBUF, &mut buf) }.map(|_| ())
    }

    fn dequeue_buffer(&mut self, queue: Queue) -> Result<Option<Dequeued>, Error> {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let mut buf = sys::v4l2_buffer {
            type_: queue.buf_type(),
            memory: sys::V4L2_MEMORY_MMAP,
            ..Default::default()
        };
        if queue.is_mplane() {
            buf.m.planes = planes.as_mut_ptr();
            buf.length = sys::VIDEO_MAX_PLANES as u32;
        }
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer; for multi-planar queues
        // `m.planes` points to `planes` (`length` entries), live until the end of
        // this function.
        match unsafe { self.ioctl("VIDIOC_DQBUF", sys::VIDIOC_DQBUF, &mut buf) } {
            Ok(_) => Ok(Some(dequeued(queue, &buf, &planes))),
            Err(e) if e.errno() == Some(libc::EAGAIN) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn stream_on(&mut self, queue: Queue) -> Result<(), Error> {
        self.stream_ioctl("VIDIOC_STREAMON", sys::VIDIOC_STREAMON, queue)?;
        if !self.streaming.contains(&queue) {
            self.streaming.push(queue);
        }
        Ok(())
    }

    fn stream_off(&mut self, queue: Queue) -> Result<(), Error> {
        self.stream_ioctl("VIDIOC_STREAMOFF", sys::VIDIOC_STREAMOFF, queue)?;
        self.streaming.retain(|&q| q != queue);
        Ok(())
    }

    fn wait(&mut self, timeout: Duration) -> Result<Readiness, Error> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let remaining = match deadline {
                Some(deadline) => deadline.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            let mut fd = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN | libc::POLLOUT | libc::POLLPRI,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for an fd this device owns.
            let ret = unsafe { libc::poll(&mut fd, 1, poll_timeout_ms(remaining)) };
            if ret >= 0 {
                return Ok(readiness(fd.revents));
            }
            let source = io::Error::last_os_error();
            if source.kind() != io::ErrorKind::Interrupted {
                return Err(Error::Ioctl {
                    ioctl: "poll",
                    path: self.path.clone(),
                    source,
                });
            }
        }
    }

    fn encoder_command(&mut self, cmd: u32) -> Result<(), Error> {
        let mut raw = sys::v4l2_encoder_cmd {
            cmd,
            ..Default::default()
        };
        // SAFETY: VIDIOC_ENCODER_CMD takes a v4l2_encoder_cmd, which has no pointers.
        unsafe { self.ioctl("VIDIOC_ENCODER_CMD", sys::VIDIOC_ENCODER_CMD, &mut raw) }.map(|_| ())
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        for queue in std::mem::take(&mut self.streaming) {
            let _ = self.stream_ioctl("VIDIOC_STREAMOFF", sys::VIDIOC_STREAMOFF, queue);
        }
        // Unmap before the file (and with it the driver's buffers) is closed.
        self.buffers.clear();
    }
}

/// Whether the application fills `queue`'s buffers (the driver reads them).
fn is_output(queue: Queue) -> bool {
    matches!(queue, Queue::Output | Queue::OutputMplane)
}

/// The control class of a control id, the `which` of `VIDIOC_S_EXT_CTRLS`
/// (`V4L2_CTRL_ID2WHICH`).
pub fn control_class(id: u32) -> u32 {
    id & 0x0fff_0000
}

/// The `v4l2_format` `VIDIOC_S_FMT` takes to ask for `format` on `queue`: a
/// `v4l2_pix_format` (the first plane's layout) for single-planar queues, a
/// `v4l2_pix_format_mplane` (up to 8 planes) for multi-planar ones.
pub fn raw_format(queue: Queue, format: &ImageFormat) -> sys::v4l2_format {
    let mut raw = sys::v4l2_format {
        type_: queue.buf_type(),
        ..Default::default()
    };
    if queue.is_mplane() {
        let mut plane_fmt = [sys::v4l2_plane_pix_format::default(); sys::VIDEO_MAX_PLANES];
        for (slot, plane) in plane_fmt.iter_mut().zip(&format.planes) {
            slot.bytesperline = plane.bytesperline;
            slot.sizeimage = plane.sizeimage;
        }
        raw.fmt.pix_mp = sys::v4l2_pix_format_mplane {
            width: format.width,
            height: format.height,
            pixelformat: format.pixelformat,
            field: format.field,
            colorspace: format.colorspace,
            plane_fmt,
            num_planes: format.planes.len().min(sys::VIDEO_MAX_PLANES) as u8,
            ..Default::default()
        };
    } else {
        let first = format.planes.first().copied().unwrap_or(PlaneLayout {
            bytesperline: 0,
            sizeimage: 0,
        });
        raw.fmt.pix = sys::v4l2_pix_format {
            width: format.width,
            height: format.height,
            pixelformat: format.pixelformat,
            field: format.field,
            bytesperline: first.bytesperline,
            sizeimage: first.sizeimage,
            colorspace: format.colorspace,
            ..Default::default()
        };
    }
    raw
}

/// The format in a `v4l2_format` the driver filled for `queue` (`VIDIOC_G_FMT`,
/// `VIDIOC_S_FMT`). A plane count above 8 is read as 8.
pub fn image_format(queue: Queue, raw: &sys::v4l2_format) -> ImageFormat {
    if queue.is_mplane() {
        // SAFETY: for multi-planar buffer types the driver fills `pix_mp`; every
        // bit pattern is valid for its integer fields.
        let mp = unsafe { raw.fmt.pix_mp };
        let plane_fmt = mp.plane_fmt;
        let count = usize::from(mp.num_planes).min(sys::VIDEO_MAX_PLANES);
        ImageFormat {
            width: mp.width,
            height: mp.height,
            pixelformat: mp.pixelformat,
            field: mp.field,
            colorspace: mp.colorspace,
            planes: plane_fmt
                .iter()
                .take(count)
                .map(|p| PlaneLayout {
                    bytesperline: p.bytesperline,
                    sizeimage: p.sizeimage,
                })
                .collect(),
        }
    } else {
        // SAFETY: for single-planar video types the driver fills `pix`; plain integers.
        let pix = unsafe { raw.fmt.pix };
        ImageFormat {
            width: pix.width,
            height: pix.height,
            pixelformat: pix.pixelformat,
            field: pix.field,
            colorspace: pix.colorspace,
            planes: vec![PlaneLayout {
                bytesperline: pix.bytesperline,
                sizeimage: pix.sizeimage,
            }],
        }
    }
}

/// Where each plane of a buffer `VIDIOC_QUERYBUF` described is mapped:
/// `(offset, length)` pairs (`m.offset`/`length` single-planar, each plane's
/// `m.mem_offset`/`length` multi-planar; at most 8 planes).
pub fn plane_mappings(
    queue: Queue,
    buf: &sys::v4l2_buffer,
    planes: &[sys::v4l2_plane; sys::VIDEO_MAX_PLANES],
) -> Vec<(u32, u32)> {
    if queue.is_mplane() {
        let count = usize::try_from(buf.length)
            .unwrap_or(usize::MAX)
            .min(sys::VIDEO_MAX_PLANES);
        planes
            .iter()
            .take(count)
            // SAFETY: for MMAP buffers QUERYBUF fills `mem_offset`; a u32.
            .map(|p| (unsafe { p.m.mem_offset }, p.length))
            .collect()
    } else {
        // SAFETY: for MMAP buffers QUERYBUF fills `offset`; a u32.
        vec![(unsafe { buf.m.offset }, buf.length)]
    }
}

/// The `v4l2_buffer` for `VIDIOC_QBUF` of buffer `index` whose planes are `lengths`
/// bytes long. Output queues get `bytesused` (one per plane; missing ones are 0)
/// and `timestamp`, which drivers with `V4L2_BUF_FLAG_TIMESTAMP_COPY` (M2M
/// encoders) copy to the capture buffer made from it. Multi-planar queues point
/// `m.planes` at `planes`, which must outlive the ioctl. Errors say what is wrong.
pub fn qbuf_request(
    queue: Queue,
    index: u32,
    bytesused: &[u32],
    timestamp: Duration,
    lengths: &[usize],
    planes: &mut [sys::v4l2_plane; sys::VIDEO_MAX_PLANES],
) -> Result<sys::v4l2_buffer, String> {
    let mut buf = sys::v4l2_buffer {
        index,
        type_: queue.buf_type(),
        memory: sys::V4L2_MEMORY_MMAP,
        ..Default::default()
    };
    let count = lengths.len();
    if count == 0 || count > sys::VIDEO_MAX_PLANES {
        return Err(format!("{queue:?} buffer {index} has {count} planes"));
    }
    let output = is_output(queue);
    if output {
        if bytesused.len() > count {
            return Err(format!(
                "{} payload sizes for {queue:?} buffer {index}, which has {count} planes",
                bytesused.len()
            ));
        }
        for (plane, (&used, &length)) in bytesused.iter().zip(lengths).enumerate() {
            if usize::try_from(used).map_or(true, |used| used > length) {
                return Err(format!(
                    "{used} bytes for plane {plane} of {queue:?} buffer {index}, which holds {length}"
                ));
            }
        }
        buf.field = sys::V4L2_FIELD_NONE;
        buf.timestamp = timeval(timestamp);
    }
    let used = |plane: usize| {
        if output {
            bytesused.get(plane).copied().unwrap_or(0)
        } else {
            0
        }
    };
    let length = |plane: usize| {
        lengths
            .get(plane)
            .map_or(0, |&l| u32::try_from(l).unwrap_or(u32::MAX))
    };
    if queue.is_mplane() {
        for (plane, slot) in planes.iter_mut().enumerate().take(count) {
            *slot = sys::v4l2_plane {
                bytesused: used(plane),
                length: length(plane),
                ..Default::default()
            };
        }
        buf.m.planes = planes.as_mut_ptr();
        buf.length = count as u32;
    } else {
        buf.bytesused = used(0);
        buf.length = length(0);
    }
    Ok(buf)
}

/// A buffer `VIDIOC_DQBUF` returned. Multi-planar buffers have `length` planes
/// (at most 8) in `planes`; single-planar ones one, starting at offset 0.
pub fn dequeued(
    queue: Queue,
    buf: &sys::v4l2_buffer,
    planes: &[sys::v4l2_plane; sys::VIDEO_MAX_PLANES],
) -> Dequeued {
    let planes = if queue.is_mplane() {
        let count = usize::try_from(buf.length)
            .unwrap_or(usize::MAX)
            .min(sys::VIDEO_MAX_PLANES);
        planes
            .iter()
            .take(count)
            .map(|p| PlaneUse {
                bytesused: p.bytesused,
                data_offset: p.data_offset,
            })
            .collect()
    } else {
        vec![PlaneUse {
            bytesused: buf.bytesused,
            data_offset: 0,
        }]
    };
    Dequeued {
        index: buf.index,
        planes,
        flags: buf.flags,
        timestamp: duration(buf.timestamp),
        sequence: buf.sequence,
    }
}

/// A `timeval` as a duration; negative times are read as 0.
pub fn duration(tv: libc::timeval) -> Duration {
    let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
    let micros = u32::try_from(tv.tv_usec).unwrap_or(0).min(999_999);
    Duration::new(secs, micros * 1000)
}

/// A duration as a `timeval` (microseconds, truncated; saturating).
pub fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 1_000_000, so it fits every target's suseconds_t (i32 on 32-bit ARM).
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

/// What `VIDIOC_QUERYCTRL` said, typed (the menu is filled in separately).
pub fn control_info(raw: &sys::v4l2_queryctrl) -> ControlInfo {
    let kind = match raw.type_ {
        sys::V4L2_CTRL_TYPE_INTEGER => ControlKind::Integer,
        sys::V4L2_CTRL_TYPE_BOOLEAN => ControlKind::Boolean,
        sys::V4L2_CTRL_TYPE_MENU => ControlKind::Menu,
        sys::V4L2_CTRL_TYPE_INTEGER_MENU => ControlKind::IntegerMenu,
        sys::V4L2_CTRL_TYPE_BUTTON => ControlKind::Button,
        sys::V4L2_CTRL_TYPE_INTEGER64 => ControlKind::Integer64,
        other => ControlKind::Other(other),
    };
    ControlInfo {
        id: raw.id,
        name: string_from_c_array(&raw.name),
        kind,
        minimum: i64::from(raw.minimum),
        maximum: i64::from(raw.maximum),
        step: u64::try_from(raw.step).unwrap_or(0),
        default: i64::from(raw.default_value),
        flags: raw.flags,
        menu: Vec::new(),
    }
}

/// One `VIDIOC_QUERYMENU` answer: the entry's name, or for an integer menu its
/// number as text.
pub fn menu_item(kind: ControlKind, raw: &sys::v4l2_querymenu) -> MenuItem {
    let u = raw.u;
    let name = if kind == ControlKind::IntegerMenu {
        // SAFETY: integer menus fill `value`; any bit pattern is an i64.
        unsafe { u.value }.to_string()
    } else {
        // SAFETY: menus fill `name`; any bit pattern is a byte array.
        string_from_c_array(&unsafe { u.name })
    };
    MenuItem {
        index: raw.index,
        name,
    }
}

/// The one `v4l2_ext_control` that sets control `id` of type `ctrl_type` to
/// `value`: `value64` for 64-bit controls, else `value` (which must fit 32 bits).
pub fn ext_control(id: u32, ctrl_type: u32, value: i64) -> Result<sys::v4l2_ext_control, String> {
    let mut control = sys::v4l2_ext_control {
        id,
        ..Default::default()
    };
    if ctrl_type == sys::V4L2_CTRL_TYPE_INTEGER64 {
        control.u = sys::v4l2_ext_control_u { value64: value };
    } else {
        let value = i32::try_from(value)
            .map_err(|_| format!("{value} does not fit this 32-bit control"))?;
        control.u = sys::v4l2_ext_control_u { value };
    }
    Ok(control)
}

/// Sets the time per frame of `queue` in a `v4l2_streamparm` that `VIDIOC_G_PARM`
/// filled (the capture member for capture queues, the output one for output
/// queues). False, and nothing changed, when the driver cannot set it (no
/// `V4L2_CAP_TIMEPERFRAME`).
pub fn set_time_per_frame(
    queue: Queue,
    parm: &mut sys::v4l2_streamparm,
    interval: Fraction,
) -> bool {
    let fract = sys::v4l2_fract {
        numerator: interval.numerator,
        denominator: interval.denominator,
    };
    if is_output(queue) {
        // SAFETY: for output types G_PARM fills `output`; plain integers.
        let mut output = unsafe { parm.parm.output };
        if output.capability & sys::V4L2_CAP_TIMEPERFRAME == 0 {
            return false;
        }
        output.timeperframe = fract;
        parm.parm.output = output;
    } else {
        // SAFETY: for capture types G_PARM fills `capture`; plain integers.
        let mut capture = unsafe { parm.parm.capture };
        if capture.capability & sys::V4L2_CAP_TIMEPERFRAME == 0 {
            return false;
        }
        capture.timeperframe = fract;
        parm.parm.capture = capture;
    }
    true
}

/// The time per frame in a `v4l2_streamparm` the driver filled for `queue`.
pub fn time_per_frame(queue: Queue, parm: &sys::v4l2_streamparm) -> Fraction {
    if is_output(queue) {
        // SAFETY: as in `set_time_per_frame`.
        unsafe { parm.parm.output.timeperframe }.into()
    } else {
        // SAFETY: as in `set_time_per_frame`.
        unsafe { parm.parm.capture.timeperframe }.into()
    }
}

/// What `poll(2)` said in `revents`.
pub fn readiness(revents: libc::c_short) -> Readiness {
    let any = |bits: libc::c_short| revents & bits != 0;
    Readiness {
        capture: any(libc::POLLIN | libc::POLLRDNORM),
        output: any(libc::POLLOUT | libc::POLLWRNORM),
        event: any(libc::POLLPRI),
        error: any(libc::POLLERR | libc::POLLHUP | libc::POLLNVAL),
    }
}

/// A `poll(2)` timeout in whole milliseconds, rounded up (so a short wait still
/// waits) and capped at `c_int::MAX`.
pub fn poll_timeout_ms(timeout: Duration) -> libc::c_int {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
}

/// Opens a real device node as a boxed [`Node`]: the production [`super::Opener`]
/// (`&open_node` coerces to `&Opener`).
pub fn open_node(path: &Path) -> Result<Box<dyn Node>, Error> {
    Device::open(path).map(|device| Box::new(device) as Box<dyn Node>)
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// `VIDIOC_QUERYCAP` on an open file; `ENOTTY` means "not a V4L2 device".
fn query_capability(file: &File, path: &Path) -> Result<sys::v4l2_capability, Error> {
    let mut raw = sys::v4l2_capability::default();
    // SAFETY: VIDIOC_QUERYCAP's argument is a v4l2_capability (size checked at
    // compile time in sys.rs), which has no pointers; `raw` is live for the call.
    let answer = unsafe {
        raw_ioctl(
            file.as_raw_fd(),
            sys::VIDIOC_QUERYCAP,
            (&mut raw as *mut sys::v4l2_capability).cast(),
        )
    };
    match answer {
        Ok(_) => Ok(raw),
        // A kernel answers ENOTTY for a file without this ioctl. qemu-user (used by
        // `make cross-test`) answers ENOSYS for ioctls it cannot translate, V4L2
        // ones included: that file is no usable V4L2 device either.
        Err(source) if matches!(source.raw_os_error(), Some(libc::ENOTTY | libc::ENOSYS)) => {
            Err(Error::NotV4l2 {
                path: path.to_path_buf(),
                source,
            })
        }
        Err(source) => Err(ioctl_error("VIDIOC_QUERYCAP", path, source)),
    }
}

fn ioctl_error(ioctl: &'static str, path: &Path, source: io::Error) -> Error {
    if source.raw_os_error() == Some(libc::ENOTTY) {
        Error::Unsupported {
            ioctl,
            path: path.to_path_buf(),
        }
    } else {
        Error::Ioctl {
            ioctl,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `Err((expected, actual))` if `T` is not the size `request` encodes.
fn check_size<T>(request: u32) -> Result<(), (usize, usize)> {
    let expected = sys::ioc_size(request);
    let actual = size_of::<T>();
    if expected == actual {
        Ok(())
    } else {
        Err((expected, actual))
    }
}

/// The one place that calls `ioctl(2)`; retries on `EINTR`.
///
/// # Safety
///
/// `arg` must point to a live, writable object of the type `request` expects
/// (including any memory that object points to).
unsafe fn raw_ioctl(fd: RawFd, request: u32, arg: *mut libc::c_void) -> io::Result<i32> {
    loop {
        // SAFETY: `fd` is an open descriptor owned by the caller; `arg` satisfies
        // the request's contract per this function's own safety requirement. The
        // request number is passed bit for bit (`Ioctl` is c_ulong on glibc and
        // c_int on musl).
        let ret = unsafe { libc::ioctl(fd, request as libc::Ioctl, arg) };
        if ret != -1 {
            return Ok(ret);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    #[test]
    fn dev_null_is_not_a_v4l2_device() {
        let err = Device::open("/dev/null").unwrap_err();
        assert!(matches!(err, Error::NotV4l2 { .. }), "{err:?}");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(err.errno(), Some(libc::ENOTTY));
        } else {
            // Cross-built tests run under qemu-user, which answers ENOSYS.
            assert!(
                matches!(err.errno(), Some(libc::ENOTTY | libc::ENOSYS)),
                "{err:?}"
            );
        }
        let text = err.to_string();
        assert!(text.contains("/dev/null is not a V4L2 device"), "{text}");
    }

    #[test]
    fn a_regular_file_is_not_a_v4l2_device() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = Device::open(file.path()).unwrap_err();
        assert!(matches!(err, Error::NotV4l2 { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_node_names_the_path() {
        let err = Device::open("/dev/video-does-not-exist").unwrap_err();
        assert!(matches!(err, Error::Open { .. }), "{err:?}");
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert!(
            err.to_string()
                .starts_with("cannot open /dev/video-does-not-exist: "),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_ioctl_and_the_device() {
        let path = Path::new("/dev/video11");
        let err = ioctl_error(
            "VIDIOC_S_FMT",
            path,
            io::Error::from_raw_os_error(libc::EBUSY),
        );
        assert_eq!(err.errno(), Some(libc::EBUSY));
        let text = err.to_string();
        assert!(
            text.starts_with("VIDIOC_S_FMT on /dev/video11 failed: "),
            "{text}"
        );
        let err = ioctl_error(
            "VIDIOC_ENCODER_CMD",
            path,
            io::Error::from_raw_os_error(libc::ENOTTY),
        );
        assert_eq!(
            err.to_string(),
            "VIDIOC_ENCODER_CMD is not supported by /dev/video11"
        );
    }

    #[test]
    fn argument_size_is_checked_against_the_request() {
        assert_eq!(check_size::<sys::v4l2_format>(sys::VIDIOC_S_FMT), Ok(()));
        assert_eq!(check_size::<libc::c_int>(sys::VIDIOC_STREAMON), Ok(()));
        assert_eq!(
            check_size::<sys::v4l2_control>(sys::VIDIOC_QUERYCAP),
            Err((104, 8))
        );
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

    #[test]
    fn strings_are_parsed_from_fixed_arrays() {
        assert_eq!(string_from_c_array(b"bcm2835-codec\0\0\0"), "bcm2835-codec");
        // A driver may fill the whole array without a terminating NUL.
        assert_eq!(string_from_c_array(b"0123456789abcdef"), "0123456789abcdef");
        assert_eq!(string_from_c_array(b"a\0b"), "a");
        assert_eq!(string_from_c_array(b""), "");
        assert_eq!(string_from_c_array(b"\xffok\0"), "\u{fffd}ok");
    }

    #[test]
    fn capability_from_raw() {
        let mut raw = sys::v4l2_capability {
            driver: *b"bcm2835-codec\0\0\0",
            ..Default::default()
        };
        raw.card[..20].copy_from_slice(b"bcm2835-codec-encode");
        raw.bus_info = [b'x'; 32]; // full, no NUL
        raw.version = (6 << 16) | (1 << 8) | 21;
        raw.capabilities = sys::V4L2_CAP_DEVICE_CAPS | sys::V4L2_CAP_VIDEO_M2M_MPLANE;
        raw.device_caps = sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING;
        let cap = Capability::from(&raw);
        assert_eq!(cap.driver, "bcm2835-codec");
        assert_eq!(cap.card, "bcm2835-codec-encode");
        assert_eq!(cap.bus_info, "x".repeat(32));
        assert_eq!(cap.version_string(), "6.1.21");
        assert!(cap.has(sys::V4L2_CAP_VIDEO_M2M_MPLANE | sys::V4L2_CAP_STREAMING));
        assert!(!cap.has(sys::V4L2_CAP_VIDEO_CAPTURE));
        // Without DEVICE_CAPS, `capabilities` is what counts.
        raw.capabilities = sys::V4L2_CAP_VIDEO_CAPTURE;
        assert!(Capability::from(&raw).has(sys::V4L2_CAP_VIDEO_CAPTURE));
    }

    fn nv12_720p() -> ImageFormat {
        ImageFormat {
            width: 1280,
            height: 720,
            pixelformat: sys::V4L2_PIX_FMT_NV12,
            field: sys::V4L2_FIELD_NONE,
            colorspace: sys::V4L2_COLORSPACE_REC709,
            planes: vec![PlaneLayout {
                bytesperline: 1280,
                sizeimage: 1280 * 720 * 3 / 2,
            }],
        }
    }

    #[test]
    fn single_planar_formats_round_trip() {
        let format = nv12_720p();
        let raw = raw_format(Queue::Capture, &format);
        assert_eq!(raw.type_, sys::V4L2_BUF_TYPE_VIDEO_CAPTURE);
        // SAFETY (test): single-planar, `pix` was written.
        let pix = unsafe { raw.fmt.pix };
        assert_eq!((pix.width, pix.height), (1280, 720));
        assert_eq!(pix.bytesperline, 1280);
        assert_eq!(pix.sizeimage, 1_382_400);
        assert_eq!(pix.colorspace, sys::V4L2_COLORSPACE_REC709);
        assert_eq!(image_format(Queue::Capture, &raw), format);

        // No layout asks the driver to choose: zeros.
        let mut h264 = format.clone();
        h264.pixelformat = sys::V4L2_PIX_FMT_H264;
        h264.planes.clear();
        let raw = raw_format(Queue::Capture, &h264);
        // SAFETY (test): as above.
        let pix = unsafe { raw.fmt.pix };
        assert_eq!((pix.bytesperline, pix.sizeimage), (0, 0));
        let back = image_format(Queue::Capture, &raw);
        assert_eq!(
            back.planes,
            vec![PlaneLayout {
                bytesperline: 0,
                sizeimage: 0
            }]
        );
    }

    #[test]
    fn multi_planar_formats_round_trip() {
        let mut format = nv12_720p();
        format.planes.push(PlaneLayout {
            bytesperline: 1280,
            sizeimage: 460_800,
        });
        let raw = raw_format(Queue::OutputMplane, &format);
        assert_eq!(raw.type_, sys::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE);
        // SAFETY (test): multi-planar, `pix_mp` was written.
        let mp = unsafe { raw.fmt.pix_mp };
        assert_eq!(mp.num_planes, 2);
        let planes = mp.plane_fmt;
        let (second, third) = (planes[1], planes[2]);
        assert_eq!({ second.sizeimage }, 460_800);
        assert_eq!({ third.sizeimage }, 0);
        assert_eq!(image_format(Queue::OutputMplane, &raw), format);

        // A driver claiming more than VIDEO_MAX_PLANES planes is read as 8.
        let mut raw = raw;
        let mut mp = mp;
        mp.num_planes = 200;
        raw.fmt.pix_mp = mp;
        assert_eq!(image_format(Queue::OutputMplane, &raw).planes.len(), 8);
    }

    #[test]
    fn querybuf_answers_become_mappings() {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let mut buf = sys::v4l2_buffer {
            length: 3_110_400,
            ..Default::default()
        };
        buf.m.offset = 0x1000;
        assert_eq!(
            plane_mappings(Queue::Capture, &buf, &planes),
            vec![(0x1000, 3_110_400)]
        );
        planes[0].m.mem_offset = 0x4000;
        planes[0].length = 65536;
        planes[1].m.mem_offset = 0x8000;
        planes[1].length = 4096;
        buf.length = 2;
        assert_eq!(
            plane_mappings(Queue::OutputMplane, &buf, &planes),
            vec![(0x4000, 65536), (0x8000, 4096)]
        );
        buf.length = 99;
        assert_eq!(plane_mappings(Queue::CaptureMplane, &buf, &planes).len(), 8);
    }

    #[test]
    fn output_buffers_carry_payload_sizes_and_the_timestamp() {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let ts = Duration::new(12, 345_678_900);
        let buf = qbuf_request(
            Queue::OutputMplane,
            3,
            &[1000, 500],
            ts,
            &[4096, 4096],
            &mut planes,
        )
        .unwrap();
        assert_eq!(buf.index, 3);
        assert_eq!(buf.type_, sys::V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE);
        assert_eq!(buf.memory, sys::V4L2_MEMORY_MMAP);
        assert_eq!(buf.length, 2);
        // SAFETY (test): multi-planar, `planes` was written.
        assert_eq!(unsafe { buf.m.planes }, planes.as_mut_ptr());
        assert_eq!((planes[0].bytesused, planes[1].bytesused), (1000, 500));
        assert_eq!(planes[0].length, 4096);
        assert_eq!(buf.timestamp.tv_sec, 12);
        assert_eq!(buf.timestamp.tv_usec, 345_678);
        assert_eq!(buf.field, sys::V4L2_FIELD_NONE);

        // Fewer sizes than planes: the rest are 0.
        let buf = qbuf_request(Queue::Output, 0, &[], ts, &[100], &mut planes).unwrap();
        assert_eq!((buf.bytesused, buf.length), (0, 100));
        let buf = qbuf_request(Queue::Output, 0, &[100], ts, &[100], &mut planes).unwrap();
        assert_eq!(buf.bytesused, 100);

        // Capture buffers ignore payload and timestamp.
        let buf = qbuf_request(Queue::Capture, 1, &[999], ts, &[100], &mut planes).unwrap();
        assert_eq!(buf.bytesused, 0);
        assert_eq!(buf.timestamp.tv_sec, 0);
        let buf = qbuf_request(Queue::CaptureMplane, 1, &[], ts, &[100], &mut planes).unwrap();
        assert_eq!(buf.length, 1);
        assert_eq!(planes[0].bytesused, 0);
    }

    #[test]
    fn impossible_output_buffers_are_refused() {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let ts = Duration::ZERO;
        let err = qbuf_request(Queue::Output, 0, &[101], ts, &[100], &mut planes)
            .err()
            .unwrap();
        assert!(err.contains("101 bytes for plane 0"), "{err}");
        let err = qbuf_request(Queue::OutputMplane, 2, &[1, 2], ts, &[100], &mut planes)
            .err()
            .unwrap();
        assert!(err.contains("2 payload sizes"), "{err}");
        let err = qbuf_request(Queue::Capture, 0, &[], ts, &[], &mut planes)
            .err()
            .unwrap();
        assert!(err.contains("0 planes"), "{err}");
    }

    #[test]
    fn dequeued_buffers_are_typed() {
        let mut planes = [sys::v4l2_plane::default(); sys::VIDEO_MAX_PLANES];
        let mut buf = sys::v4l2_buffer {
            index: 2,
            bytesused: 4242,
            flags: sys::V4L2_BUF_FLAG_KEYFRAME | sys::V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
            sequence: 77,
            timestamp: libc::timeval {
                tv_sec: 100,
                tv_usec: 250_000,
            },
            ..Default::default()
        };
        let d = dequeued(Queue::Capture, &buf, &planes);
        assert_eq!(d.index, 2);
        assert_eq!(
            d.planes,
            vec![PlaneUse {
                bytesused: 4242,
                data_offset: 0
            }]
        );
        assert_eq!(
            d.flags & sys::V4L2_BUF_FLAG_KEYFRAME,
            sys::V4L2_BUF_FLAG_KEYFRAME
        );
        assert_eq!(d.timestamp, Duration::from_millis(100_250));
        assert_eq!(d.sequence, 77);

        planes[0].bytesused = 900;
        planes[0].data_offset = 16;
        buf.length = 1;
        let d = dequeued(Queue::CaptureMplane, &buf, &planes);
        assert_eq!(
            d.planes,
            vec![PlaneUse {
                bytesused: 900,
                data_offset: 16
            }]
        );
    }

    #[test]
    fn timestamps_convert_both_ways() {
        let d = Duration::new(1_700_000_000, 123_456_789);
        let tv = timeval(d);
        assert_eq!(tv.tv_usec, 123_456);
        assert_eq!(duration(tv), Duration::new(1_700_000_000, 123_456_000));
        assert_eq!(
            duration(libc::timeval {
                tv_sec: -1,
                tv_usec: -5
            }),
            Duration::ZERO
        );
        assert_eq!(
            duration(libc::timeval {
                tv_sec: 1,
                tv_usec: 5_000_000
            }),
            Duration::new(1, 999_999_000)
        );
        assert_eq!(timeval(Duration::MAX).tv_sec, libc::time_t::MAX);
    }

    #[test]
    fn queryctrl_answers_become_control_info() {
        let mut raw = sys::v4l2_queryctrl {
            id: sys::V4L2_CID_MPEG_VIDEO_BITRATE,
            type_: sys::V4L2_CTRL_TYPE_INTEGER,
            minimum: 25_000,
            maximum: 25_000_000,
            step: 25_000,
            default_value: 10_000_000,
            flags: sys::V4L2_CTRL_FLAG_INACTIVE,
            ..Default::default()
        };
        raw.name[..13].copy_from_slice(b"Video Bitrate");
        let info = control_info(&raw);
        assert_eq!(info.name, "Video Bitrate");
        assert_eq!(info.kind, ControlKind::Integer);
        assert_eq!(
            (info.minimum, info.maximum, info.step),
            (25_000, 25_000_000, 25_000)
        );
        assert_eq!(info.default, 10_000_000);
        assert!(info.is_writable());
        assert!(info.menu.is_empty());

        raw.type_ = sys::V4L2_CTRL_TYPE_INTEGER;
        raw.minimum = -100;
        raw.step = -1; // nonsense: read as 0
        let info = control_info(&raw);
        assert_eq!(info.minimum, -100);
        assert_eq!(info.step, 0);
        for (ty, kind) in [
            (sys::V4L2_CTRL_TYPE_BOOLEAN, ControlKind::Boolean),
            (sys::V4L2_CTRL_TYPE_MENU, ControlKind::Menu),
            (sys::V4L2_CTRL_TYPE_INTEGER_MENU, ControlKind::IntegerMenu),
            (sys::V4L2_CTRL_TYPE_BUTTON, ControlKind::Button),
            (sys::V4L2_CTRL_TYPE_INTEGER64, ControlKind::Integer64),
            (sys::V4L2_CTRL_TYPE_STRING, ControlKind::Other(7)),
        ] {
            raw.type_ = ty;
            assert_eq!(control_info(&raw).kind, kind);
        }
    }

    #[test]
    fn querymenu_answers_become_menu_items() {
        let mut raw = sys::v4l2_querymenu {
            id: sys::V4L2_CID_MPEG_VIDEO_H264_LEVEL,
            index: 11,
            ..Default::default()
        };
        let mut name = [0u8; 32];
        name[..3].copy_from_slice(b"4.0");
        raw.u = sys::v4l2_querymenu_u { name };
        assert_eq!(
            menu_item(ControlKind::Menu, &raw),
            MenuItem {
                index: 11,
                name: "4.0".into()
            }
        );
        raw.u = sys::v4l2_querymenu_u { value: -300 };
        raw.index = 1;
        assert_eq!(menu_item(ControlKind::IntegerMenu, &raw).name, "-300");
    }

    #[test]
    fn controls_are_set_in_their_class_with_the_right_width() {
        assert_eq!(
            control_class(sys::V4L2_CID_MPEG_VIDEO_BITRATE),
            sys::V4L2_CTRL_CLASS_CODEC
        );
        assert_eq!(
            control_class(sys::V4L2_CID_BRIGHTNESS),
            sys::V4L2_CTRL_CLASS_USER
        );
        assert_eq!(
            control_class(sys::V4L2_CID_EXPOSURE_AUTO),
            sys::V4L2_CTRL_CLASS_CAMERA
        );
        let c = ext_control(sys::V4L2_CID_BRIGHTNESS, sys::V4L2_CTRL_TYPE_INTEGER, 60).unwrap();
        let id = c.id;
        assert_eq!(id, sys::V4L2_CID_BRIGHTNESS);
        // SAFETY (test): `value` was written.
        assert_eq!(unsafe { c.u.value }, 60);
        let big = 1i64 << 40;
        let c = ext_control(0x00a0_0001, sys::V4L2_CTRL_TYPE_INTEGER64, big).unwrap();
        // SAFETY (test): `value64` was written.
        assert_eq!(unsafe { c.u.value64 }, big);
        let err = ext_control(1, sys::V4L2_CTRL_TYPE_INTEGER, big)
            .err()
            .unwrap();
        assert!(err.contains("does not fit"), "{err}");
    }

    #[test]
    fn frame_intervals_go_to_the_queues_member() {
        let fps25 = Fraction {
            numerator: 1,
            denominator: 25,
        };
        let mut parm = sys::v4l2_streamparm::default();
        assert!(!set_time_per_frame(Queue::Capture, &mut parm, fps25));
        let mut capture = sys::v4l2_captureparm {
            capability: sys::V4L2_CAP_TIMEPERFRAME,
            ..Default::default()
        };
        capture.readbuffers = 3;
        parm.parm.capture = capture;
        assert!(set_time_per_frame(Queue::Capture, &mut parm, fps25));
        assert_eq!(time_per_frame(Queue::Capture, &parm), fps25);
        // SAFETY (test): `capture` was written.
        assert_eq!(
            unsafe { parm.parm.capture.readbuffers },
            3,
            "other fields kept"
        );

        let mut parm = sys::v4l2_streamparm::default();
        parm.parm.output = sys::v4l2_outputparm {
            capability: sys::V4L2_CAP_TIMEPERFRAME,
            ..Default::default()
        };
        assert!(set_time_per_frame(Queue::OutputMplane, &mut parm, fps25));
        assert_eq!(time_per_frame(Queue::OutputMplane, &parm), fps25);
    }

    #[test]
    fn poll_results_and_timeouts() {
        assert!(readiness(0).timed_out());
        let r = readiness(libc::POLLIN | libc::POLLPRI);
        assert!(r.capture && r.event && !r.output && !r.error);
        assert!(readiness(libc::POLLOUT).output);
        assert!(readiness(libc::POLLERR).error);
        assert!(readiness(libc::POLLHUP).error);
        assert_eq!(poll_timeout_ms(Duration::ZERO), 0);
        assert_eq!(poll_timeout_ms(Duration::from_micros(1)), 1);
        assert_eq!(poll_timeout_ms(Duration::from_millis(250)), 250);
        assert_eq!(poll_timeout_ms(Duration::MAX), libc::c_int::MAX);
    }

    /// `err` is `ioctl` refused as unsupported: `ENOTTY` from a kernel, or `ENOSYS`
    /// from qemu-user, which cross-built tests run under and which cannot
    /// translate V4L2 ioctls.
    fn assert_unsupported(err: &Error, ioctl: &str) {
        match err {
            Error::Unsupported { ioctl: name, .. } if *name == ioctl => {}
            Error::Ioctl {
                ioctl: name,
                source,
                ..
            } if *name == ioctl
                && !cfg!(target_arch = "x86_64")
                && source.raw_os_error() == Some(libc::ENOSYS) => {}
            other => panic!("expected {ioctl} to be unsupported: {other}"),
        }
    }

    /// A `Device` over any file (a pipe, a temp file): the non-V4L2 paths of the
    /// `Node` implementation can run against it.
    fn device_over(file: File) -> Device {
        Device {
            file,
            path: PathBuf::from("/dev/video-test"),
            capability: Capability {
                driver: "test".into(),
                card: "test".into(),
                bus_info: String::new(),
                version: 0,
                capabilities: 0,
                device_caps: 0,
            },
            buffers: HashMap::new(),
            streaming: Vec::new(),
        }
    }

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: fresh descriptors, owned by the Files from here on.
        unsafe {
            (
                File::from(std::os::fd::OwnedFd::from_raw_fd(fds[0])),
                File::from(std::os::fd::OwnedFd::from_raw_fd(fds[1])),
            )
        }
    }

    #[test]
    fn wait_polls_the_descriptor() {
        use std::io::Write;
        let (read, mut write) = pipe();
        let mut device = device_over(read);
        let started = Instant::now();
        let r = device.wait(Duration::from_millis(50)).unwrap();
        assert!(r.timed_out(), "{r:?}");
        assert!(started.elapsed() >= Duration::from_millis(45));
        write.write_all(b"x").unwrap();
        let r = device.wait(Duration::from_secs(5)).unwrap();
        assert!(r.capture && !r.error, "{r:?}");
        drop(write);
        let mut device = device_over(pipe().0);
        let r = device.wait(Duration::from_secs(5)).unwrap();
        assert!(r.error, "a closed writer is a hang-up: {r:?}");
    }

    fn mapped_file_buffer(len: usize) -> (File, MappedBuffer) {
        let file = tempfile::tempfile().unwrap();
        file.set_len(len as u64).unwrap();
        let plane = MappedPlane::map(file.as_fd(), 0, len).unwrap();
        (file, MappedBuffer::new(vec![plane]))
    }

    #[test]
    fn buffers_are_bounds_checked_and_unmapped_before_freeing() {
        let (_backing, mapped) = mapped_file_buffer(4096);
        let mut device = device_over(tempfile::tempfile().unwrap());
        device.buffers.insert(Queue::Output, vec![mapped]);
        device.buffer_mut(Queue::Output, 0, 0).unwrap()[..3].copy_from_slice(b"abc");
        assert_eq!(&device.buffer(Queue::Output, 0, 0).unwrap()[..3], b"abc");
        assert!(device.buffer(Queue::Output, 0, 1).is_none());
        assert!(device.buffer(Queue::Output, 1, 0).is_none());
        assert!(device.buffer(Queue::Capture, 0, 0).is_none());
        assert!(device.buffer_mut(Queue::Output, u32::MAX, 0).is_none());

        // Too much payload is refused before the kernel sees it.
        let err = device
            .queue_buffer(Queue::Output, 0, &[5000], Duration::ZERO)
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
        assert!(
            err.to_string().starts_with("/dev/video-test: 5000 bytes"),
            "{err}"
        );
        let err = device
            .queue_buffer(Queue::Capture, 0, &[], Duration::ZERO)
            .unwrap_err();
        assert!(err.to_string().contains("not mapped"), "{err}");
        // A plain file has no VIDIOC_QBUF.
        let err = device
            .queue_buffer(Queue::Output, 0, &[10], Duration::ZERO)
            .unwrap_err();
        assert_unsupported(&err, "VIDIOC_QBUF");

        // Freeing unmaps first, even when the driver then refuses.
        let err = device.request_buffers(Queue::Output, 0).unwrap_err();
        assert_unsupported(&err, "VIDIOC_REQBUFS");
        assert!(device.buffer(Queue::Output, 0, 0).is_none());
    }

    #[test]
    fn ioctl_failures_of_the_node_methods_name_what_failed() {
        let mut device = device_over(tempfile::tempfile().unwrap());
        let err = device.controls().unwrap_err();
        assert_unsupported(&err, "VIDIOC_QUERYCTRL");
        let err = device
            .set_control(sys::V4L2_CID_MPEG_VIDEO_BITRATE, 1_000_000)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cannot set control 0x009909cf to 1000000 on /dev/video-test: "),
            "{err}"
        );
        let err = device.dequeue_buffer(Queue::Capture).unwrap_err();
        assert_unsupported(&err, "VIDIOC_DQBUF");
        let err = device.stream_on(Queue::Capture).unwrap_err();
        assert_unsupported(&err, "VIDIOC_STREAMON");
        assert!(device.streaming.is_empty());
        let err = device.format(Queue::CaptureMplane).unwrap_err();
        assert_unsupported(&err, "VIDIOC_G_FMT");
        // No G_PARM: the interval cannot be set, which is not an error.
        let fps = Fraction {
            numerator: 1,
            denominator: 30,
        };
        match device.set_frame_interval(Queue::Capture, fps) {
            Ok(interval) => assert_eq!(interval, None),
            // qemu-user: ENOSYS, which is no "unsupported" for the real code.
            Err(err) => assert_unsupported(&err, "VIDIOC_G_PARM"),
        }
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                device.set_frame_interval(Queue::Capture, fps).unwrap(),
                None
            );
        }
        let err = device.encoder_command(sys::V4L2_ENC_CMD_STOP).unwrap_err();
        assert_unsupported(&err, "VIDIOC_ENCODER_CMD");
        // Buffers of a streaming queue are not freed (nor unmapped).
        device.streaming.push(Queue::Capture);
        let (_backing, mapped) = mapped_file_buffer(4096);
        device.buffers.insert(Queue::Capture, vec![mapped]);
        let err = device.request_buffers(Queue::Capture, 0).unwrap_err();
        assert!(err.to_string().contains("stream_off first"), "{err}");
        assert!(device.buffer(Queue::Capture, 0, 0).is_some());
        // Dropping with a queue marked streaming tries STREAMOFF and does not panic.
        drop(device);
    }

    #[test]
    fn describe_of_a_device_without_v4l2_answers_is_empty() {
        if !cfg!(target_arch = "x86_64") {
            return; // qemu-user answers ENOSYS, not ENOTTY (see assert_unsupported)
        }
        let device = device_over(tempfile::tempfile().unwrap());
        let d = crate::v4l2::describe(&device).unwrap();
        assert!(d.queues.is_empty() && d.controls.is_empty());
        assert_eq!(d.path, "/dev/video-test");
    }
}
