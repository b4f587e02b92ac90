//! What an RTSP client sends on its TCP connection, read incrementally, and the
//! responses written back.
//!
//! A client's byte stream holds RTSP requests (a request line, headers, an
//! optional body of `Content-Length` bytes), several of them back to back
//! (pipelining), and, once it plays over TCP, interleaved binary frames (`$`,
//! channel, 16-bit length, data: RFC 2326 10.12) carrying its RTCP receiver
//! reports. [`Reader`] takes the bytes in any chunking and gives each of these in
//! order. Everything is bounded: a request head may be [`MAX_HEAD_BYTES`], a body
//! [`MAX_BODY_BYTES`], an interleaved frame 64 KiB (its 16-bit length), and a
//! malformed request is reported once, after which the
//! connection is to be answered 400 and closed (its framing cannot be trusted).

use std::fmt::Write as _;

/// Longest request line plus headers accepted.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Longest request body accepted (GET_PARAMETER / SET_PARAMETER keep-alives carry
/// a few bytes, if any).
pub const MAX_BODY_BYTES: usize = 4 * 1024;
/// Most headers in one request.
pub const MAX_HEADERS: usize = 64;

/// An RTSP method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// OPTIONS.
    Options,
    /// DESCRIBE.
    Describe,
    /// SETUP.
    Setup,
    /// PLAY.
    Play,
    /// PAUSE.
    Pause,
    /// TEARDOWN.
    Teardown,
    /// GET_PARAMETER (a keep-alive).
    GetParameter,
    /// SET_PARAMETER (a keep-alive).
    SetParameter,
    /// Anything else (ANNOUNCE, RECORD, REDIRECT, ...), answered 405 or 501.
    Other(String),
}

impl Method {
    fn parse(token: &str) -> Method {
        match token {
            "OPTIONS" => Method::Options,
            "DESCRIBE" => Method::Describe,
            "SETUP" => Method::Setup,
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "TEARDOWN" => Method::Teardown,
            "GET_PARAMETER" => Method::GetParameter,
            "SET_PARAMETER" => Method::SetParameter,
            other => Method::Other(other.to_string()),
        }
    }

    /// The method's name as sent (what a Digest response hashes).
    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Other(name) => name,
        }
    }
}

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// The request URI as sent (`rtsp://host:8554/stream`, or `*` for OPTIONS).
    pub uri: String,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of this name (case-insensitive), trimmed.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `CSeq`, which every response must echo.
    pub fn cseq(&self) -> Option<&str> {
        self.header("CSeq")
    }
}

/// What a client sent, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A request.
    Request(Request),
    /// An interleaved binary frame (RTCP from a client playing over TCP).
    Interleaved {
        /// Its channel.
        channel: u8,
        /// Its data.
        data: Vec<u8>,
    },
}

/// Why the client's bytes cannot be read as RTSP; the connection is answered 400
/// (or 413/431/505 where [`ReadError::status`] says) and closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// The head exceeded [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    #[error("the request head is larger than {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers")]
    HeadTooLarge,
    /// `Content-Length` over [`MAX_BODY_BYTES`].
    #[error("the request body of {0} bytes is larger than {MAX_BODY_BYTES}")]
    BodyTooLarge(usize),
    /// Not `METHOD URI RTSP/1.0`.
    #[error("not an RTSP request line: {0:?}")]
    BadRequestLine(String),
    /// Another protocol version.
    #[error("RTSP version {0:?} is not supported (RTSP/1.0 is)")]
    Version(String),
    /// A header line without a colon, or not text.
    #[error("a header line that is not NAME: VALUE: {0:?}")]
    BadHeader(String),
    /// `Content-Length` is not a number, or given twice differently.
    #[error("Content-Length {0:?} is not a length")]
    BadContentLength(String),
}

impl ReadError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ReadError::HeadTooLarge => 431,
            ReadError::BodyTooLarge(_) => 413,
            ReadError::Version(_) => 505,
            _ => 400,
        }
    }
}

