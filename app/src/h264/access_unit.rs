//! Access units: all NAL units of one primary coded picture.
//!
//! SKELETON: the assembler (`AccessUnitAssembler`) is written by the H.264 work item;
//! the `AccessUnit` type below is the seam the rest of the program relies on.

use bytes::{BufMut, Bytes, BytesMut};

use super::nal::{Nal, NalType, START_CODE};

/// Whether a decoder can start at this access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomAccess {
    /// Needs earlier pictures to decode.
    None,
    /// An IDR picture: decoding can start here.
    Idr,
    /// A recovery-point SEI (intra refresh): decoding can start here and the picture
    /// is complete after `recovery_frame_cnt` more frames.
    RecoveryPoint {
        /// Frames until the picture is fully refreshed.
        recovery_frame_cnt: u32,
    },
}

/// All NAL units of one primary coded picture, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The NAL units, in stream order.
    pub nals: Vec<Nal>,
    /// Whether a decoder can start here.
    pub random_access: RandomAccess,
}

impl AccessUnit {
    /// True when a decoder can start at this access unit (IDR or recovery point).
    pub fn is_keyframe(&self) -> bool {
        self.random_access != RandomAccess::None
    }

    /// The NAL units of one type.
    pub fn nals_of(&self, nal_type: NalType) -> impl Iterator<Item = &Nal> {
        self.nals.iter().filter(move |n| n.nal_type() == nal_type)
    }

    /// True when the access unit carries a NAL unit of this type.
    pub fn contains(&self, nal_type: NalType) -> bool {
        self.nals_of(nal_type).next().is_some()
    }

    /// Length of [`AccessUnit::to_annex_b`]'s output.
    pub fn annex_b_len(&self) -> usize {
        self.nals
            .iter()
            .map(|n| START_CODE.len() + n.data().len())
            .sum()
    }

    /// Appends the access unit as Annex-B (four-byte start code before every NAL unit).
    pub fn write_annex_b(&self, out: &mut BytesMut) {
        out.reserve(self.annex_b_len());
        for nal in &self.nals {
            out.put_slice(&START_CODE);
            out.put_slice(nal.data());
        }
    }

    /// The access unit as one Annex-B buffer.
    pub fn to_annex_b(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.annex_b_len());
        self.write_annex_b(&mut out);
        out.freeze()
    }
}
