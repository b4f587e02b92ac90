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

/// Whether `code` may be sent in a close frame (RFC 6455 7.4): the codes defined
/// for use on the wire (1000-1003, 1007-1011, and 1012-1014 registered with IANA
/// since) and those for libraries, frameworks and applications (3000-4999). 1004 is
/// reserved, 1005, 1006 and 1015 must never be sent, and everything else is
/// unassigned.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The payload of a close frame: code, then the reason (truncated to fit the 125
/// bytes a control frame may carry, on a character boundary). A code that may not
/// be sent (see [`is_valid_close_code`]) becomes 1011 (internal error), so that
/// 1005, 1006 or 1015 never reach the wire.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    debug_assert!(
        is_valid_close_code(code),
        "close code {code} may not be sent"
    );
    let code = if is_valid_close_code(code) {
        code
    } else {
        1011
    };
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
    /// The client closes, with its code when it gave one (always a valid one:
    /// see [`is_valid_close_code`]).
    Close(Option<u16>),
}

/// Why a client's bytes are not an acceptable WebSocket stream. Each maps to the
/// close code the server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Broken framing: unmasked client frame, reserved bits, unknown opcode,
    /// fragmented or oversized control frame, stray continuation, interleaved
    /// messages, a close frame of one byte or with a code that may not be used.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A message longer than the limit.
    #[error("message of {0} bytes or more is over the limit")]
    TooBig(u64),
    /// A text message (or a close reason) that is not UTF-8.
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

/// The frame whose header has been read and whose payload is arriving.
#[derive(Debug)]
struct FrameInProgress {
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    /// Payload bytes taken so far (the position in the mask).
    taken: usize,
    /// Payload bytes still to come.
    remaining: usize,
}

/// A data message being assembled, from one frame or several.
#[derive(Debug)]
struct MessageInProgress {
    opcode: OpCode,
    data: Vec<u8>,
    /// For text: the bytes before this index are complete, valid UTF-8; at most
    /// three bytes of an unfinished character follow.
    checked: usize,
}

impl MessageInProgress {
    /// Checks the text received since the last call: an invalid sequence fails at
    /// once, an unfinished character at the end waits for the next bytes.
    fn check_utf8(&mut self) -> Result<(), FrameError> {
        if self.opcode != OpCode::Text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => self.checked = self.data.len(),
            Err(error) if error.error_len().is_some() => return Err(FrameError::InvalidUtf8),
            Err(error) => self.checked += error.valid_up_to(),
        }
        Ok(())
    }
}

/// Decodes what a client sends. Bytes in ([`Decoder::push`]), messages out
/// ([`Decoder::next_message`]). Memory is bounded by the message limit: a frame
/// that would exceed it is refused from its header, before its payload arrives.
/// Payload bytes are taken as they arrive, so text that is not UTF-8 fails as soon
/// as the offending byte is here, not when its frame or message is complete.
#[derive(Debug)]
pub struct Decoder {
    max_message: usize,
    buffer: VecDeque<u8>,
    /// The frame being received, once its header is complete.
    frame: Option<FrameInProgress>,
    /// The data message being assembled.
    message: Option<MessageInProgress>,
    /// The payload of the control frame being received (at most 125 bytes).
    control: Vec<u8>,
    failed: Option<FrameError>,
}

