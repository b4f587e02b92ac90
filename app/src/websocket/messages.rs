//! The JSON text messages of the WebSocket protocol (`docs/protocol.md`).

use serde::{Deserialize, Serialize};

use crate::hub::{SourceState, StreamInfo};

/// Version of the protocol in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A text message from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on every connection.
    Hello {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// Server name and version.
        server: String,
        /// Server clock, µs since the Unix epoch.
        server_time_us: u64,
        /// Problems in the configuration file (running on defaults when not empty).
        config_errors: Vec<String>,
    },
    /// Stream parameters; before the first frame that uses them.
    Stream {
        /// RFC 6381 codec string.
        codec: String,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
        /// Frames per second, when known.
        fps: Option<f64>,
    },
    /// The source's state.
    State {
        /// `starting`, `live` or `offline`.
        state: SourceState,
        /// Source kind.
        source: String,
        /// Plain-words explanation.
        message: Option<String>,
    },
    /// The next `frames` binary messages are a joining viewer's backlog.
    Join {
        /// Backlog length.
        frames: usize,
    },
    /// Frames were skipped; a keyframe follows.
    Resync {
        /// Frames skipped.
        dropped: u64,
    },
    /// Times of the next binary message.
    Timing {
        /// Frame number.
        seq: u64,
        /// Capture time, µs since the Unix epoch.
        captured_us: u64,
        /// When the hub published it to all viewers, µs since the Unix epoch.
        published_us: u64,
        /// When the server queued it for this viewer, µs since the Unix epoch.
        sent_us: u64,
        /// On WebRTC's data channel only: the frame's RTP timestamp (90 kHz), so
        /// that a player can tell which picture on screen it describes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtp_timestamp: Option<u32>,
    },
    /// Periodic statistics.
    Stats {
        /// Viewers watching.
        viewers: usize,
        /// Frames this viewer lost so far.
        dropped: u64,
    },
    /// Answer to a ping.
    Pong {
        /// The ping's id.
        id: serde_json::Value,
        /// The ping's client time, echoed.
        client_time: serde_json::Value,
        /// Server clock, µs since the Unix epoch.
        server_time_us: u64,
    },
}

impl ServerMessage {
    /// The `stream` message for these parameters.
    pub fn stream(info: &StreamInfo) -> Self {
        ServerMessage::Stream {
            codec: info.codec.clone(),
            width: info.width,
            height: info.height,
            fps: info.fps,
        }
    }

    /// As JSON text.
    pub fn to_json(&self) -> String {
        // Serialising these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A text message from a client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Clock probe; answered with `pong`.
    Ping {
        /// Echoed.
        #[serde(default)]
        id: serde_json::Value,
        /// Echoed.
        #[serde(default)]
        client_time: serde_json::Value,
    },
}
