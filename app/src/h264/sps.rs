//! Sequence parameter set parsing (H.264 7.3.2.1.1): codec string, picture size,
//! frame rate, and the fields slice headers need.

use thiserror::Error;

use super::bits::{BitError, BitReader};
use super::nal::NalType;

/// Why a sequence parameter set did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpsError {
    /// The NAL unit is empty or not an SPS.
    #[error("not a sequence parameter set (nal_unit_type {0:?})")]
    NotSps(Option<u8>),
    /// A field could not be read.
    #[error("cannot read SPS field {field}: {source}")]
    Field {
        /// The syntax element.
        field: &'static str,
        /// What went wrong.
        source: BitError,
    },
    /// A field holds a value the standard does not allow.
    #[error("SPS field {field} has invalid value {value}")]
    Invalid {
        /// The syntax element.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// Longer than any real parameter set ([`MAX_PARAMETER_SET_SIZE`]).
    #[error("SPS of {0} bytes, longer than any real one")]
    TooLong(usize),
}

/// Longest SPS or PPS NAL unit accepted, 64 KiB. The largest the syntax allows in
/// practice (scaling lists for 4:4:4, VUI with HRD parameters) are a few kilobytes;
/// the bound keeps the parameter sets the hub stores (up to 32 SPS and 256 PPS,
/// one per id) and repeats in front of keyframes small whatever the input.
pub const MAX_PARAMETER_SET_SIZE: usize = 64 << 10;

/// Adds the field name to a bit-reading error.
fn field<T>(result: Result<T, BitError>, field: &'static str) -> Result<T, SpsError> {
    result.map_err(|source| SpsError::Field { field, source })
}

/// Checks `value <= max`.
fn at_most(value: u32, max: u32, field: &'static str) -> Result<u32, SpsError> {
    if value > max {
        Err(SpsError::Invalid {
            field,
            value: u64::from(value),
        })
    } else {
        Ok(value)
    }
}

/// The stream parameters a player needs, from a sequence parameter set, and the
/// fields needed to parse slice headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Sps {
    /// `profile_idc` (66 baseline, 77 main, 100 high, ...).
    pub profile_idc: u8,
    /// The constraint_set0..5 flags byte as it appears in the SPS.
    pub constraint_flags: u8,
    /// `level_idc` (e.g. 40 for level 4.0).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub id: u32,
    /// Displayed width in pixels, after cropping.
    pub width: u32,
    /// Displayed height in pixels, after cropping.
    pub height: u32,
    /// Frames per second from the VUI timing info, when present:
    /// `time_scale / (2 * num_units_in_tick)`.
    pub frame_rate: Option<f64>,
    /// `video_full_range_flag` from the VUI: luma and chroma use 0..=255 (as JPEG
    /// does) instead of the usual 16..=235 and 16..=240; false when not signalled.
    pub full_range: bool,
    /// `chroma_format_idc` (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format_idc: u32,
    /// `separate_colour_plane_flag` (4:4:4 coded as three monochrome planes).
    pub separate_colour_plane: bool,
    /// Luma bit depth (8 for most streams).
    pub bit_depth_luma: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// `log2_max_frame_num_minus4 + 4`: width in bits of `frame_num`.
    pub log2_max_frame_num: u32,
    /// `pic_order_cnt_type` (0, 1 or 2).
    pub pic_order_cnt_type: u32,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (type 0 only, else 0).
    pub log2_max_poc_lsb: u32,
    /// `delta_pic_order_always_zero_flag` (type 1 only, else false).
    pub delta_pic_order_always_zero: bool,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// `frame_mbs_only_flag`: false when pictures may be coded as fields.
    pub frame_mbs_only: bool,
    /// `mb_adaptive_frame_field_flag` (MBAFF).
    pub mb_adaptive_frame_field: bool,
    /// Coded width in pixels, before cropping.
    pub coded_width: u32,
    /// Coded height in pixels, before cropping.
    pub coded_height: u32,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

