//! H.264 level limits.
