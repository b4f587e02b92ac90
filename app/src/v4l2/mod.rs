//! Our own small V4L2 layer, for the Raspberry Pi's legacy camera (bcm2835-v4l2,
//! single-planar H.264 capture), USB webcams (uvcvideo) and the memory-to-memory
//! H.264 encoder (bcm2835-codec, multi-planar). No bindgen, so the cross build
//! needs neither libclang nor recent kernel headers.
//!
//! - [`node`]: the narrow boundary everything above uses (the [`Node`] trait), with
//!   the values it speaks in and its [`Error`].
//! - [`device`]: [`Device`], the real `Node`: ioctls and `mmap`.
//! - [`convert`]: the pure conversions between [`sys`]'s structs and `node`'s values.
//! - [`sys`]: the kernel ABI (structs, constants, ioctl numbers), checked against
//!   `linux/videodev2.h` by `app/tests/v4l2_abi.rs` and pinned per target by
//!   compile-time assertions.
//! - [`mmap`]: mapped buffer planes.
//! - [`clock`]: buffer timestamps (`CLOCK_MONOTONIC`) and the wall clock.
//! - [`discover`]: nodes found by what QUERYCAP says, never by number.
//! - `fake` (tests only): nodes that behave like the Pi's drivers.

pub mod clock;
pub mod convert;
pub mod device;
pub mod discover;
#[cfg(test)]
pub mod fake;
pub mod mmap;
pub mod node;
pub mod sys;

pub use device::Device;
pub use node::{
    describe, Capability, ControlInfo, ControlKind, Dequeued, Error, FormatDesc, FormatModes,
    Fraction, FrameInterval, FrameSize, ImageFormat, MenuItem, Node, NodeDescription, Opener,
    PlaneLayout, PlaneUse, Queue, QueueDescription, Readiness, SizeModes,
};

/// A pixel format's four-character code, packed as `v4l2_fourcc` does (first
/// character in the lowest byte).
pub const fn fourcc(code: &[u8; 4]) -> u32 {
    sys::v4l2_fourcc(code[0], code[1], code[2], code[3])
}

/// A fourcc as text for logs and errors: `"H264"`; bytes that are not printable
/// ASCII become `.`, and the big-endian flag (bit 31) adds `-BE`.
pub fn fourcc_to_string(code: u32) -> String {
    let be = code & (1 << 31) != 0;
    let bytes = (code & !(1 << 31)).to_le_bytes();
    let mut text: String = bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect();
    if be {
        text.push_str("-BE");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_packs_first_character_lowest() {
        assert_eq!(fourcc(b"H264"), 0x3436_3248);
        assert_eq!(fourcc(b"YUYV"), 0x5659_5559);
        assert_eq!(sys::V4L2_PIX_FMT_H264, fourcc(b"H264"));
        assert_eq!(sys::V4L2_PIX_FMT_YUV420, fourcc(b"YU12"));
        assert_eq!(sys::V4L2_PIX_FMT_MJPEG, fourcc(b"MJPG"));
    }

    #[test]
    fn fourcc_round_trips_to_text() {
        assert_eq!(fourcc_to_string(sys::V4L2_PIX_FMT_NV12), "NV12");
        assert_eq!(fourcc_to_string(sys::V4L2_PIX_FMT_H264), "H264");
        assert_eq!(fourcc_to_string(0), "....");
        assert_eq!(fourcc_to_string(fourcc(b"AR15") | (1 << 31)), "AR15-BE");
    }

    #[test]
    fn ioc_encoding_matches_well_known_numbers() {
        // The same on every Linux target: the argument is 104 bytes everywhere.
        assert_eq!(sys::VIDIOC_QUERYCAP, 0x8068_5600);
        assert_eq!(sys::VIDIOC_STREAMON, 0x4004_5612);
        assert_eq!(sys::VIDIOC_ENUM_FMT, 0xc040_5602);
        // v4l2_format is pointer-aligned: 208 bytes on 64-bit, 204 on 32-bit ARM.
        #[cfg(target_pointer_width = "64")]
        assert_eq!(sys::VIDIOC_S_FMT, 0xc0d0_5605);
        #[cfg(target_pointer_width = "32")]
        assert_eq!(sys::VIDIOC_S_FMT, 0xc0cc_5605);
        // The pieces, by hand: dir=READ|WRITE (3) << 30, size << 16, 'V' << 8, nr.
        assert_eq!(
            sys::ioc(3, b'V', 5, 208),
            (3 << 30) | (208 << 16) | (0x56 << 8) | 5
        );
        assert_eq!(sys::ioc_size(sys::VIDIOC_QUERYCAP), 104);
        assert_eq!(
            sys::ioc_size(sys::VIDIOC_DQBUF),
            std::mem::size_of::<sys::v4l2_buffer>()
        );
    }

    #[test]
    fn expectation_tables_cover_every_ioctl_once() {
        let names: Vec<&str> = sys::EXPECTED_IOCTLS.iter().map(|e| e.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate entries: {names:?}");
        assert!(names.contains(&"VIDIOC_DQBUF"));
        assert!(names.contains(&"VIDIOC_S_EXT_CTRLS"));
    }
}
