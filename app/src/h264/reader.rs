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
            + a.oversize_access_units
            + a.dropped_nals
    }

    /// Bytes skipped: outside any NAL unit (no start code before them; zero bytes
    /// there are padding and not counted), in NAL units over
    /// [`MAX_NAL_SIZE`](super::split::MAX_NAL_SIZE), or in dropped NAL units of access
    /// units over [`MAX_AU_BYTES`](super::access_unit::MAX_AU_BYTES).
    pub fn skipped_bytes(&self) -> u64 {
        self.split.garbage_bytes + self.split.oversize_bytes + self.assembler.dropped_bytes
    }

    /// What was skipped, in plain words, or `None` when nothing was.
    pub fn describe_skipped(&self) -> Option<String> {
        let skipped = self.skipped_bytes();
        if skipped == 0 {
            return None;
        }
        let mut parts = vec![format!("{} skipped", size(skipped))];
        if self.split.garbage_bytes > 0 {
            parts.push(format!(
                "{} not in any NAL unit (no start code)",
                size(self.split.garbage_bytes)
            ));
        }
        if self.split.oversize_nals > 0 {
            parts.push(format!(
                "{} NAL unit(s) over the {} bound",
                self.split.oversize_nals,
                size(super::split::MAX_NAL_SIZE as u64)
            ));
        }
        if self.assembler.oversize_access_units > 0 {
            parts.push(format!(
                "{} access unit(s) over the {} bound",
                self.assembler.oversize_access_units,
                size(super::access_unit::MAX_AU_BYTES as u64)
            ));
        }
        Some(parts.join(", "))
    }
}

