//! The pure conversions between the kernel's V4L2 structs ([`super::sys`]) and
//! the typed values of the [`Node`](super::Node) boundary: the formats `VIDIOC_S_FMT`
//! takes and gives back, buffer requests and answers, control descriptions,
//! frame intervals, `poll(2)` results and times. No device, no `unsafe` beyond
//! reading the union member the kernel filled; each is tested here.

use std::time::Duration;

use super::node::{
    Capability, ControlInfo, ControlKind, Dequeued, Fraction, ImageFormat, MenuItem, PlaneLayout,
    PlaneUse, Queue, Readiness,
};
use super::sys;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