/// Shown in errors: at most this many characters of what the client sent.
const SHOWN: usize = 60;

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(SHOWN).collect()
}

/// A header line for an error: credentials (a broken `Authorization` line) are
/// not repeated, as the error is answered and logged.
fn shown_header(line: &str) -> String {
    let start = line.trim_start().as_bytes();
    let name = b"authorization";
    if start.len() >= name.len() && start[..name.len()].eq_ignore_ascii_case(name) {
        return "Authorization (its value not shown)".to_string();
    }
    shown(line.as_bytes())
}

/// Reads a client's byte stream incrementally.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Set after the first error: nothing more is read.
    failed: bool,
}

impl Reader {
    /// An empty reader.
    pub fn new() -> Self {
        Reader::default()
    }

    /// Appends what the socket read.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes held, not yet read as a whole message (bounded by the limits).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `None` until one is complete, or the reason the
    /// stream cannot be read (once; then `None` for ever).
    pub fn next_message(&mut self) -> Option<Result<Incoming, ReadError>> {
        if self.failed {
            return None;
        }
        let result = self.parse()?;
        if result.is_err() {
            self.failed = true;
            self.buf = Vec::new();
        }
        Some(result)
    }

    fn parse(&mut self) -> Option<Result<Incoming, ReadError>> {
        // Stray line ends between messages (some clients send them) are skipped.
        let skip = self
            .buf
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        self.buf.drain(..skip);
        let first = *self.buf.first()?;
        if first == b'$' {
            if self.buf.len() < 4 {
                return None;
            }
            let channel = self.buf[1];
            let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < 4 + len {
                return None;
            }
            let data = self.buf[4..4 + len].to_vec();
            self.buf.drain(..4 + len);
            return Some(Ok(Incoming::Interleaved { channel, data }));
        }
        let Some(head_end) = find(&self.buf, b"\r\n\r\n")
            .map(|i| (i, i + 4))
            .or_else(|| find(&self.buf, b"\n\n").map(|i| (i, i + 2)))
        else {
            if self.buf.len() > MAX_HEAD_BYTES {
                return Some(Err(ReadError::HeadTooLarge));
            }
            return None;
        };
        let (head_len, body_start) = head_end;
        if head_len > MAX_HEAD_BYTES {
            return Some(Err(ReadError::HeadTooLarge));
        }
        let (method, uri, headers) = match parse_head(&self.buf[..head_len]) {
            Ok(head) => head,
            Err(error) => return Some(Err(error)),
        };
        let mut length: Option<usize> = None;
        for (name, value) in &headers {
            if name.eq_ignore_ascii_case("Content-Length") {
                let parsed = value
                    .parse::<usize>()
                    .map_err(|_| ReadError::BadContentLength(shown(value.as_bytes())));
                match (parsed, length) {
                    (Err(error), _) => return Some(Err(error)),
                    (Ok(n), Some(before)) if n != before => {
                        return Some(Err(ReadError::BadContentLength(shown(value.as_bytes()))))
                    }
                    (Ok(n), _) => length = Some(n),
                }
            }
        }
        let length = length.unwrap_or(0);
        if length > MAX_BODY_BYTES {
            return Some(Err(ReadError::BodyTooLarge(length)));
        }
        if self.buf.len() < body_start + length {
            return None;
        }
        let body = self.buf[body_start..body_start + length].to_vec();
        self.buf.drain(..body_start + length);
        Some(Ok(Incoming::Request(Request {
            method,
            uri,
            headers,
            body,
        })))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

type Head = (Method, String, Vec<(String, String)>);

fn parse_head(head: &[u8]) -> Result<Head, ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::BadRequestLine(shown(head)))?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::BadRequestLine(shown(line.as_bytes())));
    };
    if !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
        return Err(ReadError::BadRequestLine(shown(line.as_bytes())));
    }
    if version != "RTSP/1.0" {
        if version.starts_with("RTSP/") {
            return Err(ReadError::Version(shown(version.as_bytes())));
        }
        return Err(ReadError::BadRequestLine(shown(line.as_bytes())));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Err(ReadError::BadHeader(shown_header(line)));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ReadError::BadHeader(shown_header(line)));
        }
        if headers.len() == MAX_HEADERS {
            return Err(ReadError::HeadTooLarge);
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    Ok((Method::parse(method), uri.to_string(), headers))
}

