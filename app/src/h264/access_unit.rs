//! Access units: all NAL units of one primary coded picture, and the assembler that
//! groups NAL units into them (H.264 7.4.1.2.3 and 7.4.1.2.4).

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};

use super::nal::{Nal, NalType, START_CODE};
use super::pps::Pps;
use super::sei;
use super::slice::{SliceError, SliceHeader, SliceStart};
use super::sps::Sps;

/// Whether a decoder can start at this access unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RandomAccess {
    /// Needs earlier pictures to decode.
    None,
    /// An IDR picture: decoding can start here.
    Idr,
    /// A recovery-point SEI (intra refresh): decoding can start here and the picture
    /// is complete after `recovery_frame_cnt` more frames.
    RecoveryPoint {
        /// Frames until the picture is fully refreshed.
        recovery_frame_cnt: u32,
    },
}

/// All NAL units of one primary coded picture, in stream order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The NAL units, in stream order.
    pub nals: Vec<Nal>,
    /// Whether a decoder can start here.
    pub random_access: RandomAccess,
}

impl AccessUnit {
    /// True when a decoder can start at this access unit (IDR or recovery point).
    pub fn is_keyframe(&self) -> bool {
        self.random_access != RandomAccess::None
    }

    /// The NAL units of one type.
    pub fn nals_of(&self, nal_type: NalType) -> impl Iterator<Item = &Nal> {
        self.nals.iter().filter(move |n| n.nal_type() == nal_type)
    }

    /// True when the access unit carries a NAL unit of this type.
    pub fn contains(&self, nal_type: NalType) -> bool {
        self.nals_of(nal_type).next().is_some()
    }

    /// Length of [`AccessUnit::to_annex_b`]'s output.
    pub fn annex_b_len(&self) -> usize {
        self.nals
            .iter()
            .map(|n| START_CODE.len() + n.data().len())
            .sum()
    }

    /// Appends the access unit as Annex-B (four-byte start code before every NAL unit).
    pub fn write_annex_b(&self, out: &mut BytesMut) {
        out.reserve(self.annex_b_len());
        for nal in &self.nals {
            out.put_slice(&START_CODE);
            out.put_slice(nal.data());
        }
    }

    /// The access unit as one Annex-B buffer.
    pub fn to_annex_b(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.annex_b_len());
        self.write_annex_b(&mut out);
        out.freeze()
    }

    /// Checks what the assembler guarantees (for tests and fuzzing; panics when
    /// broken): at least one VCL NAL unit; valid NAL headers; no NAL unit that starts
    /// an access unit (AUD, SPS, PPS, SEI, 14..=18) after the first VCL NAL unit; after
    /// it, end of sequence/stream only last; `random_access` matches the content.
    pub fn check_invariants(&self) {
        let first_vcl = self
            .nals
            .iter()
            .position(|n| n.nal_type().is_vcl())
            .expect("an access unit holds a VCL NAL unit");
        for (i, nal) in self.nals.iter().enumerate() {
            let header = nal.data().first().copied();
            assert!(header.is_some_and(|h| h & 0x80 == 0), "valid NAL header");
            let nal_type = nal.nal_type();
            if i > first_vcl {
                assert!(
                    !starts_access_unit(nal_type),
                    "{nal_type:?} after the first VCL NAL unit"
                );
            }
            if i > first_vcl && nal_type == NalType::EndOfSequence {
                assert!(self.nals[i + 1..]
                    .iter()
                    .all(|n| n.nal_type() == NalType::EndOfStream));
            }
            if i > first_vcl && nal_type == NalType::EndOfStream {
                assert_eq!(i + 1, self.nals.len(), "end of stream last");
            }
        }
        match self.random_access {
            RandomAccess::Idr => assert!(self.contains(NalType::IdrSlice)),
            RandomAccess::RecoveryPoint { .. } => {
                assert!(!self.contains(NalType::IdrSlice));
                assert!(self.contains(NalType::Sei));
            }
            RandomAccess::None => assert!(!self.contains(NalType::IdrSlice)),
        }
    }
}

/// NAL unit types that, after the last VCL NAL unit of a primary coded picture,
/// begin a new access unit (7.4.1.2.3).
fn starts_access_unit(nal_type: NalType) -> bool {
    match nal_type {
        NalType::Aud | NalType::Sps | NalType::Pps | NalType::Sei => true,
        NalType::Other(n) => (14..=18).contains(&n),
        _ => false,
    }
}

/// Most NAL units one access unit may hold; a longer one is skipped (and counted).
/// A 1080p picture has 8160 macroblocks, so even one slice per macroblock fits.
pub const MAX_AU_NALS: usize = 8192;

