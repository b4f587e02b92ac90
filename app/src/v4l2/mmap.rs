//! Memory-mapped V4L2 buffers (H1 fills this in).
