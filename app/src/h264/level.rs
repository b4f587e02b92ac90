//! H.264 level limits (ITU-T H.264 Table A-1): how large a picture, how many
//! macroblocks per second and how high a bitrate each level allows, so a camera
//! mode can be checked against `encoder.level` before an encoder is asked to do
//! something it will refuse or do wrongly. Pure arithmetic.

/// The limits of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelLimits {
    /// The level as people write it: "3.1", "4", "1b".
    pub name: &'static str,
    /// `level_idc` as the SPS carries it (level x 10; 9 for level 1b).
    pub level_idc: u8,
    /// Maximum macroblocks per second (MaxMBPS).
    pub max_mbps: u64,
    /// Maximum frame size in macroblocks (MaxFS).
    pub max_fs: u64,
    /// Maximum video bitrate (MaxBR) in units of 1000 bit/s for the Baseline and
    /// Main profiles; the High profile allows 1.25 times as much.
    pub max_br: u64,
}

/// Table A-1, levels 1 to 5.2.
pub const LEVELS: [LevelLimits; 17] = [
    level("1", 10, 1_485, 99, 64),
    level("1b", 9, 1_485, 99, 128),
    level("1.1", 11, 3_000, 396, 192),
    level("1.2", 12, 6_000, 396, 384),
    level("1.3", 13, 11_880, 396, 768),
    level("2", 20, 11_880, 396, 2_000),
    level("2.1", 21, 19_800, 792, 4_000),
    level("2.2", 22, 20_250, 1_620, 4_000),
    level("3", 30, 40_500, 1_620, 10_000),
    level("3.1", 31, 108_000, 3_600, 14_000),
    level("3.2", 32, 216_000, 5_120, 20_000),
    level("4", 40, 245_760, 8_192, 20_000),
    level("4.1", 41, 245_760, 8_192, 50_000),
    level("4.2", 42, 522_240, 8_704, 50_000),
    level("5", 50, 589_824, 22_080, 135_000),
    level("5.1", 51, 983_040, 36_864, 240_000),
    level("5.2", 52, 2_073_600, 36_864, 240_000),
];

const fn level(
    name: &'static str,
    level_idc: u8,
    max_mbps: u64,
    max_fs: u64,
    max_br: u64,
) -> LevelLimits {
    LevelLimits {
        name,
        level_idc,
        max_mbps,
        max_fs,
        max_br,
    }
}

/// The limits of `level_idc`, `None` for a number that is no level.
pub fn limits(level_idc: u8) -> Option<&'static LevelLimits> {
    LEVELS.iter().find(|l| l.level_idc == level_idc)
}

/// What a video mode needs from a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// Macroblocks per frame: both sizes rounded up to 16.
    pub frame_mbs: u64,
    /// Macroblocks per second at the frame rate.
    pub mbs_per_second: u64,
    /// Frame width in macroblocks (A.3.1 f: at most sqrt(8 x MaxFS)).
    pub width_mbs: u64,
    /// Frame height in macroblocks.
    pub height_mbs: u64,
}

impl Demand {
    /// The demand of `width` x `height` pixels at `fps` frames per second.
    pub fn of(width: u32, height: u32, fps: u32) -> Demand {
        let width_mbs = u64::from(width).div_ceil(16);
        let height_mbs = u64::from(height).div_ceil(16);
        let frame_mbs = width_mbs * height_mbs;
        Demand {
            frame_mbs,
            mbs_per_second: frame_mbs * u64::from(fps),
            width_mbs,
            height_mbs,
        }
    }

    /// Whether `limits` allows this mode (frame size, side lengths, rate).
    pub fn fits(&self, limits: &LevelLimits) -> bool {
        let side_limit = limits.max_fs * 8;
        self.frame_mbs <= limits.max_fs
            && self.width_mbs * self.width_mbs <= side_limit
            && self.height_mbs * self.height_mbs <= side_limit
            && self.mbs_per_second <= limits.max_mbps
    }
}

/// The lowest level that allows `width` x `height` at `fps`, `None` when even
/// level 5.2 does not.
pub fn minimum_level(width: u32, height: u32, fps: u32) -> Option<&'static LevelLimits> {
    let demand = Demand::of(width, height, fps);
    // Level 1b sits between 1 and 1.1 in capability; it is never the answer people
    // want when asking for a level by number, so it is skipped.
    LEVELS
        .iter()
        .filter(|l| l.name != "1b")
        .find(|l| demand.fits(l))
}

