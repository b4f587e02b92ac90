//! The v4l2 source (H2 fills this in).
