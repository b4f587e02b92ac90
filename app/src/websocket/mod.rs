//! The WebSocket video protocol (RFC 6455, as much as the video socket needs):
//! `GET /ws`, one binary message per access unit and JSON text messages
//! (`docs/protocol.md`).
//!
//! Why not tungstenite (axum's WebSocket): it copies every outgoing message into a
//! per-connection write buffer, which for video means one copy of every frame per
//! viewer, and a buffer per viewer as large as the largest keyframe (ARCHITECTURE.md,
//! Decisions, weighs the other crates). Here a frame's shared bytes go from the hub
//! to the kernel with one vectored write (header + payload): nothing is copied or
//! retained per viewer.
//!
//! - [`handshake`]: the opening handshake.
//! - [`frame`]: sans-IO framing: server frame headers, a decoder for client frames.
//! - [`Writer`] / [`Reader`]: the two halves over an async byte stream.
//! - [`messages`]: the JSON text messages.
//! - [`session`]: one viewer's session, fed by the hub: the I/O shell.

pub mod frame;
pub mod handshake;
pub mod messages;
pub mod session;

use std::io::{self, IoSlice};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use frame::{close_payload, FrameError, Incoming, OpCode};
use frame::{server_header, Decoder};

/// Close codes (RFC 6455 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away.
    pub const GOING_AWAY: u16 = 1001;
    /// Data of a type the endpoint does not accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// The endpoint's policy was violated.
    pub const POLICY: u16 = 1008;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
}

/// The sending half: unmasked, unfragmented server frames.
#[derive(Debug)]
pub struct Writer<W> {
    io: W,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// Wraps the write half of an upgraded connection.
    pub fn new(io: W) -> Self {
        Writer { io }
    }

    /// Several messages in as few writes as the stream takes (one `writev` for a
    /// whole batch of frames and their `timing` messages, usually).
    pub async fn batch(&mut self, frames: &[(OpCode, &[u8])]) -> io::Result<()> {
        let headers: Vec<_> = frames
            .iter()
            .map(|(opcode, payload)| server_header(*opcode, payload.len()))
            .collect();
        let mut slices = Vec::with_capacity(frames.len() * 2);
        for ((header, len), (_, payload)) in headers.iter().zip(frames) {
            slices.push(IoSlice::new(&header[..*len]));
            if !payload.is_empty() {
                slices.push(IoSlice::new(payload));
            }
        }
        let mut remaining = &mut slices[..];
        while !remaining.is_empty() {
            let written = self.io.write_vectored(remaining).await?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut remaining, written);
        }
        Ok(())
    }

    /// Flushes the stream.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.io.flush().await
    }

    /// Ends the sending direction (a TCP FIN after the close frame), so that the
    /// client sees the end of the connection without waiting for the socket to
    /// be dropped.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// Why reading from a client stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client broke the protocol.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The connection failed.
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
}

/// The receiving half: complete messages from a client.
#[derive(Debug)]
pub struct Reader<R> {
    io: R,
    decoder: Decoder,
    buffer: Box<[u8]>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    /// Wraps the read half of an upgraded connection; longer messages are refused.
    pub fn new(io: R, max_message: usize) -> Self {
        Reader {
            io,
            decoder: Decoder::new(max_message),
            buffer: vec![0; 4096].into_boxed_slice(),
        }
    }

    /// The next message; `Ok(None)` once the client closed the connection.
    pub async fn next(&mut self) -> Result<Option<Incoming>, ReadError> {
        loop {
            if let Some(message) = self.decoder.next_message()? {
                return Ok(Some(message));
            }
            let n = self.io.read(&mut self.buffer).await?;
            if n == 0 {
                return Ok(None);
            }
            self.decoder.push(&self.buffer[..n]);
        }
    }

    /// Reads and drops everything until the client ends the connection or it
    /// fails. After a close frame, or once the client broke the protocol, what it
    /// sends is not processed (RFC 6455 7.1.7), but it is read: a socket closed
    /// with unread bytes is reset, which can destroy the close frame on its way.
    /// Memory stays at the one read buffer; the caller bounds the time.
    pub async fn discard_until_eof(&mut self) {
        while let Ok(1..) = self.io.read(&mut self.buffer).await {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_survive_a_stream_that_takes_a_few_bytes_at_a_time() {
        let (client, server) = tokio::io::duplex(7);
        let mut writer = Writer::new(server);
        let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let expected = payload.clone();
        let reading = tokio::spawn(async move {
            let mut client = client;
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        let close = close_payload(close_code::GOING_AWAY, "bye");
        writer
            .batch(&[(OpCode::Binary, &payload), (OpCode::Close, &close)])
            .await
            .unwrap();
        writer
            .batch(&[
                (OpCode::Text, b"hi"),
                (OpCode::Binary, &payload[..300]),
                (OpCode::Pong, b""),
            ])
            .await
            .unwrap();
        drop(writer);
        let all = reading.await.unwrap();
        assert_eq!(&all[..10], &server_header(OpCode::Binary, 70_000).0);
        assert_eq!(&all[10..70_010], &expected[..]);
        let rest = &all[70_010..];
        assert_eq!(&rest[..7], &[0x88, 5, 0x03, 0xE9, b'b', b'y', b'e']);
        assert_eq!(&rest[7..11], &[0x81, 2, b'h', b'i']);
        assert_eq!(&rest[11..15], &[0x82, 126, 0x01, 0x2C]);
        assert_eq!(&rest[15..315], &expected[..300]);
        assert_eq!(&rest[315..], &[0x8A, 0]);
    }
}
