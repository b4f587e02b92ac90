//! What hardware this is: the Raspberry Pi model and the video devices, read from
//! `/proc` and `/sys` only (no ioctls, no device opened), so it is safe to run at any
//! time, even while a camera is streaming.
//!
//! [`probe`] takes the filesystem root (`/` in production, a fixture tree in tests)
//! and never fails: files that are missing, unreadable or garbage become [`notes`]
//! in the report.
//!
//! [`inspect_nodes`] is the separate second step that does open the video nodes
//! `probe` listed and asks each over V4L2 what it is and what it offers
//! (formats, sizes, frame rates, controls): `streamer probe` and the server at
//! startup run it before any source opens a camera.
//!
//! [`notes`]: ProbeReport::notes

pub mod model;
pub mod video;

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::v4l2::discover::{self, InspectedNode, Role};
use crate::v4l2::Opener;

pub use model::{Board, CpuArch, PiModel, Revision, Soc};
pub use video::{VideoDevice, VideoKind};

/// Everything `probe` found out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeReport {
    /// The Raspberry Pi model, `None` when this is not a Raspberry Pi.
    pub model: Option<PiModel>,
    /// The hardware H.264 encoder's node (`bcm2835-codec-encode`), e.g. `/dev/video11`.
    pub hardware_encoder: Option<String>,
    /// The legacy camera stack's capture node (`bcm2835-v4l2`), e.g. `/dev/video0`.
    pub legacy_camera: Option<String>,
    /// USB (UVC) cameras' capture nodes.
    pub uvc_cameras: Vec<VideoDevice>,
    /// True when CSI-2 receiver nodes (`unicam`, `rp1-cfe`) exist: a camera module is
    /// driven through libcamera (`rpicam-vid`), the modern camera stack.
    pub libcamera_csi: bool,
    /// Every `videoN` node, in node-number order.
    pub video_devices: Vec<VideoDevice>,
    /// The video nodes as they describe themselves over V4L2 (QUERYCAP, formats,
    /// sizes, frame rates, controls) and the role the streamer gives each, found by
    /// QUERYCAP: filled by [`inspect_nodes`], empty from [`probe`] alone.
    pub nodes: Vec<InspectedNode>,
    /// Findings and problems in plain words, for people.
    pub notes: Vec<String>,
}

impl ProbeReport {
    /// True when some camera was found (legacy, CSI through libcamera, or USB).
    pub fn has_camera(&self) -> bool {
        self.legacy_camera.is_some() || self.libcamera_csi || !self.uvc_cameras.is_empty()
    }
}

/// The largest file read (`/proc/cpuinfo` of a many-core machine is well under this).
const MAX_FILE_BYTES: u64 = 1 << 20;
/// At most this many `/sys/class/video4linux` entries are looked at.
const MAX_VIDEO_ENTRIES: usize = 512;

/// Probes the system under `root` (`Path::new("/")` in production). Never fails.
pub fn probe(root: &Path) -> ProbeReport {
    let mut notes = Vec::new();
    let facts = read_model_facts(root, &mut notes);
    let model = model::identify(&facts, &mut notes);
    let video_devices = list_video_devices(root, &mut notes);
    build_report(model, video_devices, &facts, notes)
}

