//! Finding the Raspberry Pi's V4L2 nodes by what they say about themselves
//! (`VIDIOC_QUERYCAP`: driver, card, capabilities), never by their number: node
//! numbers change with the kernel, the device tree and what else is plugged in.
//!
//! Candidates are the `/dev/videoN` nodes `/sys/class/video4linux` lists
//! ([`crate::probe::probe`]'s `video_devices`); an [`Opener`] opens them
//! ([`super::Device::open`] in production, fakes in tests).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::node::{describe, FormatModes, NodeDescription, Opener, Queue, SizeModes};
use super::{fourcc_to_string, sys, Capability, FrameInterval, FrameSize, Node};

/// The legacy camera driver's QUERYCAP driver name: "bm2835 mmal" (sic), as
/// `bcm2835-camera.c` spells it in Raspberry Pi OS kernels.
pub const LEGACY_CAMERA_DRIVER: &str = "bm2835 mmal";
/// The same driver's name in newer mainline kernels, where the typo is fixed.
pub const LEGACY_CAMERA_DRIVER_FIXED: &str = "bcm2835 mmal";
/// The hardware H.264 encoder's QUERYCAP card name (`bcm2835-v4l2-codec.c`).
pub const H264_ENCODER_CARD: &str = "bcm2835-codec-encode";
/// The USB Video Class driver.
pub const UVC_DRIVER: &str = "uvcvideo";

/// Whether `driver` (QUERYCAP) is the legacy camera driver, under either spelling.
pub fn is_legacy_camera_driver(driver: &str) -> bool {
    driver == LEGACY_CAMERA_DRIVER || driver == LEGACY_CAMERA_DRIVER_FIXED
}

/// What the streamer uses a node for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The legacy camera stack's capture node (bcm2835-v4l2): H.264 from the GPU.
    LegacyCamera,
    /// The VideoCore H.264 encoder, a multi-planar memory-to-memory node.
    H264Encoder,
    /// A USB (UVC) camera's capture node (its metadata nodes are not cameras).
    UvcCamera,
}

impl Role {
    /// Every role, in the order reports list them.
    pub const ALL: [Role; 3] = [Role::LegacyCamera, Role::UvcCamera, Role::H264Encoder];

    /// The role a node with this QUERYCAP answer plays, if any.
    pub fn of(capability: &Capability) -> Option<Role> {
        let capture = capability.has(sys::V4L2_CAP_VIDEO_CAPTURE);
        if is_legacy_camera_driver(&capability.driver) && capture {
            Some(Role::LegacyCamera)
        } else if capability.card == H264_ENCODER_CARD
            && capability.has(sys::V4L2_CAP_VIDEO_M2M_MPLANE)
        {
            Some(Role::H264Encoder)
        } else if capability.driver == UVC_DRIVER && capture {
            // Metadata nodes have META_CAPTURE, not VIDEO_CAPTURE, in device_caps.
            Some(Role::UvcCamera)
        } else {
            None
        }
    }

    /// The role in a few words, e.g. `legacy camera`.
    pub fn name(self) -> &'static str {
        match self {
            Role::LegacyCamera => "legacy camera",
            Role::H264Encoder => "H.264 encoder",
            Role::UvcCamera => "USB camera",
        }
    }

    /// What QUERYCAP must say for this role, for messages.
    pub fn criteria(self) -> String {
        match self {
            Role::LegacyCamera => {
                format!(
                    "driver {LEGACY_CAMERA_DRIVER:?} or {LEGACY_CAMERA_DRIVER_FIXED:?} with video capture"
                )
            }
            Role::H264Encoder => {
                format!("card {H264_ENCODER_CARD:?}, a multi-planar memory-to-memory device")
            }
            Role::UvcCamera => format!("driver {UVC_DRIVER:?} with video capture"),
        }
    }
}

/// Opens each candidate in turn and returns the first whose QUERYCAP answer gives
/// it `role`, still open. The error says, in plain words, what every candidate
/// turned out to be.
pub fn find(
    role: Role,
    candidates: &[PathBuf],
    opener: &Opener,
) -> Result<(PathBuf, Box<dyn Node>), String> {
    let mut seen = Vec::new();
    for path in candidates {
        match opener(path) {
            Ok(node) => {
                let capability = node.capability();
                if Role::of(capability) == Some(role) {
                    return Ok((path.clone(), node));
                }
                seen.push(format!("{} is {}", path.display(), identity(capability)));
            }
            Err(e) => seen.push(e.to_string()),
        }
    }
    let wanted = format!("no {} ({})", role.name(), role.criteria());
    if seen.is_empty() {
        Err(format!(
            "{wanted}: there are no video devices (/sys/class/video4linux lists none)"
        ))
    } else {
        Err(format!(
            "{wanted} among {} video device{}: {}",
            seen.len(),
            if seen.len() == 1 { "" } else { "s" },
            seen.join("; ")
        ))
    }
}

