//! One WebRTC viewer, sans-IO: str0m's [`Rtc`] with what the streamer adds to it.
//!
//! Datagrams, hub items and timeouts go in; datagrams to send, the next timeout
//! and [`PeerEvent`]s come out. No sockets, no clock reads, no tokio: the I/O shell
//! ([`super::udp`]) does those, and tests drive a `Peer` directly.
//!
//! - The answer: ICE-lite, the server's host candidates, one H.264 payload type
//!   with the stream's own profile-level-id ([`super::offer`]), and the data
//!   channel when the offer has one.
//! - Frames: each access unit is written as one RTP frame (str0m packetizes it,
//!   RFC 6184 with FU-A), stamped by [`RtpClock`] (a joining viewer's backlog
//!   together, live frames by capture time), with the playout-delay extension
//!   asking the browser for no added buffering where it was negotiated.
//! - The data channel `events` carries the WebSocket protocol's JSON messages
//!   (`hello`, `stream`, `state`, `resync`, `stats`, `timing`, `pong`).
//! - PLI/FIR from the browser become [`PeerEvent::KeyframeWanted`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::crypto::dtls::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcError};

use super::offer::{self, OfferError};
use crate::hub::{unix_micros, Item, StreamInfo};
use crate::rtp::clock::RtpClock;
use crate::websocket::messages::{ClientMessage, ServerMessage, PROTOCOL_VERSION};

/// How long ICE and DTLS may take before the session is given up: a browser on
/// the LAN connects in well under a second; one whose UDP is blocked never does,
/// and its viewer place is freed after this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A connected browser that sends nothing for this long is gone (closed without
/// `DELETE`, crashed, out of range): browsers send RTCP reports every second or
/// so and ICE consent checks every few seconds (RFC 7675 gives up after 30 s).
pub const SILENCE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a session that must end (its codec changed) lives on for its
/// `stream` message and data channel's close to reach the player.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `timing` messages on the data channel, at most this often.
const TIMING_INTERVAL: Duration = Duration::from_secs(1);

/// `stats` messages on the data channel, this often.
const STATS_INTERVAL: Duration = Duration::from_secs(2);

/// Data-channel bytes buffered for the browser at most; messages beyond are
/// dropped (they are state reports; the next one supersedes them).
const MAX_CHANNEL_BUFFERED: usize = 256 * 1024;

/// RTP packets kept per viewer for retransmission (NACK). Memory: up to this
/// many packets of up to ~1.2 KB each per WebRTC viewer, ~600 KB. It covers a
/// large keyframe (a Pi's 1080p keyframe is a few hundred packets) and, at 3
/// Mbit/s, about 1.5 s of video: far more than a LAN's round trip.
pub const SEND_BUFFER_PACKETS: usize = 500;

/// What every viewer's answer shares.
#[derive(Clone)]
pub struct PeerSettings {
    /// The host candidates: where browsers send their datagrams.
    pub candidates: Vec<SocketAddr>,
    /// The DTLS certificate (made once at start).
    pub cert: DtlsCert,
    /// DTLS and SRTP.
    pub crypto: Arc<CryptoProvider>,
    /// `hello`'s server name and version.
    pub server: String,
    /// `hello`'s configuration problems.
    pub config_errors: Vec<String>,
}

impl PeerSettings {
    /// Settings with a new DTLS certificate and the pure-Rust crypto backend;
    /// `None` when no certificate could be made.
    pub fn new(
        candidates: Vec<SocketAddr>,
        server: String,
        config_errors: Vec<String>,
    ) -> Option<Self> {
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto.dtls_provider.generate_certificate()?;
        Some(PeerSettings {
            candidates,
            cert,
            crypto,
            server,
            config_errors,
        })
    }
}

