//! The I/O shell around [`super::session`]: the TCP listener, one task per
//! connection, the UDP sockets for clients that take RTP over UDP, and the hub
//! viewer of each session that plays.
//!
//! A connection task reads the client's bytes into its [`Connection`], writes
//! what it answers, and while the session plays turns the viewer's hub items into
//! RTP (interleaved in the connection, or datagrams from the RTP port) and sends
//! a sender report every [`SENDER_REPORT_INTERVAL`]. Datagrams arriving on the
//! UDP ports are routed to the session by their source address (the client's
//! ports from its SETUP). A write that makes no progress for
//! [`WRITE_STALL_TIMEOUT`] ends the connection: a client that stops reading is
//! skipped to the next keyframe by the hub meanwhile (its queue is bounded), then
//! dropped.
//!
//! With a password ([`Access`]), the session answers who may do what; the shell
//! gives it the peer's address (the brake's key), counts a connection as having
//! made its first request (no longer closed to make room) only once it is
//! authorized, and runs the first check of a hashed password off the async
//! workers (see [`Rtsp::receive`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};

use super::session::{Connection, Description, Host, Output, Refused, Settings, Transport};
use crate::access::{Access, PasswordState};
use crate::config::RtspConfig;
use crate::hub::{Frame, Hub, Item, Transport as ViewerTransport, Viewer};
use crate::listen::{out_of_resources, RateLimitedLog, ACCEPT_ERROR_PAUSE};
use crate::rtp::packetizer::{Payloads, DEFAULT_MAX_PAYLOAD};
use crate::rtp::rtcp::SENDER_REPORT_INTERVAL;

/// A connection whose writes make no progress for this long is closed.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 8 * 1024;
/// Hub items taken at a time.
const ITEMS_AT_ONCE: usize = 16;
/// Most bytes of a datagram read from the UDP ports (RTCP is small).
const MAX_DATAGRAM: usize = 2048;
/// How long a client's first DESCRIBE waits for the stream's parameters
/// (see [`Rtsp::wait_for_video`]) before DESCRIBE answers 503.
pub const STREAM_WAIT: Duration = Duration::from_secs(5);
/// Frames whose RTP payloads are kept for the clients to share.
const PAYLOAD_CACHE_FRAMES: usize = 8;

