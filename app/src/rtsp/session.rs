//! One RTSP connection, sans-IO: the client's bytes in, responses, RTP and RTCP
//! out. The I/O shell ([`super::server`]) owns the socket, the timers and the hub
//! viewer; this module decides everything the client sees.
//!
//! - One presentation, [`PATH`], with one track ([`sdp::TRACK`]).
//! - One session per connection: SETUP makes it (a second SETUP before PLAY
//!   changes its transport), PLAY takes a viewer place through [`Host::play`],
//!   TEARDOWN, a client's RTCP BYE or the connection's end gives it back.
//! - Transports: RTP and RTCP interleaved in the connection (`RTP/AVP/TCP`), or
//!   unicast UDP to the client ports at the connection's peer address
//!   (`RTP/AVP`, never to a `destination=` elsewhere: the server is not a packet
//!   cannon).
//! - Liveness: a connection without a session must send a request every session
//!   timeout; a UDP session must show a sign of life (a request on its
//!   connection, or RTCP) every session timeout; a TCP session that plays lives
//!   as long as its connection (the kernel's and the shell's write timers end a
//!   dead one).
//!
//! Invariants ([`Connection::check_invariants`]): at most one session; it plays
//! only while it holds a viewer place; RTP sequence numbers run on without a gap
//! and timestamps never go back, frame after frame, for as long as it lives.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Incoming, Method, ReadError, Reader, Request, Response};
use super::sdp::{self, Presentation};
use crate::h264::Nal;
use crate::hub::{Item, StreamInfo};
use crate::rtp::clock::{RtpClock, RATE_HZ};
use crate::rtp::packetizer::Packetizer;
use crate::rtp::rtcp::{self, SenderInfo};

/// The stream's path: `rtsp://HOST:PORT/stream`.
pub const PATH: &str = "/stream";
/// The methods served, for `Public` (OPTIONS, 405 and 501 answers).
pub const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// RTSP methods that exist but are not served here: answered 405, not 501.
const KNOWN_NOT_ALLOWED: &[&str] = &["PAUSE", "ANNOUNCE", "RECORD", "REDIRECT"];
/// `Server:` on every response.
const SERVER: &str = concat!("streamer/", env!("CARGO_PKG_VERSION"));

/// What the server offers every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long a session (or a connection without one) lives without a sign of
    /// its client.
    pub session_timeout: Duration,
    /// The server's RTP port for UDP clients (RTCP is the next one); `None`:
    /// UDP is not offered (SETUP asking only for it is answered 461).
    pub udp_rtp_port: Option<u16>,
    /// RTP payload bytes per packet.
    pub max_payload: usize,
}

/// The stream as a DESCRIBE describes it.
#[derive(Debug, Clone)]
pub struct Description {
    /// Codec, size, frame rate.
    pub stream: StreamInfo,
    /// The SPS.
    pub sps: Nal,
    /// The PPS.
    pub pps: Nal,
}

/// Why PLAY got no viewer place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// In words, for the response body and the log.
    pub reason: String,
}

/// What the session needs from outside: the stream and the hub's viewer places.
pub trait Host {
    /// The stream's description, once the source has sent its parameters.
    fn description(&self) -> Option<Description>;
    /// Takes a viewer place; the shell then feeds [`Connection::item`] with what
    /// the viewer receives.
    fn play(&mut self) -> Result<(), Refused>;
    /// Gives the viewer place back.
    fn stop(&mut self);
    /// 64 random bits (session ids, SSRCs, first sequence numbers and
    /// timestamps are unpredictable, RFC 3550 5.1).
    fn random(&mut self) -> u64;
}

/// Something to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Bytes for the connection: a response, or interleaved RTP/RTCP.
    Write(Bytes),
    /// An RTP packet from the server's RTP port to this address.
    Rtp(SocketAddr, Bytes),
    /// An RTCP packet from the server's RTCP port to this address.
    Rtcp(SocketAddr, Bytes),
}

/// How a session's packets travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// In the connection, `$`-framed on these channels.
    Interleaved {
        /// RTP's channel.
        rtp: u8,
        /// RTCP's channel.
        rtcp: u8,
    },
    /// UDP to these client ports.
    Udp {
        /// Where RTP goes.
        rtp: SocketAddr,
        /// Where RTCP goes (and comes from).
        rtcp: SocketAddr,
    },
}

