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
//! - Access: when the server has a password ([`Access::locked`]), every request
//!   but OPTIONS needs it, Digest (RFC 2617, with this connection's nonce) or
//!   Basic, else `401` with both challenges; too many wrong passwords from the
//!   peer's address are `503` with `Retry-After` (RTSP 1.0 has no 429). The
//!   password authorizes the connection: later requests are not checked again.
//! - A DESCRIBE before the stream's parameters are known is held
//!   ([`Connection::waiting_for_video`]) while the shell starts the camera, then
//!   answered ([`Connection::resume`]): only an authorized client starts it.
//!
//! Invariants ([`Connection::check_invariants`]): at most one session, and only
//! on an authorized connection; it plays only while it holds a viewer place; RTP
//! sequence numbers run on without a gap and timestamps never go back, frame
//! after frame, for as long as it lives.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{BufMut, Bytes, BytesMut};

use super::message::{Incoming, Method, ReadError, Reader, Request, Response};
use super::sdp::{self, Presentation};
use crate::access::{credentials, Access, Attempt};
use crate::h264::Nal;
use crate::hub::{Frame, Item, StreamInfo};
use crate::rtp::clock::{RtpClock, RATE_HZ};
use crate::rtp::packetizer::{Packetizer, Payloads};
use crate::rtp::rtcp::{self, SenderInfo};

/// The stream's path: `rtsp://HOST:PORT/stream`.
pub const PATH: &str = "/stream";
/// The methods served, for `Public` (OPTIONS, 405 and 501 answers).
pub const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER, SET_PARAMETER";
/// RTSP methods that exist but are not served here: answered 405, not 501.
const KNOWN_NOT_ALLOWED: &[&str] = &["PAUSE", "ANNOUNCE", "RECORD", "REDIRECT"];
/// A new connection must complete its first request within this time (HTTP's
/// header timer, with room for a slow link): idle connections do not hold places.
pub const FIRST_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
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
    access: Arc<Access>,
    /// The server is open, or this connection presented the password.
    authorized: bool,
    /// How it presented it: `Digest` or `Basic`.
    scheme: Option<&'static str>,
    /// This connection's Digest nonce, made at its first challenge.
    nonce: Option<String>,
    /// A DESCRIBE waiting for the stream's parameters.
    held: Option<Request>,
    /// Whether a DESCRIBE was held once already (it is held at most once).
    waited: bool,
    local: SocketAddr,
    peer: SocketAddr,
    reader: Reader,
    session: Option<Session>,
    /// The last request (a connection without a session must keep asking), or
    /// when the connection opened.
    last_request: Instant,
    /// Whether a whole request has come yet.
    asked: bool,
    end: Option<End>,
}

