//! Choosing a camera mode: pixel format, frame size and frame interval for what
//! the configuration asks, from what a V4L2 node offers ([`FormatModes`], as
//! [`crate::v4l2::describe`] or a fixture gives them). Pure: no device, no clock.
//!
//! Discrete sizes must match exactly (a refusal names the nearest offered ones);
//! stepwise sizes are checked against their range and step. Frame intervals are
//! checked the same way. The legacy camera's H.264 has an extra limit (the GPU
//! encoder's 1920x1080, even sizes), given as [`H264Limit`]. Refusals are plain
//! words naming what the camera offers and the setting to change.

use crate::v4l2::{fourcc_to_string, sys, FormatModes, Fraction, FrameInterval, FrameSize};

/// What the configuration asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeRequest {
    /// `camera.width`.
    pub width: u32,
    /// `camera.height`.
    pub height: u32,
    /// `camera.framerate`, frames per second.
    pub fps: u32,
    /// Acceptable pixel formats, most preferred first.
    pub formats: Vec<u32>,
    /// An extra limit on H.264 sizes (the legacy camera's GPU encoder).
    pub h264_limit: Option<H264Limit>,
}

/// The largest H.264 picture an encoder makes; sizes must also be even.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct H264Limit {
    /// Largest width.
    pub max_width: u32,
    /// Largest height.
    pub max_height: u32,
}

/// The VideoCore GPU encoder behind the legacy camera: at most 1920x1080.
pub const GPU_H264_LIMIT: H264Limit = H264Limit {
    max_width: 1920,
    max_height: 1080,
};

/// The chosen mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// The pixel format's fourcc.
    pub pixelformat: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Seconds per frame to ask for with `VIDIOC_S_PARM` (`1/fps`).
    pub interval: Fraction,
}

/// A format's name for people: "H.264", "YUYV", ...
pub fn format_name(pixelformat: u32) -> String {
    if pixelformat == sys::V4L2_PIX_FMT_H264 {
        "H.264".to_string()
    } else if pixelformat == sys::V4L2_PIX_FMT_MJPEG {
        "MJPEG".to_string()
    } else {
        fourcc_to_string(pixelformat)
    }
}

/// Chooses the mode for `request` from `offered` (one queue's formats). The first
/// format of `request.formats` that the node offers at the requested size and
/// rate wins; when none does, the error says, for every acceptable format the
/// node offers, why not.
pub fn select(offered: &[FormatModes], request: &ModeRequest) -> Result<Mode, String> {
    let mut reasons = Vec::new();
    for &pixelformat in &request.formats {
        let Some(modes) = offered.iter().find(|f| f.format.pixelformat == pixelformat) else {
            continue;
        };
        match fit(modes, request) {
            Ok(mode) => return Ok(mode),
            Err(reason) => reasons.push(reason),
        }
    }
    if reasons.is_empty() {
        let offered_names: Vec<String> = offered
            .iter()
            .map(|f| format_name(f.format.pixelformat))
            .collect();
        let wanted: Vec<String> = request.formats.iter().map(|&f| format_name(f)).collect();
        return Err(format!(
            "the camera offers {}; the streamer needs one of {}",
            if offered_names.is_empty() {
                "no formats".to_string()
            } else {
                offered_names.join(", ")
            },
            wanted.join(", ")
        ));
    }
    Err(reasons.join("; "))
}