/// A response: status, headers (after `CSeq`, which it echoes), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The request's `CSeq`, echoed (none for a request that could not be read).
    pub cseq: Option<String>,
    /// Headers after `CSeq`.
    pub headers: Vec<(String, String)>,
    /// Body; `Content-Length` is added when not empty.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with no headers or body yet.
    pub fn new(status: u16, cseq: Option<&str>) -> Self {
        Response {
            status,
            cseq: cseq.map(str::to_string),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The bytes to write.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut head = format!("RTSP/1.0 {} {}\r\n", self.status, reason(self.status));
        if let Some(cseq) = &self.cseq {
            let _ = write!(head, "CSeq: {}\r\n", clean(cseq));
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {}\r\n", clean(value));
        }
        if !self.body.is_empty() {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A header value without line breaks (an echoed `CSeq` cannot inject headers).
fn clean(value: &str) -> String {
    value.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// The reason phrase of a status code (RFC 2326 7.1.1).
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        431 => "Request Header Fields Too Large",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        459 => "Aggregate Operation Not Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DESCRIBE: &[u8] = b"DESCRIBE rtsp://cam:8554/stream RTSP/1.0\r\nCSeq: 2\r\nAccept: application/sdp\r\nUser-Agent: Lavf59.27.100\r\n\r\n";
    const SET_PARAMETER: &[u8] =
        b"SET_PARAMETER rtsp://cam:8554/stream RTSP/1.0\r\nCSeq: 7\r\nSession: 12345678\r\nContent-Length: 4\r\n\r\nping";

    fn read_all(chunks: &[&[u8]]) -> Vec<Result<Incoming, ReadError>> {
        let mut reader = Reader::new();
        let mut out = Vec::new();
        for chunk in chunks {
            reader.push(chunk);
            while let Some(next) = reader.next_message() {
                out.push(next);
            }
        }
        out
    }

    #[test]
    fn pipelined_requests_and_interleaved_rtcp_come_out_in_order() {
        let mut stream = DESCRIBE.to_vec();
        stream.extend_from_slice(&[b'$', 1, 0, 3, 0x81, 0xc9, 0x00]);
        stream.extend_from_slice(SET_PARAMETER);
        let out = read_all(&[&stream]);
        assert_eq!(out.len(), 3, "{out:?}");
        let Ok(Incoming::Request(describe)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(describe.method, Method::Describe);
        assert_eq!(describe.uri, "rtsp://cam:8554/stream");
        assert_eq!(describe.cseq(), Some("2"));
        assert_eq!(describe.header("accept"), Some("application/sdp"));
        assert_eq!(
            out[1],
            Ok(Incoming::Interleaved {
                channel: 1,
                data: vec![0x81, 0xc9, 0x00]
            })
        );
        let Ok(Incoming::Request(set)) = &out[2] else {
            panic!("{out:?}")
        };
        assert_eq!(set.method, Method::SetParameter);
        assert_eq!(set.body, b"ping");
    }

    #[test]
    fn malformed_requests_are_reported_once_with_their_status() {
        for (input, status) in [
            (&b"HELLO\r\n\r\n"[..], 400),
            (b"DESCRIBE rtsp://x RTSP/2.0\r\nCSeq: 1\r\n\r\n", 505),
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            (b"OPTIONS * RTSP/1.0\r\nno colon here\r\n\r\n", 400),
            (b"OPTIONS * RTSP/1.0\r\nContent-Length: -1\r\n\r\n", 400),
            (
                b"OPTIONS * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                400,
            ),
            (b"OPTIONS * RTSP/1.0\r\nContent-Length: 100000\r\n\r\n", 413),
        ] {
            let out = read_all(&[input, DESCRIBE]);
            assert_eq!(out.len(), 1, "{:?}: {out:?}", shown(input));
            assert_eq!(
                out[0].as_ref().unwrap_err().status(),
                status,
                "{:?}",
                shown(input)
            );
        }
    }

    #[test]
    fn a_broken_authorization_line_is_not_repeated_in_the_error() {
        for line in [
            "Authorization Basic c3RyZWFtZXI6c2VjcmV0",
            " authorization\tDigest username=\"streamer\"",
        ] {
            let input = format!("DESCRIBE rtsp://x RTSP/1.0\r\nCSeq: 1\r\n{line}\r\n\r\n");
            let out = read_all(&[input.as_bytes()]);
            let error = out[0].as_ref().unwrap_err();
            assert_eq!(error.status(), 400);
            let text = format!("{error} {error:?}");
            assert!(
                !text.contains("c3RyZWFt") && !text.contains("username"),
                "{text}"
            );
        }
        let out = read_all(&[b"OPTIONS * RTSP/1.0\r\nX-Other no colon\r\n\r\n"]);
        assert!(format!("{:?}", out[0]).contains("X-Other no colon"));
    }

    #[test]
    fn an_endless_head_is_refused_at_the_bound() {
        let mut reader = Reader::new();
        reader.push(b"DESCRIBE rtsp://x RTSP/1.0\r\n");
        let mut refused = false;
        for _ in 0..1000 {
            reader.push(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
            if let Some(result) = reader.next_message() {
                assert_eq!(result, Err(ReadError::HeadTooLarge));
                refused = true;
                break;
            }
            assert!(reader.buffered() <= MAX_HEAD_BYTES + 64);
        }
        assert!(refused);
        reader.push(DESCRIBE);
        assert_eq!(
            reader.next_message(),
            None,
            "nothing is read after an error"
        );
    }

    #[test]
    fn responses_echo_cseq_without_letting_it_add_headers() {
        let response = Response::new(200, Some("3\r\nX-Evil: 1"))
            .with("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN");
        let text = String::from_utf8(response.to_bytes()).unwrap();
        assert!(
            text.starts_with("RTSP/1.0 200 OK\r\nCSeq: 3X-Evil: 1\r\n"),
            "{text}"
        );
        assert!(text.ends_with("TEARDOWN\r\n\r\n"), "{text}");
        let mut with_body = Response::new(200, Some("4"));
        with_body.body = b"v=0\r\n".to_vec();
        let text = String::from_utf8(with_body.to_bytes()).unwrap();
        assert!(text.contains("Content-Length: 5\r\n\r\nv=0\r\n"), "{text}");
    }

    proptest! {
        #[test]
        fn any_chunking_reads_the_same(cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let mut stream = DESCRIBE.to_vec();
            stream.extend_from_slice(&[b'$', 1, 0, 2, 7, 7]);
            stream.extend_from_slice(SET_PARAMETER);
            let whole = read_all(&[&stream]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut chunks: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for cut in cuts {
                chunks.push(&stream[at..cut]);
                at = cut;
            }
            chunks.push(&stream[at..]);
            prop_assert_eq!(read_all(&chunks), whole);
        }

        #[test]
        fn any_bytes_are_read_without_panicking_and_within_bounds(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
        ) {
            let mut reader = Reader::new();
            for chunk in data.chunks(97) {
                reader.push(chunk);
                while reader.next_message().is_some() {}
                prop_assert!(reader.buffered() <= MAX_HEAD_BYTES + MAX_BODY_BYTES + 100);
            }
        }
    }
}
