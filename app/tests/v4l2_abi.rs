//! The V4L2 ABI of `streamer::v4l2::sys` against the C library's own
//! `<linux/videodev2.h>`.
//!
//! `tests/fixtures/v4l2_abi.c` prints, from the header, the size and alignment of
//! every struct (and named union) `sys` models, the offset of every field, and the
//! value of every constant and ioctl request number. These tests build it with the
//! system C compiler, run it, and compare each line with the same fact computed on
//! the Rust side (`size_of`, `align_of`, `offset_of!`, the constants), in both
//! directions: nothing may be missing on either side, and every `pub` struct and
//! constant of `sys.rs` must be among them.
//!
//! With the cross compilers and qemu-user installed (`aarch64-linux-gnu-gcc` +
//! `qemu-aarch64-static`, `arm-linux-gnueabihf-gcc` + `qemu-arm-static`) the same
//! program is also run for aarch64 and 32-bit ARM, and its sizes, alignments and
//! ioctl numbers are compared with the tables `sys.rs` pins at compile time for
//! those targets (`EXPECTED_LAYOUTS`, `EXPECTED_IOCTLS`); without them those two
//! tests say so on stderr and pass.

use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;
use streamer::v4l2::sys::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v4l2_abi.c");
const SYS_RS: &str = include_str!("../src/v4l2/sys.rs");