/// One session.
#[derive(Debug)]
struct Session {
    id: String,
    transport: Transport,
    playing: bool,
    ssrc: u32,
    packetizer: Packetizer,
    clock: RtpClock,
    /// The first RTP timestamp (RTP-Info's `rtptime`).
    first_timestamp: u32,
    /// The last frame's timestamp and capture time (µs), for sender reports.
    last_frame: Option<(u64, u64)>,
    /// Frames of a joining viewer's backlog still to come.
    backlog_left: usize,
    packets: u32,
    octets: u32,
    /// The last sign of life from the client.
    last_seen: Instant,
}

/// Why a connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Its bytes could not be read (answered with the status, then closed).
    Unreadable(ReadError),
    /// No sign of life for the session timeout.
    TimedOut,
    /// The client said BYE in RTCP (its session was torn down; the connection is
    /// closed, as the client is leaving).
    Bye,
}

/// One client connection's state.
#[derive(Debug)]
pub struct Connection {
    settings: Settings,
    local: SocketAddr,
    peer: SocketAddr,
    reader: Reader,
    session: Option<Session>,
    /// The last request (a connection without a session must keep asking).
    last_request: Instant,
    end: Option<End>,
}

impl Connection {
    /// A connection from `peer` to the server's `local` address, opened `now`.
    pub fn new(settings: Settings, local: SocketAddr, peer: SocketAddr, now: Instant) -> Self {
        Connection {
            settings,
            local,
            peer,
            reader: Reader::new(),
            session: None,
            last_request: now,
            end: None,
        }
    }

    /// Why the connection is to be closed, once it is (after writing what the
    /// last call returned).
    pub fn end(&self) -> Option<&End> {
        self.end.as_ref()
    }

    /// Whether the session is playing (the shell reads the hub viewer only then).
    pub fn playing(&self) -> bool {
        self.session.as_ref().is_some_and(|s| s.playing)
    }

    /// The session's transport, once SETUP made one.
    pub fn transport(&self) -> Option<Transport> {
        self.session.as_ref().map(|s| s.transport)
    }

