//! The uvc source (H2 fills this in).
