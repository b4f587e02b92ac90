//! RTCP (RFC 3550 6) for RTSP clients: the sender report every few seconds that
//! maps RTP timestamps to wall-clock (NTP) time, which recorders need to timestamp
//! what they store, sent as a compound packet with the SDES CNAME RFC 3550 6.1
//! requires; and what clients send back, read only for a BYE (the client is
//! leaving) and as a sign of life.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// Sender reports are sent this often (RFC 3550's 5 s minimum interval).
pub const SENDER_REPORT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// RTCP packet types.
const SR: u8 = 200;
const SDES: u8 = 202;
const BYE: u8 = 203;

/// A wall-clock time as a 64-bit NTP timestamp (32.32 fixed point since 1900).
pub fn ntp_timestamp(time: SystemTime) -> u64 {
    let since_unix = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since_unix.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// What a sender report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// The stream's SSRC.
    pub ssrc: u32,
    /// Wall-clock time of `rtp_timestamp`.
    pub ntp: u64,
    /// The RTP timestamp that corresponds to `ntp`.
    pub rtp_timestamp: u32,
    /// RTP packets sent to this client so far.
    pub packets: u32,
    /// Payload bytes sent to this client so far.
    pub octets: u32,
}

/// A compound RTCP packet: the sender report (no report blocks: the server
/// receives nothing) and an SDES with the CNAME.
pub fn sender_report(info: &SenderInfo, cname: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    // SR: V=2, P=0, RC=0; length in 32-bit words minus one (6).
    out.put_u8(0x80);
    out.put_u8(SR);
    out.put_u16(6);
    out.put_u32(info.ssrc);
    out.put_u64(info.ntp);
    out.put_u32(info.rtp_timestamp);
    out.put_u32(info.packets);
    out.put_u32(info.octets);
    // SDES: one chunk, the CNAME item, then END and padding to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let chunk_len = 4 + 2 + name.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    out.put_u8(0x81); // SC = 1
    out.put_u8(SDES);
    out.put_u16((padded / 4) as u16);
    out.put_u32(info.ssrc);
    out.put_u8(1); // CNAME
    out.put_u8(name.len() as u8);
    out.put_slice(name);
    out.put_bytes(0, padded - (chunk_len - 1));
    out.freeze()
}

/// True when the compound RTCP packet `data` holds a BYE. Malformed input is
/// read as far as it is well-formed.
pub fn has_bye(mut data: &[u8]) -> bool {
    while data.len() >= 4 {
        if data[0] >> 6 != 2 {
            return false;
        }
        if data[1] == BYE {
            return true;
        }
        let len = (usize::from(u16::from_be_bytes([data[2], data[3]])) + 1) * 4;
        match data.get(len..) {
            Some(rest) => data = rest,
            None => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn ntp_time_counts_from_1900_in_32_32_fixed_point() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(ntp_timestamp(t) >> 32, NTP_UNIX_OFFSET + 1);
        assert_eq!(ntp_timestamp(t) & 0xffff_ffff, 1 << 31);
    }

    #[test]
    fn a_sender_report_is_an_sr_and_an_sdes_of_whole_words() {
        let info = SenderInfo {
            ssrc: 0x1234_5678,
            ntp: 0x0102_0304_0506_0708,
            rtp_timestamp: 90_000,
            packets: 10,
            octets: 12_000,
        };
        let packet = sender_report(&info, "streamer");
        assert_eq!(packet.len() % 4, 0);
        assert_eq!(&packet[..2], &[0x80, SR]);
        assert_eq!(u16::from_be_bytes([packet[2], packet[3]]), 6);
        assert_eq!(&packet[4..8], &0x1234_5678u32.to_be_bytes());
        assert_eq!(&packet[8..16], &0x0102_0304_0506_0708u64.to_be_bytes());
        assert_eq!(&packet[16..20], &90_000u32.to_be_bytes());
        // The SDES follows the SR's 28 bytes; its length field covers the rest.
        let sdes = &packet[28..];
        assert_eq!(&sdes[..2], &[0x81, SDES]);
        assert_eq!(
            (usize::from(u16::from_be_bytes([sdes[2], sdes[3]])) + 1) * 4,
            sdes.len()
        );
        assert_eq!(&sdes[8..10], &[1, 8]);
        assert_eq!(&sdes[10..18], b"streamer");
        assert!(!has_bye(&packet));
    }

    #[test]
    fn a_bye_is_found_in_a_compound_packet() {
        // A receiver report (RC=0, length 1) followed by a BYE.
        let mut compound = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
        compound.extend_from_slice(&[0x81, BYE, 0, 1, 0, 0, 0, 9]);
        assert!(has_bye(&compound));
        assert!(!has_bye(&compound[..8]));
        assert!(!has_bye(&[0x80, 201, 0, 50]), "a length past the end");
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panicking(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = has_bye(&data);
        }

        #[test]
        fn any_cname_makes_whole_words(cname in "\\PC{0,300}") {
            let info = SenderInfo { ssrc: 1, ntp: 2, rtp_timestamp: 3, packets: 4, octets: 5 };
            let packet = sender_report(&info, &cname);
            prop_assert_eq!(packet.len() % 4, 0);
            let sdes = &packet[28..];
            prop_assert_eq!((usize::from(u16::from_be_bytes([sdes[2], sdes[3]])) + 1) * 4, sdes.len());
        }
    }
}
