//! WebSocket conformance: the cases of Autobahn|Testsuite (crossbario/autobahn-testsuite)
//! that apply to a server, sections 1-7, 9 and 10, re-implemented here (the suite is
//! Python 2 and does not run on this machine) and run over TCP against the real server
//! with a small raw client that can send any bytes, malformed frames included.
//!
//! The server is one-way: it does not echo what clients send. So each case is judged by
//! what the server does with the connection: it answers the pings (`events`), and then
//! either stays open and healthy (`Outcome::Open`: one more ping is answered and a close
//! with 1000 is answered with 1000), fails the connection with a close code
//! (`Outcome::Fails`), or answers the client's close (`Outcome::Answers`). Every case's
//! expected outcome is data in [`cases`]; `docs/websocket-conformance.md` shows the same
//! table, generated from it (`UPDATE_GOLDEN=1 cargo test --test websocket_conformance`
//! rewrites it), with the reason for every by-design difference from Autobahn's
//! expectation.

mod support;

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use streamer::hub::Hub;
use support::{limits, repo_root, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;

/// The payload of the ping that checks that a connection is still healthy.
const MARKER: &[u8] = b"still there?";
/// Longest wait for the next thing the server does.
const WAIT: Duration = Duration::from_secs(15);
/// Cases run at once, each worker from its own loopback address.
const WORKERS: u8 = 6;

/// Why a case differs, by design, from what Autobahn expects.
const BINARY: &str = "by design: binary messages are refused with 1003 (clients send only JSON text, docs/protocol.md)";
const TOO_BIG: &str =
    "by design: a message over 4 KiB is refused with 1009, from the frame header on";
const RATE: &str = "by design: more than 50 messages a second are refused with 1008";
const BIG_FIRST: &str = "by design: the 256 KiB message is refused with 1009 before the close frame behind it is read (Autobahn: informational)";

/// What the server did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A pong with this payload.
    Pong(Vec<u8>),
    /// A pause of the client's passed without the server closing.
    Waited,
    /// A close frame with this code.
    Close(Option<u16>),
}

/// What the server does once the case's bytes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The connection stays open and healthy.
    Open,
    /// The server fails the connection with this close code.
    Fails(u16),
    /// The client closed: the server answers with this code.
    Answers(u16),
}

/// One thing the client does.
#[derive(Debug, Clone)]
enum Step {
    /// Writes these bytes at once.
    Send(Vec<u8>),
    /// Writes these bytes in pieces of this size, one write each.
    Chopped(Vec<u8>, usize),
    /// Waits; `Event::Waited` if the server did not close meanwhile.
    Pause(Duration),
    /// A message of `len` bytes (`*` for text, 0xFE for binary) in fragments of
    /// `fragment` bytes, written in pieces of `chop` bytes, made as it is written.
    Large {
        opcode: u8,
        len: usize,
        fragment: usize,
        chop: usize,
    },
    /// The same frame `count` times.
    Repeat(Vec<u8>, usize),
}

/// One case: Autobahn's number, what it sends, what the server must do.
#[derive(Debug, Clone)]
struct Case {
    id: String,
    what: String,
    steps: Vec<Step>,
    /// What happens while the steps run (pongs, pauses survived).
    events: Vec<Event>,
    outcome: Outcome,
    /// The by-design difference from Autobahn's expectation, if any.
    note: Option<&'static str>,
}

impl Case {
    fn new(id: &str, what: &str, steps: Vec<Step>, outcome: Outcome) -> Self {
        Case {
            id: id.into(),
            what: what.into(),
            steps,
            events: Vec::new(),
            outcome,
            note: None,
        }
    }

    fn events(mut self, events: Vec<Event>) -> Self {
        self.events = events;
        self
    }

    fn pongs(self, payloads: &[&[u8]]) -> Self {
        self.events(payloads.iter().map(|p| Event::Pong(p.to_vec())).collect())
    }

    fn note(mut self, note: &'static str) -> Self {
        self.note = Some(note);
        self
    }

    /// Everything the server must do, in order.
    fn expected(&self) -> Vec<Event> {
        let mut events = self.events.clone();
        match self.outcome {
            Outcome::Open => {
                events.extend([Event::Pong(MARKER.to_vec()), Event::Close(Some(1000))])
            }
            Outcome::Fails(code) | Outcome::Answers(code) => events.push(Event::Close(Some(code))),
        }
        events
    }
}

// ---------------------------------------------------------------------------------
// Frames

/// A masked client frame with any first-byte bits: `rsv` is the three reserved bits
/// as a number (Autobahn's notation).
fn frame_rsv(fin: bool, rsv: u8, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    out.extend(length_and_mask(payload.len()));
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

const MASK: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

/// The second byte on, up to the payload: length and mask.
fn length_and_mask(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(14);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend(len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend((len as u64).to_be_bytes());
    }
    out.extend(MASK);
    out
}

fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_rsv(fin, 0, opcode, payload)
}

fn text(payload: &[u8]) -> Vec<u8> {
    frame(true, 1, payload)
}

fn ping(payload: &[u8]) -> Vec<u8> {
    frame(true, 9, payload)
}

fn pong(payload: &[u8]) -> Vec<u8> {
    frame(true, 10, payload)
}

fn close(code: u16, reason: &[u8]) -> Vec<u8> {
    frame(true, 8, &[&code.to_be_bytes()[..], reason].concat())
}

/// Frames written one after the other, in one write.
fn send(frames: &[Vec<u8>]) -> Step {
    Step::Send(frames.concat())
}

/// Each frame in its own write.
fn per_frame(frames: &[Vec<u8>]) -> Vec<Step> {
    frames.iter().cloned().map(Step::Send).collect()
}

/// The frames written one byte per write.
fn octets(frames: &[Vec<u8>]) -> Step {
    Step::Chopped(frames.concat(), 1)
}

/// Autobahn pauses for 1 s; twice that here, so that a loaded machine cannot make
/// an answer miss its pause.
fn pause() -> Step {
    Step::Pause(Duration::from_secs(2))
}

// ---------------------------------------------------------------------------------
// The cases

const HELLO: &[u8] = b"Hello, world!";
/// "κόσμε" (Greek "cosmos"), the UTF-8 example of Markus Kuhn's test file.
const KOSME: &[u8] = b"\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";
const KOSME_TEXT: &str = "\u{3BA}\u{1F79}\u{3C3}\u{3BC}\u{3B5}";

fn cases() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(section_1());
    all.extend(section_2());
    all.extend(section_3());
    all.extend(section_4());
    all.extend(section_5());
    all.extend(section_6());
    all.extend(section_7());
    all.extend(section_9());
    all.extend(section_10());
    all
}

