//! Device discovery: every fake `/proc` + `/sys` tree under `tests/fixtures/sysroots`
//! gives the report it should (see that folder's README for where each file's content
//! comes from), and odd trees (missing, unreadable, non-UTF-8, garbage files) give a
//! report with notes, never a panic.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use streamer::probe::{
    inspect_nodes, node_lines, probe, Board, CpuArch, ProbeReport, Soc, VideoKind,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sysroots"
    ))
    .join(name)
}

fn probe_fixture(name: &str) -> ProbeReport {
    let root = fixture(name);
    assert!(root.is_dir(), "missing fixture {}", root.display());
    probe(&root)
}

/// One video device as (node, name, index, driver, kind).
type Node<'a> = (&'a str, &'a str, Option<u32>, Option<&'a str>, VideoKind);

/// Every video device of the report.
fn nodes(report: &ProbeReport) -> Vec<Node<'_>> {
    report
        .video_devices
        .iter()
        .map(|d| {
            (
                d.node.as_str(),
                d.name.as_str(),
                d.index,
                d.driver.as_deref(),
                d.kind,
            )
        })
        .collect()
}

fn has_note(report: &ProbeReport, needle: &str) -> bool {
    report.notes.iter().any(|n| n.contains(needle))
}

#[test]
fn pi4_with_the_legacy_camera() {
    let r = probe_fixture("pi4-legacy-camera");
    let m = r.model.as_ref().expect("a Pi");
    assert_eq!(m.name, "Raspberry Pi 4 Model B Rev 1.4");
    assert_eq!(m.board, Board::Pi4);
    assert_eq!(m.soc, Some(Soc::Bcm2711));
    assert_eq!(m.memory_mb, Some(4096));
    assert!(m.has_hw_h264_encoder);
    assert_eq!(m.cpu_arch, Some(CpuArch::Aarch64));
    let rev = m.revision.as_ref().expect("revision decoded");
    assert_eq!((rev.code, rev.type_name), (0xc03114, "4B"));
    assert_eq!(rev.pcb_revision, "1.4");

    assert_eq!(
        nodes(&r),
        vec![
            (
                "/dev/video0",
                "camera0",
                Some(0),
                None,
                VideoKind::LegacyCamera
            ),
            (
                "/dev/video10",
                "bcm2835-codec-decode",
                Some(0),
                Some("bcm2835-codec"),
                VideoKind::OtherCodec
            ),
            (
                "/dev/video11",
                "bcm2835-codec-encode",
                Some(0),
                Some("bcm2835-codec"),
                VideoKind::H264Encoder
            ),
            (
                "/dev/video12",
                "bcm2835-codec-isp",
                Some(0),
                Some("bcm2835-codec"),
                VideoKind::OtherCodec
            ),
        ]
    );
    assert_eq!(r.hardware_encoder.as_deref(), Some("/dev/video11"));
    assert_eq!(r.legacy_camera.as_deref(), Some("/dev/video0"));
    assert!(r.uvc_cameras.is_empty());
    assert!(!r.libcamera_csi);
    assert!(r.has_camera());
    assert_eq!(
        r.notes.first().map(String::as_str),
        Some("Raspberry Pi 4 Model B Rev 1.4 (BCM2711, 4096 MB)")
    );
    assert!(has_note(&r, "hardware H.264 encoder at /dev/video11"));
    assert!(has_note(
        &r,
        "legacy camera stack (bcm2835-v4l2) at /dev/video0"
    ));
    assert!(!has_note(&r, "no camera"));
    assert!(!has_note(&r, "cannot"), "{:?}", r.notes);
}

#[test]
fn pi_zero_w_without_a_camera() {
    let r = probe_fixture("pi-zero-w");
    let m = r.model.as_ref().expect("a Pi");
    assert_eq!(m.name, "Raspberry Pi Zero W Rev 1.1");
    assert_eq!(m.board, Board::ZeroW);
    assert_eq!(m.soc, Some(Soc::Bcm2835));
    assert_eq!(m.memory_mb, Some(512));
    assert!(m.has_hw_h264_encoder);
    assert_eq!(m.cpu_arch, Some(CpuArch::Armv6));

    // video11's driver comes from device/uevent (no driver symlink there).
    assert_eq!(
        nodes(&r)
            .iter()
            .map(|n| (n.0, n.3, n.4))
            .collect::<Vec<_>>(),
        vec![
            ("/dev/video10", Some("bcm2835-codec"), VideoKind::OtherCodec),
            (
                "/dev/video11",
                Some("bcm2835-codec"),
                VideoKind::H264Encoder
            ),
            ("/dev/video12", Some("bcm2835-codec"), VideoKind::OtherCodec),
        ]
    );
    assert_eq!(r.hardware_encoder.as_deref(), Some("/dev/video11"));
    assert_eq!(r.legacy_camera, None);
    assert!(!r.libcamera_csi);
    assert!(!r.has_camera());
    assert!(has_note(&r, "no camera found"));
    assert!(has_note(&r, "single-core ARMv6 CPU"));
}

