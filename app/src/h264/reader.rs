//! Splitter + assembler: Annex-B bytes in, access units out. SKELETON: written by the
//! H.264 work item with this API.

use super::access_unit::AccessUnit;

/// Annex-B bytes in, complete access units out.
#[derive(Debug, Default)]
pub struct AccessUnitReader {}

impl AccessUnitReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; access units completed by them are appended to `out`.
    pub fn push(&mut self, _data: &[u8], _out: &mut Vec<AccessUnit>) {}

    /// The input so far ends on an access-unit boundary (end of a frame buffer or of
    /// the file): emits what is pending instead of waiting for the next start code.
    pub fn flush(&mut self, _out: &mut Vec<AccessUnit>) {}
}
