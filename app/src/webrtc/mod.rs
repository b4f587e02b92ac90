//! WebRTC output through WHEP (RFC 9725): the lowest-delay way to watch, in every
//! current browser (iOS Safari included) and over plain `http://`.
//!
//! - [`whep`]: the HTTP side, `POST /whep` (offer in, answer out), `DELETE` of
//!   the session, `OPTIONS`; mounted by [`crate::web`] behind its guard.
//! - [`offer`]: what an offer asks for, and the H.264 payload type the stream can
//!   be sent as (its real profile-level-id), or why none.
//! - [`peer`]: one viewer, sans-IO: str0m's `Rtc` (ICE-lite, DTLS, SRTP, RTP
//!   packetization) fed with hub items.
//! - [`demux`]: which session a datagram on the one UDP port belongs to.
//! - [`udp`]: the I/O shell: the socket, its reader and one task per session.
//!
//! Data flow: the hub gives each WebRTC viewer the same [`crate::hub::Item`]s as a
//! WebSocket viewer (a [`crate::hub::Viewer`] of transport `webrtc`, counted
//! against `server.max_viewers`); its task writes the frames into its `Peer`,
//! which packetizes and encrypts them; datagrams leave through the one socket.
//! Datagrams arriving on the socket are routed by [`demux`] to the session's
//! task. A browser's PLI/FIR becomes a (rate-limited) keyframe request to the
//! source through the hub.

pub mod demux;
pub mod offer;
pub mod peer;
pub mod udp;
pub mod whep;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};

use crate::config::{split_announce, WebRtcConfig};
use crate::hub::{Hub, SubscribeError, Transport};
use demux::Routes;
use peer::{AnswerError, Peer, PeerSettings};

/// How long `POST /whep` waits for the first video of a camera that is starting
/// (`camera.on_demand`: the viewer starts it) before answering 503.
pub const STREAM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the WebRTC output could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The UDP port could not be bound.
    #[error("cannot use UDP port {port} on {ip} for WebRTC: {source} (webrtc.udp_port)")]
    Bind {
        /// The address.
        ip: IpAddr,
        /// The port.
        port: u16,
        /// Why.
        source: std::io::Error,
    },
    /// No DTLS certificate could be made.
    #[error("cannot make the DTLS certificate for WebRTC")]
    Certificate,
}

/// Why a WHEP session could not be opened; each maps to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The offer cannot be served (400 or 422, see [`offer::OfferError`]).
    #[error(transparent)]
    Answer(#[from] AnswerError),
    /// No viewer place (503 or 429).
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    /// No video yet: the stream's parameters are unknown (503).
    #[error("no video yet: the camera has sent nothing for 5 s since this viewer came; try again in a moment")]
    NoVideo,
    /// No address to offer the browser (503).
    #[error("no address to offer for WebRTC (check webrtc.announce and server.bind)")]
    NoAddress,
}

/// An opened session: its resource id and the SDP answer.
#[derive(Debug)]
pub struct Opened {
    /// The id in `/whep/<id>`.
    pub id: String,
    /// The SDP answer.
    pub answer: String,
}

/// The WebRTC output: its socket, its sessions. Cheap to clone.
#[derive(Clone)]
pub struct WebRtc {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    socket: Arc<UdpSocket>,
    bind: IpAddr,
    port: u16,
    announce: Vec<String>,
    settings: PeerSettings,
    sessions: Mutex<Sessions>,
}

struct Session {
    number: u64,
    cancel: Arc<Notify>,
}

#[derive(Default)]
struct Sessions {
    next_number: u64,
    by_id: HashMap<String, Session>,
    inboxes: HashMap<u64, mpsc::Sender<udp::Inbound>>,
    routes: Routes<u64>,
}

