//! `GET /ws`: one viewer's WebSocket session.
//!
//! Two tasks per viewer: the writer takes items from the viewer's hub queue and
//! writes them (and answers pings); the reader polices what the client sends. A
//! slow socket only slows its own writer: the hub never waits for it, and a socket
//! that accepts nothing for [`SEND_TIMEOUT`] is closed.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;

use super::protocol::{ClientMessage, ServerMessage, PROTOCOL_VERSION};
use super::AppState;
use crate::hub::{unix_micros, Item, SubscribeError, Viewer};

/// Largest message a client may send.
pub const MAX_CLIENT_MESSAGE: usize = 4096;
/// Most messages a client may send in one second.
pub const MAX_CLIENT_MESSAGES_PER_SECOND: u32 = 50;
/// A socket that accepts no data for this long is closed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// How often `stats` is sent.
pub const STATS_INTERVAL: Duration = Duration::from_secs(2);
/// How long the socket of a client closed for breaking the rules stays open, so
/// that the close frame reaches it.
const CLOSE_LINGER: Duration = Duration::from_millis(500);

/// How often `timing` is sent, unless the client asked for every frame.
pub const TIMING_INTERVAL: Duration = Duration::from_secs(1);
/// Items taken from the hub queue per write batch.
const BATCH: usize = 16;

/// Close codes (RFC 6455 7.4.1).
mod close_code {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
}

/// Query parameters of `/ws`.
#[derive(Debug, Default, Deserialize)]
pub struct WsParams {
    /// `frame`: a `timing` message before every frame.
    #[serde(default)]
    timing: Option<String>,
}

/// Upgrades to a WebSocket, or answers 503 when the hub is full or closing.
pub async fn upgrade(
    ws: WebSocketUpgrade,
    State(app): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    Query(params): Query<WsParams>,
) -> Response {
    let viewer = match app.hub.subscribe(Some(remote)) {
        Ok(viewer) => viewer,
        Err(error @ (SubscribeError::Full(_) | SubscribeError::Closed)) => {
            tracing::warn!(%remote, %error, "viewer turned away");
            return (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response();
        }
    };
    let every_frame = params.timing.as_deref() == Some("frame");
    ws.max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        // Clients send only small text messages.
        .read_buffer_size(MAX_CLIENT_MESSAGE)
        // Write each message through at once: frames are large, and buffering
        // them would hold a copy per viewer.
        .write_buffer_size(0)
        .on_upgrade(move |socket| session(socket, viewer, app, every_frame))
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// The server is shutting down.
    ServerClosing,
    /// The client went away (close frame already sent).
    Client(String),
    /// The client broke the rules; a close frame with the reason was sent.
    Violation(String),
    /// Writing failed or timed out.
    Write(String),
}

async fn session(socket: WebSocket, viewer: Viewer, app: AppState, every_frame: bool) {
    let (sink, stream) = socket.split();
    let (control_tx, control_rx) = mpsc::channel::<Message>(8);
    let reader = tokio::spawn(read_client(stream, control_tx));
    let mut writer = Writer {
        sink,
        viewer: &viewer,
        every_frame,
        last_timing: None,
    };
    let end = writer.run(&app, control_rx).await;
    reader.abort();
    match &end {
        End::Violation(reason) => {
            tracing::info!(viewer = viewer.id(), %reason, "closing a client that broke the rules");
            // What the client sent may still sit unread in our receive buffer;
            // closing the socket now would reset it and could destroy the close
            // frame before the client reads it. Stop streaming, keep the socket a
            // moment so the client learns why it is being closed.
            let Writer { sink, .. } = writer;
            drop(viewer);
            tokio::time::sleep(CLOSE_LINGER).await;
            drop(sink);
        }
        End::ServerClosing => {
            let _ = writer
                .send_close(close_code::GOING_AWAY, "server shutting down")
                .await;
        }
        End::Client(reason) => {
            tracing::debug!(viewer = viewer.id(), %reason, "client ended the session")
        }
        End::Write(reason) => {
            tracing::info!(viewer = viewer.id(), %reason, "closing a viewer that stopped reading")
        }
    }
}

struct Writer<'a> {
    sink: SplitSink<WebSocket, Message>,
    viewer: &'a Viewer,
    every_frame: bool,
    last_timing: Option<Instant>,
}

