//! Annex-B byte stream -> NAL units (H.264 Annex B), sans-IO.
//!
//! Bytes arrive in pieces of any size; a start code may straddle two pieces. Each
//! NAL unit is copied once out of the splitter's buffer into a `Bytes` of its own,
//! so that a NAL unit kept for long (a parameter set in the hub, a pending access
//! unit) holds only its own bytes, never the larger buffer it was found in.
//! Trailing zero bytes (`trailing_zero_8bits`, the first byte of a four-byte start
//! code) are not part of the NAL unit before them. Bytes before the first start code
//! are dropped. Memory is bounded: a NAL unit longer than [`MAX_NAL_SIZE`] is
//! skipped up to the next start code and counted, so input without start codes
//! (random bytes, a file that is not H.264) costs at most that much.

use bytes::Bytes;

use super::nal::Nal;

/// Longest NAL unit kept, 8 MiB; a longer one is skipped up to the next start code
/// and counted ([`SplitStats::oversize_nals`]).
///
/// Why 8 MiB: a NAL unit is at most one coded picture, and a conforming picture fits
/// the coded picture buffer of its level: 3.9 MB for High profile at level 4.0 (what
/// the Pi's encoders produce at 1080p), 9.8 MB at level 4.2. Real pictures are far
/// smaller: a Pi keyframe at 1080p is a few hundred kilobytes even at the encoders'
/// highest bitrate (25 Mbit/s), and 8 MiB is more than two seconds of that bitrate in
/// one picture. The bound keeps what garbage input costs small on a 512 MB Pi Zero.
pub const MAX_NAL_SIZE: usize = 8 << 20;

/// Input is appended and scanned in pieces of at most this size, to keep the buffer
/// bounded whatever size the caller pushes.
const PIECE: usize = 1 << 20;

/// A buffer with more spare room than this (beyond what it holds plus one
/// [`PIECE`]) is shrunk, so memory held for one huge NAL unit is given back.
const SPARE: usize = 2 * PIECE;

/// What the splitter dropped, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SplitStats {
    /// NAL units produced.
    pub nals: u64,
    /// Non-zero bytes before the first start code (or after a flush), dropped.
    pub garbage_bytes: u64,
    /// NAL units dropped because they were empty.
    pub empty_nals: u64,
    /// NAL units dropped because their forbidden_zero_bit was set.
    pub forbidden_bit_nals: u64,
    /// NAL units skipped because they grew beyond [`MAX_NAL_SIZE`].
    pub oversize_nals: u64,
    /// Bytes of those NAL units (up to the next start code), skipped.
    pub oversize_bytes: u64,
}

/// Where the splitter is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// Before the first start code (or after a flush): bytes are dropped.
    #[default]
    Outside,
    /// After a start code: `buf` holds the NAL unit so far.
    InNal,
    /// Inside a NAL unit that grew too long: dropped up to the next start code.
    Discarding,
}

/// Annex-B bytes in, NAL units out.
#[derive(Debug, Default)]
pub struct Splitter {
    /// `buf[start..]` are the unconsumed bytes: the current NAL unit (or garbage)
    /// so far, from its first byte. `buf[..start]` is consumed, removed at the next
    /// push.
    buf: Vec<u8>,
    /// Where the unconsumed bytes begin in `buf`.
    start: usize,
    /// No start code begins before this index of the unconsumed bytes.
    scanned: usize,
    state: State,
    stats: SplitStats,
}