/// `driver "x", card "y"`, for messages.
fn identity(capability: &Capability) -> String {
    format!("driver {:?}, card {:?}", capability.driver, capability.card)
}

/// One candidate node as [`inspect`] found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectedNode {
    /// The device node, e.g. `/dev/video0`.
    pub path: String,
    /// What the streamer would use it for, if anything.
    #[serde(default)]
    pub role: Option<Role>,
    /// What it says about itself; `None` when it could not be opened. When
    /// describing it failed part way, this holds what QUERYCAP said and `error`
    /// says why the rest is missing.
    #[serde(default)]
    pub description: Option<NodeDescription>,
    /// Why the node could not be opened or described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Opens every candidate in turn (one at a time, each closed again) and asks it
/// everything it says about itself ([`describe`]). Never fails: problems are in
/// each entry's `error`.
pub fn inspect(candidates: &[PathBuf], opener: &Opener) -> Vec<InspectedNode> {
    candidates
        .iter()
        .map(|path| inspect_one(path, opener))
        .collect()
}

fn inspect_one(path: &Path, opener: &Opener) -> InspectedNode {
    let node = match opener(path) {
        Ok(node) => node,
        Err(e) => {
            return InspectedNode {
                path: path.display().to_string(),
                role: None,
                description: None,
                error: Some(e.to_string()),
            }
        }
    };
    let role = Role::of(node.capability());
    let (description, error) = match describe(node.as_ref()) {
        Ok(description) => (description, None),
        Err(e) => (
            NodeDescription {
                provenance: String::new(),
                path: path.display().to_string(),
                capability: node.capability().clone(),
                queues: Vec::new(),
                controls: Vec::new(),
            },
            Some(e.to_string()),
        ),
    };
    InspectedNode {
        path: path.display().to_string(),
        role,
        description: Some(description),
        error,
    }
}

impl InspectedNode {
    /// One line for people, e.g. `/dev/video0  legacy camera (bm2835 mmal, mmal
    /// service 16.1): H264 32x32-2592x1944 at 1-90 fps; YU12 ...`. Cameras list
    /// their capture formats with sizes and frame rates, the encoder its coded
    /// formats and then the raw formats it takes.
    pub fn summary(&self) -> String {
        let mut line = self.path.clone();
        line.push_str("  ");
        line.push_str(self.role.map_or("video node", Role::name));
        if let Some(d) = &self.description {
            let _ = write!(line, " ({}, {})", d.capability.driver, d.capability.card);
        }
        let mut parts = Vec::new();
        if let Some(d) = &self.description {
            let (coded, raw) = if d.capability.has(sys::V4L2_CAP_VIDEO_M2M_MPLANE) {
                (Queue::CaptureMplane, Some(Queue::OutputMplane))
            } else if d.capability.has(sys::V4L2_CAP_VIDEO_M2M) {
                (Queue::Capture, Some(Queue::Output))
            } else if !d.formats(Queue::Capture).is_empty() {
                (Queue::Capture, None)
            } else {
                (Queue::CaptureMplane, None)
            };
            let formats: Vec<String> = d.formats(coded).iter().map(format_modes).collect();
            if !formats.is_empty() {
                parts.push(formats.join("; "));
            }
            if let Some(raw) = raw {
                let inputs: Vec<String> = d
                    .formats(raw)
                    .iter()
                    .map(|f| fourcc_to_string(f.format.pixelformat))
                    .collect();
                if !inputs.is_empty() {
                    parts.push(format!("from {}", inputs.join(" ")));
                }
            }
            if parts.is_empty() && self.error.is_none() {
                parts.push("no formats listed".to_owned());
            }
        }
        if let Some(error) = &self.error {
            parts.push(format!("error: {error}"));
        }
        if !parts.is_empty() {
            line.push_str(": ");
            line.push_str(&parts.join("; "));
        }
        line
    }
}

/// `H264 32x32-2592x1944 at 1-90 fps`.
fn format_modes(modes: &FormatModes) -> String {
    let mut text = fourcc_to_string(modes.format.pixelformat);
    if let Some(sizes) = sizes_text(&modes.sizes) {
        text.push(' ');
        text.push_str(&sizes);
    }
    if let Some(rates) = rates_text(&modes.sizes) {
        text.push_str(" at ");
        text.push_str(&rates);
    }
    text
}