/// 1: framing of text and binary messages of several lengths.
fn section_1() -> Vec<Case> {
    use Outcome::*;
    let sizes = [0usize, 125, 126, 127, 128, 65535, 65536, 65536];
    let mut cases = Vec::new();
    for (kind, (opcode, name, byte)) in [(1u8, "text", b'*'), (2, "binary", 0xFE)]
        .into_iter()
        .enumerate()
    {
        for (i, &len) in sizes.iter().enumerate() {
            let payload = vec![byte; len];
            let chopped = i == 7;
            let step = if chopped {
                Step::Chopped(frame(true, opcode, &payload), 997)
            } else {
                Step::Send(frame(true, opcode, &payload))
            };
            let what = format!(
                "a {name} message of {len} bytes{}",
                if chopped {
                    ", in pieces of 997 bytes"
                } else {
                    ""
                }
            );
            let id = format!("1.{}.{}", kind + 1, i + 1);
            let case = match (opcode, len > 4096) {
                (_, true) => Case::new(&id, &what, vec![step], Fails(1009)).note(TOO_BIG),
                (2, false) => Case::new(&id, &what, vec![step], Fails(1003)).note(BINARY),
                _ => Case::new(&id, &what, vec![step], Open),
            };
            cases.push(case);
        }
    }
    cases
}

/// 2: pings and pongs.
fn section_2() -> Vec<Case> {
    use Outcome::*;
    let small_binary: &[u8] = b"\x00\xFF\xFE\xFD\xFC\xFB\x00\xFF";
    let long = [0xFEu8; 125];
    let too_long = [0xFEu8; 126];
    let ten: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("payload-{i}").into_bytes())
        .collect();
    let ten_refs: Vec<&[u8]> = ten.iter().map(Vec::as_slice).collect();
    let ten_pings: Vec<Vec<u8>> = ten.iter().map(|p| ping(p)).collect();
    vec![
        Case::new(
            "2.1",
            "a ping without payload",
            vec![send(&[ping(b"")])],
            Open,
        )
        .pongs(&[b""]),
        Case::new(
            "2.2",
            "a ping with a small text payload",
            vec![send(&[ping(HELLO)])],
            Open,
        )
        .pongs(&[HELLO]),
        Case::new(
            "2.3",
            "a ping with a small binary payload",
            vec![send(&[ping(small_binary)])],
            Open,
        )
        .pongs(&[small_binary]),
        Case::new(
            "2.4",
            "a ping with 125 bytes of payload",
            vec![send(&[ping(&long)])],
            Open,
        )
        .pongs(&[&long]),
        Case::new(
            "2.5",
            "a ping with 126 bytes of payload",
            vec![send(&[ping(&too_long)])],
            Fails(1002),
        ),
        Case::new(
            "2.6",
            "a ping with 125 bytes, one byte per write",
            vec![octets(&[ping(&long)])],
            Open,
        )
        .pongs(&[&long]),
        Case::new(
            "2.7",
            "an unsolicited pong without payload",
            vec![send(&[pong(b"")])],
            Open,
        ),
        Case::new(
            "2.8",
            "an unsolicited pong with payload",
            vec![send(&[pong(b"unsolicited pong payload")])],
            Open,
        ),
        Case::new(
            "2.9",
            "an unsolicited pong, then a ping",
            vec![send(&[
                pong(b"unsolicited pong payload"),
                ping(b"ping payload"),
            ])],
            Open,
        )
        .pongs(&[b"ping payload"]),
        Case::new(
            "2.10",
            "10 pings in one write",
            vec![send(&ten_pings)],
            Open,
        )
        .pongs(&ten_refs),
        Case::new(
            "2.11",
            "10 pings, one byte per write",
            vec![octets(&ten_pings)],
            Open,
        )
        .pongs(&ten_refs),
    ]
}

/// 3: reserved bits.
fn section_3() -> Vec<Case> {
    use Outcome::*;
    let then_ping = |rsv: u8| [text(HELLO), frame_rsv(true, rsv, 1, HELLO), ping(b"")];
    vec![
        Case::new(
            "3.1",
            "a text message with RSV = 1",
            vec![send(&[frame_rsv(true, 1, 1, HELLO)])],
            Fails(1002),
        ),
        Case::new(
            "3.2",
            "a text message, again with RSV = 2, then a ping",
            vec![send(&then_ping(2))],
            Fails(1002),
        ),
        Case::new(
            "3.3",
            "a text message, again with RSV = 3, then a ping; one write per frame",
            per_frame(&then_ping(3)),
            Fails(1002),
        ),
        Case::new(
            "3.4",
            "a text message, again with RSV = 4, then a ping; one byte per write",
            vec![octets(&then_ping(4))],
            Fails(1002),
        ),
        Case::new(
            "3.5",
            "a binary message with RSV = 5",
            vec![send(&[frame_rsv(true, 5, 2, b"\xFF")])],
            Fails(1002),
        ),
        Case::new(
            "3.6",
            "a ping with RSV = 6",
            vec![send(&[frame_rsv(true, 6, 9, HELLO)])],
            Fails(1002),
        ),
        Case::new(
            "3.7",
            "a close with RSV = 7",
            vec![send(&[frame_rsv(true, 7, 8, &1000u16.to_be_bytes())])],
            Fails(1002),
        ),
    ]
}

/// 4: reserved opcodes.
fn section_4() -> Vec<Case> {
    let mut cases = Vec::new();
    for (group, opcodes) in [(1, [3u8, 4, 5, 6, 7]), (2, [11, 12, 13, 14, 15])] {
        let kind = if group == 1 { "non-control" } else { "control" };
        for (i, &opcode) in opcodes.iter().enumerate() {
            let payload: &[u8] = if matches!(i, 1 | 3 | 4) {
                b"reserved opcode payload"
            } else {
                b""
            };
            let id = format!("4.{group}.{}", i + 1);
            let case = if i < 2 {
                Case::new(
                    &id,
                    &format!("a frame with the reserved {kind} opcode {opcode}"),
                    vec![send(&[frame(true, opcode, payload)])],
                    Outcome::Fails(1002),
                )
            } else {
                let frames = [text(HELLO), frame(true, opcode, payload), ping(b"")];
                let steps = if i == 4 {
                    vec![octets(&frames)]
                } else {
                    vec![send(&frames)]
                };
                Case::new(
                    &id,
                    &format!(
                        "a text message, a frame with the reserved {kind} opcode {opcode}, a ping"
                    ),
                    steps,
                    Outcome::Fails(1002),
                )
            };
            cases.push(case);
        }
    }
    cases
}