/// Most bytes one access unit may hold; a larger one is skipped whole, up to the
/// next access unit, and counted ([`AssemblerStats::oversize_access_units`]).
/// The same 8 MiB as a NAL unit ([`MAX_NAL_SIZE`](super::split::MAX_NAL_SIZE), see
/// there why): the bound is on a coded picture, whether it comes in one slice or
/// many.
pub const MAX_AU_BYTES: usize = super::split::MAX_NAL_SIZE;

/// What the assembler found wrong, for monitoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Access units emitted.
    pub access_units: u64,
    /// SPS or PPS NAL units that did not parse (ignored for slice parsing).
    pub bad_parameter_sets: u64,
    /// Slice headers that did not parse (the access unit boundary is guessed from
    /// `first_mb_in_slice` when it can be read).
    pub bad_slice_headers: u64,
    /// Slices whose PPS or SPS had not been seen (boundary guessed likewise).
    pub unknown_parameter_sets: u64,
    /// SEI NAL units that did not parse.
    pub bad_sei: u64,
    /// Access units skipped because they exceeded [`MAX_AU_NALS`] or
    /// [`MAX_AU_BYTES`].
    pub oversize_access_units: u64,
    /// NAL units dropped: those of skipped access units, and non-VCL NAL units that
    /// arrived in too large numbers without any picture.
    pub dropped_nals: u64,
    /// Bytes of the NAL units dropped.
    pub dropped_bytes: u64,
}

/// A slice, judged against the slices before it in the access unit.
struct SliceCheck {
    /// A redundant coded picture's slice: it stays with its primary picture.
    redundant: bool,
    /// It begins a new primary picture.
    new_picture: bool,
    /// Its header, if it parsed.
    slice: PrevSlice,
    /// `first_mb_in_slice`, if it could be read.
    first_mb: Option<u32>,
    /// Its colour plane, as a bit.
    plane: u8,
}

/// The previous primary-picture slice of the access unit being assembled.
#[derive(Debug, Clone, Copy)]
enum PrevSlice {
    /// Its header parsed.
    Parsed(SliceHeader),
    /// Its header did not parse (unknown parameter sets or damaged).
    Unparsed,
}

/// NAL units in, access units out (H.264 7.4.1.2.3 and 7.4.1.2.4).
///
/// Remembers the parameter sets it has seen to parse slice headers, so that all
/// slices of one picture stay in one access unit. Every access unit it emits holds
/// at least one VCL NAL unit; non-VCL NAL units before the first picture are carried
/// into the first access unit.
#[derive(Debug, Default)]
pub struct AccessUnitAssembler {
    /// NAL units of the access unit being assembled.
    pending: Vec<Nal>,
    /// Bytes in `pending`.
    pending_bytes: usize,
    /// `pending` holds a VCL NAL unit.
    has_vcl: bool,
    /// `pending` holds an IDR slice.
    has_idr: bool,
    /// `recovery_frame_cnt` of a recovery point SEI in `pending`.
    recovery: Option<u32>,
    /// An end of sequence/stream NAL unit ended the pending access unit.
    closed: bool,
    /// An end of stream NAL unit ended the pending access unit.
    stream_ended: bool,
    /// The last primary-picture slice in `pending`.
    prev: Option<PrevSlice>,
    /// Colour planes (bit per `colour_plane_id`) of `pending` that had a primary
    /// slice starting at macroblock 0.
    mb0_planes: u8,
    /// An access unit grew too large and was dropped: its remaining NAL units are
    /// dropped too, up to the next access unit. `pending` is empty meanwhile, while
    /// `prev`, `mb0_planes` and `closed` still describe the dropped access unit, to
    /// tell where the next one begins.
    skipping: bool,
    /// Parameter sets by id.
    sps: HashMap<u32, Sps>,
    pps: HashMap<u32, Pps>,
    stats: AssemblerStats,
}

impl AccessUnitAssembler {
    /// An assembler at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the assembler found wrong so far.
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// NAL units waiting for the rest of their access unit.
    pub fn pending(&self) -> &[Nal] {
        &self.pending
    }

