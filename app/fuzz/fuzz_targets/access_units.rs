//! Access-unit reader: arbitrary bytes in random pieces (and random flushes) never
//! panic, keep the invariants, and lose or duplicate no NAL unit. (Fuzz inputs stay
//! far below the 8 MiB and 8192-NAL-unit bounds beyond which access units are
//! skipped; the unit tests cover those.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::h264::split::Splitter;
use streamer::h264::{AccessUnit, AccessUnitReader, Nal};

/// Feeds `data` in pieces from `sizes`; flushes after a piece whose size byte has
/// the top bit set when `flushes` is true.
fn read(data: &[u8], sizes: &[u8], flushes: bool) -> (Vec<AccessUnit>, Vec<Nal>) {
    let mut reader = AccessUnitReader::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next();
        let n = size
            .map_or(rest.len(), |s| usize::from(s & 0x7f) * 3 + 1)
            .min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        reader.push(chunk, &mut out);
        if flushes && size.is_some_and(|s| s & 0x80 != 0) {
            reader.flush(&mut out);
        }
        reader.check_invariants();
        rest = tail;
    }
    reader.flush(&mut out);
    reader.check_invariants();
    for unit in &out {
        unit.check_invariants();
    }
    let mut nals: Vec<Nal> = out.iter().flat_map(|u| u.nals.iter().cloned()).collect();
    assert!(reader.pending().iter().all(|n| !n.nal_type().is_vcl()));
    nals.extend(reader.pending().iter().cloned());
    (out, nals)
}

fuzz_target!(|input: &[u8]| {
    let Some((&count, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, data) = rest.split_at(count);

    let (whole, whole_nals) = read(data, &[], false);
    let (chunked, _) = read(data, sizes, false);
    assert_eq!(chunked, whole, "chunking changed the access units");

    let mut splitter = Splitter::new();
    let mut nals = Vec::new();
    splitter.push(data, &mut nals);
    splitter.flush(&mut nals);
    assert_eq!(whole_nals, nals, "NAL units lost or duplicated");

    // Flushes cut access units but never lose NAL units either.
    let (_, flushed_nals) = read(data, sizes, true);
    let splitter_nals = {
        // Flushing also ends NAL units early, so compare against the same cuts.
        let mut splitter = Splitter::new();
        let mut nals = Vec::new();
        let mut rest = data;
        let mut sizes_iter = sizes.iter().copied().cycle();
        while !rest.is_empty() {
            let size = sizes_iter.next();
            let n = size
                .map_or(rest.len(), |s| usize::from(s & 0x7f) * 3 + 1)
                .min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            splitter.push(chunk, &mut nals);
            if size.is_some_and(|s| s & 0x80 != 0) {
                splitter.flush(&mut nals);
            }
            rest = tail;
        }
        splitter.flush(&mut nals);
        nals
    };
    assert_eq!(flushed_nals, splitter_nals);
});
