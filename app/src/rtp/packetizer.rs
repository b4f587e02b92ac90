//! RTP packetization of H.264 access units (RFC 3550 headers, RFC 6184
//! packetization mode 1): each NAL unit that fits goes alone (single NAL unit
//! packet), a larger one in FU-A fragments; the last packet of an access unit
//! carries the marker bit; sequence numbers run on per client across access
//! units. Access unit delimiters are left out (RFC 6184 allows it; receivers
//! find access units by timestamp and marker).

use bytes::{BufMut, Bytes, BytesMut};

use crate::h264::split;

/// RTP payload bytes per packet by default: with the 12-byte RTP header, IP and
/// UDP (or TCP and the 4-byte interleave header) it stays under a 1500-byte MTU.
pub const DEFAULT_MAX_PAYLOAD: usize = 1400;

/// NAL unit type of an access unit delimiter.
const AUD: u8 = 9;
/// NAL unit type of an FU-A fragment (RFC 6184 5.8).
const FU_A: u8 = 28;

/// One client's RTP packetizer.
#[derive(Debug, Clone)]
pub struct Packetizer {
    ssrc: u32,
    next_seq: u16,
    max_payload: usize,
}

impl Packetizer {
    /// A packetizer with this SSRC and first sequence number (both random per
    /// client, RFC 3550 5.1) and payload limit (at least 64 bytes).
    pub fn new(ssrc: u32, first_seq: u16, max_payload: usize) -> Self {
        Packetizer {
            ssrc,
            next_seq: first_seq,
            max_payload: max_payload.max(64),
        }
    }

    /// The sequence number the next packet will have.
    pub fn next_seq(&self) -> u16 {
        self.next_seq
    }

    /// The RTP packets of one access unit (Annex-B), stamped `timestamp` (90 kHz).
    pub fn packetize(&mut self, annex_b: &[u8], timestamp: u32, payload_type: u8) -> Vec<Bytes> {
        let payloads = Payloads::new(&Bytes::copy_from_slice(annex_b), self.max_payload);
        self.packets(&payloads, timestamp, payload_type)
    }

    /// The RTP packets of an access unit already cut into `payloads`, each packet
    /// its own buffer (for UDP).
    pub fn packets(&mut self, payloads: &Payloads, timestamp: u32, payload_type: u8) -> Vec<Bytes> {
        payloads
            .parts
            .iter()
            .map(|part| {
                let mut out = BytesMut::with_capacity(HEADER + part.len());
                self.put(&mut out, part, timestamp, payload_type);
                out.freeze()
            })
            .collect()
    }

    /// Appends the RTP packets of an access unit already cut into `payloads` to
    /// `out`, each framed for the RTSP connection (`$`, `channel`, length;
    /// RFC 2326 10.12): one buffer for the whole access unit.
    pub fn write_interleaved(
        &mut self,
        payloads: &Payloads,
        timestamp: u32,
        payload_type: u8,
        channel: u8,
        out: &mut BytesMut,
    ) {
        out.reserve(payloads.parts.len() * (4 + HEADER) + payloads.bytes);
        for part in &payloads.parts {
            out.put_u8(b'$');
            out.put_u8(channel);
            // A part is at most max_payload bytes, far below 64 KiB.
            out.put_u16((HEADER + part.len()) as u16);
            self.put(out, part, timestamp, payload_type);
        }
    }

    fn put(&mut self, out: &mut BytesMut, part: &Part, timestamp: u32, pt: u8) {
        out.put_u8(0x80); // version 2, no padding, extension or CSRC
        out.put_u8((u8::from(part.marker) << 7) | (pt & 0x7f));
        out.put_u16(self.next_seq);
        out.put_u32(timestamp);
        out.put_u32(self.ssrc);
        out.put_slice(&part.fu[..usize::from(part.fu_len)]);
        out.put_slice(&part.body);
        self.next_seq = self.next_seq.wrapping_add(1);
    }
}

/// RTP header bytes (no CSRC, no extension).
const HEADER: usize = 12;

/// One access unit cut into RTP payloads: the same for every client, so made once
/// per frame and shared; each client then only adds its own headers. The
/// payloads are slices of the frame's buffer, not copies.
#[derive(Debug, Clone)]
pub struct Payloads {
    parts: Vec<Part>,
    /// Payload bytes in all.
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Part {
    /// The FU-A indicator and header, for a fragment.
    fu: [u8; 2],
    fu_len: u8,
    /// The NAL unit, or the fragment's piece of it.
    body: Bytes,
    /// The last packet of the access unit.
    marker: bool,
}

impl Part {
    fn len(&self) -> usize {
        usize::from(self.fu_len) + self.body.len()
    }
}

impl Payloads {
    /// Cuts an access unit (Annex-B) into payloads of at most `max_payload`
    /// bytes (at least 64): single NAL unit packets, FU-A for larger NAL units;
    /// access unit delimiters left out.
    pub fn new(annex_b: &Bytes, max_payload: usize) -> Self {
        let max_payload = max_payload.max(64);
        let nals: Vec<Bytes> = split::nal_ranges(annex_b)
            .into_iter()
            .map(|range| annex_b.slice(range))
            .filter(|nal| nal[0] & 0x1f != AUD)
            .collect();
        let mut parts = Vec::new();
        for (i, nal) in nals.iter().enumerate() {
            let last_nal = i + 1 == nals.len();
            if nal.len() <= max_payload {
                parts.push(Part {
                    fu: [0, 0],
                    fu_len: 0,
                    body: nal.clone(),
                    marker: last_nal,
                });
                continue;
            }
            // FU-A: indicator (F and NRI of the NAL unit, type 28), header (S, E,
            // the NAL unit's type), then a piece of the NAL unit without its
            // header byte.
            let indicator = (nal[0] & 0xe0) | FU_A;
            let kind = nal[0] & 0x1f;
            let piece = max_payload - 2;
            let body_len = nal.len() - 1;
            let count = body_len.div_ceil(piece);
            for j in 0..count {
                let from = 1 + j * piece;
                let to = (from + piece).min(nal.len());
                let start = if j == 0 { 0x80 } else { 0 };
                let end = if j + 1 == count { 0x40 } else { 0 };
                parts.push(Part {
                    fu: [indicator, start | end | kind],
                    fu_len: 2,
                    body: nal.slice(from..to),
                    marker: last_nal && j + 1 == count,
                });
            }
        }
        let bytes = parts.iter().map(Part::len).sum();
        Payloads { parts, bytes }
    }