    /// The session's id, once SETUP made one.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.id.as_str())
    }

    /// Reads what the client sent and answers every whole request in it.
    pub fn receive(&mut self, bytes: &[u8], now: Instant, host: &mut dyn Host) -> Vec<Output> {
        let mut out = Vec::new();
        if self.end.is_some() {
            return out;
        }
        self.reader.push(bytes);
        while let Some(message) = self.reader.next_message() {
            match message {
                Ok(Incoming::Request(request)) => {
                    self.last_request = now;
                    let response = self.answer(&request, now, host);
                    out.push(Output::Write(Bytes::from(response.to_bytes())));
                }
                Ok(Incoming::Interleaved { channel, data }) => {
                    if let Some(Transport::Interleaved { rtcp, .. }) = self.transport() {
                        if channel == rtcp {
                            self.rtcp(&data, now, host);
                        }
                    }
                }
                Err(error) => {
                    let response = Response::new(error.status(), None)
                        .with("Server", SERVER)
                        .with("Content-Type", "text/plain; charset=utf-8");
                    let mut response = response;
                    response.body = format!("{error}\n").into_bytes();
                    out.push(Output::Write(Bytes::from(response.to_bytes())));
                    self.close(End::Unreadable(error), host);
                }
            }
            if self.end.is_some() {
                break;
            }
        }
        out
    }

    /// RTCP the client sent over UDP (routed here by its source address): a sign
    /// of life; a BYE ends the session.
    pub fn rtcp_datagram(&mut self, data: &[u8], now: Instant, host: &mut dyn Host) {
        self.rtcp(data, now, host);
    }

    fn rtcp(&mut self, data: &[u8], now: Instant, host: &mut dyn Host) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        session.last_seen = now;
        if rtcp::has_bye(data) {
            self.close(End::Bye, host);
        }
    }

    /// What a playing session's hub viewer received, as packets.
    pub fn item(&mut self, item: &Item) -> Vec<Output> {
        let mut out = Vec::new();
        let Some(session) = self.session.as_mut().filter(|s| s.playing) else {
            return out;
        };
        match item {
            Item::Join { frames } => session.backlog_left = *frames,
            Item::Frame(frame) => {
                let backlog = session.backlog_left > 0;
                session.backlog_left = session.backlog_left.saturating_sub(1);
                let timestamp = session.clock.stamp(frame.captured_us, backlog);
                session.last_frame = Some((timestamp, frame.captured_us));
                let packets =
                    session
                        .packetizer
                        .packetize(&frame.data, timestamp as u32, sdp::PAYLOAD_TYPE);
                for packet in &packets {
                    session.packets = session.packets.wrapping_add(1);
                    let payload = packet.len().saturating_sub(12);
                    session.octets = session.octets.wrapping_add(payload as u32);
                }
                match session.transport {
                    Transport::Interleaved { rtp, .. } => {
                        let total: usize = packets.iter().map(|p| 4 + p.len()).sum();
                        let mut buf = BytesMut::with_capacity(total);
                        for packet in &packets {
                            put_interleaved(&mut buf, rtp, packet);
                        }
                        out.push(Output::Write(buf.freeze()));
                    }
                    Transport::Udp { rtp, .. } => {
                        out.extend(packets.into_iter().map(|p| Output::Rtp(rtp, p)));
                    }
                }
            }
            Item::Stream(_) | Item::Source(_) | Item::Resync { .. } => {}
        }
        out
    }

    /// A sender report for a playing session that has sent a frame: the RTP
    /// timestamp of `wall` (now) on the session's clock, extrapolated from the
    /// last frame's capture time.
    pub fn sender_report(&self, wall: SystemTime) -> Option<Output> {
        let session = self.session.as_ref().filter(|s| s.playing)?;
        let (timestamp, captured_us) = session.last_frame?;
        let now_us = crate::hub::unix_micros(wall);
        let since = now_us.saturating_sub(captured_us);
        let rtp_timestamp = timestamp.wrapping_add(since.saturating_mul(RATE_HZ) / 1_000_000);
        let report = rtcp::sender_report(
            &SenderInfo {
                ssrc: session.ssrc,
                ntp: rtcp::ntp_timestamp(wall),
                rtp_timestamp: rtp_timestamp as u32,
                packets: session.packets,
                octets: session.octets,
            },
            "streamer",
        );
        Some(match session.transport {
            Transport::Interleaved { rtcp, .. } => {
                let mut buf = BytesMut::with_capacity(4 + report.len());
                put_interleaved(&mut buf, rtcp, &report);
                Output::Write(buf.freeze())
            }
            Transport::Udp { rtcp, .. } => Output::Rtcp(rtcp, report),
        })
    }

    /// When the connection times out unless the client shows a sign of life.
    pub fn deadline(&self) -> Option<Instant> {
        if self.end.is_some() {
            return None;
        }
        let timeout = self.settings.session_timeout;
        match &self.session {
            None => Some(self.last_request + timeout),
            Some(s) if s.playing && matches!(s.transport, Transport::Interleaved { .. }) => None,
            Some(s) => Some(s.last_seen.max(self.last_request) + timeout),
        }
    }

    /// Ends the connection if its deadline has passed.
    pub fn poll_timeout(&mut self, now: Instant, host: &mut dyn Host) {
        if self.deadline().is_some_and(|d| now >= d) {
            self.close(End::TimedOut, host);
        }
    }

    /// The connection is over (closed by either side): gives the viewer place
    /// back.
    pub fn closed(&mut self, host: &mut dyn Host) {
        if self.session.take().is_some_and(|s| s.playing) {
            host.stop();
        }
    }

    fn close(&mut self, end: End, host: &mut dyn Host) {
        self.closed(host);
        self.end = Some(end);
    }

    /// Checks what must always hold; panics with the broken invariant (tests and
    /// fuzzing).
    pub fn check_invariants(&self) {
        if let Some(session) = &self.session {
            assert!(!session.id.is_empty(), "a session has an id");
            if let Transport::Interleaved { rtp, rtcp } = session.transport {
                assert_ne!(rtp, rtcp, "RTP and RTCP have their own channels");
            }
        }
        if self.end.is_some() {
            assert!(self.session.is_none(), "an ended connection has no session");
        }
    }

    fn answer(&mut self, request: &Request, now: Instant, host: &mut dyn Host) -> Response {
        let cseq = request.cseq();
        let base = Response::new(200, cseq).with("Server", SERVER);
        if cseq.is_none() {
            return text(
                Response::new(400, None).with("Server", SERVER),
                "CSeq missing",
            );
        }
        // A request naming a session must name this connection's.
        let named = request.header("Session").map(session_id_of);
        if let Some(named) = named {
            if self.session_id() != Some(named) {
                return text(
                    Response::new(454, cseq).with("Server", SERVER),
                    "no such session on this connection",
                );
            }
            if let Some(session) = self.session.as_mut() {
                session.last_seen = now;
            }
        }
        match &request.method {
            Method::Options => base.with("Public", PUBLIC),
            Method::Describe => self.describe(request, base, host),
            Method::Setup => self.setup(request, base, now, host),
            Method::Play => self.play(request, base, host),
            Method::Teardown => {
                let response = self.with_session(base);
                self.closed(host);
                response
            }
            Method::GetParameter => self.with_session(base),
            Method::SetParameter if request.body.is_empty() => self.with_session(base),
            Method::SetParameter => text(
                Response::new(451, cseq).with("Server", SERVER),
                "no parameter can be set",
            ),
            Method::Pause => Response::new(405, cseq)
                .with("Server", SERVER)
                .with("Allow", PUBLIC)
                .with("Public", PUBLIC),
            Method::Other(name) => {
                let status = if KNOWN_NOT_ALLOWED.contains(&name.as_str()) {
                    405
                } else {
                    501
                };
                Response::new(status, cseq)
                    .with("Server", SERVER)
                    .with("Allow", PUBLIC)
                    .with("Public", PUBLIC)
            }
        }
    }

    fn with_session(&self, response: Response) -> Response {
        match &self.session {
            Some(session) => response.with("Session", session_header(session, &self.settings)),
            None => response,
        }
    }

    fn describe(&mut self, request: &Request, base: Response, host: &mut dyn Host) -> Response {
        let cseq = request.cseq();
        if target(&request.uri) != Some(Target::Presentation) {
            return not_found(cseq, &request.uri);
        }
        let Some(description) = host.description() else {
            return text(
                Response::new(503, cseq)
                    .with("Server", SERVER)
                    .with("Retry-After", "2"),
                "no video yet: the camera is starting",
            );
        };
        let session_id = u64::from_be_bytes(hash8(&description.sps, &description.pps));
        let sdp = sdp::describe(&Presentation {
            session_id,
            address: self.local.ip(),
            stream: &description.stream,
            sps: &description.sps.data()[..],
            pps: &description.pps.data()[..],
        });
        let Some(sdp) = sdp else {
            return text(
                Response::new(500, cseq).with("Server", SERVER),
                "the stream's codec cannot be described",
            );
        };
        let mut response = base
            .with("Content-Base", content_base(&request.uri))
            .with("Content-Type", "application/sdp");
        response.body = sdp.into_bytes();
        response
    }

    fn setup(
        &mut self,
        request: &Request,
        base: Response,
        now: Instant,
        host: &mut dyn Host,
    ) -> Response {
        let cseq = request.cseq();
        if !matches!(
            target(&request.uri),
            Some(Target::Track | Target::Presentation)
        ) {
            return not_found(cseq, &request.uri);
        }
        if self.playing() {
            return text(
                Response::new(455, cseq).with("Server", SERVER),
                "the session is playing; TEARDOWN first to change its transport",
            );
        }
        let Some(spec) = request.header("Transport") else {
            return text(
                Response::new(400, cseq).with("Server", SERVER),
                "Transport missing",
            );
        };
        let transport = match self.choose_transport(spec) {
            Ok(t) => t,
            Err(why) => {
                return text(
                    Response::new(461, cseq).with("Server", SERVER),
                    &format!("{why}; this server offers {}", self.offered()),
                )
            }
        };
        match self.session.as_mut() {
            Some(session) => {
                session.transport = transport;
                session.last_seen = now;
            }
            None => {
                let ids = host.random();
                let more = host.random();
                let ssrc = ids as u32;
                let first_seq = (ids >> 32) as u16;
                let first_timestamp = (ids >> 48) as u32 | ((more as u32) << 16);
                self.session = Some(Session {
                    id: format!("{:016X}", more ^ ids.rotate_left(17)),
                    transport,
                    playing: false,
                    ssrc,
                    packetizer: Packetizer::new(ssrc, first_seq, self.settings.max_payload),
                    clock: RtpClock::new(first_timestamp),
                    first_timestamp,
                    last_frame: None,
                    backlog_left: 0,
                    packets: 0,
                    octets: 0,
                    last_seen: now,
                });
            }
        }
        let Some(session) = self.session.as_ref() else {
            return Response::new(500, cseq);
        };
        let transport = match transport {
            Transport::Interleaved { rtp, rtcp } => format!(
                "RTP/AVP/TCP;unicast;interleaved={rtp}-{rtcp};ssrc={:08X}",
                session.ssrc
            ),
            Transport::Udp { rtp, rtcp } => {
                let server = self.settings.udp_rtp_port.unwrap_or(0);
                format!(
                    "RTP/AVP;unicast;client_port={}-{};server_port={server}-{};ssrc={:08X}",
                    rtp.port(),
                    rtcp.port(),
                    server.wrapping_add(1),
                    session.ssrc
                )
            }
        };
        base.with("Transport", transport)
            .with("Session", session_header(session, &self.settings))
    }

    fn offered(&self) -> &'static str {
        match self.settings.udp_rtp_port {
            Some(_) => "RTP/AVP/TCP (interleaved) and RTP/AVP (unicast UDP)",
            None => "RTP/AVP/TCP (interleaved) only",
        }
    }

    /// The first transport in `spec` (alternatives separated by commas) this
    /// server offers.
    fn choose_transport(&self, spec: &str) -> Result<Transport, String> {
        let mut why = String::from("no transport asked for");
        for alternative in spec.split(',') {
            match self.transport_of(alternative.trim()) {
                Ok(t) => return Ok(t),
                Err(e) => why = e,
            }
        }
        Err(why)
    }

    fn transport_of(&self, spec: &str) -> Result<Transport, String> {
        let mut parts = spec.split(';').map(str::trim);
        let profile = parts.next().unwrap_or("");
        let params: Vec<&str> = parts.collect();
        if params.iter().any(|p| p.eq_ignore_ascii_case("multicast")) {
            return Err("multicast is not offered".into());
        }
        if params.iter().any(|p| {
            p.to_ascii_lowercase().starts_with("mode=") && !p.to_ascii_lowercase().contains("play")
        }) {
            return Err("only mode=PLAY is offered".into());
        }
        let value = |name: &str| {
            params.iter().find_map(|p| {
                let (n, v) = p.split_once('=')?;
                n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
            })
        };
        match profile.to_ascii_uppercase().as_str() {
            "RTP/AVP/TCP" => {
                let (rtp, rtcp) = match value("interleaved") {
                    None => (0, 1),
                    Some(v) => pair::<u8>(v)
                        .ok_or_else(|| format!("interleaved={v} is not a channel pair"))?,
                };
                if rtp == rtcp {
                    return Err(format!("interleaved={rtp}-{rtcp} gives RTCP no channel"));
                }
                Ok(Transport::Interleaved { rtp, rtcp })
            }
            "RTP/AVP" | "RTP/AVP/UDP" => {
                if self.settings.udp_rtp_port.is_none() {
                    return Err("UDP is not offered".into());
                }
                let Some(v) = value("client_port") else {
                    return Err("RTP/AVP over UDP needs client_port".into());
                };
                let (rtp, rtcp) =
                    pair::<u16>(v).ok_or_else(|| format!("client_port={v} is not a port pair"))?;
                if rtp == 0 || rtcp == 0 {
                    return Err(format!("client_port={v} is not a port pair"));
                }
                let ip: IpAddr = self.peer.ip();
                Ok(Transport::Udp {
                    rtp: SocketAddr::new(ip, rtp),
                    rtcp: SocketAddr::new(ip, rtcp),
                })
            }
            other => Err(format!("{other:?} is not offered")),
        }
    }

    fn play(&mut self, request: &Request, base: Response, host: &mut dyn Host) -> Response {
        let cseq = request.cseq();
        if !matches!(
            target(&request.uri),
            Some(Target::Track | Target::Presentation)
        ) {
            return not_found(cseq, &request.uri);
        }
        if request.header("Session").is_none() || self.session.is_none() {
            return text(
                Response::new(455, cseq).with("Server", SERVER),
                "SETUP first: PLAY needs the session SETUP answered with",
            );
        }
        if !self.playing() {
            if let Err(refused) = host.play() {
                return text(
                    Response::new(503, cseq)
                        .with("Server", SERVER)
                        .with("Retry-After", "5"),
                    &refused.reason,
                );
            }
        }
        let Some(session) = self.session.as_mut() else {
            return Response::new(500, cseq);
        };
        session.playing = true;
        let track = track_url(&request.uri);
        let info = format!(
            "url={track};seq={};rtptime={}",
            session.packetizer.next_seq(),
            session.first_timestamp
        );
        let header = session_header(session, &self.settings);
        base.with("Range", "npt=now-")
            .with("RTP-Info", info)
            .with("Session", header)
    }
}

