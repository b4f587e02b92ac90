//! The streamer: H.264 from a camera (or a test pattern, or a file) to many browsers.
//!
//! Data flows one way: a [`source`] produces Annex-B bytes on its own thread, the
//! [`h264`] module cuts them into access units, the [`hub`] fans each access unit out
//! to every viewer as shared [`bytes::Bytes`], and [`web`] writes them to WebSockets.
//! See `ARCHITECTURE.md` for the map and the invariants.

pub mod access;
pub mod config;
pub mod encode;
pub mod h264;
pub mod hub;
pub mod listen;
pub mod netif;
pub mod privacy_led;
pub mod probe;
pub mod rtp;
pub mod rtsp;
pub mod service;
pub mod setup;
pub mod snapshot;
pub mod source;
pub mod update;
pub mod v4l2;
pub mod web;
pub mod webrtc;
pub mod websocket;