impl Sps {
    /// Parses a whole SPS NAL unit (header byte first, emulation-prevention bytes in
    /// place), as [`super::Nal::data`] returns it.
    pub fn parse(data: &[u8]) -> Result<Sps, SpsError> {
        let header = data.first().copied();
        if header.map(|h| NalType::from_u8(h) != NalType::Sps || h & 0x80 != 0) != Some(false) {
            return Err(SpsError::NotSps(header.map(|h| h & 0x1f)));
        }
        if data.len() > MAX_PARAMETER_SET_SIZE {
            return Err(SpsError::TooLong(data.len()));
        }
        let mut r = BitReader::new(data.get(1..).unwrap_or_default());
        let profile_idc = field(r.byte(), "profile_idc")?;
        let constraint_flags = field(r.byte(), "constraint_set_flags")?;
        let level_idc = field(r.byte(), "level_idc")?;
        let id = at_most(
            field(r.ue(), "seq_parameter_set_id")?,
            31,
            "seq_parameter_set_id",
        )?;

        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        let mut bit_depth_chroma = 8;
        if HIGH_PROFILES.contains(&profile_idc) {
            chroma_format_idc =
                at_most(field(r.ue(), "chroma_format_idc")?, 3, "chroma_format_idc")?;
            if chroma_format_idc == 3 {
                separate_colour_plane = field(r.bit(), "separate_colour_plane_flag")?;
            }
            bit_depth_luma = 8 + at_most(
                field(r.ue(), "bit_depth_luma_minus8")?,
                6,
                "bit_depth_luma_minus8",
            )?;
            bit_depth_chroma = 8 + at_most(
                field(r.ue(), "bit_depth_chroma_minus8")?,
                6,
                "bit_depth_chroma_minus8",
            )?;
            field(r.bit(), "qpprime_y_zero_transform_bypass_flag")?;
            if field(r.bit(), "seq_scaling_matrix_present_flag")? {
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if field(r.bit(), "seq_scaling_list_present_flag")? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }

        let log2_max_frame_num = 4 + at_most(
            field(r.ue(), "log2_max_frame_num_minus4")?,
            12,
            "log2_max_frame_num_minus4",
        )?;
        let pic_order_cnt_type = at_most(
            field(r.ue(), "pic_order_cnt_type")?,
            2,
            "pic_order_cnt_type",
        )?;
        let mut log2_max_poc_lsb = 0;
        let mut delta_pic_order_always_zero = false;
        if pic_order_cnt_type == 0 {
            log2_max_poc_lsb = 4 + at_most(
                field(r.ue(), "log2_max_pic_order_cnt_lsb_minus4")?,
                12,
                "log2_max_pic_order_cnt_lsb_minus4",
            )?;
        } else if pic_order_cnt_type == 1 {
            delta_pic_order_always_zero = field(r.bit(), "delta_pic_order_always_zero_flag")?;
            field(r.se(), "offset_for_non_ref_pic")?;
            field(r.se(), "offset_for_top_to_bottom_field")?;
            let cycle = at_most(
                field(r.ue(), "num_ref_frames_in_pic_order_cnt_cycle")?,
                255,
                "num_ref_frames_in_pic_order_cnt_cycle",
            )?;
            for _ in 0..cycle {
                field(r.se(), "offset_for_ref_frame")?;
            }
        }
        let max_num_ref_frames = field(r.ue(), "max_num_ref_frames")?;
        field(r.bit(), "gaps_in_frame_num_value_allowed_flag")?;
        let width_mbs = u64::from(field(r.ue(), "pic_width_in_mbs_minus1")?) + 1;
        let height_map_units = u64::from(field(r.ue(), "pic_height_in_map_units_minus1")?) + 1;
        let frame_mbs_only = field(r.bit(), "frame_mbs_only_flag")?;
        let mb_adaptive_frame_field = if frame_mbs_only {
            false
        } else {
            field(r.bit(), "mb_adaptive_frame_field_flag")?
        };
        field(r.bit(), "direct_8x8_inference_flag")?;
        let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) =
            (0u64, 0u64, 0u64, 0u64);
        if field(r.bit(), "frame_cropping_flag")? {
            crop_left = field(r.ue(), "frame_crop_left_offset")?.into();
            crop_right = field(r.ue(), "frame_crop_right_offset")?.into();
            crop_top = field(r.ue(), "frame_crop_top_offset")?.into();
            crop_bottom = field(r.ue(), "frame_crop_bottom_offset")?.into();
        }

        // Picture size (7.4.2.1.1): crop units depend on chroma subsampling and on
        // whether the picture may be coded as two fields.
        let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_unit_x, crop_unit_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let coded_width = width_mbs * 16;
        let coded_height = height_map_units * field_factor * 16;
        let crop_x = crop_unit_x * (crop_left + crop_right);
        let crop_y = crop_unit_y * (crop_top + crop_bottom);
        if crop_x >= coded_width {
            return Err(SpsError::Invalid {
                field: "frame_crop_left_offset + frame_crop_right_offset",
                value: crop_left + crop_right,
            });
        }
        if crop_y >= coded_height {
            return Err(SpsError::Invalid {
                field: "frame_crop_top_offset + frame_crop_bottom_offset",
                value: crop_top + crop_bottom,
            });
        }
        let to_u32 = |value: u64, name: &'static str| {
            u32::try_from(value).map_err(|_| SpsError::Invalid { field: name, value })
        };
        let coded_width = to_u32(coded_width, "pic_width_in_mbs_minus1")?;
        let coded_height = to_u32(coded_height, "pic_height_in_map_units_minus1")?;
        let width = coded_width - crop_x as u32;
        let height = coded_height - crop_y as u32;