impl Connection {
    /// A connection from `peer` to the server's `local` address, opened `now`,
    /// under `access`.
    pub fn new(
        settings: Settings,
        access: Arc<Access>,
        local: SocketAddr,
        peer: SocketAddr,
        now: Instant,
    ) -> Self {
        Connection {
            settings,
            authorized: !access.locked(),
            scheme: None,
            access,
            nonce: None,
            held: None,
            waited: false,
            local,
            peer,
            reader: Reader::new(),
            session: None,
            last_request: now,
            asked: false,
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

    /// Whether the connection may do more than OPTIONS: the server has no
    /// password, or the client presented it.
    pub fn authorized(&self) -> bool {
        self.authorized
    }

    /// How the connection presented the password (`Digest` or `Basic`), once it
    /// did (for the log).
    pub fn authorized_with(&self) -> Option<&'static str> {
        self.scheme
    }

    /// Whether a DESCRIBE is held until the stream's parameters are known: the
    /// shell waits for them (starting an on-demand camera), then calls
    /// [`Connection::resume`].
    pub fn waiting_for_video(&self) -> bool {
        self.held.is_some()
    }

    /// Answers the held DESCRIBE (with the stream's description, or `503` if
    /// there still is none) and what the client sent after it.
    pub fn resume(&mut self, now: Instant, host: &mut dyn Host) -> Vec<Output> {
        let Some(request) = self.held.take() else {
            return Vec::new();
        };
        let response = self.answer(&request, now, host);
        let mut out = vec![Output::Write(Bytes::from(response.to_bytes()))];
        out.extend(self.receive(&[], now, host));
        out
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
        if self.held.is_some() {
            // Answered in order, after the held DESCRIBE.
            return out;
        }
        while let Some(message) = self.reader.next_message() {
            match message {
                Ok(Incoming::Request(request)) => {
                    self.last_request = now;
                    self.asked = true;
                    let response = match self.gate(&request, now, host) {
                        Some(refusal) => refusal,
                        None if self.needs_video(&request, host) => {
                            self.waited = true;
                            self.held = Some(request);
                            break;
                        }
                        None => self.answer(&request, now, host),
                    };
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

    /// Something else came from the session's client (a datagram to the RTP
    /// port): a sign of life.
    pub fn sign_of_life(&mut self, now: Instant) {
        if let Some(session) = self.session.as_mut() {
            session.last_seen = now;
        }
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

    /// What a playing session's hub viewer received, as packets. `cut` gives a
    /// frame's RTP payloads ([`Payloads::new`] with [`Settings::max_payload`]):
    /// the shell shares them between the clients, which add only their headers.
    pub fn item(
        &mut self,
        item: &Item,
        cut: &mut dyn FnMut(&Frame) -> Arc<Payloads>,
    ) -> Vec<Output> {
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
                // Backlog frames but the last are stamped apart from their
                // capture times: sender reports map from the last and live ones.
                if session.backlog_left == 0 {
                    session.last_frame = Some((timestamp, frame.captured_us));
                }
                let payloads = cut(frame);
                session.packets = session.packets.wrapping_add(payloads.len() as u32);
                session.octets = session.octets.wrapping_add(payloads.payload_bytes() as u32);
                match session.transport {
                    Transport::Interleaved { rtp, .. } => {
                        let mut buf = BytesMut::new();
                        session.packetizer.write_interleaved(
                            &payloads,
                            timestamp as u32,
                            sdp::PAYLOAD_TYPE,
                            rtp,
                            &mut buf,
                        );
                        out.push(Output::Write(buf.freeze()));
                    }
                    Transport::Udp { rtp, .. } => {
                        let packets = session.packetizer.packets(
                            &payloads,
                            timestamp as u32,
                            sdp::PAYLOAD_TYPE,
                        );
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
            None if !self.asked => Some(self.last_request + FIRST_REQUEST_TIMEOUT.min(timeout)),
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
        if self.session.is_some() {
            assert!(
                self.authorized,
                "a session only on an authorized connection"
            );
        }
        if self.held.is_some() {
            assert!(self.authorized, "only an authorized DESCRIBE is held");
            assert!(self.end.is_none(), "an ended connection holds nothing");
        }
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

    /// The answer to a request that may not be served: without a `CSeq`, or,
    /// when the server has a password, not OPTIONS and without it.
    fn gate(&mut self, request: &Request, now: Instant, host: &mut dyn Host) -> Option<Response> {
        let Some(cseq) = request.cseq() else {
            return Some(text(
                Response::new(400, None).with("Server", SERVER),
                "CSeq missing",
            ));
        };
        if self.authorized || request.method == Method::Options {
            return None;
        }
        let client = self.peer.ip();
        let presented = request.header("Authorization");
        let attempt = if let Some(basic) = presented.and_then(credentials::basic) {
            let attempt = self
                .access
                .attempt(client, &basic.user, &basic.password, now);
            Some(("Basic", attempt))
        } else if let Some(digest) = presented.and_then(credentials::digest) {
            // Checked with this request's method and the `uri` the client hashed,
            // as it wrote it (clients differ in the form they hash); the nonce is
            // this connection's, so a response cannot be replayed from another.
            let nonce = self.nonce(host).to_owned();
            let attempt =
                self.access
                    .attempt_digest(client, request.method.as_str(), &digest, &nonce, now);
            Some(("Digest", attempt))
        } else {
            // No credentials (or none that can be read): not a guess, not counted.
            None
        };
        match attempt {
            Some((scheme, Attempt::Granted)) => {
                self.authorized = true;
                self.scheme = Some(scheme);
                None
            }
            Some((_, Attempt::Braked(retry_after))) => {
                let seconds = retry_after.as_secs().max(1);
                Some(text(
                    Response::new(503, Some(cseq))
                        .with("Server", SERVER)
                        .with("Retry-After", seconds.to_string()),
                    &format!(
                        "too many wrong passwords from this address: try again in {seconds} s"
                    ),
                ))
            }
            Some((_, Attempt::Denied)) | None => {
                let nonce = self.nonce(host).to_owned();
                let mut response = Response::new(401, Some(cseq)).with("Server", SERVER);
                for challenge in self.access.challenges(Some(&nonce)) {
                    response = response.with("WWW-Authenticate", challenge);
                }
                Some(text(
                    response,
                    "this camera needs its user name and password (rtsp://USER:PASSWORD@HOST:PORT/stream)",
                ))
            }
        }
    }

    /// This connection's Digest nonce, made at first use from the host's
    /// randomness.
    fn nonce(&mut self, host: &mut dyn Host) -> &str {
        if self.nonce.is_none() {
            let mut random = [0u8; 16];
            random[..8].copy_from_slice(&host.random().to_be_bytes());
            random[8..].copy_from_slice(&host.random().to_be_bytes());
            self.nonce = Some(self.access.digest_nonce(random));
        }
        self.nonce.as_deref().unwrap_or_default()
    }

    /// Whether `request` is the first DESCRIBE of the presentation before the
    /// stream's parameters are known (it is then held once while the shell
    /// waits for them).
    fn needs_video(&self, request: &Request, host: &dyn Host) -> bool {
        !self.waited
            && request.method == Method::Describe
            && target(&request.uri) == Some(Target::Presentation)
            && host.description().is_none()
    }

    fn answer(&mut self, request: &Request, now: Instant, host: &mut dyn Host) -> Response {
        let cseq = request.cseq();
        let base = Response::new(200, cseq).with("Server", SERVER);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::testing::{nal, unhex, PPS, SPS};
    use proptest::prelude::*;

    const TIMEOUT: Duration = Duration::from_secs(60);

    struct FakeHost {
        video: bool,
        refuse: bool,
        playing: bool,
        plays: usize,
        stops: usize,
        next: u64,
    }

    impl FakeHost {
        fn new() -> Self {
            FakeHost {
                video: true,
                refuse: false,
                playing: false,
                plays: 0,
                stops: 0,
                next: 0x0123_4567_89ab_cdef,
            }
        }
    }

    impl Host for FakeHost {
        fn description(&self) -> Option<Description> {
            self.video.then(|| Description {
                stream: StreamInfo {
                    codec: "avc1.42c00a".into(),
                    width: 176,
                    height: 144,
                    fps: Some(30.0),
                },
                sps: nal(&unhex(SPS)),
                pps: nal(&unhex(PPS)),
            })
        }

        fn play(&mut self) -> Result<(), Refused> {
            if self.refuse {
                return Err(Refused {
                    reason: "too many viewers (2 already watching)".into(),
                });
            }
            assert!(!self.playing, "play twice without stop");
            self.playing = true;
            self.plays += 1;
            Ok(())
        }

        fn stop(&mut self) {
            assert!(self.playing, "stop without play");
            self.playing = false;
            self.stops += 1;
        }

        fn random(&mut self) -> u64 {
            self.next = self
                .next
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            self.next
        }
    }

    fn cut(frame: &Frame) -> Arc<Payloads> {
        Arc::new(Payloads::new(&frame.data, 1400))
    }

    fn connection(now: Instant) -> Connection {
        connection_with(now, Arc::new(Access::open()))
    }

    fn connection_with(now: Instant, access: Arc<Access>) -> Connection {
        Connection::new(
            Settings {
                session_timeout: TIMEOUT,
                udp_rtp_port: Some(6970),
                max_payload: 1400,
            },
            access,
            "127.0.0.1:8554".parse().unwrap(),
            "127.0.0.1:40000".parse().unwrap(),
            now,
        )
    }

    /// The responses (text) among `outputs`.
    fn responses(outputs: &[Output]) -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Write(b) if b.starts_with(b"RTSP/1.0") => {
                    Some(String::from_utf8_lossy(b).into_owned())
                }
                _ => None,
            })
            .collect()
    }

    fn ask(c: &mut Connection, host: &mut FakeHost, request: &str, now: Instant) -> String {
        let out = c.receive(request.as_bytes(), now, host);
        c.check_invariants();
        let mut texts = responses(&out);
        assert_eq!(texts.len(), 1, "one response to {request:?}: {texts:?}");
        texts.remove(0)
    }

    fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
        response.split("\r\n").find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn status(response: &str) -> u16 {
        response[9..12].parse().unwrap()
    }

    const URL: &str = "rtsp://127.0.0.1:8554/stream";

    /// SETUP over TCP and PLAY; the session id.
    fn play_tcp(c: &mut Connection, host: &mut FakeHost, now: Instant) -> String {
        let setup = ask(
            c,
            host,
            &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
            now,
        );
        assert_eq!(status(&setup), 200, "{setup}");
        let id = session_id_of(header(&setup, "Session").unwrap()).to_string();
        let play = ask(
            c,
            host,
            &format!("PLAY {URL}/ RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\n\r\n"),
            now,
        );
        assert_eq!(status(&play), 200, "{play}");
        id
    }

    fn frame(seq: u64, keyframe: bool, captured_us: u64, size: usize) -> Item {
        let mut data = Vec::new();
        if keyframe {
            for n in [unhex(SPS), unhex(PPS)] {
                data.extend_from_slice(&[0, 0, 0, 1]);
                data.extend_from_slice(&n);
            }
        }
        data.extend_from_slice(&[0, 0, 0, 1, if keyframe { 0x65 } else { 0x41 }]);
        data.extend((0..size).map(|i| (i % 251) as u8 | 1));
        Item::Frame(crate::hub::Frame {
            seq,
            data: Bytes::from(data),
            keyframe,
            captured_us,
            published_us: captured_us,
        })
    }

    /// The RTP packets in interleaved writes on `channel`.
    fn interleaved_packets(outputs: &[Output], channel: u8) -> Vec<Vec<u8>> {
        let mut packets = Vec::new();
        for output in outputs {
            if let Output::Write(bytes) = output {
                let mut rest = &bytes[..];
                while rest.first() == Some(&b'$') {
                    let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
                    if rest[1] == channel {
                        packets.push(rest[4..4 + len].to_vec());
                    }
                    rest = &rest[4 + len..];
                }
                assert!(rest.is_empty() || rest.starts_with(b"RTSP/1.0"));
            }
        }
        packets
    }

    #[test]
    fn options_lists_the_methods_and_echoes_cseq() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        let r = ask(
            &mut c,
            &mut host,
            "OPTIONS * RTSP/1.0\r\nCSeq: 17\r\n\r\n",
            now,
        );
        assert_eq!(status(&r), 200);
        assert_eq!(header(&r, "CSeq"), Some("17"));
        assert_eq!(header(&r, "Public"), Some(PUBLIC));
    }

    #[test]
    fn describe_answers_the_sdp_with_a_content_base_or_503_before_video() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        host.video = false;
        // The first DESCRIBE before video is held while the shell waits for it;
        // what follows is answered after it, in order.
        let out = c.receive(
            format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes(),
            now,
            &mut host,
        );
        assert!(out.is_empty() && c.waiting_for_video(), "{out:?}");
        c.check_invariants();
        let out = c.receive(b"OPTIONS * RTSP/1.0\r\nCSeq: 2\r\n\r\n", now, &mut host);
        assert!(out.is_empty(), "{out:?}");
        let texts = responses(&c.resume(now, &mut host));
        let seen: Vec<(u16, &str)> = texts
            .iter()
            .map(|t| (status(t), header(t, "CSeq").unwrap()))
            .collect();
        assert_eq!(seen, [(503, "1"), (200, "2")], "{texts:?}");
        assert!(header(&texts[0], "Retry-After").is_some());
        assert!(!c.waiting_for_video());
        // Held once per connection: then 503 at once.
        let r = ask(
            &mut c,
            &mut host,
            &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 2\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 503, "{r}");
        assert!(header(&r, "Retry-After").is_some());
        host.video = true;
        let r = ask(
            &mut c,
            &mut host,
            &format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: 3\r\nAccept: application/sdp\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(header(&r, "Content-Base"), Some(&*format!("{URL}/")));
        assert_eq!(header(&r, "Content-Type"), Some("application/sdp"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            header(&r, "Content-Length")
                .unwrap()
                .parse::<usize>()
                .unwrap(),
            body.len()
        );
        assert!(body.contains("sprop-parameter-sets="), "{body}");
        assert!(body.contains("a=control:trackID=0"), "{body}");
        let r = ask(
            &mut c,
            &mut host,
            "DESCRIBE rtsp://127.0.0.1:8554/other RTSP/1.0\r\nCSeq: 4\r\n\r\n",
            now,
        );
        assert_eq!(status(&r), 404, "{r}");
    }

    #[test]
    fn setup_over_tcp_and_udp_says_the_transport_and_the_session() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        let r = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=2-3\r\n\r\n"), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(
            header(&r, "Transport")
                .unwrap()
                .starts_with("RTP/AVP/TCP;unicast;interleaved=2-3;ssrc="),
            "{r}"
        );
        let session = header(&r, "Session").unwrap().to_string();
        assert!(session.ends_with(";timeout=60"), "{session}");
        assert_eq!(
            c.transport(),
            Some(Transport::Interleaved { rtp: 2, rtcp: 3 })
        );
        // The same session changes to UDP before PLAY; a destination elsewhere is
        // not where packets go.
        let id = session_id_of(&session).to_string();
        let r = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\nTransport: RTP/AVP;unicast;destination=192.0.2.9;client_port=5000-5001\r\n\r\n"), now);
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(
            header(&r, "Transport").unwrap().split(";ssrc=").next(),
            Some("RTP/AVP;unicast;client_port=5000-5001;server_port=6970-6971")
        );
        assert_eq!(
            c.transport(),
            Some(Transport::Udp {
                rtp: "127.0.0.1:5000".parse().unwrap(),
                rtcp: "127.0.0.1:5001".parse().unwrap()
            })
        );
        assert_eq!(c.session_id(), Some(id.as_str()));
    }

    #[test]
    fn unsupported_transports_are_461_naming_what_is_offered() {
        let now = Instant::now();
        let mut c = Connection::new(
            Settings {
                session_timeout: TIMEOUT,
                udp_rtp_port: None,
                max_payload: 1400,
            },
            Arc::new(Access::open()),
            "127.0.0.1:8554".parse().unwrap(),
            "127.0.0.1:40000".parse().unwrap(),
            now,
        );
        let mut host = FakeHost::new();
        for transport in [
            "RTP/AVP;unicast;client_port=5000-5001",
            "RTP/AVP;multicast",
            "RTP/AVP/TCP;interleaved=4-4",
            "RAW/RAW/UDP;unicast",
        ] {
            let r = ask(
                &mut c,
                &mut host,
                &format!(
                    "SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: {transport}\r\n\r\n"
                ),
                now,
            );
            assert_eq!(status(&r), 461, "{transport}: {r}");
            assert!(r.contains("RTP/AVP/TCP (interleaved) only"), "{r}");
        }
        // Of alternatives, the first offered is taken.
        let r = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001,RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(c.session_id().is_some());
    }

    #[test]
    fn play_takes_a_viewer_place_and_rtp_info_names_the_first_packet() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        let r = ask(
            &mut c,
            &mut host,
            &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 1\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 455, "PLAY before SETUP: {r}");
        assert_eq!(host.plays, 0);
        let setup = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"), now);
        let id = session_id_of(header(&setup, "Session").unwrap()).to_string();
        let r = ask(
            &mut c,
            &mut host,
            &format!(
                "PLAY {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\nRange: npt=0.000-\r\n\r\n"
            ),
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(host.plays, 1);
        assert!(c.playing());
        let info = header(&r, "RTP-Info").unwrap().to_string();
        assert!(
            info.starts_with(&format!("url={URL}/trackID=0;seq=")),
            "{info}"
        );
        let out = c.item(&frame(0, true, 1_000_000, 3000), &mut cut);
        let packets = interleaved_packets(&out, 0);
        let seq = u16::from_be_bytes([packets[0][2], packets[0][3]]);
        let ts = u32::from_be_bytes(packets[0][4..8].try_into().unwrap());
        assert_eq!(info, format!("url={URL}/trackID=0;seq={seq};rtptime={ts}"));
        // SPS and PPS in band before the IDR slice; the marker on the last packet.
        assert_eq!(packets[0][12] & 0x1f, 7);
        assert_eq!(packets[1][12] & 0x1f, 8);
        assert!(packets.last().unwrap()[1] & 0x80 != 0);
        assert!(packets[..packets.len() - 1]
            .iter()
            .all(|p| p[1] & 0x80 == 0));
        // PLAY again: still one place.
        let r = ask(
            &mut c,
            &mut host,
            &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!(host.plays, 1);
        // SETUP while playing would change the transport under the client.
        let r = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 5\r\nSession: {id}\r\nTransport: RTP/AVP/TCP;interleaved=2-3\r\n\r\n"), now);
        assert_eq!(status(&r), 455, "{r}");
        let r = ask(
            &mut c,
            &mut host,
            &format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 6\r\nSession: {id}\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        assert_eq!((host.plays, host.stops), (1, 1));
        assert!(!c.playing());
        assert!(c
            .item(&frame(1, false, 1_033_000, 100), &mut cut)
            .is_empty());
    }

    #[test]
    fn a_full_hub_is_503_and_the_session_can_try_again() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        host.refuse = true;
        let setup = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"), now);
        let id = session_id_of(header(&setup, "Session").unwrap()).to_string();
        let r = ask(
            &mut c,
            &mut host,
            &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: {id}\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 503, "{r}");
        assert!(r.contains("too many viewers"), "{r}");
        assert!(!c.playing());
        host.refuse = false;
        let r = ask(
            &mut c,
            &mut host,
            &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 4\r\nSession: {id}\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        c.closed(&mut host);
        assert_eq!((host.plays, host.stops), (1, 1));
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_and_others_sessions_are_454() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        let out = c.receive(
            format!(
                "OPTIONS {URL} RTSP/1.0\r\nCSeq: 1\r\n\r\nDESCRIBE {URL} RTSP/1.0\r\nCSeq: 2\r\n\r\n\
                 GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 3\r\nSession: 0000000000000001\r\n\r\n\
                 SET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 4\r\n\r\n"
            )
            .as_bytes(),
            now,
            &mut host,
        );
        let texts = responses(&out);
        let seen: Vec<(u16, &str)> = texts
            .iter()
            .map(|t| (status(t), header(t, "CSeq").unwrap()))
            .collect();
        assert_eq!(seen, [(200, "1"), (200, "2"), (454, "3"), (200, "4")]);
    }

    #[test]
    fn methods_not_served_are_405_or_501_with_public() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        for (method, expected) in [
            ("PAUSE", 405),
            ("RECORD", 405),
            ("ANNOUNCE", 405),
            ("FLY", 501),
        ] {
            let r = ask(
                &mut c,
                &mut host,
                &format!("{method} {URL} RTSP/1.0\r\nCSeq: 9\r\n\r\n"),
                now,
            );
            assert_eq!(status(&r), expected, "{method}: {r}");
            assert_eq!(header(&r, "Public"), Some(PUBLIC));
        }
        let r = ask(
            &mut c,
            &mut host,
            &format!("OPTIONS {URL} RTSP/1.0\r\n\r\n"),
            now,
        );
        assert_eq!(status(&r), 400, "no CSeq: {r}");
        let r = ask(
            &mut c,
            &mut host,
            &format!(
                "SET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9\r\n\r\nbrightness"
            ),
            now,
        );
        assert_eq!(status(&r), 451, "{r}");
    }

    #[test]
    fn unreadable_bytes_are_answered_and_end_the_connection_and_its_session() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        play_tcp(&mut c, &mut host, now);
        let out = c.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", now, &mut host);
        let texts = responses(&out);
        assert_eq!(texts.len(), 1);
        assert_eq!(status(&texts[0]), 400, "{}", texts[0]);
        assert!(matches!(c.end(), Some(End::Unreadable(_))));
        assert_eq!(host.stops, 1);
        assert!(c
            .receive(b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n", now, &mut host)
            .is_empty());
        c.check_invariants();
    }

    #[test]
    fn liveness_a_bare_connection_and_a_udp_session_need_signs_of_life_tcp_play_does_not() {
        let start = Instant::now();
        let (mut c, mut host) = (connection(start), FakeHost::new());
        assert_eq!(c.deadline(), Some(start + FIRST_REQUEST_TIMEOUT));
        c.receive(b"OPTIONS * RTSP/1.0\r\nCSe", start, &mut host);
        c.poll_timeout(start + FIRST_REQUEST_TIMEOUT, &mut host);
        assert_eq!(c.end(), Some(&End::TimedOut), "half a request is not one");

        let (mut c, mut host) = (connection(start), FakeHost::new());
        ask(
            &mut c,
            &mut host,
            "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            start,
        );
        assert_eq!(c.deadline(), Some(start + TIMEOUT));
        let later = start + Duration::from_secs(30);
        ask(
            &mut c,
            &mut host,
            "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            later,
        );
        assert_eq!(c.deadline(), Some(later + TIMEOUT));
        play_tcp(&mut c, &mut host, later);
        assert_eq!(
            c.deadline(),
            None,
            "a TCP session lives with its connection"
        );

        let (mut c, mut host) = (connection(start), FakeHost::new());
        let setup = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"), start);
        let id = session_id_of(header(&setup, "Session").unwrap()).to_string();
        ask(
            &mut c,
            &mut host,
            &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"),
            start,
        );
        // A receiver report is a sign of life.
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
        c.rtcp_datagram(&rr, later, &mut host);
        c.poll_timeout(later + TIMEOUT - Duration::from_millis(1), &mut host);
        assert!(c.end().is_none() && c.playing());
        c.poll_timeout(later + TIMEOUT, &mut host);
        assert_eq!(c.end(), Some(&End::TimedOut));
        assert_eq!(host.stops, 1);
        c.check_invariants();
    }

    const PASSWORD: &str = "correct horse";

    fn locked(password: &str) -> Arc<Access> {
        Arc::new(Access::with_key("streamer", password, [3; 32]).unwrap())
    }

    fn connection_from(now: Instant, access: Arc<Access>, peer: &str) -> Connection {
        Connection::new(
            Settings {
                session_timeout: TIMEOUT,
                udp_rtp_port: Some(6970),
                max_payload: 1400,
            },
            access,
            "127.0.0.1:8554".parse().unwrap(),
            peer.parse().unwrap(),
            now,
        )
    }

    /// Every `WWW-Authenticate` value of a response.
    fn challenges(response: &str) -> Vec<&str> {
        response
            .split("\r\n")
            .filter_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.eq_ignore_ascii_case("WWW-Authenticate")
                    .then_some(v.trim())
            })
            .collect()
    }

    /// A quoted parameter of a challenge.
    fn param<'a>(challenge: &'a str, name: &str) -> &'a str {
        let start = challenge.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        let len = challenge[start..].find('"').unwrap();
        &challenge[start..start + len]
    }

    fn md5_hex(text: &str) -> String {
        use md5::{Digest as _, Md5};
        Md5::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// An RFC 2617 Digest `Authorization` (RFC 2069's form, without qop, as the
    /// challenge offers no qop), computed here independently of `access::digest`.
    fn digest_authorization(password: &str, nonce: &str, method: &str, uri: &str) -> String {
        let ha1 = md5_hex(&format!("streamer:streamer:{password}"));
        let ha2 = md5_hex(&format!("{method}:{uri}"));
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"streamer\", realm=\"streamer\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5"
        )
    }

    fn describe_with(authorization: Option<&str>, cseq: u32) -> String {
        match authorization {
            Some(a) => {
                format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: {cseq}\r\nAuthorization: {a}\r\n\r\n")
            }
            None => format!("DESCRIBE {URL} RTSP/1.0\r\nCSeq: {cseq}\r\n\r\n"),
        }
    }

    #[test]
    fn a_locked_server_answers_all_but_options_401_with_digest_then_basic() {
        let now = Instant::now();
        let access = locked(PASSWORD);
        let (mut c, mut host) = (connection_with(now, access), FakeHost::new());
        host.video = false;
        let r = ask(
            &mut c,
            &mut host,
            "OPTIONS * RTSP/1.0\r\nCSeq: 1\r\n\r\n",
            now,
        );
        assert_eq!(status(&r), 200, "OPTIONS is open: {r}");
        let r = ask(&mut c, &mut host, &describe_with(None, 2), now);
        assert_eq!(status(&r), 401, "{r}");
        assert!(
            !c.waiting_for_video(),
            "a stranger does not start the camera"
        );
        assert_eq!(header(&r, "CSeq"), Some("2"));
        assert!(header(&r, "Server").is_some());
        let offered = challenges(&r);
        assert_eq!(offered.len(), 2, "{r}");
        assert!(offered[0].starts_with("Digest realm=\"streamer\""), "{r}");
        assert!(offered[1].starts_with("Basic realm=\"streamer\""), "{r}");
        let nonce = param(offered[0], "nonce").to_string();
        assert_eq!(nonce.len(), 48);
        for request in [
            format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
            format!("PLAY {URL} RTSP/1.0\r\nCSeq: 4\r\nSession: 0000000000000001\r\n\r\n"),
            format!("GET_PARAMETER {URL} RTSP/1.0\r\nCSeq: 5\r\n\r\n"),
            format!("TEARDOWN {URL} RTSP/1.0\r\nCSeq: 6\r\n\r\n"),
            format!("FLY {URL} RTSP/1.0\r\nCSeq: 7\r\n\r\n"),
        ] {
            let r = ask(&mut c, &mut host, &request, now);
            assert_eq!(status(&r), 401, "{request}: {r}");
            assert_eq!(
                param(challenges(&r)[0], "nonce"),
                nonce,
                "one nonce per connection"
            );
        }
        assert!(c.session_id().is_none() && host.plays == 0);
        let other = connection_with(now, locked(PASSWORD));
        let mut other_host = FakeHost::new();
        other_host.next = 99;
        let mut other = other;
        let r = ask(&mut other, &mut other_host, &describe_with(None, 1), now);
        assert_ne!(param(challenges(&r)[0], "nonce"), nonce);
    }

    #[test]
    fn basic_with_the_password_authorizes_the_connection_a_wrong_one_is_401() {
        let now = Instant::now();
        let access = locked(PASSWORD);
        let (mut c, mut host) = (connection_with(now, access.clone()), FakeHost::new());
        let wrong = credentials::basic_header("streamer", "correct horsE");
        let r = ask(&mut c, &mut host, &describe_with(Some(&wrong), 1), now);
        assert_eq!(status(&r), 401, "{r}");
        let user = credentials::basic_header("admin", PASSWORD);
        let r = ask(&mut c, &mut host, &describe_with(Some(&user), 2), now);
        assert_eq!(status(&r), 401, "the user counts too: {r}");
        assert!(!c.authorized());
        let right = credentials::basic_header("streamer", PASSWORD);
        let r = ask(&mut c, &mut host, &describe_with(Some(&right), 3), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(c.authorized());
        assert_eq!(c.authorized_with(), Some("Basic"));
        // Authorized from now on: the connection is what presented the password.
        let r = ask(&mut c, &mut host, &describe_with(None, 4), now);
        assert_eq!(status(&r), 200, "{r}");
        play_tcp(&mut c, &mut host, now);
        assert!(c.playing());
        c.check_invariants();
        access.check_invariants();
        assert!(!format!("{c:?}").contains(PASSWORD));
    }

    #[test]
    fn digest_computed_per_rfc_2617_authorizes_a_wrong_one_is_401() {
        let now = Instant::now();
        let access = locked(PASSWORD);
        let (mut c, mut host) = (connection_with(now, access.clone()), FakeHost::new());
        let r = ask(&mut c, &mut host, &describe_with(None, 1), now);
        let nonce = param(challenges(&r)[0], "nonce").to_string();
        for (why, authorization) in [
            (
                "wrong password",
                digest_authorization("correct horsE", &nonce, "DESCRIBE", URL),
            ),
            (
                "hashed for another method",
                digest_authorization(PASSWORD, &nonce, "SETUP", URL),
            ),
            (
                "another connection's nonce",
                digest_authorization(PASSWORD, &access.digest_nonce([1; 16]), "DESCRIBE", URL),
            ),
        ] {
            let r = ask(
                &mut c,
                &mut host,
                &describe_with(Some(&authorization), 2),
                now,
            );
            assert_eq!(status(&r), 401, "{why}: {r}");
        }
        let right = digest_authorization(PASSWORD, &nonce, "DESCRIBE", URL);
        let r = ask(&mut c, &mut host, &describe_with(Some(&right), 3), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(!r.contains(PASSWORD));
        assert_eq!(c.authorized_with(), Some("Digest"));
        // ffmpeg hashes each request's own method and URI on later requests.
        let setup = digest_authorization(PASSWORD, &nonce, "SETUP", &format!("{URL}/trackID=0"));
        let r = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 4\r\nAuthorization: {setup}\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"), now);
        assert_eq!(status(&r), 200, "{r}");
        c.check_invariants();
    }

    #[test]
    fn a_hashed_password_offers_basic_only() {
        let now = Instant::now();
        let hash = crate::access::password::hash(PASSWORD).unwrap();
        let access = locked(&hash);
        let (mut c, mut host) = (connection_with(now, access), FakeHost::new());
        let r = ask(&mut c, &mut host, &describe_with(None, 1), now);
        assert_eq!(status(&r), 401, "{r}");
        let offered = challenges(&r);
        assert_eq!(offered.len(), 1, "{r}");
        assert!(offered[0].starts_with("Basic "), "{r}");
        let digest = digest_authorization(PASSWORD, "00", "DESCRIBE", URL);
        let r = ask(&mut c, &mut host, &describe_with(Some(&digest), 2), now);
        assert_eq!(status(&r), 401, "Digest cannot check a hash: {r}");
        let right = credentials::basic_header("streamer", PASSWORD);
        let r = ask(&mut c, &mut host, &describe_with(Some(&right), 3), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(!r.contains(&hash));
    }

    #[test]
    fn wrong_passwords_brake_to_503_with_retry_after_for_that_address_only() {
        let now = Instant::now();
        let access = locked(PASSWORD);
        let mut host = FakeHost::new();
        let mut c = connection_from(now, access.clone(), "192.0.2.7:40000");
        let wrong = credentials::basic_header("streamer", "guess");
        let mut braked = None;
        for cseq in 1..=20 {
            let r = ask(&mut c, &mut host, &describe_with(Some(&wrong), cseq), now);
            match status(&r) {
                401 => {}
                503 => {
                    braked = Some(r);
                    break;
                }
                other => panic!("{other}: {r}"),
            }
        }
        let r = braked.expect("braked after a few wrong passwords");
        // The free typos, the one that starts the wait, then the braked one.
        let braked_at = crate::access::brake::FREE_FAILURES + 2;
        assert_eq!(header(&r, "CSeq"), Some(braked_at.to_string().as_str()));
        let seconds: u64 = header(&r, "Retry-After").unwrap().parse().unwrap();
        assert!(seconds >= 1, "{r}");
        assert!(challenges(&r).is_empty(), "{r}");
        assert!(c.end().is_none(), "the connection stays open");
        // Braked: not even the right password is looked at from there...
        let right = credentials::basic_header("streamer", PASSWORD);
        let r = ask(&mut c, &mut host, &describe_with(Some(&right), 30), now);
        assert_eq!(status(&r), 503, "{r}");
        // ...but the owner elsewhere gets in, and OPTIONS stays open.
        let r = ask(
            &mut c,
            &mut host,
            "OPTIONS * RTSP/1.0\r\nCSeq: 31\r\n\r\n",
            now,
        );
        assert_eq!(status(&r), 200, "{r}");
        let mut owner = connection_from(now, access.clone(), "192.0.2.8:40000");
        let r = ask(&mut owner, &mut host, &describe_with(Some(&right), 1), now);
        assert_eq!(status(&r), 200, "{r}");
        // Once the wait is over, the right password works from there too.
        let later = now + Duration::from_secs(seconds);
        let r = ask(&mut c, &mut host, &describe_with(Some(&right), 32), later);
        assert_eq!(status(&r), 200, "{r}");
        access.check_invariants();
    }

    #[test]
    fn an_open_server_ignores_credentials_and_holds_describe_for_video() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        assert!(c.authorized());
        let wrong = credentials::basic_header("nobody", "nothing");
        let r = ask(&mut c, &mut host, &describe_with(Some(&wrong), 1), now);
        assert_eq!(status(&r), 200, "{r}");
        assert!(challenges(&r).is_empty());
        // Locked and authorized: a DESCRIBE before video is held like an open
        // server's.
        let (mut c, mut host) = (connection_with(now, locked(PASSWORD)), FakeHost::new());
        host.video = false;
        let right = credentials::basic_header("streamer", PASSWORD);
        let out = c.receive(describe_with(Some(&right), 1).as_bytes(), now, &mut host);
        assert!(out.is_empty() && c.waiting_for_video());
        c.check_invariants();
        host.video = true;
        let texts = responses(&c.resume(now, &mut host));
        assert_eq!(texts.len(), 1);
        assert_eq!(status(&texts[0]), 200, "{}", texts[0]);
    }

    #[test]
    fn a_bye_ends_the_session() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        play_tcp(&mut c, &mut host, now);
        // RR then BYE in one compound packet, interleaved on the RTCP channel.
        let compound = [0x80u8, 201, 0, 1, 0, 0, 0, 1, 0x81, 203, 0, 1, 0, 0, 0, 1];
        let mut bytes = vec![b'$', 1, 0, compound.len() as u8];
        bytes.extend_from_slice(&compound);
        c.receive(&bytes, now, &mut host);
        assert_eq!(c.end(), Some(&End::Bye));
        assert_eq!(host.stops, 1);
    }

    #[test]
    fn sender_reports_map_wall_clock_to_the_stream_s_rtp_time() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        play_tcp(&mut c, &mut host, now);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(c.sender_report(wall).is_none(), "no report before a frame");
        let captured = crate::hub::unix_micros(wall) - 100_000;
        let out = c.item(&frame(0, true, captured, 500), &mut cut);
        let first = &interleaved_packets(&out, 0)[0];
        let ts = u32::from_be_bytes(first[4..8].try_into().unwrap());
        let report = c.sender_report(wall).unwrap();
        let sr = &interleaved_packets(&[report], 1)[0];
        assert_eq!(sr[1], 200);
        assert_eq!(&sr[4..8], &first[8..12], "the stream's SSRC");
        assert_eq!(
            u64::from_be_bytes(sr[8..16].try_into().unwrap()),
            rtcp::ntp_timestamp(wall)
        );
        // 100 ms after the frame was captured: 9000 ticks on.
        assert_eq!(
            u32::from_be_bytes(sr[16..20].try_into().unwrap()),
            ts.wrapping_add(9000)
        );
        assert_eq!(
            u32::from_be_bytes(sr[20..24].try_into().unwrap()),
            3,
            "packets: SPS, PPS, the slice"
        );
    }

    #[test]
    fn a_sender_report_amid_the_backlog_agrees_with_the_live_frames() {
        let now = Instant::now();
        let (mut c, mut host) = (connection(now), FakeHost::new());
        play_tcp(&mut c, &mut host, now);
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = crate::hub::unix_micros(wall);
        c.item(&Item::Join { frames: 3 }, &mut cut);
        c.item(&frame(0, true, t - 2_000_000, 100), &mut cut);
        let amid = c.sender_report(wall);
        c.item(&frame(1, false, t - 1_000_000, 100), &mut cut);
        c.item(&frame(2, false, t, 100), &mut cut);
        let after = c.sender_report(wall).expect("a report after the backlog");
        let out = c.item(&frame(3, false, t + 40_000, 100), &mut cut);
        let live = &interleaved_packets(&out, 0)[0];
        let live_ts = u32::from_be_bytes(live[4..8].try_into().unwrap());
        for report in amid.into_iter().chain([after]) {
            let sr = &interleaved_packets(&[report], 1)[0];
            let sr_ts = u32::from_be_bytes(sr[16..20].try_into().unwrap());
            assert_eq!(
                live_ts.wrapping_sub(sr_ts),
                3600,
                "report {sr_ts}, frame {live_ts}"
            );
        }
    }

    #[derive(Debug, Clone)]
    enum Step {
        Join(usize),
        Frame {
            keyframe: bool,
            gap_ms: u64,
            size: usize,
        },
        Resync,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0usize..4).prop_map(Step::Join),
            (any::<bool>(), 0u64..200, 0usize..5000).prop_map(|(keyframe, gap_ms, size)| {
                Step::Frame {
                    keyframe,
                    gap_ms,
                    size,
                }
            }),
            Just(Step::Resync),
        ]
    }