    /// Takes one NAL unit; an access unit it completes is appended to `out`.
    pub fn push(&mut self, nal: Nal, out: &mut Vec<AccessUnit>) {
        let nal_type = nal.nal_type();
        if self.skipping {
            if !self.ends_skip(&nal) {
                self.drop_nal(&nal);
                return;
            }
            self.reset();
        }
        if self.pending.len() >= MAX_AU_NALS
            || self.pending_bytes.saturating_add(nal.data().len()) > MAX_AU_BYTES
        {
            let had_vcl = self.has_vcl;
            self.stats.dropped_nals += self.pending.len() as u64;
            self.stats.dropped_bytes += self.pending_bytes as u64;
            if had_vcl {
                // A picture this large is not real video: skip all of it, up to the
                // next access unit, rather than pass on a piece of it.
                self.stats.oversize_access_units += 1;
                self.pending.clear();
                self.pending_bytes = 0;
                self.has_vcl = false;
                self.has_idr = false;
                self.recovery = None;
                self.skipping = true;
                if !self.ends_skip(&nal) {
                    self.drop_nal(&nal);
                    return;
                }
            }
            self.reset();
            if nal.data().len() > MAX_AU_BYTES {
                // Only when fed NAL units directly: the splitter bounds them.
                self.drop_nal(&nal);
                return;
            }
        }
        match nal_type {
            NalType::Slice | NalType::IdrSlice | NalType::SlicePartition(2) => {
                self.push_slice(&nal, out);
                self.has_idr |= nal_type == NalType::IdrSlice;
            }
            NalType::SlicePartition(_) => {
                // Partitions B and C carry no slice header: same picture as A.
                self.start_if(self.closed, out);
            }
            NalType::EndOfStream => {
                // Ends the access unit it follows (a stray one before any picture
                // just waits with the other non-VCL NAL units). A second one cannot
                // follow it in the same access unit.
                self.start_if(self.stream_ended, out);
                self.closed = self.has_vcl;
                self.stream_ended = self.has_vcl;
            }
            NalType::EndOfSequence => {
                self.start_if(self.closed, out);
                self.closed = self.has_vcl;
            }
            other if starts_access_unit(other) => {
                self.start_if(true, out);
                match other {
                    NalType::Sps => match Sps::parse(nal.data()) {
                        Ok(sps) => {
                            self.sps.insert(sps.id, sps);
                        }
                        Err(_) => self.stats.bad_parameter_sets += 1,
                    },
                    NalType::Pps => match Pps::parse(nal.data()) {
                        Ok(pps) => {
                            self.pps.insert(pps.id, pps);
                        }
                        Err(_) => self.stats.bad_parameter_sets += 1,
                    },
                    NalType::Sei => match sei::recovery_frame_cnt(&nal) {
                        Ok(Some(cnt)) => {
                            self.recovery.get_or_insert(cnt);
                        }
                        Ok(None) => {}
                        Err(_) => self.stats.bad_sei += 1,
                    },
                    _ => {}
                }
            }
            _ => {
                // Filler, SPS extension, auxiliary slices, extensions: part of the
                // current access unit.
                self.start_if(self.closed, out);
            }
        }
        self.pending_bytes += nal.data().len();
        self.has_vcl |= nal_type.is_vcl();
        self.pending.push(nal);
    }

    /// Counts a NAL unit dropped.
    fn drop_nal(&mut self, nal: &Nal) {
        self.stats.dropped_nals += 1;
        self.stats.dropped_bytes += nal.data().len() as u64;
    }

    /// While skipping an access unit that grew too large: whether `nal` begins the
    /// next access unit (by the same rules as [`AccessUnitAssembler::push`]).
    fn ends_skip(&mut self, nal: &Nal) -> bool {
        match nal.nal_type() {
            NalType::Slice | NalType::IdrSlice | NalType::SlicePartition(2) => {
                let check = self.check_slice(nal);
                if !check.redundant && !check.new_picture {
                    // Still the skipped picture: later slices compare with this one.
                    self.prev = Some(check.slice);
                    if check.first_mb == Some(0) {
                        self.mb0_planes |= check.plane;
                    }
                }
                !check.redundant && check.new_picture
            }
            NalType::EndOfStream | NalType::EndOfSequence => {
                let ends = self.closed;
                self.closed = true;
                ends
            }
            other if starts_access_unit(other) => true,
            _ => self.closed,
        }
    }

