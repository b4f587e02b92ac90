//! The kernel ABI of V4L2 (`linux/videodev2.h`, `linux/v4l2-controls.h`): the
//! `#[repr(C)]` structs, constants and ioctl request numbers the Raspberry Pi's
//! legacy camera (bcm2835-v4l2, single-planar capture) and its memory-to-memory
//! H.264 encoder (bcm2835-codec, multi-planar) need, and nothing more.
//!
//! Names are the kernel's, so this file can be read side by side with the header.
//! Anonymous C unions become a named union in a field called `u`; a union of two
//! same-typed aliases (`ycbcr_enc`/`hsv_enc`, `which`/`ctrl_class`,
//! `request_fd`/`reserved`) is modelled by its first member.
//!
//! Every struct, offset and constant here is compared against the C header by
//! `app/tests/v4l2_abi.rs`, and the sizes are pinned per pointer width by the
//! compile-time assertions at the end of this file, so a cross build for a Pi
//! fails to compile if a layout is wrong.
//!
//! Ioctl numbers use the generic `_IOC` encoding of `asm-generic/ioctl.h`, which is
//! the one x86, ARM and AArch64 use (Alpha, MIPS, PowerPC and SPARC differ and are
//! not supported).

#![allow(non_camel_case_types, missing_docs)]

use libc::{c_int, c_ulong, c_void, timeval};
use std::mem::size_of;

// ---------------------------------------------------------------------------
// ioctl request encoding (asm-generic/ioctl.h)

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;

/// `_IOC_WRITE`: userspace writes the argument, the kernel reads it.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`: the kernel writes the argument back.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)`. Panics at compile time (all uses are in consts)
/// if `size` does not fit the 14-bit size field.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << IOC_SIZEBITS), "ioctl argument too large");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IOR(type, nr, T)`.
pub const fn ior<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ, ty, nr, size_of::<T>())
}

