//! The configuration as V4L2 controls of the legacy camera driver (bcm2835-v4l2,
//! "mmal service"), for the `v4l2` source. Pure: configuration in, the controls to
//! set and notes on what the driver cannot do out; the source sets them with
//! `VIDIOC_S_EXT_CTRLS` and explains refusals.
//!
//! The configuration's `[image]` scales are picamera's, which are the MMAL
//! parameters this driver exposes: brightness 0-100, contrast/saturation/sharpness
//! -100 to 100 pass through unchanged. The driver's ranges and menus follow
//! `drivers/staging/vc04_services/bcm2835-camera/controls.c` in Linux.

use crate::config::{spelled, Config, ExposureMode, Metering, WhiteBalance};
use crate::encode::codec_controls;
use crate::v4l2::sys::*;

/// One control to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    /// `V4L2_CID_*`.
    pub id: u32,
    /// The control's name, for messages.
    pub name: &'static str,
    /// Its value (menu index for menu controls).
    pub value: i64,
}

/// The highest level the legacy camera driver's level menu offers (controls.c ends
/// it at 4.0, which covers 1920x1080 at 30 fps, the most its H.264 path does).
const MAX_LEVEL_MENU: u32 = V4L2_MPEG_VIDEO_H264_LEVEL_4_0;
/// The same level as `level_idc`, for the mode checks of the `v4l2` source.
pub const MAX_LEVEL_IDC: u8 = 40;

/// `V4L2_CID_ISO_SENSITIVITY` menu of bcm2835-v4l2: ISO x 1000.
const ISO_MENU: [u32; 5] = [0, 100_000, 200_000, 400_000, 800_000];

/// `V4L2_CID_AUTO_EXPOSURE_BIAS` menu: -4 to +4 EV in thirds, index 12 = 0 EV.
const EV_BIAS_ZERO: i64 = 12;

/// The `V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE` menu entry of `image.white_balance`
/// (the menu is V4L2's own; the webcams' `uvc::controls` use it too).
pub fn white_balance_preset(preset: WhiteBalance) -> u32 {
    match preset {
        WhiteBalance::Off => V4L2_WHITE_BALANCE_MANUAL,
        WhiteBalance::Auto => V4L2_WHITE_BALANCE_AUTO,
        WhiteBalance::Sunlight => V4L2_WHITE_BALANCE_DAYLIGHT,
        WhiteBalance::Cloudy => V4L2_WHITE_BALANCE_CLOUDY,
        WhiteBalance::Shade => V4L2_WHITE_BALANCE_SHADE,
        WhiteBalance::Fluorescent => V4L2_WHITE_BALANCE_FLUORESCENT,
        WhiteBalance::Incandescent | WhiteBalance::Tungsten => V4L2_WHITE_BALANCE_INCANDESCENT,
        WhiteBalance::Flash => V4L2_WHITE_BALANCE_FLASH,
        WhiteBalance::Horizon => V4L2_WHITE_BALANCE_HORIZON,
    }
}