/// 5: fragmentation.
fn section_5() -> Vec<Case> {
    use Outcome::*;
    let two = [frame(false, 1, b"fragment1"), frame(true, 0, b"fragment2")];
    let with_ping = [
        frame(false, 1, b"fragment1"),
        ping(b"ping payload"),
        frame(true, 0, b"fragment2"),
    ];
    let stray = |fin: bool| [frame(fin, 0, b"non-continuation payload"), text(HELLO)];
    let twice = |fin: bool| {
        let once = [
            frame(fin, 0, b"fragment1"),
            frame(false, 1, b"fragment2"),
            frame(true, 0, b"fragment3"),
        ];
        [once.clone(), once].concat()
    };
    let long_message = |sync: bool| {
        let first = [
            frame(false, 1, b"fragment1"),
            frame(false, 0, b"fragment2"),
            ping(b"pongme 1!"),
        ];
        let second = [
            frame(false, 0, b"fragment3"),
            frame(false, 0, b"fragment4"),
            ping(b"pongme 2!"),
            frame(true, 0, b"fragment5"),
        ];
        let mut steps = if sync {
            per_frame(&first)
        } else {
            vec![send(&first)]
        };
        steps.push(pause());
        steps.extend(if sync {
            per_frame(&second)
        } else {
            vec![send(&second)]
        });
        steps
    };
    let mut cases = vec![
        Case::new(
            "5.1",
            "a ping in 2 fragments",
            vec![send(&[
                frame(false, 9, b"fragment1"),
                frame(true, 0, b"fragment2"),
            ])],
            Fails(1002),
        ),
        Case::new(
            "5.2",
            "a pong in 2 fragments",
            vec![send(&[
                frame(false, 10, b"fragment1"),
                frame(true, 0, b"fragment2"),
            ])],
            Fails(1002),
        ),
        Case::new(
            "5.3",
            "a text message in 2 fragments",
            vec![send(&two)],
            Open,
        ),
        Case::new(
            "5.4",
            "the same, one write per frame",
            per_frame(&two),
            Open,
        ),
        Case::new(
            "5.5",
            "the same, one byte per write",
            vec![octets(&two)],
            Open,
        ),
        Case::new(
            "5.6",
            "a text message in 2 fragments with a ping between",
            vec![send(&with_ping)],
            Open,
        )
        .pongs(&[b"ping payload"]),
        Case::new(
            "5.7",
            "the same, one write per frame",
            per_frame(&with_ping),
            Open,
        )
        .pongs(&[b"ping payload"]),
        Case::new(
            "5.8",
            "the same, one byte per write",
            vec![octets(&with_ping)],
            Open,
        )
        .pongs(&[b"ping payload"]),
    ];
    for (first, fin) in [(9, true), (12, false)] {
        let what =
            format!("a continuation with FIN = {fin} and nothing to continue, then a text message");
        cases.extend([
            Case::new(
                &format!("5.{first}"),
                &what,
                vec![send(&stray(fin))],
                Fails(1002),
            ),
            Case::new(
                &format!("5.{}", first + 1),
                &format!("{what}; one write per frame"),
                per_frame(&stray(fin)),
                Fails(1002),
            ),
            Case::new(
                &format!("5.{}", first + 2),
                &format!("{what}; one byte per write"),
                vec![octets(&stray(fin))],
                Fails(1002),
            ),
        ]);
    }
    cases.extend([
        Case::new(
            "5.15",
            "a text message in 2 fragments, a continuation with nothing to continue, a text message",
            vec![send(&[
                frame(false, 1, b"fragment1"),
                frame(true, 0, b"fragment2"),
                frame(false, 0, b"fragment3"),
                text(b"fragment4"),
            ])],
            Fails(1002),
        ),
        Case::new(
            "5.16",
            "twice: a continuation (FIN = false) with nothing to continue, a text message in 2 fragments",
            vec![send(&twice(false))],
            Fails(1002),
        ),
        Case::new(
            "5.17",
            "twice: a continuation (FIN = true) with nothing to continue, a text message in 2 fragments",
            vec![send(&twice(true))],
            Fails(1002),
        ),
        Case::new(
            "5.18",
            "a text message in 2 fragments, both with the text opcode",
            vec![send(&[frame(false, 1, b"fragment1"), frame(true, 1, b"fragment2")])],
            Fails(1002),
        ),
        Case::new(
            "5.19",
            "a text message in 5 fragments with a ping after the 2nd and the 4th, a pause after the first ping",
            long_message(false),
            Open,
        )
        .events(vec![
            Event::Pong(b"pongme 1!".to_vec()),
            Event::Waited,
            Event::Pong(b"pongme 2!".to_vec()),
        ]),
        Case::new("5.20", "the same, one write per frame", long_message(true), Open).events(vec![
            Event::Pong(b"pongme 1!".to_vec()),
            Event::Waited,
            Event::Pong(b"pongme 2!".to_vec()),
        ]),
    ]);
    cases
}

