//! WebSocket frame decoder (what hostile clients send): arbitrary bytes in arbitrary
//! pieces never panic, memory stays bounded by the message limit, and the pieces do
//! not change the messages or the error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use streamer::websocket::frame::{Decoder, FrameError, Incoming};

const LIMIT: usize = 4096;

fn decode(data: &[u8], sizes: &[u8]) -> (Vec<Incoming>, Option<FrameError>) {
    let mut decoder = Decoder::new(LIMIT);
    let mut messages = Vec::new();
    let mut rest = data;
    let mut sizes = sizes.iter().map(|&s| usize::from(s) + 1).cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(rest.len()).min(rest.len());
        let (chunk, tail) = rest.split_at(n);
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => return (messages, Some(error)),
            }
        }
        // A frame header, a whole message and one read's worth of bytes at most.
        assert!(decoder.buffered() <= 2 * LIMIT + 14 + 256);
        rest = tail;
    }
    (messages, None)
}

fuzz_target!(|input: &[u8]| {
    // The first byte says how many of the next bytes are chunk sizes.
    let Some((&count, rest)) = input.split_first() else {
        return;
    };
    let count = usize::from(count % 16).min(rest.len());
    let (sizes, data) = rest.split_at(count);
    assert_eq!(decode(data, sizes), decode(data, &[]));
});
