//! Tests that need a real Raspberry Pi. They are ignored by `cargo test`; on a Pi
//! run them with
//!
//! ```sh
//! STREAMER_HW_TEST=1 cargo test --test hardware -- --ignored <name>
//! ```
//!
//! choosing the tests for the hardware at hand (`docs/hardware-testing.md` says
//! which). Each fails with a clear message when the hardware it tests is missing.
//!
//! The `describe_*` tests print the node's description as JSON (between
//! `--- BEGIN` and `--- END` lines): save it under `app/tests/fixtures/v4l2/` as a
//! fixture for the tests that run without hardware. Add `--nocapture` to see it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use streamer::probe::{self, ProbeReport};
use streamer::v4l2::device::open_node;
use streamer::v4l2::discover::{self, Role};
use streamer::v4l2::sys::*;
use streamer::v4l2::{describe, Device, Fraction, ImageFormat, Node, NodeDescription, Queue};

fn this_pi() -> ProbeReport {
    assert_eq!(
        std::env::var("STREAMER_HW_TEST").as_deref(),
        Ok("1"),
        "hardware tests run only on a Raspberry Pi with STREAMER_HW_TEST=1"
    );
    probe::probe(Path::new("/"))
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

/// The video nodes sysfs lists: the candidates discovery opens.
fn candidates(report: &ProbeReport) -> Vec<PathBuf> {
    report
        .video_devices
        .iter()
        .map(|d| PathBuf::from(&d.node))
        .collect()
}

/// The node playing `role`, found by QUERYCAP through the real `Device`.
fn find(role: Role) -> (PathBuf, Box<dyn Node>, ProbeReport) {
    let report = this_pi();
    let (path, node) =
        discover::find(role, &candidates(&report), &open_node).unwrap_or_else(|e| panic!("{e}"));
    (path, node, report)
}

/// Prints a description as a fixture would hold it.
fn print_fixture(name: &str, report: &ProbeReport, mut description: NodeDescription) {
    let board = report
        .model
        .as_ref()
        .map_or("unknown board", |m| m.name.as_str());
    description.provenance = format!(
        "recorded by the hardware test {name} (streamer {}) on {board}",
        env!("CARGO_PKG_VERSION")
    );
    let json = serde_json::to_string_pretty(&description).unwrap();
    println!("--- BEGIN {name}.json\n{json}\n--- END {name}.json");
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn describe_the_legacy_camera() {
    let (path, camera, report) = find(Role::LegacyCamera);
    let d = describe(camera.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.path, path.display().to_string());
    let h264 = d
        .format(Queue::Capture, V4L2_PIX_FMT_H264)
        .unwrap_or_else(|| panic!("no H.264 capture format: {d:#?}"));
    assert!(!h264.sizes.is_empty(), "no frame sizes for H.264: {d:#?}");
    assert!(
        d.control(V4L2_CID_MPEG_VIDEO_BITRATE).is_some(),
        "no bitrate control: {:#?}",
        d.controls
    );
    print_fixture("legacy-camera", &report, d);
}

#[test]
#[ignore = "needs a Pi 0-4 (the bcm2835-codec hardware encoder)"]
fn describe_the_hardware_encoder() {
    let (_, encoder, report) = find(Role::H264Encoder);
    let d = describe(encoder.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        d.format(Queue::CaptureMplane, V4L2_PIX_FMT_H264).is_some(),
        "{d:#?}"
    );
    assert!(
        d.format(Queue::OutputMplane, V4L2_PIX_FMT_YUV420).is_some(),
        "{d:#?}"
    );
    let level = d
        .control(V4L2_CID_MPEG_VIDEO_H264_LEVEL)
        .unwrap_or_else(|| panic!("no H.264 level control: {:#?}", d.controls));
    assert!(
        !level.menu.is_empty(),
        "the level menu is empty: {level:#?}"
    );
    print_fixture("h264-encoder", &report, d);
}

/// The NAL unit types in an Annex-B byte stream.
fn nal_types(stream: &[u8]) -> Vec<u8> {
    let mut types = Vec::new();
    let mut i = 0;
    while i + 3 < stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            types.push(stream[i + 3] & 0x1f);
            i += 3;
        } else {
            i += 1;
        }
    }
    types
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn legacy_camera_streams_30_h264_buffers() {
    let (path, mut camera, _) = find(Role::LegacyCamera);
    let asked = ImageFormat {
        width: 1280,
        height: 720,
        pixelformat: V4L2_PIX_FMT_H264,
        field: V4L2_FIELD_NONE,
        colorspace: 0,
        planes: Vec::new(),
    };
    let format = camera
        .set_format(Queue::Capture, &asked)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(format.pixelformat, V4L2_PIX_FMT_H264, "{format:?}");
    assert_eq!((format.width, format.height), (1280, 720), "{format:?}");
    assert_eq!(camera.format(Queue::Capture).unwrap(), format);
    let interval = camera
        .set_frame_interval(
            Queue::Capture,
            Fraction {
                numerator: 1,
                denominator: 30,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "{}: {format:?}, frame interval {interval:?}",
        path.display()
    );
    // Every keyframe with SPS/PPS, so the first buffers can be checked.
    camera
        .set_control(V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, 1)
        .unwrap_or_else(|e| panic!("{e}"));
    camera
        .set_control(V4L2_CID_MPEG_VIDEO_BITRATE, 2_000_000)
        .unwrap_or_else(|e| panic!("{e}"));

    let count = camera
        .request_buffers(Queue::Capture, 4)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(count >= 2, "only {count} buffers");
    for index in 0..count {
        assert!(camera
            .buffer(Queue::Capture, index, 0)
            .is_some_and(|b| !b.is_empty()));
        camera
            .queue_buffer(Queue::Capture, index, &[], Duration::ZERO)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(camera.buffer(Queue::Capture, count, 0).is_none());
    camera
        .stream_on(Queue::Capture)
        .unwrap_or_else(|e| panic!("{e}"));

    let mut stream = Vec::new();
    let mut buffers = 0;
    let mut keyframes = 0;
    let mut last: Option<(u32, Duration)> = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    while buffers < 30 {
        assert!(Instant::now() < deadline, "only {buffers} buffers in 15 s");
        let ready = camera.wait(Duration::from_secs(2)).unwrap();
        assert!(!ready.error, "poll reported an error");
        while let Some(done) = camera.dequeue_buffer(Queue::Capture).unwrap() {
            assert_eq!(done.flags & V4L2_BUF_FLAG_ERROR, 0, "{done:?}");
            assert_eq!(done.planes.len(), 1, "{done:?}");
            let memory = camera.buffer(Queue::Capture, done.index, 0).unwrap();
            let payload = done.planes[0]
                .payload(memory.len())
                .unwrap_or_else(|| panic!("payload outside the buffer: {done:?}"));
            stream.extend_from_slice(&memory[payload]);
            if done.flags & V4L2_BUF_FLAG_KEYFRAME != 0 {
                keyframes += 1;
            }
            if let Some((sequence, timestamp)) = last {
                assert!(done.sequence >= sequence, "{done:?} after {sequence}");
                assert!(done.timestamp >= timestamp, "{done:?} went back in time");
            }
            last = Some((done.sequence, done.timestamp));
            buffers += 1;
            camera
                .queue_buffer(Queue::Capture, done.index, &[], Duration::ZERO)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    camera
        .stream_off(Queue::Capture)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(camera.dequeue_buffer(Queue::Capture).unwrap(), None);
    assert_eq!(camera.request_buffers(Queue::Capture, 0).unwrap(), 0);
    assert!(camera.buffer(Queue::Capture, 0, 0).is_none());

    let types = nal_types(&stream);
    println!(
        "{buffers} buffers, {} bytes, {keyframes} keyframes, NAL types {:?}...",
        stream.len(),
        &types[..types.len().min(12)]
    );
    assert!(stream.starts_with(&[0, 0, 0, 1]) || stream.starts_with(&[0, 0, 1]));
    assert!(
        types.contains(&7) && types.contains(&8),
        "no SPS/PPS: {types:?}"
    );
    assert!(types.contains(&5), "no IDR slice: {types:?}");
    assert!(keyframes >= 1);
    if let Some(out) = std::env::var_os("STREAMER_HW_SAVE") {
        std::fs::write(&out, &stream).unwrap();
        println!("saved to {out:?} (check it with ffprobe)");
    }
}

#[test]
#[ignore = "needs a Pi 0-4 (the bcm2835-codec hardware encoder)"]
fn hardware_encoder_encodes_30_frames() {
    let (_, mut encoder, _) = find(Role::H264Encoder);
    let raw = encoder
        .set_format(
            Queue::OutputMplane,
            &ImageFormat {
                width: 640,
                height: 480,
                pixelformat: V4L2_PIX_FMT_YUV420,
                field: V4L2_FIELD_NONE,
                colorspace: V4L2_COLORSPACE_SMPTE170M,
                planes: Vec::new(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(raw.pixelformat, V4L2_PIX_FMT_YUV420, "{raw:?}");
    let coded = encoder
        .set_format(
            Queue::CaptureMplane,
            &ImageFormat {
                width: 640,
                height: 480,
                pixelformat: V4L2_PIX_FMT_H264,
                field: V4L2_FIELD_NONE,
                colorspace: 0,
                planes: Vec::new(),
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    println!("raw {raw:?}\ncoded {coded:?}");
    let rate = encoder
        .set_frame_interval(
            Queue::OutputMplane,
            Fraction {
                numerator: 1,
                denominator: 30,
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    println!("frame interval {rate:?}");

    let inputs = encoder.request_buffers(Queue::OutputMplane, 4).unwrap();
    let outputs = encoder.request_buffers(Queue::CaptureMplane, 4).unwrap();
    assert!(inputs >= 1 && outputs >= 1);
    let sizeimage = raw.planes[0].sizeimage as usize;
    for index in 0..outputs {
        encoder
            .queue_buffer(Queue::CaptureMplane, index, &[], Duration::ZERO)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    encoder
        .stream_on(Queue::OutputMplane)
        .unwrap_or_else(|e| panic!("{e}"));
    encoder
        .stream_on(Queue::CaptureMplane)
        .unwrap_or_else(|e| panic!("{e}"));

    let frame_time = Duration::from_micros(33_333);
    let mut sent: Vec<Duration> = Vec::new();
    let mut free: Vec<u32> = (0..inputs).collect();
    let mut coded_frames = 0;
    let mut stream = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while coded_frames < 30 {
        assert!(
            Instant::now() < deadline,
            "only {coded_frames} coded frames in 15 s"
        );
        while sent.len() < 40 {
            let Some(index) = free.pop() else { break };
            let memory = encoder.buffer_mut(Queue::OutputMplane, index, 0).unwrap();
            assert!(memory.len() >= sizeimage, "{} < {sizeimage}", memory.len());
            // A grey picture with a moving bright band.
            memory[..sizeimage].fill(0x80);
            let band = (sent.len() * 8) % 480;
            memory[band * 640..(band + 8) * 640].fill(0xeb);
            let timestamp = frame_time * sent.len() as u32;
            encoder
                .queue_buffer(Queue::OutputMplane, index, &[sizeimage as u32], timestamp)
                .unwrap_or_else(|e| panic!("{e}"));
            sent.push(timestamp);
        }
        let ready = encoder.wait(Duration::from_secs(2)).unwrap();
        assert!(!ready.error, "poll reported an error");
        while let Some(done) = encoder.dequeue_buffer(Queue::OutputMplane).unwrap() {
            free.push(done.index);
        }
        while let Some(done) = encoder.dequeue_buffer(Queue::CaptureMplane).unwrap() {
            let memory = encoder.buffer(Queue::CaptureMplane, done.index, 0).unwrap();
            let payload = done.planes[0]
                .payload(memory.len())
                .unwrap_or_else(|| panic!("payload outside the buffer: {done:?}"));
            if !payload.is_empty() {
                stream.extend_from_slice(&memory[payload]);
                // Coded frames carry the timestamp of the picture they came from
                // (the stream header may come with none).
                assert!(
                    done.timestamp == Duration::ZERO || sent.contains(&done.timestamp),
                    "{done:?} has a timestamp no input had"
                );
                coded_frames += 1;
            }
            encoder
                .queue_buffer(Queue::CaptureMplane, done.index, &[], Duration::ZERO)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    encoder.stream_off(Queue::OutputMplane).unwrap();
    encoder.stream_off(Queue::CaptureMplane).unwrap();
    encoder.request_buffers(Queue::OutputMplane, 0).unwrap();
    encoder.request_buffers(Queue::CaptureMplane, 0).unwrap();
    let types = nal_types(&stream);
    println!("{coded_frames} coded buffers, {} bytes", stream.len());
    assert!(types.contains(&7) && types.contains(&5), "{types:?}");
}

/// Collects what a source writes, as a file of Annex-B bytes, and counts frames;
/// asks for a keyframe once `request_at` frames came.
struct Recorder {
    bytes: Vec<u8>,
    frames: usize,
    wanted: usize,
    deadline: Instant,
    /// Where each frame ends in `bytes`.
    frame_ends: Vec<usize>,
    request_at: Option<usize>,
    /// Frames that had come when the source took the request.
    requested_at: Option<usize>,
}

impl Recorder {
    fn new(wanted: usize, request_at: Option<usize>) -> Recorder {
        Recorder {
            bytes: Vec::new(),
            frames: 0,
            wanted,
            deadline: Instant::now() + Duration::from_secs(20),
            frame_ends: Vec::new(),
            request_at,
            requested_at: None,
        }
    }

    /// Indexes of the frames with an IDR slice.
    fn keyframes(&self) -> Vec<usize> {
        let mut start = 0;
        let mut keyframes = Vec::new();
        for (i, &end) in self.frame_ends.iter().enumerate() {
            if nal_types(&self.bytes[start..end]).contains(&5) {
                keyframes.push(i);
            }
            start = end;
        }
        keyframes
    }
}

impl streamer::source::Sink for Recorder {
    fn write(&mut self, annex_b: &[u8], frame_end: bool, _captured: std::time::SystemTime) {
        self.bytes.extend_from_slice(annex_b);
        if frame_end {
            self.frames += 1;
            self.frame_ends.push(self.bytes.len());
        }
    }
    fn should_stop(&self) -> bool {
        self.frames >= self.wanted || Instant::now() >= self.deadline
    }
    fn keyframe_requested(&mut self) -> bool {
        let due =
            self.requested_at.is_none() && self.request_at.is_some_and(|at| self.frames >= at);
        if due {
            self.requested_at = Some(self.frames);
        }
        due
    }
}

/// Runs `camera.source = kind` through the streamer's own plan (discovery, the
/// real `Device`, the source) for `frames` frames at `width`x`height`, then checks
/// the H.264 with ffprobe when it is installed, and saves it to `STREAMER_HW_SAVE`
/// if set.
fn run_source(kind: &str, width: u32, height: u32, frames: usize) -> Vec<u8> {
    let report = this_pi();
    let mut config = streamer::config::Config::default();
    config.camera.source = match kind {
        "v4l2" => streamer::config::SourceKind::LegacyCamera,
        "uvc" => streamer::config::SourceKind::Uvc,
        other => panic!("no such camera source {other}"),
    };
    config.camera.width = width;
    config.camera.height = height;
    config.camera.framerate = 30;
    let plan = streamer::source::plan(&config, &report);
    let mut source = (plan.factory)().unwrap_or_else(|e| panic!("{e}"));
    println!("{}", source.describe());
    let mut sink = Recorder::new(frames, None);
    let started = Instant::now();
    source.run(&mut sink).unwrap_or_else(|e| panic!("{e}"));
    let elapsed = started.elapsed();
    assert!(
        sink.frames >= frames,
        "{} frames in {elapsed:?}",
        sink.frames
    );
    let fps = sink.frames as f64 / elapsed.as_secs_f64();
    println!(
        "{} frames in {elapsed:?} ({fps:.1} fps, including start-up)",
        sink.frames
    );
    let types = nal_types(&sink.bytes);
    assert!(
        types.contains(&7) && types.contains(&8),
        "SPS and PPS: {types:?}"
    );
    assert!(types.contains(&5), "an IDR slice: {types:?}");
    let path = std::env::var("STREAMER_HW_SAVE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join(format!("streamer-hw-{kind}.h264")));
    std::fs::write(&path, &sink.bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args([
            "-show_entries",
            "stream=width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            println!("ffprobe: {text}");
            assert!(out.status.success(), "ffprobe failed on {}", path.display());
            assert!(
                text.starts_with(&format!("{width},{height},")),
                "ffprobe says {text}, expected {width}x{height}"
            );
        }
        Err(_) => println!("ffprobe is not installed: {} not decoded", path.display()),
    }
    sink.bytes
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn the_v4l2_source_delivers_h264_at_1280x720() {
    run_source("v4l2", 1280, 720, 60);
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn the_v4l2_source_delivers_h264_at_1920x1080() {
    run_source("v4l2", 1920, 1080, 60);
}

#[test]
#[ignore = "needs a USB webcam (with H.264, or with YUYV/NV12/YU12 on a Pi 0-4)"]
fn the_uvc_source_delivers_h264_at_640x480() {
    run_source("uvc", 640, 480, 60);
}

#[test]
#[ignore = "needs a Pi 0-4 (the bcm2835-codec hardware encoder)"]
fn hardware_encoder_makes_a_keyframe_on_request() {
    use streamer::encode::m2m::{EncoderSettings, M2mEncoder, OUTPUT_BUFFERS};
    let (_, node, _) = find(Role::H264Encoder);
    let mut config = streamer::config::Config::default().encoder;
    config.intra_period = 300; // ten seconds: no keyframe of its own during the test
    let settings = EncoderSettings::new(640, 480, V4L2_PIX_FMT_YUV420, 640, 30, &config);
    let mut encoder = M2mEncoder::start(node, settings).unwrap_or_else(|e| panic!("{e}"));
    let len = encoder.input_layout().full_len();
    let mut coded: Vec<Vec<u8>> = Vec::new();
    let mut forced_at = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sent = 0u64;
    while coded.len() < 40 {
        assert!(
            Instant::now() < deadline,
            "{} coded frames in 20 s",
            coded.len()
        );
        if coded.len() >= 10 && forced_at.is_none() {
            encoder.force_keyframe().unwrap_or_else(|e| panic!("{e}"));
            forced_at = Some(coded.len());
        }
        // A grey picture with a moving bright band.
        let mut picture = vec![0x80u8; len];
        let band = (sent as usize * 8) % 472;
        picture[band * 640..(band + 8) * 640].fill(0xeb);
        encoder
            .encode(&picture, Duration::from_millis(33 * sent))
            .unwrap_or_else(|e| panic!("{e}"));
        sent += 1;
        encoder
            .poll_output(Duration::from_millis(100), |data, _, _| {
                if !data.is_empty() {
                    coded.push(data.to_vec())
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let stats = encoder.finish(Duration::from_secs(1), |_, _, _| {});
    println!("{stats:?}");
    let forced_at = forced_at.unwrap();
    let idr: Vec<usize> = (0..coded.len())
        .filter(|&i| nal_types(&coded[i]).contains(&5))
        .collect();
    println!("forced at coded frame {forced_at}, IDR pictures at {idr:?}");
    assert_eq!(
        idr.len(),
        2,
        "the first picture and the one asked for: {idr:?}"
    );
    // Frames already queued when it was asked may come out before it.
    let latest = forced_at + OUTPUT_BUFFERS as usize + 2;
    assert!(
        (forced_at..=latest).contains(&idr[1]),
        "asked at {forced_at}, IDR at {}",
        idr[1]
    );
    let with_header: Vec<u8> = [&coded[idr[1] - 1][..], &coded[idr[1]][..]].concat();
    assert!(
        nal_types(&with_header).contains(&7),
        "SPS before the IDR picture"
    );
}

#[test]
#[ignore = "needs a Pi 0-4 with a camera on the legacy stack (bcm2835-v4l2)"]
fn the_v4l2_source_makes_a_keyframe_on_request() {
    let (path, camera, report) = find(Role::LegacyCamera);
    let described = describe(camera.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    drop(camera);
    assert!(
        described
            .control(V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME)
            .is_some(),
        "{}: this kernel's bcm2835-v4l2 has no Force Key Frame control, so viewers \
         wait for the next keyframe; note the kernel (uname -r) in the checklist",
        path.display()
    );
    let mut config = streamer::config::Config::default();
    config.camera.source = streamer::config::SourceKind::LegacyCamera;
    config.encoder.intra_period = 300; // ten seconds at 30 fps
    let plan = streamer::source::plan(&config, &report);
    let mut source = (plan.factory)().unwrap_or_else(|e| panic!("{e}"));
    let mut sink = Recorder::new(60, Some(30));
    source.run(&mut sink).unwrap_or_else(|e| panic!("{e}"));
    let asked = sink.requested_at.expect("the source took the request");
    let keyframes = sink.keyframes();
    println!("asked after frame {asked}, keyframes at {keyframes:?}");
    assert_eq!(keyframes.first(), Some(&0));
    assert_eq!(keyframes.len(), 2, "{keyframes:?}");
    assert!(
        (asked..=asked + 4).contains(&keyframes[1]),
        "asked at {asked}, keyframe at {}",
        keyframes[1]
    );
}
