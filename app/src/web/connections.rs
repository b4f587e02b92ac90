//! Every TCP connection the web server takes: the accept loop, who is let in, and
//! the timers that close what a client leaves hanging. RTSP connections take
//! their places from the same [`Connections`] (through
//! [`crate::rtsp::server::Admission`]), with their own timers.
//!
//! - **Admission** ([`Connections`]): at most [`ConnectionLimits::per_address`]
//!   connections from one IP address and [`ConnectionLimits::total`] in all, the
//!   total computed from the process's open-file limit
//!   ([`ConnectionLimits::from_file_limit`]) so that connections can never use the
//!   files the camera, the encoder and the log need. A connection holds its place
//!   from `accept` until its socket is closed (a WebSocket viewer keeps it while
//!   it watches). One over a limit is accepted and closed at once with a short 503
//!   (never left in the backlog); when all places are taken, the oldest connection
//!   that has not yet sent a request is closed to make room, so idle or half-open
//!   connections cannot keep a real client out.
//! - **Timers**: a request's head must arrive within [`HEADER_TIMEOUT`] of the
//!   connection's start or of the previous response (hyper's header-read timer,
//!   which is also the keep-alive idle timer), in at most [`MAX_HEAD_BYTES`]; a
//!   request body is limited to [`MAX_BODY_BYTES`] (but an update bundle's, which
//!   its endpoint bounds); a client that accepts no data
//!   for [`WRITE_STALL_TIMEOUT`] is closed; and the kernel drops a connection
//!   whose peer has not acknowledged data for [`TCP_USER_TIMEOUT`] (a half-open
//!   one). After the WebSocket upgrade the header timer no longer applies (a
//!   viewer needs to send nothing); the session's own send timeout, the write
//!   stall timer and the TCP user timeout do.
//! - **Errors of `accept`** (out of files, out of memory) are logged and retried
//!   after a pause, never a busy loop and never an exit.
//! - **HTTPS** ([`Listener::tls`]): the HTTPS port is accepted by the same loop,
//!   within the same places and timers; its TLS handshake runs in the
//!   connection's task, within [`super::tls::HANDSHAKE_TIMEOUT`]. A failed
//!   handshake is logged at debug level and only closes its connection. Each
//!   request carries its [`Scheme`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower_http::limit::RequestBodyLimit;
use tower_service::Service;

use crate::listen::{out_of_resources, RateLimitedLog, ACCEPT_ERROR_PAUSE};

/// Time a client has to send a request's head: from the connection's start, and
/// between requests on a kept-alive connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a request head (and of hyper's read buffer): more is answered
/// with 431 and the connection closed. Browsers send 1-2 KiB here (this device
/// sets no cookies).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most bytes of a request body; more is answered with 413. Only
/// `POST /api/update` takes more (an update bundle): it bounds its body itself
/// (`crate::update::http`).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// A client that accepts no data for this long is closed (an HTTP response it
/// stopped reading; a WebSocket viewer is closed sooner by its session).
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// The kernel closes a connection whose peer has not acknowledged sent data for
/// this long (`TCP_USER_TIMEOUT`): a viewer whose network went away without a
/// word, even while little is sent to it.
pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// Open files kept for everything but connections: standard streams, the
/// runtime's epoll and wake-up descriptors, the listening socket(s), the log's
/// socket, the camera's and encoder's device nodes and buffers, rpicam-vid's
/// pipes, files read for `/proc` and `/sys`, and a few connections over the
/// total while the ones closed to make room are still closing.
pub const RESERVED_FILES: u64 = 64;
/// Open files one connection may hold: its socket, and a file of the player
/// while one is being sent.
pub const FILES_PER_CONNECTION: u64 = 2;
/// Connections over the total allowed while those closed to make room for them
/// are still closing (part of [`RESERVED_FILES`]).
const EVICTION_SLACK: usize = 16;

/// How many connections the server takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections at once, from everyone.
    pub total: usize,
    /// Connections at once from one IP address (IPv4-mapped IPv6 addresses count
    /// as their IPv4 address).
    pub per_address: usize,
}

impl ConnectionLimits {
    /// The limits for a process that may open `files` files:
    /// `total = (files - RESERVED_FILES) / FILES_PER_CONNECTION`, at least 1.
    /// With the appliance's `LimitNOFILE=2048`: (2048 - 64) / 2 = 992.
    pub fn from_file_limit(files: u64, per_address: usize) -> Self {
        let total = files.saturating_sub(RESERVED_FILES) / FILES_PER_CONNECTION;
        ConnectionLimits {
            total: usize::try_from(total).unwrap_or(usize::MAX).max(1),
            per_address: per_address.max(1),
        }
    }
}