/// 6: UTF-8 in text messages.
fn section_6() -> Vec<Case> {
    use Outcome::*;
    let greeting = "Hello-\u{B5}@\u{DF}\u{F6}\u{E4}\u{FC}\u{E0}\u{E1}-UTF-8!!".as_bytes();
    let one_octet_fragments = |payload: &[u8]| -> Vec<Vec<u8>> {
        let n = payload.len();
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| frame(i + 1 == n, if i == 0 { 1 } else { 0 }, &[*b]))
            .collect()
    };
    let invalid: Vec<u8> = [KOSME, b"\xED\xA0\x80", b"edited"].concat();
    // Valid until byte 12 (0-based 12: 0x90), which makes F4 90 80 80 (above U+10FFFF).
    let fail_fast: Vec<u8> = [KOSME, b"\xF4\x90\x80\x80", b"edited"].concat();
    let (a, b, c) = (&fail_fast[..11], &fail_fast[11..15], &fail_fast[15..]);
    let in_one_frame = |parts: [&[u8]; 3]| {
        // One frame announced with the whole length, its payload written in parts.
        let whole: Vec<u8> = parts.concat();
        let bytes = frame(true, 1, &whole);
        let header = bytes.len() - whole.len();
        let (mut steps, mut at) = (Vec::new(), header);
        for (i, part) in parts.iter().enumerate() {
            let start = if i == 0 { 0 } else { at };
            at += part.len();
            steps.push(Step::Send(bytes[start..at].to_vec()));
            if i < 2 {
                steps.push(pause());
            }
        }
        steps
    };
    let in_three_frames = |parts: [&[u8]; 3]| {
        vec![
            Step::Send(frame(false, 1, parts[0])),
            pause(),
            Step::Send(frame(false, 0, parts[1])),
            pause(),
            Step::Send(frame(true, 0, parts[2])),
        ]
    };
    let mut cases = vec![
        Case::new("6.1.1", "an empty text message", vec![send(&[text(b"")])], Open),
        Case::new(
            "6.1.2",
            "a text message of 3 empty fragments",
            vec![send(&[frame(false, 1, b""), frame(false, 0, b""), frame(true, 0, b"")])],
            Open,
        ),
        Case::new(
            "6.1.3",
            "a text message of 3 fragments, only the middle one not empty",
            vec![send(&[
                frame(false, 1, b""),
                frame(false, 0, b"middle frame payload"),
                frame(true, 0, b""),
            ])],
            Open,
        ),
        Case::new("6.2.1", "valid UTF-8 text in one frame", vec![send(&[text(greeting)])], Open),
        Case::new(
            "6.2.2",
            "valid UTF-8 text in 2 fragments cut between characters",
            vec![send(&[frame(false, 1, &greeting[..14]), frame(true, 0, &greeting[14..])])],
            Open,
        ),
        Case::new(
            "6.2.3",
            "valid UTF-8 text in fragments of 1 byte (cut inside characters)",
            vec![send(&one_octet_fragments(greeting))],
            Open,
        ),
        Case::new(
            "6.2.4",
            &format!("\"{KOSME_TEXT}\" in fragments of 1 byte"),
            vec![send(&one_octet_fragments(KOSME))],
            Open,
        ),
        Case::new("6.3.1", "invalid UTF-8 (a surrogate) in one frame", vec![send(&[text(&invalid)])], Fails(1007)),
        Case::new(
            "6.3.2",
            "the same in fragments of 1 byte",
            vec![send(&one_octet_fragments(&invalid))],
            Fails(1007),
        ),
        Case::new(
            "6.4.1",
            "3 fragments with pauses, the 2nd making the text invalid: fails with it",
            in_three_frames([a, b, c]),
            Fails(1007),
        )
        .events(vec![Event::Waited]),
        Case::new(
            "6.4.2",
            "the same, the 2nd fragment being the one byte that makes it invalid",
            in_three_frames([&fail_fast[..12], &fail_fast[12..13], &fail_fast[13..]]),
            Fails(1007),
        )
        .events(vec![Event::Waited]),
        Case::new(
            "6.4.3",
            "one frame written in 3 parts with pauses, the 2nd making the text invalid: fails with it",
            in_one_frame([a, b, c]),
            Fails(1007),
        )
        .events(vec![Event::Waited]),
        Case::new(
            "6.4.4",
            "the same, the 2nd part being the one byte that makes it invalid",
            in_one_frame([&fail_fast[..12], &fail_fast[12..13], &fail_fast[13..]]),
            Fails(1007),
        )
        .events(vec![Event::Waited]),
    ];
    for (i, (group, vectors)) in utf8_vectors().into_iter().enumerate() {
        for (j, (valid, payload)) in vectors.into_iter().enumerate() {
            let id = format!("6.{}.{}", i + 5, j + 1);
            let (validity, outcome) = if valid {
                ("valid", Open)
            } else {
                ("invalid", Fails(1007))
            };
            let what = if i == 1 {
                // 6.6: which prefix, for the table.
                format!(
                    "{validity} UTF-8: the first {} bytes of \"{KOSME_TEXT}\"",
                    payload.len()
                )
            } else {
                format!("{validity} UTF-8: {group}")
            };
            cases.push(Case::new(
                &id,
                &what,
                vec![send(&[text(&payload)])],
                outcome,
            ));
        }
    }
    cases
}

/// Test vectors: whether each is valid UTF-8, and its bytes.
type Vectors = Vec<(bool, Vec<u8>)>;

