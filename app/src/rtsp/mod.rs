//! RTSP 1.0 (RFC 2326, as NVRs, VLC, ffmpeg and relays use it): the stream for
//! Home Assistant, Frigate, VLC and relays such as MediaMTX or go2rtc (issue 14).
//!
//! Sans-IO like `h264/` and `webrtc/`: bytes in, requests and interleaved data
//! out. So far:
//!
//! - [`message`]: the incremental reader of what a client sends on its TCP
//!   connection (requests, pipelined, and `$`-framed interleaved RTCP), with
//!   bounds on every part, and the writer of responses.
//! - [`sdp`]: the SDP a DESCRIBE is answered with.
//! - [`session`]: one connection's state machine (OPTIONS, DESCRIBE, SETUP,
//!   PLAY, TEARDOWN, keep-alives; one session; liveness), hub items in, RTP
//!   and RTCP out.
//! - [`server`]: the I/O shell: the listener, a task per connection, the UDP
//!   ports, each playing session a hub viewer of transport `rtsp`.
//!
//! RTP packetization, timestamps and RTCP are [`crate::rtp`]'s.

pub mod message;
pub mod sdp;
pub mod server;
pub mod session;

pub use server::Rtsp;

/// The RTSP server, or why there is none (for `/api/status`).
#[derive(Clone)]
pub enum RtspService {
    /// Serving.
    On(Rtsp),
    /// Not serving, and why.
    Off(String),
}
