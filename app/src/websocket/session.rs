//! `GET /ws`: one viewer's WebSocket session.
//!
//! Two tasks per viewer: the writer takes items from the viewer's hub queue and
//! writes them (and answers pings); the reader polices what the client sends. A
//! slow socket only slows its own writer: the hub never waits for it, and a socket
//! that accepts nothing for [`SEND_TIMEOUT`] is closed.
//!
//! Every WebSocket ping is answered, in order, unless more than
//! [`MAX_PENDING_PONGS`] arrive before the writer gets to them: then the oldest
//! are dropped and the latest is still answered (RFC 6455 5.5.3). After a close
//! frame, ours or the client's, the server ends its direction of the connection
//! and reads (without processing) until the client ends its own, for at most
//! [`CLOSE_LINGER`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};

use crate::config::ConfigReport;
use crate::hub::{unix_micros, Hub, Item, SubscribeError, Viewer};
use crate::websocket::messages::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use crate::websocket::{self, close_code, handshake, Incoming, OpCode, ReadError};

/// Largest message a client may send.
pub const MAX_CLIENT_MESSAGE: usize = 4096;
/// Most messages a client may send in one second.
pub const MAX_CLIENT_MESSAGES_PER_SECOND: u32 = 50;
/// A socket that accepts no data for this long is closed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `stats` is sent.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// How long the socket stays open after a close frame (the client's answered, or
/// ours to a client that broke the rules) for the client to end the connection,
/// so that the close frame reaches it.
pub const CLOSE_LINGER: Duration = Duration::from_millis(500);
/// Most pongs owed to a client at once; beyond that the oldest are not sent.
pub const MAX_PENDING_PONGS: usize = 16;

/// How often `timing` is sent, unless the client asked for every frame.
pub const TIMING_INTERVAL: Duration = Duration::from_secs(1);
/// Items taken from the hub queue per write batch.
const BATCH: usize = 16;

/// Query parameters of `/ws`.
#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    /// `frame`: a `timing` message before every frame.
    #[serde(default)]
    timing: Option<String>,
}

