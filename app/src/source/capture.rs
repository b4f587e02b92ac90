//! The V4L2 capture loop (H2 fills this in).
