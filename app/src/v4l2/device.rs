//! A thin safe wrapper over a V4L2 device node: open it, ask what it is
//! (`VIDIOC_QUERYCAP`) and what it produces (`VIDIOC_ENUM_FMT`,
//! `VIDIOC_ENUM_FRAMESIZES`, `VIDIOC_ENUM_FRAMEINTERVALS`). Everything else goes
//! through [`Device::ioctl`] with the raw structs of [`super::sys`].

use super::sys;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Enumerations stop here even if a driver never says "no more" (`EINVAL`).
const MAX_ENUM_ENTRIES: u32 = 1024;

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
}

impl Error {
    /// The OS error number behind this error, if any (e.g. `EAGAIN`, `EINVAL`).
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Open { source, .. }
            | Error::NotV4l2 { source, .. }
            | Error::Ioctl { source, .. } => source.raw_os_error(),
            Error::Unsupported { .. } => Some(libc::ENOTTY),
            Error::ArgumentSize { .. } | Error::EndlessEnumeration { .. } => None,
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

/// An open V4L2 device node.
#[derive(Debug)]
pub struct Device {
    file: File,
    path: PathBuf,
    capability: Capability,
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
        let mut formats = Vec::new();
        for index in 0..MAX_ENUM_ENTRIES {
            let mut desc = sys::v4l2_fmtdesc {
                index,
                type_: buf_type,
                ..Default::default()
            };
            // SAFETY: VIDIOC_ENUM_FMT takes a v4l2_fmtdesc, which has no pointers.
            match unsafe { self.ioctl("VIDIOC_ENUM_FMT", sys::VIDIOC_ENUM_FMT, &mut desc) } {
                Ok(_) => formats.push(FormatDesc {
                    pixelformat: desc.pixelformat,
                    description: string_from_c_array(&desc.description),
                    flags: desc.flags,
                }),
                Err(e) if e.errno() == Some(libc::EINVAL) => return Ok(formats),
                Err(e) => return Err(e),
            }
        }
        Err(self.endless("VIDIOC_ENUM_FMT"))
    }

    /// The frame sizes the device offers for `pixelformat`: a list of discrete
    /// sizes, or one stepwise range. Empty if the driver knows no sizes for it.
    pub fn enum_frame_sizes(&self, pixelformat: u32) -> Result<Vec<FrameSize>, Error> {
        let mut sizes = Vec::new();
        for index in 0..MAX_ENUM_ENTRIES {
            let mut raw = sys::v4l2_frmsizeenum {
                index,
                pixel_format: pixelformat,
                ..Default::default()
            };
            // SAFETY: VIDIOC_ENUM_FRAMESIZES takes a v4l2_frmsizeenum, no pointers.
            let answer = unsafe {
                self.ioctl(
                    "VIDIOC_ENUM_FRAMESIZES",
                    sys::VIDIOC_ENUM_FRAMESIZES,
                    &mut raw,
                )
            };
            match answer {
                Ok(_) => {}
                Err(e) if e.errno() == Some(libc::EINVAL) => return Ok(sizes),
                Err(e) => return Err(e),
            }
            if raw.type_ == sys::V4L2_FRMSIZE_TYPE_DISCRETE {
                // SAFETY: the driver filled the `discrete` member (type DISCRETE);
                // every bit pattern is a valid pair of u32s anyway.
                let d = unsafe { raw.u.discrete };
                sizes.push(FrameSize::Discrete {
                    width: d.width,
                    height: d.height,
                });
            } else {
                // SAFETY: CONTINUOUS and STEPWISE fill `stepwise`; plain u32s.
                let s = unsafe { raw.u.stepwise };
                sizes.push(FrameSize::Stepwise {
                    min_width: s.min_width,
                    max_width: s.max_width,
                    step_width: s.step_width,
                    min_height: s.min_height,
                    max_height: s.max_height,
                    step_height: s.step_height,
                });
                return Ok(sizes);
            }
        }
        Err(self.endless("VIDIOC_ENUM_FRAMESIZES"))
    }

    /// The frame intervals the device offers for `pixelformat` at
    /// `width`x`height`: a list of discrete intervals, or one stepwise range.
    pub fn enum_frame_intervals(
        &self,
        pixelformat: u32,
        width: u32,
        height: u32,
    ) -> Result<Vec<FrameInterval>, Error> {
        let mut intervals = Vec::new();
        for index in 0..MAX_ENUM_ENTRIES {
            let mut raw = sys::v4l2_frmivalenum {
                index,
                pixel_format: pixelformat,
                width,
                height,
                ..Default::default()
            };
            // SAFETY: VIDIOC_ENUM_FRAMEINTERVALS takes a v4l2_frmivalenum, no pointers.
            let answer = unsafe {
                self.ioctl(
                    "VIDIOC_ENUM_FRAMEINTERVALS",
                    sys::VIDIOC_ENUM_FRAMEINTERVALS,
                    &mut raw,
                )
            };
            match answer {
                Ok(_) => {}
                Err(e) if e.errno() == Some(libc::EINVAL) => return Ok(intervals),
                Err(e) => return Err(e),
            }
            if raw.type_ == sys::V4L2_FRMIVAL_TYPE_DISCRETE {
                // SAFETY: type DISCRETE fills `discrete`; plain u32s.
                intervals.push(FrameInterval::Discrete(unsafe { raw.u.discrete }.into()));
            } else {
                // SAFETY: CONTINUOUS and STEPWISE fill `stepwise`; plain u32s.
                let s = unsafe { raw.u.stepwise };
                intervals.push(FrameInterval::Stepwise {
                    min: s.min.into(),
                    max: s.max.into(),
                    step: s.step.into(),
                });
                return Ok(intervals);
            }
        }
        Err(self.endless("VIDIOC_ENUM_FRAMEINTERVALS"))
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
}