/// The controls for `config`, in the order to set them, and notes on settings the
/// driver cannot apply.
pub fn controls(config: &Config) -> (Vec<Control>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    let mut set = |id: u32, name: &'static str, value: i64| out.push(Control { id, name, value });

    // Encoder. SPS and PPS before every IDR, so that every keyframe can start a viewer.
    let encoder = &config.encoder;
    set(
        V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
        "bitrate mode",
        i64::from(codec_controls::bitrate_mode(encoder.bitrate_mode)),
    );
    set(
        V4L2_CID_MPEG_VIDEO_BITRATE,
        "bitrate",
        i64::from(encoder.bitrate),
    );
    set(
        V4L2_CID_MPEG_VIDEO_H264_PROFILE,
        "H.264 profile",
        i64::from(codec_controls::profile(encoder.profile)),
    );
    match codec_controls::level(&encoder.level) {
        Some(index) if index <= MAX_LEVEL_MENU => set(
            V4L2_CID_MPEG_VIDEO_H264_LEVEL,
            "H.264 level",
            i64::from(index),
        ),
        Some(_) => {
            notes.push(format!(
                "encoder.level = \"{}\" is above what the legacy camera driver offers (4.0): using 4.0",
                encoder.level
            ));
            set(
                V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                "H.264 level",
                i64::from(MAX_LEVEL_MENU),
            );
        }
        None => notes.push(format!(
            "encoder.level = \"{}\" is not an H.264 level: leaving the encoder's",
            encoder.level
        )),
    }
    set(
        V4L2_CID_MPEG_VIDEO_H264_I_PERIOD,
        "keyframe interval",
        i64::from(encoder.intra_period),
    );
    set(V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER, "repeat SPS/PPS", 1);

    // Picture.
    let image = &config.image;
    set(V4L2_CID_HFLIP, "horizontal flip", i64::from(image.hflip));
    set(V4L2_CID_VFLIP, "vertical flip", i64::from(image.vflip));
    set(V4L2_CID_ROTATE, "rotation", i64::from(image.rotation));
    set(
        V4L2_CID_BRIGHTNESS,
        "brightness",
        i64::from(image.brightness),
    );
    set(V4L2_CID_CONTRAST, "contrast", i64::from(image.contrast));
    set(
        V4L2_CID_SATURATION,
        "saturation",
        i64::from(image.saturation),
    );
    set(V4L2_CID_SHARPNESS, "sharpness", i64::from(image.sharpness));

    // Exposure: the driver's scene modes stand for picamera's night/sports modes.
    let (exposure_auto, scene) = match image.exposure {
        ExposureMode::Off => (V4L2_EXPOSURE_MANUAL, V4L2_SCENE_MODE_NONE),
        ExposureMode::Night | ExposureMode::Verylong | ExposureMode::Fireworks => {
            (V4L2_EXPOSURE_AUTO, V4L2_SCENE_MODE_NIGHT)
        }
        ExposureMode::Sports | ExposureMode::Antishake => {
            (V4L2_EXPOSURE_AUTO, V4L2_SCENE_MODE_SPORTS)
        }
        ExposureMode::Auto | ExposureMode::Fixedfps => (V4L2_EXPOSURE_AUTO, V4L2_SCENE_MODE_NONE),
        other => {
            notes.push(format!(
                "image.exposure = \"{}\" has no V4L2 equivalent: using automatic exposure",
                spelled(&other)
            ));
            (V4L2_EXPOSURE_AUTO, V4L2_SCENE_MODE_NONE)
        }
    };
    set(
        V4L2_CID_EXPOSURE_AUTO,
        "exposure mode",
        i64::from(exposure_auto),
    );
    set(V4L2_CID_SCENE_MODE, "scene mode", i64::from(scene));
    // Sixths of a stop -> the driver's thirds, rounded half away from zero.
    let thirds = (f64::from(image.exposure_compensation) / 2.0).round() as i64;
    set(
        V4L2_CID_AUTO_EXPOSURE_BIAS,
        "exposure compensation",
        EV_BIAS_ZERO + thirds.clamp(-EV_BIAS_ZERO, EV_BIAS_ZERO),
    );
    set(
        V4L2_CID_EXPOSURE_METERING,
        "metering",
        i64::from(match image.metering {
            Metering::Average => V4L2_EXPOSURE_METERING_AVERAGE,
            Metering::Spot => V4L2_EXPOSURE_METERING_SPOT,
            Metering::Matrix => V4L2_EXPOSURE_METERING_MATRIX,
            Metering::Backlit => V4L2_EXPOSURE_METERING_CENTER_WEIGHTED,
        }),
    );
    set(
        V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE,
        "white balance",
        i64::from(white_balance_preset(image.white_balance)),
    );
    match ISO_MENU.iter().position(|&iso| iso == image.iso * 1000) {
        Some(0) => set(
            V4L2_CID_ISO_SENSITIVITY_AUTO,
            "ISO automatic",
            i64::from(V4L2_ISO_SENSITIVITY_AUTO),
        ),
        Some(index) => {
            set(
                V4L2_CID_ISO_SENSITIVITY_AUTO,
                "ISO automatic",
                i64::from(V4L2_ISO_SENSITIVITY_MANUAL),
            );
            set(V4L2_CID_ISO_SENSITIVITY, "ISO", index as i64);
        }
        None => {
            // 100-800 but not a menu step: the nearest step below.
            let index = ISO_MENU
                .iter()
                .rposition(|&iso| iso <= image.iso * 1000)
                .unwrap_or(1)
                .max(1);
            notes.push(format!(
                "image.iso = {}: the legacy camera takes 100, 200, 400 or 800; using {}",
                image.iso,
                ISO_MENU[index] / 1000
            ));
            set(
                V4L2_CID_ISO_SENSITIVITY_AUTO,
                "ISO automatic",
                i64::from(V4L2_ISO_SENSITIVITY_MANUAL),
            );
            set(V4L2_CID_ISO_SENSITIVITY, "ISO", index as i64);
        }
    }
    if !image.denoise {
        notes.push(
            "image.denoise = false: the legacy camera driver has no denoise control; \
             its denoising stays on"
                .into(),
        );
    }
    (out, notes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BitrateMode, ImageConfig, Profile};

    fn value(controls: &[Control], id: u32) -> Option<i64> {
        controls.iter().find(|c| c.id == id).map(|c| c.value)
    }

    #[test]
    fn defaults_repeat_the_parameter_sets_and_keep_the_picture_neutral() {
        let (controls, notes) = controls(&Config::default());
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_REPEAT_SEQ_HEADER),
            Some(1)
        );
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_BITRATE),
            Some(3_000_000)
        );
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_H264_PROFILE),
            Some(i64::from(V4L2_MPEG_VIDEO_H264_PROFILE_HIGH))
        );
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_H264_LEVEL),
            Some(i64::from(V4L2_MPEG_VIDEO_H264_LEVEL_4_0))
        );
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_H264_I_PERIOD),
            Some(60)
        );
        assert_eq!(value(&controls, V4L2_CID_BRIGHTNESS), Some(50));
        assert_eq!(
            value(&controls, V4L2_CID_AUTO_EXPOSURE_BIAS),
            Some(EV_BIAS_ZERO)
        );
        assert_eq!(
            value(&controls, V4L2_CID_ISO_SENSITIVITY_AUTO),
            Some(i64::from(V4L2_ISO_SENSITIVITY_AUTO))
        );
        assert_eq!(value(&controls, V4L2_CID_ISO_SENSITIVITY), None);
        // Every control is set once.
        let mut ids: Vec<u32> = controls.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), controls.len());
    }

    #[test]
    fn picamera_settings_map_onto_the_driver() {
        let mut config = Config::default();
        config.encoder.bitrate_mode = BitrateMode::Constant;
        config.encoder.profile = Profile::Baseline;
        config.encoder.level = "3.1".into();
        config.image = ImageConfig {
            hflip: true,
            rotation: 270,
            contrast: -30,
            exposure: ExposureMode::Night,
            exposure_compensation: -7,
            metering: Metering::Backlit,
            white_balance: WhiteBalance::Tungsten,
            iso: 400,
            ..ImageConfig::default()
        };
        let (controls, notes) = controls(&config);
        assert!(notes.is_empty(), "{notes:?}");
        let expect = [
            (
                V4L2_CID_MPEG_VIDEO_BITRATE_MODE,
                V4L2_MPEG_VIDEO_BITRATE_MODE_CBR as i64,
            ),
            (
                V4L2_CID_MPEG_VIDEO_H264_PROFILE,
                V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE as i64,
            ),
            (
                V4L2_CID_MPEG_VIDEO_H264_LEVEL,
                V4L2_MPEG_VIDEO_H264_LEVEL_3_1 as i64,
            ),
            (V4L2_CID_HFLIP, 1),
            (V4L2_CID_ROTATE, 270),
            (V4L2_CID_CONTRAST, -30),
            (V4L2_CID_SCENE_MODE, V4L2_SCENE_MODE_NIGHT as i64),
            (V4L2_CID_AUTO_EXPOSURE_BIAS, EV_BIAS_ZERO - 4), // -7/6 EV -> -4/3 EV
            (
                V4L2_CID_EXPOSURE_METERING,
                V4L2_EXPOSURE_METERING_CENTER_WEIGHTED as i64,
            ),
            (
                V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE,
                V4L2_WHITE_BALANCE_INCANDESCENT as i64,
            ),
            (
                V4L2_CID_ISO_SENSITIVITY_AUTO,
                V4L2_ISO_SENSITIVITY_MANUAL as i64,
            ),
            (V4L2_CID_ISO_SENSITIVITY, 3),
        ];
        for (id, expected) in expect {
            assert_eq!(value(&controls, id), Some(expected), "control {id:#x}");
        }
    }

    #[test]
    fn the_highest_level_is_one_level_in_both_spellings() {
        assert_eq!(codec_controls::level("4"), Some(MAX_LEVEL_MENU));
        assert_eq!(crate::config::level_idc_of("4"), Some(MAX_LEVEL_IDC));
    }

    #[test]
    fn what_the_driver_cannot_do_is_said() {
        let mut config = Config::default();
        config.encoder.level = "5.1".into();
        config.image.iso = 300;
        config.image.denoise = false;
        config.image.exposure = ExposureMode::Beach;
        let (controls, notes) = controls(&config);
        assert_eq!(
            value(&controls, V4L2_CID_MPEG_VIDEO_H264_LEVEL),
            Some(i64::from(V4L2_MPEG_VIDEO_H264_LEVEL_4_0))
        );
        assert_eq!(value(&controls, V4L2_CID_ISO_SENSITIVITY), Some(2)); // 200
        let notes = notes.join("\n");
        for expected in ["5.1", "using 200", "denoise", "\"beach\""] {
            assert!(notes.contains(expected), "{expected} in {notes}");
        }
    }
}
