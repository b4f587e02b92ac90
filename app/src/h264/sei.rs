//! Supplemental enhancement information (H.264 7.3.2.3, D.1): the recovery point
//! message that marks where an intra-refresh stream can be entered.

use thiserror::Error;

use super::bits::{unescape, BitError, BitReader};
use super::nal::{Nal, NalType};

/// `payloadType` of the recovery point SEI message (D.1.8).
pub const RECOVERY_POINT: u32 = 6;

/// Why an SEI NAL unit did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SeiError {
    /// The NAL unit is not an SEI.
    #[error("NAL unit type {0} is not an SEI")]
    NotSei(u8),
    /// The message list ends in the middle of a message header or payload.
    #[error("SEI message truncated")]
    Truncated,
    /// The recovery point payload could not be read.
    #[error("cannot read recovery point: {0}")]
    RecoveryPoint(BitError),
}

/// One SEI message: its type and its payload bytes (RBSP, unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeiMessage<'a> {
    /// `payloadType`.
    pub payload_type: u32,
    /// The payload, `payloadSize` bytes.
    pub payload: &'a [u8],
}

/// Splits an SEI RBSP (unescaped, after the NAL header byte) into its messages.
pub fn messages(rbsp: &[u8]) -> Result<Vec<SeiMessage<'_>>, SeiError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    // more_rbsp_data(): stop at the rbsp_trailing_bits byte (0x80) or the end.
    while pos < rbsp.len() && !(rbsp[pos] == 0x80 && rbsp[pos + 1..].iter().all(|&b| b == 0)) {
        let payload_type = read_ff_coded(rbsp, &mut pos)?;
        let payload_size = read_ff_coded(rbsp, &mut pos)?;
        let end = usize::try_from(payload_size)
            .ok()
            .and_then(|size| pos.checked_add(size))
            .filter(|&end| end <= rbsp.len())
            .ok_or(SeiError::Truncated)?;
        out.push(SeiMessage {
            payload_type,
            payload: &rbsp[pos..end],
        });
        pos = end;
    }
    Ok(out)
}

/// Reads a value coded as `0xFF` bytes (255 each) and a final byte (7.3.2.3.1).
fn read_ff_coded(rbsp: &[u8], pos: &mut usize) -> Result<u32, SeiError> {
    let mut value: u32 = 0;
    loop {
        let byte = *rbsp.get(*pos).ok_or(SeiError::Truncated)?;
        *pos += 1;
        value = value.saturating_add(u32::from(byte));
        if byte != 0xff {
            return Ok(value);
        }
    }
}

/// `recovery_frame_cnt` of the first recovery point message in an SEI NAL unit,
/// `None` when it has none.
pub fn recovery_frame_cnt(nal: &Nal) -> Result<Option<u32>, SeiError> {
    if nal.nal_type() != NalType::Sei {
        return Err(SeiError::NotSei(nal.nal_type().as_u8()));
    }
    let rbsp = unescape(nal.payload());
    for message in messages(&rbsp)? {
        if message.payload_type == RECOVERY_POINT {
            let mut r = BitReader::new_unescaped(message.payload);
            let cnt = r.ue().map_err(SeiError::RecoveryPoint)?;
            return Ok(Some(cnt));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn nal(bytes: &[u8]) -> Nal {
        Nal::new(Bytes::copy_from_slice(bytes)).unwrap()
    }

    #[test]
    fn finds_the_recovery_point() {
        // type 6, size 1, recovery_frame_cnt=0 ('1' + exact_match 0, broken_link 0,
        // changing_slice_group_idc 00) -> 0b1000_0000 ... then trailing bits.
        let sei = nal(&[0x06, 0x06, 0x01, 0x80, 0x80]);
        assert_eq!(recovery_frame_cnt(&sei), Ok(Some(0)));
        // recovery_frame_cnt = 29: ue 000011110 -> bits 0000 1111 0 + flags 000 + pad
        let sei = nal(&[0x06, 0x06, 0x02, 0b0000_1111, 0b0000_0000, 0x80]);
        assert_eq!(recovery_frame_cnt(&sei), Ok(Some(29)));
    }

    #[test]
    fn skips_other_messages_with_long_types_and_sizes() {
        // A user-data message (type 5) of 300 bytes (size coded FF 2D), then type 6.
        let mut bytes = vec![0x06, 0x05, 0xff, 0x2d];
        bytes.extend(std::iter::repeat_n(0x42, 300));
        bytes.extend_from_slice(&[0x06, 0x01, 0x80, 0x80]);
        let sei = nal(&bytes);
        assert_eq!(recovery_frame_cnt(&sei), Ok(Some(0)));
        let rbsp = unescape(sei.payload());
        let list = messages(&rbsp).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].payload_type, 5);
        assert_eq!(list[0].payload.len(), 300);
        // A type >= 255 is coded with FF prefixes: FF 07 = 262, not a recovery point.
        let sei = nal(&[0x06, 0xff, 0x07, 0x01, 0x80, 0x80]);
        assert_eq!(recovery_frame_cnt(&sei), Ok(None));
        let rbsp = unescape(sei.payload());
        assert_eq!(messages(&rbsp).unwrap()[0].payload_type, 262);
    }

    #[test]
    fn truncated_messages_are_errors() {
        assert_eq!(
            recovery_frame_cnt(&nal(&[0x06, 0x06, 0x05, 0x80])),
            Err(SeiError::Truncated)
        );
        assert_eq!(
            recovery_frame_cnt(&nal(&[0x06, 0xff])),
            Err(SeiError::Truncated)
        );
        assert_eq!(recovery_frame_cnt(&nal(&[0x06])), Ok(None));
        assert!(matches!(
            recovery_frame_cnt(&nal(&[0x65, 0x88])),
            Err(SeiError::NotSei(5))
        ));
    }
}
