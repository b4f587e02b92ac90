//! RFC 6455 framing, sans-IO: frame headers for what the server sends, and a decoder
//! for what clients send (bytes in, messages out; any chunking gives the same result).

use std::collections::VecDeque;

/// Frame opcodes (RFC 6455 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// Continuation of a fragmented message.
    Continuation = 0x0,
    /// UTF-8 text.
    Text = 0x1,
    /// Binary data.
    Binary = 0x2,
    /// Close, with an optional code and reason.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl OpCode {
    fn from_u8(value: u8) -> Option<Self> {
        Some(match value {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// Longest frame header: 2 bytes, then a 64-bit length (the server never masks).
pub const MAX_HEADER: usize = 10;

/// The header of one unmasked, final server frame carrying `len` payload bytes.
/// Returns the buffer and how many of its bytes are the header.
pub fn server_header(opcode: OpCode, len: usize) -> ([u8; MAX_HEADER], usize) {
    let mut header = [0u8; MAX_HEADER];
    header[0] = 0x80 | opcode as u8;
    if len < 126 {
        header[1] = len as u8;
        (header, 2)
    } else if let Ok(len16) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len16.to_be_bytes());
        (header, 4)
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (header, 10)
    }
}

/// The payload of a close frame: code, then the reason (truncated to fit the 125
/// bytes a control frame may carry, on a character boundary).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// A complete message from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping; the server answers with a pong carrying the same payload.
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The client closes, with its code when it gave one.
    Close(Option<u16>),
}

/// Why a client's bytes are not an acceptable WebSocket stream. Each maps to the
/// close code the server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Broken framing: unmasked client frame, reserved bits, unknown opcode,
    /// fragmented or oversized control frame, stray continuation.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A message longer than the limit.
    #[error("message of {0} bytes or more is over the limit")]
    TooBig(u64),
    /// A text message that is not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
}

impl FrameError {
    /// The close code RFC 6455 7.4.1 gives for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1002,
            FrameError::TooBig(_) => 1009,
            FrameError::InvalidUtf8 => 1007,
        }
    }
}

/// Decodes what a client sends. Bytes in ([`Decoder::push`]), messages out
/// ([`Decoder::next_message`]). Memory is bounded by the message limit: a frame
/// that would exceed it is refused from its header, before its payload arrives.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    buffer: VecDeque<u8>,
    /// The data message being assembled from fragments: its opcode and bytes.
    fragments: Option<(OpCode, Vec<u8>)>,
    failed: Option<FrameError>,
}

