//! An independent WHEP client (RFC 9725) for the tests: str0m in the client role
//! (a full ICE agent, controlling, one host candidate on 127.0.0.1), an HTTP/1.1
//! exchange on a plain TCP socket, and the received video written as Annex-B for
//! ffmpeg to judge. It shares nothing with the server's `webrtc` module but the
//! str0m crate. Run it only inside a loopback-only namespace ([`super::netns`]).

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// An HTTP response: status, headers (lower-case names) and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// One HTTP/1.1 request on a new connection (`Connection: close`), `Host` the
/// server's address unless `headers` names one; the response read to its end.
pub fn http(
    server: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse, String> {
    let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(5))
        .map_err(|e| format!("connect to {server}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: {server}\r\n"));
    }
    for (key, value) in headers {
        head.push_str(&format!("{key}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    stream
        .write_all(&request)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("{method} {path}: reading the response: {e}"))?;
    parse_response(&response).ok_or_else(|| {
        format!(
            "{method} {path}: not an HTTP response: {:?}",
            String::from_utf8_lossy(&response)
        )
    })
}

/// A whole HTTP/1.1 response (read to the end of the connection).
fn parse_response(response: &[u8]) -> Option<HttpResponse> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let mut body = response[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The payload of a chunked body.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// The video codecs a client offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codecs {
    /// H.264 as browsers offer it: constrained baseline, baseline, main and
    /// High, packetization-mode 1 and 0 (str0m's list).
    H264,
    /// VP8 alone: no codec in common with an H.264 streamer.
    Vp8Only,
    /// Opus audio and no video m-line at all.
    AudioOnly,
}

/// A recvonly offer not yet sent, with the client's UDP socket.
pub struct Offer {
    rtc: Rtc,
    pending: SdpPendingOffer,
    mid: Mid,
    socket: UdpSocket,
    /// The offer's SDP text.
    pub sdp: String,
}

impl Offer {
    /// A recvonly offer with `codecs`, one host candidate on a new
    /// 127.0.0.1 UDP socket, and a data channel when `data_channel`.
    pub fn new(codecs: Codecs, data_channel: bool) -> Offer {
        let config = Rtc::builder().clear_codecs();
        let config = match codecs {
            Codecs::H264 => config.enable_h264(true),
            Codecs::Vp8Only => config.enable_vp8(true),
            Codecs::AudioOnly => config.enable_opus(true, false),
        };
        let kind = match codecs {
            Codecs::AudioOnly => MediaKind::Audio,
            _ => MediaKind::Video,
        };
        let mut rtc = config.build(Instant::now());
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on 127.0.0.1");
        let local = socket.local_addr().expect("local address");
        let candidate = Candidate::host(local, "udp").expect("a host candidate");
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(kind, Direction::RecvOnly, None, None, None);
        if data_channel {
            change.add_channel("events".to_owned());
        }
        let (offer, pending) = change.apply().expect("an offer");
        Offer {
            rtc,
            pending,
            mid,
            socket,
            sdp: offer.to_sdp_string(),
        }
    }

    /// `POST path` with the offer. On `201 Created` with an SDP answer and a
    /// `Location`, a session (not yet connected); otherwise the response.
    pub fn post(self, server: SocketAddr, path: &str) -> Result<Session, PostError> {
        let posted = Instant::now();
        let response = http(
            server,
            "POST",
            path,
            &[("Content-Type", "application/sdp")],
            self.sdp.as_bytes(),
        )
        .map_err(PostError::Http)?;
        if response.status != 201 {
            return Err(PostError::Refused(response));
        }
        let location = response
            .header("location")
            .ok_or_else(|| PostError::Invalid("201 without a Location".into(), response.clone()))?;
        let location = resolve(path, location);
        let content_type = response.header("content-type").unwrap_or_default();
        if !content_type.starts_with("application/sdp") {
            return Err(PostError::Invalid(
                format!("the answer's Content-Type is {content_type:?}"),
                response,
            ));
        }
        let answer = SdpAnswer::from_sdp_string(&response.body).map_err(|e| {
            PostError::Invalid(format!("the answer does not parse: {e}"), response.clone())
        })?;
        let mut rtc = self.rtc;
        rtc.sdp_api()
            .accept_answer(self.pending, answer)
            .map_err(|e| {
                PostError::Invalid(format!("str0m refuses the answer: {e}"), response.clone())
            })?;
        Ok(Session {
            rtc,
            mid: self.mid,
            socket: self.socket,
            location,
            answer: response.body,
            posted,
            buffer: vec![0; 2000],
            connected: false,
            channel_text: Vec::new(),
        })
    }
}

/// Why a POST gave no session.
#[derive(Debug)]
pub enum PostError {
    /// The HTTP exchange failed.
    Http(String),
    /// The server answered something other than 201.
    Refused(HttpResponse),
    /// A 201 that is not a usable answer.
    Invalid(String, HttpResponse),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::Http(why) => write!(f, "{why}"),
            PostError::Refused(r) => write!(f, "POST answered {}: {}", r.status, r.body.trim()),
            PostError::Invalid(why, r) => write!(f, "{why}; the answer:\n{}", r.body),
        }
    }
}