    /// Judges a slice against the previous slices of the pending access unit.
    fn check_slice(&mut self, nal: &Nal) -> SliceCheck {
        let parsed = {
            let (sps, pps) = (&self.sps, &self.pps);
            SliceHeader::parse(nal, |id| {
                let pps = pps.get(&id)?;
                Some((pps, sps.get(&pps.sps_id)?))
            })
        };
        let (slice, first_mb) = match parsed {
            Ok(header) => (
                PrevSlice::Parsed(header),
                Some(header.start.first_mb_in_slice),
            ),
            Err(error) => {
                if matches!(error, SliceError::UnknownParameterSet { .. }) {
                    self.stats.unknown_parameter_sets += 1;
                } else {
                    self.stats.bad_slice_headers += 1;
                }
                let first_mb = SliceStart::parse(nal).ok().map(|s| s.first_mb_in_slice);
                (PrevSlice::Unparsed, first_mb)
            }
        };
        let plane = match slice {
            PrevSlice::Parsed(h) => 1u8 << (h.colour_plane_id & 3),
            PrevSlice::Unparsed => 1,
        };
        let new_picture = self.closed
            || match (&slice, &self.prev) {
                (PrevSlice::Parsed(cur), Some(PrevSlice::Parsed(prev))) => {
                    cur.starts_new_picture_after(prev)
                        || (first_mb == Some(0) && self.mb0_planes & plane != 0)
                }
                _ => first_mb == Some(0),
            };
        SliceCheck {
            redundant: matches!(slice, PrevSlice::Parsed(h) if h.redundant_pic_cnt > 0),
            new_picture,
            slice,
            first_mb,
            plane,
        }
    }

    /// Decides whether a slice begins a new primary picture, and starts a new access
    /// unit if so.
    fn push_slice(&mut self, nal: &Nal, out: &mut Vec<AccessUnit>) {
        let check = self.check_slice(nal);
        if check.redundant {
            // A redundant picture stays with its primary picture.
            self.start_if(self.closed, out);
            return;
        }
        self.start_if(check.new_picture, out);
        self.prev = Some(check.slice);
        if check.first_mb == Some(0) {
            self.mb0_planes |= check.plane;
        }
    }

    /// Emits the pending access unit if `condition` holds and it has a picture.
    fn start_if(&mut self, condition: bool, out: &mut Vec<AccessUnit>) {
        if condition && self.has_vcl {
            self.emit(out);
        }
    }

    /// The input so far ends on an access unit boundary: emits the pending access
    /// unit if it has a picture (non-VCL NAL units alone wait for the next one).
    pub fn flush(&mut self, out: &mut Vec<AccessUnit>) {
        if self.skipping {
            // What follows is a new access unit: stop skipping.
            self.reset();
        }
        self.start_if(true, out);
    }

    /// Emits `pending` as an access unit (it must hold a VCL NAL unit).
    fn emit(&mut self, out: &mut Vec<AccessUnit>) {
        let random_access = if self.has_idr {
            RandomAccess::Idr
        } else if let Some(recovery_frame_cnt) = self.recovery {
            RandomAccess::RecoveryPoint { recovery_frame_cnt }
        } else {
            RandomAccess::None
        };
        let nals = std::mem::take(&mut self.pending);
        self.reset();
        self.stats.access_units += 1;
        out.push(AccessUnit {
            nals,
            random_access,
        });
    }

    /// Forgets the pending access unit.
    fn reset(&mut self) {
        self.pending.clear();
        self.pending_bytes = 0;
        self.has_vcl = false;
        self.has_idr = false;
        self.recovery = None;
        self.closed = false;
        self.stream_ended = false;
        self.prev = None;
        self.mb0_planes = 0;
        self.skipping = false;
    }

