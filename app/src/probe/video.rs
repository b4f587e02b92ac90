//! Video4Linux devices, from `/sys/class/video4linux` (no ioctls, nothing opened).
//!
//! Each `videoN` entry there has a `name` file (the `video_device` name the driver
//! gave; not always the card name `VIDIOC_QUERYCAP` reports), an `index` file (the
//! node's number among the nodes of the same parent device), and, unless the driver
//! registered it without a parent, a `device` link to the parent whose `driver` link
//! names the driver. Node numbers are never assumed: `/dev/video11` is the encoder
//! only because its name says so.

use serde::Serialize;

/// What a video node is, judged from its name and driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoKind {
    /// The legacy (MMAL, `bcm2835-v4l2` module) camera driver's capture node: the
    /// firmware camera stack, which can deliver H.264 itself.
    LegacyCamera,
    /// The VideoCore H.264 encoder, a memory-to-memory node (`bcm2835-codec-encode`).
    H264Encoder,
    /// Another memory-to-memory node (decoder, ISP, image effects, JPEG encoder, the
    /// Pi 4/5 HEVC decoder, the Pi 5 ISP back end): listed, not used.
    OtherCodec,
    /// A USB (UVC) camera's capture node.
    UvcCamera,
    /// A UVC camera's metadata node (odd `index`): not a picture source.
    UvcMetadata,
    /// A CSI-2 receiver node of the modern camera stack (`unicam` on Pi 0-4,
    /// `rp1-cfe` on Pi 5): the camera is driven by libcamera (`rpicam-vid`).
    CsiReceiver,
    /// Anything else.
    Other,
}

/// One `/sys/class/video4linux/videoN` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VideoDevice {
    /// The device node, e.g. `/dev/video11` (the entry's name under `/dev`).
    pub node: String,
    /// The `name` attribute, e.g. `bcm2835-codec-encode` or a webcam's product name.
    pub name: String,
    /// The `index` attribute, when readable.
    pub index: Option<u32>,
    /// The driver bound to the parent device (`uvcvideo`, `bcm2835-codec`, ...), when
    /// the node has a parent with a driver.
    pub driver: Option<String>,
    /// What the node is.
    pub kind: VideoKind,
}

/// Drivers of memory-to-memory nodes that are not the H.264 encoder.
const OTHER_CODEC_DRIVERS: &[&str] = &[
    "bcm2835-codec",
    "bcm2835-isp",
    "rpivid",
    "rpi-hevc-dec",
    "pispbe",
];

/// Name prefixes of the same.
const OTHER_CODEC_NAMES: &[&str] = &[
    "bcm2835-codec",
    "bcm2835-isp",
    "rpivid",
    "rpi-hevc-dec",
    "pispbe",
];

/// Classifies a node from its `name`, `driver` (if any) and `index` (if known).
pub fn classify(name: &str, driver: Option<&str>, index: Option<u32>) -> VideoKind {
    if name == "bcm2835-codec-encode" {
        return VideoKind::H264Encoder;
    }
    match driver {
        Some("bcm2835-v4l2") | Some("bcm2835-camera") => return VideoKind::LegacyCamera,
        Some("unicam") | Some("rp1-cfe") => return VideoKind::CsiReceiver,
        Some("uvcvideo") => {
            // uvcvideo registers each stream's capture node and then its metadata
            // node on one v4l2_device, so capture nodes get even indexes.
            return if index.is_some_and(|i| i % 2 == 1) {
                VideoKind::UvcMetadata
            } else {
                VideoKind::UvcCamera
            };
        }
        Some(d) if OTHER_CODEC_DRIVERS.contains(&d) => return VideoKind::OtherCodec,
        _ => {}
    }
    if name.starts_with("mmal service") {
        return VideoKind::LegacyCamera;
    }
    // The legacy camera driver registers `camera0` without a parent device, so it has
    // no driver link; its name is all there is.
    if driver.is_none() && is_legacy_camera_name(name) {
        return VideoKind::LegacyCamera;
    }
    if name.starts_with("unicam-") || name.starts_with("rp1-cfe-") {
        return VideoKind::CsiReceiver;
    }
    if OTHER_CODEC_NAMES.iter().any(|p| name.starts_with(p)) {
        return VideoKind::OtherCodec;
    }
    VideoKind::Other
}