/// A connection's place among all the server's connections (the web server's
/// budget of files and per-address places, shared with RTSP).
pub trait Place: Send + Sync {
    /// The connection sent a request: it is no longer closed to make room.
    fn requested(&self);
    /// Completes when the connection is to be closed to make room for another.
    fn closed_for_room(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

/// Who may open a connection, and how its socket is set up (the web server's
/// policy, so that RTSP and HTTP connections are treated alike).
pub trait Admission: Send + Sync {
    /// A place for a connection from `address`, or `None` when it is over a limit.
    fn admit(&self, address: IpAddr) -> Option<Box<dyn Place>>;
    /// Sets an admitted connection's socket options (no Nagle delay, a bounded
    /// send buffer so that a slow client falls behind in the hub rather than in
    /// the kernel, a bound on unacknowledged data).
    fn tune(&self, stream: &TcpStream);
}

/// Why RTSP could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TCP port could not be bound.
    #[error("cannot use TCP port {port} on {ip} for RTSP: {source} (rtsp.port)")]
    Tcp {
        /// The address.
        ip: IpAddr,
        /// The port.
        port: u16,
        /// Why.
        source: io::Error,
    },
    /// The UDP ports could not be bound.
    #[error("cannot use UDP ports {port} and {} on {ip} for RTSP: {source} (rtsp.udp_port)", port.saturating_add(1))]
    Udp {
        /// The address.
        ip: IpAddr,
        /// The RTP port.
        port: u16,
        /// Why.
        source: io::Error,
    },
}

/// The running RTSP server. Cheap to clone.
#[derive(Clone)]
pub struct Rtsp {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    access: Arc<Access>,
    port: u16,
    settings: Settings,
    udp: Option<UdpPorts>,
    routes: Mutex<HashMap<SocketAddr, mpsc::Sender<Inbound>>>,
    /// The latest frames' RTP payloads, by hub sequence number.
    payloads: Mutex<VecDeque<(u64, Arc<Payloads>)>>,
    stop: watch::Sender<bool>,
}

struct UdpPorts {
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    ipv6: bool,
}

impl Rtsp {
    /// Binds the TCP port (and the UDP pair) on `bind` and starts serving,
    /// admitting connections through `admission`, serving those `access` lets in.
    pub async fn start(
        config: &RtspConfig,
        bind: IpAddr,
        hub: Hub,
        admission: Arc<dyn Admission>,
        access: Arc<Access>,
    ) -> Result<Rtsp, StartError> {
        let listener = TcpListener::bind((bind, config.port))
            .await
            .map_err(|source| StartError::Tcp {
                ip: bind,
                port: config.port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(config.port);
        let udp = bind_pair(bind, config.udp_port)
            .await
            .map_err(|source| StartError::Udp {
                ip: bind,
                port: config.udp_port,
                source,
            })?;
        let settings = Settings {
            session_timeout: Duration::from_secs(u64::from(config.session_timeout_s)),
            udp_rtp_port: Some(udp.rtp.local_addr().map(|a| a.port()).unwrap_or(0)),
            max_payload: DEFAULT_MAX_PAYLOAD,
        };
        let (stop, _) = watch::channel(false);
        let rtsp = Rtsp {
            inner: Arc::new(Inner {
                hub,
                access,
                port,
                settings,
                udp: Some(udp),
                routes: Mutex::new(HashMap::new()),
                payloads: Mutex::new(VecDeque::new()),
                stop,
            }),
        };
        if let Some(udp) = &rtsp.inner.udp {
            tokio::spawn(rtsp.clone().read_udp(udp.rtp.clone(), false));
            tokio::spawn(rtsp.clone().read_udp(udp.rtcp.clone(), true));
        }
        tokio::spawn(rtsp.clone().accept_loop(listener, admission));
        tracing::info!(
            port,
            udp_port = ?rtsp.udp_port(),
            "RTSP on rtsp://HOST:{port}{}",
            super::session::PATH
        );
        Ok(rtsp)
    }

    /// The TCP port in use.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The UDP port RTP leaves from (RTCP: the next), when UDP is offered.
    pub fn udp_port(&self) -> Option<u16> {
        self.inner.settings.udp_rtp_port
    }

    /// Stops accepting and ends every connection.
    pub fn stop(&self) {
        let _ = self.inner.stop.send(true);
    }

    fn routes(&self) -> MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Inbound>>> {
        self.inner
            .routes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn accept_loop(self, listener: TcpListener, admission: Arc<dyn Admission>) {
        let mut stop = self.inner.stop.subscribe();
        let mut accept_errors = RateLimitedLog::new();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                accepted = listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) if out_of_resources(&error) => {
                    if let Some(held_back) = accept_errors.due() {
                        tracing::warn!(%error, held_back, "cannot accept RTSP connections; retrying");
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "RTSP accept failed");
                    continue;
                }
            };
            let Some(place) = admission.admit(peer.ip()) else {
                tracing::debug!(%peer, "RTSP connection refused: too many open");
                let _ = stream.try_write(
                    b"RTSP/1.0 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n",
                );
                continue;
            };
            admission.tune(&stream);
            tokio::spawn(self.clone().serve(stream, peer, place));
        }
    }