/// The sizes: all of up to three discrete ones, else the smallest to the largest.
fn sizes_text(sizes: &[SizeModes]) -> Option<String> {
    let mut discrete = Vec::new();
    let mut ranges = Vec::new();
    for s in sizes {
        match s.size {
            FrameSize::Discrete { width, height } => discrete.push((width, height)),
            FrameSize::Stepwise {
                min_width,
                max_width,
                min_height,
                max_height,
                ..
            } => ranges.push(format!("{min_width}x{min_height}-{max_width}x{max_height}")),
        }
    }
    if discrete.len() > 3 {
        let area = |&(w, h): &(u32, u32)| u64::from(w) * u64::from(h);
        let smallest = discrete.iter().min_by_key(|s| area(s))?;
        let largest = discrete.iter().max_by_key(|s| area(s))?;
        ranges.push(format!(
            "{}x{}-{}x{} ({} sizes)",
            smallest.0,
            smallest.1,
            largest.0,
            largest.1,
            discrete.len()
        ));
    } else {
        ranges.extend(discrete.iter().map(|(w, h)| format!("{w}x{h}")));
    }
    (!ranges.is_empty()).then(|| ranges.join(","))
}

/// The frame rates over all sizes: `30 fps`, or `1-90 fps`.
fn rates_text(sizes: &[SizeModes]) -> Option<String> {
    let mut rates = Vec::new();
    for interval in sizes.iter().flat_map(|s| &s.intervals) {
        match interval {
            FrameInterval::Discrete(f) => rates.extend(fps(f.numerator, f.denominator)),
            FrameInterval::Stepwise { min, max, .. } => {
                rates.extend(fps(min.numerator, min.denominator));
                rates.extend(fps(max.numerator, max.denominator));
            }
        }
    }
    let low = rates.iter().copied().reduce(f64::min)?;
    let high = rates.iter().copied().reduce(f64::max)?;
    if (high - low).abs() < 0.005 {
        Some(format!("{} fps", rate_text(low)))
    } else {
        Some(format!("{}-{} fps", rate_text(low), rate_text(high)))
    }
}

/// Frames per second of an interval of `numerator / denominator` seconds.
fn fps(numerator: u32, denominator: u32) -> Option<f64> {
    (numerator != 0 && denominator != 0).then(|| f64::from(denominator) / f64::from(numerator))
}