#[test]
fn pi5_with_a_camera_module_3() {
    let r = probe_fixture("pi5-imx708");
    let m = r.model.as_ref().expect("a Pi");
    assert_eq!(m.name, "Raspberry Pi 5 Model B Rev 1.0");
    assert_eq!(m.board, Board::Pi5);
    assert_eq!(m.soc, Some(Soc::Bcm2712));
    assert_eq!(m.memory_mb, Some(8192));
    assert!(!m.has_hw_h264_encoder);
    assert_eq!(m.cpu_arch, Some(CpuArch::Aarch64));

    let expected_names = [
        "rp1-cfe-csi2-ch0",
        "rp1-cfe-csi2-ch1",
        "rp1-cfe-csi2-ch2",
        "rp1-cfe-csi2-ch3",
        "rp1-cfe-fe-image0",
        "rp1-cfe-fe-image1",
        "rp1-cfe-fe-stats",
        "rp1-cfe-fe-config",
    ];
    assert_eq!(
        r.video_devices.len(),
        expected_names.len(),
        "v4l-subdev2 is not listed"
    );
    for (i, (dev, name)) in r.video_devices.iter().zip(expected_names).enumerate() {
        assert_eq!(dev.node, format!("/dev/video{i}"));
        assert_eq!(dev.name, name);
        assert_eq!(dev.index, Some(i as u32));
        assert_eq!(dev.driver.as_deref(), Some("rp1-cfe"));
        assert_eq!(dev.kind, VideoKind::CsiReceiver);
    }
    assert_eq!(r.hardware_encoder, None);
    assert_eq!(r.legacy_camera, None);
    assert!(r.libcamera_csi);
    assert!(r.has_camera());
    assert!(has_note(
        &r,
        "no hardware H.264 encoder (BCM2712): rpicam-vid encodes in software; 1280x720 at 30 fps is realistic"
    ));
    assert!(has_note(&r, "driven by libcamera"));
    // The Pi 5 lacking the encoder is expected, not a missing driver.
    assert!(!has_note(&r, "driver is not loaded"));
}

#[test]
fn pi3_with_a_usb_webcam() {
    let r = probe_fixture("pi3-uvc");
    let m = r.model.as_ref().expect("a Pi");
    assert_eq!(m.board, Board::Pi3);
    assert_eq!(m.soc, Some(Soc::Bcm2837));
    assert_eq!(m.memory_mb, Some(1024));
    assert_eq!(
        m.revision.as_ref().and_then(|r| r.manufacturer),
        Some("Sony UK")
    );
    assert!(m.has_hw_h264_encoder);

    let n = nodes(&r);
    assert_eq!(
        n.get(..2),
        Some(
            &[
                (
                    "/dev/video0",
                    "HD Pro Webcam C920",
                    Some(0),
                    Some("uvcvideo"),
                    VideoKind::UvcCamera
                ),
                (
                    "/dev/video1",
                    "HD Pro Webcam C920",
                    Some(1),
                    Some("uvcvideo"),
                    VideoKind::UvcMetadata
                ),
            ][..]
        )
    );
    assert_eq!(n.len(), 5);
    assert_eq!(r.uvc_cameras.len(), 1);
    assert_eq!(r.uvc_cameras[0].node, "/dev/video0");
    assert_eq!(r.hardware_encoder.as_deref(), Some("/dev/video11"));
    assert_eq!(r.legacy_camera, None);
    assert!(!r.libcamera_csi);
    assert!(has_note(
        &r,
        "USB camera \"HD Pro Webcam C920\" at /dev/video0"
    ));
}

#[test]
fn laptop_is_not_a_pi() {
    let r = probe_fixture("laptop");
    assert_eq!(r.model, None);
    assert_eq!(
        r.notes.first().map(String::as_str),
        Some("not a Raspberry Pi")
    );
    assert_eq!(r.hardware_encoder, None);
    assert_eq!(r.legacy_camera, None);
    assert!(!r.libcamera_csi);
    assert_eq!(r.uvc_cameras.len(), 1);
    assert_eq!(r.uvc_cameras[0].name, "Integrated Camera: Integrated C");
    assert_eq!(r.uvc_cameras[0].node, "/dev/video0");
    assert_eq!(r.video_devices.len(), 2);
    // Nothing about encoders or CPUs: those notes are for Pis.
    assert!(!has_note(&r, "encoder"), "{:?}", r.notes);
}