    /// Reads one UDP port, handing what a session's client sends to it.
    async fn read_udp(self, socket: Arc<UdpSocket>, rtcp: bool) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            match socket.recv_from(&mut buf).await {
                Ok((n, source)) => {
                    let source = canonical(source);
                    let inbox = self.routes().get(&source).cloned();
                    if let Some(inbox) = inbox {
                        // A full inbox: the session is behind; RTCP is lossy anyway.
                        let _ = inbox.try_send(Inbound {
                            rtcp,
                            data: Bytes::copy_from_slice(&buf[..n]),
                        });
                    }
                }
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionRefused
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(error) => {
                    tracing::error!(%error, "an RTSP UDP socket failed; UDP clients stop");
                    return;
                }
            }
        }
    }

    async fn serve(self, stream: TcpStream, peer: SocketAddr, place: Box<dyn Place>) {
        let local = stream.local_addr().unwrap_or(peer);
        let now = Instant::now();
        let mut connection = Connection::new(
            self.inner.settings,
            self.inner.access.clone(),
            local,
            peer,
            now,
        );
        let mut host = HubHost {
            hub: self.inner.hub.clone(),
            remote: peer,
            viewer: None,
        };
        let (inbox_tx, mut inbox) = mpsc::channel::<Inbound>(32);
        let mut routed: Vec<SocketAddr> = Vec::new();
        let mut stop = self.inner.stop.subscribe();
        let (mut reader, mut writer) = stream.into_split();
        let mut buf = vec![0u8; READ_CHUNK];
        let mut items: Vec<Item> = Vec::new();
        let mut requested = false;
        let mut reports = tokio::time::interval(SENDER_REPORT_INTERVAL);
        reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let why = loop {
            let deadline = connection.deadline();
            let playing = connection.playing() && host.viewer.is_some();
            let outputs = tokio::select! {
                () = stopped(&mut stop) => break "the server is stopping",
                _ = place.closed_for_room(), if !requested => break "closed to make room",
                read = reader.read(&mut buf) => match read {
                    Ok(0) => break "closed by the client",
                    Ok(n) => {
                        let mut out = self.receive(&mut connection, &buf[..n], &mut host);
                        if connection.waiting_for_video() {
                            self.wait_for_video(peer).await;
                            out.extend(connection.resume(Instant::now(), &mut host));
                        }
                        out
                    }
                    Err(_) => break "the connection failed",
                },
                more = receive(host.viewer.as_ref(), &mut items), if playing => {
                    if !more {
                        break "the server is stopping";
                    }
                    let mut out = Vec::new();
                    let mut cut = |frame: &Frame| self.payloads(frame);
                    for item in items.drain(..) {
                        if let (Item::Frame(frame), Some(viewer)) = (&item, host.viewer.as_ref()) {
                            viewer.record_sent(frame.data.len());
                        }
                        out.extend(connection.item(&item, &mut cut));
                    }
                    out
                }
                Some(inbound) = inbox.recv() => {
                    if inbound.rtcp {
                        connection.rtcp_datagram(&inbound.data, Instant::now(), &mut host);
                    } else {
                        // On the RTP port (a client opening its NAT): alive, no more.
                        connection.sign_of_life(Instant::now());
                    }
                    Vec::new()
                }
                _ = reports.tick(), if playing => {
                    connection.sender_report(SystemTime::now()).into_iter().collect()
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    connection.poll_timeout(Instant::now(), &mut host);
                    Vec::new()
                }
            };
            if !requested && connection.authorized() {
                // Only now a client of the camera, not a stranger holding a place.
                requested = true;
                place.requested();
                if let Some(scheme) = connection.authorized_with() {
                    tracing::debug!(%peer, scheme, "RTSP client logged in");
                }
            }
            self.update_routes(&connection, &inbox_tx, &mut routed);
            if let Err(why) = self.send(&mut writer, outputs).await {
                break why;
            }
            if let Some(end) = connection.end() {
                tracing::debug!(%peer, ?end, "RTSP connection ends");
                break "ended";
            }
        };
        connection.closed(&mut host);
        self.update_routes(&connection, &inbox_tx, &mut routed);
        let _ = writer.shutdown().await;
        tracing::debug!(%peer, reason = why, "RTSP connection closed");
    }

    /// [`Connection::receive`], which on a connection not yet authorized may
    /// check a hashed password for the first time: Argon2, tens to hundreds of
    /// milliseconds of CPU on a Pi. On a multi-threaded runtime (the streamer's)
    /// that runs under [`tokio::task::block_in_place`], so the worker's other
    /// tasks move to another thread meanwhile; on a current-thread runtime it
    /// runs in place. A plain password, or a connection already authorized, is
    /// quick and takes the plain path.
    fn receive(
        &self,
        connection: &mut Connection,
        bytes: &[u8],
        host: &mut HubHost,
    ) -> Vec<Output> {
        let slow = !connection.authorized()
            && self.inner.access.password_state() == PasswordState::Hashed
            && tokio::runtime::Handle::current().runtime_flavor()
                == tokio::runtime::RuntimeFlavor::MultiThread;
        if slow {
            tokio::task::block_in_place(|| connection.receive(bytes, Instant::now(), host))
        } else {
            connection.receive(bytes, Instant::now(), host)
        }
    }

    /// The RTP payloads of `frame`, cut once for every client: the latest few
    /// frames' are kept, so clients at the live edge share them and one behind
    /// cuts its own.
    fn payloads(&self, frame: &Frame) -> Arc<Payloads> {
        let mut cache = self
            .inner
            .payloads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, payloads)) = cache.iter().find(|(seq, _)| *seq == frame.seq) {
            return payloads.clone();
        }
        let payloads = Arc::new(Payloads::new(&frame.data, self.inner.settings.max_payload));
        if cache.len() == PAYLOAD_CACHE_FRAMES {
            cache.pop_front();
        }
        cache.push_back((frame.seq, payloads.clone()));
        payloads
    }

    /// While an authorized client's first DESCRIBE is held because the
    /// stream's parameters are not known yet (a camera that starts on demand, or
    /// is starting): takes a viewer place for a moment, which starts an on-demand
    /// camera, and waits up to [`STREAM_WAIT`] for them, so that DESCRIBE can
    /// answer. The camera then stays on for its grace time, long enough for the
    /// client's SETUP and PLAY.
    async fn wait_for_video(&self, peer: SocketAddr) {
        let hub = &self.inner.hub;
        if hub.stream_info().is_some() {
            return;
        }
        let _starting = hub.subscribe(Some(peer), ViewerTransport::Rtsp);
        let _ = hub.stream_info_within(STREAM_WAIT).await;
    }

    /// Routes datagrams from the session's client ports to this connection (and
    /// no longer from ports it gave up).
    fn update_routes(
        &self,
        connection: &Connection,
        inbox: &mpsc::Sender<Inbound>,
        routed: &mut Vec<SocketAddr>,
    ) {
        let wanted: Vec<SocketAddr> = match connection.transport() {
            Some(Transport::Udp { rtp, rtcp }) => vec![canonical(rtp), canonical(rtcp)],
            _ => Vec::new(),
        };
        if wanted == *routed {
            return;
        }
        let mut routes = self.routes();
        for old in routed.drain(..) {
            if routes.get(&old).is_some_and(|s| s.same_channel(inbox)) {
                routes.remove(&old);
            }
        }
        for address in &wanted {
            routes.insert(*address, inbox.clone());
        }
        *routed = wanted;
    }

    async fn send(
        &self,
        writer: &mut tokio::net::tcp::OwnedWriteHalf,
        outputs: Vec<Output>,
    ) -> Result<(), &'static str> {
        for output in outputs {
            match output {
                Output::Write(bytes) => {
                    match tokio::time::timeout(WRITE_STALL_TIMEOUT, writer.write_all(&bytes)).await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Err("the connection failed"),
                        Err(_) => return Err("the client stopped reading"),
                    }
                }
                Output::Rtp(to, packet) => {
                    if let Some(udp) = &self.inner.udp {
                        send_datagram(&udp.rtp, udp.ipv6, to, &packet).await;
                    }
                }
                Output::Rtcp(to, packet) => {
                    if let Some(udp) = &self.inner.udp {
                        send_datagram(&udp.rtcp, udp.ipv6, to, &packet).await;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Completes when the server stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn receive(viewer: Option<&Viewer>, items: &mut Vec<Item>) -> bool {
    match viewer {
        Some(viewer) => viewer.recv(items, ITEMS_AT_ONCE).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// A datagram from a session's client.
struct Inbound {
    /// It came to the RTCP port (else the RTP port).
    rtcp: bool,
    data: Bytes,
}

/// The session's way to the hub.
struct HubHost {
    hub: Hub,
    remote: SocketAddr,
    viewer: Option<Viewer>,
}

impl Host for HubHost {
    fn description(&self) -> Option<Description> {
        let stream = self.hub.stream_info()?;
        let (sps, pps) = self.hub.parameter_sets()?;
        Some(Description { stream, sps, pps })
    }

    fn play(&mut self) -> Result<(), Refused> {
        let viewer = self
            .hub
            .subscribe(Some(self.remote), ViewerTransport::Rtsp)
            .map_err(|error| Refused {
                reason: error.to_string(),
            })?;
        self.viewer = Some(viewer);
        Ok(())
    }

    fn stop(&mut self) {
        self.viewer = None;
    }

    fn random(&mut self) -> u64 {
        let mut bytes = [0u8; 8];
        if getrandom::fill(&mut bytes).is_err() {
            // No entropy source: still unique per session, if predictable.
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos() as u64;
            bytes = (nanos ^ u64::from(self.remote.port()).rotate_left(40)).to_be_bytes();
        }
        u64::from_be_bytes(bytes)
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address (routes are keyed so).
fn canonical(address: SocketAddr) -> SocketAddr {
    SocketAddr::new(address.ip().to_canonical(), address.port())
}

async fn send_datagram(socket: &UdpSocket, ipv6: bool, to: SocketAddr, packet: &[u8]) {
    let to = match to {
        SocketAddr::V4(v4) if ipv6 => {
            SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
        }
        SocketAddr::V6(v6) if !ipv6 => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => return,
        },
        other => other,
    };
    if let Err(error) = socket.send_to(packet, to).await {
        tracing::trace!(%error, %to, "cannot send an RTSP datagram");
    }
}

/// Binds the RTP port (even) and the RTCP port after it; with `port` 0, the
/// first free pair the kernel gives.
async fn bind_pair(ip: IpAddr, port: u16) -> io::Result<UdpPorts> {
    let ipv6 = ip.is_ipv6();
    if port != 0 {
        let rtp = UdpSocket::bind((ip, port)).await?;
        let rtcp = UdpSocket::bind((ip, port.saturating_add(1))).await?;
        return Ok(UdpPorts {
            rtp: Arc::new(rtp),
            rtcp: Arc::new(rtcp),
            ipv6,
        });
    }
    let mut last_error = io::Error::new(io::ErrorKind::AddrInUse, "no free pair of UDP ports");
    for _ in 0..64 {
        let rtp = UdpSocket::bind((ip, 0)).await?;
        let rtp_port = rtp.local_addr()?.port();
        if rtp_port % 2 != 0 || rtp_port == u16::MAX {
            continue;
        }
        match UdpSocket::bind((ip, rtp_port + 1)).await {
            Ok(rtcp) => {
                return Ok(UdpPorts {
                    rtp: Arc::new(rtp),
                    rtcp: Arc::new(rtcp),
                    ipv6,
                })
            }
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}
