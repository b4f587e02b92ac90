//! The M2M hardware encoder (H3 fills this in).
