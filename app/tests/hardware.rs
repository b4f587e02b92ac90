//! Tests that need a real Raspberry Pi. They are ignored by `cargo test`; on a Pi
//! run them with
//!
//! ```sh
//! STREAMER_HW_TEST=1 cargo test --test hardware -- --ignored <name>
//! ```
//!
//! choosing the tests for the hardware at hand (`docs/hardware-testing.md` says
//! which). Each fails with a clear message when the hardware it tests is missing.

use std::path::Path;

use streamer::device::{self, DeviceReport};
use streamer::v4l2::sys::*;
use streamer::v4l2::Device;

fn this_pi() -> DeviceReport {
    assert_eq!(
        std::env::var("STREAMER_HW_TEST").as_deref(),
        Ok("1"),
        "hardware tests run only on a Raspberry Pi with STREAMER_HW_TEST=1"
    );
    device::probe(Path::new("/"))
}

fn pixel_formats(device: &Device, buf_type: u32) -> Vec<u32> {
    device
        .enum_formats(buf_type)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|f| f.pixelformat)
        .collect()
}

#[test]
#[ignore = "needs a Raspberry Pi: STREAMER_HW_TEST=1 ... -- --ignored"]
fn probe_identifies_this_pi() {
    let report = this_pi();
    let model = report.model.as_ref().expect("a Raspberry Pi model");
    assert!(!model.name.is_empty(), "{report:#?}");
    println!("{report:#?}");
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn legacy_camera_answers_querycap_and_offers_h264() {
    let report = this_pi();
    let node = report
        .legacy_camera
        .as_ref()
        .expect("no legacy camera: enable it (start_x=1, bcm2835-v4l2) and connect one");
    let camera = Device::open(node).unwrap_or_else(|e| panic!("{e}"));
    let caps = camera.capability();
    assert!(caps.driver.contains("mmal"), "driver {:?}", caps.driver);
    assert!(
        caps.has(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING),
        "{caps:?}"
    );
    let formats = pixel_formats(&camera, V4L2_BUF_TYPE_VIDEO_CAPTURE);
    assert!(formats.contains(&V4L2_PIX_FMT_H264), "{formats:x?}");
}

#[test]
#[ignore = "needs a Pi 0-4 (the bcm2835-codec hardware encoder)"]
fn hardware_encoder_is_a_multiplanar_m2m_h264_encoder() {
    let report = this_pi();
    let node = report
        .hardware_encoder
        .as_ref()
        .expect("no bcm2835-codec-encode node (a Pi 5 has no hardware encoder)");
    let encoder = Device::open(node).unwrap_or_else(|e| panic!("{e}"));
    let caps = encoder.capability();
    assert_eq!(caps.card, "bcm2835-codec-encode");
    assert!(
        caps.has(V4L2_CAP_VIDEO_M2M_MPLANE | V4L2_CAP_STREAMING),
        "{caps:?}"
    );
    let out = pixel_formats(&encoder, V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE);
    assert!(out.contains(&V4L2_PIX_FMT_H264), "{out:x?}");
    let raw = pixel_formats(&encoder, V4L2_BUF_TYPE_VIDEO_OUTPUT_MPLANE);
    assert!(raw.contains(&V4L2_PIX_FMT_YUV420), "{raw:x?}");
}