/// The test vectors of Markus Kuhn's UTF-8 decoder test file
/// (<https://www.cl.cam.ac.uk/~mgk25/ucs/examples/UTF-8-test.txt>), grouped as
/// Autobahn numbers them (6.5 to 6.23), with whether each is valid UTF-8.
fn utf8_vectors() -> Vec<(&'static str, Vectors)> {
    let valid = |s: &[u8]| (true, s.to_vec());
    let bad = |s: &[u8]| (false, s.to_vec());
    let chars = |from: u32, to: u32| -> Vectors {
        (from..=to)
            .filter_map(char::from_u32)
            .map(|c| (true, c.to_string().into_bytes()))
            .collect()
    };
    // A UTF-16 surrogate, encoded as if it were a character (which UTF-8 forbids).
    let surrogate = |u: u32| -> Vec<u8> {
        vec![
            0xE0 | (u >> 12) as u8,
            0x80 | ((u >> 6) & 0x3F) as u8,
            0x80 | (u & 0x3F) as u8,
        ]
    };
    let missing_last: Vec<&[u8]> = vec![
        b"\xC0",
        b"\xE0\x80",
        b"\xF0\x80\x80",
        b"\xF8\x80\x80\x80",
        b"\xFC\x80\x80\x80\x80",
        b"\xDF",
        b"\xEF\xBF",
        b"\xF7\xBF\xBF",
        b"\xFB\xBF\xBF\xBF",
        b"\xFD\xBF\xBF\xBF\xBF",
    ];
    let lonely = |from: u8, to: u8| -> (bool, Vec<u8>) {
        (false, (from..=to).flat_map(|b| [b, b' ']).collect())
    };
    let mut noncharacters = vec![valid("\u{FFFE}".as_bytes()), valid("\u{FFFF}".as_bytes())];
    for plane in 1..=16u32 {
        noncharacters.extend(chars(plane << 16 | 0xFFFE, plane << 16 | 0xFFFF));
    }
    vec![
        (
            "some valid sequences",
            vec![
                valid(b"hello$world"),
                valid("hello\u{A2}world".as_bytes()),
                valid("hello\u{20AC}world".as_bytes()),
                valid("hello\u{24B62}world".as_bytes()),
                valid(KOSME),
            ],
        ),
        (
            "every prefix of a text with multi-byte characters",
            (1..=KOSME.len())
                .map(|n| (matches!(n, 2 | 5 | 7 | 9 | 11), KOSME[..n].to_vec()))
                .collect(),
        ),
        (
            "first possible sequence of each length",
            vec![
                valid(b"\x00"),
                valid(b"\xC2\x80"),
                valid(b"\xE0\xA0\x80"),
                valid(b"\xF0\x90\x80\x80"),
            ],
        ),
        (
            "first possible sequence of 5 and 6 bytes",
            vec![
                bad(b"\xF8\x88\x80\x80\x80"),
                bad(b"\xFC\x84\x80\x80\x80\x80"),
            ],
        ),
        (
            "last possible sequence of each length",
            vec![
                valid(b"\x7F"),
                valid(b"\xDF\xBF"),
                valid(b"\xEF\xBF\xBF"),
                valid(b"\xF4\x8F\xBF\xBF"),
            ],
        ),
        (
            "last possible sequence of 4, 5 and 6 bytes (above U+10FFFF)",
            vec![
                bad(b"\xF7\xBF\xBF\xBF"),
                bad(b"\xFB\xBF\xBF\xBF\xBF"),
                bad(b"\xFD\xBF\xBF\xBF\xBF\xBF"),
            ],
        ),
        (
            "other boundary conditions",
            vec![
                valid(b"\xED\x9F\xBF"),
                valid(b"\xEE\x80\x80"),
                valid(b"\xEF\xBF\xBD"),
                valid(b"\xF4\x8F\xBF\xBF"),
                bad(b"\xF4\x90\x80\x80"),
            ],
        ),
        (
            "unexpected continuation bytes",
            vec![
                bad(b"\x80"),
                bad(b"\xBF"),
                bad(b"\x80\xBF"),
                bad(b"\x80\xBF\x80"),
                bad(b"\x80\xBF\x80\xBF"),
                bad(b"\x80\xBF\x80\xBF\x80"),
                bad(b"\x80\xBF\x80\xBF\x80\xBF"),
                (false, (0x80..=0xBF).collect()),
            ],
        ),
        (
            "lonely start bytes, each followed by a space",
            vec![
                lonely(0xC0, 0xDF),
                lonely(0xE0, 0xEF),
                lonely(0xF0, 0xF7),
                lonely(0xF8, 0xFB),
                lonely(0xFC, 0xFD),
            ],
        ),
        (
            "sequences with the last continuation byte missing",
            missing_last.iter().map(|s| bad(s)).collect(),
        ),
        (
            "those incomplete sequences one after the other",
            vec![(false, missing_last.concat())],
        ),
        (
            "bytes that never appear in UTF-8",
            vec![bad(b"\xFE"), bad(b"\xFF"), bad(b"\xFE\xFE\xFF\xFF")],
        ),
        (
            "overlong forms of '/'",
            vec![
                bad(b"\xC0\xAF"),
                bad(b"\xE0\x80\xAF"),
                bad(b"\xF0\x80\x80\xAF"),
                bad(b"\xF8\x80\x80\x80\xAF"),
                bad(b"\xFC\x80\x80\x80\x80\xAF"),
            ],
        ),
        (
            "the longest overlong forms",
            vec![
                bad(b"\xC1\xBF"),
                bad(b"\xE0\x9F\xBF"),
                bad(b"\xF0\x8F\xBF\xBF"),
                bad(b"\xF8\x87\xBF\xBF\xBF"),
                bad(b"\xFC\x83\xBF\xBF\xBF\xBF"),
            ],
        ),
        (
            "overlong forms of NUL",
            vec![
                bad(b"\xC0\x80"),
                bad(b"\xE0\x80\x80"),
                bad(b"\xF0\x80\x80\x80"),
                bad(b"\xF8\x80\x80\x80\x80"),
                bad(b"\xFC\x80\x80\x80\x80\x80"),
            ],
        ),
        (
            "single UTF-16 surrogates",
            [0xD800, 0xDB7F, 0xDB80, 0xDBFF, 0xDC00, 0xDF80, 0xDFFF]
                .into_iter()
                .map(|u| (false, surrogate(u)))
                .collect(),
        ),
        (
            "paired UTF-16 surrogates",
            [0xD800, 0xDB7F, 0xDB80, 0xDBFF]
                .into_iter()
                .flat_map(|high| {
                    [0xDC00, 0xDFFF].map(|low| (false, [surrogate(high), surrogate(low)].concat()))
                })
                .collect(),
        ),
        ("noncharacters", noncharacters),
        (
            "the specials block, U+FFF9 to U+FFFF",
            chars(0xFFF9, 0xFFFF),
        ),
    ]
}

/// 7: closing.
fn section_7() -> Vec<Case> {
    use Outcome::*;
    let mut cases = vec![
        Case::new(
            "7.1.1",
            "a text message, then a close",
            vec![send(&[text(b"Hello World!"), close(1000, b"")])],
            Answers(1000),
        ),
        Case::new(
            "7.1.2",
            "two closes",
            vec![send(&[close(1000, b""), close(1000, b"")])],
            Answers(1000),
        ),
        Case::new(
            "7.1.3",
            "a close, then a ping (not answered)",
            vec![send(&[close(1000, b""), ping(b"")])],
            Answers(1000),
        ),
        Case::new(
            "7.1.4",
            "a close, then a text message",
            vec![send(&[close(1000, b""), text(b"Hello World!")])],
            Answers(1000),
        ),
        Case::new(
            "7.1.5",
            "a first fragment, a close, the last fragment",
            vec![send(&[
                frame(false, 1, b"fragment1"),
                close(1000, b""),
                frame(true, 0, b"fragment2"),
            ])],
            Answers(1000),
        ),
        Case::new(
            "7.1.6",
            "a 256 KiB text message, a text message, a close and a ping",
            vec![
                Step::Large {
                    opcode: 1,
                    len: 256 << 10,
                    fragment: 256 << 10,
                    chop: 64 << 10,
                },
                send(&[text(b"Hello World!"), close(1000, b""), ping(b"")]),
            ],
            Fails(1009),
        )
        .note(BIG_FIRST),
        Case::new(
            "7.3.1",
            "a close without payload",
            vec![send(&[frame(true, 8, b"")])],
            Answers(1000),
        ),
        Case::new(
            "7.3.2",
            "a close with 1 byte of payload",
            vec![send(&[frame(true, 8, b"\x03")])],
            Fails(1002),
        ),
        Case::new(
            "7.3.3",
            "a close with code 1000",
            vec![send(&[close(1000, b"")])],
            Answers(1000),
        ),
        Case::new(
            "7.3.4",
            "a close with code 1000 and a reason",
            vec![send(&[close(1000, b"Hello World!")])],
            Answers(1000),
        ),
        Case::new(
            "7.3.5",
            "a close with code 1000 and a reason of 123 bytes (the most that fits)",
            vec![send(&[close(1000, &[b'*'; 123])])],
            Answers(1000),
        ),
        Case::new(
            "7.3.6",
            "a close with code 1000 and a reason of 124 bytes (a payload of 126)",
            vec![send(&[close(1000, &[b'*'; 124])])],
            Fails(1002),
        ),
        Case::new(
            "7.5.1",
            "a close with code 1000 and a reason that is not UTF-8",
            vec![send(&[close(
                1000,
                &[KOSME, b"\xED\xA0\x80edited"].concat(),
            )])],
            Fails(1007),
        ),
    ];
    for (i, code) in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(Case::new(
            &format!("7.7.{}", i + 1),
            &format!("a close with the valid code {code}"),
            vec![send(&[close(code, b"")])],
            Answers(code),
        ));
    }
    for (i, code) in [0u16, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
        .into_iter()
        .enumerate()
    {
        cases.push(Case::new(
            &format!("7.9.{}", i + 1),
            &format!("a close with the invalid code {code}"),
            vec![send(&[close(code, b"")])],
            Fails(1002),
        ));
    }
    for (i, code) in [5000u16, 65535].into_iter().enumerate() {
        cases.push(Case::new(
            &format!("7.13.{}", i + 1),
            &format!("a close with the code {code} (Autobahn: informational)"),
            vec![send(&[close(code, b"")])],
            Fails(1002),
        ));
    }
    cases
}