    /// Checks the assembler's internal consistency (for tests and fuzzing).
    pub fn check_invariants(&self) {
        assert_eq!(
            self.pending_bytes,
            self.pending.iter().map(|n| n.data().len()).sum::<usize>()
        );
        assert!(self.pending.len() <= MAX_AU_NALS);
        assert!(self.pending_bytes <= MAX_AU_BYTES);
        assert_eq!(
            self.has_vcl,
            self.pending.iter().any(|n| n.nal_type().is_vcl())
        );
        assert_eq!(
            self.has_idr,
            self.pending
                .iter()
                .any(|n| n.nal_type() == NalType::IdrSlice)
        );
        assert!(self.sps.len() <= 32 && self.pps.len() <= 256);
        if self.skipping {
            assert!(self.pending.is_empty() && self.recovery.is_none());
        } else if !self.has_vcl {
            assert!(self.prev.is_none());
            assert!(!self.closed && !self.stream_ended);
        }
        assert!(!self.stream_ended || self.closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::{nal, recovery_point_sei, PpsSpec, SliceSpec, SpsSpec};

    /// Assembles NAL units; returns the access units as lists of NAL indices.
    fn assemble(nals: &[Vec<u8>]) -> (Vec<AccessUnit>, Vec<Vec<usize>>, AssemblerStats) {
        let mut a = AccessUnitAssembler::new();
        let mut out = Vec::new();
        for n in nals {
            a.push(nal(n), &mut out);
            a.check_invariants();
        }
        a.flush(&mut out);
        a.check_invariants();
        let mut next = 0;
        let mut groups = Vec::new();
        for unit in &out {
            unit.check_invariants();
            let mut group = Vec::new();
            for n in &unit.nals {
                // Every NAL unit comes out once, in order.
                while nals[next] != n.data().as_ref() {
                    next += 1;
                }
                group.push(next);
                next += 1;
            }
            groups.push(group);
        }
        (out, groups, a.stats())
    }

    struct Stream {
        sps: SpsSpec,
        pps: PpsSpec,
        nals: Vec<Vec<u8>>,
    }

    impl Stream {
        fn new(sps: SpsSpec, pps: PpsSpec) -> Self {
            let nals = vec![sps.bytes(), pps.bytes()];
            Stream { sps, pps, nals }
        }
        fn slice(&mut self, spec: SliceSpec) -> &mut Self {
            self.nals.push(spec.bytes(&self.sps, &self.pps));
            self
        }
        fn raw(&mut self, bytes: &[u8]) -> &mut Self {
            self.nals.push(bytes.to_vec());
            self
        }
    }

    fn idr(first_mb: u32) -> SliceSpec {
        SliceSpec {
            idr: true,
            nal_ref_idc: 3,
            first_mb,
            ..SliceSpec::default()
        }
    }

    fn p(frame_num: u32, poc_lsb: u32, first_mb: u32) -> SliceSpec {
        SliceSpec {
            nal_ref_idc: 2,
            frame_num,
            poc_lsb,
            first_mb,
            ..SliceSpec::default()
        }
    }

    #[test]
    fn multi_slice_pictures_stay_together() {
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        for mb in [0, 3, 6, 9] {
            s.slice(idr(mb));
        }
        for frame in 1..4 {
            for mb in [0, 4, 8] {
                s.slice(p(frame, 2 * frame, mb));
            }
        }
        let (units, groups, stats) = assemble(&s.nals);
        assert_eq!(
            groups,
            vec![
                vec![0, 1, 2, 3, 4, 5],
                vec![6, 7, 8],
                vec![9, 10, 11],
                vec![12, 13, 14]
            ]
        );
        assert_eq!(units[0].random_access, RandomAccess::Idr);
        assert!(units[1..].iter().all(|u| !u.is_keyframe()));
        assert_eq!(
            stats,
            AssemblerStats {
                access_units: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn non_reference_pictures_with_the_same_frame_num_differ_by_poc() {
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.slice(idr(0)).slice(p(1, 6, 0));
        // Two B pictures (non-reference): same frame_num, other POC.
        for poc in [2, 4] {
            for mb in [0, 6] {
                s.slice(SliceSpec {
                    nal_ref_idc: 0,
                    ..p(2, poc, mb)
                });
            }
        }
        let (_, groups, _) = assemble(&s.nals);
        assert_eq!(groups, vec![vec![0, 1, 2], vec![3], vec![4, 5], vec![6, 7]]);
        // A non-reference picture after a reference one with equal fields: nal_ref_idc.
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.slice(p(1, 2, 0)).slice(SliceSpec {
            nal_ref_idc: 0,
            ..p(1, 2, 5)
        });
        assert_eq!(assemble(&s.nals).1.len(), 2);
        // nal_ref_idc 1 vs 3 (both non-zero) is not a difference.
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.slice(p(1, 2, 0)).slice(SliceSpec {
            nal_ref_idc: 1,
            ..p(1, 2, 5)
        });
        assert_eq!(assemble(&s.nals).1.len(), 1);
    }

    #[test]
    fn bottom_poc_delta_and_poc_type_1_deltas() {
        let pps = PpsSpec {
            bottom_field_pic_order_in_frame_present: true,
            ..PpsSpec::default()
        };
        let mut s = Stream::new(SpsSpec::default(), pps.clone());
        s.slice(p(1, 2, 0)).slice(SliceSpec {
            delta_bottom: 1,
            ..p(1, 2, 4)
        });
        assert_eq!(assemble(&s.nals).1.len(), 2);
        let sps = SpsSpec {
            poc_type: 1,
            ..SpsSpec::default()
        };
        let mut s = Stream::new(sps.clone(), pps.clone());
        let base = SliceSpec {
            delta: [2, 0],
            ..p(1, 0, 0)
        };
        s.slice(base.clone())
            .slice(SliceSpec {
                first_mb: 5,
                ..base.clone()
            })
            .slice(SliceSpec {
                delta: [2, 1],
                ..base.clone()
            })
            .slice(SliceSpec {
                delta: [4, 1],
                first_mb: 3,
                ..base.clone()
            });
        assert_eq!(
            assemble(&s.nals).1,
            vec![vec![0, 1, 2, 3], vec![4], vec![5]]
        );
        // delta_pic_order_always_zero: the deltas are absent, frame_num decides.
        let sps = SpsSpec {
            poc_type: 1,
            delta_pic_order_always_zero: true,
            ..SpsSpec::default()
        };
        let mut s = Stream::new(sps, pps);
        s.slice(p(1, 0, 0)).slice(p(1, 0, 2)).slice(p(2, 0, 0));
        assert_eq!(assemble(&s.nals).1.len(), 2);
    }

    #[test]
    fn poc_type_2_uses_frame_num() {
        let sps = SpsSpec {
            poc_type: 2,
            ..SpsSpec::default()
        };
        let mut s = Stream::new(sps, PpsSpec::default());
        s.slice(idr(0)).slice(idr(6));
        for frame in 1..=20u32 {
            // frame_num wraps at 16.
            s.slice(p(frame % 16, 0, 0)).slice(p(frame % 16, 0, 7));
        }
        let (units, groups, _) = assemble(&s.nals);
        assert_eq!(units.len(), 21);
        assert!(groups.iter().all(|g| g.len() == 2 || g.len() == 4));
    }

    #[test]
    fn fields_are_separate_pictures() {
        let sps = SpsSpec {
            frame_mbs_only: false,
            ..SpsSpec::default()
        };
        let mut s = Stream::new(sps, PpsSpec::default());
        for bottom in [false, true] {
            for mb in [0, 3] {
                s.slice(SliceSpec {
                    field: Some(bottom),
                    poc_lsb: 4,
                    ..p(1, 4, mb)
                });
            }
        }
        // A frame picture after the field pair (field_pic_flag differs).
        s.slice(p(1, 4, 0));
        assert_eq!(
            assemble(&s.nals).1,
            vec![vec![0, 1, 2, 3], vec![4, 5], vec![6]]
        );
    }

    #[test]
    fn consecutive_idr_pictures_differ_by_idr_pic_id() {
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.slice(idr(0)).slice(idr(4)).slice(SliceSpec {
            idr_pic_id: 1,
            ..idr(0)
        });
        s.slice(SliceSpec {
            idr_pic_id: 1,
            ..idr(4)
        });
        let (units, groups, _) = assemble(&s.nals);
        assert_eq!(groups, vec![vec![0, 1, 2, 3], vec![4, 5]]);
        assert!(units.iter().all(|u| u.random_access == RandomAccess::Idr));
        // IDR after a non-IDR picture with otherwise equal fields: IdrPicFlag.
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.slice(p(0, 0, 0)).slice(idr(3));
        assert_eq!(assemble(&s.nals).1.len(), 2);
    }

    #[test]
    fn a_different_pps_starts_a_new_picture() {
        let mut s = Stream::new(SpsSpec::default(), PpsSpec::default());
        s.raw(
            &PpsSpec {
                id: 1,
                ..PpsSpec::default()
            }
            .bytes(),
        );
        s.slice(p(1, 2, 0)).slice(SliceSpec {
            pps_id: 1,
            ..p(1, 2, 3)
        });
        assert_eq!(assemble(&s.nals).1, vec![vec![0, 1, 2, 3], vec![4]]);
    }

    #[test]
    fn redundant_pictures_stay_with_their_primary() {
        let pps = PpsSpec {
            redundant_pic_cnt_present: true,
            ..PpsSpec::default()
        };
        let mut s = Stream::new(SpsSpec::default(), pps);
        s.slice(p(1, 2, 0)).slice(p(1, 2, 6));
        // Redundant copy: first_mb 0 again, other nal_ref_idc; same access unit.
        s.slice(SliceSpec {
            redundant_pic_cnt: 1,
            nal_ref_idc: 1,
            ..p(1, 2, 0)
        });
        s.slice(p(2, 4, 0));
        assert_eq!(assemble(&s.nals).1, vec![vec![0, 1, 2, 3, 4], vec![5]]);
    }

    #[test]
    fn separate_colour_planes_share_a_picture() {
        let sps = SpsSpec {
            profile_idc: 244,
            chroma_format_idc: 3,
            separate_colour_plane: true,
            ..SpsSpec::default()
        };
        let mut s = Stream::new(sps, PpsSpec::default());
        for _ in 0..2 {
            for plane in 0..3 {
                s.slice(SliceSpec {
                    colour_plane_id: plane,
                    ..idr(0)
                });
            }
        }
        // The second set repeats macroblock 0 of each plane: a new picture (the
        // stream is broken: same idr_pic_id; counted as the next picture anyway).
        assert_eq!(
            assemble(&s.nals).1,
            vec![vec![0, 1, 2, 3, 4], vec![5, 6, 7]]
        );
    }

    #[test]
    fn unknown_parameter_sets_fall_back_to_first_mb() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let nals = vec![
            p(1, 2, 0).bytes(&sps, &pps),
            p(1, 2, 4).bytes(&sps, &pps),
            p(1, 2, 0).bytes(&sps, &pps),
            sps.bytes(),
            pps.bytes(),
            idr(0).bytes(&sps, &pps),
            idr(4).bytes(&sps, &pps),
        ];
        let (units, groups, stats) = assemble(&nals);
        assert_eq!(groups, vec![vec![0, 1], vec![2], vec![3, 4, 5, 6]]);
        assert_eq!(stats.unknown_parameter_sets, 3);
        assert_eq!(units[2].random_access, RandomAccess::Idr);
        // A damaged slice header (cut short) falls back too.
        let mut cut = p(1, 2, 3).bytes(&sps, &pps);
        cut.truncate(2);
        let nals = vec![sps.bytes(), pps.bytes(), p(1, 2, 0).bytes(&sps, &pps), cut];
        let (_, groups, stats) = assemble(&nals);
        assert_eq!(groups, vec![vec![0, 1, 2, 3]]);
        assert_eq!(stats.bad_slice_headers, 1);
    }

    #[test]
    fn non_vcl_nal_units_start_access_units_after_a_picture() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let aud = vec![0x09, 0xf0];
        let sei = recovery_point_sei(0);
        let filler = vec![0x0c, 0xff, 0xff, 0x80];
        let nals = vec![
            aud.clone(),                  // 0
            sps.bytes(),                  // 1
            pps.bytes(),                  // 2
            idr(0).bytes(&sps, &pps),     // 3
            filler.clone(),               // 4: stays
            aud.clone(),                  // 5: new
            p(1, 2, 0).bytes(&sps, &pps), // 6
            sei.clone(),                  // 7: new
            p(2, 4, 0).bytes(&sps, &pps), // 8
            vec![0x0e, 0x01],             // 9: type 14, new
            p(3, 6, 0).bytes(&sps, &pps), // 10
            pps.bytes(),                  // 11: new
            p(3, 6, 0).bytes(&sps, &pps), // 12 (repeats mb 0, but a new AU anyway)
            vec![0x0a],                   // 13: end of sequence, stays
            vec![0x0b],                   // 14: end of stream, stays
            idr(0).bytes(&sps, &pps),     // 15: new (closed)
            vec![0x0a],                   // 16
            idr(3).bytes(&sps, &pps),     // 17: new after end of sequence
            vec![0x0b],                   // 18: end of stream, stays
            vec![0x0b],                   // 19: a second one: new, waits
            idr(0).bytes(&sps, &pps),     // 20
        ];
        let (units, groups, _) = assemble(&nals);
        assert_eq!(
            groups,
            vec![
                vec![0, 1, 2, 3, 4],
                vec![5, 6],
                vec![7, 8],
                vec![9, 10],
                vec![11, 12, 13, 14],
                vec![15, 16],
                vec![17, 18],
                vec![19, 20],
            ]
        );
        assert_eq!(
            units[2].random_access,
            RandomAccess::RecoveryPoint {
                recovery_frame_cnt: 0
            }
        );
        assert_eq!(units[0].random_access, RandomAccess::Idr);
        assert_eq!(units[1].random_access, RandomAccess::None);
    }

    #[test]
    fn flush_keeps_parameter_sets_for_the_next_picture() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let mut a = AccessUnitAssembler::new();
        let mut out = Vec::new();
        a.push(nal(&sps.bytes()), &mut out);
        a.push(nal(&pps.bytes()), &mut out);
        a.flush(&mut out);
        assert!(out.is_empty());
        assert_eq!(a.pending().len(), 2);
        a.push(nal(&idr(0).bytes(&sps, &pps)), &mut out);
        assert!(out.is_empty());
        a.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].nals.len(), 3);
        // After a flush, the next slice starts a new access unit even if it could
        // belong to the flushed picture.
        a.push(nal(&p(1, 2, 0).bytes(&sps, &pps)), &mut out);
        a.flush(&mut out);
        a.push(nal(&p(1, 2, 5).bytes(&sps, &pps)), &mut out);
        a.flush(&mut out);
        assert_eq!(out.len(), 3);
        a.check_invariants();
    }

