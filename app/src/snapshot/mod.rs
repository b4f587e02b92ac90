//! `GET /snapshot.jpg`: the stream's current picture as a JPEG, made from the
//! frames the hub already has (no extra camera access), in software.
//!
//! - [`decode`]: the hub's GOP → a 4:2:0 picture (OpenH264), incrementally: each
//!   frame is decoded once; pure.
//! - [`jpeg`]: a 4:2:0 picture → JPEG bytes, straight from the planes; pure.
//! - [`service`]: the async shell: one decoder, one cached JPEG per frame, single
//!   flight, `spawn_blocking`, the wait for a camera that is not running, and the
//!   decoder dropped when unused.
//! - [`http`]: the endpoint, mounted by `web`.

pub mod decode;
pub mod http;
pub mod jpeg;
pub mod service;

pub use service::{Jpeg, SnapshotError, SnapshotSettings, SnapshotStats, Snapshots};