/// 9: limits and performance. Every message here is larger than the server takes, or
/// there are many more than it takes in a second.
fn section_9() -> Vec<Case> {
    use Outcome::*;
    const K: usize = 1 << 10;
    const M: usize = 1 << 20;
    let mut cases = Vec::new();
    let sizes = [64 * K, 256 * K, M, 4 * M, 8 * M, 16 * M];
    for (group, (opcode, name)) in [(1, (1u8, "text")), (2, (2, "binary"))] {
        for (i, &len) in sizes.iter().enumerate() {
            cases.push(
                Case::new(
                    &format!("9.{group}.{}", i + 1),
                    &format!("a {name} message of {} KiB", len / K),
                    vec![Step::Large {
                        opcode,
                        len,
                        fragment: len,
                        chop: 64 * K,
                    }],
                    Fails(1009),
                )
                .note(TOO_BIG),
            );
        }
    }
    let fragments = [64, 256, K, 4 * K, 16 * K, 64 * K, 256 * K, M, 4 * M];
    for (group, (opcode, name)) in [(3, (1u8, "text")), (4, (2, "binary"))] {
        for (i, &fragment) in fragments.iter().enumerate() {
            cases.push(
                Case::new(
                    &format!("9.{group}.{}", i + 1),
                    &format!("a {name} message of 4 MiB in fragments of {fragment} bytes"),
                    vec![Step::Large {
                        opcode,
                        len: 4 * M,
                        fragment,
                        chop: 64 * K,
                    }],
                    Fails(1009),
                )
                .note(TOO_BIG),
            );
        }
    }
    let chops = [64, 128, 256, 512, 1024, 2048];
    for (group, (opcode, name)) in [(5, (1u8, "text")), (6, (2, "binary"))] {
        for (i, &chop) in chops.iter().enumerate() {
            cases.push(
                Case::new(
                    &format!("9.{group}.{}", i + 1),
                    &format!("a {name} message of 1 MiB written in pieces of {chop} bytes"),
                    vec![Step::Large {
                        opcode,
                        len: M,
                        fragment: M,
                        chop,
                    }],
                    Fails(1009),
                )
                .note(TOO_BIG),
            );
        }
    }
    let lengths = [0usize, 16, 64, 256, 1024, 4096];
    for (group, (opcode, name)) in [(7, (1u8, "text")), (8, (2, "binary"))] {
        for (i, &len) in lengths.iter().enumerate() {
            let message = frame(
                true,
                opcode,
                &vec![if opcode == 1 { b'*' } else { 0xFE }; len],
            );
            let (outcome, note) = if opcode == 1 {
                (Fails(1008), RATE)
            } else {
                (Fails(1003), BINARY)
            };
            cases.push(
                Case::new(
                    &format!("9.{group}.{}", i + 1),
                    &format!("1000 {name} messages of {len} bytes, back to back"),
                    vec![Step::Repeat(message, 1000)],
                    outcome,
                )
                .note(note),
            );
        }
    }
    cases
}

/// 10: miscellaneous.
fn section_10() -> Vec<Case> {
    vec![Case::new(
        "10.1.1",
        "a text message of 64 KiB in fragments of 1300 bytes",
        vec![Step::Large {
            opcode: 1,
            len: 64 << 10,
            fragment: 1300,
            chop: 64 << 10,
        }],
        Outcome::Fails(1009),
    )
    .note(TOO_BIG)]
}

// ---------------------------------------------------------------------------------
// The client

/// One connection to the server, as the case's client.
struct Connection {
    write: OwnedWriteHalf,
    events: mpsc::UnboundedReceiver<Seen>,
    /// Also given to the reader, for the client's own events (`Waited`).
    sender: mpsc::UnboundedSender<Seen>,
    closed: Arc<AtomicBool>,
}

/// What the reader saw: a server event, or the end of the connection.
#[derive(Debug)]
enum Seen {
    Event(Event),
    /// The server ended the connection cleanly (FIN).
    End,
    /// The connection was reset, or the server sent something that is not
    /// RFC 6455 (described).
    Broken(String),
}