impl Splitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// What has been produced and dropped so far.
    pub fn stats(&self) -> SplitStats {
        self.stats
    }

    /// Bytes held for the NAL unit not yet complete.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Bytes of memory the splitter's buffer holds (its capacity).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The unconsumed bytes.
    fn live(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks the first `n` unconsumed bytes consumed.
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
    }

    /// Feeds bytes; NAL units completed by them are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Nal>) {
        for piece in data.chunks(PIECE) {
            self.compact();
            self.buf.extend_from_slice(piece);
            self.scan(out);
        }
    }

    /// Removes the consumed bytes (at most one piece's worth is moved: what follows
    /// the last start code found) and gives back spare room beyond [`SPARE`].
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let wanted = self.buf.len() + PIECE;
        if self.buf.capacity() > wanted + SPARE {
            self.buf.shrink_to(wanted);
        }
    }

    /// The input so far ends at a NAL unit boundary: emits the NAL unit in progress.
    /// Bytes after this are dropped until the next start code.
    pub fn flush(&mut self, out: &mut Vec<Nal>) {
        let len = self.buffered();
        self.finish_nal(len, out);
        self.state = State::Outside;
        self.scanned = 0;
    }

    /// Finds start codes in the unconsumed bytes from `scanned` on, emitting the NAL
    /// units they end.
    fn scan(&mut self, out: &mut Vec<Nal>) {
        loop {
            match find_start_code(self.live(), self.scanned) {
                Some(at) => {
                    self.finish_nal(at, out);
                    // `finish_nal` consumed the bytes before it; skip the start code.
                    self.consume(3);
                    self.state = State::InNal;
                    self.scanned = 0;
                }
                None => {
                    // A start code may still begin in the last two bytes.
                    self.scanned = self.buffered().saturating_sub(2);
                    self.bound_memory();
                    return;
                }
            }
        }
    }

    /// Ends the current NAL unit `end` bytes into the unconsumed ones: consumes them
    /// and emits a copy (without trailing zero bytes) if it is a NAL unit worth
    /// keeping.
    fn finish_nal(&mut self, end: usize, out: &mut Vec<Nal>) {
        let end = end.min(self.buffered());
        let taken = &self.buf[self.start..self.start + end];
        match self.state {
            State::Outside => {
                self.stats.garbage_bytes += taken.iter().filter(|&&b| b != 0).count() as u64;
            }
            State::Discarding => self.stats.oversize_bytes += end as u64,
            State::InNal => {
                let kept = taken.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                if kept == 0 {
                    self.stats.empty_nals += 1;
                } else if kept > MAX_NAL_SIZE {
                    // Within the slack `bound_memory` allows for trailing zeros.
                    self.stats.oversize_nals += 1;
                    self.stats.oversize_bytes += end as u64;
                } else {
                    let nal = Bytes::copy_from_slice(&taken[..kept]);
                    match Nal::new(nal) {
                        Some(nal) => {
                            self.stats.nals += 1;
                            out.push(nal);
                        }
                        None => self.stats.forbidden_bit_nals += 1,
                    }
                }
            }
        }
        self.consume(end);
    }

    /// Drops the start of a NAL unit (or garbage) that grew too long, keeping the last
    /// two bytes, which may begin a start code.
    fn bound_memory(&mut self) {
        let limit = match self.state {
            // Trailing zeros may be trimmed later, so allow a little slack.
            State::InNal => MAX_NAL_SIZE + 2,
            State::Outside | State::Discarding => 2,
        };
        let len = self.buffered();
        if len <= limit {
            return;
        }
        let drop = len - 2;
        match self.state {
            State::InNal => {
                self.stats.oversize_nals += 1;
                self.stats.oversize_bytes += drop as u64;
                self.state = State::Discarding;
            }
            State::Outside => {
                let dropped = &self.live()[..drop];
                self.stats.garbage_bytes += dropped.iter().filter(|&&b| b != 0).count() as u64;
            }
            State::Discarding => self.stats.oversize_bytes += drop as u64,
        }
        self.consume(drop);
        self.scanned = 0;
    }

    /// Checks the splitter's internal consistency (for tests and fuzzing).
    pub fn check_invariants(&self) {
        let len = self.buffered();
        assert!(self.start <= self.buf.len());
        assert!(self.scanned <= len);
        assert!(self.scanned + 2 >= len || self.scanned == 0);
        assert!(len <= MAX_NAL_SIZE + 2 + PIECE);
        assert!(
            find_start_code(self.live(), 0).is_none(),
            "unprocessed start code"
        );
        if self.state != State::InNal {
            assert!(len <= 2 + PIECE);
        }
        // Memory: what it holds, a piece, and the spare room allowed, doubled for
        // the vector's growth.
        assert!(self.buf.capacity() <= 2 * (MAX_NAL_SIZE + 2 + 2 * PIECE + SPARE));
    }
}