/// The process's open-file limit (`RLIMIT_NOFILE`, the soft one, which is what
/// `open` and `accept` are held to), or `None` when it cannot be read or is
/// unlimited.
pub fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given, which lives here.
    let result = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    // `rlim_t` is 32 bits on 32-bit ARM, 64 here.
    #[allow(clippy::useless_conversion)]
    let current = u64::from(limit.rlim_cur);
    (result == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(current)
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its address has [`ConnectionLimits::per_address`] connections open.
    Address,
    /// [`ConnectionLimits::total`] are open and every one has made a request.
    Full,
}

impl Refusal {
    /// The whole HTTP response written to a refused connection.
    fn response(self) -> &'static [u8] {
        match self {
            Refusal::Address => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
X-Content-Type-Options: nosniff\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 89\r\n\r\n\
too many connections from your address (the limit is server.max_connections_per_address)\n"
            }
            Refusal::Full => {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
X-Content-Type-Options: nosniff\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 40\r\n\r\n\
too many connections; try again shortly\n"
            }
        }
    }
}

/// Counters of connections over the server's life, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Open now.
    pub open: usize,
    /// Accepted and served since the start.
    pub accepted: u64,
    /// Refused because their address had too many open.
    pub refused_address: u64,
    /// Refused because the server had too many open.
    pub refused_full: u64,
    /// Closed before their first request to make room for a new one.
    pub evicted: u64,
    /// Closed because a request head did not arrive in time.
    pub header_timeouts: u64,
}

/// Who holds a connection place; shared by the accept loop, every connection and
/// `/metrics`. Cheap to clone.
#[derive(Clone)]
pub struct Connections {
    inner: Arc<Inner>,
}

struct Inner {
    limits: ConnectionLimits,
    state: Mutex<State>,
    accepted: AtomicU64,
    refused_address: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    header_timeouts: AtomicU64,
}

#[derive(Default)]
struct State {
    open: usize,
    by_address: HashMap<IpAddr, usize>,
    /// Connections that have not sent a request yet, oldest first, with the
    /// signal that closes one.
    waiting: BTreeMap<u64, Arc<Notify>>,
    next_id: u64,
}

impl Connections {
    /// No connection yet; these limits.
    pub fn new(limits: ConnectionLimits) -> Self {
        Connections {
            inner: Arc::new(Inner {
                limits,
                state: Mutex::new(State::default()),
                accepted: AtomicU64::new(0),
                refused_address: AtomicU64::new(0),
                refused_full: AtomicU64::new(0),
                evicted: AtomicU64::new(0),
                header_timeouts: AtomicU64::new(0),
            }),
        }
    }

    /// The limits it was made with.
    pub fn limits(&self) -> ConnectionLimits {
        self.inner.limits
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Counting cannot be left half done by a panic elsewhere: carry on.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts now.
    pub fn stats(&self) -> ConnectionStats {
        let open = self.state().open;
        let i = &self.inner;
        ConnectionStats {
            open,
            accepted: i.accepted.load(Ordering::Relaxed),
            refused_address: i.refused_address.load(Ordering::Relaxed),
            refused_full: i.refused_full.load(Ordering::Relaxed),
            evicted: i.evicted.load(Ordering::Relaxed),
            header_timeouts: i.header_timeouts.load(Ordering::Relaxed),
        }
    }

    /// Gives a connection from `address` its place, closing the oldest connection
    /// without a request when every place is taken, or says why not.
    pub fn admit(&self, address: IpAddr) -> Result<Slot, Refusal> {
        let address = address.to_canonical();
        let limits = self.inner.limits;
        let mut state = self.state();
        if state.by_address.get(&address).copied().unwrap_or(0) >= limits.per_address {
            self.inner.refused_address.fetch_add(1, Ordering::Relaxed);
            return Err(Refusal::Address);
        }
        if state.open >= limits.total {
            // Those closed to make room still hold their files until their task
            // runs; allow only a few of them at a time.
            let evicted = (state.open < limits.total + EVICTION_SLACK)
                .then(|| state.waiting.pop_first())
                .flatten();
            match evicted {
                Some((_, close)) => {
                    close.notify_one();
                    self.inner.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.inner.refused_full.fetch_add(1, Ordering::Relaxed);
                    return Err(Refusal::Full);
                }
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        state.open += 1;
        *state.by_address.entry(address).or_insert(0) += 1;
        let close = Arc::new(Notify::new());
        state.waiting.insert(id, close.clone());
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            connections: self.clone(),
            id,
            address,
            close,
            requested: AtomicBool::new(false),
        })
    }
}

/// One connection's place; given back when dropped (with the socket, which holds
/// it).
pub struct Slot {
    connections: Connections,
    id: u64,
    address: IpAddr,
    close: Arc<Notify>,
    requested: AtomicBool,
}

impl Slot {
    /// The connection sent a request: it is no longer closed to make room.
    pub fn requested(&self) {
        if !self.requested.swap(true, Ordering::Relaxed) {
            self.connections.state().waiting.remove(&self.id);
        }
    }