/// The facts from the Rust side, keyed like the C program's lines
/// (`struct NAME`, `offset NAME.FIELD`, `const NAME`).
fn rust_facts() -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    macro_rules! structs {
        ($($t:ident),* $(,)?) => {$(
            facts.insert(
                format!("struct {}", stringify!($t)),
                format!("{} {}", size_of::<$t>(), align_of::<$t>()),
            );
        )*};
    }
    macro_rules! offsets {
        ($($t:ident: [$($f:ident),* $(,)?];)*) => {$($(
            facts.insert(
                format!("offset {}.{}", stringify!($t), stringify!($f)),
                offset_of!($t, $f).to_string(),
            );
        )*)*};
    }
    macro_rules! consts {
        ($($c:ident),* $(,)?) => {$(
            facts.insert(format!("const {}", stringify!($c)), format!("{:#x}", $c as u64));
        )*};
    }
    structs!(
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
        v4l2_format_fmt,
        v4l2_requestbuffers,
        v4l2_timecode,
        v4l2_plane,
        v4l2_plane_m,
        v4l2_buffer,
        v4l2_buffer_m,
        v4l2_exportbuffer,
        v4l2_captureparm,
        v4l2_outputparm,
        v4l2_streamparm,
        v4l2_streamparm_parm,
        v4l2_control,
        v4l2_ext_control,
        v4l2_ext_controls,
        v4l2_queryctrl,
        v4l2_querymenu,
        v4l2_encoder_cmd,
    );
    offsets! {
        v4l2_capability: [driver, card, bus_info, version, capabilities, device_caps, reserved];
        v4l2_fmtdesc: [index, type_, flags, description, pixelformat, mbus_code, reserved];
        v4l2_fract: [numerator, denominator];
        v4l2_frmsize_discrete: [width, height];
        v4l2_frmsize_stepwise: [min_width, max_width, step_width, min_height, max_height, step_height];
        v4l2_frmsizeenum: [index, pixel_format, type_, u, reserved];
        v4l2_frmival_stepwise: [min, max, step];
        v4l2_frmivalenum: [index, pixel_format, width, height, type_, u, reserved];
        v4l2_pix_format: [width, height, pixelformat, field, bytesperline, sizeimage, colorspace, priv_, flags, ycbcr_enc, quantization, xfer_func];
        v4l2_plane_pix_format: [sizeimage, bytesperline, reserved];
        v4l2_pix_format_mplane: [width, height, pixelformat, field, colorspace, plane_fmt, num_planes, flags, ycbcr_enc, quantization, xfer_func, reserved];
        v4l2_format: [type_, fmt];
        v4l2_requestbuffers: [count, type_, memory, capabilities, flags, reserved];
        v4l2_timecode: [type_, flags, frames, seconds, minutes, hours, userbits];
        v4l2_plane: [bytesused, length, m, data_offset, reserved];
        v4l2_buffer: [index, type_, bytesused, flags, field, timestamp, timecode, sequence, memory, m, length, reserved2, request_fd];
        v4l2_exportbuffer: [type_, index, plane, flags, fd, reserved];
        v4l2_captureparm: [capability, capturemode, timeperframe, extendedmode, readbuffers, reserved];
        v4l2_outputparm: [capability, outputmode, timeperframe, extendedmode, writebuffers, reserved];
        v4l2_streamparm: [type_, parm];
        v4l2_control: [id, value];
        v4l2_ext_control: [id, size, reserved2, u];
        v4l2_ext_controls: [which, count, error_idx, request_fd, reserved, controls];
        v4l2_queryctrl: [id, type_, name, minimum, maximum, step, default_value, flags, reserved];
        v4l2_querymenu: [id, index, u, reserved];
        v4l2_encoder_cmd: [cmd, flags, raw_data];
    }
    consts!(
        VIDIOC_QUERYCAP,
        VIDIOC_ENUM_FMT,
        VIDIOC_G_FMT,
        VIDIOC_S_FMT,
        VIDIOC_REQBUFS,
        VIDIOC_QUERYBUF,
        VIDIOC_QBUF,
        VIDIOC_EXPBUF,
        VIDIOC_DQBUF,
        VIDIOC_STREAMON,
        VIDIOC_STREAMOFF,
        VIDIOC_G_PARM,
        VIDIOC_S_PARM,
        VIDIOC_G_CTRL,
        VIDIOC_S_CTRL,
        VIDIOC_QUERYCTRL,
        VIDIOC_QUERYMENU,
        VIDIOC_TRY_FMT,
        VIDIOC_G_EXT_CTRLS,
        VIDIOC_S_EXT_CTRLS,
        VIDIOC_TRY_EXT_CTRLS,
        VIDIOC_ENUM_FRAMESIZES,
        VIDIOC_ENUM_FRAMEINTERVALS,
        VIDIOC_ENCODER_CMD,
        VIDIOC_TRY_ENCODER_CMD,
        VIDEO_MAX_PLANES,
        V4L2_BUF_TYPE_VIDEO_CAPTURE,
        V4L2_BUF_TYPE_VIDEO_OUTPUT,
        V4L2_BUF_TYPE_VIDEO_OVERLAY,
        V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE,
        V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE,
        V4L2_MEMORY_MMAP,
        V4L2_MEMORY_USERPTR,
        V4L2_MEMORY_OVERLAY,
        V4L2_MEMORY_DMABUF,
        V4L2_FIELD_ANY,
        V4L2_FIELD_NONE,
        V4L2_COLORSPACE_DEFAULT,
        V4L2_COLORSPACE_SMPTE170M,
        V4L2_COLORSPACE_REC709,
        V4L2_COLORSPACE_JPEG,
        V4L2_CAP_VIDEO_CAPTURE,
        V4L2_CAP_VIDEO_OUTPUT,
        V4L2_CAP_VIDEO_OVERLAY,
        V4L2_CAP_VIDEO_CAPTURE_MPLANE,
        V4L2_CAP_VIDEO_OUTPUT_MPLANE,
        V4L2_CAP_VIDEO_M2M_MPLANE,
        V4L2_CAP_VIDEO_M2M,
        V4L2_CAP_EXT_PIX_FORMAT,
        V4L2_CAP_META_CAPTURE,
        V4L2_CAP_READWRITE,
        V4L2_CAP_STREAMING,
        V4L2_CAP_DEVICE_CAPS,
        V4L2_CAP_TIMEPERFRAME,
        V4L2_FMT_FLAG_COMPRESSED,
        V4L2_FRMSIZE_TYPE_DISCRETE,
        V4L2_FRMSIZE_TYPE_CONTINUOUS,
        V4L2_FRMSIZE_TYPE_STEPWISE,
        V4L2_FRMIVAL_TYPE_DISCRETE,
        V4L2_FRMIVAL_TYPE_CONTINUOUS,
        V4L2_FRMIVAL_TYPE_STEPWISE,
        V4L2_BUF_FLAG_MAPPED,
        V4L2_BUF_FLAG_QUEUED,
        V4L2_BUF_FLAG_DONE,
        V4L2_BUF_FLAG_KEYFRAME,
        V4L2_BUF_FLAG_PFRAME,
        V4L2_BUF_FLAG_BFRAME,
        V4L2_BUF_FLAG_ERROR,
        V4L2_BUF_FLAG_TIMESTAMP_MASK,
        V4L2_BUF_FLAG_TIMESTAMP_MONOTONIC,
        V4L2_BUF_FLAG_TIMESTAMP_COPY,
        V4L2_BUF_FLAG_LAST,
        V4L2_ENC_CMD_START,
        V4L2_ENC_CMD_STOP,
        V4L2_ENC_CMD_PAUSE,
        V4L2_ENC_CMD_RESUME,
        V4L2_PIX_FMT_H264,
        V4L2_PIX_FMT_MJPEG,
        V4L2_PIX_FMT_JPEG,
        V4L2_PIX_FMT_YUYV,
        V4L2_PIX_FMT_UYVY,
        V4L2_PIX_FMT_NV12,
        V4L2_PIX_FMT_NV21,
        V4L2_PIX_FMT_YUV420,
        V4L2_PIX_FMT_YVU420,
        V4L2_PIX_FMT_RGB24,
        V4L2_PIX_FMT_BGR24,
        V4L2_CTRL_WHICH_CUR_VAL,
        V4L2_CTRL_WHICH_DEF_VAL,
        V4L2_CTRL_CLASS_USER,
        V4L2_CTRL_CLASS_CODEC,
        V4L2_CTRL_CLASS_CAMERA,
        V4L2_CTRL_FLAG_NEXT_CTRL,
        V4L2_CTRL_TYPE_INTEGER,
        V4L2_CTRL_TYPE_BOOLEAN,
        V4L2_CTRL_TYPE_MENU,
        V4L2_CTRL_TYPE_BUTTON,
        V4L2_CTRL_TYPE_INTEGER64,
        V4L2_CTRL_TYPE_CTRL_CLASS,
        V4L2_CTRL_TYPE_STRING,
        V4L2_CTRL_TYPE_BITMASK,
        V4L2_CTRL_TYPE_INTEGER_MENU,
        V4L2_CTRL_FLAG_DISABLED,
        V4L2_CTRL_FLAG_GRABBED,
        V4L2_CTRL_FLAG_READ_ONLY,
        V4L2_CTRL_FLAG_INACTIVE,
        V4L2_CTRL_FLAG_WRITE_ONLY,
        V4L2_CID_BASE,
        V4L2_CID_BRIGHTNESS,
        V4L2_CID_CONTRAST,
        V4L2_CID_SATURATION,
        V4L2_CID_HFLIP,
        V4L2_CID_VFLIP,
        V4L2_CID_POWER_LINE_FREQUENCY,
        V4L2_CID_SHARPNESS,
        V4L2_CID_COLORFX,
        V4L2_CID_ROTATE,
        V4L2_CID_COLORFX_CBCR,
        V4L2_COLORFX_NONE,
        V4L2_COLORFX_BW,
        V4L2_COLORFX_SEPIA,
        V4L2_COLORFX_NEGATIVE,
        V4L2_CID_CODEC_BASE,
        V4L2_CID_MPEG_VIDEO_GOP_SIZE,
        V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
        V4L2_CID_MPEG_VIDEO_BITRATE,
        V4L2_CID_MPEG_VIDEO_BITRATE_PEAK,
        V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER,
        V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME,
        V4L2_CID_MPEG_VIDEO_H264_MIN_QP,
        V4L2_CID_MPEG_VIDEO_H264_MAX_QP,
        V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
        V4L2_CID_MPEG_VIDEO_H264_LEVEL,
        V4L2_CID_MPEG_VIDEO_H264_PROFILE,
        V4L2_MPEG_VIDEO_BITRATE_MODE_VBR,
        V4L2_MPEG_VIDEO_BITRATE_MODE_CBR,
        V4L2_MPEG_VIDEO_H264_PROFILE_BASELINE,
        V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
        V4L2_MPEG_VIDEO_H264_PROFILE_MAIN,
        V4L2_MPEG_VIDEO_H264_PROFILE_HIGH,
        V4L2_MPEG_VIDEO_H264_LEVEL_3_0,
        V4L2_MPEG_VIDEO_H264_LEVEL_3_1,
        V4L2_MPEG_VIDEO_H264_LEVEL_3_2,
        V4L2_MPEG_VIDEO_H264_LEVEL_4_0,
        V4L2_MPEG_VIDEO_H264_LEVEL_4_1,
        V4L2_MPEG_VIDEO_H264_LEVEL_4_2,
        V4L2_CID_CAMERA_CLASS_BASE,
        V4L2_CID_EXPOSURE_AUTO,
        V4L2_CID_EXPOSURE_ABSOLUTE,
        V4L2_CID_EXPOSURE_AUTO_PRIORITY,
        V4L2_CID_AUTO_EXPOSURE_BIAS,
        V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE,
        V4L2_CID_IMAGE_STABILIZATION,
        V4L2_CID_ISO_SENSITIVITY,
        V4L2_CID_ISO_SENSITIVITY_AUTO,
        V4L2_CID_EXPOSURE_METERING,
        V4L2_CID_SCENE_MODE,
        V4L2_EXPOSURE_AUTO,
        V4L2_EXPOSURE_MANUAL,
        V4L2_EXPOSURE_SHUTTER_PRIORITY,
        V4L2_EXPOSURE_APERTURE_PRIORITY,
        V4L2_WHITE_BALANCE_MANUAL,
        V4L2_WHITE_BALANCE_AUTO,
        V4L2_WHITE_BALANCE_INCANDESCENT,
        V4L2_WHITE_BALANCE_FLUORESCENT,
        V4L2_WHITE_BALANCE_FLUORESCENT_H,
        V4L2_WHITE_BALANCE_HORIZON,
        V4L2_WHITE_BALANCE_DAYLIGHT,
        V4L2_WHITE_BALANCE_FLASH,
        V4L2_WHITE_BALANCE_CLOUDY,
        V4L2_WHITE_BALANCE_SHADE,
        V4L2_ISO_SENSITIVITY_MANUAL,
        V4L2_ISO_SENSITIVITY_AUTO,
        V4L2_EXPOSURE_METERING_AVERAGE,
        V4L2_EXPOSURE_METERING_CENTER_WEIGHTED,
        V4L2_EXPOSURE_METERING_SPOT,
        V4L2_EXPOSURE_METERING_MATRIX,
        V4L2_SCENE_MODE_NONE,
        V4L2_SCENE_MODE_NIGHT,
        V4L2_SCENE_MODE_SPORTS,
    );
    facts
}

