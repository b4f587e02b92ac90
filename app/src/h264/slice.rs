//! Slice header parsing (H.264 7.3.3), up to the fields that tell whether a slice
//! starts a new primary coded picture (7.4.1.2.4).

use thiserror::Error;

use super::bits::{BitError, BitReader};
use super::nal::{Nal, NalType};
use super::pps::Pps;
use super::sps::Sps;

/// Why a slice header did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SliceError {
    /// The NAL unit does not start with a slice header (types 1, 2, 5).
    #[error("NAL unit type {0} has no slice header")]
    NotASlice(u8),
    /// A field could not be read.
    #[error("cannot read slice header field {field}: {source}")]
    Field {
        /// The syntax element.
        field: &'static str,
        /// What went wrong.
        source: BitError,
    },
    /// The slice refers to a parameter set not seen (yet).
    #[error("slice refers to unknown {kind} {id}")]
    UnknownParameterSet {
        /// "PPS" or "SPS".
        kind: &'static str,
        /// Its id.
        id: u32,
    },
    /// A field holds a value the standard does not allow.
    #[error("slice header field {field} has invalid value {value}")]
    Invalid {
        /// The syntax element.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

/// Adds the field name to a bit-reading error.
fn field<T>(result: Result<T, BitError>, field: &'static str) -> Result<T, SliceError> {
    result.map_err(|source| SliceError::Field { field, source })
}

/// The first fields of a slice header, before any parameter set is needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceStart {
    /// `first_mb_in_slice`.
    pub first_mb_in_slice: u32,
    /// `slice_type` (0..=9).
    pub slice_type: u32,
    /// `pic_parameter_set_id`.
    pub pps_id: u32,
}

impl SliceStart {
    /// Reads the first three fields of a slice NAL unit (types 1, 2 and 5).
    pub fn parse(nal: &Nal) -> Result<SliceStart, SliceError> {
        Self::read(nal, &mut BitReader::new(nal.payload()))
    }

    fn read(nal: &Nal, r: &mut BitReader<'_>) -> Result<SliceStart, SliceError> {
        match nal.nal_type() {
            NalType::Slice | NalType::IdrSlice | NalType::SlicePartition(2) => {}
            other => return Err(SliceError::NotASlice(other.as_u8())),
        }
        let first_mb_in_slice = field(r.ue(), "first_mb_in_slice")?;
        let slice_type = field(r.ue(), "slice_type")?;
        if slice_type > 9 {
            return Err(SliceError::Invalid {
                field: "slice_type",
                value: slice_type,
            });
        }
        let pps_id = field(r.ue(), "pic_parameter_set_id")?;
        if pps_id > 255 {
            return Err(SliceError::Invalid {
                field: "pic_parameter_set_id",
                value: pps_id,
            });
        }
        Ok(SliceStart {
            first_mb_in_slice,
            slice_type,
            pps_id,
        })
    }
}

/// The slice header fields 7.4.1.2.4 compares to find the first slice of a new
/// primary coded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    /// The first fields.
    pub start: SliceStart,
    /// `nal_ref_idc` of the NAL unit.
    pub nal_ref_idc: u8,
    /// `IdrPicFlag`: the NAL unit is an IDR slice.
    pub idr: bool,
    /// `colour_plane_id` (0 unless the SPS codes colour planes separately).
    pub colour_plane_id: u8,
    /// `frame_num`.
    pub frame_num: u32,
    /// `field_pic_flag`.
    pub field_pic: bool,
    /// `bottom_field_flag` (present only for field pictures).
    pub bottom_field: Option<bool>,
    /// `idr_pic_id` (IDR slices only).
    pub idr_pic_id: Option<u32>,
    /// `pic_order_cnt_type` of the SPS.
    pub pic_order_cnt_type: u32,
    /// `pic_order_cnt_lsb` (type 0).
    pub pic_order_cnt_lsb: u32,
    /// `delta_pic_order_cnt_bottom` (type 0, 0 when absent).
    pub delta_pic_order_cnt_bottom: i32,
    /// `delta_pic_order_cnt[0..2]` (type 1, 0 when absent).
    pub delta_pic_order_cnt: [i32; 2],
    /// `redundant_pic_cnt` (0 when absent): non-zero for redundant pictures.
    pub redundant_pic_cnt: u32,
}

