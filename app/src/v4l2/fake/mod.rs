//! Test fakes of the [`Node`](super::Node) boundary that behave like the Raspberry
//! Pi's drivers, built from the node descriptions in `app/tests/fixtures/v4l2/`:
//!
//! - [`camera`]: capture nodes (bcm2835-v4l2, the legacy camera; uvcvideo, webcams).
//! - [`encoder`]: the memory-to-memory H.264 encoder (bcm2835-codec).
//! - [`described`]: nodes that only describe themselves (for discovery and the
//!   probe), and small descriptions of each kind of node.

pub mod camera;
pub mod described;
pub mod encoder;