/// A WHEP session: the answer taken, the connection driven by [`Session::receive`].
pub struct Session {
    rtc: Rtc,
    mid: Mid,
    socket: UdpSocket,
    /// The `Location` header: the session's resource.
    pub location: String,
    /// The answer's SDP text.
    pub answer: String,
    /// When the offer was posted.
    pub posted: Instant,
    buffer: Vec<u8>,
    /// ICE and DTLS are up.
    pub connected: bool,
    /// Text messages received on the data channel.
    pub channel_text: Vec<String>,
}

/// Video received in a session.
#[derive(Debug, Default)]
pub struct Video {
    /// The depacketized access units, as Annex-B (str0m writes start codes).
    pub data: Vec<u8>,
    /// How many access units (str0m `MediaData` events).
    pub frames: usize,
    /// From the POST to the first access unit.
    pub first_frame_after: Option<Duration>,
    /// Access units str0m marked as not contiguous with the one before.
    pub discontinuities: usize,
    /// The RTP timestamps (90 kHz) of the access units, in order.
    pub rtp_times: Vec<u64>,
    /// The payload types the units came with.
    pub payload_types: Vec<u8>,
}

impl Session {
    /// Drives the connection until `frames` access units arrived (appended to
    /// `video`) or `timeout` passed.
    pub fn receive(
        &mut self,
        video: &mut Video,
        frames: usize,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let target = video.frames + frames;
        while video.frames < target {
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} of {target} frames within {timeout:?} (ICE/DTLS connected: {})",
                    video.frames, self.connected
                ));
            }
            self.step(deadline, Some(video))?;
        }
        Ok(())
    }

    /// Drives the connection for `duration`; returns how many access units came.
    pub fn idle(&mut self, duration: Duration) -> Result<usize, String> {
        let deadline = Instant::now() + duration;
        let mut video = Video::default();
        while Instant::now() < deadline {
            self.step(deadline, Some(&mut video))?;
        }
        Ok(video.frames)
    }

    /// Sends a PLI (picture loss: please send a keyframe) for the video.
    pub fn request_keyframe(&mut self) -> Result<(), String> {
        let mut writer = self
            .rtc
            .writer(self.mid)
            .ok_or("no writer for the video's mid")?;
        writer
            .request_keyframe(None, KeyframeRequestKind::Pli)
            .map_err(|e| format!("cannot send a PLI: {e}"))?;
        self.drain(None).map(|_| ())
    }

    /// `DELETE` of the session's resource.
    pub fn delete(&self, server: SocketAddr) -> Result<HttpResponse, String> {
        http(server, "DELETE", &self.location, &[], &[])
    }

    /// Polls str0m until it wants to wait; returns the time it wants waking at.
    fn drain(&mut self, mut video: Option<&mut Video>) -> Result<Instant, String> {
        loop {
            match self.rtc.poll_output().map_err(|e| format!("str0m: {e}"))? {
                Output::Timeout(at) => return Ok(at),
                Output::Transmit(transmit) => {
                    self.socket
                        .send_to(&transmit.contents, transmit.destination)
                        .map_err(|e| format!("send to {}: {e}", transmit.destination))?;
                }
                Output::Event(event) => match event {
                    Event::Connected => self.connected = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err("ICE disconnected".into());
                    }
                    Event::MediaData(data) => {
                        if let Some(video) = video.as_deref_mut() {
                            if video.frames == 0 {
                                video.first_frame_after = Some(self.posted.elapsed());
                            }
                            video.frames += 1;
                            if !data.contiguous {
                                video.discontinuities += 1;
                            }
                            video.rtp_times.push(data.time.numer());
                            video.payload_types.push(*data.pt);
                            video.data.extend_from_slice(&data.data);
                        }
                    }
                    Event::ChannelData(data) if !data.binary => {
                        self.channel_text
                            .push(String::from_utf8_lossy(&data.data).into_owned());
                    }
                    _ => {}
                },
            }
        }
    }

    /// One turn: drain str0m, wait for a datagram or its timeout (at most until
    /// `deadline`), feed it.
    fn step(&mut self, deadline: Instant, video: Option<&mut Video>) -> Result<(), String> {
        let wake = self.drain(video)?;
        let now = Instant::now();
        let wait = wake
            .min(deadline)
            .saturating_duration_since(now)
            .max(Duration::from_millis(1));
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|e| e.to_string())?;
        self.buffer.resize(2000, 0);
        let input = match self.socket.recv_from(&mut self.buffer) {
            Ok((n, source)) => {
                let contents = self.buffer[..n]
                    .try_into()
                    .map_err(|e| format!("a datagram str0m cannot take: {e:?}"))?;
                Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Udp,
                        source,
                        destination: self.socket.local_addr().map_err(|e| e.to_string())?,
                        contents,
                    },
                )
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Input::Timeout(Instant::now())
            }
            Err(e) => return Err(format!("UDP receive: {e}")),
        };
        self.rtc
            .handle_input(input)
            .map_err(|e| format!("str0m: {e}"))
    }
}

