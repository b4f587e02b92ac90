//! NAL units and their header (H.264 7.3.1).

use bytes::Bytes;

/// The four-byte Annex-B start code this crate writes in front of every NAL unit.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// `nal_unit_type` (H.264 Table 7-1). Types this crate acts on are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NalType {
    /// Coded slice of a non-IDR picture (1).
    Slice,
    /// Coded slice data partition A, B or C (2, 3, 4).
    SlicePartition(u8),
    /// Coded slice of an IDR picture (5).
    IdrSlice,
    /// Supplemental enhancement information (6).
    Sei,
    /// Sequence parameter set (7).
    Sps,
    /// Picture parameter set (8).
    Pps,
    /// Access unit delimiter (9).
    Aud,
    /// End of sequence (10).
    EndOfSequence,
    /// End of stream (11).
    EndOfStream,
    /// Filler data (12).
    Filler,
    /// Any other type (0, 13..=31), kept as its number.
    Other(u8),
}

impl NalType {
    /// The type from its 5-bit number.
    pub fn from_u8(value: u8) -> Self {
        match value & 0x1f {
            1 => NalType::Slice,
            n @ 2..=4 => NalType::SlicePartition(n),
            5 => NalType::IdrSlice,
            6 => NalType::Sei,
            7 => NalType::Sps,
            8 => NalType::Pps,
            9 => NalType::Aud,
            10 => NalType::EndOfSequence,
            11 => NalType::EndOfStream,
            12 => NalType::Filler,
            n => NalType::Other(n),
        }
    }

    /// The 5-bit number.
    pub fn as_u8(self) -> u8 {
        match self {
            NalType::Slice => 1,
            NalType::SlicePartition(n) => n,
            NalType::IdrSlice => 5,
            NalType::Sei => 6,
            NalType::Sps => 7,
            NalType::Pps => 8,
            NalType::Aud => 9,
            NalType::EndOfSequence => 10,
            NalType::EndOfStream => 11,
            NalType::Filler => 12,
            NalType::Other(n) => n,
        }
    }

    /// Video coding layer: carries slice data of a picture (types 1..=5).
    pub fn is_vcl(self) -> bool {
        matches!(
            self,
            NalType::Slice | NalType::SlicePartition(_) | NalType::IdrSlice
        )
    }
}

/// One NAL unit: header byte and payload, without start code, emulation prevention
/// bytes left in place. Cheap to clone: `data` is a slice of a shared buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nal {
    data: Bytes,
}

impl Nal {
    /// Wraps the bytes of a NAL unit (header byte first). Returns `None` for empty
    /// input or when the forbidden_zero_bit is set, which no valid NAL unit has.
    pub fn new(data: Bytes) -> Option<Self> {
        match data.first() {
            Some(&header) if header & 0x80 == 0 => Some(Nal { data }),
            _ => None,
        }
    }

    /// `nal_unit_type`.
    pub fn nal_type(&self) -> NalType {
        NalType::from_u8(self.data[0])
    }

    /// `nal_ref_idc`: 0 means the NAL unit is not used for reference.
    pub fn ref_idc(&self) -> u8 {
        (self.data[0] >> 5) & 0x3
    }

    /// Header byte and payload, as in the byte stream (no start code).
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// The payload after the one-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.data[1..]
    }
}