    /// Completes when the connection is to be closed to make room.
    pub async fn closed_for_room(&self) {
        self.close.notified().await;
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.connections.state();
        state.open -= 1;
        state.waiting.remove(&self.id);
        if let Some(count) = state.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                state.by_address.remove(&self.address);
            }
        }
    }
}

/// RTSP connections take their places from the same budget as HTTP ones.
impl crate::rtsp::server::Admission for Connections {
    fn admit(&self, address: IpAddr) -> Option<Box<dyn crate::rtsp::server::Place>> {
        match Connections::admit(self, address) {
            Ok(slot) => Some(Box::new(slot)),
            Err(_) => None,
        }
    }

    fn tune(&self, stream: &TcpStream) {
        super::tune_connection(stream);
    }
}

impl crate::rtsp::server::Place for Slot {
    fn requested(&self) {
        Slot::requested(self);
    }

    fn closed_for_room(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(Slot::closed_for_room(self))
    }
}

/// A connection's socket with its place and a write-stall timer. After a
/// WebSocket upgrade it lives on inside the session, so the place is held exactly
/// as long as the socket is open.
struct Guarded {
    stream: TcpStream,
    _slot: Arc<Slot>,
    stall_timeout: Duration,
    stall: Pin<Box<Sleep>>,
    stalled: bool,
}

impl Guarded {
    /// `stream` holding `slot`, failing writes that make no progress for
    /// `stall_timeout` ([`WRITE_STALL_TIMEOUT`]).
    fn new(stream: TcpStream, slot: Arc<Slot>, stall_timeout: Duration) -> Self {
        Guarded {
            stream,
            _slot: slot,
            stall_timeout,
            stall: Box::pin(tokio::time::sleep(stall_timeout)),
            stalled: false,
        }
    }

    /// After a write made no progress: pending until the stall lasts
    /// `stall_timeout`, then an error.
    fn poll_stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if !self.stalled {
            self.stalled = true;
            let deadline = Instant::now() + self.stall_timeout;
            self.stall.as_mut().reset(deadline);
        }
        match self.stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the client accepted no data for {:.1} s",
                    self.stall_timeout.as_secs_f64()
                ),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn written<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self.poll_stall(cx),
            ready => {
                self.stalled = false;
                ready
            }
        }
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.written(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// How a request reached the server. Every request carries it as an extension,
/// next to axum's `ConnectInfo`, so a handler can tell whether it came over
/// HTTPS: a cookie set over HTTPS is to be marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTPS (TLS).
    Https,
}

/// A listening socket and how its connections are served.
pub struct Listener {
    socket: TcpListener,
    /// TLS for every connection, on the HTTPS port.
    tls: Option<TlsAcceptor>,
}

impl Listener {
    /// Plain HTTP on `socket`.
    pub fn plain(socket: TcpListener) -> Self {
        Listener { socket, tls: None }
    }

