//! `make bench` part 2: the cost of handing a webcam's raw frame to the Pi's
//! hardware encoder, which means copying it from the camera's layout (tight rows)
//! into the encoder's (rows aligned to 32 or 64 bytes, chroma after an aligned
//! height) with `raw_picture::copy_picture`. Reported per frame and as bandwidth, next
//! to one plain `copy_from_slice` of the same bytes: the row-by-row copy should
//! cost little more than that. On a Pi the absolute numbers are memory-bound and
//! several times higher; the ratio is what this machine can tell.
//!
//! Second table: the conversion to planar 4:2:0 that encoding in software (OpenH264,
//! on boards without the hardware encoder) starts with.
//!
//! Options: `BENCH_COPY_FRAMES` (frames per case, default 300).

use std::hint::black_box;
use std::time::{Duration, Instant};

use streamer::encode::i420::I420Picture;
use streamer::encode::raw_picture::{copy_picture, PictureLayout};
use streamer::v4l2::{fourcc_to_string, sys};

/// One case: a format at a size, with the encoder's alignment of rows and height.
struct Case {
    fourcc: u32,
    width: u32,
    height: u32,
    row_align: u32,
    height_align: u32,
}

fn align(n: u32, to: u32) -> u32 {
    n.div_ceil(to) * to
}

fn main() {
    let frames: u32 = std::env::var("BENCH_COPY_FRAMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let cases = [
        Case {
            fourcc: sys::V4L2_PIX_FMT_YUYV,
            width: 1920,
            height: 1080,
            row_align: 64,
            height_align: 16,
        },
        Case {
            fourcc: sys::V4L2_PIX_FMT_YUYV,
            width: 1280,
            height: 720,
            row_align: 64,
            height_align: 16,
        },
        Case {
            fourcc: sys::V4L2_PIX_FMT_YUYV,
            width: 800,
            height: 600,
            row_align: 64,
            height_align: 16,
        },
        Case {
            fourcc: sys::V4L2_PIX_FMT_NV12,
            width: 1920,
            height: 1080,
            row_align: 32,
            height_align: 16,
        },
        Case {
            fourcc: sys::V4L2_PIX_FMT_YUV420,
            width: 1920,
            height: 1080,
            row_align: 64,
            height_align: 16,
        },
        Case {
            fourcc: sys::V4L2_PIX_FMT_YUV420,
            width: 1000,
            height: 250,
            row_align: 64,
            height_align: 16,
        },
    ];
    println!("raw frame copy into the encoder's layout, {frames} frames per case");
    println!(
        "| format | size | camera bytes | encoder bytes | copy_picture per frame | GB/s | one memcpy per frame | ratio |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for case in &cases {
        let from = match PictureLayout::tight(case.fourcc, case.width, case.height) {
            Ok(layout) => layout,
            Err(e) => {
                eprintln!("skipping a case: {e}");
                continue;
            }
        };
        let bytes_per_pixel = if case.fourcc == sys::V4L2_PIX_FMT_YUYV {
            2
        } else {
            1
        };
        let bytesperline = align(case.width * bytes_per_pixel, case.row_align);
        let to = match PictureLayout::new(
            case.fourcc,
            case.width,
            case.height,
            bytesperline,
            align(case.height, case.height_align),
        ) {
            Ok(layout) => layout,
            Err(e) => {
                eprintln!("skipping a case: {e}");
                continue;
            }
        };
        let src: Vec<u8> = (0..from.min_len()).map(|i| (i % 251) as u8).collect();
        let mut dst = vec![0u8; to.full_len()];
        // Warm up (page faults, caches), then measure.
        for _ in 0..10 {
            copy_picture(&from, &src, &to, &mut dst).expect("layouts match");
        }
        let started = Instant::now();
        for _ in 0..frames {
            copy_picture(&from, black_box(&src), &to, black_box(&mut dst)).expect("layouts match");
        }
        let copy = started.elapsed() / frames;
        let mut flat = vec![0u8; src.len()];
        let started = Instant::now();
        for _ in 0..frames {
            black_box(&mut flat).copy_from_slice(black_box(&src));
        }
        let memcpy = started.elapsed() / frames;
        println!(
            "| {} | {}x{} | {} | {} | {} | {:.1} | {} | {:.2} |",
            fourcc_to_string(case.fourcc),
            case.width,
            case.height,
            from.min_len(),
            to.full_len(),
            show(copy),
            src.len() as f64 / copy.as_secs_f64() / 1e9,
            show(memcpy),
            copy.as_secs_f64() / memcpy.as_secs_f64().max(1e-12)
        );
    }
    conversions(frames);
}

/// The raw-to-I420 conversion of the software encoding path.
fn conversions(frames: u32) {
    println!();
    println!("raw frame to I420 (software encoding path), {frames} frames per case");
    println!("| format | size | camera bytes | per frame | GB/s |");
    println!("| --- | --- | --- | --- | --- |");
    for (fourcc, width, height) in [
        (sys::V4L2_PIX_FMT_YUYV, 640, 480),
        (sys::V4L2_PIX_FMT_YUYV, 1280, 720),
        (sys::V4L2_PIX_FMT_YUYV, 1920, 1080),
        (sys::V4L2_PIX_FMT_NV12, 1920, 1080),
        (sys::V4L2_PIX_FMT_YUV420, 1920, 1080),
    ] {
        let Ok(layout) = PictureLayout::tight(fourcc, width, height) else {
            continue;
        };
        let src: Vec<u8> = (0..layout.min_len()).map(|i| (i % 251) as u8).collect();
        let mut picture = I420Picture::new(width as usize, height as usize);
        for _ in 0..10 {
            picture.fill_from(&layout, &src).expect("sizes match");
        }
        let started = Instant::now();
        for _ in 0..frames {
            black_box(&mut picture)
                .fill_from(&layout, black_box(&src))
                .expect("sizes match");
        }
        let per_frame = started.elapsed() / frames;
        println!(
            "| {} | {width}x{height} | {} | {} | {:.1} |",
            fourcc_to_string(fourcc),
            src.len(),
            show(per_frame),
            src.len() as f64 / per_frame.as_secs_f64() / 1e9
        );
    }
}

fn show(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