/// Parses the C program's output into the same shape as [`rust_facts`].
fn parse_c_facts(output: &str) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    for line in output.lines() {
        let mut words = line.split_whitespace();
        let (Some(kind), Some(name)) = (words.next(), words.next()) else {
            panic!("unexpected line from the C program: {line:?}");
        };
        let value: Vec<&str> = words.collect();
        let previous = facts.insert(format!("{kind} {name}"), value.join(" "));
        assert!(
            previous.is_none(),
            "the C program printed {kind} {name} twice"
        );
    }
    facts
}

/// Every difference between the two fact sets, one line each.
fn differences(c: &BTreeMap<String, String>, rust: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (key, c_value) in c {
        match rust.get(key) {
            None => out.push(format!(
                "{key}: C says {c_value}, the Rust side has no such fact"
            )),
            Some(r) if r != c_value => out.push(format!("{key}: C says {c_value}, Rust says {r}")),
            Some(_) => {}
        }
    }
    for (key, r) in rust {
        if !c.contains_key(key) {
            out.push(format!(
                "{key}: Rust says {r}, the C program does not print it"
            ));
        }
    }
    out
}

fn tool_exists(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Compiles the fixture with `compiler` into `dir`, failing the test clearly if
/// the compiler is missing or the build fails.
fn compile(compiler: &str, dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(name);
    let output = Command::new(compiler)
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O0", "-o"])
        .arg(&exe)
        .arg(FIXTURE)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run the C compiler `{compiler}` ({e}): the V4L2 ABI test needs a C \
                 compiler and the Linux UAPI headers (Debian: apt-get install gcc linux-libc-dev)"
            )
        });
    assert!(
        output.status.success(),
        "`{compiler}` failed to build {FIXTURE}:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exe
}