    /// HTTPS on `socket`, each connection's TLS side made by `acceptor`.
    pub fn tls(socket: TcpListener, acceptor: TlsAcceptor) -> Self {
        Listener {
            socket,
            tls: Some(acceptor),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

/// The next connection of any of `listeners`, and which one took it. The
/// listener asked first goes round, so a flood on one port cannot starve the
/// other.
async fn accept_any(
    listeners: &[Listener],
    first: &mut usize,
) -> (usize, io::Result<(TcpStream, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        let count = listeners.len();
        for offset in 0..count {
            let index = (*first + offset) % count;
            if let Poll::Ready(accepted) = listeners[index].socket.poll_accept(cx) {
                *first = (index + 1) % count;
                return Poll::Ready((index, accepted));
            }
        }
        Poll::Pending
    })
    .await
}

/// Accepts connections on `listeners` (plain HTTP, and HTTPS when there is a
/// TLS one) and serves `app` on each until `shutdown` completes; then stops
/// accepting and asks every connection to finish its request and close (an idle
/// one closes at once). Returns when no longer accepting; the connections still
/// open are counted by `connections`. `tune` is called on every accepted socket.
pub async fn accept_loop(
    listeners: Vec<Listener>,
    app: Router,
    connections: Connections,
    tune: fn(&TcpStream),
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut refusals = RateLimitedLog::new();
    let mut accept_errors = RateLimitedLog::new();
    let mut first = 0;
    tokio::pin!(shutdown);
    loop {
        let (index, accepted) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept_any(&listeners, &mut first) => accepted,
        };
        let tls = listeners[index].tls.clone();
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(error) if out_of_resources(&error) => {
                if let Some(held_back) = accept_errors.due() {
                    tracing::warn!(%error, held_back, "cannot accept connections; retrying");
                }
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
            Err(error) => {
                // This connection's own trouble (reset before accept, ...).
                tracing::debug!(%error, "accept failed");
                continue;
            }
        };
        match connections.admit(remote.ip()) {
            Ok(slot) => {
                tune(&stream);
                let slot = Arc::new(slot);
                let stop = stop_rx.clone();
                let app = app.clone();
                let guarded = Guarded::new(stream, slot.clone(), WRITE_STALL_TIMEOUT);
                match tls {
                    None => {
                        tokio::spawn(serve_connection(
                            guarded,
                            Scheme::Http,
                            remote,
                            slot,
                            app,
                            stop,
                        ));
                    }
                    Some(acceptor) => {
                        tokio::spawn(async move {
                            if let Some(stream) = handshake(&acceptor, guarded, remote, &slot).await
                            {
                                serve_connection(stream, Scheme::Https, remote, slot, app, stop)
                                    .await;
                            }
                        });
                    }
                }
            }
            Err(refusal) => {
                if let Some(held_back) = refusals.due() {
                    let limits = connections.limits();
                    tracing::warn!(
                        %remote,
                        ?refusal,
                        per_address = limits.per_address,
                        total = limits.total,
                        held_back,
                        "connection refused: too many open"
                    );
                }
                match tls {
                    None => refuse(stream, refusal),
                    // A plain-text answer means nothing inside TLS: just close.
                    Some(_) => drop(stream),
                }
            }
        }
    }
    let _ = stop_tx.send(true);
}

/// Answers a refused connection with a short 503, best effort, and closes it at
/// once: it never waits for the client.
fn refuse(stream: TcpStream, refusal: Refusal) {
    // A request already received would make the close a reset, which can destroy
    // the answer before the client reads it.
    let mut discard = [0u8; 2048];
    let _ = stream.try_read(&mut discard);
    let _ = stream.try_write(refusal.response());
    drop(stream);
}

/// The TLS side of a connection, within [`super::tls::HANDSHAKE_TIMEOUT`];
/// `None` (logged at debug level) when the handshake fails, takes too long, or
/// the connection is closed to make room meanwhile.
async fn handshake(
    acceptor: &TlsAcceptor,
    stream: Guarded,
    remote: SocketAddr,
    slot: &Slot,
) -> Option<tokio_rustls::server::TlsStream<Guarded>> {
    let handshake = tokio::time::timeout(super::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    tokio::select! {
        result = handshake => match result {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%remote, %error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%remote, "no TLS handshake in time; closed");
                None
            }
        },
        () = slot.closed_for_room() => {
            tracing::debug!(%remote, "closed during its TLS handshake to make room");
            None
        }
    }
}

