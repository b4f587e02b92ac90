//! Bit reader over an RBSP (H.264 7.2): reads a NAL unit's payload as the spec's
//! `u(n)`, `ue(v)` and `se(v)` while dropping emulation-prevention bytes on the fly.

use thiserror::Error;

/// Why reading bits failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BitError {
    /// The data ended before the value did.
    #[error("data ends before the field")]
    Eof,
    /// An exp-Golomb code with more than 31 leading zero bits (no field needs one).
    #[error("exp-Golomb code longer than 32 bits")]
    GolombTooLong,
}

/// Reads bits, most significant first, from escaped NAL unit bytes: a `0x03` after
/// two zero bytes is an emulation-prevention byte and is skipped (H.264 7.4.1).
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Index of the next escaped byte to load.
    pos: usize,
    /// Zero bytes just loaded (saturating at 2).
    zeros: u8,
    /// The byte being read.
    current: u8,
    /// Unread bits left in `current`.
    bits_left: u8,
    /// Whether emulation-prevention bytes are to be skipped.
    escaped: bool,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data` (escaped bytes, e.g. a NAL unit's payload).
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            zeros: 0,
            current: 0,
            bits_left: 0,
            escaped: true,
        }
    }

    /// A reader at the first bit of `rbsp`, bytes already unescaped (no
    /// emulation-prevention bytes to skip).
    pub fn new_unescaped(rbsp: &'a [u8]) -> Self {
        BitReader {
            escaped: false,
            ..BitReader::new(rbsp)
        }
    }

    /// Loads the next RBSP byte, skipping an emulation-prevention byte.
    fn load(&mut self) -> Result<(), BitError> {
        loop {
            let byte = *self.data.get(self.pos).ok_or(BitError::Eof)?;
            self.pos += 1;
            if self.escaped && self.zeros >= 2 && byte == 0x03 {
                self.zeros = 0;
                continue;
            }
            self.zeros = if byte == 0 {
                self.zeros.saturating_add(1).min(2)
            } else {
                0
            };
            self.current = byte;
            self.bits_left = 8;
            return Ok(());
        }
    }

    /// `u(1)`.
    pub fn bit(&mut self) -> Result<bool, BitError> {
        if self.bits_left == 0 {
            self.load()?;
        }
        self.bits_left -= 1;
        Ok((self.current >> self.bits_left) & 1 == 1)
    }

    /// `u(n)` for `n <= 32`.
    pub fn bits(&mut self, n: u32) -> Result<u32, BitError> {
        debug_assert!(n <= 32);
        let mut value: u64 = 0;
        let mut left = n.min(32);
        while left > 0 {
            if self.bits_left == 0 {
                self.load()?;
            }
            let take = left.min(u32::from(self.bits_left));
            let shift = u32::from(self.bits_left) - take;
            let chunk = (u32::from(self.current) >> shift) & ((1u32 << take) - 1);
            value = (value << take) | u64::from(chunk);
            // `take <= bits_left <= 8`, so this fits in a u8.
            self.bits_left -= take as u8;
            left -= take;
        }
        Ok(value as u32)
    }

    /// `u(8)`.
    pub fn byte(&mut self) -> Result<u8, BitError> {
        Ok(self.bits(8)? as u8)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, mut n: u64) -> Result<(), BitError> {
        while n > 0 {
            let step = n.min(32) as u32;
            self.bits(step)?;
            n -= u64::from(step);
        }
        Ok(())
    }

    /// `ue(v)`: unsigned exp-Golomb (9.1), up to `2^32 - 2`.
    pub fn ue(&mut self) -> Result<u32, BitError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitError::GolombTooLong);
            }
        }
        if zeros == 0 {
            return Ok(0);
        }
        let suffix = self.bits(zeros)?;
        // (1 << zeros) - 1 + suffix <= 2^32 - 2 for zeros <= 31.
        Ok(((1u64 << zeros) - 1 + u64::from(suffix)) as u32)
    }

    /// `se(v)`: signed exp-Golomb (9.1.1).
    pub fn se(&mut self) -> Result<i32, BitError> {
        let k = i64::from(self.ue()?);
        let value = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        // |value| <= 2^31 - 1.
        Ok(value as i32)
    }

    /// True while RBSP data is left before the `rbsp_trailing_bits` (7.2
    /// `more_rbsp_data()`): false at the end or when only the stop bit and zero bits
    /// (and trailing `cabac_zero_word`s) remain.
    pub fn more_rbsp_data(&self) -> bool {
        let mut probe = self.clone();
        // Find the position of the last 1 bit in the rest of the data.
        let mut ones_after_first = false;
        let mut seen_one = false;
        loop {
            match probe.bit() {
                Ok(true) => {
                    if seen_one {
                        ones_after_first = true;
                        break;
                    }
                    seen_one = true;
                }
                Ok(false) => {}
                Err(_) => break,
            }
        }
        ones_after_first
    }
}

/// Removes the emulation-prevention bytes from escaped NAL unit bytes: the RBSP.
pub fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0u8;
    for &byte in data {
        if zeros >= 2 && byte == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { (zeros + 1).min(2) } else { 0 };
        out.push(byte);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fixed_width_fields_across_bytes() {
        let mut r = BitReader::new(&[0b1010_1100, 0b0101_0011]);
        assert!(r.bit().unwrap());
        assert_eq!(r.bits(3).unwrap(), 0b010);
        assert_eq!(r.bits(8).unwrap(), 0b1100_0101);
        assert_eq!(r.bits(4).unwrap(), 0b0011);
        assert_eq!(r.bit(), Err(BitError::Eof));
    }

    #[test]
    fn reads_32_bits() {
        let mut r = BitReader::new(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(r.bits(32).unwrap(), 0xdead_beef);
    }

    #[test]
    fn exp_golomb_values() {
        // 1 | 010 | 011 | 00100 | 00101 | 0001000 -> 0,1,2,3,4,7
        // bits: 1010 0110 0100 0010 1000 1000 (+ padding)
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0010, 0b1000_1000]);
        let values: Vec<u32> = (0..6).map(|_| r.ue().unwrap()).collect();
        assert_eq!(values, [0, 1, 2, 3, 4, 7]);
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0010, 0b1000_1000]);
        let signed: Vec<i32> = (0..6).map(|_| r.se().unwrap()).collect();
        assert_eq!(signed, [0, 1, -1, 2, -2, 4]);
    }

    #[test]
    fn exp_golomb_limits() {
        // 31 zeros, a one, 31 ones: 2^32 - 2.
        let bytes = [0, 0, 0, 0x01, 0xff, 0xff, 0xff, 0xfe];
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.ue().unwrap(), u32::MAX - 1);
        let mut r = BitReader::new(&[0, 0, 0, 0, 0x80]);
        assert_eq!(r.ue(), Err(BitError::GolombTooLong));
        let mut r = BitReader::new(&[0, 0]);
        assert_eq!(r.ue(), Err(BitError::Eof));
    }

    #[test]
    fn skips_emulation_prevention_bytes() {
        let escaped = [0x00, 0x00, 0x03, 0x01, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03];
        assert_eq!(unescape(&escaped), [0, 0, 1, 0, 0, 0, 0]);
        let mut r = BitReader::new(&escaped);
        let read: Vec<u8> = (0..7).map(|_| r.byte().unwrap()).collect();
        assert_eq!(read, [0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(r.byte(), Err(BitError::Eof));
        // A 03 not after two zeros is data.
        assert_eq!(
            unescape(&[0x00, 0x03, 0x00, 0x00, 0x03, 0x03]),
            [0, 3, 0, 0, 3]
        );
        let mut r = BitReader::new_unescaped(&[0, 0, 3]);
        assert_eq!(r.bits(24).unwrap(), 3);
    }

    #[test]
    fn more_rbsp_data_sees_the_stop_bit() {
        assert!(!BitReader::new(&[0x80]).more_rbsp_data());
        assert!(!BitReader::new(&[0x80, 0x00]).more_rbsp_data());
        assert!(BitReader::new(&[0xc0]).more_rbsp_data());
        let mut r = BitReader::new(&[0b0101_1000]);
        r.bits(2).unwrap();
        assert!(r.more_rbsp_data());
        r.bits(2).unwrap();
        assert!(!r.more_rbsp_data());
        assert!(!BitReader::new(&[]).more_rbsp_data());
    }
}
