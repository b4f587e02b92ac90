//! The configuration's `[image]` section as the V4L2 controls of a USB webcam
//! (uvcvideo), for the `uvc` source. Pure: the settings and the controls the webcam
//! says it has in, the controls to set (in order) and notes on what the webcam
//! cannot do out; the source sets them and explains refusals.
//!
//! Every webcam has its own ranges (a C920's contrast is 0-255 around 128, a
//! C270's 0-255 around 32), so the configuration's scales are mapped onto each
//! control's range around the control's default: "unchanged" (brightness 50,
//! contrast/saturation/sharpness 0) is the webcam's own default, +100 its maximum,
//! -100 its minimum, and values between are proportional on each side.
//!
//! Settings at their "unchanged" value set the control's default rather than
//! nothing: a webcam keeps control values while it is powered, across opens, so
//! setting nothing would leave a previous configuration's contrast (or one set
//! with `v4l2-ctl`) in force after the setting is put back to "unchanged". The
//! configuration is the one place the picture is set.

use crate::config::{spelled, ExposureMode, ImageConfig, Metering, WhiteBalance};
use crate::source::legacy_camera::controls as legacy_controls;
use crate::v4l2::sys::*;
use crate::v4l2::{ControlInfo, ControlKind};

// User-class controls uvcvideo maps that `v4l2::sys` does not define
// (linux/v4l2-controls.h).
/// `V4L2_CID_AUTO_WHITE_BALANCE`: automatic white balance on (1) or off (0).
const V4L2_CID_AUTO_WHITE_BALANCE: u32 = V4L2_CID_BASE + 12;
/// `V4L2_CID_WHITE_BALANCE_TEMPERATURE`: the manual white balance, in Kelvin.
const V4L2_CID_WHITE_BALANCE_TEMPERATURE: u32 = V4L2_CID_BASE + 26;
/// `V4L2_CID_BACKLIGHT_COMPENSATION`: how much to brighten a subject against the light.
const V4L2_CID_BACKLIGHT_COMPENSATION: u32 = V4L2_CID_BASE + 28;

/// One control to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `V4L2_CID_*`.
    pub id: u32,
    /// The webcam's name for the control (e.g. `Contrast`), for messages.
    pub control: String,
    /// The value (menu index for menu controls), within the control's range.
    pub value: i64,
    /// The configuration key it comes from (e.g. `image.contrast`), for messages.
    pub key: &'static str,
}

/// The controls to set for `image` on a webcam with the controls `available`
/// (what `VIDIOC_QUERYCTRL` said), in the order to set them (automatic switches
/// before the values they govern), and plain-words notes on settings the webcam
/// cannot apply.
pub fn plan(image: &ImageConfig, available: &[ControlInfo]) -> (Vec<Setting>, Vec<String>) {
    let mut planner = Planner {
        available,
        settings: Vec::new(),
        notes: Vec::new(),
    };
    planner.flips(image);
    planner.picture(image);
    planner.white_balance(image.white_balance);
    planner.exposure(image);
    planner.without_equivalent(image);
    (planner.settings, planner.notes)
}

/// The white balance presets in Kelvin.
fn kelvin(preset: WhiteBalance) -> Option<i64> {
    match preset {
        WhiteBalance::Auto | WhiteBalance::Off => None,
        WhiteBalance::Horizon => Some(2500),
        WhiteBalance::Incandescent => Some(2800),
        WhiteBalance::Tungsten => Some(3200),
        WhiteBalance::Fluorescent => Some(4000),
        WhiteBalance::Sunlight | WhiteBalance::Flash => Some(5500),
        WhiteBalance::Cloudy => Some(6500),
        WhiteBalance::Shade => Some(7500),
    }
}

/// The automatic switch a control depends on: while the switch is on, the
/// driver flags the control inactive (and uvcvideo may refuse it).
fn governed_by(id: u32) -> Option<u32> {
    match id {
        V4L2_CID_WHITE_BALANCE_TEMPERATURE => Some(V4L2_CID_AUTO_WHITE_BALANCE),
        V4L2_CID_EXPOSURE_ABSOLUTE => Some(V4L2_CID_EXPOSURE_AUTO),
        _ => None,
    }
}

/// Whether the driver's range is usable at all.
fn sane(info: &ControlInfo) -> bool {
    info.minimum <= info.maximum
}

/// The control's default, on its grid (`None` for an insane range).
fn default_of(info: &ControlInfo) -> Option<i64> {
    sane(info).then(|| info.fit(i128::from(info.default)))
}

/// `v` (-100 to 100, 0 = unchanged) on the control's range around its default:
/// +100 is the maximum, -100 the minimum, proportional on each side.
fn scale(info: &ControlInfo, v: i32) -> Option<i64> {
    let default = default_of(info)?;
    if v == 0 {
        return Some(default);
    }
    let v = f64::from(v.clamp(-100, 100)) / 100.0;
    let d = default as f64;
    let target = if v >= 0.0 {
        d + v * (info.maximum as f64 - d)
    } else {
        d + v * (d - info.minimum as f64)
    };
    // `as` saturates (and makes NaN 0): no overflow for any range.
    Some(info.fit(target.round() as i128))
}

struct Planner<'a> {
    available: &'a [ControlInfo],
    settings: Vec<Setting>,
    notes: Vec<String>,
}

