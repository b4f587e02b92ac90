//! An RTSP client's bytes, in arbitrary chunks, through the request reader: no
//! panic, what it holds stays bounded, and after the first error it reads nothing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::rtsp::message::{Reader, MAX_BODY_BYTES, MAX_HEAD_BYTES};

fuzz_target!(|data: &[u8]| {
    let (chunk, stream) = match data.split_first() {
        Some((first, rest)) => (usize::from(*first).max(1), rest),
        None => return,
    };
    let mut reader = Reader::new();
    let mut failed = false;
    for piece in stream.chunks(chunk) {
        reader.push(piece);
        while let Some(next) = reader.next_message() {
            assert!(!failed, "a message after an error");
            failed |= next.is_err();
        }
        assert!(reader.buffered() <= (MAX_HEAD_BYTES + MAX_BODY_BYTES).max(65_540) + chunk);
    }
});