        // A damaged VUI does not make the rest of the SPS useless: no frame rate then
        // (and the range as far as it was read).
        let mut full_range = false;
        let frame_rate = if field(r.bit(), "vui_parameters_present_flag")? {
            vui(&mut r, &mut full_range).ok().flatten()
        } else {
            None
        };

        Ok(Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            id,
            width,
            height,
            frame_rate,
            full_range,
            chroma_format_idc,
            separate_colour_plane,
            bit_depth_luma,
            bit_depth_chroma,
            log2_max_frame_num,
            pic_order_cnt_type,
            log2_max_poc_lsb,
            delta_pic_order_always_zero,
            max_num_ref_frames,
            frame_mbs_only,
            mb_adaptive_frame_field,
            coded_width,
            coded_height,
        })
    }

    /// RFC 6381 codec string, e.g. `avc1.640028`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Skips a `scaling_list()` (7.3.2.1.1.1) of `size` coefficients.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = i64::from(field(r.se(), "delta_scale")?);
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::Invalid {
                    field: "delta_scale",
                    value: delta.unsigned_abs(),
                });
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Reads the VUI (E.1.1) up to the timing info; the frame rate when it is there.
/// `full_range` is set from `video_full_range_flag` on the way.
fn vui(r: &mut BitReader<'_>, full_range: &mut bool) -> Result<Option<f64>, BitError> {
    if r.bit()? {
        // aspect_ratio_info_present_flag
        if r.byte()? == 255 {
            // Extended_SAR: sar_width, sar_height.
            r.bits(32)?;
        }
    }
    if r.bit()? {
        // overscan_info_present_flag: overscan_appropriate_flag
        r.bit()?;
    }
    if r.bit()? {
        // video_signal_type_present_flag: video_format, video_full_range_flag
        r.bits(3)?;
        *full_range = r.bit()?;
        if r.bit()? {
            // colour_description_present_flag: primaries, transfer, matrix
            r.bits(24)?;
        }
    }
    if r.bit()? {
        // chroma_loc_info_present_flag
        r.ue()?;
        r.ue()?;
    }
    if !r.bit()? {
        // timing_info_present_flag
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    Ok(Some(
        f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn parses_the_hub_test_sps() {
        // 64x48 baseline, as the hub's tests use it.
        let sps = Sps::parse(&hex("6742c00ad9047b011000000300100000030320f1226480")).unwrap();
        assert_eq!(sps.profile_idc, 66);
        assert_eq!(sps.constraint_flags, 0xc0);
        assert_eq!(sps.level_idc, 10);
        assert_eq!(sps.id, 0);
        assert_eq!((sps.width, sps.height), (64, 48));
        assert_eq!(sps.codec_string(), "avc1.42c00a");
        assert!(sps.frame_mbs_only);
        // VUI timing: time_scale 0x30 (scaled below) ... whatever it is, it is finite.
        if let Some(fps) = sps.frame_rate {
            assert!(fps.is_finite() && fps > 0.0);
        }
    }

    #[test]
    fn rejects_other_nal_units_and_garbage() {
        assert!(matches!(Sps::parse(&[]), Err(SpsError::NotSps(None))));
        let mut long = crate::h264::testing::SpsSpec::default().bytes();
        assert!(Sps::parse(&long).is_ok());
        long.resize(MAX_PARAMETER_SET_SIZE + 1, 0x55);
        assert!(matches!(Sps::parse(&long), Err(SpsError::TooLong(_))));
        assert!(matches!(
            Sps::parse(&hex("68cb83cb20")),
            Err(SpsError::NotSps(Some(8)))
        ));
        assert!(matches!(Sps::parse(&[0x67]), Err(SpsError::Field { .. })));
        assert!(matches!(
            Sps::parse(&[0xe7, 0x42]),
            Err(SpsError::NotSps(_))
        ));
        // Truncated after level_idc.
        assert!(matches!(
            Sps::parse(&[0x67, 0x64, 0x00, 0x28]),
            Err(SpsError::Field {
                field: "seq_parameter_set_id",
                ..
            })
        ));
    }

    use crate::h264::testing::SpsSpec;

    fn parse(spec: &SpsSpec) -> Sps {
        Sps::parse(&spec.bytes()).unwrap()
    }

    #[test]
    fn high_profile_with_scaling_lists_and_odd_size() {
        let spec = SpsSpec {
            profile_idc: 100,
            constraint_flags: 0,
            level_idc: 40,
            id: 3,
            scaling_lists: true,
            width_mbs: 103,
            height_map_units: 77,
            crop: Some([0, 4, 0, 0]),
            log2_max_frame_num: 9,
            log2_max_poc_lsb: 11,
            timing: Some((1, 60)),
            ..SpsSpec::default()
        };
        let sps = parse(&spec);
        assert_eq!(sps.codec_string(), "avc1.640028");
        assert_eq!(sps.id, 3);
        assert_eq!((sps.width, sps.height), (1640, 1232));
        assert_eq!((sps.coded_width, sps.coded_height), (1648, 1232));
        assert_eq!(sps.log2_max_frame_num, 9);
        assert_eq!(sps.log2_max_poc_lsb, 11);
        assert_eq!(sps.frame_rate, Some(30.0));
        assert_eq!(sps.chroma_format_idc, 1);
    }

    #[test]
    fn crop_units_follow_chroma_format_and_field_coding() {
        let base = SpsSpec {
            profile_idc: 122,
            width_mbs: 10,
            height_map_units: 10,
            ..SpsSpec::default()
        };
        // 4:2:2: crop unit 2 across, 1 down.
        let sps = parse(&SpsSpec {
            chroma_format_idc: 2,
            crop: Some([1, 1, 1, 2]),
            ..base.clone()
        });
        assert_eq!((sps.width, sps.height), (160 - 4, 160 - 3));
        // 4:0:0: crop unit 1 both ways.
        let sps = parse(&SpsSpec {
            profile_idc: 100,
            chroma_format_idc: 0,
            crop: Some([1, 2, 0, 3]),
            ..base.clone()
        });
        assert_eq!((sps.width, sps.height), (160 - 3, 160 - 3));
        assert_eq!(sps.chroma_format_idc, 0);
        // 4:4:4 with scaling lists (12 of them): crop unit 1.
        let sps = parse(&SpsSpec {
            profile_idc: 244,
            chroma_format_idc: 3,
            scaling_lists: true,
            crop: Some([1, 0, 0, 1]),
            ..base.clone()
        });
        assert_eq!((sps.width, sps.height), (159, 159));
        assert!(!sps.separate_colour_plane);
        // Separate colour planes: ChromaArrayType 0.
        let sps = parse(&SpsSpec {
            profile_idc: 244,
            chroma_format_idc: 3,
            separate_colour_plane: true,
            crop: Some([1, 0, 0, 1]),
            ..base.clone()
        });
        assert!(sps.separate_colour_plane);
        assert_eq!((sps.width, sps.height), (159, 159));
        // Field coding, 4:2:0: map units are field macroblock rows (height doubles),
        // the vertical crop unit is 4.
        let sps = parse(&SpsSpec {
            frame_mbs_only: false,
            height_map_units: 17,
            crop: Some([0, 0, 0, 4]),
            ..base.clone()
        });
        assert!(!sps.frame_mbs_only);
        assert!(sps.mb_adaptive_frame_field);
        assert_eq!(sps.coded_height, 544);
        assert_eq!(sps.height, 544 - 16);
        // Field coding, 4:0:0: vertical crop unit 2.
        let sps = parse(&SpsSpec {
            profile_idc: 100,
            chroma_format_idc: 0,
            frame_mbs_only: false,
            height_map_units: 17,
            crop: Some([0, 0, 0, 4]),
            ..base
        });
        assert_eq!(sps.height, 544 - 8);
    }

    #[test]
    fn picture_order_count_types() {
        let sps = parse(&SpsSpec {
            poc_type: 1,
            delta_pic_order_always_zero: true,
            ..SpsSpec::default()
        });
        assert_eq!(sps.pic_order_cnt_type, 1);
        assert!(sps.delta_pic_order_always_zero);
        assert_eq!((sps.width, sps.height), (64, 48));
        let sps = parse(&SpsSpec {
            poc_type: 2,
            log2_max_frame_num: 16,
            ..SpsSpec::default()
        });
        assert_eq!(sps.pic_order_cnt_type, 2);
        assert_eq!(sps.log2_max_frame_num, 16);
    }

    #[test]
    fn the_range_comes_from_the_video_signal_type() {
        let range = |full_range| {
            let sps = parse(&SpsSpec {
                full_range,
                timing: Some((1, 50)),
                ..SpsSpec::default()
            });
            assert_eq!(
                sps.frame_rate,
                Some(25.0),
                "the rest of the VUI still reads"
            );
            sps.full_range
        };
        assert!(!range(false));
        assert!(range(true));
    }

    #[test]
    fn frame_rate_from_timing_info() {
        let rate = |timing| {
            parse(&SpsSpec {
                timing,
                ..SpsSpec::default()
            })
            .frame_rate
        };
        assert_eq!(rate(None), None);
        assert_eq!(rate(Some((1, 50))), Some(25.0));
        let ntsc = rate(Some((1001, 60000))).unwrap();
        assert!((ntsc - 29.97).abs() < 0.001);
        assert_eq!(rate(Some((0, 50))), None);
        assert_eq!(rate(Some((1, 0))), None);
    }

    #[test]
    fn invalid_values_are_rejected() {
        let bad_crop = SpsSpec {
            crop: Some([0, 32, 0, 0]),
            ..SpsSpec::default()
        };
        assert!(matches!(
            Sps::parse(&bad_crop.bytes()),
            Err(SpsError::Invalid { .. })
        ));
        let bad_frame_num = SpsSpec {
            log2_max_frame_num: 17,
            ..SpsSpec::default()
        };
        assert!(matches!(
            Sps::parse(&bad_frame_num.bytes()),
            Err(SpsError::Invalid {
                field: "log2_max_frame_num_minus4",
                ..
            })
        ));
    }

    #[test]
    fn every_truncation_fails_cleanly_or_loses_only_the_frame_rate() {
        let spec = SpsSpec {
            profile_idc: 100,
            scaling_lists: true,
            crop: Some([0, 1, 0, 1]),
            timing: Some((1, 50)),
            ..SpsSpec::default()
        };
        let full = spec.bytes();
        let whole = Sps::parse(&full).unwrap();
        assert_eq!(whole.frame_rate, Some(25.0));
        let mut parsed = 0;
        for len in 0..full.len() {
            if let Ok(sps) = Sps::parse(&full[..len]) {
                // Cut inside the VUI: the rest is complete.
                parsed += 1;
                assert!(matches!(sps.frame_rate, None | Some(25.0)), "cut at {len}");
                assert_eq!((sps.width, sps.height), (whole.width, whole.height));
            }
        }
        assert!(parsed > 0 && parsed < full.len());
    }
}