    #[test]
    fn recovery_point_with_its_frame_count() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let nals = vec![
            sps.bytes(),
            pps.bytes(),
            recovery_point_sei(29),
            p(1, 2, 0).bytes(&sps, &pps),
            p(2, 4, 0).bytes(&sps, &pps),
        ];
        let (units, _, _) = assemble(&nals);
        assert_eq!(
            units[0].random_access,
            RandomAccess::RecoveryPoint {
                recovery_frame_cnt: 29
            }
        );
        assert_eq!(units[1].random_access, RandomAccess::None);
    }

    #[test]
    fn huge_access_units_are_skipped_and_orphans_bounded() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let mut a = AccessUnitAssembler::new();
        let mut out = Vec::new();
        a.push(nal(&sps.bytes()), &mut out);
        a.push(nal(&pps.bytes()), &mut out);
        a.push(nal(&idr(0).bytes(&sps, &pps)), &mut out);
        // A picture with more slices than any real one: skipped whole, including
        // the slices after the bound.
        for mb in 0..(MAX_AU_NALS as u32 + 10) {
            a.push(nal(&p(1, 2, mb).bytes(&sps, &pps)), &mut out);
            a.check_invariants();
        }
        // The next picture comes through intact.
        for mb in [0, 5] {
            a.push(nal(&p(2, 4, mb).bytes(&sps, &pps)), &mut out);
        }
        a.flush(&mut out);
        a.check_invariants();
        let frame_nums: Vec<usize> = out.iter().map(|u| u.nals.len()).collect();
        assert_eq!(frame_nums, vec![3, 2], "the IDR picture and the next one");
        assert_eq!(out[1].nals[0].data(), &p(2, 4, 0).bytes(&sps, &pps)[..]);
        assert_eq!(a.stats().oversize_access_units, 1);
        assert_eq!(a.stats().dropped_nals, MAX_AU_NALS as u64 + 10);
        // Endless SEI without pictures: dropped, not hoarded.
        for _ in 0..(MAX_AU_NALS + 5) {
            a.push(nal(&[0x06, 0x05, 0x01, 0x00, 0x80]), &mut out);
        }
        a.check_invariants();
        assert_eq!(
            a.stats().dropped_nals,
            2 * MAX_AU_NALS as u64 + 10,
            "{:?}",
            a.stats()
        );
        assert_eq!(a.pending().len(), 5);
    }

    #[test]
    fn an_access_unit_over_the_byte_bound_is_skipped_up_to_the_next_one() {
        let sps = SpsSpec::default();
        let pps = PpsSpec::default();
        let mut a = AccessUnitAssembler::new();
        let mut out = Vec::new();
        // Slices of 3 MiB each (slice data after a valid header).
        let big = |spec: SliceSpec| {
            let mut bytes = spec.bytes(&sps, &pps);
            bytes.resize(3 << 20, 0x5a);
            nal(&bytes)
        };
        a.push(nal(&sps.bytes()), &mut out);
        a.push(nal(&pps.bytes()), &mut out);
        for mb in [0, 10, 20, 30] {
            a.push(big(idr(mb)), &mut out);
            a.check_invariants();
        }
        // A slice of the same picture after the bound is skipped too; a recovery
        // point SEI and the next picture start the next access unit.
        a.push(nal(&recovery_point_sei(0)), &mut out);
        a.push(nal(&p(1, 2, 0).bytes(&sps, &pps)), &mut out);
        a.push(nal(&p(1, 2, 4).bytes(&sps, &pps)), &mut out);
        a.push(nal(&p(2, 4, 0).bytes(&sps, &pps)), &mut out);
        a.flush(&mut out);
        a.check_invariants();
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].nals.len(), 3);
        assert_eq!(
            out[0].random_access,
            RandomAccess::RecoveryPoint {
                recovery_frame_cnt: 0
            }
        );
        assert_eq!(out[1].nals.len(), 1);
        let stats = a.stats();
        assert_eq!(stats.oversize_access_units, 1);
        // SPS, PPS and the first two slices; then the last two slices.
        assert_eq!(stats.dropped_nals, 6);
        assert!(stats.dropped_bytes >= 12 << 20, "{stats:?}");
        // Without a new non-VCL NAL unit, a slice starting a new picture ends the
        // skip as well.
        let mut a = AccessUnitAssembler::new();
        let mut out = Vec::new();
        a.push(nal(&sps.bytes()), &mut out);
        a.push(nal(&pps.bytes()), &mut out);
        for mb in [0, 10, 20, 30] {
            a.push(big(p(1, 2, mb)), &mut out);
        }
        a.push(nal(&p(2, 4, 0).bytes(&sps, &pps)), &mut out);
        a.flush(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].nals[0].data(), &p(2, 4, 0).bytes(&sps, &pps)[..]);
    }
}
