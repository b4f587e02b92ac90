//! H.264 Annex-B parsing, sans-IO: bytes in, NAL units, access units and stream
//! parameters out. No clocks, no threads, no I/O.
//!
//! - [`split`]: Annex-B byte stream -> NAL units (start codes may straddle reads),
//!   and whether a buffer holds a slice.
//! - [`access_unit`]: NAL units -> access units (H.264 7.4.1.2.3/7.4.1.2.4 rules).
//! - [`sps`], [`pps`]: parameter sets -> codec string, size, frame rate, and what
//!   slice headers need.
//! - [`slice`](mod@slice): slice headers, to tell the slices of one picture from the next.
//! - [`sei`]: recovery-point SEI for intra-refresh streams.
//! - [`bits`]: RBSP bit reader (exp-Golomb, emulation prevention).
//! - [`reader`]: splitter + assembler in one, what sources use.

pub mod access_unit;
pub mod bits;
pub mod level;
pub mod nal;
pub mod pps;
pub mod reader;
pub mod sei;
pub mod slice;
pub mod split;
pub mod sps;
#[cfg(test)]
pub(crate) mod testing;

pub use access_unit::{AccessUnit, AccessUnitAssembler, RandomAccess};
pub use nal::{Nal, NalType};
pub use pps::Pps;
pub use reader::{AccessUnitReader, ReaderStats};
pub use sps::Sps;
