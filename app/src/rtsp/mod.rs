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
//! - [`rtp`]: RFC 6184 packetization (single NAL units and FU-A, marker bit,
//!   sequence numbers per client).
//! - [`rtcp`]: sender reports (RTP to wall-clock time, with the CNAME) and
//!   finding a client's BYE.
//!
//! To come (issue 14): the session state machine, and the thin I/O shell fed by the hub.

pub mod message;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