fn run(mut command: Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("the C program prints ASCII")
}

#[test]
fn rust_layouts_and_constants_match_the_c_header() {
    let dir = tempfile::tempdir().unwrap();
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let exe = compile(&compiler, dir.path(), "v4l2_abi");
    let c = parse_c_facts(&run(Command::new(exe)));
    let rust = rust_facts();
    assert!(c.len() > 300, "suspiciously few facts from C: {}", c.len());
    let diff = differences(&c, &rust);
    assert!(
        diff.is_empty(),
        "sys.rs differs from linux/videodev2.h on this target:\n{}",
        diff.join("\n")
    );
}

/// Names of `sys.rs` items that have no C fact of their own: the anonymous C
/// unions (checked through their parent's size and the field's offset).
const ANONYMOUS_UNIONS: &[&str] = &[
    "v4l2_frmsizeenum_u",
    "v4l2_frmivalenum_u",
    "v4l2_ext_control_u",
    "v4l2_querymenu_u",
];

#[test]
fn every_sys_item_is_compared() {
    let rust = rust_facts();
    let mut unchecked = Vec::new();
    for line in SYS_RS.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["pub", "struct" | "union", name, ..]
                if name.starts_with("v4l2_")
                    && !ANONYMOUS_UNIONS.contains(name)
                    && !rust.contains_key(&format!("struct {name}")) =>
            {
                unchecked.push(format!("struct {name}"));
            }
            ["pub", "const", name, ..] => {
                let name = name.trim_end_matches(':');
                let is_abi = ["V4L2_", "VIDIOC_", "VIDEO_"]
                    .iter()
                    .any(|p| name.starts_with(p));
                if is_abi && !rust.contains_key(&format!("const {name}")) {
                    unchecked.push(format!("const {name}"));
                }
            }
            _ => {}
        }
    }
    assert!(
        unchecked.is_empty(),
        "sys.rs items missing from the ABI comparison (add them to rust_facts and to \
         tests/fixtures/v4l2_abi.c):\n{}",
        unchecked.join("\n")
    );
    for union in ANONYMOUS_UNIONS {
        assert!(
            SYS_RS.contains(&format!("pub union {union} ")),
            "{union} no longer exists"
        );
    }
}