impl Decoder {
    /// A decoder that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            buffer: VecDeque::new(),
            fragments: None,
            failed: None,
        }
    }

    /// Bytes received from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buffer.extend(bytes);
        }
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. After an
    /// error every later call returns the same error.
    pub fn next_message(&mut self) -> Result<Option<Incoming>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        loop {
            match self.next_frame() {
                Ok(None) => return Ok(None),
                Ok(Some(message)) => {
                    if let Some(message) = message {
                        return Ok(Some(message));
                    }
                }
                Err(error) => {
                    self.buffer.clear();
                    self.fragments = None;
                    self.failed = Some(error.clone());
                    return Err(error);
                }
            }
        }
    }

    /// Bytes buffered but not yet decoded, plus the fragments of an unfinished
    /// message.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.fragments.as_ref().map_or(0, |(_, f)| f.len())
    }

    /// Decodes one frame: `Ok(None)` = incomplete, `Ok(Some(None))` = a fragment
    /// was taken, `Ok(Some(Some(message)))` = a message is complete.
    #[allow(clippy::option_option)]
    fn next_frame(&mut self) -> Result<Option<Option<Incoming>>, FrameError> {
        let (Some(&b0), Some(&b1)) = (self.buffer.front(), self.buffer.get(1)) else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(FrameError::Protocol("unknown opcode"))?;
        if b1 & 0x80 == 0 {
            return Err(FrameError::Protocol("client frames must be masked"));
        }
        let (len, mut at) = match b1 & 0x7F {
            126 => (self.be_uint(2, 2)?, 4),
            127 => (self.be_uint(2, 8)?, 10),
            short => (Some(u64::from(short)), 2),
        };
        let Some(len) = len else {
            return Ok(None);
        };
        if opcode.is_control() && (len > 125 || !fin) {
            return Err(FrameError::Protocol(
                "control frames must be final and at most 125 bytes",
            ));
        }
        let already = self.fragments.as_ref().map_or(0, |(_, f)| f.len() as u64);
        if !opcode.is_control() && already.saturating_add(len) > self.max_message as u64 {
            return Err(FrameError::TooBig(already.saturating_add(len)));
        }
        let len = len as usize; // <= max_message or <= 125 here
        if self.buffer.len() < at + 4 + len {
            return Ok(None);
        }
        let mask: Vec<u8> = self.buffer.range(at..at + 4).copied().collect();
        at += 4;
        let payload: Vec<u8> = self
            .buffer
            .range(at..at + len)
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        self.buffer.drain(..at + len);

        let message = match opcode {
            OpCode::Ping => Some(Incoming::Ping(payload)),
            OpCode::Pong => Some(Incoming::Pong),
            OpCode::Close => Some(Incoming::Close(parse_close(&payload)?)),
            OpCode::Text | OpCode::Binary => {
                if self.fragments.is_some() {
                    return Err(FrameError::Protocol(
                        "new message before the last one finished",
                    ));
                }
                if fin {
                    Some(complete(opcode, payload)?)
                } else {
                    self.fragments = Some((opcode, payload));
                    None
                }
            }
            OpCode::Continuation => {
                let Some((first, mut data)) = self.fragments.take() else {
                    return Err(FrameError::Protocol("continuation without a message"));
                };
                data.extend_from_slice(&payload);
                if fin {
                    Some(complete(first, data)?)
                } else {
                    self.fragments = Some((first, data));
                    None
                }
            }
        };
        Ok(Some(message))
    }

    /// A big-endian length of `n` bytes at `at`, `Ok(None)` if not all here yet.
    fn be_uint(&self, at: usize, n: usize) -> Result<Option<u64>, FrameError> {
        if self.buffer.len() < at + n {
            return Ok(None);
        }
        let value = self
            .buffer
            .range(at..at + n)
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if n == 8 && value >> 63 != 0 {
            return Err(FrameError::Protocol("length with the top bit set"));
        }
        Ok(Some(value))
    }
}