/// `30`, `29.97`.
fn rate_text(rate: f64) -> String {
    let text = format!("{rate:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Test helpers other modules' tests use too: a [`Node`] answering from a
/// [`NodeDescription`], sample descriptions, and an opener over them.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::fake::described::*;

    #[test]
    fn roles_come_from_querycap() {
        assert_eq!(
            Role::of(&legacy_camera().capability),
            Some(Role::LegacyCamera)
        );
        assert_eq!(Role::of(&encoder().capability), Some(Role::H264Encoder));
        assert_eq!(Role::of(&webcam().capability), Some(Role::UvcCamera));
        assert_eq!(Role::of(&webcam_metadata().capability), None);
        assert_eq!(Role::of(&decoder().capability), None);
        // The right driver without video capture is no camera.
        let mut odd = legacy_camera().capability;
        odd.device_caps = sys::V4L2_CAP_VIDEO_OUTPUT;
        assert_eq!(Role::of(&odd), None);
        // The encoder's card on a single-planar node is not the encoder we drive.
        let mut odd = encoder().capability;
        odd.device_caps = sys::V4L2_CAP_VIDEO_M2M;
        assert_eq!(Role::of(&odd), None);
        // Newer kernels fixed the driver name's typo: both spellings are the camera.
        let mut fixed = legacy_camera().capability;
        fixed.driver = "bcm2835 mmal".into();
        assert_eq!(Role::of(&fixed), Some(Role::LegacyCamera));
        let mut other = legacy_camera().capability;
        other.driver = "bcm2835-isp".into();
        assert_eq!(Role::of(&other), None);
    }

    #[test]
    fn find_ignores_node_numbers() {
        // The encoder is video3 here, the camera video20: numbers mean nothing.
        let open = opener(vec![
            ("/dev/video3", encoder()),
            ("/dev/video7", decoder()),
            ("/dev/video20", legacy_camera()),
            ("/dev/video21", webcam_metadata()),
            ("/dev/video22", webcam()),
        ]);
        let candidates = paths(&[
            "/dev/video3",
            "/dev/video7",
            "/dev/video20",
            "/dev/video21",
            "/dev/video22",
        ]);
        let (path, node) = find(Role::H264Encoder, &candidates, &open).unwrap();
        assert_eq!(path, PathBuf::from("/dev/video3"));
        assert_eq!(node.capability().card, H264_ENCODER_CARD);
        let (path, node) = find(Role::LegacyCamera, &candidates, &open).unwrap();
        assert_eq!(path, PathBuf::from("/dev/video20"));
        assert_eq!(node.path(), Path::new("/dev/video20"));
        let (path, _) = find(Role::UvcCamera, &candidates, &open).unwrap();
        assert_eq!(path, PathBuf::from("/dev/video22"), "metadata node skipped");
    }

    #[test]
    fn find_says_what_it_looked_at() {
        let open = opener(vec![("/dev/video10", decoder()), ("/dev/video0", webcam())]);
        let candidates = paths(&["/dev/video0", "/dev/video10", "/dev/video99"]);
        let err = match find(Role::LegacyCamera, &candidates, &open) {
            Ok(_) => panic!("found a legacy camera"),
            Err(e) => e,
        };
        assert!(
            err.starts_with(
                "no legacy camera (driver \"bm2835 mmal\" or \"bcm2835 mmal\" with video capture) \
                 among 3 video devices: "
            ),
            "{err}"
        );
        assert!(
            err.contains("/dev/video0 is driver \"uvcvideo\", card \"HD Webcam C525\""),
            "{err}"
        );
        assert!(
            err.contains("/dev/video10 is driver \"bcm2835-codec\", card \"bcm2835-codec-decode\""),
            "{err}"
        );
        assert!(err.contains("cannot open /dev/video99: "), "{err}");

        let err = match find(Role::H264Encoder, &[], &open) {
            Ok(_) => panic!("found an encoder"),
            Err(e) => e,
        };
        assert!(err.contains("there are no video devices"), "{err}");
        assert!(err.contains("bcm2835-codec-encode"), "{err}");
    }

    #[test]
    fn inspect_describes_every_node() {
        let open = opener(vec![
            ("/dev/video0", legacy_camera()),
            ("/dev/video10", decoder()),
            ("/dev/video11", encoder()),
        ]);
        let found = inspect(
            &paths(&[
                "/dev/video0",
                "/dev/video10",
                "/dev/video11",
                "/dev/video12",
            ]),
            &open,
        );
        assert_eq!(found.len(), 4);
        assert_eq!(found[0].role, Some(Role::LegacyCamera));
        let camera = found[0].description.as_ref().unwrap();
        assert_eq!(camera.path, "/dev/video0");
        let h264 = camera
            .format(Queue::Capture, sys::V4L2_PIX_FMT_H264)
            .unwrap();
        assert_eq!(h264.sizes.len(), 1);
        assert_eq!(h264.sizes[0].intervals.len(), 1);
        assert_eq!(found[1].role, None);
        assert!(found[1].description.is_some());
        assert_eq!(found[2].role, Some(Role::H264Encoder));
        let enc = found[2].description.as_ref().unwrap();
        assert_eq!(enc.formats(Queue::OutputMplane).len(), 2);
        assert!(enc.formats(Queue::Capture).is_empty());
        assert_eq!(found[3].description, None);
        assert!(found[3].error.as_deref().unwrap().contains("/dev/video12"));

        // The JSON round-trips (it is what `streamer probe --json` prints).
        let json = serde_json::to_string(&found).unwrap();
        let back: Vec<InspectedNode> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, found);
        assert!(json.contains("\"role\":\"legacy_camera\""), "{json}");
    }

    #[test]
    fn summaries_are_one_readable_line() {
        let open = opener(vec![
            ("/dev/video0", legacy_camera()),
            ("/dev/video11", encoder()),
            ("/dev/video2", webcam()),
            ("/dev/video3", webcam_metadata()),
        ]);
        let found = inspect(
            &paths(&[
                "/dev/video0",
                "/dev/video11",
                "/dev/video2",
                "/dev/video3",
                "/dev/video9",
            ]),
            &open,
        );
        let lines: Vec<String> = found.iter().map(InspectedNode::summary).collect();
        assert_eq!(
            lines[0],
            "/dev/video0  legacy camera (bm2835 mmal, mmal service 16.1): \
             H264 32x32-2592x1944 at 1-90 fps; YU12 32x32-2592x1944 at 1-90 fps"
        );
        assert_eq!(
            lines[1],
            "/dev/video11  H.264 encoder (bcm2835-codec, bcm2835-codec-encode): \
             H264 32x32-1920x1920; from YU12 NV12"
        );
        assert_eq!(
            lines[2],
            "/dev/video2  USB camera (uvcvideo, HD Webcam C525): \
             YUYV 160x120-1280x720 (4 sizes) at 5-30 fps; MJPG 1280x720 at 30 fps"
        );
        assert_eq!(
            lines[3],
            "/dev/video3  video node (uvcvideo, HD Webcam C525): no formats listed"
        );
        assert!(
            lines[4].starts_with("/dev/video9  video node: error: cannot open /dev/video9"),
            "{}",
            lines[4]
        );
    }

    #[test]
    fn frame_rates_read_naturally() {
        assert_eq!(rate_text(30.0), "30");
        assert_eq!(rate_text(30000.0 / 1001.0), "29.97");
        assert_eq!(rate_text(7.5), "7.5");
        assert_eq!(fps(0, 30), None);
        assert_eq!(fps(1, 0), None);
        assert_eq!(rates_text(&[]), None);
        assert_eq!(sizes_text(&[]), None);
    }
}