impl WebRtc {
    /// Binds the UDP port and starts reading it. `bind` is `server.bind`; `server`
    /// and `config_errors` are what `hello` says.
    pub fn start(
        config: &WebRtcConfig,
        bind: IpAddr,
        hub: Hub,
        server: String,
        config_errors: Vec<String>,
    ) -> Result<WebRtc, StartError> {
        let socket = udp::bind(bind, config.udp_port).map_err(|source| StartError::Bind {
            ip: bind,
            port: config.udp_port,
            source,
        })?;
        let port = socket
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.udp_port);
        let settings =
            PeerSettings::new(Vec::new(), server, config_errors).ok_or(StartError::Certificate)?;
        let socket = Arc::new(socket);
        let webrtc = WebRtc {
            inner: Arc::new(Inner {
                hub,
                socket: socket.clone(),
                bind,
                port,
                announce: config.announce.clone(),
                settings,
                sessions: Mutex::new(Sessions::default()),
            }),
        };
        let router = webrtc.clone();
        tokio::spawn(udp::read_loop(socket, move |inbound| router.route(inbound)));
        tracing::info!(port, announce = ?config.announce, "WebRTC (WHEP) on UDP");
        Ok(webrtc)
    }

    /// The UDP port in use.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// WHEP sessions open now.
    pub fn session_count(&self) -> usize {
        self.sessions().by_id.len()
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn route(&self, inbound: udp::Inbound) {
        let mut sessions = self.sessions();
        let Some(number) = sessions.routes.route(inbound.source, &inbound.data) else {
            return;
        };
        if let Some(inbox) = sessions.inboxes.get(&number) {
            // A full inbox: the session is behind; drop (RTP and RTCP recover).
            let _ = inbox.try_send(inbound);
        }
    }

    /// The host candidates to answer with: `webrtc.announce` when set (names
    /// looked up now), else the addresses `server.bind` covers.
    async fn candidates(&self) -> Vec<SocketAddr> {
        let port = self.inner.port;
        if !self.inner.announce.is_empty() {
            let mut out = Vec::new();
            for entry in &self.inner.announce {
                let Ok((host, announced_port)) = split_announce(entry) else {
                    continue;
                };
                let port = announced_port.unwrap_or(port);
                match host.parse::<IpAddr>() {
                    Ok(ip) => out.push(SocketAddr::new(ip, port)),
                    Err(_) => match tokio::net::lookup_host((host, port)).await {
                        Ok(found) => out.extend(found),
                        Err(error) => {
                            tracing::warn!(name = host, %error, "cannot look up a webrtc.announce name")
                        }
                    },
                }
            }
            out.dedup();
            return out;
        }
        bound_addresses(self.inner.bind, &crate::netif::addresses())
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect()
    }

    /// Opens a session for `offer` from `remote`: a viewer place, the answer, and
    /// the session's task.
    pub async fn open(&self, offer: &str, remote: SocketAddr) -> Result<Opened, OpenError> {
        let hub = &self.inner.hub;
        // The viewer place first: with `camera.on_demand` it starts the camera.
        let viewer = hub.subscribe(Some(remote), Transport::WebRtc)?;
        let stream = self.stream_info().await.ok_or(OpenError::NoVideo)?;
        let candidates = self.candidates().await;
        if candidates.is_empty() {
            return Err(OpenError::NoAddress);
        }
        let mut settings = self.inner.settings.clone();
        settings.candidates = candidates;
        let (mut peer, answer) = Peer::answer(
            offer,
            &stream,
            &settings,
            std::time::Instant::now(),
            random_u32(),
        )?;
        let ufrag = peer.ufrag();
        let id = random_id();
        let cancel = Arc::new(Notify::new());
        let (inbox_tx, inbox_rx) = mpsc::channel(udp::INBOX_DATAGRAMS);
        let number = {
            let mut sessions = self.sessions();
            let number = sessions.next_number;
            sessions.next_number += 1;
            sessions.routes.add(number, &ufrag);
            sessions.inboxes.insert(number, inbox_tx);
            sessions.by_id.insert(
                id.clone(),
                Session {
                    number,
                    cancel: cancel.clone(),
                },
            );
            number
        };
        let viewer_id = viewer.id();
        tracing::info!(viewer = viewer_id, session = %id, %remote, "WHEP session opened");
        let this = self.clone();
        let session_id = id.clone();
        let socket = self.inner.socket.clone();
        tokio::spawn(async move {
            let reason = udp::run_session(peer, viewer, inbox_rx, cancel, socket).await;
            this.forget(&session_id, number);
            tracing::info!(viewer = viewer_id, session = %session_id, reason = %reason, "WHEP session ended");
        });
        Ok(Opened { id, answer })
    }

    fn forget(&self, id: &str, number: u64) {
        let mut sessions = self.sessions();
        if sessions.by_id.get(id).is_some_and(|s| s.number == number) {
            sessions.by_id.remove(id);
        }
        sessions.inboxes.remove(&number);
        sessions.routes.remove(number);
    }

    /// The stream's parameters, waiting up to [`STREAM_WAIT`] for a camera that
    /// is starting (on demand, or after a restart) to send them.
    async fn stream_info(&self) -> Option<crate::hub::StreamInfo> {
        self.inner.hub.stream_info_within(STREAM_WAIT).await
    }

    /// Ends the session `id` (`DELETE /whep/<id>`); false when there is none.
    pub fn close(&self, id: &str) -> bool {
        let mut sessions = self.sessions();
        match sessions.by_id.remove(id) {
            Some(session) => {
                session.cancel.notify_one();
                true
            }
            None => false,
        }
    }
}