fn complete(opcode: OpCode, payload: Vec<u8>) -> Result<Incoming, FrameError> {
    match opcode {
        OpCode::Text => String::from_utf8(payload)
            .map(Incoming::Text)
            .map_err(|_| FrameError::InvalidUtf8),
        _ => Ok(Incoming::Binary(payload)),
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            if std::str::from_utf8(reason).is_err() {
                return Err(FrameError::InvalidUtf8);
            }
            Ok(Some(u16::from_be_bytes([*hi, *lo])))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A masked client frame.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if len <= 0xFFFF {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(decoder: &mut Decoder) -> Result<Vec<Incoming>, FrameError> {
        let mut out = Vec::new();
        while let Some(message) = decoder.next_message()? {
            out.push(message);
        }
        Ok(out)
    }

    #[test]
    fn server_headers_use_the_shortest_length_form() {
        assert_eq!(&server_header(OpCode::Binary, 5).0[..2], &[0x82, 5]);
        assert_eq!(
            &server_header(OpCode::Text, 300).0[..4],
            &[0x81, 126, 0x01, 0x2C]
        );
        let (header, n) = server_header(OpCode::Binary, 70_000);
        assert_eq!(n, 10);
        assert_eq!(&header[..10], &[0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }

    #[test]
    fn close_payload_fits_a_control_frame() {
        let payload = close_payload(1001, &"é".repeat(100));
        assert!(payload.len() <= 125);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert_eq!(&payload[..2], &[0x03, 0xE9]);
    }

    #[test]
    fn decodes_text_ping_close_and_fragments() {
        let mut decoder = Decoder::new(4096);
        let mut bytes = client_frame(true, 1, b"hello", [1, 2, 3, 4]);
        bytes.extend(client_frame(true, 9, b"p", [9, 9, 9, 9]));
        bytes.extend(client_frame(false, 1, b"frag", [5, 6, 7, 8]));
        bytes.extend(client_frame(true, 10, b"", [0, 0, 0, 0])); // pong between fragments
        bytes.extend(client_frame(true, 0, b"ment", [1, 1, 1, 1]));
        bytes.extend(client_frame(
            true,
            8,
            &[0x03, 0xE8, b'b', b'y'],
            [4, 3, 2, 1],
        ));
        decoder.push(&bytes);
        assert_eq!(
            decode_all(&mut decoder).unwrap(),
            vec![
                Incoming::Text("hello".into()),
                Incoming::Ping(b"p".to_vec()),
                Incoming::Pong,
                Incoming::Text("fragment".into()),
                Incoming::Close(Some(1000)),
            ]
        );
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn unmasked_frames_are_a_protocol_error() {
        let mut decoder = Decoder::new(4096);
        decoder.push(&[0x81, 0x02, b'h', b'i']);
        assert_eq!(decoder.next_message().unwrap_err().close_code(), 1002);
        // It stays failed.
        decoder.push(&client_frame(true, 1, b"x", [1, 2, 3, 4]));
        assert!(decoder.next_message().is_err());
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_header() {
        let mut decoder = Decoder::new(4096);
        let frame = client_frame(true, 1, &[b'x'; 100_000], [1, 2, 3, 4]);
        decoder.push(&frame[..14]); // header only
        assert_eq!(decoder.next_message(), Err(FrameError::TooBig(100_000)));
        // Fragments count towards the limit too.
        let mut decoder = Decoder::new(10);
        decoder.push(&client_frame(false, 2, &[0; 8], [1, 2, 3, 4]));
        decoder.push(&client_frame(true, 0, &[0; 8], [1, 2, 3, 4]));
        assert_eq!(decoder.next_message(), Err(FrameError::TooBig(16)));
    }

    #[test]
    fn broken_frames_get_the_right_close_codes() {
        let cases: Vec<(Vec<u8>, u16)> = vec![
            (client_frame(true, 0x3, b"", [0; 4]), 1002), // unknown opcode
            (client_frame(false, 0x9, b"", [0; 4]), 1002), // fragmented ping
            (client_frame(true, 0x9, &[0; 126], [0; 4]), 1002), // long ping
            (client_frame(true, 0x0, b"x", [0; 4]), 1002), // stray continuation
            (client_frame(true, 0x1, &[0xFF, 0xFE], [0; 4]), 1007), // bad UTF-8
            (vec![0xC1, 0x80, 0, 0, 0, 0], 1002),         // RSV1
        ];
        for (bytes, code) in cases {
            let mut decoder = Decoder::new(4096);
            decoder.push(&bytes);
            assert_eq!(
                decoder.next_message().map_err(|e| e.close_code()),
                Err(code),
                "{bytes:02x?}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_messages(
            texts in proptest::collection::vec("[ -~é]{0,300}", 1..8),
            cuts in proptest::collection::vec(0usize..2000, 0..10),
        ) {
            let mut bytes = Vec::new();
            for (i, text) in texts.iter().enumerate() {
                bytes.extend(client_frame(true, 1, text.as_bytes(), [i as u8, 7, 3, 200]));
            }
            let mut whole = Decoder::new(4096);
            whole.push(&bytes);
            let expected = decode_all(&mut whole).unwrap();
            prop_assert_eq!(expected.len(), texts.len());

            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunked = Decoder::new(4096);
            let mut got = Vec::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                chunked.push(&bytes[start..cut]);
                got.extend(decode_all(&mut chunked).unwrap());
                start = cut;
            }
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let mut decoder = Decoder::new(256);
            for chunk in bytes.chunks(97) {
                decoder.push(chunk);
                if decoder.next_message().is_err() {
                    break;
                }
                prop_assert!(decoder.buffered() <= 3000);
            }
        }
    }
}