/// The mode of one format, or why it does not fit.
fn fit(modes: &FormatModes, request: &ModeRequest) -> Result<Mode, String> {
    let pixelformat = modes.format.pixelformat;
    let name = format_name(pixelformat);
    let (width, height, fps) = (request.width, request.height, request.fps);
    let asked = format!("camera.width x camera.height = {width}x{height}");
    if fps == 0 {
        return Err("camera.framerate = 0 is no frame rate".to_string());
    }
    let limit = if pixelformat == sys::V4L2_PIX_FMT_H264 {
        request.h264_limit
    } else {
        None
    };
    if let Some(limit) = limit {
        if width % 2 != 0 || height % 2 != 0 {
            return Err(format!(
                "the camera's {name} needs even sizes; {asked} is not"
            ));
        }
        if width > limit.max_width || height > limit.max_height {
            return Err(format!(
                "the camera's {name} encoder makes at most {}x{}; {asked} is larger",
                limit.max_width, limit.max_height
            ));
        }
    }
    let interval = Fraction {
        numerator: 1,
        denominator: fps,
    };
    let mode = Mode {
        pixelformat,
        width,
        height,
        interval,
    };
    if modes.sizes.is_empty() {
        // The driver does not enumerate: S_FMT will say what it takes.
        return Ok(mode);
    }
    let discrete: Vec<(u32, u32)> = modes
        .sizes
        .iter()
        .filter_map(|s| match s.size {
            FrameSize::Discrete { width, height } => Some((width, height)),
            FrameSize::Stepwise { .. } => None,
        })
        .collect();
    let mut stepwise_reasons = Vec::new();
    let mut matched = None;
    for size in &modes.sizes {
        // The asked size is within the encoder's limit (checked above), so the
        // limit matters only for what a refusal says the camera offers.
        if size.size.contains(width, height) {
            matched = Some(size);
            break;
        }
        if let FrameSize::Stepwise {
            min_width,
            max_width,
            step_width,
            min_height,
            max_height,
            step_height,
        } = size.size
        {
            let (max_width, max_height) = match limit {
                Some(l) => (max_width.min(l.max_width), max_height.min(l.max_height)),
                None => (max_width, max_height),
            };
            let steps = if step_width <= 1 && step_height <= 1 {
                String::new()
            } else {
                format!(" in steps of {}x{}", step_width.max(1), step_height.max(1))
            };
            stepwise_reasons.push(format!(
                "the camera offers {name} from {min_width}x{min_height} to {max_width}x{max_height}{steps}; {asked} is not one of those sizes"
            ));
        }
    }
    let Some(size) = matched else {
        if !discrete.is_empty() {
            let listed: Vec<String> = discrete.iter().map(|(w, h)| format!("{w}x{h}")).collect();
            let nearest = nearest(&discrete, width, height);
            let mut text = format!(
                "the camera offers {name} at {}; {asked} is none of them",
                listed.join(", ")
            );
            if !nearest.is_empty() {
                text.push_str(&format!(" (nearest: {})", nearest.join(" or ")));
            }
            stepwise_reasons.insert(0, text);
        }
        return Err(stepwise_reasons.join("; "));
    };
    if size.intervals.is_empty() {
        return Ok(mode);
    }
    let mut offered_rates = Vec::new();
    for offer in &size.intervals {
        match *offer {
            FrameInterval::Discrete(f) => {
                if same_rate(f, fps) {
                    return Ok(Mode {
                        interval: f,
                        ..mode
                    });
                }
                offered_rates.push(rate_text(f));
            }
            FrameInterval::Stepwise { min, max, step } => {
                if interval_in_range(interval, min, max, step) {
                    return Ok(mode);
                }
                offered_rates.push(format!("{} to {}", rate_text(max), rate_text(min)));
            }
        }
    }
    Err(format!(
        "the camera offers {name} {width}x{height} at {} frames per second; camera.framerate = {fps} is not one of them",
        offered_rates.join(", ")
    ))
}

/// Up to two offered sizes nearest to the request by area: the largest smaller
/// one and the smallest larger one.
fn nearest(sizes: &[(u32, u32)], width: u32, height: u32) -> Vec<String> {
    let area = |w: u32, h: u32| u64::from(w) * u64::from(h);
    let want = area(width, height);
    let below = sizes
        .iter()
        .filter(|(w, h)| area(*w, *h) <= want)
        .max_by_key(|(w, h)| area(*w, *h));
    let above = sizes
        .iter()
        .filter(|(w, h)| area(*w, *h) > want)
        .min_by_key(|(w, h)| area(*w, *h));
    below
        .into_iter()
        .chain(above)
        .map(|(w, h)| format!("{w}x{h}"))
        .collect()
}

/// Whether `interval` seconds per frame is `fps` frames per second, within 1 %
/// (UVC cameras state intervals in 100 ns units: 30 fps is 333333/10000000).
fn same_rate(interval: Fraction, fps: u32) -> bool {
    if interval.numerator == 0 || interval.denominator == 0 {
        return false;
    }
    let offered = f64::from(interval.denominator) / f64::from(interval.numerator);
    (offered - f64::from(fps)).abs() <= f64::from(fps) * 0.01
}