/// Assembles the report and its plain-words notes. Problems already in `problems`
/// come last.
fn build_report(
    model: Option<PiModel>,
    video_devices: Vec<VideoDevice>,
    facts: &model::ModelFacts,
    problems: Vec<String>,
) -> ProbeReport {
    let first = |kind: VideoKind| {
        video_devices
            .iter()
            .find(|d| d.kind == kind)
            .map(|d| d.node.clone())
    };
    let hardware_encoder = first(VideoKind::H264Encoder);
    let legacy_camera = first(VideoKind::LegacyCamera);
    let uvc_cameras: Vec<VideoDevice> = video_devices
        .iter()
        .filter(|d| d.kind == VideoKind::UvcCamera)
        .cloned()
        .collect();
    let libcamera_csi = video_devices
        .iter()
        .any(|d| d.kind == VideoKind::CsiReceiver);

    let mut notes = Vec::new();
    match &model {
        Some(m) => {
            let mut line = m.name.clone();
            let mut details = Vec::new();
            if let Some(soc) = m.soc {
                details.push(soc.name().to_owned());
            }
            if let Some(mb) = m.memory_mb {
                details.push(format!("{mb} MB"));
            }
            if !details.is_empty() {
                line.push_str(&format!(" ({})", details.join(", ")));
            }
            notes.push(line);
        }
        None => {
            let mut line = "not a Raspberry Pi".to_owned();
            if let Some(dt) = facts.dt_model.as_deref().filter(|s| !s.is_empty()) {
                line.push_str(&format!(
                    " (device tree model: {:?})",
                    model::truncate(dt, 80)
                ));
            }
            notes.push(line);
        }
    }

    if let Some(m) = &model {
        if !m.has_hw_h264_encoder && m.soc == Some(Soc::Bcm2712) {
            notes.push(
                "no hardware H.264 encoder (BCM2712): rpicam-vid encodes in software; \
                 1280x720 at 30 fps is realistic"
                    .to_owned(),
            );
        } else if m.has_hw_h264_encoder && hardware_encoder.is_none() {
            notes.push(
                "the chip has a hardware H.264 encoder but no bcm2835-codec-encode node \
                 exists: the bcm2835-codec driver is not loaded"
                    .to_owned(),
            );
        }
        if m.cpu_arch == Some(CpuArch::Armv6) {
            notes.push(
                "single-core ARMv6 CPU: software H.264 encoding is not practical, \
                 use the hardware encoder"
                    .to_owned(),
            );
        }
    }
    if let Some(node) = &hardware_encoder {
        notes.push(format!("hardware H.264 encoder at {node}"));
    }
    if let Some(node) = &legacy_camera {
        notes.push(format!(
            "legacy camera stack (bcm2835-v4l2) at {node}: the camera delivers H.264 \
             encoded by the GPU"
        ));
    }
    if libcamera_csi {
        notes.push(
            "CSI camera receiver present (unicam/rp1-cfe): the camera is driven by \
             libcamera, capture with rpicam-vid"
                .to_owned(),
        );
    }
    for cam in &uvc_cameras {
        notes.push(format!("USB camera {:?} at {}", cam.name, cam.node));
    }
    if legacy_camera.is_none() && !libcamera_csi && uvc_cameras.is_empty() {
        notes.push("no camera found".to_owned());
    }
    notes.extend(problems);

    ProbeReport {
        model,
        hardware_encoder,
        legacy_camera,
        uvc_cameras,
        libcamera_csi,
        video_devices,
        nodes: Vec::new(),
        notes,
    }
}

/// Opens each video node of `report` with `opener` (one at a time, each closed
/// again) and records what it says about itself in `report.nodes`
/// ([`discover::inspect`]), each description's provenance naming this board.
/// Nodes that cannot be inspected, and a role QUERYCAP gives a node that the
/// sysfs classification did not, become notes.
pub fn inspect_nodes(report: &mut ProbeReport, opener: &Opener) {
    let candidates: Vec<PathBuf> = report
        .video_devices
        .iter()
        .map(|d| PathBuf::from(&d.node))
        .collect();
    let mut nodes = discover::inspect(&candidates, opener);
    let board = report
        .model
        .as_ref()
        .map_or("a computer that is not a Raspberry Pi", |m| m.name.as_str());
    let provenance = format!(
        "recorded by streamer {} probe on {board}",
        env!("CARGO_PKG_VERSION")
    );
    for node in &mut nodes {
        if let Some(description) = &mut node.description {
            description.provenance = provenance.clone();
        }
        if let Some(error) = &node.error {
            report
                .notes
                .push(format!("could not inspect {}: {error}", node.path));
        }
        let sysfs_agrees = match node.role {
            None => true,
            Some(Role::LegacyCamera) => report.legacy_camera.as_deref() == Some(&node.path),
            Some(Role::H264Encoder) => report.hardware_encoder.as_deref() == Some(&node.path),
            Some(Role::UvcCamera) => report.uvc_cameras.iter().any(|c| c.node == node.path),
        };
        if let (Some(role), false) = (node.role, sysfs_agrees) {
            report.notes.push(format!(
                "{} answers QUERYCAP as the {} (/sys/class/video4linux did not say so)",
                node.path,
                role.name()
            ));
        }
    }
    report.nodes = nodes;
}

/// The inspected nodes for people, one line each: the nodes with a role in
/// full ([`InspectedNode::summary`]), the others by name on one line. Empty when
/// [`inspect_nodes`] did not run or found no node.
pub fn node_lines(report: &ProbeReport) -> Vec<String> {
    let mut lines = Vec::new();
    let mut others = Vec::new();
    for node in &report.nodes {
        match (&node.role, &node.description, &node.error) {
            (None, Some(d), None) => others.push(format!("{} ({})", node.path, d.capability.card)),
            _ => lines.push(node.summary()),
        }
    }
    if !others.is_empty() {
        lines.push(format!("other video nodes: {}", others.join(", ")));
    }
    lines
}