fn put_interleaved(buf: &mut BytesMut, channel: u8, packet: &[u8]) {
    buf.put_u8(b'$');
    buf.put_u8(channel);
    buf.put_u16(packet.len().min(usize::from(u16::MAX)) as u16);
    buf.put_slice(packet);
}

fn session_header(session: &Session, settings: &Settings) -> String {
    format!(
        "{};timeout={}",
        session.id,
        settings.session_timeout.as_secs()
    )
}

/// The id in a `Session` header (`ID;timeout=60`).
fn session_id_of(header: &str) -> &str {
    header.split(';').next().unwrap_or("").trim()
}

fn text(mut response: Response, message: &str) -> Response {
    response = response.with("Content-Type", "text/plain; charset=utf-8");
    response.body = format!("{message}\n").into_bytes();
    response
}

fn not_found(cseq: Option<&str>, uri: &str) -> Response {
    let shown: String = uri.chars().take(80).collect();
    text(
        Response::new(404, cseq).with("Server", SERVER),
        &format!("{shown:?} is not a stream here; the stream is at {PATH}"),
    )
}

/// What a request URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `/stream` (or `/stream/`): the presentation.
    Presentation,
    /// `/stream/trackID=0`: its one track.
    Track,
}

/// The path of a request URI: `rtsp://host[:port]/path?query` or `/path`.
fn path_of(uri: &str) -> &str {
    let rest = match uri.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        },
        None => uri,
    };
    rest.split(['?', '#']).next().unwrap_or(rest)
}

