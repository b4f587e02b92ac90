//! Splitter + assembler: Annex-B bytes in, access units out. What sources use.

use super::access_unit::{AccessUnit, AccessUnitAssembler, AssemblerStats};
use super::nal::Nal;
use super::split::{SplitStats, Splitter};

/// Counters of what the reader produced and what it dropped or could not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Byte stream -> NAL units.
    pub split: SplitStats,
    /// NAL units -> access units.
    pub assembler: AssemblerStats,
}

impl ReaderStats {
    /// Errors of all kinds: dropped or oversize NAL units, NAL units that did not
    /// parse, forced access unit cuts. Garbage bytes are not counted here.
    pub fn errors(&self) -> u64 {
        let s = &self.split;
        let a = &self.assembler;
        s.empty_nals
            + s.forbidden_bit_nals
            + s.oversize_nals
            + a.bad_parameter_sets
            + a.bad_slice_headers
            + a.unknown_parameter_sets
            + a.bad_sei
            + a.forced_splits
            + a.dropped_nals
    }
}

/// Annex-B bytes in, complete access units out.
#[derive(Debug, Default)]
pub struct AccessUnitReader {
    splitter: Splitter,
    assembler: AccessUnitAssembler,
    /// Scratch list of NAL units, reused between calls.
    nals: Vec<Nal>,
}

impl AccessUnitReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; access units completed by them are appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<AccessUnit>) {
        self.splitter.push(data, &mut self.nals);
        self.assemble(out);
    }

    /// The input so far ends on an access-unit boundary (end of a frame buffer or of
    /// the file): emits what is pending instead of waiting for the next start code.
    /// Non-VCL NAL units with no picture yet (e.g. SPS and PPS in a buffer of their
    /// own) stay pending and go into the next access unit.
    pub fn flush(&mut self, out: &mut Vec<AccessUnit>) {
        self.splitter.flush(&mut self.nals);
        self.assemble(out);
        self.assembler.flush(out);
    }

    fn assemble(&mut self, out: &mut Vec<AccessUnit>) {
        for nal in self.nals.drain(..) {
            self.assembler.push(nal, out);
        }
    }

    /// Counters of what was produced, dropped and could not be parsed.
    pub fn stats(&self) -> ReaderStats {
        ReaderStats {
            split: self.splitter.stats(),
            assembler: self.assembler.stats(),
        }
    }

    /// NAL units waiting for the rest of their access unit.
    pub fn pending(&self) -> &[Nal] {
        self.assembler.pending()
    }

    /// Checks internal consistency (for tests and fuzzing; panics when broken).
    pub fn check_invariants(&self) {
        assert!(self.nals.is_empty());
        self.splitter.check_invariants();
        self.assembler.check_invariants();
    }
}