/// How a file read went.
enum FileRead {
    /// The bytes (at most [`MAX_FILE_BYTES`]).
    Bytes(Vec<u8>),
    /// No such file: normal, nothing to note.
    Missing,
    /// Could not be read; the note was added.
    Failed,
}

/// Reads at most [`MAX_FILE_BYTES`] of `path`; any failure but "not found" is noted.
fn read_file(path: &Path, notes: &mut Vec<String>) -> FileRead {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return FileRead::Missing,
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            return FileRead::Failed;
        }
    };
    let mut bytes = Vec::new();
    match file.take(MAX_FILE_BYTES).read_to_end(&mut bytes) {
        Ok(_) => FileRead::Bytes(bytes),
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            FileRead::Failed
        }
    }
}

/// Reads a text file, decoding invalid UTF-8 lossily (and noting it).
fn read_text(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    match read_file(path, notes) {
        FileRead::Bytes(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(text),
            Err(e) => {
                notes.push(format!(
                    "{} is not valid UTF-8; read it lossily",
                    path.display()
                ));
                Some(String::from_utf8_lossy(e.as_bytes()).into_owned())
            }
        },
        FileRead::Missing | FileRead::Failed => None,
    }
}

/// Reads the files that identify the board.
fn read_model_facts(root: &Path, notes: &mut Vec<String>) -> model::ModelFacts {
    let dt = root.join("proc/device-tree");
    let dt_model = match read_file(&dt.join("model"), notes) {
        FileRead::Bytes(bytes) => {
            let (text, valid) = model::dt_string(&bytes);
            if !valid {
                notes.push(format!(
                    "{} is not valid UTF-8; read it lossily",
                    dt.join("model").display()
                ));
            }
            Some(text)
        }
        FileRead::Missing | FileRead::Failed => None,
    };
    let dt_compatible = match read_file(&dt.join("compatible"), notes) {
        FileRead::Bytes(bytes) => Some(bytes),
        FileRead::Missing | FileRead::Failed => None,
    };
    let revision_path = dt.join("system/linux,revision");
    let dt_revision = match read_file(&revision_path, notes) {
        FileRead::Bytes(bytes) => match <[u8; 4]>::try_from(bytes.as_slice()) {
            Ok(word) => Some(u32::from_be_bytes(word)),
            Err(_) => {
                notes.push(format!(
                    "{} is not a 4-byte number ({} bytes); ignored",
                    revision_path.display(),
                    bytes.len()
                ));
                None
            }
        },
        FileRead::Missing | FileRead::Failed => None,
    };
    let cpuinfo = read_text(&root.join("proc/cpuinfo"), notes)
        .map(|text| model::parse_cpuinfo(&text))
        .unwrap_or_default();
    model::ModelFacts {
        dt_model,
        dt_compatible,
        dt_revision,
        cpuinfo,
    }
}

/// Lists `<root>/sys/class/video4linux/videoN`, sorted by N.
fn list_video_devices(root: &Path, notes: &mut Vec<String>) -> Vec<VideoDevice> {
    let class = root.join("sys/class/video4linux");
    let entries = match fs::read_dir(&class) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            notes.push(format!("cannot list {}: {e}", class.display()));
            return Vec::new();
        }
    };
    let mut found: Vec<(u32, String, PathBuf)> = Vec::new();
    for entry in entries.take(MAX_VIDEO_ENTRIES) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                notes.push(format!("cannot list {}: {e}", class.display()));
                break;
            }
        };
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            notes.push(format!(
                "ignored a video4linux entry whose name is not UTF-8: {:?}",
                file_name
            ));
            continue;
        };
        if let Some(number) = video::video_number(name) {
            found.push((number, name.to_owned(), entry.path()));
        }
    }
    found.sort();
    found
        .into_iter()
        .map(|(_, entry_name, dir)| read_video_device(&entry_name, &dir, notes))
        .collect()
}