/// The `profile-level-id`s of the H.264 formats an SDP lists (lower case).
pub fn profile_level_ids(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter(|line| line.starts_with("a=fmtp:"))
        .filter_map(|line| {
            line.split([';', ' '])
                .find_map(|p| p.trim().strip_prefix("profile-level-id="))
                .map(str::to_ascii_lowercase)
        })
        .collect()
}

/// The `address port` of each `a=candidate` line of an SDP.
pub fn candidates(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|line| line.strip_prefix("a=candidate:"))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(format!("{} {}", fields.get(4)?, fields.get(5)?))
        })
        .collect()
}

/// What [`watch`] saw.
pub struct Watched {
    /// The video received.
    pub video: Video,
    /// The SDP answer.
    pub answer: String,
    /// Frames ffprobe decoded, and their size.
    pub decoded: u64,
    pub width: u32,
    pub height: u32,
}

/// A WHEP viewer from start to end: posts an H.264 offer to `server`, receives
/// `frames` access units within `timeout`, writes them to `save` (Annex-B) and
/// deletes the session; errors as text for a check's message.
pub fn watch(
    server: SocketAddr,
    frames: usize,
    timeout: Duration,
    save: &std::path::Path,
) -> Result<Watched, String> {
    let mut session = Offer::new(Codecs::H264, false)
        .post(server, "/whep")
        .map_err(|e| e.to_string())?;
    let mut video = Video::default();
    let received = session.receive(&mut video, frames, timeout);
    let deleted = session.delete(server);
    received?;
    std::fs::write(save, &video.data).map_err(|e| format!("{}: {e}", save.display()))?;
    let (decoded, width, height) = super::ffprobe_frames(save);
    let deleted = deleted?;
    if deleted.status != 200 {
        return Err(format!(
            "DELETE {} answered {}: {}",
            session.location, deleted.status, deleted.body
        ));
    }
    Ok(Watched {
        video,
        answer: session.answer,
        decoded,
        width,
        height,
    })
}

/// A `Location` resolved against the path of the request it answered (RFC 3986
/// 5.2 for a path-only base): absolute paths as they are, relative ones in the
/// request's folder.
pub fn resolve(request_path: &str, location: &str) -> String {
    if location.starts_with('/') {
        return location.to_owned();
    }
    let folder = &request_path[..request_path.rfind('/').map_or(0, |i| i + 1)];
    format!("{folder}{location}")
}