/// Upgrades to a WebSocket, or answers 503 when the hub is full or closing, 429
/// when the client's address has `max_viewers_per_address` watching.
pub async fn upgrade(
    State(hub): State<Hub>,
    State(config): State<Arc<ConfigReport>>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Query(params): Query<WsParams>,
    request: Request,
) -> Response {
    let accept = match handshake::accept(request.method(), request.headers()) {
        Ok(accept) => accept,
        Err(error) => {
            return (
                error.status(),
                [(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                )],
                error.to_string(),
            )
                .into_response()
        }
    };
    let viewer = match hub.subscribe(Some(remote), crate::hub::Transport::WebSocket) {
        Ok(viewer) => viewer,
        Err(error @ (SubscribeError::Full(_) | SubscribeError::Closed)) => {
            tracing::warn!(%remote, %error, "viewer turned away");
            return (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response();
        }
        Err(error @ SubscribeError::AddressFull(_)) => {
            tracing::warn!(%remote, %error, "viewer turned away");
            return (StatusCode::TOO_MANY_REQUESTS, error.to_string()).into_response();
        }
    };
    let every_frame = params.timing.as_deref() == Some("frame");
    let on_upgrade = hyper::upgrade::on(request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => session(TokioIo::new(upgraded), viewer, config, every_frame).await,
            Err(error) => tracing::debug!(%remote, %error, "WebSocket upgrade failed"),
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The server is shutting down.
    ServerClosing,
    /// The client went away (its close frame answered).
    Client(String),
    /// The client broke the rules; a close frame with the reason was sent.
    Violation(String),
    /// Writing failed or timed out.
    Write(String),
}

/// What the reader asks the writer to send or do (pongs go through
/// [`PendingPongs`]).
#[derive(Debug)]
enum Control {
    /// A protocol message (`pong`).
    Text(String),
    /// The client closed (with its code): answer and end.
    Closed(Option<u16>),
    /// The client broke the rules: close with this code and reason.
    Violation(u16, String),
}

/// The pongs owed to a client, oldest first, bounded: the reader adds one per
/// ping, the writer takes them all when it can. When the writer falls behind by
/// more than [`MAX_PENDING_PONGS`], the oldest are dropped, so memory stays bounded
/// and the latest ping is always answered (RFC 6455 5.5.3).
#[derive(Debug, Default)]
struct PendingPongs {
    payloads: Mutex<VecDeque<Vec<u8>>>,
    ready: Notify,
}

impl PendingPongs {
    /// A pong to send with this payload.
    fn push(&self, payload: Vec<u8>) {
        let mut payloads = self.payloads.lock().unwrap_or_else(PoisonError::into_inner);
        if payloads.len() == MAX_PENDING_PONGS {
            payloads.pop_front();
        }
        payloads.push_back(payload);
        drop(payloads);
        self.ready.notify_one();
    }

    /// Every pong owed, oldest first.
    fn take(&self) -> Vec<Outgoing> {
        let mut payloads = self.payloads.lock().unwrap_or_else(PoisonError::into_inner);
        payloads.drain(..).map(Outgoing::Pong).collect()
    }
}

/// One message to write.
enum Outgoing {
    Text(String),
    Binary(Bytes),
    Pong(Vec<u8>),
    /// A close frame's payload (code and reason).
    Close(Vec<u8>),
}

impl Outgoing {
    fn close(code: u16, reason: &str) -> Self {
        Outgoing::Close(websocket::close_payload(code, reason))
    }

    fn frame(&self) -> (OpCode, &[u8]) {
        match self {
            Outgoing::Text(text) => (OpCode::Text, text.as_bytes()),
            Outgoing::Binary(data) => (OpCode::Binary, data),
            Outgoing::Pong(payload) => (OpCode::Pong, payload),
            Outgoing::Close(payload) => (OpCode::Close, payload),
        }
    }
}

async fn session<S>(io: S, viewer: Viewer, config: Arc<ConfigReport>, every_frame: bool)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (read_half, write_half) = tokio::io::split(io);
    let (control_tx, control_rx) = mpsc::channel::<Control>(8);
    let pongs = Arc::new(PendingPongs::default());
    let mut reader = tokio::spawn(read_client(
        websocket::Reader::new(read_half, MAX_CLIENT_MESSAGE),
        control_tx,
        pongs.clone(),
    ));
    let mut writer = Writer {
        socket: websocket::Writer::new(write_half),
        viewer: &viewer,
        every_frame,
        last_timing: None,
    };
    let end = writer.run(&config, control_rx, &pongs).await;
    let linger = match &end {
        End::Violation(reason) => {
            tracing::info!(viewer = viewer.id(), %reason, "closing a client that broke the rules");
            true
        }
        End::ServerClosing => {
            let _ = writer
                .send(vec![Outgoing::close(
                    close_code::GOING_AWAY,
                    "server shutting down",
                )])
                .await;
            false
        }
        End::Client(reason) => {
            tracing::debug!(viewer = viewer.id(), %reason, "client ended the session");
            true
        }
        End::Write(reason) => {
            tracing::info!(viewer = viewer.id(), %reason, "closing a viewer that stopped reading");
            false
        }
    };
    let Writer { mut socket, .. } = writer;
    drop(viewer);
    if linger {
        // A close frame went out. What the client sent may still sit unread in
        // our receive buffer, and closing the socket now would reset it and could
        // destroy the close frame before the client reads it. So: end our
        // direction, and let the reader drain until the client ends its own.
        let _ = tokio::time::timeout(CLOSE_LINGER, async {
            let _ = socket.shutdown().await;
            let _ = (&mut reader).await;
        })
        .await;
    }
    reader.abort();
}

struct Writer<'a, W> {
    socket: websocket::Writer<W>,
    viewer: &'a Viewer,
    every_frame: bool,
    last_timing: Option<Instant>,
}