impl Connection {
    /// Connects from `source` and completes the opening handshake.
    async fn open(server: SocketAddr, source: IpAddr) -> Result<Self, String> {
        let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
        let mut stream = socket.connect(server).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
                .await
                .map_err(|_| "no handshake answer".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 || head.len() > 4096 {
                return Err(format!(
                    "bad handshake answer: {}",
                    String::from_utf8_lossy(&head)
                ));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        if !head.starts_with("HTTP/1.1 101")
            || !head
                .to_ascii_lowercase()
                .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=")
        {
            return Err(format!("handshake refused: {head}"));
        }
        let (read, write) = stream.into_split();
        let (sender, events) = mpsc::unbounded_channel();
        let closed = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_server(read, sender.clone(), closed.clone()));
        Ok(Connection {
            write,
            events,
            sender,
            closed,
        })
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Writes, unless the server has closed; `false` once writing is pointless.
    async fn write(&mut self, bytes: &[u8]) -> bool {
        !self.closed() && self.write.write_all(bytes).await.is_ok()
    }

    /// Runs one step; `false` when the connection is over for writing.
    async fn step(&mut self, step: &Step) -> bool {
        match step {
            Step::Send(bytes) => self.write(bytes).await,
            Step::Chopped(bytes, size) => {
                for piece in bytes.chunks(*size) {
                    if !self.write(piece).await {
                        return false;
                    }
                }
                true
            }
            Step::Repeat(bytes, count) => {
                for _ in 0..*count {
                    if !self.write(bytes).await {
                        return false;
                    }
                }
                true
            }
            Step::Pause(duration) => {
                tokio::time::sleep(*duration).await;
                if !self.closed() {
                    let _ = self.sender.send(Seen::Event(Event::Waited));
                }
                true
            }
            Step::Large {
                opcode,
                len,
                fragment,
                chop,
            } => {
                let byte = if *opcode == 1 { b'*' } else { 0xFE };
                let mut sent = 0;
                while sent < *len {
                    let n = (*fragment).min(len - sent);
                    let first = sent == 0;
                    sent += n;
                    let b0 = (u8::from(sent == *len) << 7) | if first { *opcode } else { 0 };
                    let header = [vec![b0], length_and_mask(n)].concat();
                    if !self.write(&header).await {
                        return false;
                    }
                    let mut left = n;
                    let mut at = 0;
                    while left > 0 {
                        let piece: Vec<u8> = (at..at + (*chop).min(left))
                            .map(|i| byte ^ MASK[i % 4])
                            .collect();
                        if !self.write(&piece).await {
                            return false;
                        }
                        at += piece.len();
                        left -= piece.len();
                    }
                }
                true
            }
        }
    }
}

/// Reads the server's frames, checking each is well formed, and reports pongs and
/// the close; text and binary messages (the stream) are skipped.
async fn read_server(
    mut read: OwnedReadHalf,
    events: mpsc::UnboundedSender<Seen>,
    closed: Arc<AtomicBool>,
) {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    let mut after_close = false;
    loop {
        // Every complete frame in the buffer.
        loop {
            let (frame, used) = match server_frame(&buffer) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => break,
                Err(problem) => {
                    let _ = events.send(Seen::Broken(problem));
                    return;
                }
            };
            buffer.drain(..used);
            if after_close {
                let _ = events.send(Seen::Broken(format!(
                    "a frame after the close: {:?}",
                    frame.0
                )));
                return;
            }
            match frame {
                (10, payload) => {
                    let _ = events.send(Seen::Event(Event::Pong(payload)));
                }
                (8, payload) => {
                    after_close = true;
                    closed.store(true, Ordering::SeqCst);
                    let code = match close_code(&payload) {
                        Ok(code) => code,
                        Err(problem) => {
                            let _ = events.send(Seen::Broken(problem));
                            return;
                        }
                    };
                    let _ = events.send(Seen::Event(Event::Close(code)));
                }
                (1, payload) if std::str::from_utf8(&payload).is_err() => {
                    let _ = events.send(Seen::Broken("a text message that is not UTF-8".into()));
                    return;
                }
                _ => {}
            }
        }
        match read.read(&mut chunk).await {
            Ok(0) => {
                closed.store(true, Ordering::SeqCst);
                let _ = events.send(Seen::End);
                return;
            }
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(error) => {
                closed.store(true, Ordering::SeqCst);
                let _ = events.send(Seen::Broken(format!("read: {error}")));
                return;
            }
        }
    }
}

/// One server frame from the start of `bytes`: (opcode, payload) and its length.
#[allow(clippy::type_complexity)]
fn server_frame(bytes: &[u8]) -> Result<Option<((u8, Vec<u8>), usize)>, String> {
    let [b0, b1, ..] = *bytes else {
        return Ok(None);
    };
    if b0 & 0x80 == 0 || b0 & 0x70 != 0 {
        return Err(format!(
            "server frame not final or with reserved bits: {b0:#04x}"
        ));
    }
    if b1 & 0x80 != 0 {
        return Err("masked server frame".into());
    }
    let opcode = b0 & 0x0F;
    if ![1, 2, 8, 9, 10].contains(&opcode) {
        return Err(format!("server frame with opcode {opcode}"));
    }
    let (len, at) = match b1 & 0x7F {
        126 if bytes.len() >= 4 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 if bytes.len() >= 10 => {
            let mut len = [0u8; 8];
            len.copy_from_slice(&bytes[2..10]);
            (u64::from_be_bytes(len) as usize, 10)
        }
        126 | 127 => return Ok(None),
        short => (usize::from(short), 2),
    };
    if opcode >= 8 && len > 125 {
        return Err(format!("server control frame of {len} bytes"));
    }
    if bytes.len() < at + len {
        return Ok(None);
    }
    Ok(Some(((opcode, bytes[at..at + len].to_vec()), at + len)))
}

/// The code of a server close frame, checked against RFC 6455 7.4 on its own
/// (not with the server's code).
fn close_code(payload: &[u8]) -> Result<Option<u16>, String> {
    match payload {
        [] => Ok(None),
        [_] => Err("server close frame of one byte".into()),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !sendable {
                return Err(format!("the server sent the close code {code}"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err("a server close reason that is not UTF-8".into());
            }
            Ok(Some(code))
        }
    }
}

/// Runs one case from `source`; the events seen, or what went wrong.
async fn run(case: &Case, server: SocketAddr, source: IpAddr) -> Result<(), String> {
    let mut connection = Connection::open(server, source).await?;
    for step in &case.steps {
        if !connection.step(step).await {
            break;
        }
    }
    // Is it still healthy? (A connection that failed must not answer this.)
    connection.write(&ping(MARKER)).await;
    let mut events = Vec::new();
    let mut closing = false;
    let end = loop {
        let seen = tokio::time::timeout(WAIT, connection.events.recv())
            .await
            .map_err(|_| format!("nothing more from the server after {events:?}"))?;
        match seen {
            Some(Seen::Event(event)) => {
                if event == Event::Pong(MARKER.to_vec()) && !closing {
                    closing = true;
                    connection.write(&close(1000, b"")).await;
                }
                if let Event::Close(_) = event {
                    // Answer the server's close (unless it answered ours), and end
                    // our direction.
                    if !closing && !matches!(case.outcome, Outcome::Answers(_)) {
                        let _ = connection.write.write_all(&close(1000, b"")).await;
                    }
                    let _ = connection.write.shutdown().await;
                }
                events.push(event);
            }
            Some(Seen::End) | None => break Ok(()),
            Some(Seen::Broken(problem)) => break Err(problem),
        }
    };
    let expected = case.expected();
    if events != expected {
        let ending = match &end {
            Ok(()) => String::new(),
            Err(problem) => format!(", then: {problem}"),
        };
        return Err(format!("got {events:?}{ending}, expected {expected:?}"));
    }
    match (end, case.outcome) {
        (Ok(()), _) => Ok(()),
        // A failed connection need not end cleanly (Autobahn: requireClean false),
        // as long as the close frame arrived first.
        (Err(problem), Outcome::Fails(_)) if problem.starts_with("read:") => Ok(()),
        (Err(problem), _) => Err(problem),
    }
}

// ---------------------------------------------------------------------------------
// The tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_passes_the_autobahn_cases_for_sections_1_to_7_9_and_10() {
    let hub = Hub::new(limits(64), None);
    let server = TestServer::start(hub, vec![]).await;
    let queue = Arc::new(Mutex::new(cases().into_iter().collect::<VecDeque<_>>()));
    let total = queue.lock().unwrap().len();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let queue = queue.clone();
        let address = server.addr;
        // Each worker from its own loopback address, so that a limit per client
        // address does not count all the cases as one client.
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + worker));
        workers.spawn(async move {
            let mut failures = Vec::new();
            loop {
                let Some(case) = queue.lock().unwrap().pop_front() else {
                    return failures;
                };
                if let Err(problem) = run(&case, address, source).await {
                    failures.push(format!("{} ({}): {problem}", case.id, case.what));
                }
            }
        });
    }
    let mut failures = Vec::new();
    while let Some(result) = workers.join_next().await {
        failures.extend(result.expect("worker"));
    }
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    server.stop().await;
}