    /// How many packets.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Payload bytes in all (RTCP's octet count).
    pub fn payload_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reassembles NAL units from packets (RFC 6184 depacketization), checking
    /// each header; returns the NAL units and whether only the last had the marker.
    fn depacketize(packets: &[Bytes], ssrc: u32, ts: u32, first_seq: u16) -> (Vec<Vec<u8>>, bool) {
        let mut nals = Vec::new();
        let mut fragment: Option<Vec<u8>> = None;
        let mut markers_ok = true;
        for (i, p) in packets.iter().enumerate() {
            assert_eq!(p[0], 0x80);
            assert_eq!(
                u16::from_be_bytes([p[2], p[3]]),
                first_seq.wrapping_add(i as u16)
            );
            assert_eq!(u32::from_be_bytes([p[4], p[5], p[6], p[7]]), ts);
            assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]), ssrc);
            let marker = p[1] & 0x80 != 0;
            markers_ok &= marker == (i + 1 == packets.len());
            let payload = &p[12..];
            if payload[0] & 0x1f == FU_A {
                let header = payload[1];
                if header & 0x80 != 0 {
                    fragment = Some(vec![(payload[0] & 0xe0) | (header & 0x1f)]);
                }
                fragment
                    .as_mut()
                    .expect("a fragment after a start")
                    .extend_from_slice(&payload[2..]);
                if header & 0x40 != 0 {
                    nals.push(fragment.take().unwrap());
                }
            } else {
                nals.push(payload.to_vec());
            }
        }
        (nals, markers_ok)
    }

    fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    #[test]
    fn small_units_go_alone_large_ones_in_fragments_and_the_aud_is_left_out() {
        let sps = vec![0x67, 1, 2, 3];
        let pps = vec![0x68, 4];
        let mut idr = vec![0x65];
        idr.extend((0..3000u32).map(|i| (i % 251) as u8 | 1));
        let aud = vec![0x09, 0xf0];
        let mut p = Packetizer::new(0xdead_beef, 65_534, 1400);
        let packets = p.packetize(
            &annex_b(&[aud, sps.clone(), pps.clone(), idr.clone()]),
            9000,
            96,
        );
        // SPS, PPS, then 3000 bytes in pieces of 1398: 3 fragments.
        assert_eq!(packets.len(), 5);
        assert!(packets.iter().all(|p| p.len() <= 12 + 1400));
        let (nals, markers_ok) = depacketize(&packets, 0xdead_beef, 9000, 65_534);
        assert_eq!(nals, [sps, pps, idr]);
        assert!(markers_ok, "the marker is on the last packet only");
        // Sequence numbers wrap and go on with the next access unit.
        assert_eq!(p.next_seq(), 3);
    }

    #[test]
    fn interleaved_packets_are_the_same_packets_framed() {
        let mut idr = vec![0x65];
        idr.extend((0..5000u32).map(|i| (i % 251) as u8 | 1));
        let frame = Bytes::from(annex_b(&[vec![0x67, 1, 2], vec![0x68, 3], idr]));
        let payloads = Payloads::new(&frame, 1400);
        assert_eq!(payloads.len(), 2 + 4);
        let (mut a, mut b) = (Packetizer::new(9, 100, 1400), Packetizer::new(9, 100, 1400));
        let packets = a.packets(&payloads, 77, 96);
        let mut framed = BytesMut::new();
        b.write_interleaved(&payloads, 77, 96, 4, &mut framed);
        let mut expected = Vec::new();
        for p in &packets {
            expected.extend_from_slice(&[b'$', 4]);
            expected.extend_from_slice(&(p.len() as u16).to_be_bytes());
            expected.extend_from_slice(p);
        }
        assert_eq!(&framed[..], &expected[..]);
        assert_eq!(a.next_seq(), b.next_seq());
        let payload: usize = packets.iter().map(|p| p.len() - 12).sum();
        assert_eq!(payloads.payload_bytes(), payload);
    }

    proptest! {
        #[test]
        fn packets_reassemble_to_the_nal_units(
            sizes in proptest::collection::vec(1usize..5000, 1..6),
            max_payload in 64usize..1500,
            first_seq in any::<u16>(),
        ) {
            // NAL units whose bytes never form a start code (the writer would
            // have escaped them).
            let nals: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(k, &n)| {
                    let mut nal = vec![0x41 + (k as u8 % 2) * 0x24];
                    nal.extend((1..n).map(|i| (i % 200) as u8 + 1));
                    nal
                })
                .collect();
            let mut p = Packetizer::new(7, first_seq, max_payload);
            let packets = p.packetize(&annex_b(&nals), 1234, 96);
            prop_assert!(packets.iter().all(|p| p.len() <= 12 + max_payload.max(64)));
            let (out, markers_ok) = depacketize(&packets, 7, 1234, first_seq);
            prop_assert_eq!(out, nals);
            prop_assert!(markers_ok);
        }
    }
}
