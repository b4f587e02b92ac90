//! H.264 Annex-B parsing, sans-IO: bytes in, NAL units, access units and stream
//! parameters out. No clocks, no threads, no I/O.
//!
//! - [`split`]: Annex-B byte stream -> NAL units (start codes may straddle reads).
//! - [`access_unit`]: NAL units -> access units (H.264 7.4.1.2.3/7.4.1.2.4 rules).
//! - [`sps`]: sequence parameter sets -> codec string, size, frame rate.
//! - [`sei`]: recovery-point SEI for intra-refresh streams.
//! - [`reader`]: splitter + assembler in one, what sources use.

pub mod access_unit;
pub mod nal;
pub mod pps;
pub mod reader;
pub mod split;
pub mod sps;

pub use access_unit::{AccessUnit, RandomAccess};
pub use nal::{Nal, NalType};
pub use reader::AccessUnitReader;
pub use sps::Sps;