impl SliceHeader {
    /// Parses the slice header of `nal` (types 1, 2 and 5) with the parameter sets
    /// `lookup` finds for a PPS id.
    pub fn parse<'a>(
        nal: &Nal,
        lookup: impl FnOnce(u32) -> Option<(&'a Pps, &'a Sps)>,
    ) -> Result<SliceHeader, SliceError> {
        let mut r = BitReader::new(nal.payload());
        let start = SliceStart::read(nal, &mut r)?;
        let (pps, sps) = lookup(start.pps_id).ok_or(SliceError::UnknownParameterSet {
            kind: "PPS",
            id: start.pps_id,
        })?;
        let idr = nal.nal_type() == NalType::IdrSlice;
        let colour_plane_id = if sps.separate_colour_plane {
            field(r.bits(2), "colour_plane_id")? as u8
        } else {
            0
        };
        let frame_num = field(r.bits(sps.log2_max_frame_num), "frame_num")?;
        let mut field_pic = false;
        let mut bottom_field = None;
        if !sps.frame_mbs_only {
            field_pic = field(r.bit(), "field_pic_flag")?;
            if field_pic {
                bottom_field = Some(field(r.bit(), "bottom_field_flag")?);
            }
        }
        let idr_pic_id = if idr {
            Some(field(r.ue(), "idr_pic_id")?)
        } else {
            None
        };
        let mut pic_order_cnt_lsb = 0;
        let mut delta_pic_order_cnt_bottom = 0;
        let mut delta_pic_order_cnt = [0, 0];
        let bottom_present = pps.bottom_field_pic_order_in_frame_present && !field_pic;
        if sps.pic_order_cnt_type == 0 {
            pic_order_cnt_lsb = field(r.bits(sps.log2_max_poc_lsb), "pic_order_cnt_lsb")?;
            if bottom_present {
                delta_pic_order_cnt_bottom = field(r.se(), "delta_pic_order_cnt_bottom")?;
            }
        } else if sps.pic_order_cnt_type == 1 && !sps.delta_pic_order_always_zero {
            delta_pic_order_cnt[0] = field(r.se(), "delta_pic_order_cnt[0]")?;
            if bottom_present {
                delta_pic_order_cnt[1] = field(r.se(), "delta_pic_order_cnt[1]")?;
            }
        }
        let redundant_pic_cnt = if pps.redundant_pic_cnt_present {
            field(r.ue(), "redundant_pic_cnt")?
        } else {
            0
        };
        Ok(SliceHeader {
            start,
            nal_ref_idc: nal.ref_idc(),
            idr,
            colour_plane_id,
            frame_num,
            field_pic,
            bottom_field,
            idr_pic_id,
            pic_order_cnt_type: sps.pic_order_cnt_type,
            pic_order_cnt_lsb,
            delta_pic_order_cnt_bottom,
            delta_pic_order_cnt,
            redundant_pic_cnt,
        })
    }

    /// True when `self`, a slice of a primary coded picture, cannot belong to the
    /// primary coded picture whose previous slice is `prev` (H.264 7.4.1.2.4).
    pub fn starts_new_picture_after(&self, prev: &SliceHeader) -> bool {
        self.frame_num != prev.frame_num
            || self.start.pps_id != prev.start.pps_id
            || self.field_pic != prev.field_pic
            || (self.bottom_field.is_some()
                && prev.bottom_field.is_some()
                && self.bottom_field != prev.bottom_field)
            || ((self.nal_ref_idc == 0) != (prev.nal_ref_idc == 0))
            || (self.pic_order_cnt_type == 0
                && prev.pic_order_cnt_type == 0
                && (self.pic_order_cnt_lsb != prev.pic_order_cnt_lsb
                    || self.delta_pic_order_cnt_bottom != prev.delta_pic_order_cnt_bottom))
            || (self.pic_order_cnt_type == 1
                && prev.pic_order_cnt_type == 1
                && self.delta_pic_order_cnt != prev.delta_pic_order_cnt)
            || self.idr != prev.idr
            || (self.idr && prev.idr && self.idr_pic_id != prev.idr_pic_id)
    }
}
