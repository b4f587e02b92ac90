//! The `[image]` controls as rpicam-vid options. The configuration uses the legacy
//! camera's (picamera's) scales, which people coming from picamera scripts know;
//! rpicam-vid has its own scales and names (rpicam-apps `core/options.cpp`). What has no equivalent is
//! left out and said in plain words.

use crate::config::{spelled, ExposureMode, ImageConfig, Metering, WhiteBalance};

/// rpicam-vid options for `image`, and notes on what could not be mapped. Flips and
/// rotation are not here: they are options of their own (`RpicamSettings`).
pub fn image_arguments(image: &ImageConfig) -> (Vec<String>, Vec<String>) {
    let mut args = Vec::new();
    let mut notes = Vec::new();
    let mut option = |name: &str, value: String| {
        args.push(format!("--{name}"));
        args.push(value);
    };
    // picamera 0..100 with 50 neutral -> rpicam -1.0..1.0 with 0 neutral.
    if image.brightness != 50 {
        option("brightness", ratio(image.brightness - 50, 50));
    }
    // picamera -100..100 with 0 neutral -> rpicam gains 0.0..2.0 with 1.0 neutral.
    for (name, value) in [
        ("contrast", image.contrast),
        ("saturation", image.saturation),
        ("sharpness", image.sharpness),
    ] {
        if value != 0 {
            option(name, ratio(value + 100, 100));
        }
    }
    // Sixths of a stop -> stops.
    if image.exposure_compensation != 0 {
        option("ev", ratio(image.exposure_compensation, 6));
    }
    match image.exposure {
        ExposureMode::Auto | ExposureMode::Fixedfps => {}
        ExposureMode::Sports | ExposureMode::Antishake => option("exposure", "sport".into()),
        ExposureMode::Night | ExposureMode::Verylong | ExposureMode::Fireworks => {
            option("exposure", "long".into())
        }
        other => notes.push(format!(
            "image.exposure = {:?} has no rpicam-vid equivalent: using normal exposure",
            spelled(&other)
        )),
    }
    match image.metering {
        Metering::Average => {}
        Metering::Spot => option("metering", "spot".into()),
        Metering::Matrix => option("metering", "matrix".into()),
        Metering::Backlit => option("metering", "centre".into()),
    }
    match image.white_balance {
        WhiteBalance::Auto => {}
        WhiteBalance::Sunlight | WhiteBalance::Flash => option("awb", "daylight".into()),
        WhiteBalance::Cloudy | WhiteBalance::Shade => option("awb", "cloudy".into()),
        WhiteBalance::Tungsten => option("awb", "tungsten".into()),
        WhiteBalance::Fluorescent => option("awb", "fluorescent".into()),
        WhiteBalance::Incandescent | WhiteBalance::Horizon => option("awb", "incandescent".into()),
        WhiteBalance::Off => notes.push(
            "image.white_balance = \"off\" needs fixed colour gains, which rpicam-vid \
             takes as --awbgains: using automatic white balance"
                .into(),
        ),
    }
    // ISO 100 is unity analogue gain on the Pi's sensors.
    if image.iso != 0 {
        option("gain", ratio(image.iso as i32, 100));
    }
    if !image.denoise {
        option("denoise", "off".into());
    }
    (args, notes)
}

/// `numerator / denominator` as a short decimal ("0.2", "-1", "1.5").
fn ratio(numerator: i32, denominator: i32) -> String {
    let value = f64::from(numerator) / f64::from(denominator);
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_add_no_options() {
        assert_eq!(image_arguments(&ImageConfig::default()), (vec![], vec![]));
    }

    #[test]
    fn picamera_scales_become_rpicam_scales() {
        let image = ImageConfig {
            brightness: 60,
            contrast: -50,
            saturation: -100,
            sharpness: 100,
            exposure_compensation: -3,
            exposure: ExposureMode::Night,
            metering: Metering::Spot,
            white_balance: WhiteBalance::Shade,
            iso: 400,
            denoise: false,
            ..ImageConfig::default()
        };
        let (args, notes) = image_arguments(&image);
        assert_eq!(
            args.join(" "),
            "--brightness 0.2 --contrast 0.5 --saturation 0 --sharpness 2 --ev -0.5 \
             --exposure long --metering spot --awb cloudy --gain 4 --denoise off"
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn what_rpicam_cannot_do_is_said() {
        let image = ImageConfig {
            exposure: ExposureMode::Off,
            white_balance: WhiteBalance::Off,
            ..ImageConfig::default()
        };
        let (args, notes) = image_arguments(&image);
        assert!(args.is_empty());
        assert_eq!(notes.len(), 2);
        assert!(notes[0].contains("image.exposure = \"off\""), "{notes:?}");
        assert!(notes[1].contains("--awbgains"), "{notes:?}");
    }

    #[test]
    fn ratios_are_short_decimals() {
        assert_eq!(ratio(1, 6), "0.167");
        assert_eq!(ratio(-6, 6), "-1");
        assert_eq!(ratio(0, 5), "0");
        assert_eq!(ratio(150, 100), "1.5");
    }
}