#[test]
fn report_serializes_to_json() {
    let r = probe_fixture("pi4-legacy-camera");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["model"]["board"], "pi4");
    assert_eq!(json["model"]["soc"], "BCM2711");
    assert_eq!(json["model"]["cpu_arch"], "aarch64");
    assert_eq!(json["model"]["memory_mb"], 4096);
    assert_eq!(json["model"]["revision"]["code"], "c03114");
    assert_eq!(json["hardware_encoder"], "/dev/video11");
    assert_eq!(json["video_devices"][0]["kind"], "legacy_camera");
    assert_eq!(json["video_devices"][2]["kind"], "h264_encoder");
    assert_eq!(json["libcamera_csi"], false);
    assert!(json["notes"].as_array().is_some_and(|n| !n.is_empty()));

    let laptop = serde_json::to_value(probe_fixture("laptop")).unwrap();
    assert!(laptop["model"].is_null());
    assert_eq!(laptop["uvc_cameras"][0]["kind"], "uvc_camera");
}

#[test]
fn probe_opens_nothing_and_inspection_is_a_separate_step() {
    let mut r = probe_fixture("pi4-legacy-camera");
    assert!(r.nodes.is_empty(), "probe alone opens no device");
    assert_eq!(
        serde_json::to_value(&r).unwrap()["nodes"],
        serde_json::json!([])
    );
    assert!(node_lines(&r).is_empty());

    // An opener that records what it is asked and refuses like a node without
    // permission: every sysfs node is asked, in node-number order, and each
    // refusal is noted.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&asked);
    let opener =
        move |path: &Path| -> Result<Box<dyn streamer::v4l2::Node>, streamer::v4l2::Error> {
            log.lock().unwrap().push(path.to_path_buf());
            Err(streamer::v4l2::Error::Open {
                path: path.to_path_buf(),
                source: std::io::Error::from_raw_os_error(libc::EACCES),
            })
        };
    inspect_nodes(&mut r, &opener);
    let expected: Vec<PathBuf> = r
        .video_devices
        .iter()
        .map(|d| PathBuf::from(&d.node))
        .collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(*asked.lock().unwrap(), expected);
    assert_eq!(r.nodes.len(), 4);
    for node in &r.nodes {
        assert_eq!(node.role, None);
        assert!(node.description.is_none());
        let error = node.error.as_deref().unwrap();
        assert_eq!(
            error,
            format!("cannot open {}: Permission denied (os error 13)", node.path)
        );
        assert!(
            has_note(&r, &format!("could not inspect {}: cannot open", node.path)),
            "{:?}",
            r.notes
        );
    }
    let lines = node_lines(&r);
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "/dev/video0  video node: error: cannot open /dev/video0: Permission denied (os error 13)"
    );
}

#[test]
fn the_real_system_never_panics() {
    // Whatever this machine is; only checks that the real /proc and /sys are handled.
    let r = probe(Path::new("/"));
    assert!(!r.notes.is_empty());
    for dev in &r.video_devices {
        assert!(dev.node.starts_with("/dev/video"), "{}", dev.node);
    }
}

// --- odd trees ---------------------------------------------------------------------

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
fn an_empty_or_missing_root_is_a_laptop_without_camera() {
    let dir = tempfile::tempdir().unwrap();
    for root in [dir.path().to_path_buf(), dir.path().join("does-not-exist")] {
        let r = probe(&root);
        assert_eq!(r.model, None);
        assert!(r.video_devices.is_empty());
        assert_eq!(r.notes, vec!["not a Raspberry Pi", "no camera found"]);
    }
}

#[test]
fn unreadable_and_non_utf8_files_are_noted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The model file is a directory: open works, read fails.
    fs::create_dir_all(root.join("proc/device-tree/model")).unwrap();
    // cpuinfo is not UTF-8 but still names a Pi.
    write(
        root,
        "proc/cpuinfo",
        b"Hardware\t: BCM2835\nRevision\t: 9000c1\nModel\t\t: Raspberry Pi Zero W Rev 1.1 \xff\n",
    );
    let r = probe(root);
    let m = r.model.as_ref().expect("the cpuinfo Model line names a Pi");
    assert_eq!(m.board, Board::ZeroW);
    assert!(has_note(&r, "cannot read"), "{:?}", r.notes);
    assert!(has_note(&r, "proc/device-tree/model"), "{:?}", r.notes);
    assert!(has_note(&r, "cpuinfo is not valid UTF-8"), "{:?}", r.notes);
}

