//! Annex-B splitter: arbitrary bytes in arbitrary pieces never panic, the pieces do
//! not change the NAL units, and every NAL unit is well-formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::h264::split::Splitter;
use streamer::h264::Nal;

fn split(data: &[u8], sizes: &[u8]) -> Vec<Nal> {
    let mut splitter = Splitter::new();
    let mut out = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().map(|&s| usize::from(s) + 1).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        splitter.push(chunk, &mut out);
        splitter.check_invariants();
        rest = tail;
    }
    splitter.flush(&mut out);
    splitter.check_invariants();
    out
}

fuzz_target!(|input: &[u8]| {
    // The first byte says how many of the next bytes are chunk sizes.
    let Some((&count, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, data) = rest.split_at(count);
    let chunked = split(data, sizes);
    let whole = split(data, &[]);
    assert_eq!(chunked, whole);
    for nal in &whole {
        let bytes = nal.data();
        assert!(!bytes.is_empty() && bytes[0] & 0x80 == 0);
        assert_ne!(bytes[bytes.len() - 1], 0, "trailing zeros are trimmed");
        assert!(
            !bytes.windows(3).any(|w| w == [0, 0, 1]),
            "no start code inside a NAL unit"
        );
    }
});