/// A frame interval as a frame rate for people: "30", "7.5".
fn rate_text(interval: Fraction) -> String {
    if interval.numerator == 0 {
        return "?".to_string();
    }
    let rate = f64::from(interval.denominator) / f64::from(interval.numerator);
    let text = format!("{rate:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Whether `interval` lies in `min..=max`. A step of 1/1 (what drivers report for
/// a continuous range, bcm2835-v4l2 among them) or 0 means any interval in range;
/// other steps must be met exactly.
fn interval_in_range(interval: Fraction, min: Fraction, max: Fraction, step: Fraction) -> bool {
    let value = |f: Fraction| (u128::from(f.numerator), u128::from(f.denominator));
    let (a, b) = value(interval);
    let (c, d) = value(min);
    let (e, f) = value(max);
    if b == 0 || d == 0 || f == 0 {
        return false;
    }
    // a/b >= c/d and a/b <= e/f
    if a * d < c * b || a * f > e * b {
        return false;
    }
    let (s, t) = value(step);
    if s == 0 || t == 0 || s == t {
        return true;
    }
    // (a/b - c/d) / (s/t) = (a*d - c*b) * t / (b*d*s) must be whole.
    let numerator = (a * d - c * b) * t;
    let denominator = b * d * s;
    numerator.is_multiple_of(denominator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::{FormatDesc, NodeDescription, Queue, SizeModes};

    fn fixture(name: &str) -> NodeDescription {
        let path = format!(
            "{}/tests/fixtures/v4l2/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn request(width: u32, height: u32, fps: u32, formats: &[u32]) -> ModeRequest {
        ModeRequest {
            width,
            height,
            fps,
            formats: formats.to_vec(),
            h264_limit: None,
        }
    }

    const H264: u32 = sys::V4L2_PIX_FMT_H264;
    const YUYV: u32 = sys::V4L2_PIX_FMT_YUYV;
    const NV12: u32 = sys::V4L2_PIX_FMT_NV12;
    const YU12: u32 = sys::V4L2_PIX_FMT_YUV420;

    #[test]
    fn legacy_h264_takes_any_even_size_up_to_1080p() {
        for sensor in ["legacy-ov5647", "legacy-imx219", "legacy-imx477"] {
            let desc = fixture(sensor);
            let offered = desc.formats(Queue::Capture);
            let mut want = request(1280, 720, 30, &[H264]);
            want.h264_limit = Some(GPU_H264_LIMIT);
            let mode = select(offered, &want).unwrap();
            assert_eq!(
                (mode.pixelformat, mode.width, mode.height),
                (H264, 1280, 720)
            );
            assert_eq!(
                mode.interval,
                Fraction {
                    numerator: 1,
                    denominator: 30
                }
            );
            want.width = 1920;
            want.height = 1080;
            assert!(select(offered, &want).is_ok());
            // Larger than the GPU encoder, though the sensor has more pixels.
            want.width = 2592;
            want.height = 1944;
            let why = select(offered, &want).unwrap_err();
            assert!(why.contains("at most 1920x1080"), "{why}");
            assert!(why.contains("2592x1944"), "{why}");
            // Odd sizes.
            want.width = 1279;
            want.height = 720;
            let why = select(offered, &want).unwrap_err();
            assert!(why.contains("even"), "{why}");
            // 90 fps is the driver's fastest, 91 is beyond it.
            want.width = 640;
            want.height = 480;
            want.fps = 90;
            assert!(select(offered, &want).is_ok());
            want.fps = 91;
            let why = select(offered, &want).unwrap_err();
            assert!(why.contains("1 to 90 frames per second"), "{why}");
            assert!(why.contains("camera.framerate = 91"), "{why}");
        }
    }

    #[test]
    fn stepwise_sizes_are_checked_against_range_and_step() {
        let desc = fixture("legacy-ov5647");
        let offered = desc.formats(Queue::Capture);
        // YUYV has no GPU encoder limit, but the sensor's.
        let ok = select(offered, &request(2592, 1944, 15, &[YUYV])).unwrap();
        assert_eq!((ok.width, ok.height), (2592, 1944));
        let why = select(offered, &request(2600, 1944, 15, &[YUYV])).unwrap_err();
        assert!(
            why.contains("from 32x32 to 2592x1944 in steps of 2x2"),
            "{why}"
        );
        let why = select(offered, &request(16, 16, 15, &[YUYV])).unwrap_err();
        assert!(why.contains("16x16"), "{why}");
    }

    #[test]
    fn discrete_sizes_must_match_and_the_nearest_are_named() {
        let desc = fixture("uvc-c920");
        let offered = desc.formats(Queue::Capture);
        let mode = select(offered, &request(1920, 1080, 30, &[H264, YUYV])).unwrap();
        assert_eq!(mode.pixelformat, H264);
        assert_eq!(
            mode.interval,
            Fraction {
                numerator: 1,
                denominator: 30
            }
        );
        let why = select(offered, &request(1600, 900, 30, &[H264])).unwrap_err();
        assert!(
            why.contains("the camera offers H.264 at 640x480, 160x90"),
            "{why}"
        );
        assert!(why.contains("1600x900 is none of them"), "{why}");
        assert!(why.contains("nearest: 1600x896 or 1920x1080"), "{why}");
    }

    #[test]
    fn preference_order_falls_back_to_a_format_that_fits() {
        let desc = fixture("uvc-c920");
        let offered = desc.formats(Queue::Capture);
        // H.264 stops at 1920x1080; YUYV goes to 2304x1536 at 2 fps.
        let mode = select(offered, &request(2304, 1536, 2, &[H264, YUYV])).unwrap();
        assert_eq!(mode.pixelformat, YUYV);
        assert_eq!(
            mode.interval,
            Fraction {
                numerator: 1,
                denominator: 2
            }
        );
        // At 30 fps neither fits, and both reasons are given.
        let why = select(offered, &request(1280, 720, 30, &[YUYV])).unwrap_err();
        assert!(
            why.contains("YUYV 1280x720 at 10, 7.5, 5 frames per second"),
            "{why}"
        );
    }

    #[test]
    fn a_camera_without_usable_formats_says_what_it_has() {
        let desc = fixture("uvc-c270");
        let offered = desc.formats(Queue::Capture);
        let why = select(offered, &request(640, 480, 30, &[H264])).unwrap_err();
        assert_eq!(
            why,
            "the camera offers YUYV, MJPEG; the streamer needs one of H.264"
        );
        let mode = select(offered, &request(640, 480, 30, &[H264, YUYV, NV12, YU12])).unwrap();
        assert_eq!(mode.pixelformat, YUYV);
    }

    #[test]
    fn uvc_intervals_in_100ns_units_match_their_rate() {
        let offered = [FormatModes {
            format: FormatDesc {
                pixelformat: YUYV,
                description: "YUYV 4:2:2".into(),
                flags: 0,
            },
            sizes: vec![SizeModes {
                size: FrameSize::Discrete {
                    width: 640,
                    height: 480,
                },
                intervals: vec![
                    FrameInterval::Discrete(Fraction {
                        numerator: 333_333,
                        denominator: 10_000_000,
                    }),
                    FrameInterval::Discrete(Fraction {
                        numerator: 1_333_333,
                        denominator: 10_000_000,
                    }),
                ],
            }],
        }];
        let mode = select(&offered, &request(640, 480, 30, &[YUYV])).unwrap();
        assert_eq!(mode.interval.numerator, 333_333);
        let why = select(&offered, &request(640, 480, 25, &[YUYV])).unwrap_err();
        assert!(why.contains("at 30, 7.5 frames per second"), "{why}");
    }

    #[test]
    fn stepwise_intervals_honour_a_real_step() {
        let f = |n, d| Fraction {
            numerator: n,
            denominator: d,
        };
        // 1/30 s to 1/10 s in steps of 1/30 s: 1/30, 2/30, 3/30.
        assert!(interval_in_range(f(1, 30), f(1, 30), f(1, 10), f(1, 30)));
        assert!(interval_in_range(f(1, 15), f(1, 30), f(1, 10), f(1, 30)));
        assert!(!interval_in_range(f(1, 20), f(1, 30), f(1, 10), f(1, 30)));
        assert!(!interval_in_range(f(1, 60), f(1, 30), f(1, 10), f(1, 30)));
        // Continuous (step 1/1 as bcm2835-v4l2 reports it).
        assert!(interval_in_range(f(1, 25), f(1, 90), f(1, 1), f(1, 1)));
    }
}