/// Index of the first `00 00 01` in `buf` starting at or after `from`.
fn find_start_code(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < buf.len() {
        let third = buf[i + 2];
        if third > 1 {
            i += 3;
        } else if buf[i + 1] != 0 {
            i += 2;
        } else if third == 1 && buf[i] == 0 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// Where the NAL units of one whole Annex-B buffer are (each without its start
/// code and the zero bytes before the next one; empty ones, and ones with the
/// forbidden bit set, left out, as the [`Splitter`] does): for cutting
/// a hub frame into RTP payloads without copying it.
pub fn nal_ranges(data: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let Some(mut code) = find_start_code(data, 0) else {
        return ranges;
    };
    loop {
        let start = code + 3;
        let next = find_start_code(data, start);
        let mut end = next.unwrap_or(data.len());
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        if end > start && data[start] & 0x80 == 0 {
            ranges.push(start..end);
        }
        match next {
            Some(n) => code = n,
            None => return ranges,
        }
    }
}

/// Whether Annex-B `data` holds a slice (a coded picture's VCL NAL unit, types
/// 1-5), as opposed to only parameter sets or SEI.
pub fn contains_slice(data: &[u8]) -> bool {
    let mut zeros = 0usize;
    for (i, &byte) in data.iter().enumerate() {
        if byte == 0 {
            zeros += 1;
            continue;
        }
        if byte == 1 && zeros >= 2 {
            if let Some(&header) = data.get(i + 1) {
                if (1..=5).contains(&(header & 0x1f)) {
                    return true;
                }
            }
        }
        zeros = 0;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// `nal_ranges` finds what the splitter finds, in one whole buffer.
        #[test]
        fn nal_ranges_agree_with_the_splitter(data in proptest::collection::vec(proptest::prop_oneof![proptest::prelude::Just(0u8), proptest::prelude::Just(1u8), proptest::prelude::any::<u8>()], 0..400)) {
            let (nals, _) = split_all(&[&data]);
            let ranges: Vec<Vec<u8>> = nal_ranges(&data).into_iter().map(|r| data[r].to_vec()).collect();
            proptest::prop_assert_eq!(ranges, nals);
        }
    }

    fn split_all(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, SplitStats) {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        for chunk in chunks {
            s.push(chunk, &mut out);
            s.check_invariants();
        }
        s.flush(&mut out);
        s.check_invariants();
        (out.iter().map(|n| n.data().to_vec()).collect(), s.stats())
    }

    #[test]
    fn finds_start_codes() {
        assert_eq!(find_start_code(&[0, 0, 1], 0), Some(0));
        assert_eq!(find_start_code(&[0, 0, 0, 1], 0), Some(1));
        assert_eq!(find_start_code(&[5, 0, 0, 1], 0), Some(1));
        assert_eq!(find_start_code(&[0, 1, 0, 0, 2, 0, 0], 0), None);
        assert_eq!(find_start_code(&[1, 0, 0, 0, 0, 0, 1, 9], 0), Some(4));
        assert_eq!(find_start_code(&[0, 0, 1, 0, 0, 1], 1), Some(3));
    }

    #[test]
    fn three_and_four_byte_start_codes_and_trailing_zeros() {
        let stream = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 0, 1, 0x65, 4, 0, 0,
        ];
        let (nals, stats) = split_all(&[&stream]);
        assert_eq!(nals, vec![vec![0x67, 1, 2], vec![0x68, 3], vec![0x65, 4]]);
        assert_eq!(stats.nals, 3);
        assert_eq!(stats.garbage_bytes, 0);
    }

    #[test]
    fn start_code_split_at_every_byte() {
        let stream = [
            0x11, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x41, 9, 0, 0, 1, 0x41, 0, 3,
        ];
        let (whole, stats) = split_all(&[&stream]);
        assert_eq!(whole, vec![vec![0x67], vec![0x41, 9], vec![0x41, 0, 3]]);
        assert_eq!(stats.garbage_bytes, 1);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(split_all(&[a, b]).0, whole, "cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(split_all(&bytes).0, whole);
    }

    #[test]
    fn drops_empty_and_forbidden_nal_units() {
        let stream = [0, 0, 1, 0, 0, 1, 0xe5, 1, 0, 0, 1, 0x65, 1];
        let (nals, stats) = split_all(&[&stream]);
        assert_eq!(nals, vec![vec![0x65, 1]]);
        assert_eq!(stats.empty_nals, 1);
        assert_eq!(stats.forbidden_bit_nals, 1);
    }

    #[test]
    fn no_start_code_means_no_nal_units() {
        let (nals, stats) = split_all(&[&[1, 2, 3, 0, 0], &[2, 0, 0]]);
        assert!(nals.is_empty());
        assert_eq!(stats.garbage_bytes, 4);
    }

    #[test]
    fn a_small_nal_unit_does_not_keep_a_large_buffer_alive() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        let mut data = vec![0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65];
        data.resize(4 << 20, 0x55);
        data.extend_from_slice(&[0, 0, 1, 0x41, 1, 0, 0, 1]);
        s.push(&data, &mut out);
        assert_eq!(out.len(), 3);
        // Each NAL unit is its own allocation of its own size: the two-byte PPS
        // does not pin the megabytes around it.
        assert_eq!(out[0].data().as_ref(), &[0x68, 0xce]);
        let (a, b) = (
            out[0].data().as_ptr() as usize,
            out[1].data().as_ptr() as usize,
        );
        assert!(a.abs_diff(b) != 3, "not slices of one buffer");
        // The buffer gives back the room the large NAL unit needed once it is done.
        s.push(&[0x41, 2], &mut out);
        s.check_invariants();
        assert!(s.capacity() <= 4 * PIECE, "{}", s.capacity());
    }

    #[test]
    fn oversize_nal_units_are_skipped_counted_and_memory_stays_bounded() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        s.push(&[0, 0, 1, 0x65], &mut out);
        let block = vec![0x55u8; 1 << 20];
        for _ in 0..20 {
            s.push(&block, &mut out);
            s.check_invariants();
            assert!(s.buffered() <= MAX_NAL_SIZE + 2);
            assert!(s.capacity() <= 2 * (MAX_NAL_SIZE + 2 * PIECE));
        }
        s.push(&[0, 0, 1, 0x41, 7, 0, 0, 1], &mut out);
        s.flush(&mut out);
        s.check_invariants();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data().as_ref(), &[0x41, 7]);
        assert_eq!(s.stats().oversize_nals, 1);
        // The skipped NAL unit's bytes are counted: its header and 20 MiB, up to
        // the zero byte before the next start code.
        assert_eq!(s.stats().oversize_bytes, 1 + (20 << 20));
        // Once done, the buffer is small again.
        assert!(s.capacity() <= 4 * PIECE, "{}", s.capacity());
        // One huge push is bounded too.
        let mut s = Splitter::new();
        let mut out = Vec::new();
        let mut huge = vec![0, 0, 1, 0x65];
        huge.resize(20 << 20, 0x77);
        s.push(&huge, &mut out);
        s.check_invariants();
        assert!(out.is_empty());
        assert_eq!(s.stats().oversize_nals, 1);
    }

    #[test]
    fn bytes_without_start_codes_cost_bounded_memory() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        // Pseudo-random bytes with no 00 00 01 in them (no zero byte at all).
        let mut x = 0x2545_f491_u32;
        let block: Vec<u8> = (0..(1 << 20))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as u8) | 1
            })
            .collect();
        for _ in 0..40 {
            s.push(&block, &mut out);
            s.check_invariants();
            assert!(s.capacity() <= 4 * PIECE, "{}", s.capacity());
        }
        s.flush(&mut out);
        assert!(out.is_empty());
        assert_eq!(s.stats().garbage_bytes, 40 << 20);
    }

    #[test]
    fn a_nal_unit_of_exactly_the_limit_is_kept() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        let mut data = vec![0, 0, 1, 0x65];
        data.resize(4 + MAX_NAL_SIZE - 1, 0x10);
        data.extend_from_slice(&[0, 0, 0, 1, 0x41, 1]);
        s.push(&data, &mut out);
        s.flush(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].data().len(), MAX_NAL_SIZE);
        assert_eq!(s.stats().oversize_nals, 0);
    }

    #[test]
    fn slices_are_told_from_parameter_sets() {
        let sps_pps = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce];
        assert!(!contains_slice(&sps_pps));
        let idr = [0, 0, 0, 1, 0x65, 0x88, 0x84];
        assert!(contains_slice(&idr));
        let p = [0, 0, 1, 0x41, 0x9a];
        assert!(contains_slice(&p));
        let sei_then_slice = [0, 0, 0, 1, 0x06, 0x05, 0x01, 0, 0, 1, 0x25, 0xb8];
        assert!(contains_slice(&sei_then_slice));
        assert!(!contains_slice(&[]));
        assert!(!contains_slice(&[0, 0, 1]));
        // 0x65 after only one zero is payload, not a start code.
        assert!(!contains_slice(&[0, 0, 0, 1, 0x06, 0, 1, 0x65]));
    }
}
