//! Picture parameter set parsing (H.264 7.3.2.2), up to the fields slice headers need.

use thiserror::Error;

use super::bits::{BitError, BitReader};
use super::nal::NalType;

/// Why a picture parameter set did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PpsError {
    /// The NAL unit is empty or not a PPS.
    #[error("not a picture parameter set (nal_unit_type {0:?})")]
    NotPps(Option<u8>),
    /// A field could not be read.
    #[error("cannot read PPS field {field}: {source}")]
    Field {
        /// The syntax element.
        field: &'static str,
        /// What went wrong.
        source: BitError,
    },
    /// A field holds a value the standard does not allow.
    #[error("PPS field {field} has invalid value {value}")]
    Invalid {
        /// The syntax element.
        field: &'static str,
        /// Its value.
        value: u32,
    },
    /// Longer than any real parameter set
    /// ([`MAX_PARAMETER_SET_SIZE`](super::sps::MAX_PARAMETER_SET_SIZE)).
    #[error("PPS of {0} bytes, longer than any real one")]
    TooLong(usize),
}

/// Adds the field name to a bit-reading error.
fn field<T>(result: Result<T, BitError>, field: &'static str) -> Result<T, PpsError> {
    result.map_err(|source| PpsError::Field { field, source })
}

/// Reads a `ue(v)` and checks `value <= max`.
fn ue_at_most(r: &mut BitReader<'_>, max: u32, name: &'static str) -> Result<u32, PpsError> {
    let value = field(r.ue(), name)?;
    if value > max {
        return Err(PpsError::Invalid { field: name, value });
    }
    Ok(value)
}

/// The picture parameter set fields this crate uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pps {
    /// `pic_parameter_set_id` (0..=255).
    pub id: u32,
    /// `seq_parameter_set_id` of the SPS it refers to (0..=31).
    pub sps_id: u32,
    /// `entropy_coding_mode_flag`: CABAC when true.
    pub entropy_coding_mode: bool,
    /// `bottom_field_pic_order_in_frame_present_flag`: slice headers carry
    /// `delta_pic_order_cnt_bottom` / `delta_pic_order_cnt[1]`.
    pub bottom_field_pic_order_in_frame_present: bool,
    /// `num_slice_groups_minus1 + 1`.
    pub num_slice_groups: u32,
    /// `redundant_pic_cnt_present_flag`: slice headers carry `redundant_pic_cnt`.
    pub redundant_pic_cnt_present: bool,
}

impl Pps {
    /// Parses a whole PPS NAL unit (header byte first, emulation-prevention bytes in
    /// place), as [`super::Nal::data`] returns it.
    pub fn parse(data: &[u8]) -> Result<Pps, PpsError> {
        let header = data.first().copied();
        if header.map(|h| NalType::from_u8(h) != NalType::Pps || h & 0x80 != 0) != Some(false) {
            return Err(PpsError::NotPps(header.map(|h| h & 0x1f)));
        }
        if data.len() > super::sps::MAX_PARAMETER_SET_SIZE {
            return Err(PpsError::TooLong(data.len()));
        }
        let mut r = BitReader::new(data.get(1..).unwrap_or_default());
        let id = ue_at_most(&mut r, 255, "pic_parameter_set_id")?;
        let sps_id = ue_at_most(&mut r, 31, "seq_parameter_set_id")?;
        let entropy_coding_mode = field(r.bit(), "entropy_coding_mode_flag")?;
        let bottom_field_pic_order_in_frame_present =
            field(r.bit(), "bottom_field_pic_order_in_frame_present_flag")?;
        let num_slice_groups = 1 + ue_at_most(&mut r, 7, "num_slice_groups_minus1")?;
        if num_slice_groups > 1 {
            let map_type = ue_at_most(&mut r, 6, "slice_group_map_type")?;
            match map_type {
                0 => {
                    for _ in 0..num_slice_groups {
                        field(r.ue(), "run_length_minus1")?;
                    }
                }
                2 => {
                    for _ in 1..num_slice_groups {
                        field(r.ue(), "top_left")?;
                        field(r.ue(), "bottom_right")?;
                    }
                }
                3..=5 => {
                    field(r.bit(), "slice_group_change_direction_flag")?;
                    field(r.ue(), "slice_group_change_rate_minus1")?;
                }
                6 => {
                    let units = u64::from(field(r.ue(), "pic_size_in_map_units_minus1")?) + 1;
                    // Ceil(Log2(num_slice_groups)) bits per slice_group_id.
                    let bits = u64::from(32 - (num_slice_groups - 1).leading_zeros());
                    field(r.skip(units * bits), "slice_group_id")?;
                }
                _ => {}
            }
        }
        ue_at_most(&mut r, 31, "num_ref_idx_l0_default_active_minus1")?;
        ue_at_most(&mut r, 31, "num_ref_idx_l1_default_active_minus1")?;
        field(r.bit(), "weighted_pred_flag")?;
        field(r.bits(2), "weighted_bipred_idc")?;
        field(r.se(), "pic_init_qp_minus26")?;
        field(r.se(), "pic_init_qs_minus26")?;
        field(r.se(), "chroma_qp_index_offset")?;
        field(r.bit(), "deblocking_filter_control_present_flag")?;
        field(r.bit(), "constrained_intra_pred_flag")?;
        let redundant_pic_cnt_present = field(r.bit(), "redundant_pic_cnt_present_flag")?;
        // The rest (transform_8x8_mode_flag, scaling matrices, second chroma QP
        // offset) does not affect slice header parsing up to the fields used here.
        Ok(Pps {
            id,
            sps_id,
            entropy_coding_mode,
            bottom_field_pic_order_in_frame_present,
            num_slice_groups,
            redundant_pic_cnt_present,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_hub_test_pps() {
        let pps = Pps::parse(&[0x68, 0xcb, 0x83, 0xcb, 0x20]).unwrap();
        assert_eq!(pps.id, 0);
        assert_eq!(pps.sps_id, 0);
        assert!(!pps.entropy_coding_mode);
        assert!(!pps.bottom_field_pic_order_in_frame_present);
        assert_eq!(pps.num_slice_groups, 1);
        assert!(!pps.redundant_pic_cnt_present);
    }

    #[test]
    fn rejects_other_nal_units_and_truncation() {
        assert_eq!(Pps::parse(&[]), Err(PpsError::NotPps(None)));
        assert_eq!(Pps::parse(&[0x67, 0x42]), Err(PpsError::NotPps(Some(7))));
        assert!(matches!(
            Pps::parse(&[0x68, 0xcb]),
            Err(PpsError::Field { .. })
        ));
        // A valid start followed by more than any real PPS holds.
        let mut long = vec![0x68, 0xcb, 0x83, 0xcb, 0x20];
        long.resize(crate::h264::sps::MAX_PARAMETER_SET_SIZE + 1, 0x55);
        assert_eq!(Pps::parse(&long), Err(PpsError::TooLong(long.len())));
    }
}
