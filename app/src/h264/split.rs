//! Annex-B byte stream -> NAL units (H.264 Annex B), sans-IO.
//!
//! Bytes arrive in pieces of any size; a start code may straddle two pieces. Every
//! NAL unit is a slice of a shared buffer (no copy per NAL unit). Trailing zero bytes
//! (`trailing_zero_8bits`, the first byte of a four-byte start code) are not part of
//! the NAL unit before them. Bytes before the first start code are dropped. Memory is
//! bounded: a NAL unit longer than [`MAX_NAL_SIZE`] is discarded.

use bytes::BytesMut;

use super::nal::Nal;

/// Longest NAL unit kept; a longer one is discarded and counted.
pub const MAX_NAL_SIZE: usize = 8 << 20;

/// Input is appended and scanned in pieces of at most this size, to keep the buffer
/// bounded whatever size the caller pushes.
const PIECE: usize = 1 << 20;

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
    /// NAL units discarded because they grew beyond [`MAX_NAL_SIZE`].
    pub oversize_nals: u64,
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
    /// Unconsumed bytes: the current NAL unit (or garbage) so far, from its first byte.
    buf: BytesMut,
    /// No start code begins before this index of `buf`.
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
        self.buf.len()
    }

    /// Feeds bytes; NAL units completed by them are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Nal>) {
        for piece in data.chunks(PIECE) {
            self.buf.extend_from_slice(piece);
            self.scan(out);
        }
    }

    /// The input so far ends at a NAL unit boundary: emits the NAL unit in progress.
    /// Bytes after this are dropped until the next start code.
    pub fn flush(&mut self, out: &mut Vec<Nal>) {
        let len = self.buf.len();
        self.finish_nal(len, out);
        self.state = State::Outside;
        self.scanned = 0;
    }

    /// Finds start codes in `buf[scanned..]`, emitting the NAL units they end.
    fn scan(&mut self, out: &mut Vec<Nal>) {
        loop {
            match find_start_code(&self.buf, self.scanned) {
                Some(at) => {
                    self.finish_nal(at, out);
                    // `finish_nal` consumed `buf[..at]`; drop the start code itself.
                    let _ = self.buf.split_to(3.min(self.buf.len()));
                    self.state = State::InNal;
                    self.scanned = 0;
                }
                None => {
                    // A start code may still begin in the last two bytes.
                    self.scanned = self.buf.len().saturating_sub(2);
                    self.bound_memory();
                    return;
                }
            }
        }
    }

    /// Ends the current NAL unit at `buf[end]`: consumes `buf[..end]` and emits it
    /// (without trailing zero bytes) if it is a NAL unit worth keeping.
    fn finish_nal(&mut self, end: usize, out: &mut Vec<Nal>) {
        let end = end.min(self.buf.len());
        let taken = self.buf.split_to(end);
        match self.state {
            State::Outside => {
                self.stats.garbage_bytes += taken.iter().filter(|&&b| b != 0).count() as u64;
            }
            State::Discarding => {}
            State::InNal => {
                let kept = taken.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                if kept == 0 {
                    self.stats.empty_nals += 1;
                    return;
                }
                let mut nal = taken.freeze();
                nal.truncate(kept);
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

    /// Drops the start of a NAL unit (or garbage) that grew too long, keeping the last
    /// two bytes, which may begin a start code.
    fn bound_memory(&mut self) {
        let limit = match self.state {
            // Trailing zeros may be trimmed later, so allow a little slack.
            State::InNal => MAX_NAL_SIZE + 2,
            State::Outside | State::Discarding => 2,
        };
        if self.buf.len() <= limit {
            return;
        }
        let drop = self.buf.len() - 2;
        let dropped = self.buf.split_to(drop);
        match self.state {
            State::InNal => {
                self.stats.oversize_nals += 1;
                self.state = State::Discarding;
            }
            State::Outside => {
                self.stats.garbage_bytes += dropped.iter().filter(|&&b| b != 0).count() as u64;
            }
            State::Discarding => {}
        }
        self.scanned = 0;
    }

    /// Checks the splitter's internal consistency (for tests and fuzzing).
    pub fn check_invariants(&self) {
        assert!(self.scanned <= self.buf.len());
        assert!(self.scanned + 2 >= self.buf.len() || self.scanned == 0);
        assert!(self.buf.len() <= MAX_NAL_SIZE + 2 + PIECE);
        assert!(
            find_start_code(&self.buf, 0).is_none(),
            "unprocessed start code"
        );
        if self.state != State::InNal {
            assert!(self.buf.len() <= 2 + PIECE);
        }
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
    fn nal_units_share_the_input_buffer() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        s.push(&[0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1], &mut out);
        assert_eq!(out.len(), 2);
        let a = out[0].data().as_ptr() as usize;
        let b = out[1].data().as_ptr() as usize;
        // Both point into one allocation, back to back (start code between them).
        assert_eq!(b - a, 5);
    }

    #[test]
    fn oversize_nal_units_are_discarded_and_memory_stays_bounded() {
        let mut s = Splitter::new();
        let mut out = Vec::new();
        s.push(&[0, 0, 1, 0x65], &mut out);
        let block = vec![0x55u8; 1 << 20];
        for _ in 0..10 {
            s.push(&block, &mut out);
            s.check_invariants();
            assert!(s.buffered() <= MAX_NAL_SIZE + 2);
        }
        s.push(&[0, 0, 1, 0x41, 7, 0, 0, 1], &mut out);
        s.flush(&mut out);
        s.check_invariants();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data().as_ref(), &[0x41, 7]);
        assert_eq!(s.stats().oversize_nals, 1);
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
