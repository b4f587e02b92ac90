//! Choosing a camera mode (H2 fills this in).