/// `_IOW(type, nr, T)`.
pub const fn iow<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOWR(type, nr, T)`.
pub const fn iowr<T>(ty: u8, nr: u8) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size_of::<T>())
}

/// `_IOC_SIZE(request)`: the argument size encoded in a request number.
pub const fn ioc_size(request: u32) -> usize {
    ((request >> IOC_SIZESHIFT) & ((1 << IOC_SIZEBITS) - 1)) as usize
}

/// `v4l2_fourcc(a, b, c, d)`: a pixel format code, `a` in the lowest byte.
pub const fn v4l2_fourcc(a: u8, b: u8, c: u8, d: u8) -> u32 {
    (a as u32) | ((b as u32) << 8) | ((c as u32) << 16) | ((d as u32) << 24)
}

// ---------------------------------------------------------------------------
// Structs

/// Maximum planes of a multi-planar format.
pub const VIDEO_MAX_PLANES: usize = 8;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_fmtdesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_fract {
    pub numerator: u32,
    pub denominator: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_frmsize_discrete {
    pub width: u32,
    pub height: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_frmsize_stepwise {
    pub min_width: u32,
    pub max_width: u32,
    pub step_width: u32,
    pub min_height: u32,
    pub max_height: u32,
    pub step_height: u32,
}

/// The anonymous union of `v4l2_frmsizeenum`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_frmsizeenum_u {
    pub discrete: v4l2_frmsize_discrete,
    pub stepwise: v4l2_frmsize_stepwise,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_frmsizeenum {
    pub index: u32,
    pub pixel_format: u32,
    pub type_: u32,
    pub u: v4l2_frmsizeenum_u,
    pub reserved: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_frmival_stepwise {
    pub min: v4l2_fract,
    pub max: v4l2_fract,
    pub step: v4l2_fract,
}

/// The anonymous union of `v4l2_frmivalenum`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_frmivalenum_u {
    pub discrete: v4l2_fract,
    pub stepwise: v4l2_frmival_stepwise,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_frmivalenum {
    pub index: u32,
    pub pixel_format: u32,
    pub width: u32,
    pub height: u32,
    pub type_: u32,
    pub u: v4l2_frmivalenum_u,
    pub reserved: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_pix_format {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    /// Union with `hsv_enc`.
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_plane_pix_format {
    pub sizeimage: u32,
    pub bytesperline: u32,
    pub reserved: [u16; 6],
}

#[repr(C, packed)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_pix_format_mplane {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub colorspace: u32,
    pub plane_fmt: [v4l2_plane_pix_format; VIDEO_MAX_PLANES],
    pub num_planes: u8,
    pub flags: u8,
    /// Union with `hsv_enc`.
    pub ycbcr_enc: u8,
    pub quantization: u8,
    pub xfer_func: u8,
    pub reserved: [u8; 7],
}

/// The `fmt` union of `v4l2_format`: 200 bytes, and pointer-aligned because the
/// kernel's union also holds `struct v4l2_window` (which has pointers). That makes
/// `v4l2_format` 208 bytes on 64-bit targets and 204 on 32-bit ones.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_format_fmt {
    pub pix: v4l2_pix_format,
    pub pix_mp: v4l2_pix_format_mplane,
    pub raw_data: [u8; 200],
    /// Alignment only: stands for the pointers inside `struct v4l2_window`.
    pub _align: [c_ulong; 0],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_format {
    pub type_: u32,
    pub fmt: v4l2_format_fmt,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_requestbuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_timecode {
    pub type_: u32,
    pub flags: u32,
    pub frames: u8,
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub userbits: [u8; 4],
}

/// The `m` union of `v4l2_plane`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_plane_m {
    pub mem_offset: u32,
    pub userptr: c_ulong,
    pub fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_plane {
    pub bytesused: u32,
    pub length: u32,
    pub m: v4l2_plane_m,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}

/// The `m` union of `v4l2_buffer`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_buffer_m {
    pub offset: u32,
    pub userptr: c_ulong,
    pub planes: *mut v4l2_plane,
    pub fd: i32,
}

/// `struct v4l2_buffer`. `timestamp` is the C library's `struct timeval`: 16 bytes on
/// 64-bit targets, 8 on 32-bit ARM with the classic 32-bit `time_t` (the kernel
/// accepts both; the ioctl numbers below encode this struct's size).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub timestamp: timeval,
    pub timecode: v4l2_timecode,
    pub sequence: u32,
    pub memory: u32,
    pub m: v4l2_buffer_m,
    pub length: u32,
    pub reserved2: u32,
    /// Union with `reserved`.
    pub request_fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_exportbuffer {
    pub type_: u32,
    pub index: u32,
    pub plane: u32,
    pub flags: u32,
    pub fd: i32,
    pub reserved: [u32; 11],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_captureparm {
    pub capability: u32,
    pub capturemode: u32,
    pub timeperframe: v4l2_fract,
    pub extendedmode: u32,
    pub readbuffers: u32,
    pub reserved: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_outputparm {
    pub capability: u32,
    pub outputmode: u32,
    pub timeperframe: v4l2_fract,
    pub extendedmode: u32,
    pub writebuffers: u32,
    pub reserved: [u32; 4],
}

/// The `parm` union of `v4l2_streamparm`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_streamparm_parm {
    pub capture: v4l2_captureparm,
    pub output: v4l2_outputparm,
    pub raw_data: [u8; 200],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_streamparm {
    pub type_: u32,
    pub parm: v4l2_streamparm_parm,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_control {
    pub id: u32,
    pub value: i32,
}

/// The anonymous value union of `v4l2_ext_control` (the kernel lists one pointer
/// type per compound control; all are pointers, `ptr` stands for them).
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_ext_control_u {
    pub value: i32,
    pub value64: i64,
    pub string: *mut libc::c_char,
    pub p_u8: *mut u8,
    pub p_u16: *mut u16,
    pub p_u32: *mut u32,
    pub ptr: *mut c_void,
}

/// `struct v4l2_ext_control`, which the kernel declares packed: 20 bytes everywhere.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct v4l2_ext_control {
    pub id: u32,
    pub size: u32,
    pub reserved2: [u32; 1],
    pub u: v4l2_ext_control_u,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct v4l2_ext_controls {
    /// Union with `ctrl_class`.
    pub which: u32,
    pub count: u32,
    pub error_idx: u32,
    pub request_fd: i32,
    pub reserved: [u32; 1],
    pub controls: *mut v4l2_ext_control,
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_queryctrl {
    pub id: u32,
    pub type_: u32,
    pub name: [u8; 32],
    pub minimum: i32,
    pub maximum: i32,
    pub step: i32,
    pub default_value: i32,
    pub flags: u32,
    pub reserved: [u32; 2],
}

/// The anonymous union of `v4l2_querymenu`: a menu entry's name, or an integer
/// menu entry's value.
#[repr(C)]
#[derive(Clone, Copy)]
pub union v4l2_querymenu_u {
    pub name: [u8; 32],
    pub value: i64,
}

/// `struct v4l2_querymenu`, which the kernel declares packed: 44 bytes everywhere.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct v4l2_querymenu {
    pub id: u32,
    pub index: u32,
    pub u: v4l2_querymenu_u,
    pub reserved: u32,
}

/// `struct v4l2_encoder_cmd` (its union has only the `raw` member).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct v4l2_encoder_cmd {
    pub cmd: u32,
    pub flags: u32,
    pub raw_data: [u32; 8],
}

/// All-zero values, the way every V4L2 ioctl argument starts out.
macro_rules! zeroed_default {
    ($($t:ty),* $(,)?) => {$(
        impl Default for $t {
            fn default() -> Self {
                // SAFETY: the type is plain old data (integers, arrays, unions of
                // them, raw pointers and `timeval`), for which all-zero bytes are a
                // valid value (null pointers, zero numbers).
                unsafe { std::mem::zeroed() }
            }
        }
    )*};
}

zeroed_default!(
    v4l2_capability,
    v4l2_fmtdesc,
    v4l2_fract,
    v4l2_frmsize_discrete,
    v4l2_frmsize_stepwise,
    v4l2_frmsizeenum,
    v4l2_frmival_stepwise,
    v4l2_frmivalenum,
    v4l2_pix_format,
    v4l2_plane_pix_format,
    v4l2_pix_format_mplane,
    v4l2_format,
    v4l2_requestbuffers,
    v4l2_timecode,
    v4l2_plane,
    v4l2_buffer,
    v4l2_exportbuffer,
    v4l2_captureparm,
    v4l2_outputparm,
    v4l2_streamparm,
    v4l2_control,
    v4l2_ext_control,
    v4l2_ext_controls,
    v4l2_queryctrl,
    v4l2_querymenu,
    v4l2_encoder_cmd,
);

// ---------------------------------------------------------------------------
// ioctl request numbers (videodev2.h)

pub const VIDIOC_QUERYCAP: u32 = ior::<v4l2_capability>(b'V', 0);
pub const VIDIOC_ENUM_FMT: u32 = iowr::<v4l2_fmtdesc>(b'V', 2);
pub const VIDIOC_G_FMT: u32 = iowr::<v4l2_format>(b'V', 4);
pub const VIDIOC_S_FMT: u32 = iowr::<v4l2_format>(b'V', 5);
pub const VIDIOC_REQBUFS: u32 = iowr::<v4l2_requestbuffers>(b'V', 8);
pub const VIDIOC_QUERYBUF: u32 = iowr::<v4l2_buffer>(b'V', 9);
pub const VIDIOC_QBUF: u32 = iowr::<v4l2_buffer>(b'V', 15);
pub const VIDIOC_EXPBUF: u32 = iowr::<v4l2_exportbuffer>(b'V', 16);
pub const VIDIOC_DQBUF: u32 = iowr::<v4l2_buffer>(b'V', 17);
pub const VIDIOC_STREAMON: u32 = iow::<c_int>(b'V', 18);
pub const VIDIOC_STREAMOFF: u32 = iow::<c_int>(b'V', 19);
pub const VIDIOC_G_PARM: u32 = iowr::<v4l2_streamparm>(b'V', 21);
pub const VIDIOC_S_PARM: u32 = iowr::<v4l2_streamparm>(b'V', 22);
pub const VIDIOC_G_CTRL: u32 = iowr::<v4l2_control>(b'V', 27);
pub const VIDIOC_S_CTRL: u32 = iowr::<v4l2_control>(b'V', 28);
pub const VIDIOC_QUERYCTRL: u32 = iowr::<v4l2_queryctrl>(b'V', 36);
pub const VIDIOC_QUERYMENU: u32 = iowr::<v4l2_querymenu>(b'V', 37);
pub const VIDIOC_TRY_FMT: u32 = iowr::<v4l2_format>(b'V', 64);
pub const VIDIOC_G_EXT_CTRLS: u32 = iowr::<v4l2_ext_controls>(b'V', 71);
pub const VIDIOC_S_EXT_CTRLS: u32 = iowr::<v4l2_ext_controls>(b'V', 72);
pub const VIDIOC_TRY_EXT_CTRLS: u32 = iowr::<v4l2_ext_controls>(b'V', 73);
pub const VIDIOC_ENUM_FRAMESIZES: u32 = iowr::<v4l2_frmsizeenum>(b'V', 74);
pub const VIDIOC_ENUM_FRAMEINTERVALS: u32 = iowr::<v4l2_frmivalenum>(b'V', 75);
pub const VIDIOC_ENCODER_CMD: u32 = iowr::<v4l2_encoder_cmd>(b'V', 77);
pub const VIDIOC_TRY_ENCODER_CMD: u32 = iowr::<v4l2_encoder_cmd>(b'V', 78);

// ---------------------------------------------------------------------------
// Constants

// enum v4l2_buf_type
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub const V4L2_BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
pub const V4L2_BUF_TYPE_VIDEO_OVERLAY: u32 = 3;
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
pub const V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;

// enum v4l2_memory
pub const V4L2_MEMORY_MMAP: u32 = 1;
pub const V4L2_MEMORY_USERPTR: u32 = 2;
pub const V4L2_MEMORY_OVERLAY: u32 = 3;
pub const V4L2_MEMORY_DMABUF: u32 = 4;

// enum v4l2_field
pub const V4L2_FIELD_ANY: u32 = 0;
pub const V4L2_FIELD_NONE: u32 = 1;

// enum v4l2_colorspace (the two the Pi's drivers use)
pub const V4L2_COLORSPACE_DEFAULT: u32 = 0;
pub const V4L2_COLORSPACE_SMPTE170M: u32 = 1;
pub const V4L2_COLORSPACE_REC709: u32 = 3;
pub const V4L2_COLORSPACE_JPEG: u32 = 7;

// Capability flags (v4l2_capability.capabilities / device_caps)
pub const V4L2_CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
pub const V4L2_CAP_VIDEO_OUTPUT: u32 = 0x0000_0002;
pub const V4L2_CAP_VIDEO_OVERLAY: u32 = 0x0000_0004;
pub const V4L2_CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
pub const V4L2_CAP_VIDEO_OUTPUT_MPLANE: u32 = 0x0000_2000;
pub const V4L2_CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
pub const V4L2_CAP_VIDEO_M2M: u32 = 0x0000_8000;
pub const V4L2_CAP_EXT_PIX_FORMAT: u32 = 0x0020_0000;
pub const V4L2_CAP_META_CAPTURE: u32 = 0x0080_0000;
pub const V4L2_CAP_READWRITE: u32 = 0x0100_0000;
pub const V4L2_CAP_STREAMING: u32 = 0x0400_0000;
pub const V4L2_CAP_DEVICE_CAPS: u32 = 0x8000_0000;

// v4l2_captureparm.capability / v4l2_outputparm.capability
pub const V4L2_CAP_TIMEPERFRAME: u32 = 0x1000;

// v4l2_fmtdesc.flags
pub const V4L2_FMT_FLAG_COMPRESSED: u32 = 0x0001;

// enum v4l2_frmsizetypes / v4l2_frmivaltypes
pub const V4L2_FRMSIZE_TYPE_DISCRETE: u32 = 1;
pub const V4L2_FRMSIZE_TYPE_CONTINUOUS: u32 = 2;
pub const V4L2_FRMSIZE_TYPE_STEPWISE: u32 = 3;
pub const V4L2_FRMIVAL_TYPE_DISCRETE: u32 = 1;
pub const V4L2_FRMIVAL_TYPE_CONTINUOUS: u32 = 2;
pub const V4L2_FRMIVAL_TYPE_STEPWISE: u32 = 3;

// v4l2_buffer.flags
pub const V4L2_BUF_FLAG_MAPPED: u32 = 0x0000_0001;
pub const V4L2_BUF_FLAG_QUEUED: u32 = 0x0000_0002;
pub const V4L2_BUF_FLAG_DONE: u32 = 0x0000_0004;
pub const V4L2_BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
pub const V4L2_BUF_FLAG_PFRAME: u32 = 0x0000_0010;
pub const V4L2_BUF_FLAG_BFRAME: u32 = 0x0000_0020;
pub const V4L2_BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub const V4L2_BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
pub const V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;
pub const V4L2_BUF_FLAG_TIMESTAMP_COPY: u32 = 0x0000_4000;
pub const V4L2_BUF_FLAG_LAST: u32 = 0x0010_0000;

// Encoder commands (v4l2_encoder_cmd.cmd)
pub const V4L2_ENC_CMD_START: u32 = 0;
pub const V4L2_ENC_CMD_STOP: u32 = 1;
pub const V4L2_ENC_CMD_PAUSE: u32 = 2;
pub const V4L2_ENC_CMD_RESUME: u32 = 3;

// Pixel formats
pub const V4L2_PIX_FMT_H264: u32 = v4l2_fourcc(b'H', b'2', b'6', b'4');
pub const V4L2_PIX_FMT_MJPEG: u32 = v4l2_fourcc(b'M', b'J', b'P', b'G');
pub const V4L2_PIX_FMT_JPEG: u32 = v4l2_fourcc(b'J', b'P', b'E', b'G');
pub const V4L2_PIX_FMT_YUYV: u32 = v4l2_fourcc(b'Y', b'U', b'Y', b'V');
pub const V4L2_PIX_FMT_UYVY: u32 = v4l2_fourcc(b'U', b'Y', b'V', b'Y');
pub const V4L2_PIX_FMT_NV12: u32 = v4l2_fourcc(b'N', b'V', b'1', b'2');
pub const V4L2_PIX_FMT_NV21: u32 = v4l2_fourcc(b'N', b'V', b'2', b'1');
pub const V4L2_PIX_FMT_YUV420: u32 = v4l2_fourcc(b'Y', b'U', b'1', b'2');
pub const V4L2_PIX_FMT_YVU420: u32 = v4l2_fourcc(b'Y', b'V', b'1', b'2');
pub const V4L2_PIX_FMT_RGB24: u32 = v4l2_fourcc(b'R', b'G', b'B', b'3');
pub const V4L2_PIX_FMT_BGR24: u32 = v4l2_fourcc(b'B', b'G', b'R', b'3');

// Control classes and `which`
pub const V4L2_CTRL_WHICH_CUR_VAL: u32 = 0;
pub const V4L2_CTRL_WHICH_DEF_VAL: u32 = 0x0f00_0000;
pub const V4L2_CTRL_CLASS_USER: u32 = 0x0098_0000;
pub const V4L2_CTRL_CLASS_CODEC: u32 = 0x0099_0000;
pub const V4L2_CTRL_CLASS_CAMERA: u32 = 0x009a_0000;
pub const V4L2_CTRL_FLAG_NEXT_CTRL: u32 = 0x8000_0000;

// enum v4l2_ctrl_type
pub const V4L2_CTRL_TYPE_INTEGER: u32 = 1;
pub const V4L2_CTRL_TYPE_BOOLEAN: u32 = 2;
pub const V4L2_CTRL_TYPE_MENU: u32 = 3;
pub const V4L2_CTRL_TYPE_BUTTON: u32 = 4;
pub const V4L2_CTRL_TYPE_INTEGER64: u32 = 5;
pub const V4L2_CTRL_TYPE_CTRL_CLASS: u32 = 6;
pub const V4L2_CTRL_TYPE_STRING: u32 = 7;
pub const V4L2_CTRL_TYPE_BITMASK: u32 = 8;
pub const V4L2_CTRL_TYPE_INTEGER_MENU: u32 = 9;

// v4l2_queryctrl.flags
pub const V4L2_CTRL_FLAG_DISABLED: u32 = 0x0001;
pub const V4L2_CTRL_FLAG_GRABBED: u32 = 0x0002;
pub const V4L2_CTRL_FLAG_READ_ONLY: u32 = 0x0004;
pub const V4L2_CTRL_FLAG_INACTIVE: u32 = 0x0010;
pub const V4L2_CTRL_FLAG_WRITE_ONLY: u32 = 0x0040;

// User class controls
pub const V4L2_CID_BASE: u32 = V4L2_CTRL_CLASS_USER | 0x900;
pub const V4L2_CID_BRIGHTNESS: u32 = V4L2_CID_BASE;
pub const V4L2_CID_CONTRAST: u32 = V4L2_CID_BASE + 1;
pub const V4L2_CID_SATURATION: u32 = V4L2_CID_BASE + 2;
pub const V4L2_CID_HFLIP: u32 = V4L2_CID_BASE + 20;
pub const V4L2_CID_VFLIP: u32 = V4L2_CID_BASE + 21;
pub const V4L2_CID_POWER_LINE_FREQUENCY: u32 = V4L2_CID_BASE + 24;
pub const V4L2_CID_SHARPNESS: u32 = V4L2_CID_BASE + 27;
pub const V4L2_CID_COLORFX: u32 = V4L2_CID_BASE + 31;
pub const V4L2_CID_ROTATE: u32 = V4L2_CID_BASE + 34;
pub const V4L2_CID_COLORFX_CBCR: u32 = V4L2_CID_BASE + 42;

// enum v4l2_colorfx (subset)
pub const V4L2_COLORFX_NONE: u32 = 0;
pub const V4L2_COLORFX_BW: u32 = 1;
pub const V4L2_COLORFX_SEPIA: u32 = 2;
pub const V4L2_COLORFX_NEGATIVE: u32 = 3;

// Codec class controls
pub const V4L2_CID_CODEC_BASE: u32 = V4L2_CTRL_CLASS_CODEC | 0x900;
pub const V4L2_CID_MPEG_VIDEO_GOP_SIZE: u32 = V4L2_CID_CODEC_BASE + 203;
pub const V4L2_CID_MPEG_VIDEO_BITRATE_MODE: u32 = V4L2_CID_CODEC_BASE + 206;
pub const V4L2_CID_MPEG_VIDEO_BITRATE: u32 = V4L2_CID_CODEC_BASE + 207;
pub const V4L2_CID_MPEG_VIDEO_BITRATE_PEAK: u32 = V4L2_CID_CODEC_BASE + 208;
pub const V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER: u32 = V4L2_CID_CODEC_BASE + 226;
pub const V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME: u32 = V4L2_CID_CODEC_BASE + 229;
pub const V4L2_CID_MPEG_VIDEO_H264_MIN_QP: u32 = V4L2_CID_CODEC_BASE + 353;
pub const V4L2_CID_MPEG_VIDEO_H264_MAX_QP: u32 = V4L2_CID_CODEC_BASE + 354;
pub const V4L2_CID_MPEG_VIDEO_H264_I_PERIOD: u32 = V4L2_CID_CODEC_BASE + 358;
pub const V4L2_CID_MPEG_VIDEO_H264_LEVEL: u32 = V4L2_CID_CODEC_BASE + 359;
pub const V4L2_CID_MPEG_VIDEO_H264_PROFILE: u32 = V4L2_CID_CODEC_BASE + 363;

// enum v4l2_mpeg_video_bitrate_mode
pub const V4L2_MPEG_VIDEO_BITRATE_MODE_VBR: u32 = 0;
pub const V4L2_MPEG_VIDEO_BITRATE_MODE_CBR: u32 = 1;

// enum v4l2_mpeg_video_h264_profile (subset)
pub const V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE: u32 = 0;
pub const V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE: u32 = 1;
pub const V4L2_MPEG_VIDEO_H264_PROFILE_MAIN: u32 = 2;
pub const V4L2_MPEG_VIDEO_H264_PROFILE_HIGH: u32 = 4;

// enum v4l2_mpeg_video_h264_level (subset: the Pi encoder's useful range)
pub const V4L2_MPEG_VIDEO_H264_LEVEL_3_0: u32 = 8;
pub const V4L2_MPEG_VIDEO_H264_LEVEL_3_1: u32 = 9;
pub const V4L2_MPEG_VIDEO_H264_LEVEL_3_2: u32 = 10;
pub const V4L2_MPEG_VIDEO_H264_LEVEL_4_0: u32 = 11;
pub const V4L2_MPEG_VIDEO_H264_LEVEL_4_1: u32 = 12;
pub const V4L2_MPEG_VIDEO_H264_LEVEL_4_2: u32 = 13;

// Camera class controls
pub const V4L2_CID_CAMERA_CLASS_BASE: u32 = V4L2_CTRL_CLASS_CAMERA | 0x900;
pub const V4L2_CID_EXPOSURE_AUTO: u32 = V4L2_CID_CAMERA_CLASS_BASE + 1;
pub const V4L2_CID_EXPOSURE_ABSOLUTE: u32 = V4L2_CID_CAMERA_CLASS_BASE + 2;
pub const V4L2_CID_EXPOSURE_AUTO_PRIORITY: u32 = V4L2_CID_CAMERA_CLASS_BASE + 3;
pub const V4L2_CID_AUTO_EXPOSURE_BIAS: u32 = V4L2_CID_CAMERA_CLASS_BASE + 19;
pub const V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE: u32 = V4L2_CID_CAMERA_CLASS_BASE + 20;
pub const V4L2_CID_IMAGE_STABILIZATION: u32 = V4L2_CID_CAMERA_CLASS_BASE + 22;
pub const V4L2_CID_ISO_SENSITIVITY: u32 = V4L2_CID_CAMERA_CLASS_BASE + 23;
pub const V4L2_CID_ISO_SENSITIVITY_AUTO: u32 = V4L2_CID_CAMERA_CLASS_BASE + 24;
pub const V4L2_CID_EXPOSURE_METERING: u32 = V4L2_CID_CAMERA_CLASS_BASE + 25;
pub const V4L2_CID_SCENE_MODE: u32 = V4L2_CID_CAMERA_CLASS_BASE + 26;

// enum v4l2_exposure_auto_type
pub const V4L2_EXPOSURE_AUTO: u32 = 0;
pub const V4L2_EXPOSURE_MANUAL: u32 = 1;
pub const V4L2_EXPOSURE_SHUTTER_PRIORITY: u32 = 2;
pub const V4L2_EXPOSURE_APERTURE_PRIORITY: u32 = 3;

// enum v4l2_auto_n_preset_white_balance
pub const V4L2_WHITE_BALANCE_MANUAL: u32 = 0;
pub const V4L2_WHITE_BALANCE_AUTO: u32 = 1;
pub const V4L2_WHITE_BALANCE_INCANDESCENT: u32 = 2;
pub const V4L2_WHITE_BALANCE_FLUORESCENT: u32 = 3;
pub const V4L2_WHITE_BALANCE_FLUORESCENT_H: u32 = 4;
pub const V4L2_WHITE_BALANCE_HORIZON: u32 = 5;
pub const V4L2_WHITE_BALANCE_DAYLIGHT: u32 = 6;
pub const V4L2_WHITE_BALANCE_FLASH: u32 = 7;
pub const V4L2_WHITE_BALANCE_CLOUDY: u32 = 8;
pub const V4L2_WHITE_BALANCE_SHADE: u32 = 9;

// enum v4l2_iso_sensitivity_auto_type
pub const V4L2_ISO_SENSITIVITY_MANUAL: u32 = 0;
pub const V4L2_ISO_SENSITIVITY_AUTO: u32 = 1;

// enum v4l2_exposure_metering
pub const V4L2_EXPOSURE_METERING_AVERAGE: u32 = 0;
pub const V4L2_EXPOSURE_METERING_CENTER_WEIGHTED: u32 = 1;
pub const V4L2_EXPOSURE_METERING_SPOT: u32 = 2;
pub const V4L2_EXPOSURE_METERING_MATRIX: u32 = 3;

// enum v4l2_scene_mode (subset)
pub const V4L2_SCENE_MODE_NONE: u32 = 0;
pub const V4L2_SCENE_MODE_NIGHT: u32 = 8;
pub const V4L2_SCENE_MODE_SPORTS: u32 = 11;

// ---------------------------------------------------------------------------
// Expected layouts, pinned at compile time
//
// Derived from the C header by app/tests/fixtures/v4l2_abi.c, built with gcc
// (x86_64), aarch64-linux-gnu-gcc (run under qemu-aarch64-static: identical to
// x86_64) and arm-linux-gnueabihf-gcc (run under qemu-arm-static), Linux 6.1
// headers. `app/tests/v4l2_abi.rs` re-derives them whenever it runs (the cross
// compilers and qemu when installed), so these tables cannot silently go stale.
// The 32-bit column assumes the classic 32-bit `time_t` (what Rust's `libc` uses
// on armv7/arm gnueabihf), which makes `struct timeval` 8 bytes.

/// Size and alignment of one struct, on 64-bit and on 32-bit ARM targets.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedLayout {
    /// The struct's (or named union's) name.
    pub name: &'static str,
    /// `(size, align)` on 64-bit targets (x86_64, aarch64).
    pub lp64: (usize, usize),
    /// `(size, align)` on 32-bit ARM (armv6/armv7 gnueabihf).
    pub ilp32: (usize, usize),
}

/// One ioctl request number, on 64-bit and on 32-bit ARM targets.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedIoctl {
    /// The request's name.
    pub name: &'static str,
    /// Its value on 64-bit targets.
    pub lp64: u32,
    /// Its value on 32-bit ARM.
    pub ilp32: u32,
}

macro_rules! expect_layouts {
    ($($t:ident => ($s64:expr, $a64:expr), ($s32:expr, $a32:expr);)*) => {
        $(
            #[cfg(target_pointer_width = "64")]
            const _: () = assert!(
                size_of::<$t>() == $s64 && std::mem::align_of::<$t>() == $a64,
                concat!("layout of ", stringify!($t), " differs from linux/videodev2.h")
            );
            #[cfg(target_pointer_width = "32")]
            const _: () = assert!(
                size_of::<$t>() == $s32 && std::mem::align_of::<$t>() == $a32,
                concat!("layout of ", stringify!($t), " differs from linux/videodev2.h")
            );
        )*
        /// Every struct's expected layout (see the comment above the table).
        pub const EXPECTED_LAYOUTS: &[ExpectedLayout] = &[$(ExpectedLayout {
            name: stringify!($t),
            lp64: ($s64, $a64),
            ilp32: ($s32, $a32),
        }),*];
    };
}

macro_rules! expect_ioctls {
    ($($n:ident => $v64:expr, $v32:expr;)*) => {
        $(
            #[cfg(target_pointer_width = "64")]
            const _: () = assert!($n == $v64, concat!(stringify!($n), " differs from linux/videodev2.h"));
            #[cfg(target_pointer_width = "32")]
            const _: () = assert!($n == $v32, concat!(stringify!($n), " differs from linux/videodev2.h"));
        )*
        /// Every ioctl request number's expected value.
        pub const EXPECTED_IOCTLS: &[ExpectedIoctl] = &[$(ExpectedIoctl {
            name: stringify!($n),
            lp64: $v64,
            ilp32: $v32,
        }),*];
    };
}

#[cfg(target_pointer_width = "32")]
const _: () = assert!(
    size_of::<timeval>() == 8,
    "32-bit target with a 64-bit time_t: re-derive the 32-bit layouts of v4l2_buffer"
);

expect_layouts! {
    v4l2_capability => (104, 4), (104, 4);
    v4l2_fmtdesc => (64, 4), (64, 4);
    v4l2_fract => (8, 4), (8, 4);
    v4l2_frmsize_discrete => (8, 4), (8, 4);
    v4l2_frmsize_stepwise => (24, 4), (24, 4);
    v4l2_frmsizeenum => (44, 4), (44, 4);
    v4l2_frmival_stepwise => (24, 4), (24, 4);
    v4l2_frmivalenum => (52, 4), (52, 4);
    v4l2_pix_format => (48, 4), (48, 4);
    v4l2_plane_pix_format => (20, 1), (20, 1);
    v4l2_pix_format_mplane => (192, 1), (192, 1);
    v4l2_format => (208, 8), (204, 4);
    v4l2_format_fmt => (200, 8), (200, 4);
    v4l2_requestbuffers => (20, 4), (20, 4);
    v4l2_timecode => (16, 4), (16, 4);
    v4l2_plane => (64, 8), (60, 4);
    v4l2_plane_m => (8, 8), (4, 4);
    v4l2_buffer => (88, 8), (68, 4);
    v4l2_buffer_m => (8, 8), (4, 4);
    v4l2_exportbuffer => (64, 4), (64, 4);
    v4l2_captureparm => (40, 4), (40, 4);
    v4l2_outputparm => (40, 4), (40, 4);
    v4l2_streamparm => (204, 4), (204, 4);
    v4l2_streamparm_parm => (200, 4), (200, 4);
    v4l2_control => (8, 4), (8, 4);
    v4l2_ext_control => (20, 1), (20, 1);
    v4l2_ext_controls => (32, 8), (24, 4);
    v4l2_queryctrl => (68, 4), (68, 4);
    v4l2_querymenu => (44, 1), (44, 1);
    v4l2_encoder_cmd => (40, 4), (40, 4);
}

expect_ioctls! {
    VIDIOC_QUERYCAP => 0x8068_5600, 0x8068_5600;
    VIDIOC_ENUM_FMT => 0xc040_5602, 0xc040_5602;
    VIDIOC_G_FMT => 0xc0d0_5604, 0xc0cc_5604;
    VIDIOC_S_FMT => 0xc0d0_5605, 0xc0cc_5605;
    VIDIOC_REQBUFS => 0xc014_5608, 0xc014_5608;
    VIDIOC_QUERYBUF => 0xc058_5609, 0xc044_5609;
    VIDIOC_QBUF => 0xc058_560f, 0xc044_560f;
    VIDIOC_EXPBUF => 0xc040_5610, 0xc040_5610;
    VIDIOC_DQBUF => 0xc058_5611, 0xc044_5611;
    VIDIOC_STREAMON => 0x4004_5612, 0x4004_5612;
    VIDIOC_STREAMOFF => 0x4004_5613, 0x4004_5613;
    VIDIOC_G_PARM => 0xc0cc_5615, 0xc0cc_5615;
    VIDIOC_S_PARM => 0xc0cc_5616, 0xc0cc_5616;
    VIDIOC_G_CTRL => 0xc008_561b, 0xc008_561b;
    VIDIOC_S_CTRL => 0xc008_561c, 0xc008_561c;
    VIDIOC_QUERYCTRL => 0xc044_5624, 0xc044_5624;
    VIDIOC_QUERYMENU => 0xc02c_5625, 0xc02c_5625;
    VIDIOC_TRY_FMT => 0xc0d0_5640, 0xc0cc_5640;
    VIDIOC_G_EXT_CTRLS => 0xc020_5647, 0xc018_5647;
    VIDIOC_S_EXT_CTRLS => 0xc020_5648, 0xc018_5648;
    VIDIOC_TRY_EXT_CTRLS => 0xc020_5649, 0xc018_5649;
    VIDIOC_ENUM_FRAMESIZES => 0xc02c_564a, 0xc02c_564a;
    VIDIOC_ENUM_FRAMEINTERVALS => 0xc034_564b, 0xc034_564b;
    VIDIOC_ENCODER_CMD => 0xc028_564d, 0xc028_564d;
    VIDIOC_TRY_ENCODER_CMD => 0xc028_564e, 0xc028_564e;
}