/// Why an offer could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// What the offer asks for cannot be served.
    #[error(transparent)]
    Offer(#[from] OfferError),
    /// The stream's codec is not H.264 as this server knows it.
    #[error("the stream's codec {0:?} is not H.264")]
    Stream(String),
    /// str0m refused the offer or the server's own settings.
    #[error("cannot answer the offer: {0}")]
    Rtc(#[from] RtcError),
    /// A candidate address str0m does not accept.
    #[error("cannot offer the address {address}: {reason}")]
    Candidate {
        /// The address.
        address: SocketAddr,
        /// str0m's reason.
        reason: String,
    },
}

/// What the I/O shell must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// ICE and DTLS are up: start this viewer at the latest keyframe
    /// ([`crate::hub::Viewer::restart_at_keyframe`]) and feed it frames.
    Connected,
    /// The browser asked for a keyframe (PLI or FIR).
    KeyframeWanted,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// ICE and DTLS did not come up within [`CONNECT_TIMEOUT`].
    NeverConnected,
    /// The browser stopped answering (ICE consent lost) or closed the connection.
    Disconnected,
    /// The stream's codec changed; the browser must negotiate again.
    StreamChanged,
    /// str0m failed.
    Failed(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::NeverConnected => write!(
                f,
                "did not connect within {} s (UDP blocked on the way?)",
                CONNECT_TIMEOUT.as_secs()
            ),
            EndReason::Disconnected => write!(f, "the browser went away"),
            EndReason::StreamChanged => write!(f, "the stream's codec changed"),
            EndReason::Failed(reason) => write!(f, "failed: {reason}"),
        }
    }
}

/// A datagram to send.
#[derive(Debug)]
pub struct Datagram {
    /// Where to.
    pub destination: SocketAddr,
    /// The bytes.
    pub contents: Vec<u8>,
}

/// What [`Peer::poll`] gives.
#[derive(Debug)]
pub enum Poll {
    /// Send this, then poll again.
    Transmit(Datagram),
    /// Act on this, then poll again.
    Event(PeerEvent),
    /// Nothing more until a datagram, an item or this time.
    Wait(Instant),
    /// The session is over.
    Ended(EndReason),
}

/// The candidate a datagram from `source` that arrived at the local address
/// `arrived` was sent to: the candidate with that address, else (an announced
/// address, translated by NAT or port forwarding on the way) the first of the
/// source's address family, else the first.
pub fn local_candidate(
    candidates: &[SocketAddr],
    source: SocketAddr,
    arrived: SocketAddr,
) -> Option<SocketAddr> {
    candidates
        .iter()
        .find(|c| **c == arrived)
        .or_else(|| candidates.iter().find(|c| c.is_ipv4() == source.is_ipv4()))
        .or_else(|| candidates.first())
        .copied()
}

/// One viewer's WebRTC session.
pub struct Peer {
    rtc: Rtc,
    /// The candidates answered, for [`local_candidate`].
    candidates: Vec<SocketAddr>,
    mid: Option<Mid>,
    pt: Option<Pt>,
    /// The codec string the session was negotiated for.
    codec: String,
    clock: RtpClock,
    /// Backlog frames still to come (after a `join`).
    backlog_left: usize,
    channel: Option<ChannelId>,
    created: Instant,
    /// When the browser last sent a datagram.
    last_heard: Instant,
    connected: bool,
    /// Ending at this time, after the `stream` message and the data channel's
    /// close have reached the player.
    closing: Option<(EndReason, Instant)>,
    ended: Option<EndReason>,
    events: Vec<PeerEvent>,
    /// The latest `stream` and `state` messages, sent when the channel opens.
    stream_message: Option<ServerMessage>,
    state_message: Option<ServerMessage>,
    hello: ServerMessage,
    last_timing: Option<Instant>,
    last_stats: Option<Instant>,
    /// For `stats` (the I/O shell keeps it current): viewers watching.
    pub viewers: usize,
    /// For `stats` (the I/O shell keeps it current): frames this viewer lost by
    /// falling behind, as the hub counts them.
    pub dropped: u64,
    /// Frames and bytes written.
    pub sent_frames: u64,
    /// Bytes of frames written.
    pub sent_bytes: u64,
}