#[test]
fn garbage_model_revision_and_video_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "proc/device-tree/model",
        b"Raspberry Pi 4 Model B \xfe\xff\0tail",
    );
    write(root, "proc/device-tree/system/linux,revision", b"\x01\x02");
    write(root, "proc/cpuinfo", b"Revision\t: not-hex!\n");
    let v4l = "sys/class/video4linux";
    // video3: no name, index garbage, a driver link that names nothing.
    fs::create_dir_all(root.join(v4l).join("video3/device")).unwrap();
    write(root, &format!("{v4l}/video3/index"), b"three\n");
    symlink("/", root.join(v4l).join("video3/device/driver")).unwrap();
    // video2: the encoder, found by name whatever its number.
    write(
        root,
        &format!("{v4l}/video2/name"),
        b"bcm2835-codec-encode\n",
    );
    // Entries that are not videoN, and one whose name is not UTF-8.
    write(root, &format!("{v4l}/videoX/name"), b"ignored\n");
    write(root, &format!("{v4l}/vbi0/name"), b"ignored\n");
    let bad = std::ffi::OsStr::from_bytes(b"video\xff");
    fs::create_dir_all(root.join(v4l).join(bad)).unwrap();

    let r = probe(root);
    let m = r.model.as_ref().expect("the device tree names a Pi");
    assert_eq!(m.board, Board::Pi4);
    assert_eq!(m.revision, None);
    assert_eq!(m.memory_mb, None);
    assert_eq!(
        m.soc,
        Some(Soc::Bcm2711),
        "from the board, as nothing else says"
    );
    assert!(
        has_note(&r, "proc/device-tree/model is not valid UTF-8"),
        "{:?}",
        r.notes
    );
    assert!(
        has_note(&r, "linux,revision is not a 4-byte number"),
        "{:?}",
        r.notes
    );
    assert!(has_note(&r, "not-hex!"), "{:?}", r.notes);
    assert!(
        has_note(&r, "video3/index is not a number"),
        "{:?}",
        r.notes
    );
    assert!(has_note(&r, "names no driver"), "{:?}", r.notes);
    assert!(has_note(&r, "not UTF-8"), "{:?}", r.notes);

    assert_eq!(
        nodes(&r),
        vec![
            (
                "/dev/video2",
                "bcm2835-codec-encode",
                None,
                None,
                VideoKind::H264Encoder
            ),
            ("/dev/video3", "", None, None, VideoKind::Other),
        ]
    );
    assert_eq!(r.hardware_encoder.as_deref(), Some("/dev/video2"));
}

#[test]
fn device_tree_revision_is_used_without_cpuinfo() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "proc/device-tree/model",
        b"Raspberry Pi 3 Model B Rev 1.2\0",
    );
    write(
        root,
        "proc/device-tree/system/linux,revision",
        &0x00a0_2082u32.to_be_bytes(),
    );
    let r = probe(root);
    let m = r.model.as_ref().unwrap();
    assert_eq!((m.board, m.memory_mb), (Board::Pi3, Some(1024)));
}

#[test]
fn video4linux_that_is_a_file_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "sys/class/video4linux", b"oops");
    let r = probe(dir.path());
    assert!(r.video_devices.is_empty());
    assert!(has_note(&r, "cannot list"), "{:?}", r.notes);
}

#[test]
fn a_non_pi_device_tree_is_named_in_the_note() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "proc/device-tree/model",
        b"Pine64 RockPro64 v2.1\0",
    );
    let r = probe(dir.path());
    assert_eq!(r.model, None);
    assert_eq!(
        r.notes.first().map(String::as_str),
        Some("not a Raspberry Pi (device tree model: \"Pine64 RockPro64 v2.1\")")
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any bytes in any of the files `probe` reads: a report, no panic.
    #[test]
    fn random_file_contents_never_panic(
        model in proptest::collection::vec(any::<u8>(), 0..64),
        cpuinfo in proptest::collection::vec(any::<u8>(), 0..256),
        revision in proptest::collection::vec(any::<u8>(), 0..8),
        name in proptest::collection::vec(any::<u8>(), 0..48),
        index in proptest::collection::vec(any::<u8>(), 0..12),
        uevent in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "proc/device-tree/model", &model);
        write(root, "proc/device-tree/compatible", &model);
        write(root, "proc/device-tree/system/linux,revision", &revision);
        write(root, "proc/cpuinfo", &cpuinfo);
        write(root, "sys/class/video4linux/video7/name", &name);
        write(root, "sys/class/video4linux/video7/index", &index);
        write(root, "sys/class/video4linux/video7/device/uevent", &uevent);
        let r = probe(root);
        prop_assert!(!r.notes.is_empty());
        prop_assert_eq!(r.video_devices.len(), 1);
        prop_assert_eq!(r.video_devices[0].node.as_str(), "/dev/video7");
        prop_assert!(serde_json::to_string(&r).is_ok());
    }
}