impl<'a> Planner<'a> {
    fn find(&self, id: u32) -> Option<&'a ControlInfo> {
        self.available.iter().find(|c| c.id == id)
    }

    fn note(&mut self, note: String) {
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Why the control cannot be set now, `None` when it can. An inactive control
    /// is settable when this plan already switched its automatic mode off.
    fn blocked(&self, info: &ControlInfo) -> Option<&'static str> {
        if info.flags & V4L2_CTRL_FLAG_DISABLED != 0 {
            return Some("is disabled");
        }
        if info.flags & V4L2_CTRL_FLAG_READ_ONLY != 0 {
            return Some("is read-only");
        }
        if info.flags & V4L2_CTRL_FLAG_GRABBED != 0 {
            return Some("is in use by another program");
        }
        if !sane(info) {
            return Some("reports an empty range");
        }
        if info.flags & V4L2_CTRL_FLAG_INACTIVE != 0 {
            let switched = governed_by(info.id)
                .is_some_and(|switch| self.settings.iter().any(|s| s.id == switch));
            if !switched {
                return Some("is inactive (another control's automatic mode governs it)");
            }
        }
        None
    }

    /// Whether control `id` exists and can be set now (inactive ones included).
    fn settable(&self, id: u32) -> bool {
        self.find(id).is_some_and(|info| {
            info.flags
                & (V4L2_CTRL_FLAG_DISABLED | V4L2_CTRL_FLAG_READ_ONLY | V4L2_CTRL_FLAG_GRABBED)
                == 0
                && sane(info)
        })
    }

    /// Whether menu control `id` offers `entry`.
    fn offers(&self, id: u32, entry: u32) -> bool {
        self.find(id).is_some_and(|info| {
            matches!(info.kind, ControlKind::Menu | ControlKind::IntegerMenu)
                && info.menu.iter().any(|m| m.index == entry)
        })
    }

    /// Plans `id` = `value` (fitted to the control's range and step; menus must
    /// offer it). Returns whether it was planned; a control that cannot take it is
    /// noted unless `value` is its default anyway (nothing is lost then).
    fn set(&mut self, key: &'static str, id: u32, value: i64) -> bool {
        let Some(info) = self.find(id) else {
            return false;
        };
        let name = info.name.clone();
        if let Some(why) = self.blocked(info) {
            if value != info.default {
                self.note(format!(
                    "{key}: the webcam's {name} control {why}; not set to {value}"
                ));
            }
            return false;
        }
        let value = match info.kind {
            ControlKind::Menu | ControlKind::IntegerMenu => {
                if !info.menu.iter().any(|m| i64::from(m.index) == value) {
                    let entries: Vec<String> = info
                        .menu
                        .iter()
                        .map(|m| format!("{} ({})", m.index, m.name))
                        .collect();
                    self.note(format!(
                        "{key}: the webcam's {name} takes {}, not {value}; not set",
                        entries.join(", ")
                    ));
                    return false;
                }
                value
            }
            ControlKind::Button | ControlKind::Other(_) => {
                self.note(format!(
                    "{key}: the webcam's {name} is not a value control; not set"
                ));
                return false;
            }
            _ => info.fit(i128::from(value)),
        };
        self.settings.retain(|s| s.id != id);
        self.settings.push(Setting {
            id,
            control: name,
            value,
            key,
        });
        true
    }

    fn flips(&mut self, image: &ImageConfig) {
        let mut turn = false;
        match image.rotation % 360 {
            0 => {}
            180 => {
                let missing: Vec<&str> =
                    [(V4L2_CID_HFLIP, "horizontal"), (V4L2_CID_VFLIP, "vertical")]
                        .iter()
                        .filter(|(id, _)| !self.settable(*id))
                        .map(|(_, name)| *name)
                        .collect();
                if missing.is_empty() {
                    turn = true;
                } else {
                    self.note(format!(
                        "image.rotation = 180: the webcam turns a picture by flipping it both \
                         ways, and it has no {} flip control; not rotated",
                        missing.join(" or ")
                    ));
                }
            }
            other => self.note(format!(
                "image.rotation = {other}: a webcam cannot turn its picture by 90 degrees \
                 (only 180, by flipping it both ways); not rotated"
            )),
        }
        for (key, id, wanted, what) in [
            ("image.hflip", V4L2_CID_HFLIP, image.hflip, "mirrored"),
            ("image.vflip", V4L2_CID_VFLIP, image.vflip, "flipped"),
        ] {
            let flip = wanted ^ turn;
            let key = if turn { "image.rotation" } else { key };
            if self.find(id).is_none() {
                if flip {
                    self.note(format!(
                        "{key}: the webcam has no {} control; the picture is not {what}",
                        if id == V4L2_CID_HFLIP {
                            "horizontal flip"
                        } else {
                            "vertical flip"
                        }
                    ));
                }
                continue;
            }
            self.set(key, id, i64::from(flip));
        }
    }

    fn picture(&mut self, image: &ImageConfig) {
        let brightness = image.brightness.saturating_sub(50).saturating_mul(2);
        for (key, id, shown, v) in [
            (
                "image.brightness",
                V4L2_CID_BRIGHTNESS,
                image.brightness,
                brightness,
            ),
            (
                "image.contrast",
                V4L2_CID_CONTRAST,
                image.contrast,
                image.contrast,
            ),
            (
                "image.saturation",
                V4L2_CID_SATURATION,
                image.saturation,
                image.saturation,
            ),
            (
                "image.sharpness",
                V4L2_CID_SHARPNESS,
                image.sharpness,
                image.sharpness,
            ),
        ] {
            let setting = key.trim_start_matches("image.");
            match self.find(id) {
                None if v != 0 => self.note(format!(
                    "{key} = {shown}: the webcam has no {setting} control; left as it is"
                )),
                None => {}
                Some(info) => match scale(info, v) {
                    Some(value) => {
                        self.set(key, id, value);
                    }
                    None => {
                        let name = info.name.clone();
                        self.note(format!(
                            "{key} = {shown}: the webcam's {name} control reports an empty \
                             range; not set"
                        ));
                    }
                },
            }
        }
    }

    fn white_balance(&mut self, white_balance: WhiteBalance) {
        const KEY: &str = "image.white_balance";
        let auto_switch = self.settable(V4L2_CID_AUTO_WHITE_BALANCE);
        let temperature = self.settable(V4L2_CID_WHITE_BALANCE_TEMPERATURE);
        let preset = V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE;
        let shown = spelled(&white_balance);
        match white_balance {
            WhiteBalance::Auto => {
                if auto_switch {
                    self.set(KEY, V4L2_CID_AUTO_WHITE_BALANCE, 1);
                } else if self.offers(preset, V4L2_WHITE_BALANCE_AUTO) {
                    self.set(KEY, preset, i64::from(V4L2_WHITE_BALANCE_AUTO));
                }
            }
            WhiteBalance::Off => {
                if auto_switch {
                    self.set(KEY, V4L2_CID_AUTO_WHITE_BALANCE, 0);
                    let default = self
                        .find(V4L2_CID_WHITE_BALANCE_TEMPERATURE)
                        .and_then(default_of);
                    if let (true, Some(default)) = (temperature, default) {
                        self.set(KEY, V4L2_CID_WHITE_BALANCE_TEMPERATURE, default);
                    }
                } else if self.offers(preset, V4L2_WHITE_BALANCE_MANUAL) {
                    self.set(KEY, preset, i64::from(V4L2_WHITE_BALANCE_MANUAL));
                } else {
                    self.note(format!(
                        "{KEY} = \"off\": the webcam has no manual white balance; it stays \
                         automatic"
                    ));
                }
            }
            named => {
                let kelvin = kelvin(named).unwrap_or(5500);
                let entry = legacy_controls::white_balance_preset(named);
                if auto_switch && temperature {
                    self.set(KEY, V4L2_CID_AUTO_WHITE_BALANCE, 0);
                    let fitted = self
                        .find(V4L2_CID_WHITE_BALANCE_TEMPERATURE)
                        .map(|info| (info.fit(i128::from(kelvin)), info.minimum, info.maximum));
                    if let Some((value, min, max)) = fitted {
                        if value < kelvin.saturating_sub(100) || value > kelvin.saturating_add(100)
                        {
                            self.note(format!(
                                "{KEY} = \"{shown}\" (about {kelvin} K): the webcam's white \
                                 balance goes from {min} to {max} K; using {value} K"
                            ));
                        }
                        self.set(KEY, V4L2_CID_WHITE_BALANCE_TEMPERATURE, value);
                    }
                } else if self.offers(preset, entry) {
                    self.set(KEY, preset, i64::from(entry));
                } else {
                    self.note(format!(
                        "{KEY} = \"{shown}\": the webcam has no white balance temperature or \
                         preset control for it; white balance stays automatic"
                    ));
                    if auto_switch {
                        self.set(KEY, V4L2_CID_AUTO_WHITE_BALANCE, 1);
                    } else if self.offers(preset, V4L2_WHITE_BALANCE_AUTO) {
                        self.set(KEY, preset, i64::from(V4L2_WHITE_BALANCE_AUTO));
                    }
                }
            }
        }
    }

    /// The automatic entry of the exposure menu: the webcam's default when that is
    /// automatic, else aperture priority (what UVC webcams call automatic, having
    /// no iris), fully automatic or shutter priority, whichever it offers.
    fn automatic_exposure(&self) -> Option<u32> {
        let info = self.find(V4L2_CID_EXPOSURE_AUTO)?;
        let default = u32::try_from(info.default)
            .ok()
            .filter(|d| *d != V4L2_EXPOSURE_MANUAL);
        default
            .into_iter()
            .chain([
                V4L2_EXPOSURE_APERTURE_PRIORITY,
                V4L2_EXPOSURE_AUTO,
                V4L2_EXPOSURE_SHUTTER_PRIORITY,
            ])
            .find(|entry| self.offers(V4L2_CID_EXPOSURE_AUTO, *entry))
    }

    fn exposure(&mut self, image: &ImageConfig) {
        const KEY: &str = "image.exposure";
        let mode = image.exposure;
        let shown = spelled(&mode);
        let automatic = self.automatic_exposure();
        let manual = mode == ExposureMode::Off
            && self.settable(V4L2_CID_EXPOSURE_AUTO)
            && self.offers(V4L2_CID_EXPOSURE_AUTO, V4L2_EXPOSURE_MANUAL);
        if manual {
            self.set(KEY, V4L2_CID_EXPOSURE_AUTO, i64::from(V4L2_EXPOSURE_MANUAL));
            let default = self.find(V4L2_CID_EXPOSURE_ABSOLUTE).and_then(default_of);
            if let Some(default) = default {
                self.set(KEY, V4L2_CID_EXPOSURE_ABSOLUTE, default);
            }
        } else {
            if mode == ExposureMode::Off {
                self.note(format!(
                    "{KEY} = \"off\": the webcam has no manual exposure; it stays automatic"
                ));
            }
            if let Some(entry) = automatic {
                self.set(KEY, V4L2_CID_EXPOSURE_AUTO, i64::from(entry));
            }
        }
        match mode {
            ExposureMode::Auto | ExposureMode::Fixedfps | ExposureMode::Off => {}
            ExposureMode::Backlight if self.find(V4L2_CID_BACKLIGHT_COMPENSATION).is_some() => {}
            _ => self.note(format!(
                "{KEY} = \"{shown}\": a webcam has no exposure modes; using its automatic \
                 exposure"
            )),
        }
        // Backlight compensation: raised for "backlight", else the webcam's default.
        let backlight = self
            .find(V4L2_CID_BACKLIGHT_COMPENSATION)
            .and_then(|info| Some((info.clone(), default_of(info)?)));
        if let Some((info, default)) = backlight {
            let value = if mode == ExposureMode::Backlight {
                // Halfway to the maximum, at least one step above the default.
                let half = scale(&info, 50).unwrap_or(default);
                let one_step = i128::from(default) + i128::from(info.step.max(1));
                info.fit(i128::from(half).max(one_step))
            } else {
                default
            };
            self.set(KEY, V4L2_CID_BACKLIGHT_COMPENSATION, value);
        }
        self.compensation(image);
    }

    fn compensation(&mut self, image: &ImageConfig) {
        const KEY: &str = "image.exposure_compensation";
        let sixths = image.exposure_compensation;
        // V4L2 counts exposure bias in 0.001 EV.
        let millis = i64::from(sixths) * 1000 / 6;
        let stops = f64::from(sixths) / 6.0;
        let Some(info) = self.find(V4L2_CID_AUTO_EXPOSURE_BIAS) else {
            if sixths != 0 {
                self.note(format!(
                    "{KEY} = {sixths} ({stops:+.2} stops): the webcam has no exposure \
                     compensation control; try image.brightness instead"
                ));
            }
            return;
        };
        let value = match info.kind {
            _ if sixths == 0 => default_of(info),
            ControlKind::IntegerMenu => info
                .menu
                .iter()
                .filter_map(|m| Some((m.index, m.name.trim().parse::<i64>().ok()?)))
                .min_by_key(|(_, mev)| mev.abs_diff(millis))
                .map(|(index, _)| i64::from(index)),
            ControlKind::Integer | ControlKind::Integer64 if sane(info) => {
                Some(info.fit(i128::from(millis)))
            }
            _ => None,
        };
        match value {
            Some(value) => {
                if sixths != 0 && image.exposure == ExposureMode::Off {
                    self.note(format!(
                        "{KEY} = {sixths}: exposure compensation acts on automatic exposure \
                         only, and image.exposure is \"off\""
                    ));
                }
                self.set(KEY, V4L2_CID_AUTO_EXPOSURE_BIAS, value);
            }
            None if sixths != 0 => {
                let name = info.name.clone();
                self.note(format!(
                    "{KEY} = {sixths}: the webcam's {name} control does not say its values \
                     in stops; not set"
                ));
            }
            None => {}
        }
    }

    fn without_equivalent(&mut self, image: &ImageConfig) {
        if image.metering != Metering::Average {
            self.note(format!(
                "image.metering = \"{}\": a webcam has no metering control; it measures \
                 light its own way",
                spelled(&image.metering)
            ));
        }
        if image.iso != 0 {
            self.note(format!(
                "image.iso = {}: a webcam has no ISO setting; its sensitivity stays automatic",
                image.iso
            ));
        }
        if !image.denoise {
            self.note(
                "image.denoise = false: a webcam has no denoise control; it reduces noise \
                 (or not) on its own"
                    .into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v4l2::fake::camera::fixture;
    use crate::v4l2::MenuItem;
    use proptest::prelude::*;

    fn controls(name: &str) -> Vec<ControlInfo> {
        fixture(name).controls
    }

    fn value(settings: &[Setting], id: u32) -> Option<i64> {
        settings.iter().find(|s| s.id == id).map(|s| s.value)
    }

    fn position(settings: &[Setting], id: u32) -> usize {
        settings
            .iter()
            .position(|s| s.id == id)
            .unwrap_or_else(|| panic!("control {id:#x} not planned"))
    }

    fn integer(id: u32, minimum: i64, maximum: i64, step: u64, default: i64) -> ControlInfo {
        ControlInfo {
            id,
            name: format!("Control {id:#x}"),
            kind: ControlKind::Integer,
            minimum,
            maximum,
            step,
            default,
            flags: 0,
            menu: Vec::new(),
        }
    }

    #[test]
    fn defaults_set_exactly_the_webcams_defaults() {
        for name in ["uvc-c920", "uvc-c270"] {
            let available = controls(name);
            let (settings, notes) = plan(&ImageConfig::default(), &available);
            assert!(notes.is_empty(), "{name}: {notes:?}");
            for setting in &settings {
                let info = available.iter().find(|c| c.id == setting.id).unwrap();
                assert_eq!(setting.value, info.default, "{name}: {}", info.name);
            }
            let mut ids: Vec<u32> = settings.iter().map(|s| s.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), settings.len(), "{name}: each control once");
            // Picture, automatic white balance and exposure, backlight compensation.
            for id in [
                V4L2_CID_BRIGHTNESS,
                V4L2_CID_CONTRAST,
                V4L2_CID_SATURATION,
                V4L2_CID_SHARPNESS,
                V4L2_CID_AUTO_WHITE_BALANCE,
                V4L2_CID_EXPOSURE_AUTO,
                V4L2_CID_BACKLIGHT_COMPENSATION,
            ] {
                assert!(value(&settings, id).is_some(), "{name}: {id:#x}");
            }
            assert_eq!(value(&settings, V4L2_CID_AUTO_WHITE_BALANCE), Some(1));
            assert_eq!(
                value(&settings, V4L2_CID_EXPOSURE_AUTO),
                Some(i64::from(V4L2_EXPOSURE_APERTURE_PRIORITY))
            );
            // Manual values and what is not in the configuration stay untouched.
            for id in [
                V4L2_CID_WHITE_BALANCE_TEMPERATURE,
                V4L2_CID_EXPOSURE_ABSOLUTE,
                V4L2_CID_POWER_LINE_FREQUENCY,
                V4L2_CID_EXPOSURE_AUTO_PRIORITY,
            ] {
                assert_eq!(value(&settings, id), None, "{name}: {id:#x}");
            }
        }
    }

    #[test]
    fn picture_settings_scale_around_each_webcams_default() {
        let image = ImageConfig {
            brightness: 75,
            contrast: 50,
            saturation: -50,
            sharpness: 25,
            ..ImageConfig::default()
        };
        // C920: all four 0-255, default 128.
        let (settings, notes) = plan(&image, &controls("uvc-c920"));
        assert!(notes.is_empty(), "{notes:?}");
        // +50 of the way to 255: 128 + 0.5 x 127 = 191.5 -> 192.
        assert_eq!(value(&settings, V4L2_CID_BRIGHTNESS), Some(192));
        assert_eq!(value(&settings, V4L2_CID_CONTRAST), Some(192));
        // -50: 128 - 0.5 x 128 = 64.
        assert_eq!(value(&settings, V4L2_CID_SATURATION), Some(64));
        // +25: 128 + 0.25 x 127 = 159.75 -> 160.
        assert_eq!(value(&settings, V4L2_CID_SHARPNESS), Some(160));
        // C270: contrast and saturation default 32, sharpness 24, brightness 128.
        let (settings, _) = plan(&image, &controls("uvc-c270"));
        assert_eq!(value(&settings, V4L2_CID_BRIGHTNESS), Some(192));
        // 32 + 0.5 x 223 = 143.5 -> 144.
        assert_eq!(value(&settings, V4L2_CID_CONTRAST), Some(144));
        // 32 - 0.5 x 32 = 16.
        assert_eq!(value(&settings, V4L2_CID_SATURATION), Some(16));
        // 24 + 0.25 x 231 = 81.75 -> 82.
        assert_eq!(value(&settings, V4L2_CID_SHARPNESS), Some(82));
        // The ends of the scales are the ends of the ranges.
        let extremes = ImageConfig {
            brightness: 0,
            contrast: 100,
            saturation: -100,
            sharpness: 100,
            ..ImageConfig::default()
        };
        let (settings, _) = plan(&extremes, &controls("uvc-c270"));
        assert_eq!(value(&settings, V4L2_CID_BRIGHTNESS), Some(0));
        assert_eq!(value(&settings, V4L2_CID_CONTRAST), Some(255));
        assert_eq!(value(&settings, V4L2_CID_SATURATION), Some(0));
        assert_eq!(value(&settings, V4L2_CID_SHARPNESS), Some(255));
    }

    #[test]
    fn values_are_rounded_to_the_step_and_kept_in_range() {
        // 0-100 in steps of 8 (100 is off the grid), default 48.
        let odd = vec![integer(V4L2_CID_CONTRAST, 0, 100, 8, 48)];
        let at = |contrast: i32| {
            let image = ImageConfig {
                contrast,
                ..ImageConfig::default()
            };
            value(&plan(&image, &odd).0, V4L2_CID_CONTRAST).unwrap()
        };
        assert_eq!(at(0), 48);
        // 48 + 0.5 x 52 = 74 -> 72 (the nearer step).
        assert_eq!(at(50), 72);
        // 48 + 0.6 x 52 = 79.2 -> 79 -> 80.
        assert_eq!(at(60), 80);
        // 100 is not on the grid: the highest step, 96.
        assert_eq!(at(100), 96);
        assert_eq!(at(1000), 96);
        // 48 - 0.3 x 48 = 33.6 -> 34 -> 32.
        assert_eq!(at(-30), 32);
        assert_eq!(at(-100), 0);
        assert_eq!(at(i32::MIN), 0);
        // The C270's white balance has steps of 10 from 0 and ends at 10000.
        let image = ImageConfig {
            white_balance: WhiteBalance::Incandescent,
            ..ImageConfig::default()
        };
        let (settings, _) = plan(&image, &controls("uvc-c270"));
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(2800)
        );
        let mut grid = controls("uvc-c270");
        for c in &mut grid {
            if c.id == V4L2_CID_WHITE_BALANCE_TEMPERATURE {
                c.minimum = 2005; // grid 2005, 2015, ...: 2800 -> 2805
            }
        }
        let (settings, notes) = plan(&image, &grid);
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(2805)
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn flips_and_rotation() {
        let c920 = controls("uvc-c920");
        let with_flips: Vec<ControlInfo> = c920
            .iter()
            .cloned()
            .chain([
                ControlInfo {
                    kind: ControlKind::Boolean,
                    ..integer(V4L2_CID_HFLIP, 0, 1, 1, 0)
                },
                ControlInfo {
                    kind: ControlKind::Boolean,
                    ..integer(V4L2_CID_VFLIP, 0, 1, 1, 0)
                },
            ])
            .collect();
        let image = ImageConfig {
            hflip: true,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&image, &with_flips);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_HFLIP), Some(1));
        assert_eq!(value(&settings, V4L2_CID_VFLIP), Some(0));
        // 180 degrees: both flips; with hflip as well, only the vertical one.
        let turned = ImageConfig {
            rotation: 180,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&turned, &with_flips);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_HFLIP), Some(1));
        assert_eq!(value(&settings, V4L2_CID_VFLIP), Some(1));
        let (settings, _) = plan(
            &ImageConfig {
                hflip: true,
                ..turned.clone()
            },
            &with_flips,
        );
        assert_eq!(value(&settings, V4L2_CID_HFLIP), Some(0));
        assert_eq!(value(&settings, V4L2_CID_VFLIP), Some(1));
        // 90 degrees cannot be done.
        let (settings, notes) = plan(
            &ImageConfig {
                rotation: 90,
                ..ImageConfig::default()
            },
            &with_flips,
        );
        assert_eq!(value(&settings, V4L2_CID_VFLIP), Some(0));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("image.rotation = 90"), "{notes:?}");
        // The C920 has no flip controls at all: said, nothing set.
        let (settings, notes) = plan(&turned, &c920);
        assert_eq!(value(&settings, V4L2_CID_HFLIP), None);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            notes[0].contains("no horizontal or vertical flip control"),
            "{notes:?}"
        );
        let (_, notes) = plan(&image, &c920);
        assert!(notes[0].contains("image.hflip"), "{notes:?}");
        assert!(notes[0].contains("not mirrored"), "{notes:?}");
    }

    #[test]
    fn white_balance_presets_switch_auto_off_before_the_temperature() {
        let c920 = controls("uvc-c920"); // 2000-6500 K, default 4000
        let at = |white_balance: WhiteBalance| {
            plan(
                &ImageConfig {
                    white_balance,
                    ..ImageConfig::default()
                },
                &c920,
            )
        };
        for (preset, kelvin) in [
            (WhiteBalance::Tungsten, 3200),
            (WhiteBalance::Incandescent, 2800),
            (WhiteBalance::Fluorescent, 4000),
            (WhiteBalance::Sunlight, 5500),
            (WhiteBalance::Flash, 5500),
            (WhiteBalance::Cloudy, 6500),
            (WhiteBalance::Horizon, 2500),
        ] {
            let (settings, notes) = at(preset);
            assert!(notes.is_empty(), "{preset:?}: {notes:?}");
            assert_eq!(value(&settings, V4L2_CID_AUTO_WHITE_BALANCE), Some(0));
            assert_eq!(
                value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
                Some(kelvin),
                "{preset:?}"
            );
            assert!(
                position(&settings, V4L2_CID_AUTO_WHITE_BALANCE)
                    < position(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE)
            );
        }
        // Shade (7500 K) is beyond the C920's 6500 K: clamped, and said.
        let (settings, notes) = at(WhiteBalance::Shade);
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(6500)
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("2000 to 6500 K"), "{notes:?}");
        // Off: manual at the default temperature.
        let (settings, notes) = at(WhiteBalance::Off);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_AUTO_WHITE_BALANCE), Some(0));
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(4000)
        );
        // The C270 reaches 7500 K.
        let (settings, notes) = plan(
            &ImageConfig {
                white_balance: WhiteBalance::Shade,
                ..ImageConfig::default()
            },
            &controls("uvc-c270"),
        );
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(7500)
        );
    }

    #[test]
    fn white_balance_presets_use_the_preset_menu_when_that_is_what_there_is() {
        let mut menu = integer(V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE, 0, 9, 1, 1);
        menu.kind = ControlKind::Menu;
        menu.menu = [
            (0, "Manual"),
            (1, "Auto"),
            (2, "Incandescent"),
            (6, "Daylight"),
        ]
        .iter()
        .map(|(index, name)| MenuItem {
            index: *index,
            name: (*name).into(),
        })
        .collect();
        let available = vec![menu];
        let at = |white_balance: WhiteBalance| {
            plan(
                &ImageConfig {
                    white_balance,
                    ..ImageConfig::default()
                },
                &available,
            )
        };
        let preset = V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE;
        let (settings, notes) = at(WhiteBalance::Tungsten);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            value(&settings, preset),
            Some(i64::from(V4L2_WHITE_BALANCE_INCANDESCENT))
        );
        let (settings, _) = at(WhiteBalance::Sunlight);
        assert_eq!(
            value(&settings, preset),
            Some(i64::from(V4L2_WHITE_BALANCE_DAYLIGHT))
        );
        let (settings, _) = at(WhiteBalance::Auto);
        assert_eq!(value(&settings, preset), Some(1));
        let (settings, _) = at(WhiteBalance::Off);
        assert_eq!(value(&settings, preset), Some(0));
        // Cloudy is not in this menu: said, and automatic.
        let (settings, notes) = at(WhiteBalance::Cloudy);
        assert_eq!(value(&settings, preset), Some(1));
        assert!(notes[0].contains("\"cloudy\""), "{notes:?}");
    }

    #[test]
    fn exposure_modes_pick_from_the_menu() {
        let c920 = controls("uvc-c920");
        let off = ImageConfig {
            exposure: ExposureMode::Off,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&off, &c920);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            value(&settings, V4L2_CID_EXPOSURE_AUTO),
            Some(i64::from(V4L2_EXPOSURE_MANUAL))
        );
        // The exposure time stays at the default, set after the switch.
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_ABSOLUTE), Some(250));
        assert!(
            position(&settings, V4L2_CID_EXPOSURE_AUTO)
                < position(&settings, V4L2_CID_EXPOSURE_ABSOLUTE)
        );
        // A webcam whose default is manual and which offers only fully automatic
        // besides: automatic is that.
        let mut menu_auto = c920.clone();
        for c in &mut menu_auto {
            if c.id == V4L2_CID_EXPOSURE_AUTO {
                c.default = 1;
                c.menu.retain(|m| m.index == 1);
                c.menu.insert(
                    0,
                    MenuItem {
                        index: 0,
                        name: "Auto Mode".into(),
                    },
                );
            }
        }
        let (settings, _) = plan(&ImageConfig::default(), &menu_auto);
        assert_eq!(
            value(&settings, V4L2_CID_EXPOSURE_AUTO),
            Some(i64::from(V4L2_EXPOSURE_AUTO))
        );
        // Without a manual entry, "off" is said and exposure stays automatic.
        let mut auto_only = c920.clone();
        for c in &mut auto_only {
            if c.id == V4L2_CID_EXPOSURE_AUTO {
                c.menu.retain(|m| m.index == 3);
            }
        }
        let (settings, notes) = plan(&off, &auto_only);
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_AUTO), Some(3));
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_ABSOLUTE), None);
        assert!(notes[0].contains("no manual exposure"), "{notes:?}");
        // Scene modes have no UVC equivalent; backlight has backlight compensation.
        let night = ImageConfig {
            exposure: ExposureMode::Night,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&night, &c920);
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_AUTO), Some(3));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("\"night\""), "{notes:?}");
        let backlight = ImageConfig {
            exposure: ExposureMode::Backlight,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&backlight, &c920);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_BACKLIGHT_COMPENSATION), Some(1));
        // A wider range: halfway from 0 to 4 is 2.
        let wide = vec![integer(V4L2_CID_BACKLIGHT_COMPENSATION, 0, 4, 1, 0)];
        let (settings, _) = plan(&backlight, &wide);
        assert_eq!(value(&settings, V4L2_CID_BACKLIGHT_COMPENSATION), Some(2));
    }

    #[test]
    fn exposure_compensation_in_stops() {
        let compensate = |sixths: i32| ImageConfig {
            exposure_compensation: sixths,
            ..ImageConfig::default()
        };
        // Neither fixture has an exposure bias control.
        let (_, notes) = plan(&compensate(6), &controls("uvc-c920"));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("+1.00 stops"), "{notes:?}");
        assert!(notes[0].contains("no exposure compensation"), "{notes:?}");
        // An integer control in 0.001 EV, steps of 1/3 EV (0.333) from -2 EV.
        let bias = vec![integer(V4L2_CID_AUTO_EXPOSURE_BIAS, -1998, 1998, 333, 0)];
        let (settings, _) = plan(&compensate(6), &bias);
        // 1000 mEV -> the nearest step from -1998: -1998 + 9 x 333 = 999.
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(999));
        let (settings, _) = plan(&compensate(-25), &bias);
        // -4.17 EV is below the range: -1998.
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(-1998));
        let (settings, _) = plan(&compensate(0), &bias);
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(0));
        // An integer menu: the nearest entry.
        let mut menu = integer(V4L2_CID_AUTO_EXPOSURE_BIAS, 0, 4, 1, 2);
        menu.kind = ControlKind::IntegerMenu;
        menu.menu = ["-2000", "-1000", "0", "1000", "2000"]
            .iter()
            .enumerate()
            .map(|(index, name)| MenuItem {
                index: index as u32,
                name: (*name).into(),
            })
            .collect();
        let available = vec![menu];
        let (settings, notes) = plan(&compensate(-7), &available);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(1)); // -1 EV
        let (settings, _) = plan(&compensate(25), &available);
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(4));
    }

    #[test]
    fn what_a_webcam_cannot_do_is_said_once() {
        let image = ImageConfig {
            exposure: ExposureMode::Sports,
            metering: Metering::Spot,
            iso: 400,
            denoise: false,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&image, &controls("uvc-c270"));
        assert_eq!(notes.len(), 4, "{notes:?}");
        let all = notes.join("\n");
        for expected in [
            "image.exposure = \"sports\"",
            "image.metering = \"spot\"",
            "image.iso = 400",
            "image.denoise = false",
        ] {
            assert_eq!(all.matches(expected).count(), 1, "{expected} in {all}");
        }
        // The rest still applies.
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_AUTO), Some(3));
        // No picture controls at all: a note per setting that differs.
        let (settings, notes) = plan(
            &ImageConfig {
                contrast: 20,
                ..ImageConfig::default()
            },
            &[],
        );
        assert!(settings.is_empty());
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("no contrast control"), "{notes:?}");
    }

    #[test]
    fn controls_that_cannot_be_set_are_skipped_and_said() {
        let mut available = controls("uvc-c920");
        for c in &mut available {
            match c.id {
                V4L2_CID_CONTRAST => c.flags |= V4L2_CTRL_FLAG_READ_ONLY,
                V4L2_CID_SATURATION => c.flags |= V4L2_CTRL_FLAG_DISABLED,
                V4L2_CID_SHARPNESS => c.flags |= V4L2_CTRL_FLAG_INACTIVE,
                _ => {}
            }
        }
        let (settings, notes) = plan(&ImageConfig::default(), &available);
        assert!(notes.is_empty(), "defaults lose nothing: {notes:?}");
        assert_eq!(value(&settings, V4L2_CID_CONTRAST), None);
        let image = ImageConfig {
            contrast: 10,
            saturation: 10,
            sharpness: 10,
            ..ImageConfig::default()
        };
        let (settings, notes) = plan(&image, &available);
        for id in [V4L2_CID_CONTRAST, V4L2_CID_SATURATION, V4L2_CID_SHARPNESS] {
            assert_eq!(value(&settings, id), None);
        }
        let all = notes.join("\n");
        assert!(all.contains("Contrast control is read-only"), "{all}");
        assert!(all.contains("Saturation control is disabled"), "{all}");
        assert!(all.contains("Sharpness control is inactive"), "{all}");
        // The temperature is inactive in the fixture (auto is on), but the plan
        // switches auto off first: it is set.
        let (settings, _) = plan(
            &ImageConfig {
                white_balance: WhiteBalance::Sunlight,
                ..ImageConfig::default()
            },
            &available,
        );
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(5500)
        );
        // A menu value the menu lacks is not sent.
        let mut odd_menu = controls("uvc-c920");
        for c in &mut odd_menu {
            if c.id == V4L2_CID_EXPOSURE_AUTO {
                c.menu.clear();
            }
        }
        let (settings, _) = plan(&ImageConfig::default(), &odd_menu);
        assert_eq!(value(&settings, V4L2_CID_EXPOSURE_AUTO), None);
    }

    #[test]
    fn odd_ranges_do_not_break_the_plan() {
        let image = ImageConfig {
            brightness: 100,
            contrast: -100,
            saturation: 50,
            sharpness: 100,
            white_balance: WhiteBalance::Shade,
            exposure: ExposureMode::Off,
            exposure_compensation: 25,
            ..ImageConfig::default()
        };
        let available = vec![
            integer(V4L2_CID_BRIGHTNESS, 10, 0, 1, 5),
            integer(V4L2_CID_CONTRAST, i64::MIN, i64::MAX, 0, 0),
            integer(V4L2_CID_SATURATION, i64::MIN, i64::MAX, u64::MAX, i64::MAX),
            integer(V4L2_CID_SHARPNESS, 0, 0, 0, 7),
            integer(V4L2_CID_AUTO_WHITE_BALANCE, 0, 1, 1, 1),
            integer(V4L2_CID_WHITE_BALANCE_TEMPERATURE, 9000, 9000, 0, 0),
            integer(V4L2_CID_AUTO_EXPOSURE_BIAS, -5, 5, 0, 100),
        ];
        let (settings, notes) = plan(&image, &available);
        assert_eq!(value(&settings, V4L2_CID_BRIGHTNESS), None);
        assert!(notes.iter().any(|n| n.contains("empty range")), "{notes:?}");
        assert_eq!(value(&settings, V4L2_CID_CONTRAST), Some(i64::MIN));
        assert_eq!(value(&settings, V4L2_CID_SHARPNESS), Some(0));
        assert_eq!(
            value(&settings, V4L2_CID_WHITE_BALANCE_TEMPERATURE),
            Some(9000)
        );
        assert_eq!(value(&settings, V4L2_CID_AUTO_EXPOSURE_BIAS), Some(5));
        for setting in &settings {
            let info = available.iter().find(|c| c.id == setting.id).unwrap();
            assert!((info.minimum..=info.maximum).contains(&setting.value));
        }
    }

    fn any_kind() -> impl Strategy<Value = ControlKind> {
        prop_oneof![
            Just(ControlKind::Integer),
            Just(ControlKind::Boolean),
            Just(ControlKind::Menu),
            Just(ControlKind::IntegerMenu),
            Just(ControlKind::Button),
            Just(ControlKind::Integer64),
        ]
    }

    fn any_control() -> impl Strategy<Value = ControlInfo> {
        let ids = prop::sample::select(vec![
            V4L2_CID_BRIGHTNESS,
            V4L2_CID_CONTRAST,
            V4L2_CID_SATURATION,
            V4L2_CID_SHARPNESS,
            V4L2_CID_HFLIP,
            V4L2_CID_VFLIP,
            V4L2_CID_AUTO_WHITE_BALANCE,
            V4L2_CID_WHITE_BALANCE_TEMPERATURE,
            V4L2_CID_BACKLIGHT_COMPENSATION,
            V4L2_CID_AUTO_N_PRESET_WHITE_BALANCE,
            V4L2_CID_EXPOSURE_AUTO,
            V4L2_CID_EXPOSURE_ABSOLUTE,
            V4L2_CID_AUTO_EXPOSURE_BIAS,
        ]);
        let number = prop_oneof![any::<i64>(), -10_000i64..10_000];
        (
            ids,
            any_kind(),
            number.clone(),
            number.clone(),
            prop_oneof![Just(0u64), 1u64..1000, any::<u64>()],
            number,
            prop::sample::select(vec![0, V4L2_CTRL_FLAG_INACTIVE, V4L2_CTRL_FLAG_READ_ONLY]),
            prop::collection::vec(
                (
                    0u32..12,
                    prop_oneof![
                        any::<i64>().prop_map(|n| n.to_string()),
                        Just("x".to_string())
                    ],
                ),
                0..6,
            ),
        )
            .prop_map(|(id, kind, minimum, maximum, step, default, flags, menu)| {
                ControlInfo {
                    id,
                    name: "Fuzzed".into(),
                    kind,
                    minimum,
                    maximum,
                    step,
                    default,
                    flags,
                    menu: menu
                        .into_iter()
                        .map(|(index, name)| MenuItem { index, name })
                        .collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn any_controls_and_settings_plan_without_panics(
            available in prop::collection::vec(any_control(), 0..10),
            brightness in any::<i32>(),
            contrast in any::<i32>(),
            exposure_compensation in any::<i32>(),
            rotation in prop::sample::select(vec![0u32, 90, 180, 270, 45]),
            hflip in any::<bool>(),
            white_balance in prop::sample::select(vec![
                WhiteBalance::Auto, WhiteBalance::Off, WhiteBalance::Shade, WhiteBalance::Tungsten,
            ]),
            exposure in prop::sample::select(vec![
                ExposureMode::Auto, ExposureMode::Off, ExposureMode::Backlight, ExposureMode::Night,
            ]),
        ) {
            let image = ImageConfig {
                brightness,
                contrast,
                exposure_compensation,
                rotation,
                hflip,
                white_balance,
                exposure,
                ..ImageConfig::default()
            };
            let (settings, _) = plan(&image, &available);
            for setting in &settings {
                // The first control with the id is the one the plan used.
                let info = available.iter().find(|c| c.id == setting.id).unwrap();
                prop_assert!(info.minimum <= info.maximum);
                match info.kind {
                    ControlKind::Menu | ControlKind::IntegerMenu => prop_assert!(
                        info.menu.iter().any(|m| i64::from(m.index) == setting.value)
                    ),
                    _ => {
                        prop_assert!((info.minimum..=info.maximum).contains(&setting.value));
                        let step = i128::from(info.step.max(1));
                        let offset = i128::from(setting.value) - i128::from(info.minimum);
                        prop_assert_eq!(offset % step, 0);
                    }
                }
            }
        }
    }
}