/// Builds the fixture for another target and runs it under qemu-user, then
/// compares sizes, alignments and ioctl numbers with the table column for that
/// target, and the constants with the host's.
fn check_cross(compiler: &str, qemu: &str, sysroot: &str, lp64: bool) {
    if !tool_exists(compiler) || !tool_exists(qemu) {
        // CI installs them (`make cross-deps`) and sets STREAMER_REQUIRE_CROSS=1, so
        // there a missing tool is a failure, not a skip.
        assert!(
            std::env::var_os("STREAMER_REQUIRE_CROSS").is_none(),
            "{compiler} or {qemu} is not installed (make cross-deps)"
        );
        eprintln!("skipped: {compiler} or {qemu} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(compiler, dir.path(), "v4l2_abi_cross");
    let mut command = Command::new(qemu);
    command.arg("-L").arg(sysroot).arg(exe);
    let c = parse_c_facts(&run(command));

    let mut expected = BTreeMap::new();
    for l in EXPECTED_LAYOUTS {
        let (size, align) = if lp64 { l.lp64 } else { l.ilp32 };
        expected.insert(format!("struct {}", l.name), format!("{size} {align}"));
    }
    for i in EXPECTED_IOCTLS {
        let value = if lp64 { i.lp64 } else { i.ilp32 };
        expected.insert(format!("const {}", i.name), format!("{value:#x}"));
    }
    // The other constants do not depend on the target.
    for (key, value) in rust_facts() {
        if key.starts_with("const ") && !key.starts_with("const VIDIOC_") {
            expected.insert(key, value);
        }
    }
    let c_checked: BTreeMap<String, String> = c
        .into_iter()
        .filter(|(key, _)| !key.starts_with("offset "))
        .collect();
    let diff = differences(&c_checked, &expected);
    assert!(
        diff.is_empty(),
        "the layouts pinned in sys.rs for {compiler} differ from its linux/videodev2.h:\n{}",
        diff.join("\n")
    );
}

#[test]
fn aarch64_layouts_match_the_pinned_table() {
    check_cross(
        "aarch64-linux-gnu-gcc",
        "qemu-aarch64-static",
        "/usr/aarch64-linux-gnu",
        true,
    );
}

#[test]
fn armhf_layouts_match_the_pinned_table() {
    check_cross(
        "arm-linux-gnueabihf-gcc",
        "qemu-arm-static",
        "/usr/arm-linux-gnueabihf",
        false,
    );
}

/// The host's own column of the pinned tables agrees with the host's real layout
/// (the compile-time assertions check this too; this says which entry is off).
#[test]
fn host_column_of_the_pinned_tables_is_the_real_layout() {
    let rust = rust_facts();
    let lp64 = cfg!(target_pointer_width = "64");
    for l in EXPECTED_LAYOUTS {
        let (size, align) = if lp64 { l.lp64 } else { l.ilp32 };
        assert_eq!(
            rust.get(&format!("struct {}", l.name)),
            Some(&format!("{size} {align}")),
            "{}",
            l.name
        );
    }
}
