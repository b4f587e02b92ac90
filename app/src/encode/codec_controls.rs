//! The `[encoder]` settings as the values of V4L2's codec control menus, shared by
//! the legacy camera (bcm2835-v4l2) and the M2M encoder (bcm2835-codec).

use crate::config::{level_idc_of, BitrateMode, Profile};
use crate::h264::level::LEVELS;
use crate::v4l2::sys::*;

/// `V4L2_CID_MPEG_VIDEO_BITRATE_MODE`'s value.
pub fn bitrate_mode(mode: BitrateMode) -> u32 {
    match mode {
        BitrateMode::Variable => V4L2_MPEG_VIDEO_BITRATE_MODE_VBR,
        BitrateMode::Constant => V4L2_MPEG_VIDEO_BITRATE_MODE_CBR,
    }
}

/// `V4L2_CID_MPEG_VIDEO_H264_PROFILE`'s value ("baseline" is constrained
/// baseline, which every decoder takes).
pub fn profile(profile: Profile) -> u32 {
    match profile {
        Profile::Baseline => V4L2_MPEG_VIDEO_H264_PROFILE_CONSTRAINED_BASELINE,
        Profile::Main => V4L2_MPEG_VIDEO_H264_PROFILE_MAIN,
        Profile::High => V4L2_MPEG_VIDEO_H264_PROFILE_HIGH,
    }
}

/// `V4L2_CID_MPEG_VIDEO_H264_LEVEL`'s menu index of a level as the configuration
/// writes it ("4", "4.0", "4.1", "1b"), `None` when it is no H.264 level. The
/// menu lists the levels in the order of Table A-1, as [`LEVELS`] does.
pub fn level(level: &str) -> Option<u32> {
    let idc = level_idc_of(level)?;
    LEVELS
        .iter()
        .position(|l| l.level_idc == idc)
        .and_then(|index| u32::try_from(index).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_menu_matches_the_kernel_constants() {
        for (name, constant) in [
            ("1", 0),
            ("1b", 1),
            ("2", 5),
            ("3", V4L2_MPEG_VIDEO_H264_LEVEL_3_0),
            ("3.1", V4L2_MPEG_VIDEO_H264_LEVEL_3_1),
            ("3.2", V4L2_MPEG_VIDEO_H264_LEVEL_3_2),
            ("4", V4L2_MPEG_VIDEO_H264_LEVEL_4_0),
            ("4.0", V4L2_MPEG_VIDEO_H264_LEVEL_4_0),
            ("4.1", V4L2_MPEG_VIDEO_H264_LEVEL_4_1),
            ("4.2", V4L2_MPEG_VIDEO_H264_LEVEL_4_2),
            ("5.2", 16),
        ] {
            assert_eq!(level(name), Some(constant), "{name}");
        }
        assert_eq!(level("4.3"), None);
        assert_eq!(level("high"), None);
    }

    #[test]
    fn profiles_and_bitrate_modes_are_the_kernels_menu_values() {
        assert_eq!(profile(Profile::Baseline), 1);
        assert_eq!(profile(Profile::Main), 2);
        assert_eq!(profile(Profile::High), 4);
        assert_eq!(bitrate_mode(BitrateMode::Variable), 0);
        assert_eq!(bitrate_mode(BitrateMode::Constant), 1);
    }
}
