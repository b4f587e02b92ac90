//! RTP (RFC 3550) for H.264, shared by the outputs that send RTP: RTSP and
//! WebRTC. Pure: access units and times in, packets out.
//!
//! - [`packetizer`]: RFC 6184 packetization (single NAL units and FU-A, marker
//!   bit, sequence numbers per client). WebRTC leaves this to str0m.
//! - [`clock`]: 90 kHz timestamps from the frames' capture times that start a
//!   joining viewer at once.
//! - [`rtcp`]: sender reports (RTP to wall-clock time, with the CNAME) and
//!   finding a client's BYE.

pub mod clock;
pub mod packetizer;
pub mod rtcp;