/// The highest bitrate (bit/s) `limits` allows for the profile; `high` for the
/// High profile (factor 1250 instead of 1000, Table A-2).
pub fn max_bitrate(limits: &LevelLimits, high: bool) -> u64 {
    limits.max_br * if high { 1250 } else { 1000 }
}

/// Checks a video mode and bitrate against a level. The error says, in plain
/// words, what the mode needs and which setting to change.
pub fn check(
    level_idc: u8,
    width: u32,
    height: u32,
    fps: u32,
    bitrate: u32,
    high_profile: bool,
) -> Result<(), String> {
    let Some(limits) = limits(level_idc) else {
        return Err(format!("{level_idc} is not an H.264 level_idc"));
    };
    let demand = Demand::of(width, height, fps);
    if !demand.fits(limits) {
        let needed = match minimum_level(width, height, fps) {
            Some(needed) => format!(
                "it needs level {} or higher: set encoder.level = \"{}\", or lower the size or frame rate",
                needed.name, needed.name
            ),
            None => "no H.264 level allows that: lower the size or frame rate".to_string(),
        };
        return Err(format!(
            "{width}x{height} at {fps} fps is too much for H.264 level {} \
             (at most {} macroblocks per frame and {} per second; this mode has {} and {}): {needed}",
            limits.name, limits.max_fs, limits.max_mbps, demand.frame_mbs, demand.mbs_per_second
        ));
    }
    let max = max_bitrate(limits, high_profile);
    if u64::from(bitrate) > max {
        return Err(format!(
            "encoder.bitrate = {bitrate} is above the {max} bit/s H.264 level {} allows for this profile: \
             lower encoder.bitrate or raise encoder.level",
            limits.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_ascending_order_of_capability() {
        for pair in LEVELS.windows(2) {
            assert!(pair[0].max_mbps <= pair[1].max_mbps, "{pair:?}");
            assert!(pair[0].max_fs <= pair[1].max_fs, "{pair:?}");
            assert!(pair[0].max_br <= pair[1].max_br, "{pair:?}");
        }
        assert_eq!(limits(40).map(|l| l.name), Some("4"));
        assert_eq!(limits(9).map(|l| l.name), Some("1b"));
        assert_eq!(limits(43), None);
    }

    #[test]
    fn well_known_modes_need_well_known_levels() {
        let name = |w, h, fps| minimum_level(w, h, fps).map(|l| l.name);
        assert_eq!(name(1920, 1080, 30), Some("4"));
        assert_eq!(name(1920, 1080, 25), Some("4"));
        assert_eq!(name(1920, 1080, 60), Some("4.2"));
        assert_eq!(name(1280, 720, 30), Some("3.1"));
        assert_eq!(name(1280, 720, 60), Some("3.2"));
        assert_eq!(name(640, 480, 30), Some("3"));
        assert_eq!(name(320, 240, 30), Some("1.3"));
        assert_eq!(name(176, 144, 15), Some("1"));
        assert_eq!(name(3840, 2160, 30), Some("5.1"));
        assert_eq!(name(4096, 2160, 60), Some("5.2"));
        assert_eq!(name(4096, 2304, 60), None);
        assert_eq!(name(8192, 4320, 30), None);
    }

    #[test]
    fn a_long_thin_picture_breaks_the_side_limit() {
        // 8192 macroblocks fit level 4's MaxFS, but a side may be at most
        // sqrt(8 x 8192) = 256 macroblocks.
        let demand = Demand::of(16 * 257, 16, 1);
        assert!(demand.frame_mbs <= 8192);
        assert!(!demand.fits(limits(40).unwrap()));
    }

    #[test]
    fn refusals_say_what_to_change() {
        assert_eq!(check(40, 1920, 1080, 30, 17_000_000, true), Ok(()));
        let err = check(40, 1920, 1080, 60, 4_000_000, true).unwrap_err();
        assert!(err.contains("1920x1080 at 60 fps"), "{err}");
        assert!(err.contains("encoder.level = \"4.2\""), "{err}");
        let err = check(40, 1920, 1080, 30, 24_000_000, false).unwrap_err();
        assert!(err.contains("encoder.bitrate = 24000000"), "{err}");
        assert!(err.contains("20000000"), "{err}");
        // High profile allows 1.25 times the bitrate.
        assert_eq!(check(40, 1920, 1080, 30, 24_000_000, true), Ok(()));
        assert!(check(77, 640, 480, 30, 1_000_000, true).is_err());
        let err = check(52, 8192, 8192, 30, 1_000_000, true).unwrap_err();
        assert!(err.contains("no H.264 level"), "{err}");
    }
}