impl Writer<'_> {
    async fn run(&mut self, app: &AppState, mut control: mpsc::Receiver<Message>) -> End {
        let hello = ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            server: concat!("streamer ", env!("CARGO_PKG_VERSION")).into(),
            server_time_us: unix_micros(SystemTime::now()),
            config_errors: app.config.errors.clone(),
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
                message = control.recv() => match message {
                    Some(Message::Close(Some(frame))) => {
                        let reason = format!("{} ({})", frame.reason, frame.code);
                        let _ = self.send(vec![Message::Close(Some(frame))]).await;
                        return End::Violation(reason);
                    }
                    Some(Message::Close(None)) => {
                        let _ = self.send(vec![Message::Close(None)]).await;
                        return End::Client("closed by the client".into());
                    }
                    Some(message) => self.send(vec![message]).await,
                    None => return End::Client("connection closed".into()),
                },
                _ = stats.tick() => {
                    let message = ServerMessage::Stats {
                        viewers: app.hub.viewer_count(),
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
    fn messages(&mut self, items: &mut Vec<Item>) -> Vec<Message> {
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
                        }));
                    }
                    self.viewer.record_sent(frame.data.len());
                    messages.push(Message::Binary(frame.data));
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
    async fn send(&mut self, messages: Vec<Message>) -> Result<(), End> {
        let sink = &mut self.sink;
        let write = async move {
            for message in messages {
                sink.feed(message).await?;
            }
            sink.flush().await
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

    async fn send_close(&mut self, code: u16, reason: &'static str) -> Result<(), End> {
        self.send(vec![Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))])
        .await
    }
}

fn text(message: &ServerMessage) -> Message {
    Message::Text(message.to_json().into())
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// Reads what the client sends: answers pings, enforces the limits, and asks the
/// writer to close the connection when the client breaks them.
async fn read_client(mut stream: SplitStream<WebSocket>, control: mpsc::Sender<Message>) {
    let mut window_start = Instant::now();
    let mut in_window = 0u32;
    while let Some(message) = stream.next().await {
        let now = Instant::now();
        if now.duration_since(window_start) >= Duration::from_secs(1) {
            window_start = now;
            in_window = 0;
        }
        in_window += 1;
        if in_window > MAX_CLIENT_MESSAGES_PER_SECOND {
            let _ = control
                .send(close(close_code::POLICY, "too many messages"))
                .await;
            return;
        }
        let reply = match message {
            Ok(Message::Text(text)) => match serde_json::from_str::<ClientMessage>(&text) {
                Ok(ClientMessage::Ping { id, client_time }) => {
                    Some(self::text(&ServerMessage::Pong {
                        id,
                        client_time,
                        server_time_us: unix_micros(SystemTime::now()),
                    }))
                }
                // Unknown messages are ignored, as the protocol says.
                Err(_) => None,
            },
            Ok(Message::Binary(_)) => {
                let _ = control
                    .send(close(
                        close_code::UNSUPPORTED,
                        "binary messages are not accepted",
                    ))
                    .await;
                return;
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => None,
            Ok(Message::Close(_)) => {
                let _ = control.send(Message::Close(None)).await;
                return;
            }
            Err(error) => {
                let too_big = matches!(
                    error.into_inner().downcast_ref::<tungstenite::Error>(),
                    Some(tungstenite::Error::Capacity(_))
                );
                let reply = if too_big {
                    close(close_code::TOO_BIG, "message too big")
                } else {
                    Message::Close(None)
                };
                let _ = control.send(reply).await;
                return;
            }
        };
        if let Some(reply) = reply {
            // A full control channel means the writer is stuck; dropping a pong
            // then is harmless.
            let _ = control.try_send(reply);
        }
    }
}