impl Peer {
    /// Answers `offer` for a stream with these parameters. `random` seeds the RTP
    /// clock's start.
    pub fn answer(
        offer_sdp: &str,
        stream: &StreamInfo,
        settings: &PeerSettings,
        now: Instant,
        random: u32,
    ) -> Result<(Peer, String), AnswerError> {
        let video = offer::video_of(offer_sdp)?;
        let profile_level_id = offer::profile_level_id_of_codec(&stream.codec)
            .ok_or_else(|| AnswerError::Stream(stream.codec.clone()))?;
        let chosen = offer::choose(&video, profile_level_id)?;
        let parsed = SdpOffer::from_sdp_string(offer_sdp)
            .map_err(|error| OfferError::NotSdp(error.to_string()))?;

        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(settings.crypto.clone())
            .set_dtls_cert(settings.cert.clone())
            .clear_codecs()
            // Ask the browser to add no buffering of its own (where it offered it).
            .set_extension(5, Extension::PlayoutDelay)
            .set_send_buffer_video(SEND_BUFFER_PACKETS)
            // Stats events are not used.
            .set_stats_interval(None);
        config.codec_config().add_h264(
            chosen.pt.into(),
            chosen.rtx.map(Pt::from),
            true,
            profile_level_id,
        );
        let mut rtc = config.build(now);
        for &address in &settings.candidates {
            let candidate =
                Candidate::host(address, "udp").map_err(|error| AnswerError::Candidate {
                    address,
                    reason: error.to_string(),
                })?;
            rtc.add_local_candidate(candidate);
        }
        let answer = rtc.sdp_api().accept_offer(parsed)?;
        let mut peer = Peer {
            rtc,
            candidates: settings.candidates.clone(),
            mid: None,
            pt: None,
            codec: stream.codec.clone(),
            clock: RtpClock::new(random),
            backlog_left: 0,
            channel: None,
            created: now,
            last_heard: now,
            connected: false,
            closing: None,
            ended: None,
            events: Vec::new(),
            stream_message: Some(ServerMessage::stream(stream)),
            state_message: None,
            hello: ServerMessage::Hello {
                protocol: PROTOCOL_VERSION,
                server: settings.server.clone(),
                server_time_us: 0,
                config_errors: settings.config_errors.clone(),
            },
            last_timing: None,
            last_stats: None,
            viewers: 0,
            dropped: 0,
            sent_frames: 0,
            sent_bytes: 0,
        };
        // The video's payload type as str0m matched it: an offer it could not
        // match is refused here, not after the browser connected.
        let mid = Mid::from(video.mid.as_str());
        peer.mid = Some(mid);
        peer.pt = peer.rtc.writer(mid).and_then(|writer| {
            writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::H264)
                .map(|p| p.pt())
        });
        if peer.pt.is_none() {
            return Err(OfferError::NoCommonCodec(format!(
                "the offer's H.264 payload type {} was not accepted",
                chosen.pt
            ))
            .into());
        }
        // str0m's answer offers trickle ICE, which a WHEP server that answers
        // PATCH with 405 does not take: say nothing of it.
        let answer = answer
            .to_sdp_string()
            .split_inclusive('\n')
            .filter(|line| !line.starts_with("a=ice-options:trickle"))
            .collect();
        Ok((peer, answer))
    }

    /// The ICE ufrag the browser's checks name (for [`super::demux`]).
    pub fn ufrag(&mut self) -> String {
        self.rtc.direct_api().local_ice_credentials().ufrag
    }

    /// True once ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// A datagram from the browser, which arrived at `destination` (one of the
    /// candidates) from `source`.
    pub fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let Some(destination) = local_candidate(&self.candidates, source, destination) else {
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, data) else {
            // Not STUN, DTLS, RTP or RTCP: nothing str0m can use.
            return;
        };
        self.last_heard = now;
        if let Err(error) = self.rtc.handle_input(Input::Receive(now, receive)) {
            tracing::debug!(%error, "a datagram str0m could not use");
        }
    }

    /// Time passed (call at or after the time [`Peer::poll`] asked for).
    pub fn tick(&mut self, now: Instant) {
        if !self.connected && self.ended.is_none() && now >= self.created + CONNECT_TIMEOUT {
            self.ended = Some(EndReason::NeverConnected);
        }
        if let Some((reason, by)) = &self.closing {
            if now >= *by {
                self.ended.get_or_insert(reason.clone());
            }
        }
        if self.connected && now >= self.last_heard + SILENCE_TIMEOUT {
            self.ended.get_or_insert(EndReason::Disconnected);
        }
        if let Err(error) = self.rtc.handle_input(Input::Timeout(now)) {
            self.ended
                .get_or_insert(EndReason::Failed(error.to_string()));
        }
        if self.connected && self.channel.is_some() {
            self.report(now);
        }
    }

    /// One item from the hub, written to the browser (a frame) or the data
    /// channel (the rest). Poll after each frame.
    pub fn push(&mut self, item: Item, now: Instant) {
        match item {
            Item::Frame(frame) => {
                let backlog = self.backlog_left > 0;
                self.backlog_left = self.backlog_left.saturating_sub(1);
                let ts = self.clock.stamp(frame.captured_us, backlog);
                let due = self
                    .last_timing
                    .is_none_or(|last| now.duration_since(last) >= TIMING_INTERVAL);
                if due && !backlog && self.channel.is_some() {
                    self.last_timing = Some(now);
                    self.send_message(&ServerMessage::Timing {
                        seq: frame.seq,
                        captured_us: frame.captured_us,
                        published_us: frame.published_us,
                        sent_us: unix_micros(SystemTime::now()),
                        rtp_timestamp: Some(ts as u32),
                    });
                }
                self.write_frame(&frame.data, ts, now);
            }
            Item::Stream(info) => {
                let message = ServerMessage::stream(&info);
                self.send_message(&message);
                self.stream_message = Some(message);
                if info.codec != self.codec {
                    // Another profile or level: what was negotiated no longer
                    // holds. The player learns it from the `stream` message and
                    // the data channel's close, and negotiates again.
                    self.closing
                        .get_or_insert((EndReason::StreamChanged, now + CLOSE_GRACE));
                }
            }
            Item::Source(status) => {
                let message = ServerMessage::State {
                    state: status.state,
                    source: status.kind.clone(),
                    message: status.message.clone(),
                };
                self.send_message(&message);
                self.state_message = Some(message);
            }
            Item::Join { frames } => self.backlog_left = frames,
            Item::Resync { dropped } => self.send_message(&ServerMessage::Resync { dropped }),
        }
    }

    fn write_frame(&mut self, data: &[u8], ts: u64, now: Instant) {
        let (Some(mid), Some(pt)) = (self.mid, self.pt) else {
            return;
        };
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let zero = MediaTime::from_hundredths(0);
        let result =
            writer
                .playout_delay(zero, zero)
                .write(pt, now, MediaTime::from_90khz(ts), data);
        match result {
            Ok(()) => {
                self.sent_frames += 1;
                self.sent_bytes += data.len() as u64;
            }
            Err(error) => {
                self.ended
                    .get_or_insert(EndReason::Failed(error.to_string()));
            }
        }
    }

    /// Sends `hello`, `stream` and `state` when the channel opens, `stats` and
    /// the time on schedule.
    fn report(&mut self, now: Instant) {
        if self
            .last_stats
            .is_none_or(|last| now.duration_since(last) >= STATS_INTERVAL)
        {
            self.last_stats = Some(now);
            self.send_message(&ServerMessage::Stats {
                viewers: self.viewers,
                dropped: self.dropped,
            });
        }
    }

    fn send_message(&mut self, message: &ServerMessage) {
        let Some(id) = self.channel else {
            return;
        };
        let Some(mut channel) = self.rtc.channel(id) else {
            return;
        };
        if channel.buffered_amount() > MAX_CHANNEL_BUFFERED {
            return;
        }
        let _ = channel.write(false, message.to_json().as_bytes());
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.ended.get_or_insert(EndReason::Disconnected);
            }
            Event::Connected => {
                self.connected = true;
                self.events.push(PeerEvent::Connected);
            }
            Event::KeyframeRequest(_) => self.events.push(PeerEvent::KeyframeWanted),
            Event::ChannelOpen(id, _label) => {
                self.channel = Some(id);
                let mut hello = self.hello.clone();
                if let ServerMessage::Hello { server_time_us, .. } = &mut hello {
                    *server_time_us = unix_micros(SystemTime::now());
                }
                self.send_message(&hello);
                for message in [self.stream_message.clone(), self.state_message.clone()]
                    .into_iter()
                    .flatten()
                {
                    self.send_message(&message);
                }
            }
            Event::ChannelData(data) if !data.binary && data.data.len() <= 4096 => {
                if let Ok(ClientMessage::Ping { id, client_time }) =
                    serde_json::from_slice::<ClientMessage>(&data.data)
                {
                    self.send_message(&ServerMessage::Pong {
                        id,
                        client_time,
                        server_time_us: unix_micros(SystemTime::now()),
                    });
                }
            }
            Event::ChannelClose(id) if Some(id) == self.channel => self.channel = None,
            Event::Closed => {
                self.ended.get_or_insert(EndReason::Disconnected);
            }
            _ => {}
        }
    }

    /// What to do next. Call until it returns [`Poll::Wait`] or [`Poll::Ended`].
    pub fn poll(&mut self) -> Poll {
        if let Some(reason) = &self.ended {
            return Poll::Ended(reason.clone());
        }
        if !self.events.is_empty() {
            return Poll::Event(self.events.remove(0));
        }
        match self.rtc.poll_output() {
            Ok(Output::Transmit(transmit)) => Poll::Transmit(Datagram {
                destination: transmit.destination,
                contents: transmit.contents.to_vec(),
            }),
            Ok(Output::Event(event)) => {
                self.on_event(event);
                self.poll()
            }
            Ok(Output::Timeout(at)) => {
                if let Some((_, by)) = &self.closing {
                    let by = *by;
                    // The `stream` message is out: now close the channel.
                    if let Some(id) = self.channel.take() {
                        self.rtc.direct_api().close_data_channel(id);
                        return self.poll();
                    }
                    return Poll::Wait(at.min(by));
                }
                let deadline = if self.connected {
                    at.min(self.last_heard + SILENCE_TIMEOUT)
                } else {
                    at.min(self.created + CONNECT_TIMEOUT)
                };
                Poll::Wait(deadline)
            }
            Err(error) => {
                let reason = EndReason::Failed(error.to_string());
                self.ended = Some(reason.clone());
                Poll::Ended(reason)
            }
        }
    }

    /// Ends the session (DELETE, shutdown): str0m closes DTLS.
    pub fn close(&mut self) {
        self.rtc.disconnect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real offer of Debian's Chromium (a recvonly video transceiver and the
    /// `events` data channel).
    const CHROMIUM_OFFER: &str = include_str!("testdata/chromium-offer.sdp");

    fn settings() -> PeerSettings {
        PeerSettings::new(
            vec!["127.0.0.1:8189".parse().unwrap()],
            "streamer test".into(),
            Vec::new(),
        )
        .unwrap()
    }

    fn stream(codec: &str) -> StreamInfo {
        StreamInfo {
            codec: codec.into(),
            width: 1280,
            height: 720,
            fps: Some(30.0),
        }
    }

    #[test]
    fn a_chromium_offer_is_answered_ice_lite_with_the_streams_profile() {
        let (mut peer, answer) = Peer::answer(
            CHROMIUM_OFFER,
            &stream("avc1.42c01f"),
            &settings(),
            Instant::now(),
            1,
        )
        .unwrap();
        assert!(answer.contains("a=ice-lite"), "{answer}");
        assert!(!answer.contains("trickle"), "{answer}");
        assert!(answer.contains(" 127.0.0.1 8189 typ host"), "{answer}");
        assert!(
            answer.contains("profile-level-id=42e01f")
                || answer.contains("profile-level-id=42c01f"),
            "{answer}"
        );
        assert!(answer.contains("packetization-mode=1"), "{answer}");
        // Retransmissions (NACK) with the offer's rtx payload type for it.
        assert!(answer.contains("rtx/90000"), "{answer}");
        assert!(answer.contains("a=rtcp-fb:108 nack"), "{answer}");
        assert!(answer.contains("a=rtcp-fb:108 nack pli"), "{answer}");
        assert!(
            answer.contains("m=application"),
            "the data channel is answered: {answer}"
        );
        assert!(answer.contains("rtp-hdrext/playout-delay"), "{answer}");
        assert!(!answer.contains("VP8"), "{answer}");
        assert!(!peer.ufrag().is_empty());
        assert!(!peer.is_connected());
        assert!(matches!(peer.poll(), Poll::Wait(_)));
    }

    #[test]
    fn a_high_profile_stream_and_an_offer_without_high_is_no_common_codec() {
        // Debian's Chromium offers no High profile for WebRTC.
        let error = Peer::answer(
            CHROMIUM_OFFER,
            &stream("avc1.640028"),
            &settings(),
            Instant::now(),
            1,
        )
        .err()
        .unwrap();
        let text = error.to_string();
        assert!(
            matches!(error, AnswerError::Offer(OfferError::NoCommonCodec(_))),
            "{text}"
        );
        assert!(
            text.contains("High") && text.contains("encoder.profile"),
            "{text}"
        );
        // Main is offered: a Main stream is answered.
        assert!(Peer::answer(
            CHROMIUM_OFFER,
            &stream("avc1.4d0028"),
            &settings(),
            Instant::now(),
            1
        )
        .is_ok());
    }

    #[test]
    fn a_session_that_never_connects_ends_after_the_timeout() {
        let start = Instant::now();
        let (mut peer, _) = Peer::answer(
            CHROMIUM_OFFER,
            &stream("avc1.42c01f"),
            &settings(),
            start,
            1,
        )
        .unwrap();
        let mut now = start;
        let reason = loop {
            match peer.poll() {
                Poll::Transmit(_) | Poll::Event(_) => {}
                Poll::Wait(at) => {
                    assert!(
                        at <= start + CONNECT_TIMEOUT,
                        "never waits past the connect timeout"
                    );
                    now = at.max(now + Duration::from_millis(1));
                    peer.tick(now);
                }
                Poll::Ended(reason) => break reason,
            }
        };
        assert_eq!(reason, EndReason::NeverConnected);
        assert!(now >= start + CONNECT_TIMEOUT);
    }

    #[test]
    fn datagrams_are_matched_to_the_candidate_they_were_sent_to() {
        let candidates: Vec<SocketAddr> = vec![
            "192.168.1.20:8189".parse().unwrap(),
            "[2001:db8::20]:8189".parse().unwrap(),
        ];
        let v4: SocketAddr = "192.168.1.50:40000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::50]:40000".parse().unwrap();
        assert_eq!(
            local_candidate(&candidates, v4, candidates[0]),
            Some(candidates[0])
        );
        // Arrived at an address not announced (port forwarding): same family.
        let inside: SocketAddr = "10.0.2.15:8189".parse().unwrap();
        assert_eq!(
            local_candidate(&candidates, v4, inside),
            Some(candidates[0])
        );
        assert_eq!(
            local_candidate(&candidates, v6, inside),
            Some(candidates[1])
        );
        assert_eq!(local_candidate(&[], v4, inside), None);
    }

    /// A str0m client (full ICE, controlling) and a `Peer`, their datagrams
    /// exchanged in memory on a simulated clock.
    struct Pair {
        client: Rtc,
        peer: Peer,
        now: Instant,
        client_addr: SocketAddr,
        server_addr: SocketAddr,
        /// The client's datagrams reach the peer.
        deliver_to_peer: bool,
        received: Vec<(MediaTime, Vec<u8>)>,
        messages: Vec<String>,
        events: Vec<PeerEvent>,
        ended: Option<EndReason>,
        channel_open: bool,
        channel_closed: bool,
    }

    impl Pair {
        fn new(codec: &str) -> Pair {
            use str0m::change::SdpAnswer;
            use str0m::media::{Direction, MediaKind};
            let now = Instant::now();
            let client_addr: SocketAddr = "127.0.0.2:5000".parse().unwrap();
            let server_addr: SocketAddr = "127.0.0.1:8189".parse().unwrap();
            let mut client = Rtc::builder()
                .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
                .build(now);
            client.add_local_candidate(Candidate::host(client_addr, "udp").unwrap());
            let mut change = client.sdp_api();
            change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
            change.add_channel("events".into());
            let (offer, pending) = change.apply().unwrap();
            let (peer, answer) =
                Peer::answer(&offer.to_sdp_string(), &stream(codec), &settings(), now, 1).unwrap();
            client
                .sdp_api()
                .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
                .unwrap();
            Pair {
                client,
                peer,
                now,
                client_addr,
                server_addr,
                deliver_to_peer: true,
                received: Vec::new(),
                messages: Vec::new(),
                events: Vec::new(),
                ended: None,
                channel_open: false,
                channel_closed: false,
            }
        }

        /// Runs both sides until neither has anything to do before `until`.
        fn run_until(&mut self, until: Instant) {
            loop {
                let mut next = until;
                // The client.
                loop {
                    match self.client.poll_output().unwrap() {
                        Output::Transmit(t) => {
                            if self.deliver_to_peer {
                                self.peer.receive(
                                    self.now,
                                    self.client_addr,
                                    self.server_addr,
                                    &t.contents,
                                );
                            }
                        }
                        Output::Event(Event::MediaData(data)) => {
                            self.received.push((data.time, data.data.to_vec()))
                        }
                        Output::Event(Event::ChannelOpen(..)) => self.channel_open = true,
                        Output::Event(Event::ChannelClose(_)) => self.channel_closed = true,
                        Output::Event(Event::ChannelData(data)) => {
                            self.messages.push(String::from_utf8(data.data).unwrap())
                        }
                        Output::Event(_) => {}
                        Output::Timeout(at) => {
                            next = next.min(at);
                            break;
                        }
                    }
                }
                // The peer.
                if self.ended.is_none() {
                    loop {
                        match self.peer.poll() {
                            Poll::Transmit(d) => {
                                assert_eq!(d.destination, self.client_addr);
                                let receive = Receive::new(
                                    Protocol::Udp,
                                    self.server_addr,
                                    self.client_addr,
                                    &d.contents,
                                )
                                .unwrap();
                                self.client
                                    .handle_input(Input::Receive(self.now, receive))
                                    .unwrap();
                            }
                            Poll::Event(event) => self.events.push(event),
                            Poll::Wait(at) => {
                                next = next.min(at);
                                break;
                            }
                            Poll::Ended(reason) => {
                                self.ended = Some(reason);
                                break;
                            }
                        }
                    }
                }
                if next > self.now {
                    if next >= until {
                        self.now = until;
                        return;
                    }
                    self.now = next;
                }
                self.client.handle_input(Input::Timeout(self.now)).unwrap();
                if self.ended.is_none() {
                    self.peer.tick(self.now);
                }
            }
        }

        fn run_for(&mut self, duration: Duration) {
            let until = self.now + duration;
            self.run_until(until);
        }
    }

    fn frame(seq: u64, keyframe: bool, captured_us: u64) -> Item {
        use crate::h264::testing::{idr, nal};
        use crate::h264::{AccessUnit, RandomAccess};
        let au = if keyframe {
            idr(true, seq as u8)
        } else {
            let mut data = vec![0x41, 0x9a, seq as u8];
            data.resize(3000, 0x55);
            AccessUnit {
                nals: vec![nal(&data)],
                random_access: RandomAccess::None,
            }
        };
        Item::Frame(crate::hub::Frame {
            seq,
            data: au.to_annex_b(),
            keyframe,
            captured_us,
            published_us: captured_us,
        })
    }

    #[test]
    fn a_str0m_client_connects_and_receives_the_frames_in_order() {
        let mut pair = Pair::new("avc1.42c01f");
        pair.run_for(Duration::from_secs(2));
        assert_eq!(pair.events.first(), Some(&PeerEvent::Connected));
        assert!(pair.peer.is_connected());
        assert!(pair.channel_open, "the events channel opened");
        // The backlog of a joining viewer, then live frames 40 ms apart.
        let start = 1_000_000_000;
        let now = pair.now;
        pair.peer.push(Item::Join { frames: 3 }, now);
        for (seq, keyframe) in [(0, true), (1, false), (2, false)] {
            pair.peer
                .push(frame(seq, keyframe, start + seq * 40_000), now);
        }
        for seq in 3..6 {
            pair.run_for(Duration::from_millis(40));
            let now = pair.now;
            pair.peer.push(frame(seq, false, start + seq * 40_000), now);
        }
        pair.run_for(Duration::from_millis(200));
        assert_eq!(pair.received.len(), 6, "every frame arrived");
        let times: Vec<u64> = pair.received.iter().map(|(t, _)| t.numer()).collect();
        // The backlog one tick apart, then 40 ms (3600 ticks) per frame.
        assert_eq!(times[1] - times[0], 1);
        assert_eq!(times[2] - times[1], 1);
        assert_eq!(times[3] - times[2], 3600);
        assert_eq!(times[5] - times[4], 3600);
        // The keyframe arrives as Annex-B with its SPS (type 7) first.
        let first = &pair.received[0].1;
        let types: Vec<u8> = first
            .windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1f)
            .collect();
        assert!(types.starts_with(&[7, 8, 5]), "{types:?}");
        assert_eq!(pair.peer.sent_frames, 6);
        // The data channel: hello first, then the stream's parameters.
        assert!(
            pair.messages[0].contains("\"type\":\"hello\""),
            "{:?}",
            pair.messages
        );
        assert!(pair
            .messages
            .iter()
            .any(|m| m.contains("\"type\":\"stream\"")));
        assert!(
            pair.messages
                .iter()
                .any(|m| m.contains("\"rtp_timestamp\"")),
            "{:?}",
            pair.messages
        );
    }

    #[test]
    fn a_keyframe_request_from_the_browser_reaches_the_shell() {
        let mut pair = Pair::new("avc1.42c01f");
        pair.run_for(Duration::from_secs(2));
        let now = pair.now;
        pair.peer.push(frame(0, true, 1_000_000), now);
        pair.run_for(Duration::from_millis(100));
        let mid = pair.peer.mid.unwrap();
        pair.client
            .direct_api()
            .stream_rx_by_mid(mid, None)
            .expect("the client receives the video")
            .request_keyframe(str0m::media::KeyframeRequestKind::Pli);
        pair.run_for(Duration::from_millis(500));
        assert!(
            pair.events.contains(&PeerEvent::KeyframeWanted),
            "{:?}",
            pair.events
        );
    }

    #[test]
    fn a_browser_that_goes_silent_ends_the_session() {
        let mut pair = Pair::new("avc1.42c01f");
        pair.run_for(Duration::from_secs(2));
        assert!(pair.peer.is_connected());
        pair.run_for(Duration::from_secs(5));
        assert_eq!(pair.ended, None, "alive while it talks");
        pair.deliver_to_peer = false;
        pair.run_for(SILENCE_TIMEOUT + Duration::from_secs(1));
        assert_eq!(pair.ended, Some(EndReason::Disconnected));
    }

    #[test]
    fn a_new_codec_ends_the_session_so_the_player_negotiates_again() {
        let mut pair = Pair::new("avc1.42c01f");
        pair.run_for(Duration::from_secs(2));
        let now = pair.now;
        pair.peer
            .push(Item::Stream(Arc::new(stream("avc1.42c01f"))), now);
        pair.run_for(Duration::from_millis(10));
        assert_eq!(pair.ended, None, "the same codec (a new size, say) goes on");
        let before = pair.messages.len();
        pair.peer
            .push(Item::Stream(Arc::new(stream("avc1.640028"))), now);
        pair.run_for(CLOSE_GRACE + Duration::from_millis(100));
        assert_eq!(pair.ended, Some(EndReason::StreamChanged));
        // The browser was told: the new `stream` message, then the channel closed.
        assert!(
            pair.messages[before..]
                .iter()
                .any(|m| m.contains("avc1.640028")),
            "{:?}",
            pair.messages
        );
        assert!(pair.channel_closed, "the data channel was closed");
    }
}
