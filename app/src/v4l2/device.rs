//! A V4L2 device node opened for real: [`Device`] implements [`Node`] with
//! `ioctl(2)` (through the one `raw_ioctl`, which retries on `EINTR`) and `mmap(2)`
//! ([`super::mmap`]): open a node, ask what it is (`VIDIOC_QUERYCAP`) and what it
//! produces (`VIDIOC_ENUM_FMT`, `VIDIOC_ENUM_FRAMESIZES`,
//! `VIDIOC_ENUM_FRAMEINTERVALS`), controls, formats, MMAP buffers, streaming and
//! `poll(2)`. Anything else goes through [`Device::ioctl`] with the raw structs of
//! [`super::sys`].
//!
//! The kernel's structs are built and read by the pure functions of
//! [`super::convert`], tested without a device; the ioctl paths themselves are
//! tested on a Raspberry Pi (`app/tests/hardware.rs`).

use super::convert::{
    control_class, control_info, dequeued, ext_control, image_format, menu_item, plane_mappings,
    poll_timeout_ms, qbuf_request, raw_format, readiness, set_time_per_frame, string_from_c_array,
    time_per_frame,
};
use super::mmap::{MappedBuffer, MappedPlane};
use super::node::{
    Capability, ControlInfo, ControlKind, Dequeued, Error, FormatDesc, Fraction, FrameInterval,
    FrameSize, ImageFormat, MenuItem, Node, Queue, Readiness, MAX_ENUM_ENTRIES,
};
use super::sys;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many buffers of one queue are mapped (the kernel's `VB2_MAX_FRAME`
/// was 32, later 64).
const MAX_BUFFERS: u32 = 64;

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