/// A byte count for people: `512 bytes`, `3.2 MiB`.
fn size(bytes: u64) -> String {
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < 1 << 20 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::access_unit::RandomAccess;
    use crate::h264::split::{Splitter, MAX_NAL_SIZE};
    use crate::h264::testing::{annex_b, recovery_point_sei, PpsSpec, SliceSpec, SpsSpec};
    use proptest::prelude::*;

    /// One picture of a generated stream.
    #[derive(Debug, Clone)]
    struct Picture {
        /// 0 IDR, 1 reference P, 2 non-reference.
        kind: u8,
        slices: u32,
        aud: bool,
        parameter_sets: bool,
        recovery_point: bool,
        filler: bool,
    }

    fn picture() -> impl Strategy<Value = Picture> {
        (
            0u8..3,
            1u32..5,
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(kind, slices, aud, parameter_sets, recovery_point, filler)| Picture {
                    kind,
                    slices,
                    aud,
                    parameter_sets,
                    recovery_point,
                    filler,
                },
            )
    }

    /// The NAL units of a stream of `pictures`, and for each picture how many NAL
    /// units it has and whether it is a keyframe.
    fn stream(pictures: &[Picture]) -> (Vec<Vec<u8>>, Vec<(usize, RandomAccess)>) {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let mut nals = Vec::new();
        let mut expected = Vec::new();
        let (mut frame_num, mut poc, mut idr_pic_id) = (0u32, 0u32, 0u32);
        for (i, pic) in pictures.iter().enumerate() {
            let before = nals.len();
            let idr = pic.kind == 0 || i == 0;
            if pic.aud {
                nals.push(vec![0x09, 0x10]);
            }
            if pic.parameter_sets || i == 0 {
                nals.push(sps.bytes());
                nals.push(pps.bytes());
            }
            if pic.recovery_point {
                nals.push(recovery_point_sei(3));
            }
            if idr {
                frame_num = 0;
                poc = 0;
                idr_pic_id += 1;
            } else {
                poc = (poc + 2) % 64;
            }
            let nal_ref_idc = if pic.kind == 2 && !idr { 0 } else { 1 };
            for s in 0..pic.slices {
                nals.push(
                    SliceSpec {
                        idr,
                        nal_ref_idc,
                        first_mb: s * 3,
                        frame_num,
                        idr_pic_id: idr_pic_id % 2,
                        poc_lsb: poc,
                        ..SliceSpec::default()
                    }
                    .bytes(&sps, &pps),
                );
            }
            if pic.filler {
                nals.push(vec![0x0c, 0xff, 0x80]);
            }
            if nal_ref_idc != 0 {
                frame_num = (frame_num + 1) % 16;
            }
            let random_access = if idr {
                RandomAccess::Idr
            } else if pic.recovery_point {
                RandomAccess::RecoveryPoint {
                    recovery_frame_cnt: 3,
                }
            } else {
                RandomAccess::None
            };
            expected.push((nals.len() - before, random_access));
        }
        (nals, expected)
    }

    /// Annex-B with a chosen start code length and trailing zeros per NAL unit.
    fn annex_b_with(nals: &[Vec<u8>], long: &[bool], zeros: &[u8]) -> Vec<u8> {
        let mut out = vec![0; 2];
        for (i, n) in nals.iter().enumerate() {
            if long.get(i).copied().unwrap_or(true) {
                out.push(0);
            }
            out.extend([0, 0, 1]);
            out.extend(n);
            out.extend(std::iter::repeat_n(
                0,
                zeros.get(i).copied().unwrap_or(0).into(),
            ));
        }
        out
    }

    fn read(data: &[u8], chunks: &[usize]) -> (Vec<AccessUnit>, AccessUnitReader) {
        let mut reader = AccessUnitReader::new();
        let mut out = Vec::new();
        let mut rest = data;
        let mut sizes = chunks.iter().copied().cycle();
        while !rest.is_empty() {
            let n = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(n);
            reader.push(chunk, &mut out);
            reader.check_invariants();
            rest = tail;
        }
        reader.flush(&mut out);
        reader.check_invariants();
        for unit in &out {
            unit.check_invariants();
        }
        (out, reader)
    }

    fn split(data: &[u8]) -> Vec<Nal> {
        let mut splitter = Splitter::new();
        let mut out = Vec::new();
        splitter.push(data, &mut out);
        splitter.flush(&mut out);
        out
    }

    /// Every NAL unit the splitter finds comes out in an access unit, once, in
    /// order, except non-VCL ones still waiting for a picture at the end.
    fn assert_conserved(data: &[u8], units: &[AccessUnit], reader: &AccessUnitReader) {
        let emitted: Vec<Nal> = units.iter().flat_map(|u| u.nals.iter().cloned()).collect();
        let mut all = emitted.clone();
        all.extend(reader.pending().iter().cloned());
        assert_eq!(all, split(data));
        assert!(reader.pending().iter().all(|n| !n.nal_type().is_vcl()));
    }

    #[test]
    fn reads_a_generated_stream() {
        let pictures: Vec<Picture> = (0..6)
            .map(|i| Picture {
                kind: (i % 3) as u8,
                slices: 1 + i % 4,
                aud: i % 2 == 0,
                parameter_sets: i == 3,
                recovery_point: i == 4,
                filler: i == 5,
            })
            .collect();
        let (nals, expected) = stream(&pictures);
        let data = annex_b(&nals);
        let (units, reader) = read(&data, &[data.len()]);
        let got: Vec<(usize, RandomAccess)> = units
            .iter()
            .map(|u| (u.nals.len(), u.random_access))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(reader.stats().errors(), 0);
        assert_eq!(reader.stats().assembler.access_units, 6);
        assert_eq!(reader.stats().split.nals, nals.len() as u64);
        assert_conserved(&data, &units, &reader);
    }

    #[test]
    fn what_was_skipped_is_described() {
        let mut stats = ReaderStats::default();
        assert_eq!(stats.describe_skipped(), None);
        stats.split.garbage_bytes = 3 << 20;
        stats.split.oversize_nals = 2;
        stats.split.oversize_bytes = 17 << 20;
        assert_eq!(stats.skipped_bytes(), 20 << 20);
        assert_eq!(
            stats.describe_skipped().unwrap(),
            "20.0 MiB skipped, 3.0 MiB not in any NAL unit (no start code), \
             2 NAL unit(s) over the 8.0 MiB bound"
        );
    }

    #[test]
    fn parameter_sets_in_their_own_buffer_join_the_next_picture() {
        let (nals, _) = stream(&[Picture {
            kind: 0,
            slices: 2,
            aud: false,
            parameter_sets: true,
            recovery_point: false,
            filler: false,
        }]);
        let mut reader = AccessUnitReader::new();
        let mut out = Vec::new();
        reader.push(&annex_b(&nals[..2]), &mut out);
        reader.flush(&mut out);
        assert!(out.is_empty());
        reader.push(&annex_b(&nals[2..]), &mut out);
        assert!(out.is_empty(), "the last slice may still grow");
        reader.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].nals.len(), 4);
        assert!(out[0].is_keyframe());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn chunking_and_start_codes_do_not_matter(
            pictures in prop::collection::vec(picture(), 1..12),
            chunks in prop::collection::vec(1usize..300, 1..20),
            long in prop::collection::vec(any::<bool>(), 0..80),
            zeros in prop::collection::vec(0u8..3, 0..80),
        ) {
            let (nals, expected) = stream(&pictures);
            let reference = annex_b(&nals);
            let (units, reader) = read(&reference, &[reference.len()]);
            let got: Vec<(usize, RandomAccess)> =
                units.iter().map(|u| (u.nals.len(), u.random_access)).collect();
            prop_assert_eq!(got, expected);
            prop_assert_eq!(reader.stats().errors(), 0);
            assert_conserved(&reference, &units, &reader);

            let varied = annex_b_with(&nals, &long, &zeros);
            let (chunked, reader) = read(&varied, &chunks);
            prop_assert_eq!(&chunked, &units);
            assert_conserved(&varied, &chunked, &reader);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            pieces in prop::collection::vec(
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..40),
                    Just(vec![0, 0, 1]),
                    Just(vec![0, 0, 0, 1]),
                    Just(vec![0, 0, 3]),
                    (0u8..32).prop_map(|t| vec![0, 0, 1, t | 0x60]),
                ],
                0..60,
            ),
            chunks in prop::collection::vec(1usize..50, 1..10),
        ) {
            let data: Vec<u8> = pieces.concat();
            let (units, reader) = read(&data, &chunks);
            assert_conserved(&data, &units, &reader);
            let (whole, _) = read(&data, &[data.len().max(1)]);
            prop_assert_eq!(whole, units);
        }
    }

    proptest! {
        // Each case reads more than 8 MiB: few cases.
        #![proptest_config(ProptestConfig::with_cases(6))]

        #[test]
        fn an_oversize_nal_unit_is_skipped_and_the_rest_comes_through(
            pictures in prop::collection::vec(picture(), 2..6),
            at in any::<prop::sample::Index>(),
            header in prop::sample::select(vec![0x06u8, 0x0c, 0x41, 0x65, 0x67]),
            chunks in prop::collection::vec(1usize..(3 << 20), 1..6),
        ) {
            let (nals, expected) = stream(&pictures);
            let reference = annex_b(&nals);
            let (units, _) = read(&reference, &[reference.len()]);
            // The same stream with one NAL unit longer than the bound somewhere.
            let mut huge = vec![header];
            huge.resize(MAX_NAL_SIZE + 1, 0x55);
            let mut with_huge = nals.clone();
            with_huge.insert(at.index(nals.len() + 1), huge);
            let data = annex_b(&with_huge);
            let (got, reader) = read(&data, &chunks);
            prop_assert_eq!(&got, &units);
            prop_assert_eq!(got.len(), expected.len());
            let stats = reader.stats();
            prop_assert_eq!(stats.split.oversize_nals, 1);
            prop_assert!(stats.split.oversize_bytes > MAX_NAL_SIZE as u64);
            prop_assert_eq!(stats.split.nals, nals.len() as u64);
        }
    }
}
