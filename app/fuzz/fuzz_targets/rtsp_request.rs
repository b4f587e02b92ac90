//! An RTSP client's bytes, in arbitrary chunks, through the request reader and
//! through a whole connection's state machine: no panic, what the reader holds
//! stays bounded, after the first error it reads nothing, every response is one
//! whole RTSP response, and the connection's invariants hold after every step
//! (with frames flowing whenever the client got its session playing). Seeds
//! (`app/src/rtsp/testdata`) are real clients' requests with the session id
//! written as [`SESSION`], which is replaced by the real one once SETUP made it.
//! One input in three meets a server with a password (user `streamer`,
//! password `pw`): the seeds are then answered 401 until the input carries
//! `Authorization: Basic c3RyZWFtZXI6cHc=`, as the seed `ffmpeg-basic-locked.rtsp`
//! (ffmpeg's requests with that header, first byte 3) does.
#![no_main]

use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use streamer::access::Access;
use streamer::h264::Nal;
use streamer::hub::{Frame, Item, StreamInfo};
use streamer::rtp::packetizer::Payloads;
use streamer::rtsp::message::{Reader, MAX_BODY_BYTES, MAX_HEAD_BYTES};
use streamer::rtsp::session::{Connection, Description, Host, Output, Refused, Settings};

/// The parameter sets of a 176x144 Baseline stream.
const SPS: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0a, 0xd9, 0x04, 0x7b, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00,
    0x03, 0x03, 0x20, 0xf1, 0x22, 0x64, 0x80,
];
const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

/// Stands for the session id in seeds (ids are random).
const SESSION: &[u8; 16] = b"SSSSSSSSSSSSSSSS";

/// `piece` with every [`SESSION`] replaced by `id`.
fn with_session(piece: &[u8], id: Option<&str>) -> Vec<u8> {
    let mut out = piece.to_vec();
    if let Some(id) = id.filter(|id| id.len() == SESSION.len()) {
        let mut at = 0;
        while let Some(i) = out[at..].windows(SESSION.len()).position(|w| w == SESSION) {
            out[at + i..at + i + SESSION.len()].copy_from_slice(id.as_bytes());
            at += i + SESSION.len();
        }
    }
    out
}

struct Fake {
    playing: bool,
    full: bool,
    next: u64,
}

impl Host for Fake {
    fn description(&self) -> Option<Description> {
        Some(Description {
            stream: StreamInfo {
                codec: "avc1.42c00a".into(),
                width: 176,
                height: 144,
                fps: Some(30.0),
            },
            sps: Nal::new(Bytes::from_static(SPS))?,
            pps: Nal::new(Bytes::from_static(PPS))?,
        })
    }

    fn play(&mut self) -> Result<(), Refused> {
        assert!(!self.playing, "a second viewer place for one session");
        if self.full {
            return Err(Refused {
                reason: "full".into(),
            });
        }
        self.playing = true;
        Ok(())
    }

    fn stop(&mut self) {
        assert!(self.playing, "a place given back that was never taken");
        self.playing = false;
    }

    fn random(&mut self) -> u64 {
        self.next = self
            .next
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        self.next
    }
}

fn frame(seq: u64, keyframe: bool) -> Item {
    let mut data = vec![0, 0, 0, 1];
    data.extend_from_slice(SPS);
    data.extend_from_slice(&[0, 0, 0, 1]);
    data.extend_from_slice(PPS);
    data.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }, 0x88, 0x84]);
    Item::Frame(Frame {
        seq,
        data: Bytes::from(data),
        keyframe,
        captured_us: 1_000_000 + seq * 33_333,
        published_us: 1_000_000 + seq * 33_333,
    })
}

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

    let start = Instant::now();
    let mut host = Fake {
        playing: false,
        full: chunk % 7 == 0,
        next: u64::from(data[0]),
    };
    let access = match chunk % 3 {
        0 => Access::with_key("streamer", "pw", [5; 32]).expect("a plain password"),
        _ => Access::open(),
    };
    let mut connection = Connection::new(
        Settings {
            session_timeout: Duration::from_secs(60),
            udp_rtp_port: (chunk % 2 == 0).then_some(6970),
            max_payload: 1400,
        },
        std::sync::Arc::new(access),
        "127.0.0.1:8554".parse().unwrap(),
        "127.0.0.1:40000".parse().unwrap(),
        start,
    );
    let mut rest = stream.to_vec();
    let mut at = 0;
    let mut n = 0u64;
    while at < rest.len() {
        let end = (at + chunk).min(rest.len());
        let now = start + Duration::from_millis(n * 100);
        let mut outputs = connection.receive(&rest[at..end], now, &mut host);
        if connection.waiting_for_video() {
            outputs.extend(connection.resume(now, &mut host));
        }
        for output in outputs {
            if let Output::Write(bytes) = output {
                assert!(bytes.starts_with(b"RTSP/1.0 "), "a response, whole");
                assert!(bytes.windows(4).any(|w| w == b"\r\n\r\n"));
            }
        }
        at = end;
        // What the client sends next names the session SETUP just made.
        let tail = with_session(&rest[at..], connection.session_id());
        rest.truncate(at);
        rest.extend_from_slice(&tail);
        connection.check_invariants();
        assert_eq!(
            host.playing,
            connection.playing(),
            "playing exactly while holding a place"
        );
        if connection.playing() {
            let mut cut = |f: &Frame| std::sync::Arc::new(Payloads::new(&f.data, 1400));
            let _ = connection.item(&frame(n, n % 5 == 0), &mut cut);
            let _ = connection.sender_report(std::time::SystemTime::now());
        }
        connection.poll_timeout(now, &mut host);
        connection.check_invariants();
        n += 1;
    }
    connection.closed(&mut host);
    assert!(
        !host.playing,
        "the place is given back when the connection closes"
    );
});