impl<W: AsyncWrite + Unpin> Writer<'_, W> {
    async fn run(
        &mut self,
        config: &ConfigReport,
        mut control: mpsc::Receiver<Control>,
        pongs: &PendingPongs,
    ) -> End {
        let hello = ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            server: concat!("streamer ", env!("CARGO_PKG_VERSION")).into(),
            server_time_us: unix_micros(SystemTime::now()),
            config_errors: config.errors.clone(),
        };
        if let Err(end) = self.send(vec![text(&hello)]).await {
            return end;
        }
        let mut stats = tokio::time::interval(STATS_INTERVAL);
        stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut items = Vec::with_capacity(BATCH);
        loop {
            let result = tokio::select! {
                more = self.viewer.recv(&mut items, BATCH) => {
                    if !more {
                        return End::ServerClosing;
                    }
                    let messages = self.messages(&mut items);
                    self.send(messages).await
                }
                () = pongs.ready.notified() => {
                    let messages = pongs.take();
                    if messages.is_empty() {
                        Ok(())
                    } else {
                        self.send(messages).await
                    }
                }
                message = control.recv() => {
                    // Pings the client sent before this are answered first.
                    let mut messages = pongs.take();
                    match message {
                        Some(Control::Text(message)) => {
                            messages.push(Outgoing::Text(message));
                            self.send(messages).await
                        }
                        Some(Control::Violation(code, reason)) => {
                            messages.push(Outgoing::close(code, &reason));
                            let _ = self.send(messages).await;
                            return End::Violation(format!("{reason} ({code})"));
                        }
                        Some(Control::Closed(code)) => {
                            // The decoder let only codes that may be sent through.
                            let code = code.unwrap_or(close_code::NORMAL);
                            messages.push(Outgoing::close(code, ""));
                            let _ = self.send(messages).await;
                            return End::Client(format!("closed by the client ({code})"));
                        }
                        None => return End::Client("connection closed".into()),
                    }
                }
                _ = stats.tick() => {
                    let message = ServerMessage::Stats {
                        viewers: self.viewer.hub().viewer_count(),
                        dropped: self.viewer.dropped(),
                    };
                    self.send(vec![text(&message)]).await
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Turns hub items into WebSocket messages, adding `timing` where due.
    fn messages(&mut self, items: &mut Vec<Item>) -> Vec<Outgoing> {
        let mut messages = Vec::with_capacity(items.len() + 1);
        for item in items.drain(..) {
            match item {
                Item::Frame(frame) => {
                    let now = Instant::now();
                    let due = self
                        .last_timing
                        .is_none_or(|last| now.duration_since(last) >= TIMING_INTERVAL);
                    if self.every_frame || due {
                        self.last_timing = Some(now);
                        messages.push(text(&ServerMessage::Timing {
                            seq: frame.seq,
                            captured_us: frame.captured_us,
                            published_us: frame.published_us,
                            sent_us: unix_micros(SystemTime::now()),
                            rtp_timestamp: None,
                        }));
                    }
                    self.viewer.record_sent(frame.data.len());
                    messages.push(Outgoing::Binary(frame.data));
                }
                Item::Stream(info) => messages.push(text(&ServerMessage::stream(&info))),
                Item::Source(status) => messages.push(text(&ServerMessage::State {
                    state: status.state,
                    source: status.kind.clone(),
                    message: status.message.clone(),
                })),
                Item::Join { frames } => messages.push(text(&ServerMessage::Join { frames })),
                Item::Resync { dropped } => messages.push(text(&ServerMessage::Resync { dropped })),
            }
        }
        messages
    }

    /// Writes the messages and flushes, giving up after [`SEND_TIMEOUT`].
    async fn send(&mut self, messages: Vec<Outgoing>) -> Result<(), End> {
        let socket = &mut self.socket;
        let write = async move {
            let frames: Vec<_> = messages.iter().map(Outgoing::frame).collect();
            socket.batch(&frames).await?;
            socket.flush().await
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(End::Write(error.to_string())),
            Err(_) => Err(End::Write(format!(
                "socket accepted nothing for {} s",
                SEND_TIMEOUT.as_secs()
            ))),
        }
    }
}

fn text(message: &ServerMessage) -> Outgoing {
    Outgoing::Text(message.to_json())
}

/// Reads what the client sends: answers pings, enforces the limits, and asks the
/// writer to close the connection when the client breaks them. After a close
/// frame, the client's or ours, it reads on without processing anything until
/// the client ends the connection (the session bounds how long).
async fn read_client<R: AsyncRead + Unpin>(
    mut reader: websocket::Reader<R>,
    control: mpsc::Sender<Control>,
    pongs: Arc<PendingPongs>,
) {
    if read_messages(&mut reader, &control, &pongs).await {
        reader.discard_until_eof().await;
    }
}

/// Handles the client's messages until the connection ends (`false`) or a close
/// frame is due (`true`: the writer was asked to send it).
async fn read_messages<R: AsyncRead + Unpin>(
    reader: &mut websocket::Reader<R>,
    control: &mpsc::Sender<Control>,
    pongs: &PendingPongs,
) -> bool {
    let mut window_start = Instant::now();
    let mut in_window = 0u32;
    loop {
        let message = match reader.next().await {
            Ok(Some(message)) => message,
            Ok(None) => return false, // the writer sees the closed channel
            Err(ReadError::Frame(error)) => {
                let _ = control
                    .send(Control::Violation(error.close_code(), error.to_string()))
                    .await;
                return true;
            }
            Err(ReadError::Io(_)) => return false,
        };
        let now = Instant::now();
        if now.duration_since(window_start) >= Duration::from_secs(1) {
            window_start = now;
            in_window = 0;
        }
        in_window += 1;
        if in_window > MAX_CLIENT_MESSAGES_PER_SECOND {
            let _ = control
                .send(Control::Violation(
                    close_code::POLICY,
                    "too many messages".into(),
                ))
                .await;
            return true;
        }
        let reply = match message {
            Incoming::Text(text) => match serde_json::from_str::<ClientMessage>(&text) {
                Ok(ClientMessage::Ping { id, client_time }) => Some(Control::Text(
                    ServerMessage::Pong {
                        id,
                        client_time,
                        server_time_us: unix_micros(SystemTime::now()),
                    }
                    .to_json(),
                )),
                // Unknown messages are ignored, as the protocol says.
                Err(_) => None,
            },
            Incoming::Binary(_) => {
                let _ = control
                    .send(Control::Violation(
                        close_code::UNSUPPORTED,
                        "binary messages are not accepted".into(),
                    ))
                    .await;
                return true;
            }
            Incoming::Ping(payload) => {
                pongs.push(payload);
                None
            }
            Incoming::Pong => None,
            Incoming::Close(code) => {
                let _ = control.send(Control::Closed(code)).await;
                return true;
            }
        };
        if let Some(reply) = reply {
            // A full channel means the writer is busy writing: wait for it (the
            // client's messages wait in the socket meanwhile) rather than drop
            // the reply. A writer that gives up drops the channel, ending this.
            if control.send(reply).await.is_err() {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(messages: Vec<Outgoing>) -> Vec<Vec<u8>> {
        messages
            .into_iter()
            .map(|message| match message {
                Outgoing::Pong(payload) => payload,
                _ => panic!("only pongs are pending"),
            })
            .collect()
    }

    #[test]
    fn pending_pongs_keep_the_latest_in_order_and_stay_bounded() {
        let pongs = PendingPongs::default();
        for i in 0..10u8 {
            pongs.push(vec![i]);
        }
        assert_eq!(
            payloads(pongs.take()),
            (0..10u8).map(|i| vec![i]).collect::<Vec<_>>()
        );
        assert!(pongs.take().is_empty());

        for i in 0..100u8 {
            pongs.push(vec![i; 125]);
        }
        let kept = payloads(pongs.take());
        assert_eq!(kept.len(), MAX_PENDING_PONGS);
        assert_eq!(
            kept.last(),
            Some(&vec![99; 125]),
            "the latest ping is answered"
        );
        assert_eq!(kept[0], vec![100 - MAX_PENDING_PONGS as u8; 125]);
    }
}