    proptest! {
        /// Whatever the viewer receives, the client sees one RTP stream: sequence
        /// numbers without a gap, timestamps that never go back (and move on
        /// between frames), one SSRC, the marker on each frame's last packet only,
        /// every packet within the payload limit.
        #[test]
        fn packets_form_one_gapless_stream(steps in proptest::collection::vec(step(), 1..40), udp in any::<bool>()) {
            let now = Instant::now();
            let (mut c, mut host) = (connection(now), FakeHost::new());
            let transport = if udp { "RTP/AVP;unicast;client_port=5000-5001" } else { "RTP/AVP/TCP;unicast;interleaved=0-1" };
            let setup = ask(&mut c, &mut host, &format!("SETUP {URL}/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: {transport}\r\n\r\n"), now);
            let id = session_id_of(header(&setup, "Session").unwrap()).to_string();
            ask(&mut c, &mut host, &format!("PLAY {URL} RTSP/1.0\r\nCSeq: 2\r\nSession: {id}\r\n\r\n"), now);
            let mut captured = 1_000_000_000u64;
            let mut last: Option<(u16, u32, u32)> = None;
            for (n, s) in steps.iter().enumerate() {
                let item = match s {
                    Step::Join(frames) => Item::Join { frames: *frames },
                    Step::Resync => Item::Resync { dropped: 3 },
                    Step::Frame { keyframe, gap_ms, size } => {
                        captured += gap_ms * 1000;
                        frame(n as u64, *keyframe, captured, *size)
                    }
                };
                let out = c.item(&item, &mut cut);
                let packets: Vec<Vec<u8>> = if udp {
                    out.iter().map(|o| match o {
                        Output::Rtp(to, p) => { assert_eq!(*to, "127.0.0.1:5000".parse().unwrap()); p.to_vec() }
                        other => panic!("{other:?}"),
                    }).collect()
                } else {
                    interleaved_packets(&out, 0)
                };
                prop_assert_eq!(packets.is_empty(), !matches!(s, Step::Frame { .. }));
                for (i, p) in packets.iter().enumerate() {
                    prop_assert!(p.len() <= 12 + 1400);
                    let seq = u16::from_be_bytes([p[2], p[3]]);
                    let ts = u32::from_be_bytes(p[4..8].try_into().unwrap());
                    let ssrc = u32::from_be_bytes(p[8..12].try_into().unwrap());
                    let marker = p[1] & 0x80 != 0;
                    prop_assert_eq!(marker, i + 1 == packets.len());
                    if let Some((last_seq, last_ts, last_ssrc)) = last {
                        prop_assert_eq!(seq, last_seq.wrapping_add(1));
                        prop_assert_eq!(ssrc, last_ssrc);
                        let step = ts.wrapping_sub(last_ts);
                        if i == 0 {
                            prop_assert!((1..1 << 31).contains(&step), "a new frame moves time on");
                        } else {
                            prop_assert_eq!(step, 0);
                        }
                    }
                    last = Some((seq, ts, ssrc));
                }
            }
            c.check_invariants();
        }
    }
}