/// A client that broke the rules, got its close frame and then neither answers nor
/// closes: the server lets go of the connection after its linger (Autobahn's
/// "drop TCP"), it does not hold it open for as long as the client likes.
#[tokio::test]
async fn a_client_that_never_closes_is_let_go_after_the_linger() {
    let hub = Hub::new(limits(4), None);
    let server = TestServer::start(hub, vec![]).await;
    let mut connection = Connection::open(server.addr, IpAddr::V4(Ipv4Addr::LOCALHOST))
        .await
        .expect("connect");
    assert!(connection.write(&frame_rsv(true, 1, 1, HELLO)).await);
    let mut events = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, connection.events.recv()).await {
            Ok(Some(Seen::Event(event))) => events.push(event),
            Ok(Some(Seen::End)) => break,
            other => panic!("expected a close and the end of the stream, got {other:?}"),
        }
    }
    assert_eq!(events, [Event::Close(Some(1002))]);
    // The client keeps its side open. Once the server has closed its socket,
    // writing to it gets a reset.
    let started = std::time::Instant::now();
    let limit = streamer::websocket::session::CLOSE_LINGER * 3 + Duration::from_secs(2);
    let mut writes = 0;
    while connection.write.write_all(&ping(b"anyone?")).await.is_ok() {
        writes += 1;
        assert!(
            started.elapsed() < limit,
            "the server still accepts bytes {:?} after its close ({writes} writes)",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[test]
fn the_case_list_matches_autobahns() {
    let cases = cases();
    let mut ids: Vec<&str> = cases.iter().map(|c| c.id.as_str()).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "case numbers are unique");
    // Autobahn's case counts per section (1-7, 9, 10) for a server, without
    // compression (12, 13).
    let per_section = |section: &str| {
        cases
            .iter()
            .filter(|c| c.id.split('.').next() == Some(section))
            .count()
    };
    let counts: Vec<usize> = ["1", "2", "3", "4", "5", "6", "7", "9", "10"]
        .into_iter()
        .map(per_section)
        .collect();
    assert_eq!(counts, [16, 11, 7, 10, 20, 145, 37, 54, 1]);
    // The UTF-8 table agrees with an independent decoder (std's).
    for (group, vectors) in utf8_vectors() {
        for (valid, bytes) in vectors {
            assert_eq!(
                std::str::from_utf8(&bytes).is_ok(),
                valid,
                "{group}: {bytes:02x?}"
            );
        }
    }
}

/// The table of `docs/websocket-conformance.md`, made from [`cases`]: one row per
/// case, or per run of cases of one group with the same description and outcome.
fn rendered_table() -> String {
    let outcome = |case: &Case| {
        let pongs = case
            .events
            .iter()
            .filter(|e| matches!(e, Event::Pong(_)))
            .count();
        let waits = case
            .events
            .iter()
            .filter(|e| matches!(e, Event::Waited))
            .count();
        let mut before = Vec::new();
        if pongs > 0 {
            before.push(format!("{pongs} pong{}", if pongs == 1 { "" } else { "s" }));
        }
        if waits > 0 {
            before.push(format!(
                "open after {waits} pause{}",
                if waits == 1 { "" } else { "s" }
            ));
        }
        let end = match case.outcome {
            Outcome::Open => "stays open".to_string(),
            Outcome::Fails(code) => format!("closes with {code}"),
            Outcome::Answers(code) => format!("answers with {code}"),
        };
        if before.is_empty() {
            end
        } else {
            format!("{}, {end}", before.join(", "))
        }
    };
    let group = |id: &str| {
        id.rsplit_once('.')
            .map_or(id.to_string(), |(g, _)| g.to_string())
    };
    /// A run of cases: first and last number, and what they share.
    struct Row {
        first: String,
        last: String,
        shared: [String; 3],
    }
    let mut rows: Vec<Row> = Vec::new();
    for case in cases() {
        let shared = [
            case.what.clone(),
            outcome(&case),
            case.note.unwrap_or("OK").to_string(),
        ];
        match rows.last_mut() {
            Some(row) if group(&row.last) == group(&case.id) && row.shared == shared => {
                row.last = case.id
            }
            _ => rows.push(Row {
                first: case.id.clone(),
                last: case.id,
                shared,
            }),
        }
    }
    let mut table = String::from(
        "| case | the client sends | the server | verdict |\n| --- | --- | --- | --- |\n",
    );
    for Row {
        first,
        last,
        shared,
    } in rows
    {
        let id = if first == last {
            first
        } else {
            format!("{first}-{last}")
        };
        let [what, outcome, verdict] = shared;
        table.push_str(&format!("| {id} | {what} | {outcome} | {verdict} |\n"));
    }
    table
}

const TABLE_START: &str =
    "<!-- The table below is generated by app/tests/websocket_conformance.rs. -->\n";
const TABLE_END: &str = "<!-- End of the generated table. -->\n";

#[test]
fn the_documented_table_is_the_tested_one() {
    let path = repo_root().join("docs/websocket-conformance.md");
    let doc = std::fs::read_to_string(&path).expect("docs/websocket-conformance.md");
    let (before, rest) = doc
        .split_once(TABLE_START)
        .expect("the table's start marker");
    let (_, after) = rest.split_once(TABLE_END).expect("the table's end marker");
    let current = format!(
        "{before}{TABLE_START}{}{TABLE_END}{after}",
        rendered_table()
    );
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &current).expect("write the doc");
        return;
    }
    assert!(
        doc == current,
        "docs/websocket-conformance.md is out of date: rewrite its table with \
         `UPDATE_GOLDEN=1 cargo test --test websocket_conformance`"
    );
}