/// Serves one connection (`io`, reached by `scheme`) until it closes, is
/// upgraded, is closed to make room, or the server stops.
async fn serve_connection<I>(
    io: I,
    scheme: Scheme,
    remote: SocketAddr,
    slot: Arc<Slot>,
    app: Router,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let requests = slot.clone();
    let limited = RequestBodyLimit::new(app.clone(), MAX_BODY_BYTES);
    // The update bundle's endpoint bounds its body by the free space itself (a
    // path spelled otherwise gets the small limit).
    let unlimited = RequestBodyLimit::new(app, usize::MAX);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        requests.requested();
        let app = if request.uri().path() == crate::update::http::PATH {
            &unlimited
        } else {
            &limited
        };
        request.extensions_mut().insert(ConnectInfo(remote));
        request.extensions_mut().insert(scheme);
        // The router is always ready (axum's documentation), so calling it
        // without `poll_ready` is fine.
        app.clone().call(request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    if error.is_timeout() {
                        slot.connections.inner.header_timeouts.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%remote, "no request head in time; closed");
                    } else {
                        tracing::debug!(%remote, %error, "connection ended");
                    }
                }
                return;
            }
            () = slot.closed_for_room() => {
                tracing::debug!(%remote, "closed before its first request to make room");
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_total_is_what_the_file_limit_leaves() {
        assert_eq!(ConnectionLimits::from_file_limit(2048, 32).total, 992);
        assert_eq!(ConnectionLimits::from_file_limit(1024, 32).total, 480);
        assert_eq!(ConnectionLimits::from_file_limit(10, 0).total, 1);
        assert_eq!(ConnectionLimits::from_file_limit(10, 0).per_address, 1);
    }

    #[test]
    fn one_address_is_limited_and_its_places_come_back() {
        let connections = Connections::new(ConnectionLimits {
            total: 10,
            per_address: 2,
        });
        let a = connections.admit(ip("192.0.2.1")).unwrap();
        let _b = connections.admit(ip("::ffff:192.0.2.1")).unwrap();
        assert_eq!(
            connections.admit(ip("192.0.2.1")).err(),
            Some(Refusal::Address)
        );
        assert!(connections.admit(ip("192.0.2.2")).is_ok());
        drop(a);
        assert!(connections.admit(ip("192.0.2.1")).is_ok());
        let stats = connections.stats();
        assert_eq!(stats.refused_address, 1);
        assert_eq!(stats.accepted, 4);
    }

    #[tokio::test]
    async fn when_full_the_oldest_without_a_request_makes_room() {
        let connections = Connections::new(ConnectionLimits {
            total: 3,
            per_address: 10,
        });
        let served = connections.admit(ip("192.0.2.1")).unwrap();
        served.requested();
        let oldest_idle = connections.admit(ip("192.0.2.2")).unwrap();
        let idle = connections.admit(ip("192.0.2.3")).unwrap();
        let newcomer = connections.admit(ip("192.0.2.4")).unwrap();
        // The oldest idle one is told to close; the others are not.
        tokio::time::timeout(Duration::from_secs(1), oldest_idle.closed_for_room())
            .await
            .expect("the oldest idle connection is closed");
        for untouched in [&served, &idle, &newcomer] {
            assert!(
                tokio::time::timeout(Duration::from_millis(20), untouched.closed_for_room())
                    .await
                    .is_err()
            );
        }
        assert_eq!(connections.stats().evicted, 1);
        assert_eq!(connections.stats().open, 4);
        drop(oldest_idle);
        assert_eq!(connections.stats().open, 3);
        // With every connection busy, a newcomer is refused.
        idle.requested();
        newcomer.requested();
        assert_eq!(
            connections.admit(ip("192.0.2.5")).err(),
            Some(Refusal::Full)
        );
        assert_eq!(connections.stats().refused_full, 1);
    }

    #[test]
    fn eviction_overshoot_is_bounded() {
        let connections = Connections::new(ConnectionLimits {
            total: 2,
            per_address: 1000,
        });
        let mut held = Vec::new();
        // Nobody ever closes: every one past the total evicts an idle one, until
        // the slack is used up.
        loop {
            match connections.admit(ip("192.0.2.1")) {
                Ok(slot) => held.push(slot),
                Err(refusal) => {
                    assert_eq!(refusal, Refusal::Full);
                    break;
                }
            }
            assert!(held.len() <= 2 + EVICTION_SLACK);
        }
        assert_eq!(held.len(), 2 + EVICTION_SLACK);
    }

    #[tokio::test]
    async fn a_client_that_reads_nothing_is_closed_when_writes_stall() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, remote) = listener.accept().await.unwrap();
        let connections = Connections::new(ConnectionLimits {
            total: 1,
            per_address: 1,
        });
        let slot = Arc::new(connections.admit(remote.ip()).unwrap());
        let stall = Duration::from_millis(300);
        let mut guarded = Guarded::new(server, slot, stall);
        let chunk = vec![0u8; 64 * 1024];
        // Writes go on while the kernel's buffers take them; then they stall.
        let (error, stalled_since) = loop {
            let before = std::time::Instant::now();
            match tokio::time::timeout(Duration::from_secs(10), guarded.write(&chunk)).await {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => break (error, before),
                Err(_) => panic!("a stalled write was not ended"),
            }
        };
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(stalled_since.elapsed() >= stall);
        // The place is given back with the socket.
        assert_eq!(connections.stats().open, 1);
        drop(guarded);
        assert_eq!(connections.stats().open, 0);
        drop(client);
    }

    #[test]
    fn refusals_are_valid_http() {
        for refusal in [Refusal::Address, Refusal::Full] {
            let text = std::str::from_utf8(refusal.response()).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(length, body.len(), "{text}");
        }
    }

    #[test]
    fn the_file_limit_is_read() {
        let limit = open_file_limit();
        assert!(limit.is_none_or(|n| n >= 3));
    }
}