/// Reads one `videoN` directory.
fn read_video_device(entry_name: &str, dir: &Path, notes: &mut Vec<String>) -> VideoDevice {
    let name = read_text(&dir.join("name"), notes)
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    let index_path = dir.join("index");
    let index = read_text(&index_path, notes).and_then(|text| {
        let parsed = text.trim().parse::<u32>().ok();
        if parsed.is_none() {
            notes.push(format!(
                "{} is not a number: {:?}",
                index_path.display(),
                model::truncate(text.trim(), 20)
            ));
        }
        parsed
    });
    let driver = read_driver(&dir.join("device"), notes);
    let kind = video::classify(&name, driver.as_deref(), index);
    VideoDevice {
        node: format!("/dev/{entry_name}"),
        name,
        index,
        driver,
        kind,
    }
}

/// The driver of a node's parent device: the `device/driver` symlink's last component,
/// or else the `DRIVER=` line of `device/uevent`. `None` when the node has no parent
/// (the legacy camera) or the parent no driver.
fn read_driver(device: &Path, notes: &mut Vec<String>) -> Option<String> {
    let link = device.join("driver");
    match fs::read_link(&link) {
        Ok(target) => {
            if let Some(driver) = video::driver_from_link(&target) {
                return Some(driver);
            }
            notes.push(format!(
                "{} points to {}, which names no driver",
                link.display(),
                target.display()
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        // Exists but is not a symlink (EINVAL), or cannot be read: try uevent.
        Err(_) => {}
    }
    read_text(&device.join("uevent"), notes).and_then(|text| video::driver_from_uevent(&text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::fake::described::{decoder, encoder, legacy_camera, opener, webcam};

    fn sysfs(node: &str, kind: VideoKind) -> VideoDevice {
        VideoDevice {
            node: node.into(),
            name: String::new(),
            index: Some(0),
            driver: None,
            kind,
        }
    }

    fn report(devices: Vec<VideoDevice>) -> ProbeReport {
        build_report(None, devices, &model::ModelFacts::default(), Vec::new())
    }

    #[test]
    fn inspection_fills_nodes_and_notes() {
        let mut r = report(vec![
            sysfs("/dev/video0", VideoKind::LegacyCamera),
            sysfs("/dev/video10", VideoKind::OtherCodec),
            sysfs("/dev/video11", VideoKind::H264Encoder),
            sysfs("/dev/video12", VideoKind::OtherCodec),
            sysfs("/dev/video13", VideoKind::Other),
        ]);
        let open = opener(vec![
            ("/dev/video0", legacy_camera()),
            ("/dev/video10", decoder()),
            ("/dev/video11", encoder()),
            ("/dev/video13", webcam()),
        ]);
        assert!(r.nodes.is_empty(), "probe alone opens nothing");
        inspect_nodes(&mut r, open.as_ref());
        assert_eq!(r.nodes.len(), 5);
        assert_eq!(r.nodes[0].role, Some(Role::LegacyCamera));
        assert_eq!(r.nodes[2].role, Some(Role::H264Encoder));
        let provenance = &r.nodes[0].description.as_ref().unwrap().provenance;
        assert!(
            provenance.starts_with("recorded by streamer ")
                && provenance.ends_with(" probe on a computer that is not a Raspberry Pi"),
            "{provenance}"
        );
        assert!(
            r.notes
                .iter()
                .any(|n| n.starts_with("could not inspect /dev/video12: cannot open /dev/video12")),
            "{:?}",
            r.notes
        );
        assert!(
            r.notes.contains(
                &"/dev/video13 answers QUERYCAP as the USB camera (/sys/class/video4linux did \
                  not say so)"
                    .to_owned()
            ),
            "{:?}",
            r.notes
        );
        assert!(!r.notes.iter().any(|n| n.contains("/dev/video0 answers")));

        let lines = node_lines(&r);
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("/dev/video0  legacy camera (bm2835 mmal"),
            "{lines:#?}"
        );
        assert!(
            lines[1].starts_with("/dev/video11  H.264 encoder"),
            "{lines:#?}"
        );
        assert!(
            lines[2].starts_with("/dev/video12  video node: error: "),
            "{lines:#?}"
        );
        assert!(
            lines[3].starts_with("/dev/video13  USB camera"),
            "{lines:#?}"
        );
        assert_eq!(
            lines[4],
            "other video nodes: /dev/video10 (bcm2835-codec-decode)"
        );

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["nodes"][0]["role"], "legacy_camera");
        assert_eq!(
            json["nodes"][0]["description"]["capability"]["driver"],
            "bm2835 mmal"
        );
    }

    #[test]
    fn no_nodes_no_lines() {
        let mut r = report(Vec::new());
        inspect_nodes(&mut r, opener(Vec::new()).as_ref());
        assert!(r.nodes.is_empty());
        assert!(node_lines(&r).is_empty());
    }
}