impl Decoder {
    /// A decoder that refuses messages longer than `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Decoder {
            max_message,
            buffer: VecDeque::new(),
            frame: None,
            message: None,
            control: Vec::new(),
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
            match self.step() {
                Ok(Step::NeedMore) => return Ok(None),
                Ok(Step::Progress) => {}
                Ok(Step::Message(message)) => return Ok(Some(message)),
                Err(error) => {
                    self.buffer = VecDeque::new();
                    self.frame = None;
                    self.message = None;
                    self.control = Vec::new();
                    self.failed = Some(error.clone());
                    return Err(error);
                }
            }
        }
    }

    /// Bytes buffered but not yet decoded, plus the unfinished message and
    /// control frame.
    pub fn buffered(&self) -> usize {
        self.buffer.len() + self.message.as_ref().map_or(0, |m| m.data.len()) + self.control.len()
    }

    /// One step: read a frame header, or take the payload bytes that are here.
    fn step(&mut self) -> Result<Step, FrameError> {
        let Some(frame) = &mut self.frame else {
            return Ok(match self.header()? {
                Some(frame) => {
                    self.frame = Some(frame);
                    Step::Progress
                }
                None => Step::NeedMore,
            });
        };
        let n = frame.remaining.min(self.buffer.len());
        let start = frame.taken;
        let mask = frame.mask;
        let bytes = self
            .buffer
            .drain(..n)
            .enumerate()
            .map(|(i, byte)| byte ^ mask[(start + i) % 4]);
        frame.taken += n;
        frame.remaining -= n;
        let (fin, opcode, done) = (frame.fin, frame.opcode, frame.remaining == 0);
        if opcode.is_control() {
            self.control.extend(bytes);
        } else {
            // The header check made sure a message is in progress.
            let message = self
                .message
                .as_mut()
                .ok_or(FrameError::Protocol("continuation without a message"))?;
            message.data.extend(bytes);
            message.check_utf8()?;
        }
        if !done {
            return Ok(Step::NeedMore);
        }
        self.frame = None;
        if opcode.is_control() {
            let payload = std::mem::take(&mut self.control);
            return Ok(Step::Message(match opcode {
                OpCode::Ping => Incoming::Ping(payload),
                OpCode::Pong => Incoming::Pong,
                _ => Incoming::Close(parse_close(&payload)?),
            }));
        }
        if !fin {
            return Ok(Step::Progress);
        }
        let Some(message) = self.message.take() else {
            return Err(FrameError::Protocol("continuation without a message"));
        };
        Ok(Step::Message(match message.opcode {
            OpCode::Text => Incoming::Text(
                String::from_utf8(message.data).map_err(|_| FrameError::InvalidUtf8)?,
            ),
            _ => Incoming::Binary(message.data),
        }))
    }

    /// Reads and checks a frame header once all of it is here; starts the
    /// message a first data frame opens.
    fn header(&mut self) -> Result<Option<FrameInProgress>, FrameError> {
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
        let (len, at) = match b1 & 0x7F {
            126 => (self.be_uint(2, 2)?, 4),
            127 => (self.be_uint(2, 8)?, 10),
            short => (Some(u64::from(short)), 2),
        };
        let Some(len) = len else {
            return Ok(None);
        };
        if opcode.is_control() {
            if !fin {
                return Err(FrameError::Protocol(
                    "control frames must not be fragmented",
                ));
            }
            if len > 125 {
                return Err(FrameError::Protocol(
                    "control frames must carry at most 125 bytes",
                ));
            }
        } else {
            match (opcode, &self.message) {
                (OpCode::Continuation, None) => {
                    return Err(FrameError::Protocol("continuation without a message"))
                }
                (OpCode::Text | OpCode::Binary, Some(_)) => {
                    return Err(FrameError::Protocol(
                        "new message before the last one finished",
                    ))
                }
                _ => {}
            }
            let already = self.message.as_ref().map_or(0, |m| m.data.len() as u64);
            if already.saturating_add(len) > self.max_message as u64 {
                return Err(FrameError::TooBig(already.saturating_add(len)));
            }
        }
        if self.buffer.len() < at + 4 {
            return Ok(None);
        }
        let mut mask = [0u8; 4];
        for (i, byte) in mask.iter_mut().enumerate() {
            *byte = self.buffer[at + i];
        }
        self.buffer.drain(..at + 4);
        if matches!(opcode, OpCode::Text | OpCode::Binary) {
            self.message = Some(MessageInProgress {
                opcode,
                data: Vec::new(),
                checked: 0,
            });
        }
        Ok(Some(FrameInProgress {
            fin,
            opcode,
            mask,
            taken: 0,
            // At most max_message or 125 here.
            remaining: len as usize,
        }))
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

/// What one decoding step achieved.
enum Step {
    /// Nothing more can be decoded until more bytes arrive.
    NeedMore,
    /// A header or a frame was taken; try again.
    Progress,
    /// A message is complete.
    Message(Incoming),
}

/// A close frame's payload: nothing, or a code that may be used and a UTF-8 reason.
fn parse_close(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close payload of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !is_valid_close_code(code) {
                return Err(FrameError::Protocol("close code that may not be used"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(FrameError::InvalidUtf8);
            }
            Ok(Some(code))
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

    #[test]
    fn close_codes_are_checked() {
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1010, 1011, 1014, 3000, 3999, 4000, 4999,
        ] {
            let mut decoder = Decoder::new(4096);
            decoder.push(&client_frame(true, 8, &code.to_be_bytes(), [1, 2, 3, 4]));
            assert_eq!(
                decoder.next_message(),
                Ok(Some(Incoming::Close(Some(code))))
            );
        }
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            let mut decoder = Decoder::new(4096);
            decoder.push(&client_frame(true, 8, &code.to_be_bytes(), [1, 2, 3, 4]));
            assert_eq!(
                decoder.next_message().map_err(|e| e.close_code()),
                Err(1002),
                "close code {code}"
            );
        }
        type Expected = Result<Option<Incoming>, u16>;
        let cases: Vec<(Vec<u8>, Expected)> = vec![
            (vec![], Ok(Some(Incoming::Close(None)))),
            (vec![0x03], Err(1002)),
            (vec![0x03, 0xE8, 0xFF], Err(1007)),
            (vec![0x03, 0xE8, 0xCE], Err(1007)), // a truncated character
            (
                [&[0x03, 0xE8][..], "é".as_bytes()].concat(),
                Ok(Some(Incoming::Close(Some(1000)))),
            ),
        ];
        for (payload, expected) in cases {
            let mut decoder = Decoder::new(4096);
            decoder.push(&client_frame(true, 8, &payload, [9, 8, 7, 6]));
            assert_eq!(
                decoder.next_message().map_err(|e| e.close_code()),
                expected,
                "{payload:02x?}"
            );
        }
    }

    #[test]
    fn no_close_code_that_may_not_be_sent_reaches_the_wire() {
        for code in [1005u16, 1006, 1015, 0, 5000] {
            let payload = std::panic::catch_unwind(|| close_payload(code, "x"));
            // Debug builds stop at the mistake; release builds send 1011.
            assert_eq!(
                payload.is_err(),
                cfg!(debug_assertions),
                "only debug builds panic"
            );
            if let Ok(payload) = payload {
                assert_eq!(&payload[..2], &1011u16.to_be_bytes());
            }
        }
        assert_eq!(&close_payload(4000, "")[..], &[0x0F, 0xA0]);
    }

    #[test]
    fn invalid_utf8_fails_with_the_first_fragment_that_has_it() {
        // The message never finishes: the invalid sequence in its first fragment
        // is enough.
        let mut decoder = Decoder::new(4096);
        decoder.push(&client_frame(
            false,
            1,
            b"ok \xF4\x90\x80\x80",
            [1, 2, 3, 4],
        ));
        assert_eq!(decoder.next_message(), Err(FrameError::InvalidUtf8));

        // ...or in the middle of a frame whose end has not arrived yet.
        let mut decoder = Decoder::new(4096);
        let frame = client_frame(
            true,
            1,
            b"\xCE\xBA\xED\xA0\x80 and more to come",
            [5, 6, 7, 8],
        );
        decoder.push(&frame[..2 + 4 + 4]);
        assert_eq!(decoder.next_message(), Err(FrameError::InvalidUtf8));

        // A character cut by a fragment boundary is fine...
        let mut decoder = Decoder::new(4096);
        decoder.push(&client_frame(false, 1, b"\xCE", [1, 2, 3, 4]));
        assert_eq!(decoder.next_message(), Ok(None));
        decoder.push(&client_frame(false, 0, b"\xBA\xE1", [1, 2, 3, 4]));
        assert_eq!(decoder.next_message(), Ok(None));
        decoder.push(&client_frame(true, 0, b"\xBD\xB9", [1, 2, 3, 4]));
        assert_eq!(
            decoder.next_message(),
            Ok(Some(Incoming::Text("\u{3BA}\u{1F79}".into())))
        );

        // ...until the final fragment ends the message in the middle of one.
        let mut decoder = Decoder::new(4096);
        decoder.push(&client_frame(false, 1, b"ok", [1, 2, 3, 4]));
        decoder.push(&client_frame(true, 0, b"\xE1\xBD", [1, 2, 3, 4]));
        assert_eq!(decoder.next_message(), Err(FrameError::InvalidUtf8));

        // Binary messages are not text.
        let mut decoder = Decoder::new(4096);
        decoder.push(&client_frame(true, 2, b"\xFF\xFE", [1, 2, 3, 4]));
        assert_eq!(
            decoder.next_message(),
            Ok(Some(Incoming::Binary(vec![0xFF, 0xFE])))
        );
    }

    #[test]
    fn fragmentation_rules_are_enforced() {
        let cases: Vec<(Vec<Vec<u8>>, u16)> = vec![
            // A new text message while one is unfinished.
            (
                vec![
                    client_frame(false, 1, b"a", [0; 4]),
                    client_frame(true, 1, b"b", [0; 4]),
                ],
                1002,
            ),
            // A continuation after the message finished.
            (
                vec![
                    client_frame(true, 1, b"a", [0; 4]),
                    client_frame(false, 0, b"b", [0; 4]),
                ],
                1002,
            ),
            // A fragmented pong and close.
            (vec![client_frame(false, 0xA, b"", [0; 4])], 1002),
            (vec![client_frame(false, 0x8, b"", [0; 4])], 1002),
            // Reserved opcodes, data and control.
            (vec![client_frame(true, 0x7, b"x", [0; 4])], 1002),
            (vec![client_frame(true, 0xB, b"", [0; 4])], 1002),
            (vec![client_frame(true, 0xF, b"x", [0; 4])], 1002),
        ];
        for (frames, code) in cases {
            let mut decoder = Decoder::new(4096);
            let mut result = Ok(None);
            for frame in frames {
                decoder.push(&frame);
                result = decode_all(&mut decoder).map(|m| m.into_iter().next());
            }
            assert_eq!(result.map_err(|e| e.close_code()).err(), Some(code));
        }
        // Control frames between fragments are fine; empty fragments too.
        let mut decoder = Decoder::new(4096);
        for frame in [
            client_frame(false, 1, b"", [0; 4]),
            client_frame(true, 9, b"p", [0; 4]),
            client_frame(false, 0, b"mid", [3; 4]),
            client_frame(true, 0, b"", [0; 4]),
        ] {
            decoder.push(&frame);
        }
        assert_eq!(
            decode_all(&mut decoder).unwrap(),
            vec![Incoming::Ping(b"p".to_vec()), Incoming::Text("mid".into())]
        );
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
        fn fragments_cut_anywhere_give_the_same_text(
            text in "[ -~éκόσμε€😀]{0,200}",
            cuts in proptest::collection::vec(0usize..1000, 0..6),
            mut bytes_cut in 0usize..1000,
        ) {
            let data = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut frames = Vec::new();
            let mut start = 0;
            for (i, cut) in cuts.iter().copied().chain([data.len()]).enumerate() {
                let opcode = if i == 0 { 1 } else { 0 };
                frames.extend(client_frame(cut == data.len(), opcode, &data[start..cut], [7, 1, 9, 3]));
                start = cut;
                if cut == data.len() {
                    break;
                }
            }
            bytes_cut %= frames.len() + 1;
            let mut decoder = Decoder::new(4096);
            decoder.push(&frames[..bytes_cut]);
            let mut got = decode_all(&mut decoder).unwrap();
            decoder.push(&frames[bytes_cut..]);
            got.extend(decode_all(&mut decoder).unwrap());
            prop_assert_eq!(got, vec![Incoming::Text(text)]);
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