fn target(uri: &str) -> Option<Target> {
    let path = path_of(uri);
    let rest = path.strip_prefix(PATH)?;
    match rest {
        "" | "/" => Some(Target::Presentation),
        _ if rest.strip_prefix('/') == Some(sdp::TRACK) => Some(Target::Track),
        _ => None,
    }
}

/// `Content-Base`: the presentation URI as the client wrote it, with a final `/`,
/// so that the track's relative control URL resolves under it.
fn content_base(uri: &str) -> String {
    let uri = uri.split(['?', '#']).next().unwrap_or(uri);
    if uri.ends_with('/') {
        uri.to_string()
    } else {
        format!("{uri}/")
    }
}

/// The track's URL for RTP-Info, from the URI PLAY named.
fn track_url(uri: &str) -> String {
    if target(uri) == Some(Target::Track) {
        uri.to_string()
    } else {
        format!("{}{}", content_base(uri), sdp::TRACK)
    }
}

/// `A-B` as two numbers; `A` alone as `A` and `A+1`.
fn pair<T: std::str::FromStr + Copy + TryFrom<u32> + Into<u32>>(text: &str) -> Option<(T, T)> {
    match text.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let a: T = text.trim().parse().ok()?;
            let b = T::try_from(a.into().checked_add(1)?).ok()?;
            Some((a, b))
        }
    }
}

/// A stable 8-byte digest of the parameter sets (the SDP's origin session id:
/// it changes when the stream's parameters do). FNV-1a, not cryptographic.
fn hash8(sps: &Nal, pps: &Nal) -> [u8; 8] {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sps.data().iter().chain(pps.data().iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 1).to_be_bytes()
}