/// `camera` followed by digits: the legacy camera driver's node name.
fn is_legacy_camera_name(name: &str) -> bool {
    name.strip_prefix("camera")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The number of a `videoN` entry name, `None` for anything else (`v4l-subdev0`,
/// `vbi0`, `video`, `videox`).
pub fn video_number(entry: &str) -> Option<u32> {
    let digits = entry.strip_prefix("video")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The driver name from a `device/driver` link target (its last path component).
pub fn driver_from_link(target: &std::path::Path) -> Option<String> {
    let name = target.file_name()?.to_str()?;
    if name.is_empty() {
        None
    } else {
        Some(name.to_owned())
    }
}

/// The `DRIVER=` line of a `uevent` file.
pub fn driver_from_uevent(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("DRIVER="))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn classification() {
        let k = |name, driver, index| classify(name, driver, index);
        assert_eq!(
            k("bcm2835-codec-encode", Some("bcm2835-codec"), Some(0)),
            VideoKind::H264Encoder
        );
        assert_eq!(
            k("bcm2835-codec-encode", None, None),
            VideoKind::H264Encoder
        );
        for name in [
            "bcm2835-codec-decode",
            "bcm2835-codec-isp",
            "bcm2835-codec-image_fx",
            "bcm2835-codec-encode_image",
        ] {
            assert_eq!(
                k(name, Some("bcm2835-codec"), Some(0)),
                VideoKind::OtherCodec,
                "{name}"
            );
        }
        assert_eq!(k("camera0", None, Some(0)), VideoKind::LegacyCamera);
        assert_eq!(k("camera0", Some("vivid"), Some(0)), VideoKind::Other);
        assert_eq!(k("cameraX", None, Some(0)), VideoKind::Other);
        assert_eq!(k("mmal service 16.1", None, None), VideoKind::LegacyCamera);
        assert_eq!(
            k("anything", Some("bcm2835-v4l2"), None),
            VideoKind::LegacyCamera
        );
        assert_eq!(
            k("unicam-image", Some("unicam"), Some(0)),
            VideoKind::CsiReceiver
        );
        assert_eq!(k("unicam-embedded", None, Some(1)), VideoKind::CsiReceiver);
        assert_eq!(
            k("rp1-cfe-csi2-ch0", Some("rp1-cfe"), Some(0)),
            VideoKind::CsiReceiver
        );
        assert_eq!(
            k("HD Pro Webcam C920", Some("uvcvideo"), Some(0)),
            VideoKind::UvcCamera
        );
        assert_eq!(
            k("HD Pro Webcam C920", Some("uvcvideo"), Some(1)),
            VideoKind::UvcMetadata
        );
        assert_eq!(k("Webcam", Some("uvcvideo"), None), VideoKind::UvcCamera);
        assert_eq!(
            k("pispbe-output0", Some("pispbe"), Some(0)),
            VideoKind::OtherCodec
        );
        assert_eq!(k("rpivid", None, Some(0)), VideoKind::OtherCodec);
        assert_eq!(
            k("vivid-000-vid-cap", Some("vivid"), Some(0)),
            VideoKind::Other
        );
        assert_eq!(k("", None, None), VideoKind::Other);
    }

    #[test]
    fn entry_names() {
        assert_eq!(video_number("video0"), Some(0));
        assert_eq!(video_number("video31"), Some(31));
        assert_eq!(video_number("video"), None);
        assert_eq!(video_number("video1a"), None);
        assert_eq!(video_number("video-1"), None);
        assert_eq!(video_number("v4l-subdev0"), None);
        assert_eq!(video_number("video99999999999"), None);
    }

    #[test]
    fn drivers() {
        assert_eq!(
            driver_from_link(Path::new("../../../../bus/usb/drivers/uvcvideo")).as_deref(),
            Some("uvcvideo")
        );
        assert_eq!(driver_from_link(Path::new("/")), None);
        assert_eq!(driver_from_link(Path::new("..")), None);
        assert_eq!(
            driver_from_uevent("MAJOR=81\nDRIVER=uvcvideo\nPRODUCT=46d/825/12\n").as_deref(),
            Some("uvcvideo")
        );
        assert_eq!(driver_from_uevent("DRIVER=\n"), None);
        assert_eq!(driver_from_uevent("MAJOR=81\n"), None);
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parsers_never_panic(
                name in ".{0,64}",
                driver in proptest::option::of(".{0,32}"),
                index in proptest::option::of(any::<u32>()),
            ) {
                let _ = classify(&name, driver.as_deref(), index);
                let _ = video_number(&name);
                let _ = driver_from_uevent(&name);
                let _ = driver_from_link(std::path::Path::new(&name));
            }
        }
    }
}
