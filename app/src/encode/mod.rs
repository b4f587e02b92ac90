//! Encoding: raw pictures in, H.264 out. Knows nothing of sources or sinks; the
//! camera sources call it.
//!
//! - [`m2m`]: the Raspberry Pi's hardware encoder (bcm2835-codec), a state machine
//!   over a [`crate::v4l2::Node`].
//! - [`software`]: OpenH264 in-process, for the test pattern and for webcams on
//!   boards without the hardware encoder.
//! - [`raw_picture`]: where the planes of an uncompressed picture sit in a buffer,
//!   and the copy from the camera's layout into the encoder's.
//! - [`i420`]: the one planar 4:2:0 picture the software encoder takes.
//! - [`codec_controls`]: the `[encoder]` settings as V4L2 codec control values.

pub mod codec_controls;
pub mod i420;
pub mod m2m;
pub mod raw_picture;
pub mod software;