/// The addresses a socket bound to `bind` is reached at: `bind` itself, or for
/// "::" every interface address (and for "0.0.0.0" every IPv4 one), leaving out
/// loopback and link-local addresses unless nothing else is left.
pub fn bound_addresses(bind: IpAddr, interfaces: &[IpAddr]) -> Vec<IpAddr> {
    if !bind.is_unspecified() {
        return vec![bind];
    }
    let family_ok = |ip: &IpAddr| bind.is_ipv6() || ip.is_ipv4();
    let usable = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
        // Link-local IPv6 needs a scope id a candidate cannot carry.
        IpAddr::V6(v6) => !v6.is_loopback() && (v6.segments()[0] & 0xffc0) != 0xfe80,
    };
    let mut out: Vec<IpAddr> = interfaces
        .iter()
        .filter(|ip| family_ok(ip) && usable(ip))
        .copied()
        .collect();
    if out.is_empty() {
        out = interfaces
            .iter()
            .filter(|ip| family_ok(ip) && ip.is_loopback())
            .copied()
            .collect();
    }
    out.dedup();
    out
}

/// Random bytes from the kernel (all zero should it fail, which it does not on
/// Linux after boot).
fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    if let Err(error) = getrandom::fill(&mut bytes) {
        tracing::warn!(%error, "no random numbers from the kernel");
    }
    bytes
}

fn random_u32() -> u32 {
    u32::from_be_bytes(random_bytes::<4>())
}

/// A session resource id: 128 random bits as hex.
fn random_id() -> String {
    random_bytes::<16>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn the_bound_address_decides_the_candidates() {
        let interfaces = ips(&[
            "127.0.0.1",
            "192.168.1.20",
            "::1",
            "fe80::1",
            "2001:db8::20",
            "169.254.3.4",
        ]);
        assert_eq!(
            bound_addresses("::".parse().unwrap(), &interfaces),
            ips(&["192.168.1.20", "2001:db8::20"])
        );
        assert_eq!(
            bound_addresses("0.0.0.0".parse().unwrap(), &interfaces),
            ips(&["192.168.1.20"])
        );
        assert_eq!(
            bound_addresses("192.168.1.20".parse().unwrap(), &interfaces),
            ips(&["192.168.1.20"])
        );
        // Only loopback (a test namespace): loopback it is.
        assert_eq!(
            bound_addresses("::".parse().unwrap(), &ips(&["127.0.0.1", "::1"])),
            ips(&["127.0.0.1", "::1"])
        );
    }

    #[test]
    fn session_ids_are_random_hex() {
        let a = random_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_id());
    }
}
